//! A scripted SMTP server on 127.0.0.1: plays a fixed script of replies, delays, disconnects and
//! TLS upgrades to one client connection, and records every byte the client sent.
//!
//! It runs on a std thread with blocking sockets, so sync and async tests use it alike. A test
//! reads like a transcript:
//!
//! ```no_run
//! use smtp_testkit::scripted::{Script, ScriptedServer};
//!
//! let server = ScriptedServer::start(
//!     Script::new()
//!         .send(b"220 mx.test ESMTP\r\n")
//!         .on("EHLO", b"250-mx.test\r\n250 STARTTLS\r\n")
//!         .expect_line("STARTTLS")
//!         // A man in the middle smuggles a reply into the packet of the 220.
//!         .send_then_starttls(b"220 go ahead\r\n250 injected\r\n"),
//! );
//! // ... connect a client to server.addr(), trusting server.ca_pem_path() ...
//! let rec = server.join();
//! assert!(!rec.tls_established);
//! assert!(!rec.sent_command("AUTH") && !rec.sent_command("MAIL"));
//! ```
//!
//! # Bounded
//!
//! Every wait of the server (for the client to connect, to send a line, to close) is bounded by
//! the script's patience (10 s unless [`Script::patience`] says otherwise): a stuck client makes
//! the script fail (see [`Recording::failure`]), never hang the test. Writes are bounded by the
//! same patience.
//!
//! # Connections
//!
//! The server runs its script on the first connection it accepts, and closes the connection when
//! the script ends. [`ScriptedServer::start_each`] plays several scripts, one connection after
//! the other (a client that reconnects); [`ScriptedServer::start_unix`] plays one on a Unix socket
//! pair. [`ScriptedServer::connections`] counts connections, for tests that check a client
//! refused bad input before connecting.

use std::fmt;
use std::io::{self, ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{ServerConfig, ServerConnection};

/// How long the server waits for anything unless [`Script::patience`] says otherwise.
pub const DEFAULT_PATIENCE: Duration = Duration::from_secs(10);

/// How often the accept loop looks for a connection.
const ACCEPT_POLL: Duration = Duration::from_millis(2);

/// One step of a [`Script`].
#[derive(Clone)]
enum Step {
    Send(Vec<u8>),
    Drip(Vec<u8>, Duration),
    Flood(Vec<u8>, u64),
    ExpectLine(String),
    ExpectDataEnd,
    ReadAtLeast(usize),
    ReadToEof,
    Hold(Gate),
    Bdat(Vec<u8>),
    Sleep(Duration),
    Close,
    Reset,
    StartTls,
}

impl fmt::Debug for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = |b: &[u8]| {
            let s = String::from_utf8_lossy(&b[..b.len().min(60)]).into_owned();
            if b.len() > 60 { s + "…" } else { s }
        };
        match self {
            Step::Send(b) => write!(f, "send({:?})", text(b)),
            Step::Drip(b, every) => write!(f, "drip({:?}, every {every:?})", text(b)),
            Step::Flood(p, limit) => write!(f, "flood({:?}, up to {limit} bytes)", text(p)),
            Step::ExpectLine(p) => write!(f, "expect_line({p:?})"),
            Step::ExpectDataEnd => f.write_str("expect_data_end"),
            Step::ReadAtLeast(n) => write!(f, "read_at_least({n})"),
            Step::ReadToEof => f.write_str("read_to_eof"),
            Step::Hold(_) => f.write_str("hold_until(gate)"),
            Step::Bdat(reply) => write!(f, "expect_bdat({:?})", text(reply)),
            Step::Sleep(d) => write!(f, "sleep({d:?})"),
            Step::Close => f.write_str("close"),
            Step::Reset => f.write_str("reset"),
            Step::StartTls => f.write_str("starttls"),
        }
    }
}

/// What the server does, step by step, on the one connection it serves.
///
/// Build it with the methods below, each adding a step; then [`ScriptedServer::start`] it. When the
/// last step is done the server closes the connection (without a TLS close_notify).
#[derive(Clone, Debug)]
pub struct Script {
    steps: Vec<Step>,
    patience: Duration,
}

impl Default for Script {
    fn default() -> Self {
        Script::new()
    }
}

impl Script {
    /// An empty script: the server accepts a connection and closes it at once.
    pub fn new() -> Script {
        Script { steps: Vec::new(), patience: DEFAULT_PATIENCE }
    }

    /// Bounds every wait of the server (accept, reads, writes); [`DEFAULT_PATIENCE`] by default.
    pub fn patience(mut self, patience: Duration) -> Script {
        self.patience = patience;
        self
    }

    fn step(mut self, step: Step) -> Script {
        self.steps.push(step);
        self
    }

    /// Writes `bytes` in one write (one TCP segment on loopback for small writes): several replies
    /// given together arrive together.
    pub fn send(self, bytes: impl AsRef<[u8]>) -> Script {
        self.step(Step::Send(bytes.as_ref().to_vec()))
    }

