//! A blocking send with per-recipient results: `cargo run --example blocking`.
//!
//! Sends to `SMTP_SERVER` (`HOST[:PORT]` or a URL) when it is set, else to a built-in sink on 127.0.0.1.

use std::io::Cursor;

use smtp_blocking::{Envelope, SmtpClient};
use smtp_examples::Target;
use smtp_proto::RecipientStatus;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let target = Target::from_env()?;
    let mut client = SmtpClient::connect(&target.options)?;
    let envelope = Envelope::parse("alice@example.org", &["bob@example.org", "carol@example.org"])?;
    // Any `Read + Seek` body: a `File`, or bytes in a `Cursor`. It streams through a 64 KiB buffer.
    let body = Cursor::new("Subject: hello\r\n\r\nHi Bob, hi Carol.\r\n.a line starting with a dot\r\n");
    let report = client.send(envelope, body)?;
    // One line for the message, one a recipient, each with the server's reply.
    println!("{report}");
    for r in &report.recipients {
        match r.status {
            RecipientStatus::Delivered => {}
            RecipientStatus::TemporaryFailure => println!("retry later: {}", r.path),
            RecipientStatus::PermanentFailure => println!("give up on: {}", r.path),
            RecipientStatus::Unknown => {
                println!("may have been delivered, do not resend blindly: {}", r.path)
            }
        }
    }
    client.quit()?;
    target.show_received();
    Ok(())
}
