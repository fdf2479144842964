//! A scripted SMTP server on 127.0.0.1 (or one end of a Unix socket pair) that plays replies from a test's
//! closure and records every byte it receives, plus test certificates made with rcgen.
//!
//! Every wait is bounded: the server's socket has a read timeout and the listener gives up after a while,
//! so a broken client makes a test fail, never hang.
#![allow(dead_code)] // each test binary uses its own part of the helpers

pub mod capture;

use std::io::{self, ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::{ServerConfig, ServerConnection, StreamOwned};
use smtp_proto::Timeouts;
use smtp_proto::TlsMode;
use smtp_transport::Options;

/// Bound on every wait of the scripted server, and on the client's replies in tests that are not about time.
pub const PATIENCE: Duration = Duration::from_secs(10);

/// A byte stream the scripted server can run on.
pub trait Duplex: Read + Write + Send {}
impl<T: Read + Write + Send> Duplex for T {}

enum PeerStream {
    Plain(Box<dyn Duplex>),
    Tls(Box<StreamOwned<ServerConnection, Box<dyn Duplex>>>),
    Gone,
}

/// The server side of one connection, as seen by a script.
pub struct Peer {
    stream: PeerStream,
    /// Read from the stream and not yet consumed by the script.
    buf: Vec<u8>,
    /// Everything received (after TLS decryption), in order.
    pub received: Vec<u8>,
}

/// A message the auto-responder received: envelope lines and the wire body (still dot-stuffed).
#[derive(Debug, Default)]
pub struct Received {
    pub commands: Vec<String>,
    pub wire: Vec<u8>,
}

impl Peer {
    pub fn new(stream: Box<dyn Duplex>) -> Peer {
        Peer { stream: PeerStream::Plain(stream), buf: Vec::new(), received: Vec::new() }
    }

    fn read_more(&mut self) -> io::Result<usize> {
        let mut chunk = [0u8; 16 * 1024];
        let n = match &mut self.stream {
            PeerStream::Plain(s) => s.read(&mut chunk)?,
            PeerStream::Tls(s) => s.read(&mut chunk)?,
            PeerStream::Gone => 0,
        };
        self.buf.extend_from_slice(&chunk[..n]);
        self.received.extend_from_slice(&chunk[..n]);
        Ok(n)
    }

    /// Writes `s` at once (one write, then flush).
    pub fn send(&mut self, s: &str) {
        self.send_bytes(s.as_bytes());
    }

    pub fn send_bytes(&mut self, b: &[u8]) {
        let r = match &mut self.stream {
            PeerStream::Plain(s) => s.write_all(b).and_then(|()| s.flush()),
            PeerStream::Tls(s) => s.write_all(b).and_then(|()| s.flush()),
            PeerStream::Gone => Ok(()),
        };
        r.expect("server write");
    }

    /// Bytes received and not yet consumed.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// The next CRLF-terminated line, without the CRLF. Panics on EOF or timeout.
    pub fn line(&mut self) -> String {
        self.try_line().expect("the client closed or went silent")
    }

    /// The next line, or `None` on EOF, error or timeout.
    pub fn try_line(&mut self) -> Option<String> {
        loop {
            if let Some(i) = self.buf.windows(2).position(|w| w == b"\r\n") {
                let line = String::from_utf8_lossy(&self.buf[..i]).into_owned();
                self.buf.drain(..i + 2);
                return Some(line);
            }
            match self.read_more() {
                Ok(0) | Err(_) => return None,
                Ok(_) => {}
            }
        }
    }

    /// Reads a line and checks that it starts with `prefix` (ASCII case-insensitive).
    pub fn expect(&mut self, prefix: &str) -> String {
        let line = self.line();
        assert!(
            line.len() >= prefix.len()
                && line.as_bytes()[..prefix.len()].eq_ignore_ascii_case(prefix.as_bytes()),
            "expected {prefix:?}, got {line:?}"
        );
        line
    }

    /// Reads a DATA body up to and including the line that is only `.`; returns it as on the wire.
    pub fn data(&mut self) -> Vec<u8> {
        let mut scan = 0;
        loop {
            // The terminator is ".\r\n" at the very start or right after a CRLF.
            if self.buf.starts_with(b".\r\n") {
                return self.buf.drain(..3).collect();
            }
            if let Some(i) = find(&self.buf[scan..], b"\r\n.\r\n") {
                let end = scan + i + 5;
                return self.buf.drain(..end).collect();
            }
            scan = self.buf.len().saturating_sub(4);
            match self.read_more() {
                Ok(0) | Err(_) => panic!("the client closed inside the body"),
                Ok(_) => {}
            }
        }
    }

    /// Reads exactly `n` raw bytes (a BDAT chunk).
    pub fn raw(&mut self, n: usize) -> Vec<u8> {
        while self.buf.len() < n {
            match self.read_more() {
                Ok(0) | Err(_) => panic!("the client closed inside a BDAT chunk"),
                Ok(_) => {}
            }
        }
        self.buf.drain(..n).collect()
    }

    /// Reads until the client closes (EOF, error or the read timeout): lets a test see what the client did
    /// after the script's last reply.
    pub fn wait_close(&mut self) {
        while let Ok(n) = self.read_more() {
            if n == 0 {
                break;
            }
        }
    }

    /// One more read, for what follows the script's end: `Ok(0)` is a clean close (after TLS, a
    /// close_notify; an unclean TLS close is an `UnexpectedEof` error).
    pub fn read_end(&mut self) -> io::Result<usize> {
        self.read_more()
    }

    /// Runs the server side of a TLS handshake on the plain stream.
    pub fn starttls(&mut self, config: Arc<ServerConfig>) -> Result<(), rustls::Error> {
        assert!(self.buf.is_empty(), "plaintext pending before the handshake");
        let PeerStream::Plain(mut sock) = std::mem::replace(&mut self.stream, PeerStream::Gone) else {
            panic!("already TLS");
        };
        let mut conn = ServerConnection::new(config)?;
        while conn.is_handshaking() {
            if let Err(e) = conn.complete_io(&mut sock) {
                return Err(match e.into_inner().map(|i| i.downcast::<rustls::Error>()) {
                    Some(Ok(e)) => *e,
                    _ => rustls::Error::General("handshake IO failed".into()),
                });
            }
        }
        self.stream = PeerStream::Tls(Box::new(StreamOwned::new(conn, sock)));
        Ok(())
    }

    /// A cooperative server: answers each command line in order (so pipelined groups get their replies in
    /// order), `550` for recipients whose address contains "reject", the body after 354, `221` to QUIT.
    /// Returns the messages received.
    pub fn auto(&mut self, ehlo: &str) -> Vec<Received> {
        let mut messages = Vec::new();
        let mut current = Received::default();
        while let Some(line) = self.try_line() {
            let verb = line.split(' ').next().unwrap_or_default().to_ascii_uppercase();
            match verb.as_str() {
                "EHLO" | "LHLO" => self.send(ehlo),
                "MAIL" => {
                    current = Received::default();
                    current.commands.push(line);
                    self.send("250 2.1.0 ok\r\n");
                }
                "RCPT" if line.contains("reject") => {
                    current.commands.push(line);
                    self.send("550 5.1.1 no such user\r\n");
                }
                "RCPT" => {
                    current.commands.push(line);
                    self.send("250 2.1.5 ok\r\n");
                }
                "DATA" => {
                    self.send("354 go ahead\r\n");
                    current.wire = self.data();
                    messages.push(std::mem::take(&mut current));
                    self.send("250 2.0.0 queued\r\n");
                }
                "RSET" | "NOOP" => self.send("250 2.0.0 ok\r\n"),
                "QUIT" => {
                    self.send("221 2.0.0 bye\r\n");
                    break;
                }
                _ => self.send("500 5.5.1 what?\r\n"),
            }
        }
        messages
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Starts a one-connection scripted server on 127.0.0.1: `script` runs on the accepted connection; the
/// handle gives back what the script returns. The greeting is the script's to send.
pub fn serve<T: Send + 'static>(
    script: impl FnOnce(&mut Peer) -> T + Send + 'static,
) -> (u16, JoinHandle<(T, Vec<u8>)>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
    let port = listener.local_addr().expect("local addr").port();
    listener.set_nonblocking(true).expect("nonblocking");
    let handle = thread::spawn(move || {
        let stream = accept(&listener);
        stream.set_read_timeout(Some(PATIENCE)).expect("timeout");
        stream.set_write_timeout(Some(PATIENCE)).expect("timeout");
        let mut peer = Peer::new(Box::new(stream));
        let out = script(&mut peer);
        (out, peer.received)
    });
    (port, handle)
}

fn accept(listener: &TcpListener) -> TcpStream {
    let start = Instant::now();
    loop {
        match listener.accept() {
            Ok((stream, _)) => {
                stream.set_nonblocking(false).expect("blocking");
                return stream;
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock && start.elapsed() < PATIENCE => {
                thread::sleep(Duration::from_millis(5));
            }
            Err(e) => panic!("no client connected: {e}"),
        }
    }
}

/// Client options for the scripted server: no TLS, a fixed EHLO name, every reply bounded by [`PATIENCE`].
pub fn options(port: u16) -> Options {
    let mut o = Options::new("127.0.0.1", port);
    o.session.tls = TlsMode::None;
    o.helo_name = Some("client.test".parse().expect("valid EHLO name"));
    o.session.timeouts = Timeouts::uniform(PATIENCE);
    o.connect_timeout = PATIENCE;
    o
}

/// A test CA and a server certificate for "localhost" and 127.0.0.1 signed by it.
pub struct Pki {
    /// The CA certificate, PEM, for [`Options::ca_file`].
    pub ca_file: PathBuf,
    /// A rustls server configuration with the leaf certificate and its chain.
    pub server: Arc<ServerConfig>,
}

static PKI_COUNTER: AtomicUsize = AtomicUsize::new(0);

pub fn pki() -> Pki {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};
    let n = PKI_COUNTER.fetch_add(1, Ordering::Relaxed);
    let ca_key = KeyPair::generate().expect("CA key");
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.distinguished_name.push(DnType::CommonName, format!("smtp-blocking test CA {n}"));
    ca_params.key_usages =
        vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
    let ca_cert = ca_params.self_signed(&ca_key).expect("CA cert");
    let issuer = Issuer::from_params(&ca_params, &ca_key);

    let leaf_key = KeyPair::generate().expect("leaf key");
    let mut leaf_params =
        CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()]).expect("leaf params");
    leaf_params.distinguished_name.push(DnType::CommonName, "localhost");
    let leaf = leaf_params.signed_by(&leaf_key, &issuer).expect("leaf cert");

    let ca_file = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("smtp-blocking-ca-{}-{n}.pem", std::process::id()));
    std::fs::write(&ca_file, ca_cert.pem()).expect("write the CA file");

    let chain = vec![leaf.der().clone(), CertificateDer::from(ca_cert.der().to_vec())];
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der()));
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let server = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .expect("server config");
    Pki { ca_file, server: Arc::new(server) }
}

