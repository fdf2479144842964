//! An async send over several connections at once, with smol: `cargo run --example smol_connections`.
//! (The same crate runs on async-std, and on tokio through `tokio_util::compat`.)

use futures_lite::io::Cursor;
use smtp_examples::Target;
use smtp_smol::{Envelope, Error, Outcome, SmtpClient};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let target = Target::from_env()?;
    let sent: Result<Vec<usize>, Error> = smol::block_on(async {
        let connections = (0..4).map(|c| {
            let options = target.options.clone();
            smol::spawn(async move {
                let mut client = SmtpClient::connect(&options).await?;
                let messages = (0..25).map(|i| {
                    let envelope = Envelope::parse("alice@example.org", &["bob@example.org"]).expect("valid");
                    (envelope, Cursor::new(format!("Subject: {c}/{i}\r\n\r\nHello from connection {c}.\r\n")))
                });
                let mut sent = 0;
                client.send_all(messages, |r| sent += usize::from(r.outcome == Outcome::Sent)).await?;
                client.quit().await?;
                Ok::<usize, Error>(sent)
            })
        });
        let mut counts = Vec::new();
        for task in connections.collect::<Vec<_>>() {
            counts.push(task.await?);
        }
        Ok(counts)
    });
    let sent = sent?;
    println!("sent {} messages over {} connections: {sent:?}", sent.iter().sum::<usize>(), sent.len());
    target.show_received();
    Ok(())
}
