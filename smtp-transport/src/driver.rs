//! The connection driver: the session around the core, written once for every adapter.
//!
//! An adapter (blocking sockets, futures-io, tokio) owns a connection, a clock and the message bodies, and
//! makes no protocol decision. It asks the [`Driver`] what to do next ([`Driver::poll`]), does that with its
//! runtime's primitives, and hands the result back; quinn's `ConnectionDriver` over its `Runtime` is the
//! model. The driver owns the [`Client`] and everything between it and the socket: the output buffer and the
//! input buffer, TLS (rustls in memory: implicit TLS and STARTTLS, so an adapter only ever moves
//! ciphertext), pumping the body into `write_body` with back-pressure, batches whose next transaction rides
//! with the previous final dot, progress, the transcript (as `tracing` events under the `smtp_transcript`
//! target), close reasons, and messages whose recipients need several transactions.
//!
//! ```text
//! loop {
//!     match driver.poll() {
//!         Action::Write { deadline }  => write driver.to_write() (reading meanwhile is allowed), then wrote(n)
//!         Action::Read { deadline }   => read into driver.read_buf(), then received(n), or timed_out at the deadline
//!         Action::FillBody { slot }   => read that message's body into driver.body_buf(), then body_read(now, n)
//!         Action::Rewind { slot }     => seek that body back to its start, then rewound(ok)
//!         Action::Progress { .. }     => tell the caller
//!         Action::NextMessage         => submit(envelope, ..) the batch's next message, or end_batch()
//!         Action::Report { .. }       => hand the report to the caller; the body can go
//!         Action::Reconnect           => connect again and reconnected(..), or reconnect_failed(..)
//!         Action::Done                => the operation is over; close_reason() says if the session ended
//!     }
//! }
//! ```
//!
//! Time is an input, as in the core: a `Duration` since an origin of the adapter's choosing, given with every
//! IO result and by [`Driver::advance`] before an operation starts.

use std::collections::VecDeque;
use std::io;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use smtp_proto::address::HeloName;
use smtp_proto::{
    ApiMisuse, Client, ClientConfig, Envelope, Event, Failure, MessageId, MessageReport, SendError, State,
    Unsendable,
};
use tracing::debug;

use crate::Error;
use crate::rate::Rate;
use crate::split::Message;
use crate::tls::{Tls, TlsSetup};

/// The adapter's handle on one message's body, given by [`Driver::submit`].
pub type Slot = u64;

/// The server's bytes are read into a buffer this big.
const READ_BUF: usize = 16 * 1024;
/// The body is read into a buffer this big (allocated by the first message).
const BODY_BUF: usize = 64 * 1024;
/// After a failed write, how long the server's last words are waited for: long enough for a runtime to see
/// bytes already in the socket.
const DRAIN: Duration = Duration::from_millis(50);

/// What the adapter does next. See the [module docs](self) for the loop.
#[derive(Debug)]
#[must_use]
// A report is handed out once a message: boxing it would only add an allocation.
#[allow(clippy::large_enum_variant)]
pub enum Action {
    /// Write [`Driver::to_write`], then [`Driver::wrote`]. Give up at `deadline` ([`Driver::timed_out`]). The
    /// adapter may read meanwhile ([`Driver::received`]): a server may answer in the middle of a body.
    Write {
        /// When to give up.
        deadline: Option<Duration>,
    },
    /// Wait for the server: read into [`Driver::read_buf`], then [`Driver::received`] (0 octets: the server
    /// closed), or [`Driver::timed_out`] at `deadline`.
    Read {
        /// When to give up.
        deadline: Option<Duration>,
    },
    /// Read the body of message `slot` into [`Driver::body_buf`], then [`Driver::body_read`] (0 octets: its
    /// end) or [`Driver::body_failed`].
    FillBody {
        /// The message.
        slot: Slot,
    },
    /// Go back to the start of message `slot`'s body (another transaction sends it to more recipients), then
    /// [`Driver::rewound`].
    Rewind {
        /// The message.
        slot: Slot,
    },
    /// Body octets of message `slot` accepted so far, and the size its envelope declared.
    Progress {
        /// The message.
        slot: Slot,
        /// Octets accepted.
        sent: u64,
        /// The declared size.
        total: Option<u64>,
    },
    /// The batch can take its next message now: [`Driver::submit`] it, or [`Driver::end_batch`].
    NextMessage,
    /// Message `slot` has its outcome; its body is no longer needed.
    Report {
        /// The message.
        slot: Slot,
        /// One report for the whole message, each recipient with the reply that decided it.
        report: MessageReport,
    },
    /// The server takes no more messages on this connection (`LIMITS MAILMAX`, RFC 9422): connect again
    /// and call [`Driver::reconnected`], or [`Driver::reconnect_failed`].
    Reconnect,
    /// The operation is over: connected, the batch done, the QUIT answered, the NOOP answered, or the
    /// session ended ([`Driver::close_reason`]).
    Done,
}