    /// Writes `bytes` one byte per write, sleeping `every` before each byte: replies split into
    /// single bytes, or a server that drips its reply to defeat idle timeouts. Stops without
    /// failing when the client hangs up (see [`Recording::dripped`]).
    pub fn drip(self, bytes: impl AsRef<[u8]>, every: Duration) -> Script {
        self.step(Step::Drip(bytes.as_ref().to_vec(), every))
    }

    /// Writes `pattern` again and again, up to `limit` bytes in all, without ever holding more than
    /// one 64 KiB block of it: for replies that never end. Stops without failing when the client
    /// hangs up; [`Recording::flooded`] says how much was written.
    pub fn flood(self, pattern: impl AsRef<[u8]>, limit: u64) -> Script {
        assert!(!pattern.as_ref().is_empty(), "flood needs a pattern");
        self.step(Step::Flood(pattern.as_ref().to_vec(), limit))
    }

    /// Reads one CRLF-terminated line and checks that it starts with `prefix` (ASCII
    /// case-insensitive). The line goes to [`Recording::commands`].
    pub fn expect_line(self, prefix: &str) -> Script {
        self.step(Step::ExpectLine(prefix.to_owned()))
    }

    /// `expect_line(prefix)`, then `send(reply)`: one exchange of the dialogue.
    pub fn on(self, prefix: &str, reply: impl AsRef<[u8]>) -> Script {
        self.expect_line(prefix).send(reply)
    }

    /// Reads a DATA stream up to and including its end (`.` CRLF at the start of a line); the stream
    /// as it came over the wire, still dot-stuffed and with the terminator, goes to
    /// [`Recording::data`].
    pub fn expect_data_end(self) -> Script {
        self.step(Step::ExpectDataEnd)
    }

    /// Reads until at least `n` bytes more have arrived (any bytes, e.g. part of a body), and
    /// consumes them.
    pub fn read_at_least(self, n: usize) -> Script {
        self.step(Step::ReadAtLeast(n))
    }

    /// Reads (and records) everything until the client closes the connection; fails if the
    /// client does not close within the patience.
    pub fn read_to_eof(self) -> Script {
        self.step(Step::ReadToEof)
    }

    /// Stops reading until the test opens `gate` (the client's writes fill the socket buffers and
    /// stall), then reads and discards everything until the client closes the connection, as
    /// [`read_to_eof`](Script::read_to_eof) does. Fails if the gate is not opened within the
    /// patience. (A client that closes while its writes are stalled cannot be seen: its FIN waits
    /// behind the data the server has not read. The test knows when the client has given up.)
    pub fn hold_until(self, gate: &Gate) -> Script {
        self.step(Step::Hold(gate.clone())).step(Step::ReadToEof)
    }

    /// Reads one message's BDAT commands (RFC 3030) and their chunks, answering each with `reply`,
    /// until `BDAT n LAST`. The command lines go to [`Recording::commands`] (with, in
    /// [`Recording::followed`], whether more bytes had arrived behind the chunk), each chunk to
    /// [`Recording::chunks`].
    pub fn expect_bdat(self, reply: impl AsRef<[u8]>) -> Script {
        self.step(Step::Bdat(reply.as_ref().to_vec()))
    }

    /// Waits.
    pub fn sleep(self, duration: Duration) -> Script {
        self.step(Step::Sleep(duration))
    }

    /// Closes the connection at once, without reading what the client sent (the kernel may answer
    /// the client's next bytes with a reset) and without a TLS close_notify. Steps after it fail.
    pub fn close(self) -> Script {
        self.step(Step::Close)
    }

    /// Aborts the connection with a TCP reset (`SO_LINGER` 0, then close): the client's next read
    /// or write fails with `ConnectionReset`. Steps after it fail.
    pub fn reset(self) -> Script {
        self.step(Step::Reset)
    }

    /// Runs the server side of a TLS handshake (after the script sent its `220` to STARTTLS), with a
    /// certificate for `localhost` and `127.0.0.1` signed by the CA at
    /// [`ScriptedServer::ca_pem_path`]. Fails if the client sent anything after its STARTTLS line
    /// before the handshake, or if the handshake fails ([`Recording::tls_error`]). Later reads and
    /// writes go through TLS.
    pub fn starttls(self) -> Script {
        self.step(Step::StartTls)
    }

    /// `send(bytes)`, then [`starttls`](Script::starttls): for replies smuggled into the packet of
    /// the `220` to STARTTLS, e.g. `b"220 go\r\n250 injected\r\n"`. A client that defends itself
    /// hangs up instead of shaking hands, so the handshake fails ([`Recording::tls_error`]).
    pub fn send_then_starttls(self, bytes: impl AsRef<[u8]>) -> Script {
        self.send(bytes).starttls()
    }
}

/// Tells a script waiting in [`Script::hold_until`] to go on: cloned into the script, opened by the
/// test.
#[derive(Clone, Default)]
pub struct Gate(Arc<(Mutex<bool>, Condvar)>);

impl Gate {
    /// A closed gate.
    pub fn new() -> Gate {
        Gate::default()
    }

    /// Lets the script go on.
    pub fn open(&self) {
        let (open, changed) = &*self.0;
        *open.lock().unwrap_or_else(|e| e.into_inner()) = true;
        changed.notify_all();
    }

