//! A pool of async connections shared by tasks, with smol: `cargo run --example pool_smol`.

use std::time::Duration;

use futures_lite::io::Cursor;
use smtp_examples::Target;
use smtp_smol::{Envelope, Error, Outcome, Pool, PoolConfig};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let target = Target::from_env()?;
    let mut config = PoolConfig::default();
    config.max_connections = 3;
    let pool = Pool::new(target.options.clone(), config);
    let sent = smol::block_on(async {
        let executor = smol::LocalExecutor::new();
        let tasks: Vec<_> = (0..6)
            .map(|w| {
                let pool = &pool;
                executor.spawn(async move {
                    let mut sent = 0;
                    for i in 0..10 {
                        let envelope =
                            Envelope::parse("alice@example.org", &["bob@example.org"]).expect("valid");
                        let body = Cursor::new(format!("Subject: {w}/{i}\r\n\r\nHello from task {w}.\r\n"));
                        let report = pool.get().await?.send(envelope, body).await?;
                        sent += usize::from(report.outcome == Outcome::Sent);
                    }
                    Ok::<usize, Error>(sent)
                })
            })
            .collect();
        let sent = executor
            .run(async {
                let mut sent = 0;
                for task in tasks {
                    sent += task.await?;
                }
                Ok::<usize, Error>(sent)
            })
            .await;
        // An async pool is closed before it is dropped: `drop` cannot wait for the QUITs.
        pool.close(Duration::from_secs(5)).await;
        sent
    })?;
    println!("sent {sent} messages from 6 tasks over at most 3 connections");
    target.show_received();
    Ok(())
}
