//! A scripted SMTP server on 127.0.0.1 for the driver's tests: one std thread per server, blocking sockets,
//! rustls for STARTTLS and implicit TLS, certificates made at test time with rcgen. It records every byte it
//! receives (decrypted), every command and every message body as it came over the wire.
#![allow(dead_code)]

use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, mpsc};
use std::thread;
use std::time::Duration;

use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::{ServerConnection, StreamOwned};
use smtp_smol::Options;
use smtp_smol::smtp_proto::{Timeouts, TlsMode};

/// No test waits longer than this for anything (server reads, holds).
pub const BOUND: Duration = Duration::from_secs(20);

/// What the server does with a command.
pub enum Action {
    /// Write these bytes (one or more CRLF-terminated reply lines).
    Reply(String),
    /// Queue these bytes: they go out with the next `Reply` (a server that answers pipelined commands late).
    Defer(String),
    /// Write the reply, then close the connection.
    ReplyAndClose(String),
    /// Close the connection without a word.
    Close,
    /// Answer nothing more and keep the connection open (reading nothing) until the test ends.
    Hang,
    /// Write the reply, then do the TLS handshake (STARTTLS).
    StartTls(String),
    /// To DATA: `354`, read at least `after` octets of body, write `reply`, then hang without reading.
    Interrupt { after: usize, reply: String },
}

/// Shorthand for `Action::Reply` of one line.
pub fn reply(line: &str) -> Action {
    Action::Reply(format!("{line}\r\n"))
}

/// A command handler: the command line (without CRLF; `"."` for the end of data) and whether the session is
/// under TLS.
pub type Handler = Box<dyn FnMut(&str, bool) -> Action + Send>;

/// How a scripted server behaves.
pub struct Script {
    /// The greeting; `None`: never greet (and hang).
    pub greeting: Option<String>,
    /// TLS configuration for STARTTLS and implicit TLS.
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// Handshake before the greeting (port 465 style).
    pub implicit_tls: bool,
    pub handler: Handler,
}

impl Script {
    /// A server greeting with 220 and answering with `handler`.
    pub fn new(handler: impl FnMut(&str, bool) -> Action + Send + 'static) -> Script {
        Script {
            greeting: Some("220 test.example ESMTP ready\r\n".into()),
            tls: None,
            implicit_tls: false,
            handler: Box::new(handler),
        }
    }

    pub fn tls(mut self, config: Arc<rustls::ServerConfig>) -> Script {
        self.tls = Some(config);
        self
    }
}

/// The standard answers of a cooperative ESMTP server offering `keywords` (STARTTLS only outside TLS).
/// AUTH PLAIN accepts alice / s3cret.
pub fn esmtp(keywords: &'static [&'static str]) -> impl FnMut(&str, bool) -> Action + Send {
    move |cmd, tls| {
        let verb = cmd.split(' ').next().unwrap_or("").to_ascii_uppercase();
        match verb.as_str() {
            "EHLO" | "LHLO" => {
                let mut lines = vec!["test.example"];
                lines.extend(keywords.iter().filter(|k| !(tls && **k == "STARTTLS")));
                let n = lines.len();
                let text = lines
                    .iter()
                    .enumerate()
                    .map(|(i, l)| format!("250{}{l}\r\n", if i + 1 == n { ' ' } else { '-' }))
                    .collect();
                Action::Reply(text)
            }
            "HELO" => reply("250 test.example"),
            "MAIL" => reply("250 2.1.0 sender ok"),
            "RCPT" => reply("250 2.1.5 recipient ok"),
            "DATA" => reply("354 go ahead"),
            "." => reply("250 2.0.0 queued"),
            "BDAT" => reply("250 2.0.0 chunk ok"),
            "RSET" | "NOOP" => reply("250 2.0.0 ok"),
            "QUIT" => Action::ReplyAndClose("221 2.0.0 bye\r\n".into()),
            "STARTTLS" => Action::StartTls("220 2.0.0 go ahead\r\n".into()),
            // base64("\0alice\0s3cret")
            "AUTH" if cmd == "AUTH PLAIN AGFsaWNlAHMzY3JldA==" => reply("235 2.7.0 authenticated"),
            "AUTH" => reply("535 5.7.8 bad credentials"),
            _ => reply("500 5.5.1 unknown command"),
        }
    }
}

