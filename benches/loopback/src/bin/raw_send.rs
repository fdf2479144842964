//! The physical limit of the loopback path: pre-formatted commands and a pre-stuffed body written on one
//! TCP_NODELAY connection, with nothing computed per message but the reply check.
//!
//! ```text
//! raw_send --server 127.0.0.1:PORT [--count N] [--file MESSAGE] [--mode pipelined|lockstep]
//!          [--starttls --ca-file CA.pem]
//! ```
//!
//! - `pipelined` (the default, the reference): one round trip a message. After the first
//!   `MAIL`/`RCPT`/`DATA` group, each message is ONE write: the stuffed body, the dot, and the next
//!   message's `MAIL`/`RCPT`/`DATA` (or `QUIT` after the last), then one read of the replies `250` (the dot),
//!   `250`, `250`, `354`. RFC 2920 §3.1 allows message content to start a group, and its own example
//!   pipelines `QUIT` after the dot; Postfix's smtp-sink accepts it.
//! - `lockstep`: two round trips a message, the shape `smtp-send` has today: `MAIL`/`RCPT`/`DATA` in one
//!   write, read up to `354`; the body and the dot in one write, read the `250`.
//!
//! With `--count 1` and a large `--file` it is the raw push: the whole pre-stuffed body in one `write_all`.
//! The body is CRLF-normalised and dot-stuffed once, before the clock starts. Every reply is checked.
//!
//! `--starttls` upgrades after the first EHLO (STARTTLS, 220, a rustls handshake with ring, trusting only
//! `--ca-file`, the name being the server's IP address), says EHLO again and then sends exactly as above
//! through rustls's `StreamOwned`: the raw rustls push of the same bytes. The clock includes the handshake,
//! as `smtp-send`'s does.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConnection, RootCertStore, StreamOwned};
use smtp_loopback_bench::{Args, kib_message, report};

const USAGE: &str = "raw_send --server HOST:PORT [--count N] [--file MESSAGE] [--from ADDR] [--to ADDR] [--mode pipelined|lockstep] [--starttls --ca-file CA.pem]";

