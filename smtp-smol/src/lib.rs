//! An async SMTP client over any futures-io stream: smol's and async-std's `TcpStream`, or tokio's through
//! `tokio_util::compat`.
//!
//! A thin driver around the sans-IO core [`smtp_proto::Client`]: it moves bytes between the core and the
//! stream, waits for the server or the core's next deadline, upgrades to TLS (rustls, through
//! futures-rustls) when the core asks, streams message bodies and turns events into results. Every protocol
//! decision (pipelining, STARTTLS, AUTH, DATA or BDAT, per-recipient outcomes, timeouts) is the core's.
//! Connection settings come from [`smtp_transport::Options`].
//!
//! ```no_run
//! use smtp_smol::{Envelope, Options, Outcome, SmtpClient};
//!
//! # fn main() -> Result<(), smtp_smol::Error> {
//! smol::block_on(async {
//!     let options = Options::from_url("smtp://mail.example.org:2525?tls=required")?;
//!     let mut client = SmtpClient::connect(&options).await?;
//!     let envelope = Envelope::parse("alice@example.org", &["bob@example.org"]).expect("valid addresses");
//!     let body: &[u8] = b"Subject: hi\r\n\r\nHello, Bob.\r\n";
//!     let report = client.send(envelope, body).await?;
//!     assert_eq!(report.outcome, Outcome::Sent);
//!     client.quit().await
//! })
//! # }
//! ```
//!
//! Several messages go over one connection by calling [`SmtpClient::send`] again. Once the session has
//! ended (a 421, a lost connection, a timeout) the next `send` returns
//! `Err(Error::Refused(SendError::Misuse(ApiMisuse::NotConnected)))` and [`SmtpClient::close_reason`] says why.
//!
//! # Logging
//!
//! With `tracing` at DEBUG level, every command and reply is logged (AUTH payloads redacted by the core,
//! message bodies summarised as their size) in a span per session (host, port) and per message (id).
#![forbid(unsafe_code)]
#![warn(missing_docs, unreachable_pub)]

use std::fmt;
use std::future::{Future, poll_fn};
use std::io;
use std::mem;
use std::net::IpAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use async_io::Timer;
use futures_io::{AsyncRead, AsyncWrite};
use futures_lite::future::{self, FutureExt as _};
use futures_lite::io::{AsyncReadExt as _, AsyncWriteExt as _};
use futures_rustls::TlsConnector;
use futures_rustls::client::TlsStream;
use rustls::pki_types::ServerName;
use smtp_proto::ehlo::Capabilities;
use smtp_proto::{ApiMisuse, Client, Event, MessageId, State, TlsMode};
use tracing::{Instrument as _, Level, debug};

pub use async_net::TcpStream;
pub use smtp_proto::{Envelope, MessageReport, Outcome, SendError};
pub use smtp_transport::{Error, Options};
pub use {smtp_proto, smtp_transport};

/// Size of the buffer the server's bytes are read into (one per session).
const READ_BUF: usize = 16 * 1024;
/// Size of the buffer a message body is read into (one per session, allocated by the first `send`).
const BODY_BUF: usize = 64 * 1024;

/// The connection: plaintext, or TLS after STARTTLS or for implicit TLS.
enum Stream<S> {
    Plain(S),
    Tls(Box<TlsStream<S>>),
    /// Between taking the plain stream for the handshake and getting it back, and after the session.
    Closed,
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for Stream<S> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Closed => Poll::Ready(Ok(0)),
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for Stream<S> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Closed => Poll::Ready(Err(io::ErrorKind::NotConnected.into())),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s).poll_flush(cx),
            Stream::Closed => Poll::Ready(Ok(())),
        }
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_close(cx),
            Stream::Tls(s) => Pin::new(s).poll_close(cx),
            Stream::Closed => Poll::Ready(Ok(())),
        }
    }
}

/// What the rustls handshake needs: the configuration (trust roots) and the name to check.
struct TlsSetup {
    connector: TlsConnector,
    name: ServerName<'static>,
    /// Bound on each handshake ([`Options::connect_timeout`]).
    timeout: Duration,
}