    /// Waits until the gate is open; false after `patience`.
    fn wait(&self, patience: Duration) -> bool {
        let (open, changed) = &*self.0;
        let guard = open.lock().unwrap_or_else(|e| e.into_inner());
        let (guard, _) =
            changed.wait_timeout_while(guard, patience, |open| !*open).unwrap_or_else(|e| e.into_inner());
        *guard
    }
}

impl fmt::Debug for Gate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let open = *self.0.0.lock().unwrap_or_else(|e| e.into_inner());
        write!(f, "Gate({})", if open { "open" } else { "closed" })
    }
}

/// What the server saw, once its script has ended.
#[derive(Clone, Debug, Default)]
pub struct Recording {
    /// Every byte received before TLS (or all of them, without TLS).
    pub plaintext: Vec<u8>,
    /// Every byte received inside TLS, decrypted.
    pub tls: Vec<u8>,
    /// The lines read by [`Script::expect_line`] (and the BDAT commands of
    /// [`Script::expect_bdat`]), without CRLF.
    pub commands: Vec<String>,
    /// For each of [`Recording::commands`]: more of the client's bytes had already arrived behind
    /// it when it was read (the client did not wait for its reply: pipelining).
    pub followed: Vec<bool>,
    /// Each DATA stream read by [`Script::expect_data_end`], as on the wire (dot-stuffed, ending with
    /// the terminator).
    pub data: Vec<Vec<u8>>,
    /// Each BDAT chunk read by [`Script::expect_bdat`], in order.
    pub chunks: Vec<Vec<u8>>,
    /// The size of each read of the client's bytes, in order (the plaintext ones first): what
    /// arrived together, see [`Recording::reads`].
    pub read_sizes: Vec<usize>,
    /// A TLS handshake succeeded.
    pub tls_established: bool,
    /// Why a TLS handshake failed, if one did.
    pub tls_error: Option<String>,
    /// The client closed (or reset) the connection while the server was reading or writing.
    pub client_closed: bool,
    /// The client ended TLS cleanly, with a close_notify alert.
    pub close_notify: bool,
    /// Bytes written by [`Script::flood`] steps before they ended.
    pub flooded: u64,
    /// Bytes written by [`Script::drip`] steps before they ended.
    pub dripped: u64,
    /// The first step that did not go as scripted (`"step N (what): why"`); `None` when the whole
    /// script ran.
    pub failure: Option<String>,
}

impl Recording {
    /// All bytes the client sent: the plaintext, then what came inside TLS.
    pub fn all(&self) -> Vec<u8> {
        let mut all = self.plaintext.clone();
        all.extend_from_slice(&self.tls);
        all
    }

    /// True if `needle` occurs anywhere in what the client sent (plaintext or TLS).
    pub fn contains(&self, needle: &[u8]) -> bool {
        [&self.plaintext, &self.tls]
            .iter()
            .any(|hay| !needle.is_empty() && hay.windows(needle.len()).any(|w| w == needle))
    }

    /// True if a line (after a CRLF or at the start, in plaintext or TLS) starts with `verb`, ASCII
    /// case-insensitive: did the client send this command at all?
    pub fn sent_command(&self, verb: &str) -> bool {
        [&self.plaintext, &self.tls].iter().any(|stream| {
            lines(stream).any(|line| {
                line.len() >= verb.len() && line[..verb.len()].eq_ignore_ascii_case(verb.as_bytes())
            })
        })
    }

    /// What each read of the server got, in order: bytes the client wrote together (one write,
    /// on loopback) arrive in one read unless they exceed the server's 16 KiB read buffer.
    pub fn reads(&self) -> Vec<&[u8]> {
        let mut reads = Vec::with_capacity(self.read_sizes.len());
        let (mut plain, mut tls) = (&self.plaintext[..], &self.tls[..]);
        for &n in &self.read_sizes {
            let from = if plain.is_empty() { &mut tls } else { &mut plain };
            let (read, rest) = from.split_at(n.min(from.len()));
            reads.push(read);
            *from = rest;
        }
        reads
    }

    /// Panics, with the transcript, unless every step of the script ran.
    #[track_caller]
    pub fn assert_complete(&self) {
        if let Some(failure) = &self.failure {
            panic!("the script did not run through: {failure}\n{self}");
        }
    }
}

/// The CRLF-separated pieces of `stream` (the last one possibly without CRLF).
fn lines(stream: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = stream;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        match find(rest, b"\r\n") {
            Some(i) => {
                let line = &rest[..i];
                rest = &rest[i + 2..];
                Some(line)
            }
            None => Some(std::mem::take(&mut rest)),
        }
    })
}

impl fmt::Display for Recording {
    /// The client's bytes as text (lossy, at most 4 KiB of each part), for failure messages.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let show = |b: &[u8]| String::from_utf8_lossy(&b[..b.len().min(4096)]).into_owned();
        write!(f, "C (plaintext): {:?}", show(&self.plaintext))?;
        if self.tls_established || !self.tls.is_empty() {
            write!(f, "\nC (TLS): {:?}", show(&self.tls))?;
        }
        if let Some(e) = &self.tls_error {
            write!(f, "\nTLS error: {e}")?;
        }
        Ok(())
    }
}

