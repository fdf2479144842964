//! An async SMTP client over any futures-io stream: smol's and async-std's `TcpStream`, or tokio's through
//! `tokio_util::compat`: the IO loop around [`smtp_transport::driver::Driver`].
//!
//! Every protocol decision, TLS included (implicit TLS and STARTTLS, rustls in memory), is the core's and
//! the driver's; this crate writes while it reads (so a server that answers in the middle of a body is
//! heard), waits for the driver's deadlines on `async-io` timers and reads message bodies.
//!
//! ```no_run
//! use smtp_smol::{Envelope, Options, SmtpClient};
//!
//! # fn main() -> Result<(), smtp_smol::Error> {
//! smol::block_on(async {
//!     let options = Options::from_url("smtp://mail.example.org:2525?tls=required")?;
//!     let mut client = SmtpClient::connect(&options).await?;
//!     let envelope = Envelope::parse("alice@example.org", &["bob@example.org"]).expect("valid addresses");
//!     let body = futures_lite::io::Cursor::new(b"Subject: hi\r\n\r\nHello, Bob.\r\n");
//!     println!("{}", client.send(envelope, body).await?);
//!     client.quit().await
//! })
//! # }
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs, unreachable_pub)]

use std::future::{Future, poll_fn};
use std::io::{self, SeekFrom};
use std::net::IpAddr;
use std::pin::Pin;
use std::task::Poll;
use std::time::{Duration, Instant};

use async_io::Timer;
use futures_io::{AsyncRead, AsyncSeek, AsyncWrite};
use futures_lite::io::{AsyncReadExt as _, AsyncSeekExt as _};
use futures_lite::{FutureExt as _, StreamExt as _};
use smtp_proto::ehlo::Capabilities;
use smtp_transport::driver::{Action, Bodies, Driver};

pub use async_net::TcpStream;
pub use smtp_proto::{Envelope, MessageReport, Outcome, SendError};
pub use smtp_transport::pool::PoolConfig;
pub use smtp_transport::{Error, OneShot, Options};
pub use {smtp_proto, smtp_transport};

/// A message body: read, and read again from its start for recipients that need another transaction (a
/// `Cursor`, a file); a stream that cannot seek goes in a [`OneShot`].
pub trait Body: AsyncRead + AsyncSeek + Unpin {}
impl<T: AsyncRead + AsyncSeek + Unpin> Body for T {}

/// A connection being opened: the stream and its local address.
type Connecting<S> = Pin<Box<dyn Future<Output = Result<Connected<S>, Error>> + Send>>;
/// A connected stream and its local address (for the default EHLO name).
type Connected<S> = (S, Option<IpAddr>);
/// Opens a new connection (to follow the server's MAILMAX).
type Connector<S> = fn(Options) -> Connecting<S>;

/// One SMTP (or LMTP) session over an async connection: [`connect`](SmtpClient::connect), then any number of
/// [`send`](SmtpClient::send)s, then [`quit`](SmtpClient::quit).
#[derive(Debug)]
pub struct SmtpClient<S = TcpStream> {
    driver: Driver,
    /// `None` once the connection is closed.
    stream: Option<S>,
    reconnect: Option<Connector<S>>,
    options: Options,
    origin: Instant,
    timer: Timer,
    /// The deadline the timer is set for.
    timer_at: Option<Duration>,
    /// Written octets may sit in the stream's buffer: flush before waiting.
    unflushed: bool,
}

/// What happened first while waiting.
enum Io {
    Read(io::Result<usize>),
    Wrote(io::Result<usize>),
    Deadline,
}

impl SmtpClient<TcpStream> {
    /// Connects to `options.host:options.port` (bounded by `options.connect_timeout`, TCP_NODELAY set) and
    /// runs the session until mail can be sent: greeting, EHLO, STARTTLS, AUTH. Fails with
    /// [`Error::Connect`], [`Error::Tls`] or [`Error::Session`].
    pub async fn connect(options: &Options) -> Result<Self, Error> {
        options.validate()?;
        Self::start(tcp_connect(options.clone()).await?, options, Some(tcp_connect)).await
    }
}

/// A pool of async connections to one server, sharing a rate limit, with backoff after failures:
/// `pool.get().await?.send(envelope, body).await?` (or `send_all`); `pool.close(timeout).await` before
/// dropping it. See [`smtp_transport::pool`].
pub type Pool = smtp_transport::pool::AsyncPool<SmtpClient>;

impl smtp_transport::pool::AsyncPooled for SmtpClient {
    async fn open(options: Options) -> Result<Self, Error> {
        Self::connect(&options).await
    }
    async fn check(&mut self, rset: bool) -> bool {
        self.driver.check(rset).is_ok() && self.run_op().await.is_ok()
    }
    fn driver(&self) -> &Driver {
        &self.driver
    }
    async fn close(self) {
        let _ = self.quit().await;
    }
    async fn sleep(duration: Duration) {
        async_io::Timer::after(duration).await;
    }
}

