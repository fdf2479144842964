//! An async send over several connections at once, with native tokio: `cargo run --example tokio_connections`.

use std::io::Cursor;

use smtp_examples::Target;
use smtp_tokio::{Envelope, Error, Outcome, SmtpClient};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let target = Target::from_env()?;
    let mut tasks = tokio::task::JoinSet::new();
    for c in 0..4 {
        let options = target.options.clone();
        // A client's futures are `Send`: each connection runs on the multi-thread runtime's workers.
        tasks.spawn(async move {
            let mut client = SmtpClient::connect(&options).await?;
            let messages = (0..25).map(|i| {
                let envelope = Envelope::parse("alice@example.org", &["bob@example.org"]).expect("valid");
                (envelope, Cursor::new(format!("Subject: {c}/{i}\r\n\r\nHello from connection {c}.\r\n")))
            });
            let mut sent = 0;
            client.send_all(messages, |r| sent += usize::from(r.outcome == Outcome::Sent)).await?;
            client.quit().await?;
            Ok::<usize, Error>(sent)
        });
    }
    let mut total = 0;
    while let Some(done) = tasks.join_next().await {
        total += done??;
    }
    println!("sent {total} messages over 4 connections");
    target.show_received();
    Ok(())
}
