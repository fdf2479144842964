//! Blocking driver for the sans-IO SMTP core [`smtp_proto`]: a thin loop over `std::net` (or any
//! [`Socket`]) with rustls for implicit TLS and STARTTLS.
//!
//! The driver moves bytes, waits, upgrades to TLS when the core asks and feeds the message body; every
//! protocol decision (pipelining, DATA or BDAT, per-recipient outcomes, timeouts) is the core's. Waits are
//! bounded by the core's deadlines ([`Client::poll_timeout`]) through the socket's read timeout, and writes
//! by a write timeout of [`Timeouts::data_block`](smtp_proto::Timeouts::data_block), so a stuck server
//! cannot block the caller forever.
//!
//! ```no_run
//! use smtp_blocking::SmtpClient;
//! use smtp_proto::{Envelope, Outcome};
//! use smtp_transport::Options;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let options = Options::from_url("smtp://alice:secret@mail.example.org")?;
//! let mut client = SmtpClient::connect(&options)?;
//! let envelope = Envelope::parse("alice@example.org", &["bob@example.org"])?;
//! let body = std::fs::File::open("message.eml")?; // streamed, never read whole
//! let report = client.send(envelope, body)?;
//! assert_eq!(report.outcome, Outcome::Sent);
//! client.quit()?;
//! # Ok(())
//! # }
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs, unreachable_pub)]

use std::fmt;
use std::io::{self, ErrorKind, Read, Write};
use std::mem;
use std::net::{IpAddr, TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::pki_types::ServerName;
use rustls::{ClientConnection, StreamOwned};
use smtp_proto::ehlo::Capabilities;
use smtp_proto::{ApiMisuse, Client, Event, MessageId, State, TlsMode};
use tracing::{Level, Span, debug, debug_span, info_span};

pub use smtp_proto::{Envelope, MessageReport, Outcome, SendError};
pub use smtp_transport::{Error, Options};
pub use {smtp_proto, smtp_transport};

/// Size of the buffer the server's bytes are read into (one per session).
const READ_BUF: usize = 16 * 1024;
/// Size of the buffer the message body is read into (one per session, allocated by the first send).
const BODY_BUF: usize = 64 * 1024;
/// `set_read_timeout` refuses zero: the shortest wait.
const MIN_WAIT: Duration = Duration::from_millis(1);
/// The longest single read wait. Deadlines further away are reached in steps of this size, so the socket
/// timeout keeps one value through a busy session and is not set again before every read (a system call
/// each time, two a message).
const MAX_WAIT: Duration = Duration::from_secs(1);

/// A blocking byte stream the driver can bound in time: what [`SmtpClient::from_stream`] takes.
pub trait Socket: Read + Write {
    /// Bounds each following read (`None`: no bound). A read that times out fails with
    /// [`ErrorKind::WouldBlock`] or [`ErrorKind::TimedOut`].
    fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()>;
    /// Bounds each following write, as [`Socket::set_read_timeout`] does reads.
    fn set_write_timeout(&self, timeout: Option<Duration>) -> io::Result<()>;
    /// The local address, for the default EHLO name (an address literal). `None` when there is none.
    fn local_ip(&self) -> Option<IpAddr> {
        None
    }
}

impl Socket for TcpStream {
    fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        TcpStream::set_read_timeout(self, timeout)
    }
    fn set_write_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        TcpStream::set_write_timeout(self, timeout)
    }
    fn local_ip(&self) -> Option<IpAddr> {
        self.local_addr().ok().map(|a| a.ip())
    }
}

#[cfg(unix)]
impl Socket for std::os::unix::net::UnixStream {
    fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        std::os::unix::net::UnixStream::set_read_timeout(self, timeout)
    }
    fn set_write_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        std::os::unix::net::UnixStream::set_write_timeout(self, timeout)
    }
}

/// The connection, plain or wrapped in TLS; `Closed` once dropped (or while being upgraded).
enum Conn<S: Socket> {
    Plain(S),
    Tls(Box<StreamOwned<ClientConnection, S>>),
    Closed,
}