/// DNS, then each address in turn, all within `options.connect_timeout`; TCP_NODELAY, or SMTP's
/// write-write-read pattern stalls on Nagle and delayed ACKs.
fn tcp_connect(options: Options) -> Connecting<TcpStream> {
    Box::pin(async move {
        // Each address in turn.
        let connecting = TcpStream::connect((options.host.as_str(), options.port));
        let timeout = async {
            Timer::after(options.connect_timeout).await;
            Err(io::Error::new(io::ErrorKind::TimedOut, "connect timed out"))
        };
        let stream = connecting.or(timeout).await.and_then(|s| s.set_nodelay(true).map(|()| s));
        let stream = stream.map_err(Error::Connect)?;
        let local = stream.local_addr().ok().map(|a| a.ip());
        Ok((stream, local))
    })
}

impl<S: AsyncRead + AsyncWrite + Unpin> SmtpClient<S> {
    /// Runs the session, as [`SmtpClient::connect`] does, on a stream the caller connected (implicit TLS and
    /// STARTTLS included). The default EHLO name is `[127.0.0.1]` here: set [`Options::helo_name`] when the
    /// stream is not a loopback connection.
    pub async fn from_stream(stream: S, options: &Options) -> Result<Self, Error> {
        options.validate()?;
        Self::start((stream, None), options, None).await
    }

    /// Drives a fresh connection through the session's start.
    async fn start((s, ip): Connected<S>, o: &Options, dial: Option<Connector<S>>) -> Result<Self, Error> {
        let origin = Instant::now();
        let mut client = SmtpClient {
            driver: o.driver(ip, origin)?,
            stream: Some(s),
            reconnect: dial,
            options: o.clone(),
            origin,
            timer: Timer::never(),
            timer_at: None,
            unflushed: false,
        };
        client.run_op().await?;
        Ok(client)
    }

    /// Sends one message, streaming `body` (a 64 KiB buffer; line endings may be anything, dots are stuffed).
    /// A body that can seek (a file, a `Cursor`) is read again when recipients need another transaction (a
    /// 452, the server's RCPTMAX) or another connection (its MAILMAX); wrap one that cannot in [`OneShot`].
    ///
    /// `Ok(report)` whenever the message got an outcome; [`SmtpClient::close_reason`] says why when the session
    /// ended. `Err` when the message never started ([`Error::Send`], [`Error::Closed`]) or reading `body`
    /// failed ([`Error::Body`]: the session is aborted).
    pub async fn send(&mut self, envelope: Envelope, body: impl Body) -> Result<MessageReport, Error> {
        self.send_with_progress(envelope, body, |_, _| {}).await
    }

    /// Like [`SmtpClient::send`], calling `progress(sent, total)` as body octets are accepted.
    pub async fn send_with_progress<B: Body>(
        &mut self,
        envelope: Envelope,
        mut body: B,
        mut progress: impl FnMut(u64, Option<u64>),
    ) -> Result<MessageReport, Error> {
        let (mut report, mut bodies) = (None, Bodies::default());
        let start = body.seek(SeekFrom::Current(0)).await;
        self.driver.start_batch();
        bodies.submit(&mut self.driver, Some((envelope, body)), start);
        self.driver.end_batch();
        self.run(bodies, &mut || None, &mut |done| match done {
            Action::Report { report: r, .. } => report = Some(r),
            Action::Progress { sent, total, .. } => progress(sent, total),
            _ => {}
        })
        .await?;
        report.ok_or(Error::Send(SendError::Misuse(smtp_proto::ApiMisuse::NotConnected)))
    }

    /// Sends many messages on this connection, each next one's commands riding with the previous final dot
    /// (one round trip a message with PIPELINING). `on_report` gets each report as it comes. A message refused
    /// before any byte ends the batch: the ones already handed over get their reports, then the refusal is
    /// returned.
    pub async fn send_all<B: Body>(
        &mut self,
        messages: impl IntoIterator<Item = (Envelope, B)>,
        mut on_report: impl FnMut(MessageReport),
    ) -> Result<(), Error> {
        let mut messages = messages.into_iter();
        self.driver.start_batch();
        self.run(Bodies::default(), &mut || messages.next(), &mut |done| {
            if let Action::Report { report, .. } = done {
                on_report(report)
            }
        })
        .await
    }

    /// Asks the server whether the session still works (NOOP): `Ok` after its 250, else why not.
    pub async fn noop(&mut self) -> Result<(), Error> {
        self.driver.noop()?;
        self.run_op().await
    }

    /// Ends the session: QUIT, the 221 (or the server's close), TLS close_notify. `Ok` also when the session
    /// had already ended (see [`SmtpClient::close_reason`]).
    pub async fn quit(mut self) -> Result<(), Error> {
        self.driver.quit();
        self.run_op().await
    }

    /// The server's capabilities from its latest EHLO (or LHLO).
    pub fn capabilities(&self) -> Option<&Capabilities> {
        self.driver.client().capabilities()
    }

    /// True when the session is encrypted (implicit TLS or STARTTLS).
    pub fn is_tls(&self) -> bool {
        self.driver.client().is_tls()
    }

