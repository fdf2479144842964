//! A pool of async connections shared by tasks, with native tokio: `cargo run --example pool_tokio`.

use std::io::Cursor;
use std::sync::Arc;
use std::time::Duration;

use smtp_examples::Target;
use smtp_tokio::{Envelope, Error, Outcome, Pool, PoolConfig};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let target = Target::from_env()?;
    let mut config = PoolConfig::default();
    config.max_connections = 3;
    let pool = Arc::new(Pool::new(target.options.clone(), config));
    // Closes idle sessions on time even while nobody asks the pool for one; ends when the pool closes.
    let maintenance = tokio::spawn({
        let pool = Arc::clone(&pool);
        async move { pool.maintain().await }
    });
    let mut tasks = tokio::task::JoinSet::new();
    for w in 0..6 {
        let pool = Arc::clone(&pool);
        tasks.spawn(async move {
            let mut sent = 0;
            for i in 0..10 {
                let envelope = Envelope::parse("alice@example.org", &["bob@example.org"]).expect("valid");
                let body = Cursor::new(format!("Subject: {w}/{i}\r\n\r\nHello from task {w}.\r\n"));
                let report = pool.get().await?.send(envelope, body).await?;
                sent += usize::from(report.outcome == Outcome::Sent);
            }
            Ok::<usize, Error>(sent)
        });
    }
    let mut sent = 0;
    while let Some(done) = tasks.join_next().await {
        sent += done??;
    }
    pool.close(Duration::from_secs(5)).await;
    maintenance.await?;
    println!("sent {sent} messages from 6 tasks over at most 3 connections");
    target.show_received();
    Ok(())
}