/// What the server saw.
#[derive(Debug, Default)]
pub struct Record {
    /// Every byte received, in order (decrypted under TLS).
    pub received: Vec<u8>,
    /// Every command line, in order, without CRLF.
    pub commands: Vec<String>,
    /// For each command (with its BDAT chunk), whether more client bytes were already waiting when it was
    /// read (pipelining).
    pub followed: Vec<bool>,
    /// Index in `commands` of the first command received under TLS.
    pub tls_from: Option<usize>,
    /// Each message body as it came over the wire: DATA with its dot-stuffing and the final `.\r\n`, or the
    /// BDAT chunks' octets joined.
    pub bodies: Vec<Vec<u8>>,
}

impl Record {
    /// The commands starting with `verb`.
    pub fn count(&self, verb: &str) -> usize {
        self.commands.iter().filter(|c| c.starts_with(verb)).count()
    }
}

/// A running scripted server.
pub struct Server {
    pub port: u16,
    release: mpsc::Sender<()>,
    thread: thread::JoinHandle<Record>,
}

impl Server {
    /// Listens on 127.0.0.1 (a free port) and serves one connection with `script`.
    pub fn start(script: Script) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
        let port = listener.local_addr().unwrap().port();
        let (release, released) = mpsc::channel();
        let thread = thread::spawn(move || {
            let mut session = Session {
                conn: Conn::Gone,
                buf: Vec::new(),
                pending: String::new(),
                rec: Record::default(),
                released,
                tls: false,
            };
            let Ok((sock, _)) = listener.accept() else {
                return session.rec;
            };
            let _ = session.serve(sock, script);
            session.rec
        });
        Server { port, release, thread }
    }

    /// Lets a hanging server go, waits for it and returns what it saw.
    pub fn finish(self) -> Record {
        let _ = self.release.send(());
        self.thread.join().expect("the scripted server panicked")
    }
}

enum Conn {
    Plain(TcpStream),
    Tls(Box<StreamOwned<ServerConnection, TcpStream>>),
    Gone,
}

impl Read for Conn {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Conn::Plain(s) => s.read(buf),
            Conn::Tls(s) => s.read(buf),
            Conn::Gone => Ok(0),
        }
    }
}

impl Write for Conn {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Conn::Plain(s) => s.write(buf),
            Conn::Tls(s) => s.write(buf),
            Conn::Gone => Err(io::ErrorKind::NotConnected.into()),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Conn::Plain(s) => s.flush(),
            Conn::Tls(s) => s.flush(),
            Conn::Gone => Ok(()),
        }
    }
}

struct Session {
    conn: Conn,
    /// Received and not yet consumed.
    buf: Vec<u8>,
    /// Deferred replies.
    pending: String,
    rec: Record,
    released: mpsc::Receiver<()>,
    tls: bool,
}

impl Session {
    fn serve(&mut self, sock: TcpStream, mut script: Script) -> io::Result<()> {
        sock.set_read_timeout(Some(BOUND))?;
        sock.set_write_timeout(Some(BOUND))?;
        self.conn = Conn::Plain(sock);
        if script.implicit_tls {
            self.start_tls(script.tls.clone().expect("implicit TLS needs a TLS config"))?;
        }
        let Some(greeting) = script.greeting.take() else {
            self.hang();
            return Ok(());
        };
        self.send(&greeting)?;
        let mut body: Option<Vec<u8>> = None;
        while let Some(cmd) = self.line()? {
            self.rec.commands.push(cmd.clone());
            if cmd.to_ascii_uppercase().starts_with("BDAT ") {
                let mut words = cmd.split(' ').skip(1);
                let size: usize = words.next().and_then(|n| n.parse().ok()).unwrap_or(0);
                let last = words.next().is_some_and(|w| w.eq_ignore_ascii_case("LAST"));
                let Some(chunk) = self.exact(size)? else {
                    return Ok(());
                };
                body.get_or_insert_with(Vec::new).extend_from_slice(&chunk);
                if last {
                    self.rec.bodies.extend(body.take());
                }
            }
            // After a BDAT command, whether more arrived than its chunk.
            self.rec.followed.push(!self.buf.is_empty());
            let action = (script.handler)(&cmd, self.tls);
            let data = cmd.eq_ignore_ascii_case("DATA");
            match action {
                Action::Reply(r) if data && r.starts_with("354") => {
                    self.send(&r)?;
                    let Some(wire) = self.data(usize::MAX)? else {
                        return Ok(());
                    };
                    self.rec.bodies.push(wire);
                    self.rec.commands.push(".".into());
                    self.rec.followed.push(!self.buf.is_empty());
                    if !self.act((script.handler)(".", self.tls), &script)? {
                        return Ok(());
                    }
                }
                Action::Interrupt { after, reply } => {
                    self.send("354 go ahead\r\n")?;
                    if self.data(after)?.is_some() {
                        self.send(&reply)?;
                    }
                    self.hang();
                    return Ok(());
                }
                other => {
                    if !self.act(other, &script)? {
                        return Ok(());
                    }
                }
            }
        }
        Ok(())
    }