/// What the adapter asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    Connect,
    /// Messages; `open` while more may come.
    Batch {
        open: bool,
    },
    Noop,
    /// One read that returns at once (`read` once asked for): what the server said while the session sat idle.
    Peek {
        read: bool,
    },
    /// `open`: the session still lived when QUIT was asked for.
    Quit {
        open: bool,
    },
}

/// The body of the message being written.
#[derive(Debug, Default)]
struct Pump {
    /// The core's id of the transaction whose body this is.
    id: Option<MessageId>,
    slot: Slot,
    /// The core takes more now.
    writable: bool,
    /// Rewind before the first read.
    rewind: bool,
    /// `body[start..end]` is read but not yet taken by the core.
    start: usize,
    end: usize,
}

/// One SMTP session around the core, for an adapter to run. See the [module docs](self).
#[derive(Debug)]
pub struct Driver {
    core: Client,
    /// The configured EHLO name; `None`: the local address, as a literal.
    fixed_helo: Option<HeloName>,
    config: ClientConfig,
    tls_setup: Option<TlsSetup>,
    /// The TLS session, once started (before the greeting for implicit TLS, after the 220 to STARTTLS).
    tls: Option<Tls>,
    /// Whether the current connection's certificate verified, once its handshake is over.
    tls_verified: Option<bool>,
    /// The core's output under TLS, gathered as plaintext until the driver seals it into records to write.
    plain: Vec<u8>,
    op: Op,
    out: Vec<u8>,
    written: usize,
    /// When the output still being written was handed out.
    writing_since: Duration,
    input: Box<[u8]>,
    body: Box<[u8]>,
    pump: Pump,
    messages: VecDeque<Message>,
    /// Actions to hand out before anything else (StartTls, Progress, Report).
    actions: VecDeque<Action>,
    next_slot: Slot,
    ready: bool,
    alive: bool,
    /// The IO or TLS failure that is ending the session, until the core's `Closed` takes it.
    cause: Option<Error>,
    /// A message whose connection died before its end of data goes again on a new connection, once.
    retry_unsent: bool,
    /// Our own bound on the recipients of one transaction.
    rcpt_cap: Option<u32>,
    /// The shared rate limit, and the instant `now` counts from.
    pace: Option<(Arc<Rate>, Instant)>,
    /// The rate limit holds the next transaction until then.
    paced_until: Option<Duration>,
    /// Reading a body failed: the operation's error, whatever the session's close reason.
    body_error: Option<Error>,
    close_reason: Option<Arc<Error>>,
    /// The time the adapter last gave (with each IO result): the driver's clock between them.
    now: Duration,
    /// Implicit TLS: the handshake must be over by then.
    handshake_deadline: Option<Duration>,
    /// A write failed: what the server said before (a 421 before it hung up) is read until then, and then
    /// this is the error.
    drain: Option<(Duration, Error)>,
    /// The session ended at its transaction limit and no new one could be opened: every further message of
    /// the batch gets this refusal as its report.
    spent: Option<Unsendable>,
}

/// What starting transactions came to.
#[allow(clippy::large_enum_variant)]
enum Step {
    /// Something changed: go round again.
    Continue,
    Act(Action),
    Idle,
}

impl Driver {
    /// A session on a connection just opened from `local`, introducing itself as `helo` (`None`: the local
    /// address as a literal, RFC 5321 §4.1.4); `tls` is needed for
    /// [`TlsMode::Implicit`](smtp_proto::TlsMode::Implicit) and STARTTLS. Poll it until [`Action::Done`]:
    /// then the session is ready for mail, or over.
    pub fn new(
        helo: Option<HeloName>,
        local: Option<IpAddr>,
        mut config: ClientConfig,
        tls: Option<TlsSetup>,
        now: Duration,
    ) -> Driver {
        config.transcript |= tracing::enabled!(target: "smtp_transcript", tracing::Level::DEBUG);
        let mut driver = Driver {
            core: Client::new(crate::helo_name_for(helo.as_ref(), local), config.clone(), now),
            fixed_helo: helo,
            config,
            tls_setup: tls,
            tls: None,
            tls_verified: None,
            plain: Vec::new(),
            op: Op::Connect,
            out: Vec::new(),
            written: 0,
            writing_since: now,
            input: vec![0; READ_BUF].into_boxed_slice(),
            body: Box::default(),
            pump: Pump::default(),
            messages: VecDeque::new(),
            actions: VecDeque::new(),
            next_slot: 1,
            ready: false,
            alive: false,
            cause: None,
            retry_unsent: false,
            rcpt_cap: None,
            pace: None,
            paced_until: None,
            body_error: None,
            close_reason: None,
            now,
            handshake_deadline: None,
            drain: None,
            spent: None,
        };
        driver.implicit_tls(now);
        driver
    }

    // ---------------------------------------------------------------------------------------------------
    // Operations

    /// Sends at most `max` recipients in one transaction (when the body can be read again): the rest go in
    /// further ones. RFC 5321 §4.5.3.1.8 makes servers take 100; a server without `LIMITS RCPTMAX` may count
    /// more as errors (Postfix ends the session after its overshoot limit).
    pub fn rcpt_per_transaction(&mut self, max: Option<u32>) {
        self.rcpt_cap = max;
    }