impl TlsSetup {
    /// `None` when the session never uses TLS.
    fn new(options: &Options) -> Result<Option<TlsSetup>, Error> {
        if options.session.tls == TlsMode::None {
            return Ok(None);
        }
        Ok(Some(TlsSetup {
            connector: TlsConnector::from(options.tls_config()?),
            name: options.server_name()?,
            timeout: options.connect_timeout,
        }))
    }

    /// The handshake on `stream`, bounded by `deadline`.
    async fn handshake<S>(&self, stream: S, deadline: Instant) -> Result<TlsStream<S>, Error>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let handshake = self.connector.connect(self.name.clone(), stream);
        let timeout = async {
            Timer::at(deadline).await;
            Err(io::Error::new(io::ErrorKind::TimedOut, "the TLS handshake timed out"))
        };
        handshake.or(timeout).await.map_err(Error::Tls)
    }
}

/// What one wait on the connection produced.
enum Io {
    Read(usize),
    Eof,
    ReadFailed(io::Error),
    WriteFailed(io::Error),
    Written,
    Deadline,
}

/// When [`SmtpClient::drive`] returns (it also returns when the session ends).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Goal {
    /// [`Event::Ready`].
    Ready,
    /// [`Event::MessageDone`] for the message being pumped.
    Report,
    /// [`Event::Closed`].
    Closed,
}

/// A message body being streamed into the core.
struct Pump<'a, B, P> {
    id: MessageId,
    body: &'a mut B,
    progress: P,
    /// `buf[start..end]` was read from the body and not yet accepted by the core.
    start: usize,
    end: usize,
    /// The core asked for body bytes and did not push back since.
    writable: bool,
    /// `finish_body` was called (or the message ended early).
    finished: bool,
}

/// An SMTP (or LMTP) session over the stream `S`, ready for mail.
///
/// ```no_run
/// use smtp_smol::{Envelope, Options, SmtpClient};
///
/// # async fn send() -> Result<(), smtp_smol::Error> {
/// let mut options = Options::new("127.0.0.1", 2525);
/// options.session.tls = smtp_smol::smtp_proto::TlsMode::None;
/// let mut client = SmtpClient::connect(&options).await?;
/// for to in ["bob@example.org", "carol@example.org"] {
///     let envelope = Envelope::parse("alice@example.org", &[to]).expect("valid addresses");
///     let report = client.send(envelope, &b"Subject: hi\r\n\r\nHello.\r\n"[..]).await?;
///     println!("{to}: {:?}", report.outcome);
/// }
/// client.quit().await
/// # }
/// ```
pub struct SmtpClient<S = TcpStream> {
    stream: Stream<S>,
    client: Client,
    tls: Option<TlsSetup>,
    /// The core's time is `origin.elapsed()`.
    origin: Instant,
    /// Fires at the core's next deadline (`timer_at`, relative to `origin`).
    timer: Timer,
    timer_at: Option<Duration>,
    read_buf: Box<[u8]>,
    /// Bytes from the core not yet written: `write_buf[written..]`.
    write_buf: Vec<u8>,
    written: usize,
    /// Written bytes the stream may still hold (TLS buffers plaintext until flushed).
    unflushed: bool,
    body_buf: Vec<u8>,
    ready: bool,
    report: Option<MessageReport>,
    /// The IO (or TLS) failure that made the driver end the session, until the core's `Closed` arrives.
    cause: Option<Error>,
    close_reason: Option<Error>,
    span: tracing::Span,
}

impl<S> fmt::Debug for SmtpClient<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmtpClient")
            .field("state", &self.client.state())
            .field("is_tls", &self.client.is_tls())
            .field("close_reason", &self.close_reason)
            .finish_non_exhaustive()
    }
}