/// Client options for a TLS test against the scripted server.
pub fn tls_options(port: u16, pki: &Pki, tls: TlsMode) -> Options {
    let mut o = options(port);
    o.session.tls = tls;
    o.ca_file = Some(pki.ca_file.clone());
    o
}

/// A body of about `len` bytes with everything the stuffer must handle: lines starting with dots, a
/// lone-dot line, bare LF and bare CR line endings, long lines. Ends with a line ending.
pub fn tricky_body(len: usize) -> Vec<u8> {
    let mut body = Vec::with_capacity(len + 100);
    let mut i: u64 = 0;
    while body.len() < len {
        i += 1;
        match i % 7 {
            0 => body.extend_from_slice(b".\r\n"),
            1 => body.extend_from_slice(b"..starts with two dots\n"),
            2 => body.extend_from_slice(b".one dot, bare CR\r"),
            3 => {
                body.extend_from_slice(format!("line {i} ").as_bytes());
                body.extend(std::iter::repeat_n(b'x', (i % 300) as usize));
                body.extend_from_slice(b"\r\n");
            }
            4 => body.extend_from_slice(b"\r\n"),
            5 => body.extend_from_slice(b"tab\tand 8-bit \xc3\xa9\n"),
            _ => body.extend_from_slice(b"plain line\r\n"),
        }
    }
    body.extend_from_slice(b"end\r\n");
    body
}
