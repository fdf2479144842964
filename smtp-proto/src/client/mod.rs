//! The client session: the one public state machine, by phase.
//!
//! - `mod.rs` (here): the [`Client`], its inputs and outputs, matching replies to commands, ending the session;
//! - `expect.rs`: what each outstanding reply answers;
//! - `setup.rs`: greeting, EHLO/LHLO/HELO, STARTTLS, AUTH;
//! - `transaction.rs`: starting a message (MAIL, RCPT, DATA) and its envelope replies;
//! - `body.rs`: the body (DATA or BDAT) and the replies that end a message;
//! - `report.rs`: the report that ends every message;
//! - `transcript.rs`: the optional dialogue log.

mod body;
mod expect;
mod report;
mod setup;
mod transaction;
mod transcript;

use alloc::collections::VecDeque;
use alloc::vec::Vec;
use core::mem;
use core::time::Duration;

use crate::address::HeloName;
use crate::command::Command;
use crate::config::{ClientConfig, TlsMode};
use crate::ehlo::Capabilities;
use crate::error::{ApiMisuse, Error, ProtocolViolation};
use crate::event::{Event, MessageId};
use crate::reply::{Reply, ReplyParser};
use crate::sasl::Mechanism;
use crate::timer::Timer;

use expect::{Expect, Kind};
use setup::Auth;
use transaction::Txn;

/// Where the session is. Messages have their own progress, reported by events; this is the session around them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    /// Waiting for the whole 220 greeting.
    Greeting,
    /// EHLO, HELO or LHLO sent.
    Hello,
    /// STARTTLS sent.
    StartTls,
    /// The 220 to STARTTLS arrived: the driver is doing the TLS handshake.
    AwaitingTls,
    /// AUTH exchange under way.
    Auth,
    /// Ready for mail (messages may be in flight).
    Ready,
    /// QUIT sent (or about to be): waiting for 221 or the end of the connection.
    Quitting,
    /// Over. Every message has its outcome; input is ignored, commands fail with `NotConnected`.
    Closed,
}

/// The session's phase, with what each phase needs.
#[derive(Debug)]
enum Session {
    Greeting,
    Hello,
    StartTls,
    /// The handshake must be done by this time.
    AwaitingTls {
        deadline: Duration,
    },
    Auth(Auth),
    Ready,
    /// QUIT is out; the error when an error is why.
    Quitting(Option<Error>),
    Closed,
}

/// The sans-IO SMTP client session.
///
/// Inputs: [`handle_input`](Client::handle_input), [`handle_eof`](Client::handle_eof),
/// [`handle_timeout`](Client::handle_timeout). Commands: [`send_message`](Client::send_message),
/// [`write_body`](Client::write_body), [`finish_body`](Client::finish_body),
/// [`tls_established`](Client::tls_established), [`quit`](Client::quit), [`abort`](Client::abort).
/// Outputs, to drain in this order after every input or command: [`poll_transmit`](Client::poll_transmit)
/// until it returns 0, [`poll_event`](Client::poll_event) until `None` (acting on an event may produce more
/// output: start again), then [`poll_timeout`](Client::poll_timeout) for the wait. In debug builds
/// `poll_timeout` asserts that nothing was left undrained.
///
/// See the crate documentation for the run loop and a complete example.
#[derive(Debug)]
pub struct Client {
    /// The EHLO/HELO/LHLO argument.
    helo_name: HeloName,
    config: ClientConfig,
    parser: ReplyParser,
    session: Session,
    caps: Option<Capabilities>,
    /// Implicit TLS, or `tls_established` was called.
    tls: bool,
    /// The application asked to quit: QUIT goes out once the messages in flight are done.
    quit_requested: bool,
    authenticated: Option<Mechanism>,
    tx: Vec<u8>,
    expects: VecDeque<Expect>,
    events: VecDeque<Event>,
    txns: VecDeque<Txn>,
    next_id: u64,
    /// The body being written must be handed out again by then (RFC 5321 §4.5.3.2.5).
    block_deadline: Option<Duration>,
    /// The BDAT chunk being filled, reused from message to message.
    chunk: Vec<u8>,
    /// The per-recipient reply lists of concluded messages, emptied, for the next ones: in steady state a
    /// message allocates only its report's recipient list.
    spare_rcpt: Vec<Vec<Option<Reply>>>,
    /// MAIL commands sent in this session (RFC 9422 MAILMAX counts failed ones too).
    mail_count: u64,
    /// The latest time the caller gave us: arms the data-block timer when the body is requested.
    now: Duration,
    /// Replies matched to a command so far (for the fuzz invariants).
    answered: u64,
}