/// A scripted server listening on `127.0.0.1`; see the [module documentation](self).
pub struct ScriptedServer {
    addr: SocketAddr,
    listener: Arc<Mutex<TcpListener>>,
    handoff: Sender<TcpStream>,
    connections: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<Vec<Recording>>>,
    ca: PathBuf,
    _dir: tempfile::TempDir,
}

impl ScriptedServer {
    /// Binds `127.0.0.1:0`, generates a test CA and a server certificate (rcgen) and starts playing
    /// `script` on the first connection. Panics if it cannot (this is test support).
    pub fn start(script: Script) -> ScriptedServer {
        ScriptedServer::start_each(vec![script])
    }

    /// Like [`start`](ScriptedServer::start), with one script for each connection in turn: the
    /// first connection gets `scripts[0]`, the next one (accepted once that script has ended)
    /// `scripts[1]`, and so on. [`join_all`](ScriptedServer::join_all) returns a recording for
    /// each.
    pub fn start_each(scripts: Vec<Script>) -> ScriptedServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        listener.set_nonblocking(true).expect("non-blocking listener");
        ScriptedServer::spawn(listener, move |ctx| {
            let mut recordings = Vec::new();
            for script in scripts {
                let Some(stream) = ctx.accept(script.patience) else {
                    recordings.push(Recording {
                        failure: Some("no client connected".into()),
                        ..Recording::default()
                    });
                    break;
                };
                recordings.push(play(Sock::Tcp(stream), script, &ctx.tls));
            }
            recordings
        })
    }

    /// Plays `script` on one end of a Unix socket pair and returns the other end for the client.
    /// The server also listens on TCP, but nobody is expected there.
    pub fn start_unix(script: Script) -> (ScriptedServer, UnixStream) {
        let (client, server) = UnixStream::pair().expect("a Unix socket pair");
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        listener.set_nonblocking(true).expect("non-blocking listener");
        let server =
            ScriptedServer::spawn(listener, move |ctx| vec![play(Sock::Unix(server), script, &ctx.tls)]);
        (server, client)
    }

    fn spawn(
        listener: TcpListener,
        serve: impl FnOnce(Serving) -> Vec<Recording> + Send + 'static,
    ) -> ScriptedServer {
        let (ca_pem, cert_pem, key_pem) = crate::aio::certificates().expect("test certificates");
        let dir = crate::temp_dir("scripted").expect("temporary folder");
        let ca = dir.path().join("ca.pem");
        std::fs::write(&ca, ca_pem).expect("write the CA file");
        let tls = Arc::new(server_config(&cert_pem, &key_pem));
        let addr = listener.local_addr().expect("local address");
        let listener = Arc::new(Mutex::new(listener));
        let (handoff, handed) = mpsc::channel();
        let connections = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let ctx = Serving {
            listener: listener.clone(),
            handed,
            connections: connections.clone(),
            stop: stop.clone(),
            tls,
        };
        let thread = thread::Builder::new()
            .name(format!("scripted-smtp-{}", addr.port()))
            .spawn(move || serve(ctx))
            .expect("spawn the server thread");
        ScriptedServer { addr, listener, handoff, connections, stop, thread: Some(thread), ca, _dir: dir }
    }

    /// `127.0.0.1:port`.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// The PEM file of the test CA that signed the server's certificate (for `localhost` and
    /// `127.0.0.1`); trust it in the client to test STARTTLS.
    pub fn ca_pem_path(&self) -> &Path {
        &self.ca
    }

    /// How many connections were made to the server so far, counting those still waiting in the
    /// listen queue (a client whose `connect` returned is counted).
    pub fn connections(&self) -> usize {
        let listener = self.listener.lock().unwrap_or_else(|e| e.into_inner());
        while let Ok((stream, _)) = listener.accept() {
            self.connections.fetch_add(1, Ordering::SeqCst);
            // The server thread takes it when it waits for its next connection.
            let _ = self.handoff.send(stream);
        }
        self.connections.load(Ordering::SeqCst)
    }

    /// Waits until the script has ended (it ends by itself: every wait is bounded) and returns what
    /// the server saw (on the first connection, for [`start_each`](ScriptedServer::start_each)).
    pub fn join(self) -> Recording {
        self.join_all().into_iter().next().expect("a recording")
    }

    /// Waits until every script has ended and returns what the server saw on each connection.
    pub fn join_all(mut self) -> Vec<Recording> {
        let thread = self.thread.take().expect("joined once");
        thread.join().expect("the scripted server panicked")
    }

    /// [`join`](ScriptedServer::join), then [`Recording::assert_complete`].
    #[track_caller]
    pub fn finish(self) -> Recording {
        let rec = self.join();
        rec.assert_complete();
        rec
    }

    /// [`join_all`](ScriptedServer::join_all), then [`Recording::assert_complete`] on each.
    #[track_caller]
    pub fn finish_all(self) -> Vec<Recording> {
        let recs = self.join_all();
        for rec in &recs {
            rec.assert_complete();
        }
        recs
    }
}