impl<S: Socket> Conn<S> {
    fn socket(&self) -> Option<&S> {
        match self {
            Conn::Plain(s) => Some(s),
            Conn::Tls(t) => Some(&t.sock),
            Conn::Closed => None,
        }
    }

    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Conn::Plain(s) => s.read(buf),
            Conn::Tls(t) => t.read(buf),
            Conn::Closed => Ok(0),
        }
    }

    fn write_all(&mut self, data: &[u8]) -> io::Result<()> {
        match self {
            Conn::Plain(s) => s.write_all(data),
            // rustls buffers the records: flush pushes them to the socket and reports its errors.
            Conn::Tls(t) => t.write_all(data).and_then(|()| t.flush()),
            Conn::Closed => Err(ErrorKind::NotConnected.into()),
        }
    }
}

/// What the TLS handshake needs, built once per session when TLS may be used.
struct TlsSetup {
    config: Arc<rustls::ClientConfig>,
    name: ServerName<'static>,
    /// Bound on one handshake (implicit TLS counts it from the connect's start, STARTTLS from the 220).
    timeout: Duration,
}

impl TlsSetup {
    fn new(options: &Options) -> Result<Option<TlsSetup>, Error> {
        if options.session.tls == TlsMode::None {
            return Ok(None);
        }
        Ok(Some(TlsSetup {
            config: options.tls_config()?,
            name: options.server_name()?,
            timeout: options.connect_timeout,
        }))
    }

    /// Runs the whole handshake on `sock`, each read and write bounded by what is left until `deadline`.
    fn handshake<S: Socket>(
        &self,
        mut sock: S,
        deadline: Instant,
        write_timeout: Duration,
    ) -> Result<StreamOwned<ClientConnection, S>, Error> {
        let mut conn = ClientConnection::new(self.config.clone(), self.name.clone())
            .map_err(|e| Error::Tls(io::Error::other(e)))?;
        while conn.is_handshaking() {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(Error::Tls(io::Error::new(
                    ErrorKind::TimedOut,
                    "TLS handshake timed out",
                )));
            }
            sock.set_read_timeout(Some(left)).map_err(Error::Tls)?;
            sock.set_write_timeout(Some(left)).map_err(Error::Tls)?;
            conn.complete_io(&mut sock).map_err(Error::Tls)?;
        }
        sock.set_write_timeout(Some(write_timeout.max(MIN_WAIT))).map_err(Error::Tls)?;
        Ok(StreamOwned::new(conn, sock))
    }
}

/// One SMTP (or LMTP) session over a blocking connection: [`connect`](SmtpClient::connect), then
/// [`send`](SmtpClient::send) any number of messages, then [`quit`](SmtpClient::quit).
///
/// `S` is the plain transport: a [`TcpStream`] from [`SmtpClient::connect`], or any [`Socket`] given to
/// [`SmtpClient::from_stream`]. TLS (implicit or STARTTLS) wraps it with rustls; certificate and host-name
/// checks are always on.
///
/// ```no_run
/// use smtp_blocking::SmtpClient;
/// use smtp_proto::Envelope;
/// use smtp_transport::Options;
///
/// # fn main() -> Result<(), smtp_blocking::Error> {
/// let mut client = SmtpClient::connect(&Options::from_url("smtp://127.0.0.1:2525?tls=none")?)?;
/// for to in ["bob@example.org", "carol@example.org"] {
///     let envelope = Envelope::parse("alice@example.org", &[to]).expect("valid addresses");
///     let body = &b"Subject: hello\r\n\r\nHi!\r\n"[..];
///     let report = client.send_with_progress(envelope, body, |sent, total| {
///         println!("{sent} of {total:?} octets");
///     })?;
///     println!("{to}: {:?}", report.outcome);
/// }
/// client.quit()
/// # }
/// ```
pub struct SmtpClient<S: Socket = TcpStream> {
    core: Client,
    conn: Conn<S>,
    tls: Option<TlsSetup>,
    origin: Instant,
    rbuf: Box<[u8]>,
    wbuf: Vec<u8>,
    body_buf: Box<[u8]>,
    /// The IO or TLS failure that is ending the session, until the core's `Closed` takes it.
    io_error: Option<Error>,
    /// The read timeout last set on the socket (`None` until the first read).
    read_timeout: Option<Option<Duration>>,
    close_reason: Option<Error>,
    span: Span,
}