    /// Sends a message whose connection died before its end of data (a lost connection, a 421) again, once,
    /// on a new connection ([`Action::Reconnect`]), when its body can be read again: it was not sent. After
    /// its end of data, never: its outcome is unknown. Off by default; pools turn it on.
    pub fn retry_unsent(&mut self, on: bool) {
        self.retry_unsent = on;
    }

    /// Takes every transaction's start from `rate` (shared with other drivers), the driver's `now` counting
    /// from `origin`: a message waits, reading replies meanwhile, until the rate lets its MAIL go.
    pub fn pace(&mut self, rate: Arc<Rate>, origin: Instant) {
        self.pace = Some((rate, origin));
    }

    /// Starts a batch: the driver asks for each next message ([`Action::NextMessage`]) until
    /// [`Driver::end_batch`]. A single send is a batch of one: `submit`, then `end_batch`.
    pub fn start_batch(&mut self) {
        self.op = Op::Batch { open: true };
    }

    /// No more messages in this batch: [`Action::Done`] comes once every message has its report.
    pub fn end_batch(&mut self) {
        self.op = Op::Batch { open: false };
    }

    /// Hands over a message; the adapter keeps its body under the returned slot. `replayable`: the body can
    /// be read again from its start, so recipients beyond the server's limits go in further transactions
    /// (otherwise the report lists them, [`MessageReport::retry_recipients`]).
    ///
    /// Refused before any byte is written with [`Error::Closed`] once the session is over and
    /// [`Error::Send`] when the server cannot carry the message (SIZE, 8BITMIME, SMTPUTF8, DSN, …).
    pub fn submit(&mut self, envelope: Envelope, replayable: bool) -> Result<Slot, Error> {
        let slot = self.next_slot;
        if let (true, Some(refusal)) = (self.core.is_closed(), &self.spent) {
            // Past the server's limit with no new connection: reported, not refused, like the ones before it.
            let mut message = Message::new(slot, envelope, replayable);
            message.abandon(Failure::Unsendable(refusal.clone()));
            self.next_slot += 1;
            self.report(message);
            return Ok(slot);
        }
        if self.core.is_closed() {
            return Err(self.closed_error());
        }
        if self.pace.is_some() {
            // Started when the rate allows (`next_transaction`); refused now if it cannot be sent at all.
            match self.core.precheck(&envelope) {
                Ok(()) | Err(Unsendable::SessionLimit { .. }) => {}
                Err(refusal) => return Err(Error::Send(SendError::Unsendable(refusal))),
            }
            self.next_slot += 1;
            self.messages.push_back(Message::new(slot, envelope, replayable));
            return Ok(slot);
        }
        let mut message = Message::new(slot, envelope, replayable);
        let (part, indices) = message.next_part(self.rcpt_max()).expect("an envelope has recipients");
        match self.core.send_message(part) {
            Ok(id) => message.part = Some((id, indices)),
            // Sent on the next connection (`Action::Reconnect`).
            Err(SendError::Unsendable(Unsendable::SessionLimit { .. })) => message.put_back(indices),
            Err(e) => return Err(Error::Send(e)),
        }
        self.next_slot += 1;
        self.messages.push_back(message);
        Ok(slot)
    }

    /// Asks the server whether the session still works (NOOP): [`Action::Done`] follows its 250, or the end
    /// of the session ([`Driver::close_reason`]).
    pub fn noop(&mut self) -> Result<(), Error> {
        self.probe(false)
    }

    /// Like [`Driver::noop`] with RSET: how a connection that sat idle is checked before it is used again.
    pub fn rset(&mut self) -> Result<(), Error> {
        self.probe(true)
    }

    /// Whether a session that sat idle still works, before it carries a message: one read that returns at once
    /// ([`Action::Read`] with a deadline already passed) takes an EOF or a 421 that came meanwhile, without a
    /// round trip; with `rset`, an RSET answered 250 instead (RFC 5321 §4.1.1.5). [`Driver::finish`] says
    /// whether the session lives.
    pub fn check(&mut self, rset: bool) -> Result<(), Error> {
        if rset {
            return self.probe(true);
        }
        if self.core.is_closed() {
            return Err(self.closed_error());
        }
        self.op = Op::Peek { read: false };
        Ok(())
    }

    fn probe(&mut self, rset: bool) -> Result<(), Error> {
        if self.core.is_closed() {
            return Err(self.closed_error());
        }
        let asked = if rset { self.core.rset() } else { self.core.noop() };
        asked.map_err(|e| Error::Send(SendError::Misuse(e)))?;
        self.alive = false;
        self.op = Op::Noop;
        Ok(())
    }

    /// Ends the session: QUIT once the messages in flight are done; [`Action::Done`] after the 221 (or the
    /// server's close).
    pub fn quit(&mut self) {
        self.op = Op::Quit { open: !self.core.is_closed() };
        self.core.quit();
    }