impl Drop for ScriptedServer {
    fn drop(&mut self) {
        // Stops a server still waiting for its connection; a running script ends by itself.
        self.stop.store(true, Ordering::SeqCst);
    }
}

fn server_config(cert_pem: &str, key_pem: &str) -> ServerConfig {
    let certs = CertificateDer::pem_slice_iter(cert_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .expect("server certificate PEM");
    let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).expect("server key PEM");
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .expect("server configuration")
}

/// What the server thread works with.
struct Serving {
    listener: Arc<Mutex<TcpListener>>,
    /// Connections [`ScriptedServer::connections`] accepted for the thread.
    handed: Receiver<TcpStream>,
    connections: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    tls: Arc<ServerConfig>,
}

impl Serving {
    /// The next connection, within `patience`.
    fn accept(&self, patience: Duration) -> Option<TcpStream> {
        let deadline = Instant::now() + patience;
        while !self.stop.load(Ordering::SeqCst) && Instant::now() < deadline {
            if let Ok(stream) = self.handed.try_recv() {
                return Some(stream);
            }
            let accepted = self.listener.lock().unwrap_or_else(|e| e.into_inner()).accept();
            if let Ok((stream, _)) = accepted {
                self.connections.fetch_add(1, Ordering::SeqCst);
                return Some(stream);
            }
            thread::sleep(ACCEPT_POLL);
        }
        None
    }
}

/// The server's end of a connection.
enum Sock {
    Tcp(TcpStream),
    Unix(UnixStream),
}

impl Sock {
    fn setup(&self, patience: Duration) -> io::Result<()> {
        match self {
            Sock::Tcp(s) => s
                .set_nonblocking(false)
                .and_then(|()| s.set_nodelay(true))
                .and_then(|()| s.set_read_timeout(Some(patience)))
                .and_then(|()| s.set_write_timeout(Some(patience))),
            Sock::Unix(s) => {
                s.set_read_timeout(Some(patience)).and_then(|()| s.set_write_timeout(Some(patience)))
            }
        }
    }

    fn shutdown(&self) {
        let _ = match self {
            Sock::Tcp(s) => s.shutdown(Shutdown::Both),
            Sock::Unix(s) => s.shutdown(Shutdown::Both),
        };
    }

    /// Closing with `SO_LINGER` 0 sends a TCP reset (a Unix socket just closes).
    fn reset(self) {
        if let Sock::Tcp(s) = &self {
            let linger = libc::linger { l_onoff: 1, l_linger: 0 };
            // SAFETY: a valid socket descriptor, and a pointer to a `linger` of the size given.
            unsafe {
                libc::setsockopt(
                    s.as_raw_fd(),
                    libc::SOL_SOCKET,
                    libc::SO_LINGER,
                    (&linger as *const libc::linger).cast(),
                    std::mem::size_of::<libc::linger>() as libc::socklen_t,
                );
            }
        }
    }
}

impl Read for Sock {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Sock::Tcp(s) => s.read(buf),
            Sock::Unix(s) => s.read(buf),
        }
    }
}

impl Write for Sock {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Sock::Tcp(s) => s.write(buf),
            Sock::Unix(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Sock::Tcp(s) => s.flush(),
            Sock::Unix(s) => s.flush(),
        }
    }
}

/// The connection as the script sees it.
struct Conn {
    sock: Option<Sock>,
    tls: Option<Box<ServerConnection>>,
    /// Received and not yet consumed by a step.
    buf: Vec<u8>,
    rec: Recording,
    patience: Duration,
}

/// Why a step failed: the text for [`Recording::failure`].
type StepResult = Result<(), String>;

fn play(sock: Sock, script: Script, tls: &Arc<ServerConfig>) -> Recording {
    let patience = script.patience;
    let setup = sock.setup(patience);
    let mut conn = Conn { sock: Some(sock), tls: None, buf: Vec::new(), rec: Recording::default(), patience };
    if let Err(e) = setup {
        conn.rec.failure = Some(format!("socket setup: {e}"));
        return conn.rec;
    }
    for (i, step) in script.steps.iter().enumerate() {
        if let Err(why) = conn.run(step, tls) {
            conn.rec.failure = Some(format!("step {i} ({step:?}): {why}"));
            break;
        }
    }
    conn.rec
}