impl<S: Socket> fmt::Debug for SmtpClient<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmtpClient")
            .field("state", &self.core.state())
            .field("is_tls", &self.core.is_tls())
            .field("close_reason", &self.close_reason)
            .finish_non_exhaustive()
    }
}

impl SmtpClient<TcpStream> {
    /// Connects to `options.host:options.port` and runs the session up to the point where mail can be sent:
    /// greeting, EHLO, STARTTLS, AUTH. DNS and the TCP connect (and, for [`TlsMode::Implicit`], the TLS
    /// handshake) are bounded by `options.connect_timeout` (DNS resolution itself is the system's);
    /// TCP_NODELAY is set.
    ///
    /// Fails with [`Error::Connect`] when no address accepts the connection, [`Error::Tls`] when the
    /// handshake fails, and [`Error::Session`] when the core ends the session (a refused AUTH, STARTTLS
    /// required but not offered, a 421 or 554 greeting, a timeout…).
    pub fn connect(options: &Options) -> Result<Self, Error> {
        let span = session_span(options);
        let _entered = span.enter();
        options.validate()?;
        let tls = TlsSetup::new(options)?;
        let deadline = Instant::now() + options.connect_timeout;
        let addrs =
            (options.host.as_str(), options.port).to_socket_addrs().map_err(Error::Connect)?;
        let mut last = None;
        for addr in addrs {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                last = Some(io::Error::new(ErrorKind::TimedOut, "connect timed out"));
                break;
            }
            match TcpStream::connect_timeout(&addr, left) {
                Ok(stream) => {
                    debug!(%addr, "connected");
                    stream.set_nodelay(true).map_err(Error::Connect)?;
                    return Self::start(stream, options, tls, deadline, span.clone());
                }
                Err(e) => {
                    debug!(%addr, error = %e, "connect failed");
                    last = Some(e);
                }
            }
        }
        Err(Error::Connect(last.unwrap_or_else(|| {
            io::Error::new(ErrorKind::NotFound, "the host name has no address")
        })))
    }
}

impl<S: Socket> SmtpClient<S> {
    /// Runs the session, like [`SmtpClient::connect`], on a stream the caller connected. With
    /// [`TlsMode::Implicit`] the driver still does the TLS handshake (bounded by `options.connect_timeout`).
    /// Setting TCP_NODELAY, if the stream has it, is the caller's job.
    pub fn from_stream(stream: S, options: &Options) -> Result<Self, Error> {
        let span = session_span(options);
        let _entered = span.enter();
        options.validate()?;
        let tls = TlsSetup::new(options)?;
        let deadline = Instant::now() + options.connect_timeout;
        Self::start(stream, options, tls, deadline, span.clone())
    }

    fn start(
        sock: S,
        options: &Options,
        tls: Option<TlsSetup>,
        deadline: Instant,
        span: Span,
    ) -> Result<Self, Error> {
        let write_timeout = options.session.timeouts.data_block.max(MIN_WAIT);
        let helo = options.helo_name_for(sock.local_ip());
        let mut config = options.session.clone();
        config.transcript |= tracing::enabled!(Level::DEBUG);
        let conn = match (&tls, options.session.tls) {
            (Some(tls), TlsMode::Implicit) => {
                Conn::Tls(Box::new(tls.handshake(sock, deadline, write_timeout)?))
            }
            _ => {
                sock.set_write_timeout(Some(write_timeout)).map_err(Error::Io)?;
                Conn::Plain(sock)
            }
        };
        let mut client = SmtpClient {
            core: Client::new(helo, config, Duration::ZERO),
            conn,
            tls,
            origin: Instant::now(),
            rbuf: vec![0; READ_BUF].into_boxed_slice(),
            wbuf: Vec::new(),
            body_buf: Box::default(),
            io_error: None,
            read_timeout: None,
            close_reason: None,
            span,
        };
        loop {
            match client.next_event() {
                Event::Ready => return Ok(client),
                Event::Closed { .. } => return Err(client.take_close_reason()),
                Event::Authenticated(mechanism) => debug!(?mechanism, "authenticated"),
                _ => {}
            }
        }
    }