impl Client {
    /// A session on a connection that was just opened (and, for [`TlsMode::Implicit`], already wrapped in TLS),
    /// which introduces itself as `helo_name` (a domain or an address literal of this host, RFC 5321 §4.1.4).
    /// Arms the greeting timer from `now`, a time since an origin of the caller's choosing.
    pub fn new(helo_name: HeloName, config: ClientConfig, now: Duration) -> Client {
        let mut expects = VecDeque::with_capacity(8);
        expects.push_back(Expect { kind: Kind::Greeting, deadline: Some(now + config.timeouts.greeting) });
        Client {
            helo_name,
            parser: ReplyParser::new(config.reply),
            tls: config.tls == TlsMode::Implicit,
            config,
            session: Session::Greeting,
            caps: None,
            quit_requested: false,
            authenticated: None,
            tx: Vec::new(),
            expects,
            events: VecDeque::with_capacity(8),
            txns: VecDeque::with_capacity(2),
            next_id: 1,
            block_deadline: None,
            chunk: Vec::new(),
            spare_rcpt: Vec::new(),
            mail_count: 0,
            now,
            answered: 0,
        }
    }

    // ----------------------------------------------------------------------------------------------
    // Getters

    /// Where the session is.
    pub fn state(&self) -> State {
        match self.session {
            Session::Greeting => State::Greeting,
            Session::Hello => State::Hello,
            Session::StartTls => State::StartTls,
            Session::AwaitingTls { .. } => State::AwaitingTls,
            Session::Auth(_) => State::Auth,
            Session::Ready => State::Ready,
            Session::Quitting(_) => State::Quitting,
            Session::Closed => State::Closed,
        }
    }

    /// The server's capabilities from the latest EHLO/LHLO (empty after HELO), once known. Cleared when TLS
    /// starts (RFC 3207 §4.2).
    pub fn capabilities(&self) -> Option<&Capabilities> {
        self.caps.as_ref()
    }

    /// True once the connection is encrypted (implicit TLS, or after `tls_established`).
    pub fn is_tls(&self) -> bool {
        self.tls
    }

    /// True once AUTH succeeded.
    pub fn is_authenticated(&self) -> bool {
        self.authenticated.is_some()
    }

    /// True once the session is over.
    pub fn is_closed(&self) -> bool {
        matches!(self.session, Session::Closed)
    }

    /// The configuration.
    pub fn config(&self) -> &ClientConfig {
        &self.config
    }

    /// How many server replies were taken as answers to the client's commands (the greeting included). For
    /// the fuzz invariants: never more than the commands handed out by `poll_transmit` when the replies
    /// arrived.
    #[doc(hidden)]
    pub fn replies_answered(&self) -> u64 {
        self.answered
    }

    // ----------------------------------------------------------------------------------------------
    // Commands (sending a message and its body: `transaction.rs`, `body.rs`; TLS: `setup.rs`)

    /// Asks the server whether the session still works (NOOP, RFC 5321 §4.1.1.9): [`Event::Alive`] follows its
    /// 250; a refusal ends the session ([`Error::ResetFailed`]), as a lost connection does. Only between
    /// messages: [`ApiMisuse::Busy`] while one is in flight, [`ApiMisuse::NotConnected`] before the session is
    /// ready or after it ended.
    pub fn noop(&mut self) -> Result<(), ApiMisuse> {
        self.probe(false)
    }

    /// Like [`Client::noop`] with RSET (RFC 5321 §4.1.1.5), which also clears any transaction state the server
    /// kept: how a connection that sat idle is checked before it is used again.
    pub fn rset(&mut self) -> Result<(), ApiMisuse> {
        self.probe(true)
    }

