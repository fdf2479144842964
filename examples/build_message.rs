//! A message built with `mail-builder` (headers encoded, MIME parts, an attachment) and streamed:
//! `cargo run --example build_message`.

use std::io::Cursor;

use mail_builder::MessageBuilder;
use smtp_blocking::{Envelope, SmtpClient};
use smtp_examples::Target;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let target = Target::from_env()?;
    let message = MessageBuilder::new()
        .from(("Alice", "alice@example.org"))
        .to(vec![("Bob", "bob@example.org")])
        .subject("Café menu")
        .text_body("Hello Bob,\n\nthe menu is attached.\n.\nThat dot above stays a dot.\n")
        .attachment("text/csv", "menu.csv", "dish,price\ncroissant,2\n")
        .write_to_vec()?;
    // The envelope is not the header: the reverse-path and the recipients are given here.
    let envelope = Envelope::parse("alice@example.org", &["bob@example.org"])?.size(message.len() as u64);
    let mut client = SmtpClient::connect(&target.options)?;
    println!("{}", client.send(envelope, Cursor::new(message))?);
    client.quit()?;
    target.show_received();
    Ok(())
}