    /// Sends one message: the envelope, then `body` streamed through a fixed 64 KiB buffer (never read
    /// whole). Line endings may be anything (bare CR and LF become CRLF); dots are stuffed by the core.
    ///
    /// `Ok(report)` whenever the message got an outcome, which the report gives: [`Outcome::Sent`]
    /// (possibly with refused recipients), [`Outcome::Rejected`] (a 4xx/5xx, no recipient accepted, or the
    /// session died before the end of data) or [`Outcome::Unknown`] (the session died after the final dot:
    /// it may have been delivered). When the session died, [`SmtpClient::close_reason`] says why and the
    /// next send fails with `Refused(Misuse(NotConnected))`.
    ///
    /// `Err` when the message never started ([`Error::Refused`]) or reading `body` failed
    /// ([`Error::Body`]: the session is aborted).
    ///
    /// [`Outcome::Sent`]: smtp_proto::Outcome::Sent
    /// [`Outcome::Rejected`]: smtp_proto::Outcome::Rejected
    /// [`Outcome::Unknown`]: smtp_proto::Outcome::Unknown
    pub fn send(&mut self, envelope: Envelope, body: impl Read) -> Result<MessageReport, Error> {
        self.send_with_progress(envelope, body, |_, _| {})
    }

    /// Like [`SmtpClient::send`], calling `progress(sent, total)` as body octets are accepted (`total` is
    /// the envelope's declared size, if any).
    pub fn send_with_progress(
        &mut self,
        envelope: Envelope,
        mut body: impl Read,
        mut progress: impl FnMut(u64, Option<u64>),
    ) -> Result<MessageReport, Error> {
        let span = self.span.clone();
        let _session = span.enter();
        let id = self.core.send_message(envelope).map_err(Error::Refused)?;
        let _message = debug_span!("message", id = id.get()).entered();
        if self.body_buf.is_empty() {
            self.body_buf = vec![0; BODY_BUF].into_boxed_slice();
        }
        let mut pump = Pump::default();
        loop {
            match self.next_event() {
                Event::BodyRequested { id: i } | Event::BodyWritable { id: i } if i == id => {
                    self.pump(id, &mut body, &mut pump)?;
                }
                Event::Progress { id: i, sent, total } if i == id => progress(sent, total),
                Event::MessageDone(report) if report.id == id => {
                    debug!(outcome = ?report.outcome, "message done");
                    self.settle();
                    return Ok(report);
                }
                // The core reports every message before Closed: not reached while it keeps its promise.
                Event::Closed { .. } => return Err(self.take_close_reason()),
                _ => {}
            }
        }
    }