    // ---------------------------------------------------------------------------------------------------
    // The loop

    /// What to do next. The time is the one the adapter gave with its last IO result ([`Driver::wrote`],
    /// [`Driver::received`], [`Driver::timed_out`], …): it reads its clock once an IO, not once an action.
    pub fn poll(&mut self) -> Action {
        let now = self.now;
        loop {
            if let Some(action) = self.actions.pop_front() {
                return action;
            }
            if let Some((until, _)) = self.drain {
                // After a failed write: nothing more is written, what the server said is read.
                if let Some(event) = self.core.poll_event() {
                    self.on_event(event);
                    continue;
                }
                if !self.core.is_closed() {
                    return Action::Read { deadline: Some(until) };
                }
                self.drain = None;
            }
            if self.written == self.out.len() {
                self.out.clear();
                self.written = 0;
                self.writing_since = now;
            }
            // Appends behind what is still being written: commands queued meanwhile keep their order.
            if self.transmit(now) > 0 {
                continue;
            }
            if let Some(event) = self.core.poll_event() {
                self.on_event(event);
                continue;
            }
            // Constant memory: the next block of body once less than a block waits to be written. A short
            // body's end (and the next message's commands) then go in the same write as the body.
            if self.out.len() - self.written + self.plain.len() < BODY_BUF && self.feed_body() {
                continue;
            }
            // Before writing: the next message's commands ride with this final dot.
            match self.next_transaction(now) {
                Step::Continue => continue,
                Step::Act(action) => return action,
                Step::Idle => {}
            }
            if !self.seal(now) {
                continue;
            }
            if self.written < self.out.len() {
                let stall = self.writing_since + self.config.timeouts.data_block;
                return Action::Write { deadline: earliest(self.deadline(), Some(stall)) };
            }
            if self.op_done() {
                return Action::Done;
            }
            if self.op == (Op::Peek { read: false }) {
                self.op = Op::Peek { read: true };
                return Action::Read { deadline: Some(now) };
            }
            return Action::Read { deadline: earliest(self.deadline(), self.paced_until) };
        }
    }

    /// The core's next deadline, or the implicit TLS handshake's.
    fn deadline(&self) -> Option<Duration> {
        earliest(self.core.poll_timeout(), self.handshaking_until())
    }

    /// The operation's result, after [`Action::Done`]: connected, the batch sent (each message handed over
    /// has had its [`Action::Report`]), the QUIT or the NOOP answered; else why not. A batch the session
    /// ended before [`Driver::end_batch`] fails with the reason ([`Error::Closed`]); a single message (`submit`
    /// then `end_batch`) has its report say what happened.
    pub fn finish(&mut self) -> Result<(), Error> {
        if let Some(error) = self.body_error.take() {
            return Err(error);
        }
        let failed = match self.op {
            Op::Connect => !self.ready,
            // The session ended before the batch's every message was handed over.
            Op::Batch { open } => open && self.core.is_closed(),
            Op::Noop => !self.alive,
            Op::Peek { .. } => self.core.is_closed(),
            // A session that had already ended needs no QUIT: that is no failure.
            Op::Quit { open } => open && self.close_reason.is_some(),
        };
        match (failed, self.op) {
            (false, _) => Ok(()),
            // The session never came to be: its error as it is (nobody else holds it).
            (true, Op::Connect) => Err(match self.close_reason.take() {
                Some(cause) => Arc::try_unwrap(cause).unwrap_or_else(Error::Closed),
                None => Error::Session(smtp_proto::Error::UnexpectedEof),
            }),
            (true, _) => Err(self.closed_error()),
        }
    }

    /// The bytes to write ([`Action::Write`]).
    pub fn to_write(&self) -> &[u8] {
        &self.out[self.written..]
    }

    /// The adapter wrote `n` of [`Driver::to_write`]'s octets (0: the connection takes no more).
    pub fn wrote(&mut self, now: Duration, n: usize) {
        self.now = self.now.max(now);
        if n == 0 {
            return self.io_failed(now, io::ErrorKind::WriteZero.into());
        }
        self.written = (self.written + n).min(self.out.len());
    }

    /// Where the server's bytes go ([`Action::Read`], or while writing).
    pub fn read_buf(&mut self) -> &mut [u8] {
        &mut self.input
    }

    /// The octets to write and the read buffer at once, for an adapter that reads while it writes.
    pub fn io_bufs(&mut self) -> (&[u8], &mut [u8]) {
        (&self.out[self.written..], &mut self.input)
    }