impl Conn {
    fn run(&mut self, step: &Step, tls: &Arc<ServerConfig>) -> StepResult {
        match step {
            Step::Send(bytes) => self.write(bytes).map_err(|e| format!("write failed: {e}")),
            Step::Drip(bytes, every) => {
                for b in bytes {
                    thread::sleep(*every);
                    if self.write(std::slice::from_ref(b)).is_err() {
                        self.rec.client_closed = true;
                        return Ok(());
                    }
                    self.rec.dripped += 1;
                }
                Ok(())
            }
            Step::Flood(pattern, limit) => {
                let block: Vec<u8> = pattern.iter().copied().cycle().take(64 * 1024).collect();
                while self.rec.flooded < *limit {
                    let n = (*limit - self.rec.flooded).min(block.len() as u64) as usize;
                    if self.write(&block[..n]).is_err() {
                        self.rec.client_closed = true;
                        return Ok(());
                    }
                    self.rec.flooded += n as u64;
                }
                Ok(())
            }
            Step::ExpectLine(prefix) => {
                let line = self.command()?;
                let ok = line.len() >= prefix.len()
                    && line.as_bytes()[..prefix.len()].eq_ignore_ascii_case(prefix.as_bytes());
                if ok {
                    Ok(())
                } else {
                    Err(format!("expected a line starting with {prefix:?}, got {line:?}"))
                }
            }
            Step::ExpectDataEnd => {
                let mut scan = 0;
                loop {
                    let end = if self.buf.starts_with(b".\r\n") {
                        Some(3)
                    } else {
                        find(&self.buf[scan..], b"\r\n.\r\n").map(|i| scan + i + 5)
                    };
                    if let Some(end) = end {
                        let data = self.buf.drain(..end).collect();
                        self.rec.data.push(data);
                        return Ok(());
                    }
                    scan = self.buf.len().saturating_sub(4);
                    self.fill("the end of data")?;
                }
            }
            Step::ReadAtLeast(n) => {
                while self.buf.len() < *n {
                    self.fill(&format!("{n} bytes"))?;
                }
                self.buf.drain(..*n);
                Ok(())
            }
            Step::ReadToEof => {
                self.buf.clear();
                loop {
                    match self.read_some() {
                        Ok(0) => {
                            self.rec.client_closed = true;
                            return Ok(());
                        }
                        Ok(_) => self.buf.clear(),
                        Err(e) if is_timeout(&e) => {
                            return Err(format!("the client did not close within {:?}", self.patience));
                        }
                        Err(_) => {
                            self.rec.client_closed = true;
                            return Ok(());
                        }
                    }
                }
            }
            Step::Bdat(reply) => loop {
                let line = self.command()?;
                let mut words = line.split(' ');
                let size = match (words.next(), words.next().map(str::parse::<usize>)) {
                    (Some(verb), Some(Ok(size))) if verb.eq_ignore_ascii_case("BDAT") => size,
                    _ => return Err(format!("expected BDAT <size> [LAST], got {line:?}")),
                };
                let last = words.next().is_some_and(|w| w.eq_ignore_ascii_case("LAST"));
                while self.buf.len() < size {
                    self.fill(&format!("a BDAT chunk of {size} bytes"))?;
                }
                let chunk = self.buf.drain(..size).collect();
                self.rec.chunks.push(chunk);
                // Whether the client went on without waiting counts after the chunk.
                if let Some(followed) = self.rec.followed.last_mut() {
                    *followed = !self.buf.is_empty();
                }
                self.write(reply).map_err(|e| format!("write failed: {e}"))?;
                if last {
                    return Ok(());
                }
            },
            Step::Hold(gate) => {
                if gate.wait(self.patience) {
                    Ok(())
                } else {
                    Err(format!("the gate was not opened within {:?}", self.patience))
                }
            }
            Step::Sleep(d) => {
                thread::sleep(*d);
                Ok(())
            }
            Step::Close => {
                self.tls = None;
                match self.sock.take() {
                    Some(sock) => {
                        sock.shutdown();
                        Ok(())
                    }
                    None => Err("already closed".into()),
                }
            }
            Step::Reset => {
                self.tls = None;
                match self.sock.take() {
                    Some(sock) => {
                        sock.reset();
                        Ok(())
                    }
                    None => Err("already closed".into()),
                }
            }
            Step::StartTls => self.starttls(tls),
        }
    }

    fn starttls(&mut self, config: &Arc<ServerConfig>) -> StepResult {
        if !self.buf.is_empty() {
            return Err(format!(
                "the client sent {:?} after STARTTLS, before the handshake",
                String::from_utf8_lossy(&self.buf)
            ));
        }
        if self.tls.is_some() {
            return Err("already TLS".into());
        }
        let sock = self.sock.as_mut().ok_or("connection closed")?;
        let mut conn = ServerConnection::new(config.clone()).map_err(|e| e.to_string())?;
        while conn.is_handshaking() {
            match conn.complete_io(sock) {
                Ok((0, 0)) if conn.is_handshaking() && conn.wants_read() => {
                    let why = "the client closed during the handshake".to_string();
                    self.rec.client_closed = true;
                    self.rec.tls_error = Some(why.clone());
                    return Err(format!("TLS handshake failed: {why}"));
                }
                Ok(_) => {}
                Err(e) => {
                    let why = e.to_string();
                    if !is_timeout(&e) {
                        self.rec.client_closed = true;
                    }
                    self.rec.tls_error = Some(why.clone());
                    return Err(format!("TLS handshake failed: {why}"));
                }
            }
        }
        self.tls = Some(Box::new(conn));
        self.rec.tls_established = true;
        Ok(())
    }