    /// Sends several messages one after the other, handing each report to `on_report` in order.
    ///
    /// With PIPELINING, each next message's MAIL, RCPT and DATA leave in the same write as the previous
    /// final dot (RFC 2920 §3.1), so a message costs one round trip instead of two; without it, this is
    /// `send` in a loop. Bodies are streamed, never held whole. A message refused before any of its bytes
    /// (SIZE, 8BITMIME, LIMITS…) ends the batch: the messages already handed over get their reports, then
    /// the refusal is returned. Reading a body failing aborts the session ([`Error::Body`]).
    pub fn send_all<R: Read>(
        &mut self,
        messages: impl IntoIterator<Item = (Envelope, R)>,
        mut on_report: impl FnMut(MessageReport),
    ) -> Result<(), Error> {
        let span = self.span.clone();
        let _session = span.enter();
        if self.body_buf.is_empty() {
            self.body_buf = vec![0; BODY_BUF].into_boxed_slice();
        }
        let mut messages = messages.into_iter();
        // The message whose body is being written; the next one starts as soon as this one's body is done.
        let mut writing: Option<(MessageId, R, Pump)> = None;
        let mut in_flight = 0usize;
        let mut refused: Option<Error> = None;
        loop {
            if writing.is_none() && refused.is_none() && self.core.is_closed() {
                // The session ended (its Closed is queued): report that, not a refusal of the next message.
                self.settle();
                return Err(self.take_close_reason());
            }
            if writing.is_none() && refused.is_none() {
                if let Some((envelope, body)) = messages.next() {
                    match self.core.send_message(envelope) {
                        Ok(id) => {
                            writing = Some((id, body, Pump::default()));
                            in_flight += 1;
                        }
                        Err(e) => refused = Some(Error::Refused(e)),
                    }
                } else if in_flight == 0 {
                    self.settle();
                    return Ok(());
                }
            }
            if in_flight == 0 {
                if let Some(e) = refused {
                    self.settle();
                    return Err(e);
                }
            }
            match self.next_event() {
                Event::BodyRequested { id } | Event::BodyWritable { id }
                    if writing.as_ref().is_some_and(|w| w.0 == id) =>
                {
                    let (id, body, pump) = writing.as_mut().expect("checked above");
                    self.pump(*id, body, pump)?;
                    if pump.finished {
                        writing = None;
                    }
                }
                Event::MessageDone(report) => {
                    in_flight -= 1;
                    if writing.as_ref().is_some_and(|w| w.0 == report.id) {
                        writing = None;
                    }
                    on_report(report);
                }
                Event::Closed { .. } => return Err(self.take_close_reason()),
                _ => {}
            }
        }
    }

    /// Ends the session: QUIT, wait for the 221 (or the server's close), TLS close_notify, close.
    /// `Ok` also when the session had already ended (see [`SmtpClient::close_reason`]).
    pub fn quit(mut self) -> Result<(), Error> {
        let span = self.span.clone();
        let _session = span.enter();
        if self.core.is_closed() {
            return Ok(());
        }
        self.core.quit();
        loop {
            if let Event::Closed { reason } = self.next_event() {
                return match reason {
                    None => Ok(()),
                    Some(_) => Err(self.take_close_reason()),
                };
            }
        }
    }

    /// The server's capabilities from the latest EHLO (or LHLO), once known.
    pub fn capabilities(&self) -> Option<&Capabilities> {
        self.core.capabilities()
    }

    /// True when the session is encrypted (implicit TLS or STARTTLS).
    pub fn is_tls(&self) -> bool {
        self.core.is_tls()
    }

    /// Why the session ended, when it ended with an error: the IO or TLS failure when there was one
    /// ([`Error::Io`], [`Error::Tls`]), else the core's reason ([`Error::Session`]). `None` while the
    /// session lives and after a clean QUIT.
    pub fn close_reason(&self) -> Option<&Error> {
        self.close_reason.as_ref()
    }

    fn now(&self) -> Duration {
        self.origin.elapsed()
    }

    fn take_close_reason(&mut self) -> Error {
        self.close_reason.take().unwrap_or(Error::Session(smtp_proto::Error::UnexpectedEof))
    }