    /// `n` octets arrived in [`Driver::read_buf`]; 0 means the server closed the connection.
    pub fn received(&mut self, now: Duration, n: usize) {
        self.now = self.now.max(now);
        if n == 0 && self.drain.is_some() {
            return self.end_drain(now);
        }
        if n == 0 {
            // The server is gone: what is left to write (a close_notify after its 221, say) can never be
            // written, and asking for it would have the adapter read the same EOF again, forever.
            self.out.clear();
            self.plain.clear();
            self.written = 0;
        }
        let data = &self.input[..n];
        let Some(tls) = &mut self.tls else {
            return match n {
                0 => self.core.handle_eof(now),
                _ => self.core.handle_input(now, data),
            };
        };
        if n == 0 {
            if tls.is_handshaking() {
                // A server that hangs up in the middle of the handshake failed TLS, not the session: an
                // opportunistic client may try again in plaintext (RFC 7435 §4).
                let eof = io::Error::new(io::ErrorKind::UnexpectedEof, "the server closed the connection");
                return self.fail_transport(now, Error::Tls(eof));
            }
            return self.core.handle_eof(now);
        }
        let core = &mut self.core;
        let result = tls.receive(data, &mut |plain| {
            // Plaintext means the handshake is over: the core learns it first (RFC 3207 §4.2).
            if core.state() == State::AwaitingTls {
                let _ = core.tls_established(now);
            }
            core.handle_input(now, plain);
        });
        tls.flush(&mut self.out);
        if self.tls_verified.is_none() {
            self.tls_verified = tls.verified();
        }
        match result {
            Err(e) => self.fail_transport(now, e),
            Ok(()) if core.state() == State::AwaitingTls && !tls.is_handshaking() => {
                debug!("TLS established");
                let _ = core.tls_established(now);
            }
            Ok(()) => {}
        }
    }

    /// Reading failed: the connection is gone. What the core already knew wins as the close reason (a 554
    /// greeting, say, before the reset). [`io::ErrorKind::Interrupted`] is no failure: the next
    /// [`Driver::poll`] asks for the same again.
    pub fn io_failed(&mut self, now: Duration, error: io::Error) {
        self.now = self.now.max(now);
        if error.kind() == io::ErrorKind::Interrupted {
            return;
        }
        if self.drain.is_some() {
            return self.end_drain(now);
        }
        self.fail_transport(now, Error::Io(error));
    }

    /// Writing failed (a reset, a broken pipe). A server that gives up usually says why first (a 421, then
    /// it closes with our data unread): the next [`Action::Read`]s, within a short deadline, take what it
    /// said, and only then is the connection gone with `error`.
    pub fn write_failed(&mut self, now: Duration, error: io::Error) {
        self.now = self.now.max(now);
        if error.kind() == io::ErrorKind::Interrupted {
            return;
        }
        debug!(%error, "write failed: reading what the server said first");
        self.out.clear();
        self.written = 0;
        self.drain = Some((now + DRAIN, Error::Io(error)));
    }

    /// The reads after a failed write are over: the write's error ends the session, unless the server's
    /// own reason did.
    fn end_drain(&mut self, now: Duration) {
        if let Some((_, error)) = self.drain.take() {
            self.fail_transport(now, error);
        }
    }

    fn fail_transport(&mut self, now: Duration, error: Error) {
        debug!(%error, "connection failed");
        self.cause.get_or_insert(error);
        self.out.clear();
        self.plain.clear();
        self.written = 0;
        self.tls = None;
        self.core.handle_eof(now);
    }

    /// The deadline of [`Action::Read`] or [`Action::Write`] passed. A stalled write times out as the
    /// reply or the data block it holds up would.
    pub fn timed_out(&mut self, now: Duration) {
        self.now = self.now.max(now);
        if self.drain.as_ref().is_some_and(|(until, _)| now >= *until) {
            return self.end_drain(now);
        }
        if self.handshaking_until().is_some_and(|deadline| now >= deadline) {
            let timeout = io::Error::new(
                io::ErrorKind::TimedOut,
                "the TLS handshake took longer than the connect timeout",
            );
            return self.fail_transport(now, Error::Tls(timeout));
        }
        self.core.handle_timeout(now);
        let stalled =
            self.written < self.out.len() && now >= self.writing_since + self.config.timeouts.data_block;
        if stalled {
            self.core.handle_stalled_write(now);
        }
    }

    /// Where the body goes ([`Action::FillBody`]).
    pub fn body_buf(&mut self) -> &mut [u8] {
        if self.body.is_empty() {
            self.body = vec![0; BODY_BUF].into_boxed_slice();
        }
        &mut self.body
    }

    /// The adapter's clock, before an operation starts: it may have moved far since the last IO result (a
    /// session that sat idle), and the operation's first deadlines count from it.
    pub fn advance(&mut self, now: Duration) {
        self.now = self.now.max(now);
    }

    /// `n` octets of body arrived in [`Driver::body_buf`] at `now` (a body may be slow to read); 0 means the
    /// body ended.
    pub fn body_read(&mut self, now: Duration, n: usize) {
        self.now = self.now.max(now);
        let Some(id) = self.pump.id else { return };
        if n == 0 {
            // An error means the message already has its outcome (the server interrupted it).
            let _ = self.core.finish_body(id);
            self.pump = Pump::default();
        } else {
            (self.pump.start, self.pump.end) = (0, n);
        }
    }