    fn probe(&mut self, rset: bool) -> Result<(), ApiMisuse> {
        if !matches!(self.session, Session::Ready) || self.quit_requested {
            return Err(ApiMisuse::NotConnected);
        }
        if !self.txns.is_empty() || !self.expects.is_empty() {
            return Err(ApiMisuse::Busy);
        }
        self.emit(if rset { &Command::Rset } else { &Command::Noop });
        self.push_expect(Kind::Probe { rset });
        Ok(())
    }

    /// Ends the session gracefully: QUIT goes out once the messages in flight are done (right away when idle),
    /// and [`Event::Closed`] with no reason follows the 221 or the server's close.
    pub fn quit(&mut self) {
        if matches!(self.session, Session::Closed | Session::Quitting(_)) {
            return;
        }
        self.quit_requested = true;
        self.try_progress();
    }

    /// Ends the session at once, without QUIT: every open message gets its outcome (Unknown after the final
    /// dot), then [`Event::Closed`] with [`Error::Aborted`]. The driver should close the connection.
    pub fn abort(&mut self) {
        if !self.is_closed() {
            self.fail(Error::Aborted);
        }
    }

    // ----------------------------------------------------------------------------------------------
    // Inputs

    /// Feeds bytes received from the server. All of `data` is consumed.
    pub fn handle_input(&mut self, now: Duration, data: &[u8]) {
        if self.is_closed() || data.is_empty() {
            return;
        }
        if matches!(self.session, Session::AwaitingTls { .. }) {
            // Plaintext after the 220 to STARTTLS is never parsed (CVE-2011-0411 class, RFC 3207 §5).
            self.fail(Error::StartTlsInjection);
            return;
        }
        self.now = now;
        let mut rest = data;
        while !rest.is_empty() && !self.is_closed() {
            match self.parser.push(rest) {
                Err(e) => return self.fail_with_quit(Error::Parse(e)),
                Ok((_, None)) => return,
                Ok((n, Some(reply))) => {
                    rest = &rest[n..];
                    self.on_reply(now, reply);
                    let awaiting_tls = matches!(self.session, Session::AwaitingTls { .. });
                    if awaiting_tls && (!rest.is_empty() || self.parser.has_partial()) {
                        return self.fail(Error::StartTlsInjection);
                    }
                }
            }
        }
    }

    /// Tells the client the server closed the connection (or it broke). Every open message gets its
    /// outcome; after QUIT this is a clean end.
    pub fn handle_eof(&mut self, now: Duration) {
        self.now = now;
        match self.session {
            Session::Closed => {}
            Session::Quitting(_)
                if self.expects.iter().all(|e| e.kind == Kind::Quit || self.txn_gone(e.kind)) =>
            {
                self.close_quietly();
            }
            _ => self.fail(Error::UnexpectedEof),
        }
    }

    /// Fires the deadline from [`poll_timeout`](Client::poll_timeout) if `now` has reached it; an early call does
    /// nothing.
    pub fn handle_timeout(&mut self, now: Duration) {
        self.now = now;
        if self.next_deadline().is_none_or(|d| now < d) {
            return;
        }
        let timer = match self.session {
            Session::AwaitingTls { .. } => Timer::TlsHandshake,
            _ if self.block_deadline.is_some_and(|d| d <= now) => Timer::DataBlock,
            _ => self.expects.front().map_or(Timer::Quit, |e| e.kind.timer()),
        };
        if timer == Timer::Quit {
            self.close_quietly();
        } else {
            self.fail(Error::Timeout(timer));
        }
    }

    /// Tells the client the driver could not hand its output to the connection within
    /// [`Timeouts::data_block`](crate::Timeouts::data_block): the session ends with
    /// `Error::Timeout(Timer::DataBlock)`, the time RFC 5321 §4.5.3.2.5 gives each TCP send.
    pub fn handle_stalled_write(&mut self, now: Duration) {
        self.now = now;
        if !self.is_closed() {
            self.fail(Error::Timeout(Timer::DataBlock));
        }
    }

    // ----------------------------------------------------------------------------------------------
    // Outputs