    /// Carries out `action`; false when the session is over.
    fn act(&mut self, action: Action, script: &Script) -> io::Result<bool> {
        match action {
            Action::Reply(r) => self.send(&r)?,
            Action::Defer(r) => self.pending.push_str(&r),
            Action::ReplyAndClose(r) => {
                self.send(&r)?;
                self.close();
                return Ok(false);
            }
            Action::Close => {
                self.close();
                return Ok(false);
            }
            Action::Hang | Action::Interrupt { .. } => {
                self.hang();
                return Ok(false);
            }
            Action::StartTls(r) => {
                self.send(&r)?;
                assert!(self.buf.is_empty(), "client sent bytes before the handshake");
                self.start_tls(script.tls.clone().expect("STARTTLS needs a TLS config"))?;
                self.rec.tls_from = Some(self.rec.commands.len());
            }
        }
        Ok(true)
    }

    fn start_tls(&mut self, config: Arc<rustls::ServerConfig>) -> io::Result<()> {
        let Conn::Plain(sock) = std::mem::replace(&mut self.conn, Conn::Gone) else {
            panic!("TLS twice");
        };
        let conn = ServerConnection::new(config).map_err(io::Error::other)?;
        let mut tls = StreamOwned::new(conn, sock);
        while tls.conn.is_handshaking() {
            tls.conn.complete_io(&mut tls.sock)?;
        }
        self.conn = Conn::Tls(Box::new(tls));
        self.tls = true;
        Ok(())
    }

    fn hang(&mut self) {
        let _ = self.released.recv_timeout(BOUND);
    }

    fn close(&mut self) {
        if let Conn::Tls(s) = &mut self.conn {
            s.conn.send_close_notify();
            let _ = s.conn.complete_io(&mut s.sock);
        }
        self.conn = Conn::Gone;
    }

    fn send(&mut self, text: &str) -> io::Result<()> {
        let out = std::mem::take(&mut self.pending) + text;
        self.conn.write_all(out.as_bytes())?;
        self.conn.flush()
    }

    /// Reads more bytes; false at EOF.
    fn fill(&mut self) -> io::Result<bool> {
        let mut chunk = [0u8; 16 * 1024];
        let n = self.conn.read(&mut chunk)?;
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(n > 0)
    }

    /// Takes `n` bytes off the front of the buffer, recording them.
    fn take(&mut self, n: usize) -> Vec<u8> {
        let taken: Vec<u8> = self.buf.drain(..n).collect();
        self.rec.received.extend_from_slice(&taken);
        taken
    }

    /// The next CRLF-terminated line, without CRLF; `None` at EOF.
    fn line(&mut self) -> io::Result<Option<String>> {
        loop {
            if let Some(i) = self.buf.windows(2).position(|w| w == b"\r\n") {
                let line = self.take(i + 2);
                return Ok(Some(String::from_utf8_lossy(&line[..i]).into_owned()));
            }
            if !self.fill()? {
                return Ok(None);
            }
        }
    }

    fn exact(&mut self, n: usize) -> io::Result<Option<Vec<u8>>> {
        while self.buf.len() < n {
            if !self.fill()? {
                return Ok(None);
            }
        }
        Ok(Some(self.take(n)))
    }

