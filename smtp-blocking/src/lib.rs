//! Blocking SMTP client: the IO loop around [`smtp_transport::driver::Driver`] over `std::net` (or any
//! [`Socket`]).
//!
//! Every protocol decision, TLS included (implicit TLS and STARTTLS, rustls in memory), is the core's and
//! the driver's; this crate writes, reads, waits (through the socket's timeouts) and reads message bodies
//! when the driver says so.
//!
//! ```no_run
//! use smtp_blocking::{Envelope, Options, Outcome, SmtpClient};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let options = Options::from_url("smtp://alice:secret@mail.example.org")?;
//! let mut client = SmtpClient::connect(&options)?;
//! let envelope = Envelope::parse("alice@example.org", &["bob@example.org"])?;
//! let body = std::fs::File::open("message.eml")?; // streamed, never read whole; read again if needed
//! let report = client.send(envelope, body)?;
//! println!("{report}");
//! client.quit()?;
//! # Ok(())
//! # }
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs, unreachable_pub)]

use std::io::{self, ErrorKind, Read, Seek, SeekFrom, Write};
use std::net::{IpAddr, TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use smtp_proto::ehlo::Capabilities;
use smtp_transport::driver::{Action, Bodies, Driver};

pub use smtp_proto::{Envelope, MessageReport, Outcome, SendError};
pub use smtp_transport::pool::PoolConfig;
pub use smtp_transport::{Error, OneShot, Options};
pub use {smtp_proto, smtp_transport};

/// `set_read_timeout` refuses zero: the shortest wait.
const MIN_WAIT: Duration = Duration::from_millis(1);
/// The longest single read or write wait: further deadlines are reached in steps, so the socket timeout
/// keeps one value through a busy session instead of being set again before every read; and a write that
/// blocks this long (the server stopped reading) is followed by a look at what the server said.
const MAX_WAIT: Duration = Duration::from_secs(1);

/// A blocking byte stream the driver can bound in time: what [`SmtpClient::from_stream`] takes.
pub trait Socket: Read + Write {
    /// Bounds each following read (`None`: no bound); a read that times out fails with
    /// [`ErrorKind::WouldBlock`] or [`ErrorKind::TimedOut`].
    fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()>;
    /// Bounds each following write, as [`Socket::set_read_timeout`] does reads.
    fn set_write_timeout(&self, timeout: Option<Duration>) -> io::Result<()>;
    /// The local address, for the default EHLO name (an address literal).
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

/// Opens a new connection (to follow the server's MAILMAX).
type Connector<S> = fn(&Options) -> Result<S, Error>;

/// One SMTP (or LMTP) session over a blocking connection: [`connect`](SmtpClient::connect), then any number
/// of [`send`](SmtpClient::send)s, then [`quit`](SmtpClient::quit).
#[derive(Debug)]
pub struct SmtpClient<S: Socket = TcpStream> {
    driver: Driver,
    /// `None` once the connection is closed.
    conn: Option<S>,
    /// To connect again when the server's MAILMAX is reached (only for [`SmtpClient::connect`]).
    reconnect: Option<Connector<S>>,
    options: Options,
    origin: Instant,
    /// The read timeout last set on the socket.
    read_timeout: Option<Option<Duration>>,
}

impl SmtpClient<TcpStream> {
    /// Connects to `options.host:options.port` (bounded by `options.connect_timeout`, TCP_NODELAY set) and
    /// runs the session until mail can be sent: greeting, EHLO, STARTTLS, AUTH. Fails with
    /// [`Error::Connect`], [`Error::Tls`] or [`Error::Session`] (a refused AUTH, STARTTLS required and not
    /// offered, a 421 or 554 greeting, a timeout, …).
    pub fn connect(options: &Options) -> Result<Self, Error> {
        options.validate()?;
        Self::start(tcp_connect(options)?, options, Some(tcp_connect))
    }
}

/// A pool of blocking connections to one server, sharing a rate limit, with backoff after failures:
/// `pool.get()?.send(envelope, body)?` (or `send_all`); see [`smtp_transport::pool`].
pub type Pool = smtp_transport::pool::BlockingPool<SmtpClient>;

impl smtp_transport::pool::Pooled for SmtpClient {
    fn open(options: &Options) -> Result<Self, Error> {
        Self::connect(options)
    }
    fn check(&mut self, rset: bool) -> bool {
        self.driver.check(rset).is_ok() && self.run_op().is_ok()
    }
    fn driver(&self) -> &Driver {
        &self.driver
    }
    fn close(self) {
        let _ = self.quit();
    }
}

/// DNS, then each address in turn, all within `options.connect_timeout`; TCP_NODELAY, or SMTP's
/// write-write-read pattern stalls on Nagle and delayed ACKs.
fn tcp_connect(options: &Options) -> Result<TcpStream, Error> {
    let deadline = Instant::now() + options.connect_timeout;
    let mut last = io::Error::new(ErrorKind::NotFound, "the host name has no address");
    for addr in (options.host.as_str(), options.port).to_socket_addrs().map_err(Error::Connect)? {
        let left = deadline.saturating_duration_since(Instant::now()).max(MIN_WAIT);
        match TcpStream::connect_timeout(&addr, left).and_then(|s| s.set_nodelay(true).map(|()| s)) {
            Ok(s) => return Ok(s),
            Err(e) => last = e,
        }
    }
    Err(Error::Connect(last))
}

impl<S: Socket> SmtpClient<S> {
    /// Runs the session, as [`SmtpClient::connect`] does, on a stream the caller connected (implicit TLS and
    /// STARTTLS included).
    pub fn from_stream(stream: S, options: &Options) -> Result<Self, Error> {
        options.validate()?;
        Self::start(stream, options, None)
    }

    fn start(sock: S, options: &Options, reconnect: Option<Connector<S>>) -> Result<Self, Error> {
        let origin = Instant::now();
        let mut client = SmtpClient {
            driver: options.driver(sock.local_ip(), origin)?,
            conn: None,
            reconnect,
            options: options.clone(),
            origin,
            read_timeout: None,
        };
        client.attach(sock)?;
        client.run_op()?;
        Ok(client)
    }

    /// Takes a fresh connection. A write blocks for at most [`MAX_WAIT`], then looks at what the server said.
    fn attach(&mut self, sock: S) -> Result<Option<IpAddr>, Error> {
        sock.set_write_timeout(Some(MAX_WAIT)).map_err(Error::Connect)?;
        self.read_timeout = None;
        let local = sock.local_ip();
        self.conn = Some(sock);
        Ok(local)
    }

    /// Sends one message, streaming `body` (a 64 KiB buffer; line endings may be anything, dots are stuffed).
    /// A body that can seek (a file, a `Cursor`) is read again when recipients need another transaction (a
    /// 452, the server's RCPTMAX) or another connection (its MAILMAX); wrap one that cannot in [`OneShot`].
    ///
    /// `Ok(report)` whenever the message got an outcome; [`SmtpClient::close_reason`] says why when the session
    /// ended. `Err` when the message never started ([`Error::Send`], [`Error::Closed`]) or reading `body`
    /// failed ([`Error::Body`]: the session is aborted).
    pub fn send(&mut self, envelope: Envelope, body: impl Read + Seek) -> Result<MessageReport, Error> {
        self.send_with_progress(envelope, body, |_, _| {})
    }

    /// Like [`SmtpClient::send`], calling `progress(sent, total)` as body octets are accepted.
    pub fn send_with_progress<B: Read + Seek>(
        &mut self,
        envelope: Envelope,
        mut body: B,
        mut progress: impl FnMut(u64, Option<u64>),
    ) -> Result<MessageReport, Error> {
        let (mut report, mut bodies) = (None, Bodies::default());
        let start = body.stream_position();
        self.driver.start_batch();
        bodies.submit(&mut self.driver, Some((envelope, body)), start);
        self.driver.end_batch();
        self.run(bodies, &mut || None, &mut |done| match done {
            Action::Report { report: r, .. } => report = Some(r),
            Action::Progress { sent, total, .. } => progress(sent, total),
            _ => {}
        })?;
        report.ok_or(Error::Send(SendError::Misuse(smtp_proto::ApiMisuse::NotConnected)))
    }

    /// Sends many messages on this connection, each next one's commands riding with the previous final dot
    /// (one round trip a message with PIPELINING). `on_report` gets each report as it comes. A message refused
    /// before any byte ends the batch: the ones already handed over get their reports, then the refusal is
    /// returned.
    pub fn send_all<B: Read + Seek>(
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
    }

    /// Asks the server whether the session still works (NOOP): `Ok` after its 250, else why not.
    pub fn noop(&mut self) -> Result<(), Error> {
        self.driver.noop()?;
        self.run_op()
    }

    /// Ends the session: QUIT, the 221 (or the server's close), TLS close_notify. `Ok` also when the session
    /// had already ended (see [`SmtpClient::close_reason`]).
    pub fn quit(mut self) -> Result<(), Error> {
        self.driver.quit();
        self.run_op()
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
    fn run_op(&mut self) -> Result<(), Error> {
        self.run::<OneShot<io::Empty>>(Bodies::default(), &mut || None, &mut |_| {})
    }

    /// The IO loop: does what the driver says until it says [`Action::Done`]. Messages come from `next` when
    /// the driver asks for them (a batch); reports and progress go to `on` as the driver's actions.
    fn run<B: Read + Seek>(
        &mut self,
        mut bodies: Bodies<B>,
        next: &mut dyn FnMut() -> Option<(Envelope, B)>,
        on: &mut dyn FnMut(Action),
    ) -> Result<(), Error> {
        self.driver.advance(self.origin.elapsed());
        loop {
            match self.driver.poll() {
                Action::Write { .. } => self.write(),
                Action::Read { deadline } => self.read(deadline),
                Action::FillBody { slot } => match bodies.get(slot).0.read(self.driver.body_buf()) {
                    Ok(n) => self.driver.body_read(self.origin.elapsed(), n),
                    Err(e) => self.driver.body_failed(e),
                },
                Action::Rewind { slot } => {
                    let (body, start) = bodies.get(slot);
                    self.driver.rewound(body.seek(SeekFrom::Start(start)).map(drop));
                }
                progress @ Action::Progress { .. } => on(progress),
                Action::NextMessage => {
                    let mut message = next();
                    let start = message.as_mut().map_or(Ok(0), |(_, body)| body.stream_position());
                    bodies.submit(&mut self.driver, message, start);
                }
                Action::Report { slot, report } => {
                    bodies.reported(slot);
                    on(Action::Report { slot, report });
                }
                Action::Reconnect => self.reconnect(),
                Action::Done => {
                    // A session that ended lets go of its connection.
                    self.conn = self.conn.take().filter(|_| !self.driver.client().is_closed());
                    return bodies.finish(&mut self.driver);
                }
            }
        }
    }

    fn write(&mut self) {
        let result = match &mut self.conn {
            Some(sock) => sock.write(self.driver.to_write()),
            None => Err(ErrorKind::NotConnected.into()),
        };
        let now = self.origin.elapsed();
        match result {
            Ok(n) => self.driver.wrote(now, n),
            // The server stopped reading for a while: it may have answered (a 421 mid-body). A read that
            // returns at once takes that, or tells the driver the time (a write stalled for a data block
            // is its timeout).
            Err(e) if is_timeout(&e) => self.read(Some(now)),
            Err(e) => self.driver.write_failed(now, e),
        }
    }

    fn read(&mut self, deadline: Option<Duration>) {
        let now = self.origin.elapsed();
        let Some(sock) = &mut self.conn else { return self.driver.received(now, 0) };
        let timeout = deadline.map(|d| d.saturating_sub(now).clamp(MIN_WAIT, MAX_WAIT));
        if self.read_timeout != Some(timeout) {
            if let Err(e) = sock.set_read_timeout(timeout) {
                return self.driver.io_failed(now, e);
            }
            self.read_timeout = Some(timeout);
        }
        let result = sock.read(self.driver.read_buf());
        let now = self.origin.elapsed();
        match result {
            Ok(n) => self.driver.received(now, n),
            Err(e) if is_timeout(&e) => self.driver.timed_out(now),
            Err(e) => self.driver.io_failed(now, e),
        }
    }

    /// The server's MAILMAX: a new connection for the messages left.
    fn reconnect(&mut self) {
        self.conn = None;
        let opened = match self.reconnect {
            Some(connect) => connect(&self.options).and_then(|sock| self.attach(sock)),
            None => Err(Error::Connect(io::Error::other("a connection given to from_stream"))),
        };
        match opened {
            Ok(local) => self.driver.reconnected(local, self.origin.elapsed()),
            Err(e) => self.driver.reconnect_failed(e),
        }
    }
}

fn is_timeout(e: &io::Error) -> bool {
    matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut)
}
