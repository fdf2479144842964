//! The sans-IO core driven by hand over a plain `TcpStream`, STARTTLS through rustls: the loop a
//! protocol-stack author copies. `cargo run --example core_loop` (the built-in sink offers no STARTTLS; set
//! `SMTP_SERVER` to a server that does, and `SMTP_CA_FILE` to a PEM file if its CA is a private one).
//!
//! The loop, after every input or command: (1) write everything `poll_transmit` gives, (2) act on every
//! event, going back to (1) when an event was handled, (3) wait for the server's bytes or `poll_timeout`'s
//! deadline and feed the result back (`handle_input`, `handle_eof`, `handle_timeout`).

use std::error::Error;
use std::io::{self, ErrorKind, Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::pki_types::ServerName;
use rustls::{ClientConnection, StreamOwned};
use smtp_proto::{Client, ClientConfig, Envelope, Event, MessageReport, TlsMode};

/// The connection: plaintext until STARTTLS, then TLS over the same socket.
enum Conn {
    Plain(TcpStream),
    Tls(Box<StreamOwned<ClientConnection, TcpStream>>),
}

impl Conn {
    fn io(&mut self) -> &mut dyn ReadWrite {
        match self {
            Conn::Plain(s) => s,
            Conn::Tls(s) => s.as_mut(),
        }
    }

    fn tcp(&self) -> &TcpStream {
        match self {
            Conn::Plain(s) => s,
            Conn::Tls(s) => &s.sock,
        }
    }
}

trait ReadWrite: Read + Write {}
impl<T: Read + Write> ReadWrite for T {}

/// What STARTTLS needs: the rustls configuration and the name the certificate must carry.
pub type TlsParams = (Arc<rustls::ClientConfig>, ServerName<'static>);

/// Sends one message over `stream` with the core alone. With `tls`, STARTTLS is required.
pub fn deliver(
    stream: TcpStream,
    tls: Option<TlsParams>,
    envelope: Envelope,
    mut body: &[u8],
) -> Result<MessageReport, Box<dyn Error>> {
    let origin = Instant::now();
    let now = || origin.elapsed();
    let mut config = ClientConfig::new();
    config.tls = if tls.is_some() { TlsMode::Required } else { TlsMode::None };
    let mut client = Client::new("client.example.org".parse()?, config, now());
    let id = client.send_message(envelope)?;
    let mut conn = Some(Conn::Plain(stream));
    let (mut out, mut buf, mut report, mut finished) = (Vec::new(), [0u8; 16 * 1024], None, false);
    loop {
        let c = conn.as_mut().ok_or("no connection")?;
        // 1. Write everything the client has to send.
        while client.poll_transmit(now(), &mut out) > 0 {
            c.io().write_all(&out)?;
            c.io().flush()?;
            out.clear();
        }
        // 2. Act on every event. Acting may give the client more to send: then go round again.
        let mut acted = false;
        while let Some(event) = client.poll_event() {
            acted = true;
            match event {
                // Nothing more is read in plaintext: wrap the socket, then tell the client.
                Event::StartTls => {
                    let Some(Conn::Plain(tcp)) = conn.take() else { return Err("no plain socket".into()) };
                    let (config, name) = tls.clone().ok_or("STARTTLS without a TLS configuration")?;
                    let tls_conn = ClientConnection::new(config, name)?;
                    conn = Some(Conn::Tls(Box::new(StreamOwned::new(tls_conn, tcp))));
                    client.tls_established(now())?;
                }
                // The server waits for the body: write what the client takes now; the rest on BodyWritable.
                Event::BodyRequested { id: m } | Event::BodyWritable { id: m } if m == id && !finished => {
                    while !body.is_empty() {
                        match client.write_body(id, body)? {
                            0 => break,
                            n => body = &body[n..],
                        }
                    }
                    if body.is_empty() {
                        client.finish_body(id)?;
                        finished = true;
                    }
                }
                Event::MessageDone(r) => {
                    report = Some(r);
                    client.quit();
                }
                Event::Closed { reason } => {
                    return match (report, reason) {
                        (Some(r), _) => Ok(r),
                        (None, Some(e)) => Err(e.into()),
                        (None, None) => Err("the session ended without a report".into()),
                    };
                }
                // Information only: Ready, Authenticated, Alive, Progress, Recipient…, Transcript.
                _ => {}
            }
        }
        if acted {
            continue;
        }
        // 3. Wait for the server, at most until the client's deadline (it always has one while it waits).
        let c = conn.as_mut().ok_or("no connection")?;
        let wait = client.poll_timeout().map(|d| d.saturating_sub(now()).max(Duration::from_millis(1)));
        c.tcp().set_read_timeout(wait)?;
        match c.io().read(&mut buf) {
            Ok(0) => client.handle_eof(now()),
            Ok(n) => client.handle_input(now(), &buf[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                client.handle_timeout(now())
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            // A broken connection is an end, as EOF is: every message gets its outcome.
            Err(_) => client.handle_eof(now()),
        }
    }
}

#[allow(dead_code)] // The tests use `deliver` alone.
fn main() -> Result<(), Box<dyn Error>> {
    let target = smtp_examples::Target::from_env()?;
    let options = &target.options;
    let stream = TcpStream::connect((options.host.as_str(), options.port))?;
    stream.set_nodelay(true)?;
    let mut tls_options = options.clone();
    tls_options.ca_file = std::env::var_os("SMTP_CA_FILE").map(Into::into);
    let tls = match options.session.tls {
        TlsMode::None => None,
        _ => Some((tls_options.tls_config()?, tls_options.server_name()?)),
    };
    let envelope = Envelope::parse("alice@example.org", &["bob@example.org"])?;
    let body = b"Subject: by hand\r\n\r\nSent by the sans-IO core, driven by a plain loop.\r\n";
    let report = deliver(stream, tls, envelope, body).map_err(|e| io::Error::other(e.to_string()))?;
    println!("{report}");
    target.show_received();
    Ok(())
}