    /// Reading the body failed: DATA cannot be cancelled cleanly, so the session is aborted.
    /// [`io::ErrorKind::Interrupted`] is no failure: [`Action::FillBody`] (or [`Action::Rewind`]) comes again.
    pub fn body_failed(&mut self, error: io::Error) {
        if error.kind() == io::ErrorKind::Interrupted {
            return;
        }
        debug!(%error, "body failed: aborting the session");
        self.body_error = Some(Error::Body(error));
        self.core.abort();
    }

    /// [`Action::Rewind`] done, or failed (the session is then aborted, as for a failed read).
    pub fn rewound(&mut self, result: io::Result<()>) {
        match result {
            Ok(()) => self.pump.rewind = false,
            Err(e) => self.body_failed(e),
        }
    }

    /// A new connection after [`Action::Reconnect`], whose local address is `local`: the messages not yet
    /// sent go on it.
    pub fn reconnected(&mut self, local: Option<IpAddr>, now: Duration) {
        self.now = self.now.max(now);
        let helo = crate::helo_name_for(self.fixed_helo.as_ref(), local);
        self.core = Client::new(helo, self.config.clone(), now);
        self.ready = false;
        self.out.clear();
        self.plain.clear();
        self.written = 0;
        self.tls = None;
        self.drain = None;
        self.spent = None;
        self.tls_verified = None;
        self.implicit_tls(now);
    }

    /// No new connection after [`Action::Reconnect`]: the messages not yet sent get their reports.
    pub fn reconnect_failed(&mut self, error: Error) {
        debug!(%error, "reconnect failed");
        // Recipients that were sent before keep their result; the others were stopped by MAILMAX.
        let failure = Failure::Unsendable(Unsendable::SessionLimit { max: self.mail_max() });
        if self.core.is_spent() {
            self.spent = Some(Unsendable::SessionLimit { max: self.mail_max() });
        }
        for mut message in std::mem::take(&mut self.messages) {
            message.abandon(failure.clone());
            self.report(message);
        }
        self.close_reason = Some(Arc::new(error));
    }

    // ---------------------------------------------------------------------------------------------------
    // Getters

    /// The session, for its state and capabilities.
    pub fn client(&self) -> &Client {
        &self.core
    }

    /// Why the session ended, when it ended with an error: the IO, TLS or body failure, unless the core had
    /// a reason of its own first (the server's). `None` while the session lives and after a clean QUIT.
    pub fn close_reason(&self) -> Option<&Error> {
        self.close_reason.as_deref()
    }

    /// Whether the server's certificate verified (trusted roots, the server's name), once a TLS handshake is
    /// over: always under [`CertificateCheck::Required`](crate::CertificateCheck::Required), where a
    /// certificate that does not verify ends the handshake; either under
    /// [`CertificateCheck::Recorded`](crate::CertificateCheck::Recorded). `None` without TLS.
    pub fn tls_verified(&self) -> Option<bool> {
        self.tls_verified
    }

    /// The session was ready for mail (connecting succeeded).
    pub fn is_ready(&self) -> bool {
        self.ready
    }

    /// The last [`Driver::noop`] was answered 250.
    pub fn is_alive(&self) -> bool {
        self.alive
    }

    // ---------------------------------------------------------------------------------------------------
    // Inside

    fn on_event(&mut self, event: Event) {
        match event {
            Event::Transcript { from_server, line } => {
                debug!(target: "smtp_transcript", "{} {line}", if from_server { "S:" } else { "C:" });
            }
            Event::Ready => self.ready = true,
            Event::Alive => self.alive = true,
            Event::StartTls => self.start_tls(),
            Event::BodyRequested { id } => {
                let part_of = |m: &Message| m.part.as_ref().is_some_and(|p| p.0 == id);
                let Some(m) = self.messages.iter_mut().find(|m| part_of(m)) else { return };
                // A later transaction of the same message reads the body again from its start.
                let rewind = std::mem::replace(&mut m.body_used, true);
                self.pump = Pump { id: Some(id), slot: m.slot, writable: true, rewind, start: 0, end: 0 };
            }
            Event::BodyWritable { id } if self.pump.id == Some(id) => self.pump.writable = true,
            Event::Progress { id, sent, total } if self.pump.id == Some(id) => {
                self.actions.push_back(Action::Progress { slot: self.pump.slot, sent, total });
            }
            Event::MessageDone(report) => self.message_done(report),
            Event::Closed { reason } => self.closed(reason),
            other => debug!(event = ?other),
        }
    }