    /// A DATA body up to and including its `.\r\n` line, or as soon as at least `limit` octets arrived.
    fn data(&mut self, limit: usize) -> io::Result<Option<Vec<u8>>> {
        let mut wire = Vec::new();
        loop {
            // Whole lines only, so the terminator is recognised at a line start.
            let Some(i) = self.buf.windows(2).position(|w| w == b"\r\n") else {
                if wire.len() + self.buf.len() >= limit {
                    let n = self.buf.len();
                    wire.extend(self.take(n));
                    return Ok(Some(wire));
                }
                if !self.fill()? {
                    return Ok(None);
                }
                continue;
            };
            let line = self.take(i + 2);
            let end = line == b".\r\n";
            wire.extend_from_slice(&line);
            if end || wire.len() >= limit {
                return Ok(Some(wire));
            }
        }
    }
}

/// A test CA and a server certificate for localhost / 127.0.0.1 signed by it.
pub struct Pki {
    /// The CA certificate, PEM, written to a file of its own.
    pub ca_file: PathBuf,
    /// A rustls server configuration with the leaf certificate and the CA as its chain.
    pub server: Arc<rustls::ServerConfig>,
}

impl Pki {
    pub fn new() -> Pki {
        let ca_key = KeyPair::generate().unwrap();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        // A name of its own: a second CA with the same name would be "bad signature", not "unknown issuer".
        static N: AtomicUsize = AtomicUsize::new(0);
        let name = format!("smtp-smol test CA {}", N.fetch_add(1, Ordering::Relaxed));
        ca_params.distinguished_name.push(rcgen::DnType::CommonName, name);
        let ca_cert = ca_params.self_signed(&ca_key).unwrap();
        let issuer = Issuer::new(ca_params, ca_key);

        let leaf_key = KeyPair::generate().unwrap();
        let leaf_params =
            CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()]).unwrap();
        let leaf = leaf_params.signed_by(&leaf_key, &issuer).unwrap();

        let chain: Vec<CertificateDer<'static>> = vec![leaf.der().clone(), ca_cert.der().clone()];
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der()));
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let server = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .unwrap();
        Pki { ca_file: write_temp("ca.pem", ca_cert.pem().as_bytes()), server: Arc::new(server) }
    }
}

/// Writes `contents` to a fresh file under the system's temporary directory.
pub fn write_temp(name: &str, contents: &[u8]) -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "smtp-smol-test-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, contents).unwrap();
    path
}

/// Options for a plaintext session with the test server: no TLS, a fixed EHLO name, 10 s timeouts.
pub fn options(port: u16) -> Options {
    let mut o = Options::new("127.0.0.1", port);
    o.session.tls = TlsMode::None;
    o.helo_name = Some("client.test".parse().unwrap());
    o.session.timeouts = Timeouts::uniform(Duration::from_secs(10));
    o.connect_timeout = Duration::from_secs(10);
    o
}

/// A body reader that produces `len` octets of text lines (some starting with a dot) without holding them.
pub struct GeneratedBody {
    pub len: usize,
    pub pos: usize,
}

impl GeneratedBody {
    pub fn new(len: usize) -> GeneratedBody {
        GeneratedBody { len, pos: 0 }
    }

    /// The octet at `i`: 64-octet lines ending in CRLF; every 7th line starts with a dot.
    pub fn byte(i: usize) -> u8 {
        let (line, col) = (i / 64, i % 64);
        match col {
            62 => b'\r',
            63 => b'\n',
            0 if line % 7 == 3 => b'.',
            _ => b'a' + ((line + col) % 26) as u8,
        }
    }

    /// The whole body, for comparisons.
    pub fn expected(len: usize) -> Vec<u8> {
        (0..len).map(GeneratedBody::byte).collect()
    }
}

impl futures_lite::AsyncRead for GeneratedBody {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
        buf: &mut [u8],
    ) -> std::task::Poll<io::Result<usize>> {
        let n = buf.len().min(self.len - self.pos);
        for (k, b) in buf[..n].iter_mut().enumerate() {
            *b = GeneratedBody::byte(self.pos + k);
        }
        self.pos += n;
        std::task::Poll::Ready(Ok(n))
    }
}