    /// Writes everything the core has to send; returns true if there was anything.
    fn transmit(&mut self) -> bool {
        let mut any = false;
        while self.core.poll_transmit(self.now(), &mut self.wbuf) > 0 {
            any = true;
            let result = self.conn.write_all(&self.wbuf);
            self.wbuf.clear();
            if let Err(e) = result {
                debug!(error = %e, "write failed");
                if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) {
                    // The write timeout is the data-block timeout: the core names the phase.
                    self.core.handle_timeout(self.now());
                    if self.core.is_closed() {
                        self.conn = Conn::Closed;
                        continue;
                    }
                }
                self.fail_io(Error::Io(e));
            }
        }
        any
    }

    /// The connection is broken: drop it (no close_notify), keep the cause, let the core settle.
    /// When the core had already closed (e.g. a QUIT written after a 421 hits a closed socket), the
    /// core's reason stands.
    fn fail_io(&mut self, e: Error) {
        self.conn = Conn::Closed;
        if !self.core.is_closed() {
            self.io_error.get_or_insert(e);
            self.core.handle_eof(self.now());
        }
    }

    /// Drives the session until the core has an event for the caller. Transcript lines are logged, STARTTLS
    /// is done here, and `Closed` records the close reason and closes the connection before it is returned.
    fn next_event(&mut self) -> Event {
        loop {
            if self.transmit() {
                continue;
            }
            match self.core.poll_event() {
                Some(event) => {
                    if let Some(event) = self.on_event(event) {
                        return event;
                    }
                }
                None => self.wait(),
            }
        }
    }

    /// Handles what the driver itself acts on; gives back what the caller should see.
    fn on_event(&mut self, event: Event) -> Option<Event> {
        match event {
            Event::Transcript { from_server, line } => {
                debug!(target: "smtp_transcript", "{} {line}", if from_server { "S:" } else { "C:" });
                None
            }
            // The core drops StartTls when it fails the session; the state check is a second guard against a
            // handshake on a connection it has condemned.
            Event::StartTls if self.core.state() == State::AwaitingTls => {
                self.upgrade();
                None
            }
            Event::StartTls => None,
            Event::Closed { reason } => {
                let io = self.io_error.take();
                self.close_reason =
                    reason.as_ref().map(|r| io.unwrap_or_else(|| Error::Session(r.clone())));
                debug!(reason = ?self.close_reason, "session closed");
                self.close_conn();
                Some(Event::Closed { reason })
            }
            other => Some(other),
        }
    }

    /// Processes what is already queued (the core's commands and events) without waiting.
    fn settle(&mut self) {
        loop {
            if self.transmit() {
                continue;
            }
            let Some(event) = self.core.poll_event() else {
                return;
            };
            let _ = self.on_event(event);
        }
    }

    /// Waits for the server's bytes or the core's next deadline and hands the result to the core.
    fn wait(&mut self) {
        let now = self.now();
        let deadline = self.core.poll_timeout();
        if deadline.is_some_and(|d| d <= now) {
            self.core.handle_timeout(now);
            return;
        }
        let Some(sock) = self.conn.socket() else {
            self.core.handle_eof(now);
            return;
        };
        let timeout = deadline.map(|d| (d - now).clamp(MIN_WAIT, MAX_WAIT));
        if self.read_timeout != Some(timeout) {
            if let Err(e) = sock.set_read_timeout(timeout) {
                self.fail_io(Error::Io(e));
                return;
            }
            self.read_timeout = Some(timeout);
        }
        let result = loop {
            match self.conn.read(&mut self.rbuf) {
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                other => break other,
            }
        };
        let now = self.now();
        match result {
            Ok(0) => self.core.handle_eof(now),
            Ok(n) => self.core.handle_input(now, &self.rbuf[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                self.core.handle_timeout(now)
            }
            Err(e) => {
                debug!(error = %e, "read failed");
                self.fail_io(Error::Io(e));
            }
        }
    }

    /// `Event::StartTls`: wraps the plain stream in TLS and tells the core. On failure the session is
    /// aborted with the TLS error as its close reason.
    fn upgrade(&mut self) {
        let result = match (mem::replace(&mut self.conn, Conn::Closed), &self.tls) {
            (Conn::Plain(sock), Some(tls)) => {
                let deadline = Instant::now() + tls.timeout;
                let write_timeout = self.core.config().timeouts.data_block;
                tls.handshake(sock, deadline, write_timeout)
            }
            _ => Err(Error::Tls(io::Error::other(
                "STARTTLS on a connection that cannot be upgraded",
            ))),
        };
        match result {
            Ok(stream) => {
                debug!(version = ?stream.conn.protocol_version(), "TLS established");
                self.conn = Conn::Tls(Box::new(stream));
                // The handshake set its own socket timeouts.
                self.read_timeout = None;
                if let Err(e) = self.core.tls_established(self.now()) {
                    self.io_error.get_or_insert(Error::Tls(io::Error::other(e)));
                    self.core.abort();
                }
            }
            Err(e) => {
                debug!(error = %e, "TLS handshake failed");
                self.io_error.get_or_insert(e);
                self.core.abort();
            }
        }
    }

    /// Closes the connection; a TLS session that did not fail at the IO level says close_notify first.
    fn close_conn(&mut self) {
        if let Conn::Tls(tls) = &mut self.conn {
            tls.conn.send_close_notify();
            // Best effort: the session is over either way.
            let _ = tls.conn.complete_io(&mut tls.sock);
        }
        self.conn = Conn::Closed;
    }

    /// Feeds the body after `BodyRequested`/`BodyWritable` until the core pushes back or the body ends.
    fn pump(&mut self, id: MessageId, body: &mut impl Read, pump: &mut Pump) -> Result<(), Error> {
        loop {
            if pump.start == pump.end {
                if pump.finished {
                    return Ok(());
                }
                let n = loop {
                    match body.read(&mut self.body_buf) {
                        Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                        Err(e) => return Err(self.abort_body(e)),
                        Ok(n) => break n,
                    }
                };
                if n == 0 {
                    pump.finished = true;
                    // An error means the message already has its outcome (e.g. the connection broke while
                    // the last chunk was written): its MessageDone is queued.
                    let _ = self.core.finish_body(id);
                    return Ok(());
                }
                (pump.start, pump.end) = (0, n);
            }
            match self.core.write_body(id, &self.body_buf[pump.start..pump.end]) {
                Ok(n) => pump.start += n,
                Err(e @ ApiMisuse::UndeclaredEightBit) => {
                    return Err(self.abort_body(io::Error::new(ErrorKind::InvalidData, e)));
                }
                // The message already has its outcome (a BodyWritable queued before the connection broke):
                // stop feeding; its MessageDone is queued.
                Err(_) => {
                    pump.finished = true;
                    pump.start = pump.end;
                    return Ok(());
                }
            }
            if pump.start < pump.end {
                // The core's buffer is full: BodyWritable follows once the transmit is written.
                return Ok(());
            }
        }
    }

    /// The body cannot be completed: abort the session (DATA has no clean cancel) and report `e`.
    fn abort_body(&mut self, e: io::Error) -> Error {
        debug!(error = %e, "body failed; aborting the session");
        self.core.abort();
        self.settle();
        Error::Body(e)
    }
}