    /// Gives the core the next block of the body, or asks for it. True when something happened.
    fn feed_body(&mut self) -> bool {
        let Some(id) = self.pump.id else { return false };
        if !self.pump.writable {
            return false;
        }
        if self.pump.rewind {
            self.actions.push_back(Action::Rewind { slot: self.pump.slot });
            return true;
        }
        if self.pump.start == self.pump.end {
            self.actions.push_back(Action::FillBody { slot: self.pump.slot });
            return true;
        }
        match self.core.write_body(id, &self.body[self.pump.start..self.pump.end]) {
            Ok(n) => {
                self.pump.start += n;
                // Nothing taken: the core's buffer is full; `BodyWritable` follows.
                self.pump.writable = n > 0;
            }
            Err(ApiMisuse::UndeclaredEightBit) => {
                // A 7-bit body (declared, or to a server without 8BITMIME) with 8-bit octets.
                self.body_failed(io::Error::new(io::ErrorKind::InvalidData, ApiMisuse::UndeclaredEightBit));
            }
            // The message already has its outcome (a refused chunk, a reply during the body).
            Err(_) => self.pump = Pump::default(),
        }
        true
    }

    /// Starts the next transaction of a message split over several, or asks for the batch's next message:
    /// both as soon as the core can take one.
    fn next_transaction(&mut self, now: Duration) -> Step {
        self.paced_until = None;
        let batch_open = self.op == Op::Batch { open: true };
        if batch_open && self.spent.is_some() && self.core.is_closed() {
            // Each further message gets its report at once (`submit`).
            return Step::Act(Action::NextMessage);
        }
        if self.core.state() != State::Ready || self.core.is_busy() || self.pump.id.is_some() {
            return Step::Idle;
        }
        let Some(pos) = self.messages.iter().position(Message::waiting) else {
            return if batch_open { Step::Act(Action::NextMessage) } else { Step::Idle };
        };
        if !self.admit(now) {
            return Step::Idle;
        }
        let rcpt_max = self.rcpt_max();
        let m = &mut self.messages[pos];
        let Some((part, indices)) = m.next_part(rcpt_max) else { return Step::Idle };
        match self.core.send_message(part) {
            Ok(id) => m.part = Some((id, indices)),
            Err(SendError::Unsendable(Unsendable::SessionLimit { .. })) => {
                // RFC 9422 MAILMAX: QUIT, then the rest goes on a new connection (`Action::Reconnect`).
                m.put_back(indices);
                self.core.quit();
            }
            Err(e) => {
                m.put_back(indices);
                m.abandon(if let SendError::Unsendable(r) = e {
                    Failure::Unsendable(r)
                } else {
                    Failure::Session(smtp_proto::Error::Aborted)
                });
                let message = self.messages.remove(pos).expect("in range");
                self.report(message);
            }
        }
        Step::Continue
    }

    /// Takes the core's output; returns how many octets. With TLS it gathers as plaintext until the driver
    /// is about to write (`seal`): a message's body, its end and the next message's commands then
    /// go in one record, as a TLS client that writes whole messages would send them, not one record (and one
    /// rustls buffer) each.
    fn transmit(&mut self, now: Duration) -> usize {
        let out = if self.tls.is_some() { &mut self.plain } else { &mut self.out };
        self.core.poll_transmit(now, out)
    }

    /// Encrypts the gathered plaintext into the output; false when TLS failed (the session is then ending).
    fn seal(&mut self, now: Duration) -> bool {
        let Some(tls) = self.tls.as_mut().filter(|_| !self.plain.is_empty()) else { return true };
        let result = tls.send(&self.plain, &mut self.out);
        self.plain.clear();
        match result {
            Ok(()) => true,
            Err(e) => {
                self.fail_transport(now, e);
                false
            }
        }
    }

    /// The 220 to STARTTLS: the handshake starts with the next write.
    fn start_tls(&mut self) {
        let tls = match &self.tls_setup {
            Some(setup) => Tls::new(setup),
            None => Err(Error::TlsSetup(crate::TlsSetupError::Rustls("no TLS configuration".into()))),
        };
        match tls {
            Ok(mut tls) => {
                tls.flush(&mut self.out);
                self.tls = Some(tls);
            }
            Err(e) => {
                self.cause.get_or_insert(e);
                self.core.abort();
            }
        }
    }

    /// Implicit TLS (RFC 8314): the handshake starts before the greeting, bounded by the connect timeout.
    fn implicit_tls(&mut self, now: Duration) {
        self.handshake_deadline = None;
        if self.config.tls == smtp_proto::TlsMode::Implicit {
            self.handshake_deadline = self.tls_setup.as_ref().map(|s| now + s.handshake_timeout);
            self.start_tls();
        }
    }

    /// The implicit handshake's deadline, while it is not over.
    fn handshaking_until(&self) -> Option<Duration> {
        self.handshake_deadline.filter(|_| self.tls.as_ref().is_some_and(Tls::is_handshaking))
    }

    fn message_done(&mut self, report: MessageReport) {
        let Some(pos) = self.messages.iter().position(|m| m.part.as_ref().is_some_and(|p| p.0 == report.id))
        else {
            return;
        };
        if self.pump.id == Some(report.id) {
            self.pump = Pump::default();
        }
        let message = &mut self.messages[pos];
        message.part_done(report, self.retry_unsent);
        if !message.waiting() {
            let message = self.messages.remove(pos).expect("in range");
            self.report(message);
        }
    }

