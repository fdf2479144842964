//! Many messages on one connection, each next message's commands riding with the previous final dot (one
//! round trip a message with PIPELINING): `cargo run --example batch`.

use std::io::Cursor;

use smtp_blocking::{Envelope, Outcome, SmtpClient};
use smtp_examples::Target;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let target = Target::from_env()?;
    let mut client = SmtpClient::connect(&target.options)?;
    let messages = (1..=100).map(|i| {
        let envelope = Envelope::parse("alice@example.org", &["bob@example.org"]).expect("valid addresses");
        (envelope, Cursor::new(format!("Subject: number {i}\r\n\r\nMessage {i} of 100.\r\n")))
    });
    let mut sent = 0;
    client.send_all(messages, |report| {
        if report.outcome == Outcome::Sent {
            sent += 1;
        } else {
            println!("{report}");
        }
    })?;
    println!("{sent} of 100 messages sent on one connection");
    client.quit()?;
    target.show_received();
    Ok(())
}