/// Where the body pump stands: `body_buf[start..end]` is read but not yet accepted by the core.
#[derive(Default)]
struct Pump {
    start: usize,
    end: usize,
    finished: bool,
}

fn session_span(options: &Options) -> Span {
    info_span!("smtp", host = %options.host, port = options.port)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_convert_to_io_with_a_matching_kind() {
        let e: io::Error =
            Error::Session(smtp_proto::Error::Timeout(smtp_proto::Timer::Greeting)).into();
        assert_eq!(e.kind(), ErrorKind::TimedOut);
        assert!(e.to_string().contains("greeting"), "{e}");
        let e: io::Error =
            Error::Refused(SendError::Misuse(smtp_proto::ApiMisuse::NotConnected)).into();
        assert_eq!(e.kind(), ErrorKind::NotConnected);
        let e: io::Error = Error::Io(ErrorKind::ConnectionReset.into()).into();
        assert_eq!(e.kind(), ErrorKind::ConnectionReset);
        let inner = e.into_inner().expect("the driver's error is kept");
        assert!(inner.downcast_ref::<Error>().is_some());
    }

    #[test]
    fn tls_error_source_is_the_inner_error() {
        use std::error::Error as _;
        let rustls_error = rustls::Error::General("bad".into());
        let e = Error::Tls(io::Error::new(ErrorKind::InvalidData, rustls_error));
        let source = e.source().expect("a source");
        assert!(source.downcast_ref::<rustls::Error>().is_some());
        assert!(e.to_string().starts_with("TLS handshake failed"));
    }
}