    fn report(&mut self, message: Message) {
        let slot = message.slot;
        let report = message.finish();
        debug!(outcome = ?report.outcome, failure = ?report.failure, "message done");
        self.actions.push_back(Action::Report { slot, report });
    }

    fn closed(&mut self, reason: Option<smtp_proto::Error>) {
        let cause = self.cause.take();
        debug!(?reason, ?cause, "session closed");
        let reason = match (reason, cause) {
            (None, _) => None,
            // The core only saw the connection end, or was aborted for the cause: the cause says more.
            (Some(smtp_proto::Error::UnexpectedEof | smtp_proto::Error::Aborted), Some(cause)) => Some(cause),
            (Some(core), _) => Some(Error::Session(core)),
        };
        self.out.clear();
        self.plain.clear();
        self.written = 0;
        self.pump = Pump::default();
        if let (Some(tls), None) = (&mut self.tls, &reason) {
            tls.close(&mut self.out);
        }
        if self.messages.iter().any(Message::waiting) {
            // After a QUIT at the server's MAILMAX, or a message to send again: a new connection.
            debug!(?reason, "reconnecting for the messages left");
            self.actions.push_back(Action::Reconnect);
            return;
        }
        let failure = Failure::Session(match &reason {
            Some(Error::Session(e)) => e.clone(),
            _ => smtp_proto::Error::UnexpectedEof,
        });
        for mut message in std::mem::take(&mut self.messages) {
            message.abandon(failure.clone());
            self.report(message);
        }
        self.close_reason = reason.map(Arc::new);
    }

    fn op_done(&self) -> bool {
        if self.core.is_closed() {
            return self.actions.is_empty();
        }
        match self.op {
            Op::Connect => self.ready,
            Op::Batch { open } => !open && self.messages.is_empty(),
            Op::Noop => self.alive,
            Op::Peek { read } => read,
            Op::Quit { .. } => false,
        }
    }

    /// The rate limit lets a transaction start now; else `paced_until` says when it will.
    fn admit(&mut self, now: Duration) -> bool {
        let Some((rate, origin)) = &self.pace else { return true };
        let taken = rate.take(*origin + now).map_err(|at| at.saturating_duration_since(*origin));
        self.paced_until = taken.err();
        self.paced_until.is_none()
    }

    fn closed_error(&self) -> Error {
        match &self.close_reason {
            Some(cause) => Error::Closed(cause.clone()),
            None => Error::Send(SendError::Misuse(ApiMisuse::NotConnected)),
        }
    }

    /// Recipients in one transaction at most: the server's `LIMITS RCPTMAX` (RFC 9422), and ours.
    fn rcpt_max(&self) -> Option<u32> {
        earliest_u32(self.core.capabilities().and_then(|c| c.rcpt_max()), self.rcpt_cap)
    }

    fn mail_max(&self) -> u32 {
        self.core.mail_max().unwrap_or(0)
    }
}

/// The bodies an adapter keeps for the messages in flight, by slot: what [`Action::FillBody`],
/// [`Action::Rewind`] and [`Action::Report`] refer to.
#[derive(Debug)]
pub struct Bodies<B> {
    /// Each body with where it started.
    list: Vec<(Slot, B, u64)>,
    /// A message refused before any byte: the batch's error.
    refused: Option<Error>,
}

impl<B> Default for Bodies<B> {
    fn default() -> Self {
        Bodies { list: Vec::new(), refused: None }
    }
}

impl<B> Bodies<B> {
    /// Answers [`Action::NextMessage`]: hands `next` to the driver (`None` ends the batch). `start` is where
    /// the body is now; a body that cannot tell (`Err`) cannot go back there and is read once.
    pub fn submit(&mut self, driver: &mut Driver, next: Option<(Envelope, B)>, start: io::Result<u64>) {
        let Some((envelope, body)) = next else { return driver.end_batch() };
        match driver.submit(envelope, start.is_ok()) {
            Ok(slot) => self.list.push((slot, body, start.unwrap_or(0))),
            Err(e) => {
                // The batch stops here: the messages already handed over still get their reports.
                self.refused = Some(e);
                driver.end_batch();
            }
        }
    }

    /// Message `slot`'s body and where it started.
    pub fn get(&mut self, slot: Slot) -> (&mut B, u64) {
        let (_, body, start) =
            self.list.iter_mut().find(|b| b.0 == slot).expect("the driver only names bodies it was given");
        (body, *start)
    }

    /// Message `slot` has its report: its body can go.
    pub fn reported(&mut self, slot: Slot) {
        self.list.retain(|b| b.0 != slot);
    }

    /// After [`Action::Done`]: the operation's result ([`Driver::finish`]), else the refusal that ended the
    /// batch.
    pub fn finish(self, driver: &mut Driver) -> Result<(), Error> {
        driver.finish()?;
        self.refused.map_or(Ok(()), Err)
    }
}

fn earliest(a: Option<Duration>, b: Option<Duration>) -> Option<Duration> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

fn earliest_u32(a: Option<u32>, b: Option<u32>) -> Option<u32> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}