    fn write(&mut self, bytes: &[u8]) -> io::Result<()> {
        let sock = self
            .sock
            .as_mut()
            .ok_or_else(|| io::Error::new(ErrorKind::NotConnected, "closed by the script"))?;
        match &mut self.tls {
            Some(tls) => {
                let mut stream = rustls::Stream::new(&mut **tls, sock);
                stream.write_all(bytes)?;
                stream.flush()
            }
            None => sock.write_all(bytes),
        }
    }

    /// One read; appends to the buffer and the recording.
    fn read_some(&mut self) -> io::Result<usize> {
        let sock = self
            .sock
            .as_mut()
            .ok_or_else(|| io::Error::new(ErrorKind::NotConnected, "closed by the script"))?;
        let mut chunk = [0u8; 16 * 1024];
        let n = loop {
            let r = match &mut self.tls {
                Some(tls) => rustls::Stream::new(&mut **tls, sock).read(&mut chunk),
                None => sock.read(&mut chunk),
            };
            match r {
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                other => break other?,
            }
        };
        let data = &chunk[..n];
        if n == 0 && self.tls.is_some() {
            // rustls says end of stream only after a close_notify (an unclean end is an error).
            self.rec.close_notify = true;
        }
        if n > 0 {
            self.rec.read_sizes.push(n);
        }
        self.buf.extend_from_slice(data);
        if self.tls.is_some() {
            self.rec.tls.extend_from_slice(data);
        } else {
            self.rec.plaintext.extend_from_slice(data);
        }
        Ok(n)
    }

    /// Reads more for a step waiting for `what`; an error when nothing more will come.
    fn fill(&mut self, what: &str) -> StepResult {
        match self.read_some() {
            Ok(0) => {
                self.rec.client_closed = true;
                Err(format!("the client closed before {what}"))
            }
            Ok(_) => Ok(()),
            Err(e) if is_timeout(&e) => {
                Err(format!("the client sent nothing for {:?} (waiting for {what})", self.patience))
            }
            Err(e) => {
                if e.kind() != ErrorKind::NotConnected {
                    self.rec.client_closed = true;
                }
                Err(format!("read failed waiting for {what}: {e}"))
            }
        }
    }

    /// The next line, recorded as a command (with whether more bytes were already behind it).
    fn command(&mut self) -> Result<String, String> {
        let line = self.line()?;
        self.rec.commands.push(line.clone());
        self.rec.followed.push(!self.buf.is_empty());
        Ok(line)
    }

    /// The next CRLF-terminated line, without CRLF.
    fn line(&mut self) -> Result<String, String> {
        let mut scan = 0;
        loop {
            if let Some(i) = find(&self.buf[scan..], b"\r\n") {
                let end = scan + i;
                let line = String::from_utf8_lossy(&self.buf[..end]).into_owned();
                self.buf.drain(..end + 2);
                return Ok(line);
            }
            scan = self.buf.len().saturating_sub(1);
            self.fill("a line")?;
        }
    }
}