    /// Appends the bytes to write to `out` and returns how many. Deadlines of the commands handed out count
    /// from `now`. Call it after every input or command until it returns 0.
    #[must_use = "the returned bytes must be written to the connection"]
    pub fn poll_transmit(&mut self, now: Duration, out: &mut Vec<u8>) -> usize {
        let n = self.tx.len();
        if n == 0 {
            return 0;
        }
        if out.is_empty() {
            // Hand over our buffer and keep the caller's (empty) one: no copy on the hot path.
            mem::swap(out, &mut self.tx);
        } else {
            out.extend_from_slice(&self.tx);
            self.tx.clear();
        }
        self.now = now;
        let timeouts = self.config.timeouts;
        for e in self.expects.iter_mut().filter(|e| e.deadline.is_none()) {
            e.deadline = Some(now + timeouts.of(e.kind.timer()));
            if let Some(t) = e.kind.ends_data().and_then(|id| find(&mut self.txns, id)) {
                t.end_handed_out();
            }
        }
        if self.txns.iter().any(Txn::in_body) {
            self.block_deadline = Some(now + timeouts.data_block);
        }
        self.wake_body();
        n
    }

    /// The next event, if any.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// The next deadline: call [`handle_timeout`](Client::handle_timeout) when it passes. `None` when nothing is
    /// awaited. With pipelining the deadline follows the oldest command still waiting.
    ///
    /// Call it last, just before waiting: in debug builds it asserts that `poll_transmit` and `poll_event`
    /// have nothing left, since waiting then would stall the session.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Duration> {
        debug_assert!(
            self.tx.is_empty(),
            "poll_timeout with bytes not yet taken by poll_transmit: drain it before waiting"
        );
        debug_assert!(
            self.events.is_empty(),
            "poll_timeout with events not yet taken by poll_event: drain them before waiting"
        );
        self.next_deadline()
    }

    fn next_deadline(&self) -> Option<Duration> {
        let head = match self.session {
            Session::Closed => return None,
            Session::AwaitingTls { deadline } => return Some(deadline),
            _ => self.expects.front().and_then(|e| e.deadline),
        };
        match (head, self.block_deadline) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    // ----------------------------------------------------------------------------------------------
    // Replies

    fn on_reply(&mut self, now: Duration, reply: Reply) {
        self.log_reply(&reply);
        // A reply answers the oldest command already handed out by `poll_transmit`. One that arrives before
        // its command left (say in the greeting's packet, before EHLO) answers nothing.
        if self.expects.front().is_none_or(|e| e.deadline.is_none()) {
            return self.unsolicited(reply);
        }
        let Some(expect) = self.expects.pop_front() else {
            return;
        };
        self.answered += 1;
        // The next command's wait starts no earlier than now: its reply could not come before this one.
        let timeouts = self.config.timeouts;
        if let Some(next) = self.expects.front_mut() {
            if let Some(d) = next.deadline {
                next.deadline = Some(d.max(now + timeouts.of(next.kind.timer())));
            }
        }
        if let Some(t) = expect.kind.message().and_then(|id| find(&mut self.txns, id)) {
            t.outstanding -= 1;
        }
        if reply.code() == 421 && expect.kind != Kind::Quit {
            // The command failed temporarily and the server is closing (RFC 5321 §3.8).
            self.record_421(expect.kind, &reply);
            return self.fail(Error::ServiceUnavailable(reply));
        }
        if matches!(self.session, Session::Quitting(_))
            && expect.kind != Kind::Quit
            && (expect.kind.message().is_none() || self.txn_gone(expect.kind))
        {
            // QUIT is out: only replies that settle a message still open matter (a graceful quit pipelined
            // after the final dot). The rest is read and dropped.
            return;
        }
        match expect.kind {
            Kind::Greeting => self.on_greeting(reply),
            Kind::Hello => self.on_hello(reply),
            Kind::Helo => self.on_helo(reply),
            Kind::StartTls => self.on_starttls(reply),
            Kind::Auth => self.on_auth(reply),
            Kind::Txn(id, step) => self.on_txn_reply(id, step, reply),
            Kind::Rset if reply.is_positive() => self.try_progress(),
            Kind::Probe { .. } if reply.is_positive() => {
                self.events.push_back(Event::Alive);
                self.try_progress();
            }
            Kind::Rset | Kind::Probe { .. } => self.quit_with(Error::ResetFailed(reply)),
            Kind::Quit => self.close_quietly(),
        }
    }

    fn unsolicited(&mut self, reply: Reply) {
        // A reply while a DATA body is being written: the server gave up on it (RFC 5321 §4.3.2).
        if let Some(t) = self.txns.iter_mut().find(|t| t.in_data_body()) {
            t.interrupted(reply.clone());
        }
        if reply.code() == 421 {
            return self.fail(Error::ServiceUnavailable(reply));
        }
        let protocol = self.config.protocol;
        let before = self.expects.front().map(|e| e.kind.command(protocol));
        self.fail_with_quit(Error::Protocol(ProtocolViolation::UnsolicitedReply { reply, before }));
    }

    /// A reply whose class makes no sense for its command.
    fn protocol_error(&mut self, command: &'static str, reply: Reply) {
        self.quit_with(Error::Protocol(ProtocolViolation::UnexpectedReply { command, reply }));
    }

    // ----------------------------------------------------------------------------------------------
    // Ending

    /// Settles every message with `err`, sends QUIT and waits for 221 or the close.
    fn quit_with(&mut self, err: Error) {
        self.settle_all(&err);
        self.send_quit(Some(err));
    }

    fn send_quit(&mut self, reason: Option<Error>) {
        self.emit(&Command::Quit);
        self.push_expect(Kind::Quit);
        self.session = Session::Quitting(reason);
    }

    /// Ends the session now, without QUIT.
    fn fail(&mut self, err: Error) {
        self.end_now(err, false);
    }

    /// Ends the session now after a last QUIT (RFC 5321 §4.1.1.10): the replies can no longer be trusted to
    /// match our commands, so nothing more is read. No QUIT in the middle of a DATA body, where it would be
    /// taken as message text.
    fn fail_with_quit(&mut self, err: Error) {
        let mid_body = self.txns.iter().any(Txn::in_data_body);
        self.end_now(err, !mid_body);
    }

    fn end_now(&mut self, err: Error, quit: bool) {
        // A StartTls already queued (the 220 came in the same read as injected bytes) must not reach the
        // driver: it would start a handshake on a dead session.
        self.events.retain(|e| *e != Event::StartTls);
        self.settle_all(&err);
        self.tx.clear();
        if quit {
            self.emit(&Command::Quit);
        }
        self.close(Some(err));
    }

    /// The end after QUIT (its 221, the server's close, or the QUIT timer).
    fn close_quietly(&mut self) {
        let reason = match mem::replace(&mut self.session, Session::Closed) {
            Session::Quitting(reason) => reason,
            _ => None,
        };
        self.settle_all(reason.as_ref().unwrap_or(&Error::UnexpectedEof));
        self.tx.clear();
        self.close(reason);
    }

    fn close(&mut self, reason: Option<Error>) {
        self.expects.clear();
        self.block_deadline = None;
        self.session = Session::Closed;
        self.events.push_back(Event::Closed { reason });
    }

    /// Gives every open message its outcome: Unknown when its end of data is out and unanswered, else its
    /// own failure if it had one, else the session's error.
    fn settle_all(&mut self, err: &Error) {
        while let Some(t) = self.txns.pop_front() {
            let report = t.conclude(Some(err), &mut self.spare_rcpt);
            self.events.push_back(Event::MessageDone(report));
        }
    }

    // ----------------------------------------------------------------------------------------------
    // Helpers

    fn txn_index(&self, id: MessageId) -> Option<usize> {
        self.txns.iter().position(|t| t.id == id)
    }

    fn txn_gone(&self, kind: Kind) -> bool {
        kind.message().is_some_and(|id| self.txn_index(id).is_none())
    }

    /// Writes a command whose arguments were validated when built, and logs it.
    fn emit(&mut self, cmd: &Command<'_>) {
        let start = self.tx.len();
        encode_fixed(cmd, &mut self.tx);
        self.log_tx(start, false);
    }

    fn push_expect(&mut self, kind: Kind) {
        self.expects.push_back(Expect { kind, deadline: None });
    }
}

fn find(txns: &mut VecDeque<Txn>, id: MessageId) -> Option<&mut Txn> {
    txns.iter_mut().find(|t| t.id == id)
}

/// Encodes a command whose arguments were validated when they were built and cannot be too long.
fn encode_fixed(cmd: &Command<'_>, out: &mut Vec<u8>) {
    cmd.encode(out).expect("validated command within its length limit");
}