    /// Whether the server's certificate verified, once TLS is up (`None` without TLS): see
    /// [`Driver::tls_verified`](smtp_transport::driver::Driver::tls_verified).
    pub fn tls_verified(&self) -> Option<bool> {
        self.driver.tls_verified()
    }

    /// Why the session ended, when it ended with an error: the server's reason first, else the IO, TLS or
    /// body failure. `None` while the session lives and after a clean QUIT.
    pub fn close_reason(&self) -> Option<&Error> {
        self.driver.close_reason()
    }

    /// Connecting, NOOP or QUIT: no message involved.
    async fn run_op(&mut self) -> Result<(), Error> {
        self.run::<OneShot<futures_lite::io::Empty>>(Bodies::default(), &mut || None, &mut |_| {}).await
    }

    /// The IO loop: does what the driver says until it says [`Action::Done`]. Messages come from `next` when
    /// the driver asks for them (a batch); reports and progress go to `on` as the driver's actions.
    async fn run<B: Body>(
        &mut self,
        mut bodies: Bodies<B>,
        next: &mut impl FnMut() -> Option<(Envelope, B)>,
        on: &mut impl FnMut(Action),
    ) -> Result<(), Error> {
        self.driver.advance(self.origin.elapsed());
        loop {
            match self.driver.poll() {
                Action::Write { deadline } => self.io(deadline, true).await,
                Action::Read { deadline } => self.io(deadline, false).await,
                Action::FillBody { slot } => match bodies.get(slot).0.read(self.driver.body_buf()).await {
                    Ok(n) => self.driver.body_read(self.origin.elapsed(), n),
                    Err(e) => self.driver.body_failed(e),
                },
                Action::Rewind { slot } => {
                    let (body, start) = bodies.get(slot);
                    self.driver.rewound(body.seek(SeekFrom::Start(start)).await.map(drop));
                }
                progress @ Action::Progress { .. } => on(progress),
                Action::NextMessage => {
                    let mut message = next();
                    let start = match &mut message {
                        Some((_, body)) => body.seek(SeekFrom::Current(0)).await,
                        None => Ok(0),
                    };
                    bodies.submit(&mut self.driver, message, start);
                }
                Action::Report { slot, report } => {
                    bodies.reported(slot);
                    on(Action::Report { slot, report });
                }
                Action::Reconnect => self.reconnect().await,
                Action::Done => {
                    // A session that ended lets go of its connection.
                    self.stream = self.stream.take().filter(|_| !self.driver.client().is_closed());
                    return bodies.finish(&mut self.driver);
                }
            }
        }
    }

    /// Waits for the server's bytes, for the output to be written (`write`), or for the deadline, and tells
    /// the driver what came first. Reading goes on while writing: a server may answer mid-body.
    async fn io(&mut self, deadline: Option<Duration>, write: bool) {
        // Set again only for an earlier deadline: one that fires early does no harm (nothing is due), and
        // deadlines that move later with every message then cost no timer a message.
        if let Some(d) = deadline.filter(|&d| self.timer_at.is_none_or(|at| d < at)) {
            self.timer = Timer::at(self.origin + d);
            self.timer_at = Some(d);
        }
        let Some(stream) = &mut self.stream else { return self.driver.received(self.origin.elapsed(), 0) };
        let (out, input) = self.driver.io_bufs();
        let (timer, unflushed) = (&mut self.timer, &mut self.unflushed);
        let happened = poll_fn(|cx| {
            // A write that goes through needs no read first; one that waits reads meanwhile (a 421 mid-body).
            if write {
                if let Poll::Ready(r) = Pin::new(&mut *stream).poll_write(cx, out) {
                    *unflushed = true;
                    return Poll::Ready(Io::Wrote(r));
                }
            } else if *unflushed && Pin::new(&mut *stream).poll_flush(cx).is_ready() {
                *unflushed = false;
            }
            if let Poll::Ready(r) = Pin::new(&mut *stream).poll_read(cx, input) {
                return Poll::Ready(Io::Read(r));
            }
            match timer.poll_next(cx) {
                Poll::Ready(_) => Poll::Ready(Io::Deadline),
                Poll::Pending => Poll::Pending,
            }
        })
        .await;
        let now = self.origin.elapsed();
        match happened {
            Io::Read(Ok(n)) => self.driver.received(now, n),
            Io::Wrote(Ok(n)) => self.driver.wrote(now, n),
            Io::Read(Err(e)) => self.driver.io_failed(now, e),
            Io::Wrote(Err(e)) => self.driver.write_failed(now, e),
            Io::Deadline => {
                self.timer_at = None;
                self.driver.timed_out(now);
            }
        }
    }

    /// The server's MAILMAX: a new connection for the messages left.
    async fn reconnect(&mut self) {
        self.stream = None;
        let opened = match self.reconnect {
            Some(connect) => connect(self.options.clone()).await,
            None => Err(Error::Connect(io::Error::other("a connection given to from_stream"))),
        };
        match opened {
            Ok((stream, local)) => {
                self.stream = Some(stream);
                self.driver.reconnected(local, self.origin.elapsed());
            }
            Err(e) => self.driver.reconnect_failed(e),
        }
    }
}