fn is_timeout(e: &io::Error) -> bool {
    matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut)
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::BufRead;

    fn connect(server: &ScriptedServer) -> TcpStream {
        let s = TcpStream::connect(server.addr()).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s
    }

    #[test]
    fn plays_and_records_a_dialogue() {
        let server = ScriptedServer::start(
            Script::new()
                .send(b"220 hi\r\n")
                .on("EHLO", b"250 ok\r\n")
                .on("DATA", b"354 go\r\n")
                .expect_data_end()
                .send(b"250 queued\r\n")
                .read_to_eof(),
        );
        let mut c = connect(&server);
        let mut r = io::BufReader::new(c.try_clone().unwrap());
        let mut line = String::new();
        r.read_line(&mut line).unwrap();
        assert_eq!(line, "220 hi\r\n");
        c.write_all(b"ehlo x\r\nDATA\r\n").unwrap();
        c.write_all(b"a\r\n..b\r\n.\r\n").unwrap();
        for want in ["250 ok\r\n", "354 go\r\n", "250 queued\r\n"] {
            line.clear();
            r.read_line(&mut line).unwrap();
            assert_eq!(line, want);
        }
        drop((c, r));
        let rec = server.finish();
        assert_eq!(rec.commands, ["ehlo x", "DATA"]);
        assert_eq!(rec.data, [b"a\r\n..b\r\n.\r\n".to_vec()]);
        assert!(rec.client_closed);
        assert!(rec.sent_command("EHLO") && !rec.sent_command("MAIL"));
    }

    #[test]
    fn a_wrong_line_fails_the_script() {
        let server = ScriptedServer::start(Script::new().expect_line("EHLO").send(b"250 ok\r\n"));
        let mut c = connect(&server);
        c.write_all(b"HELO x\r\n").unwrap();
        let rec = server.join();
        let failure = rec.failure.expect("a failure");
        assert!(failure.contains("step 0") && failure.contains("HELO x"), "{failure}");
    }

    #[test]
    fn counts_connections_and_gives_up_without_one() {
        let server = ScriptedServer::start(Script::new().patience(Duration::from_millis(200)));
        assert_eq!(server.connections(), 0);
        let rec = server.join();
        assert_eq!(rec.failure.as_deref(), Some("no client connected"));

        let server = ScriptedServer::start(Script::new().read_to_eof());
        let c = TcpStream::connect(server.addr()).unwrap();
        assert_eq!(server.connections(), 1);
        drop(c);
        server.finish();
    }

    #[test]
    fn flood_stops_when_the_client_hangs_up() {
        let server = ScriptedServer::start(Script::new().flood(b"x", 1 << 30));
        let mut c = connect(&server);
        let mut got = [0u8; 1024];
        c.read_exact(&mut got).unwrap();
        assert!(got.iter().all(|&b| b == b'x'));
        drop(c);
        let rec = server.finish();
        assert!(rec.client_closed);
        assert!(rec.flooded >= 1024 && rec.flooded < 1 << 30);
    }

    #[test]
    fn records_bdat_chunks_what_came_together_and_what_was_pipelined() {
        let server = ScriptedServer::start(
            Script::new()
                .on("EHLO", b"250 ok\r\n")
                .expect_line("MAIL")
                .expect_line("RCPT")
                .send(b"250 ok\r\n250 ok\r\n")
                .expect_bdat(b"250 chunk\r\n")
                .read_to_eof(),
        );
        let mut c = connect(&server);
        c.write_all(b"EHLO x\r\n").unwrap();
        let mut got = [0u8; 8];
        c.read_exact(&mut got).unwrap();
        c.write_all(b"MAIL FROM:<a@b.c>\r\nRCPT TO:<d@e.f>\r\n").unwrap();
        let mut got = [0u8; 16];
        c.read_exact(&mut got).unwrap();
        c.write_all(b"BDAT 3\r\nabc").unwrap();
        let mut got = [0u8; 11];
        c.read_exact(&mut got).unwrap();
        c.write_all(b"BDAT 2 LAST\r\nde").unwrap();
        c.read_exact(&mut got).unwrap();
        drop(c);
        let rec = server.finish();
        assert_eq!(rec.commands, ["EHLO x", "MAIL FROM:<a@b.c>", "RCPT TO:<d@e.f>", "BDAT 3", "BDAT 2 LAST"]);
        assert_eq!(rec.followed, [false, true, false, false, false]);
        assert_eq!(rec.chunks, [b"abc".to_vec(), b"de".to_vec()]);
        let reads = rec.reads();
        assert_eq!(reads[1], b"MAIL FROM:<a@b.c>\r\nRCPT TO:<d@e.f>\r\n");
        assert_eq!(reads.concat(), rec.plaintext);
    }

    #[test]
    fn serves_connections_in_turn() {
        let server = ScriptedServer::start_each(vec![
            Script::new().send(b"220 one\r\n"),
            Script::new().send(b"220 two\r\n").on("QUIT", b"221 bye\r\n"),
        ]);
        let mut got = String::new();
        connect(&server).read_to_string(&mut got).unwrap();
        assert_eq!(got, "220 one\r\n");
        let mut c = connect(&server);
        c.write_all(b"QUIT\r\n").unwrap();
        got.clear();
        c.read_to_string(&mut got).unwrap();
        assert_eq!(got, "220 two\r\n221 bye\r\n");
        let recs = server.finish_all();
        assert_eq!(recs.len(), 2);
        assert_eq!(recs[1].commands, ["QUIT"]);
    }

    #[test]
    fn a_reset_is_a_connection_reset() {
        let server = ScriptedServer::start(Script::new().send(b"220 hi\r\n").expect_line("QUIT").reset());
        let mut c = connect(&server);
        c.write_all(b"QUIT\r\n").unwrap();
        let mut got = Vec::new();
        let err = c.read_to_end(&mut got).expect_err("a reset");
        assert_eq!(err.kind(), ErrorKind::ConnectionReset);
        server.finish();
    }

    #[test]
    fn plays_on_a_unix_socket() {
        let (server, mut c) =
            ScriptedServer::start_unix(Script::new().send(b"220 hi\r\n").on("QUIT", b"221 bye\r\n"));
        c.write_all(b"QUIT\r\n").unwrap();
        let mut got = String::new();
        c.read_to_string(&mut got).unwrap();
        assert_eq!(got, "220 hi\r\n221 bye\r\n");
        assert_eq!(server.finish().commands, ["QUIT"]);
    }

    #[test]
    fn hold_reads_nothing_until_the_gate_opens_then_waits_for_the_close() {
        let gate = Gate::new();
        let server = ScriptedServer::start(Script::new().send(b"220 hi\r\n").hold_until(&gate));
        let mut c = connect(&server);
        let mut got = [0u8; 8];
        c.read_exact(&mut got).unwrap();
        c.write_all(b"read after the gate opened\r\n").unwrap();
        std::thread::sleep(Duration::from_millis(50));
        gate.open();
        drop(c);
        let rec = server.finish();
        assert!(rec.client_closed);
        assert_eq!(rec.plaintext, b"read after the gate opened\r\n");
    }

    #[test]
    fn a_silent_client_times_out() {
        let server =
            ScriptedServer::start(Script::new().patience(Duration::from_millis(100)).expect_line("EHLO"));
        let _c = connect(&server);
        let rec = server.join();
        assert!(rec.failure.expect("failure").contains("sent nothing"));
    }
}
