//! A pool of blocking connections shared by threads: `cargo run --example pool_blocking`. Each thread takes a
//! connection for one message and gives it back; the pool reuses idle ones, checks those that sat idle, opens
//! at most `max_connections`, paces messages to `rate` and, on close, ends every session with QUIT.

use std::io::Cursor;
use std::time::Duration;

use smtp_blocking::{Envelope, Outcome, Pool, PoolConfig};
use smtp_examples::Target;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let target = Target::from_env()?;
    let mut config = PoolConfig::default();
    config.max_connections = 3;
    config.rate = Some(200.0); // messages a second, for the whole pool
    let pool = Pool::new(target.options.clone(), config);
    let sent = std::thread::scope(|s| {
        let workers: Vec<_> = (0..6)
            .map(|w| {
                let pool = &pool;
                s.spawn(move || -> Result<usize, smtp_blocking::Error> {
                    let mut sent = 0;
                    for i in 0..10 {
                        let envelope =
                            Envelope::parse("alice@example.org", &["bob@example.org"]).expect("valid");
                        let body = Cursor::new(format!("Subject: {w}/{i}\r\n\r\nHello from worker {w}.\r\n"));
                        // The connection goes back to the pool when the checkout drops.
                        let report = pool.get()?.send(envelope, body)?;
                        sent += usize::from(report.outcome == Outcome::Sent);
                    }
                    Ok(sent)
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().expect("no panic")).sum::<Result<usize, _>>()
    })?;
    pool.close(Duration::from_secs(5));
    println!("sent {sent} messages from 6 threads over at most 3 connections");
    target.show_received();
    Ok(())
}