/// CRLF line endings and a leading dot doubled, the final CRLF ensured; the terminator is not added.
fn stuff(message: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(message.len() + message.len() / 64 + 2);
    for line in message.split_inclusive(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\n").unwrap_or(line);
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.first() == Some(&b'.') {
            out.push(b'.');
        }
        out.extend_from_slice(line);
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// The connection (plaintext or TLS): writes commands, reads complete replies, checking each final line's
/// code against `expected` in order.
struct Replies<S> {
    stream: S,
    buf: Vec<u8>,
    start: usize,
    end: usize,
    /// The last final reply's text, for the EHLO check.
    last: Vec<u8>,
}

impl<S: Read + Write> Replies<S> {
    fn send(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.stream.write_all(bytes)?;
        self.stream.flush()
    }

    fn expect(&mut self, expected: &[u16]) -> std::io::Result<()> {
        let mut multi = Vec::new();
        for &code in expected {
            multi.clear();
            loop {
                if let Some(nl) = self.buf[self.start..self.end]
                    .iter()
                    .position(|&b| b == b'\n')
                {
                    let line = &self.buf[self.start..self.start + nl + 1];
                    self.start += nl + 1;
                    multi.extend_from_slice(line);
                    if line.len() >= 4 && line[3] == b'-' {
                        continue;
                    }
                    let got = std::str::from_utf8(&line[..3.min(line.len())])
                        .ok()
                        .and_then(|s| s.parse::<u16>().ok());
                    if got != Some(code) {
                        return Err(std::io::Error::other(format!(
                            "expected {code}, got {:?}",
                            String::from_utf8_lossy(line)
                        )));
                    }
                    break;
                }
                if self.start == self.end {
                    self.start = 0;
                    self.end = 0;
                } else if self.end == self.buf.len() {
                    self.buf.copy_within(self.start..self.end, 0);
                    self.end -= self.start;
                    self.start = 0;
                }
                let n = self.stream.read(&mut self.buf[self.end..])?;
                if n == 0 {
                    return Err(std::io::ErrorKind::UnexpectedEof.into());
                }
                self.end += n;
            }
        }
        self.last.clone_from(&multi);
        Ok(())
    }
}

/// A rustls client configuration trusting only the certificates in `ca_file`.
fn tls_config(ca_file: &PathBuf) -> std::io::Result<Arc<rustls::ClientConfig>> {
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca_file).map_err(std::io::Error::other)? {
        roots
            .add(cert.map_err(std::io::Error::other)?)
            .map_err(std::io::Error::other)?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(std::io::Error::other)?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// The pre-formatted messages: what each write carries.
struct Plan {
    lockstep: bool,
    count: u64,
    envelope: Vec<u8>,
    /// Lock-step: the stuffed body and the dot.
    body: Vec<u8>,
    /// Pipelined: the body, the dot and the next envelope; and the last message's body, dot and QUIT.
    next: Vec<u8>,
    last: Vec<u8>,
}

fn run(args: &Args) -> std::io::Result<(u64, f64, u64)> {
    let lockstep = match args.mode.as_deref() {
        None | Some("pipelined") => false,
        Some("lockstep") => true,
        Some(m) => return Err(std::io::Error::other(format!("unknown --mode {m}"))),
    };
    let tls = match (args.has("--starttls"), &args.ca_file) {
        (true, Some(ca)) => Some(tls_config(ca)?),
        (true, None) => return Err(std::io::Error::other("--starttls needs --ca-file")),
        (false, _) => None,
    };
    let message = args.message(|| kib_message(&args.from, &args.to));
    let envelope = format!(
        "MAIL FROM:<{}>\r\nRCPT TO:<{}>\r\nDATA\r\n",
        args.from, args.to
    )
    .into_bytes();
    let size = message.len() as u64;
    let mut body = stuff(&message);
    drop(message);
    body.extend_from_slice(b".\r\n");
    // Pipelined, each write is the body, the dot and the next envelope; the last carries QUIT instead.
    // (Built only when needed, so that a 50 MiB push holds one copy of the body, not three.)
    let (mut next, mut last) = (Vec::new(), Vec::new());
    if !lockstep {
        if args.count > 1 {
            next = [&body[..], &envelope[..]].concat();
        }
        last = std::mem::take(&mut body);
        last.extend_from_slice(b"QUIT\r\n");
    }
    let plan = Plan {
        lockstep,
        count: args.count,
        envelope,
        body,
        next,
        last,
    };

    let started = Instant::now();
    let stream = TcpStream::connect_timeout(&args.server, Duration::from_secs(10))?;
    stream.set_nodelay(true)?;
    stream.set_read_timeout(Some(Duration::from_secs(60)))?;
    stream.set_write_timeout(Some(Duration::from_secs(60)))?;
    let mut r = Replies {
        stream,
        buf: vec![0; 64 * 1024],
        start: 0,
        end: 0,
        last: Vec::new(),
    };
    r.expect(&[220])?;
    r.send(b"EHLO bench.example.org\r\n")?;
    r.expect(&[250])?;
    let sent = match tls {
        None => transactions(&mut r, &plan)?,
        Some(config) => {
            if !String::from_utf8_lossy(&r.last).contains("STARTTLS") {
                return Err(std::io::Error::other("the server does not offer STARTTLS"));
            }
            r.send(b"STARTTLS\r\n")?;
            r.expect(&[220])?;
            if r.start != r.end {
                return Err(std::io::Error::other("bytes after the 220 to STARTTLS"));
            }
            let name = ServerName::from(args.server.ip());
            let conn = ClientConnection::new(config, name).map_err(std::io::Error::other)?;
            let mut t = Replies {
                stream: StreamOwned::new(conn, r.stream),
                buf: r.buf,
                start: 0,
                end: 0,
                last: Vec::new(),
            };
            t.send(b"EHLO bench.example.org\r\n")?;
            t.expect(&[250])?;
            transactions(&mut t, &plan)?
        }
    };
    let seconds = started.elapsed().as_secs_f64();
    Ok((sent, seconds, sent * size))
}

/// Sends the messages after EHLO, then QUIT; returns how many were accepted.
fn transactions<S: Read + Write>(r: &mut Replies<S>, plan: &Plan) -> std::io::Result<u64> {
    if !plan.lockstep && !String::from_utf8_lossy(&r.last).contains("PIPELINING") {
        return Err(std::io::Error::other(
            "the server does not offer PIPELINING",
        ));
    }
    let mut sent = 0;
    if plan.lockstep {
        for _ in 0..plan.count {
            r.send(&plan.envelope)?;
            r.expect(&[250, 250, 354])?;
            r.send(&plan.body)?;
            r.expect(&[250])?;
            sent += 1;
        }
        r.send(b"QUIT\r\n")?;
        r.expect(&[221])?;
    } else if plan.count > 0 {
        r.send(&plan.envelope)?;
        r.expect(&[250, 250, 354])?;
        for i in 0..plan.count {
            if i + 1 < plan.count {
                r.send(&plan.next)?;
                r.expect(&[250, 250, 250, 354])?;
            } else {
                r.send(&plan.last)?;
                r.expect(&[250, 221])?;
            }
            sent += 1;
        }
    }
    Ok(sent)
}

fn main() {
    let args = Args::parse(USAGE, &["--starttls"]);
    match run(&args) {
        Ok((messages, seconds, bytes)) => report(messages, seconds, bytes, &[]),
        Err(e) => {
            eprintln!("raw_send: {e}");
            std::process::exit(2)
        }
    }
}
