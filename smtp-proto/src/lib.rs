//! A sans-IO SMTP client: server bytes and the time go in; command bytes, events and deadlines come out.
//!
//! This crate does no IO and reads no clock. It never opens a socket, never spawns a task, never calls
//! `Instant::now()` and has no async code: the caller feeds it the server's bytes and the current time (a
//! [`Duration`](core::time::Duration) since an origin of the caller's choosing), and pulls out the bytes to
//! write, the events to act on and the next deadline. The same core runs under blocking sockets
//! (`smtp-blocking`), any futures-io runtime (`smtp-smol`), a fuzzer, a benchmark or a firmware stack.
//! It is `#![no_std]` with `alloc`; the default `std` feature only adds `std::error::Error` impls.
//!
//! ```text
//!            server side                               application side
//!   bytes from server ──► handle_input ┐         ┌── send_message(Envelope)
//!   connection closed ──► handle_eof   │         ├── write_body / finish_body
//!   deadline passed   ──► handle_timeout ├─ Client ┤── tls_established (after Event::StartTls)
//!   bytes to write    ◄── poll_transmit  │         ├── quit / abort
//!   next deadline     ◄── poll_timeout  ┘         └──► poll_event: Ready, StartTls, BodyRequested,
//!                                                      Progress, Recipient…, MessageDone, Closed
//! ```
//!
//! # What it does
//!
//! One [`Client`] is one SMTP or LMTP session: it waits for the whole greeting, says EHLO (HELO only after
//! 500/502), upgrades with STARTTLS when configured (refusing any byte injected before the handshake),
//! authenticates (PLAIN, LOGIN, CRAM-MD5, XOAUTH2, OAUTHBEARER, never in plaintext unless allowed), then
//! sends messages: MAIL with SIZE, BODY, SMTPUTF8, RET, ENVID and REQUIRETLS as needed, one RCPT per
//! recipient with NOTIFY and ORCPT, and the body by DATA (streamed through the dot-stuffer) or BDAT. With
//! PIPELINING, MAIL, every RCPT and DATA leave in one write, and the next message's commands ride with the
//! previous final dot. Every message ends in exactly one [`Event::MessageDone`] whose
//! [`MessageReport`] says [`Outcome::Sent`], [`Outcome::Rejected`] or [`Outcome::Unknown`] (the connection
//! was lost after the final dot), with each recipient's reply.
//!
//! # Run loop
//!
//! After every input (`handle_*`) or command (`send_message`, `write_body`, …), drain the outputs in this
//! order: [`Client::poll_transmit`] until it returns 0 (write those bytes), then [`Client::poll_event`]
//! until `None` (acting on an event may produce more output: start again), then wait for the server's bytes
//! or [`Client::poll_timeout`]'s deadline, whichever comes first, and feed back what happened. Forgetting to
//! drain leaves commands unsent, which looks like a hang; in debug builds `poll_timeout` asserts that both
//! were drained. While it waits for anything, the client has a deadline, a TLS handshake included.
//!
//! Every event a server can cause is handled below. `examples/core_loop.rs` in the repository is the same
//! loop over a real `TcpStream`, with STARTTLS through rustls (tested against a server that offers it).
//!
//! ```
//! use core::time::Duration;
//! use smtp_proto::{Client, ClientConfig, Envelope, Event, Outcome};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let mut client = Client::new("client.example.org".parse()?, ClientConfig::new(), Duration::ZERO);
//! let id = client.send_message(Envelope::parse("alice@example.org", &["bob@example.org"])?)?;
//! let mut body: &[u8] = b"Subject: hi\r\n\r\nHello, Bob.\r\n.hidden dot\r\n";
//!
//! // A scripted server stands in for the socket: each read returns the next chunk.
//! let mut server = [
//!     &b"220 mx.example.org ESMTP\r\n"[..],
//!     b"250-mx.example.org\r\n250 PIPELINING\r\n",
//!     b"250 2.1.0 ok\r\n250 2.1.5 ok\r\n354 go ahead\r\n",
//!     b"250 2.0.0 queued as 42\r\n",
//!     b"221 2.0.0 bye\r\n",
//! ]
//! .into_iter();
//! let (now, mut wire, mut out) = (Duration::from_secs(1), Vec::new(), Vec::new());
//! let mut outcome = None;
//! 'session: loop {
//!     // 1. Everything the client has to write.
//!     while client.poll_transmit(now, &mut out) > 0 {
//!         wire.extend_from_slice(&out); // a real loop writes `out` to the connection
//!         out.clear();
//!     }
//!     // 2. Every event; handling one may give the client more to write: then go round again.
//!     let mut acted = false;
//!     while let Some(event) = client.poll_event() {
//!         acted = true;
//!         match event {
//!             // Wrap the connection in TLS now (read nothing more in plaintext), then:
//!             Event::StartTls => client.tls_established(now)?,
//!             // Give as much body as the client takes; the rest after `BodyWritable`.
//!             Event::BodyRequested { id: m } | Event::BodyWritable { id: m } if m == id => {
//!                 while !body.is_empty() {
//!                     match client.write_body(id, body)? {
//!                         0 => break,
//!                         n => body = &body[n..],
//!                     }
//!                 }
//!                 if body.is_empty() {
//!                     client.finish_body(id)?;
//!                 }
//!             }
//!             Event::MessageDone(report) => {
//!                 println!("{report}");
//!                 outcome = Some(report.outcome);
//!                 client.quit();
//!             }
//!             Event::Closed { reason } => {
//!                 assert_eq!(reason, None);
//!                 break 'session;
//!             }
//!             // Information only: Ready, Authenticated, Alive, Progress, Recipient…, Transcript.
//!             _ => {}
//!         }
//!     }
//!     if acted {
//!         continue;
//!     }
//!     // 3. Wait for bytes until client.poll_timeout(); here the script answers at once.
//!     let _deadline = client.poll_timeout();
//!     match server.next() {
//!         Some(bytes) => client.handle_input(now, bytes),
//!         None => client.handle_eof(now),
//!     }
//! }
//! assert_eq!(outcome, Some(Outcome::Sent));
//! let wire = String::from_utf8(wire)?;
//! assert!(wire.starts_with("EHLO client.example.org\r\nMAIL FROM:<alice@example.org>\r\n"));
//! assert!(wire.contains("\r\n..hidden dot\r\n.\r\nQUIT\r\n"));
//! # Ok(())
//! # }
//! ```
//!
//! # Layers
//!
//! The session is built from byte-level parts that are public for those who drive SMTP themselves:
//! [`reply`] (an incremental framer plus nom over complete lines), [`ehlo`] (typed capabilities),
//! [`address`] and [`command`] (validated at construction, encoded into the caller's buffer), [`body`]
//! (the streaming dot-stuffer and BDAT framing) and [`sasl`].
#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs, unreachable_pub)]

extern crate alloc;
#[cfg(feature = "std")]
extern crate std;

pub mod address;
pub mod body;
mod client;
pub mod command;
mod config;
pub mod ehlo;
mod envelope;
mod error;
mod event;
#[doc(hidden)]
pub mod internal;
pub mod reply;
pub mod sasl;
mod timer;

pub use client::{Client, State};
pub use config::{ClientConfig, DsnPolicy, ExtensionUse, Protocol, TlsMode};
pub use envelope::{Envelope, EnvelopeError, Recipient};
pub use error::{ApiMisuse, Blame, Error, ProtocolViolation, SendError, Unsendable};
pub use event::{
    Event, Failure, MessageId, MessageReport, Outcome, RecipientResult, RecipientStatus, Warning,
};
pub use reply::{EnhancedCode, Reply, ReplyClass};
pub use timer::{Timeouts, Timer};