impl SmtpClient<TcpStream> {
    /// Resolves [`Options::host`], connects over TCP (both bounded by [`Options::connect_timeout`]) with
    /// `TCP_NODELAY`, does the TLS handshake when [`Options::tls`] is [`TlsMode::Implicit`] (within the same
    /// bound), then runs the session up to the point where it is ready for mail: greeting, EHLO, STARTTLS,
    /// AUTH.
    ///
    /// A refused greeting or EHLO, a failed AUTH, STARTTLS required and not offered… are errors here
    /// ([`Error::Session`]).
    pub async fn connect(options: &Options) -> Result<SmtpClient<TcpStream>, Error> {
        let span = tracing::info_span!("smtp", host = %options.host, port = options.port);
        async {
            options.validate()?;
            let tls = TlsSetup::new(options)?;
            let deadline = Instant::now() + options.connect_timeout;
            let connect = TcpStream::connect((options.host.as_str(), options.port));
            let timeout = async {
                Timer::at(deadline).await;
                Err(io::Error::new(io::ErrorKind::TimedOut, "connection timed out"))
            };
            let stream = connect.or(timeout).await.map_err(Error::Connect)?;
            stream.set_nodelay(true).map_err(Error::Connect)?;
            let local = stream.local_addr().ok().map(|a| a.ip());
            debug!(peer = ?stream.peer_addr().ok(), "connected");
            SmtpClient::start(stream, options, local, tls, deadline, span.clone()).await
        }
        .instrument(span.clone())
        .await
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> SmtpClient<S> {
    /// Like [`SmtpClient::connect`] on a stream the caller connected (any futures-io stream: async-std's
    /// `TcpStream`, a Unix socket, tokio's through `tokio_util::compat`). With [`TlsMode::Implicit`] the
    /// driver still does the TLS handshake, bounded by [`Options::connect_timeout`].
    ///
    /// The default EHLO name is `[127.0.0.1]` here: set [`Options::helo_name`] when the stream is not a
    /// loopback connection.
    pub async fn from_stream(stream: S, options: &Options) -> Result<SmtpClient<S>, Error> {
        let span = tracing::info_span!("smtp", host = %options.host, port = options.port);
        options.validate()?;
        let tls = TlsSetup::new(options)?;
        let deadline = Instant::now() + options.connect_timeout;
        SmtpClient::start(stream, options, None, tls, deadline, span.clone()).instrument(span).await
    }

    async fn start(
        stream: S,
        options: &Options,
        local: Option<IpAddr>,
        tls: Option<TlsSetup>,
        deadline: Instant,
        span: tracing::Span,
    ) -> Result<SmtpClient<S>, Error> {
        let stream = match (&tls, options.session.tls) {
            (Some(setup), TlsMode::Implicit) => {
                Stream::Tls(Box::new(setup.handshake(stream, deadline).await?))
            }
            _ => Stream::Plain(stream),
        };
        let helo = options.helo_name_for(local);
        let mut config = options.session.clone();
        config.transcript |= tracing::enabled!(Level::DEBUG);
        let mut this = SmtpClient {
            stream,
            client: Client::new(helo, config, Duration::ZERO),
            tls,
            origin: Instant::now(),
            timer: Timer::never(),
            timer_at: None,
            read_buf: vec![0; READ_BUF].into_boxed_slice(),
            write_buf: Vec::new(),
            written: 0,
            unflushed: false,
            body_buf: Vec::new(),
            ready: false,
            report: None,
            cause: None,
            close_reason: None,
            span,
        };
        this.drive(Goal::Ready, NO_PUMP).await?;
        if this.ready {
            Ok(this)
        } else {
            Err(this.close_reason.take().unwrap_or(Error::Session(smtp_proto::Error::UnexpectedEof)))
        }
    }

    /// Sends one message, streaming `body` (read in 64 KiB blocks, never whole; line endings may be
    /// anything, dots are stuffed by the core).
    ///
    /// `Ok(report)` whenever the message got an outcome: [`Outcome::Sent`] (check each recipient in the
    /// report), [`Outcome::Rejected`] (refused recipients, a 4xx/5xx, or the session ending before the end of
    /// data) or [`Outcome::Unknown`] (the session ended after the end of data and before its reply: the
    /// message may have been delivered). After a session-ending report, [`SmtpClient::close_reason`] says why.
    ///
    /// `Err(Error::Refused(_))` when the message never started (the session is closed or the server cannot
    /// carry it), `Err(Error::Body(_))` when reading `body` failed: the session is then aborted.
    pub async fn send(
        &mut self,
        envelope: Envelope,
        body: impl AsyncRead + Unpin,
    ) -> Result<MessageReport, Error> {
        self.send_with_progress(envelope, body, |_, _| {}).await
    }

    /// Like [`SmtpClient::send`], calling `progress(sent, total)` as the body goes out: octets of body
    /// accepted so far, and the size the envelope declared, if any.
    pub async fn send_with_progress(
        &mut self,
        envelope: Envelope,
        mut body: impl AsyncRead + Unpin,
        progress: impl FnMut(u64, Option<u64>),
    ) -> Result<MessageReport, Error> {
        let id = self.client.send_message(envelope).map_err(Error::Refused)?;
        let span = tracing::debug_span!(parent: &self.span, "message", id = id.get());
        let mut pump =
            Pump { id, body: &mut body, progress, start: 0, end: 0, writable: false, finished: false };
        async {
            self.drive(Goal::Report, Some(&mut pump)).await?;
            // The core gives every accepted message its report before the session ends.
            self.report.take().ok_or(Error::Refused(SendError::Misuse(ApiMisuse::NotConnected)))
        }
        .instrument(span)
        .await
    }

    /// Sends QUIT, waits for the 221 (or the server's close, or the QUIT timeout) and closes the connection
    /// (with a TLS close_notify). `Ok` when the session was already over: its reason was
    /// [`SmtpClient::close_reason`].
    pub async fn quit(mut self) -> Result<(), Error> {
        if self.client.is_closed() {
            return Ok(());
        }
        let span = self.span.clone();
        async {
            self.client.quit();
            self.drive(Goal::Closed, NO_PUMP).await?;
            self.close_reason.take().map_or(Ok(()), Err)
        }
        .instrument(span)
        .await
    }

    /// The server's capabilities from its latest EHLO (after STARTTLS: the ones it announced inside TLS).
    pub fn capabilities(&self) -> Option<&Capabilities> {
        self.client.capabilities()
    }

    /// True when the session is encrypted (implicit TLS, or STARTTLS done).
    pub fn is_tls(&self) -> bool {
        self.client.is_tls()
    }

    /// Why the session ended, once it has: the IO error when the connection failed, else the core's reason
    /// ([`Error::Session`]). `None` while the session is open and after a clean QUIT.
    pub fn close_reason(&self) -> Option<&Error> {
        self.close_reason.as_ref()
    }

    fn now(&self) -> Duration {
        self.origin.elapsed()
    }

    /// The run loop (smtp-proto's crate docs): drain the core's output and events, feed the body, then wait
    /// for the server or the next deadline; until `goal` is reached and every byte is written, or the
    /// session ends.
    async fn drive<B: AsyncRead + Unpin, P: FnMut(u64, Option<u64>)>(
        &mut self,
        goal: Goal,
        mut pump: Option<&mut Pump<'_, B, P>>,
    ) -> Result<(), Error> {
        loop {
            let now = self.now();
            while self.client.poll_transmit(now, &mut self.write_buf) > 0 {}
            let mut acted = false;
            while let Some(event) = self.client.poll_event() {
                acted = true;
                self.on_event(event, pump.as_deref_mut()).await;
            }
            if acted {
                continue;
            }
            if self.client.is_closed() {
                self.shutdown().await;
                return Ok(());
            }
            let reached = match goal {
                Goal::Ready => self.ready,
                Goal::Report => self.report.is_some(),
                Goal::Closed => false,
            };
            let all_written = self.written == self.write_buf.len() && !self.unflushed;
            if reached && all_written {
                return Ok(());
            }
            if let Some(p) = pump.as_deref_mut() {
                // Constant memory: the next block goes to the core only once the previous one is written.
                if p.writable && !p.finished && all_written {
                    self.feed_body(p).await?;
                    continue;
                }
            }
            self.wait().await;
        }
    }

    async fn on_event<B: AsyncRead + Unpin, P: FnMut(u64, Option<u64>)>(
        &mut self,
        event: Event,
        pump: Option<&mut Pump<'_, B, P>>,
    ) {
        match event {
            Event::Transcript { from_server, line } => {
                debug!(target: "smtp_transcript", "{} {line}", if from_server { "S:" } else { "C:" });
            }
            Event::Ready => {
                debug!(tls = self.client.is_tls(), "ready");
                self.ready = true;
            }
            // The core leaves StartTls queued when the same input also ended the session (injection).
            Event::StartTls if self.client.state() == State::AwaitingTls => self.start_tls().await,
            Event::BodyRequested { id } | Event::BodyWritable { id } => {
                if let Some(p) = pump.filter(|p| p.id == id) {
                    p.writable = true;
                }
            }
            Event::Progress { id, sent, total } => {
                if let Some(p) = pump.filter(|p| p.id == id) {
                    (p.progress)(sent, total);
                }
            }
            Event::MessageDone(report) => {
                debug!(outcome = ?report.outcome, failure = ?report.failure, "message done");
                if pump.is_some_and(|p| p.id == report.id) {
                    self.report = Some(report);
                }
            }
            Event::Closed { reason } => {
                debug!(reason = ?reason, cause = ?self.cause, "session closed");
                let cause = self.cause.take();
                self.close_reason = reason.map(|r| cause.unwrap_or(Error::Session(r)));
            }
            other => debug!(event = ?other),
        }
    }

    /// Gives the core the next block of the body (reading it first when needed), or finishes the body.
    async fn feed_body<B: AsyncRead + Unpin, P>(&mut self, p: &mut Pump<'_, B, P>) -> Result<(), Error> {
        if p.start == p.end {
            if self.body_buf.is_empty() {
                self.body_buf = vec![0; BODY_BUF];
            }
            let n = loop {
                match p.body.read(&mut self.body_buf).await {
                    Ok(n) => break n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(self.abort_for_body(e)),
                }
            };
            if n == 0 {
                p.finished = true;
                // An error here means the message already ended (the server interrupted it).
                let _ = self.client.finish_body(p.id);
                return Ok(());
            }
            (p.start, p.end) = (0, n);
        }
        match self.client.write_body(p.id, &self.body_buf[p.start..p.end]) {
            Ok(n) => {
                p.start += n;
                p.writable = p.start == p.end;
            }
            Err(ApiMisuse::UndeclaredEightBit) => {
                let e = io::Error::new(io::ErrorKind::InvalidData, ApiMisuse::UndeclaredEightBit);
                return Err(self.abort_for_body(e));
            }
            // The message already ended (the server interrupted it, the session closed).
            Err(_) => p.finished = true,
        }
        Ok(())
    }

    /// Ends the session after a body failure: the message's outcome and the close are drained, not waited for.
    fn abort_for_body(&mut self, e: io::Error) -> Error {
        debug!(error = %e, "body failed: aborting the session");
        self.client.abort();
        while let Some(event) = self.client.poll_event() {
            if let Event::Closed { reason } = event {
                self.close_reason = reason.map(Error::Session);
            }
        }
        self.stream = Stream::Closed;
        self.write_buf.clear();
        self.written = 0;
        Error::Body(e)
    }

    /// STARTTLS: the core stopped reading plaintext; wrap the stream, then tell the core.
    async fn start_tls(&mut self) {
        let stream = mem::replace(&mut self.stream, Stream::Closed);
        let result = match (stream, &self.tls) {
            (Stream::Plain(s), Some(setup)) => {
                let deadline = Instant::now() + setup.timeout;
                setup.handshake(s, deadline).await
            }
            _ => Err(Error::Tls(io::Error::other("no plaintext stream to upgrade"))),
        };
        match result {
            Ok(tls) => {
                self.stream = Stream::Tls(Box::new(tls));
                debug!("TLS established");
                let _ = self.client.tls_established(self.now());
            }
            Err(e) => {
                debug!(error = %e, "STARTTLS handshake failed");
                self.cause = Some(e);
                self.client.abort();
            }
        }
    }

    /// Waits for the server's bytes, for the pending output to be written, or for the core's deadline;
    /// feeds what happened to the core. Reading goes on while writing, so a server that answers mid-body
    /// (RFC 2920 §3.1) is heard.
    async fn wait(&mut self) {
        let deadline = self.client.poll_timeout();
        if deadline.is_some_and(|d| d <= self.now()) {
            self.client.handle_timeout(self.now());
            return;
        }
        if deadline != self.timer_at {
            match deadline {
                Some(d) => self.timer.set_at(self.origin + d),
                None => self.timer = Timer::never(),
            }
            self.timer_at = deadline;
        }
        let io = poll_fn(|cx| self.poll_io(cx)).await;
        let now = self.now();
        match io {
            Io::Read(n) => self.client.handle_input(now, &self.read_buf[..n]),
            Io::Eof => self.client.handle_eof(now),
            Io::ReadFailed(e) | Io::WriteFailed(e) => {
                debug!(error = %e, "connection failed");
                self.cause = Some(Error::Io(e));
                self.write_buf.clear();
                self.written = 0;
                self.client.handle_eof(now);
            }
            Io::Written => {}
            Io::Deadline => self.client.handle_timeout(now),
        }
    }

    fn poll_io(&mut self, cx: &mut Context<'_>) -> Poll<Io> {
        loop {
            match Pin::new(&mut self.stream).poll_read(cx, &mut self.read_buf) {
                Poll::Ready(Ok(0)) => return Poll::Ready(Io::Eof),
                Poll::Ready(Ok(n)) => return Poll::Ready(Io::Read(n)),
                Poll::Ready(Err(e)) if e.kind() == io::ErrorKind::Interrupted => continue,
                Poll::Ready(Err(e)) => return Poll::Ready(Io::ReadFailed(e)),
                Poll::Pending => break,
            }
        }
        if self.written < self.write_buf.len() || self.unflushed {
            while self.written < self.write_buf.len() {
                let pending = &self.write_buf[self.written..];
                match Pin::new(&mut self.stream).poll_write(cx, pending) {
                    Poll::Ready(Ok(0)) => {
                        return Poll::Ready(Io::WriteFailed(io::ErrorKind::WriteZero.into()));
                    }
                    Poll::Ready(Ok(n)) => {
                        self.written += n;
                        self.unflushed = true;
                    }
                    Poll::Ready(Err(e)) if e.kind() == io::ErrorKind::Interrupted => {}
                    Poll::Ready(Err(e)) => return Poll::Ready(Io::WriteFailed(e)),
                    Poll::Pending => break,
                }
            }
            if self.written == self.write_buf.len() {
                self.write_buf.clear();
                self.written = 0;
                match Pin::new(&mut self.stream).poll_flush(cx) {
                    Poll::Ready(Ok(())) => {
                        self.unflushed = false;
                        return Poll::Ready(Io::Written);
                    }
                    Poll::Ready(Err(e)) => return Poll::Ready(Io::WriteFailed(e)),
                    Poll::Pending => {}
                }
            }
        }
        match Pin::new(&mut self.timer).poll(cx) {
            Poll::Ready(_) => Poll::Ready(Io::Deadline),
            Poll::Pending => Poll::Pending,
        }
    }

    /// After the session: writes what can go out at once (a last QUIT, the TLS close_notify), never waiting
    /// on a server that stopped reading, then drops the connection.
    async fn shutdown(&mut self) {
        let mut stream = mem::replace(&mut self.stream, Stream::Closed);
        let pending = mem::take(&mut self.write_buf);
        let written = mem::take(&mut self.written);
        self.unflushed = false;
        let _ = future::poll_once(async {
            stream.write_all(&pending[written..]).await?;
            stream.close().await
        })
        .await;
    }
}

/// The pump type of a `drive` without a body.
type NoBody = Pump<'static, futures_lite::io::Empty, fn(u64, Option<u64>)>;
/// `drive` without a body.
const NO_PUMP: Option<&mut NoBody> = None;
