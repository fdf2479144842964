//! The client session: the one public state machine.
//!
//! All transitions live in this file (h11's rule). The reply-to-command matching is a FIFO of
//! [`Expect`]ations, one per command handed to the driver, so pipelined groups and lock-step sessions run
//! through the same code: a lock-step session just never has more than one entry.

use alloc::collections::VecDeque;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::mem;
use core::time::Duration;

use crate::body::{CrlfNormalizer, DotStuffer, bdat_header};
use crate::command::{BodyType, Command, MailParams, RcptParams};
use crate::config::{ClientConfig, DsnPolicy, Protocol, TlsMode};
use crate::ehlo::Capabilities;
use crate::envelope::Envelope;
use crate::error::{ApiMisuse, Error, ProtocolViolation, Refusal, SendError};
use crate::event::{
    Event, Failure, MessageId, MessageReport, Outcome, RecipientResult, RecipientStatus, Warning,
};
use crate::reply::{Reply, ReplyParser};
use crate::sasl::{SaslClient, Step};
use crate::timer::Timer;

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

/// What a reply will answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Greeting,
    Hello,
    Helo,
    StartTls,
    Auth,
    Mail(MessageId),
    Rcpt(MessageId, usize),
    Data(MessageId),
    /// The final dot (SMTP), or the lone dot that closes a DATA that no recipient can use.
    DataEnd(MessageId),
    /// LMTP: the reply for the accepted recipient at this index, after the body.
    LmtpRcpt(MessageId, usize),
    Bdat {
        id: MessageId,
        last: bool,
    },
    Rset,
    Quit,
}

impl Kind {
    fn timer(self) -> Timer {
        match self {
            Kind::Greeting => Timer::Greeting,
            Kind::Hello | Kind::Helo => Timer::Hello,
            Kind::StartTls => Timer::StartTls,
            Kind::Auth => Timer::Auth,
            Kind::Mail(_) => Timer::Mail,
            Kind::Rcpt(..) => Timer::Rcpt,
            Kind::Data(_) => Timer::DataInit,
            Kind::DataEnd(_) | Kind::LmtpRcpt(..) | Kind::Bdat { last: true, .. } => {
                Timer::DataTermination
            }
            Kind::Bdat { last: false, .. } => Timer::DataBlock,
            Kind::Rset => Timer::Reset,
            Kind::Quit => Timer::Quit,
        }
    }

    fn message(self) -> Option<MessageId> {
        match self {
            Kind::Mail(id)
            | Kind::Rcpt(id, _)
            | Kind::Data(id)
            | Kind::DataEnd(id)
            | Kind::LmtpRcpt(id, _)
            | Kind::Bdat { id, .. } => Some(id),
            _ => None,
        }
    }

    /// The command a reply of this kind answers, for error messages.
    fn command(self, protocol: Protocol) -> &'static str {
        match self {
            Kind::Greeting => "the greeting",
            Kind::Hello if protocol == Protocol::Lmtp => "LHLO",
            Kind::Hello => "EHLO",
            Kind::Helo => "HELO",
            Kind::StartTls => "STARTTLS",
            Kind::Auth => "AUTH",
            Kind::Mail(_) => "MAIL",
            Kind::Rcpt(..) => "RCPT",
            Kind::Data(_) => "DATA",
            Kind::DataEnd(_) | Kind::LmtpRcpt(..) => "the end of data",
            Kind::Bdat { .. } => "BDAT",
            Kind::Rset => "RSET",
            Kind::Quit => "QUIT",
        }
    }

    /// Commands after which a new transaction may be pipelined (RFC 2920 §3.1, checklist TV-24).
    fn allows_pipelined_mail(self) -> bool {
        matches!(self, Kind::DataEnd(_) | Kind::LmtpRcpt(..) | Kind::Rset)
    }
}

#[derive(Clone, Copy, Debug)]
struct Expect {
    kind: Kind,
    /// Set when the command is handed to the driver; `None` while it sits in the transmit buffer.
    deadline: Option<Duration>,
}

/// A transaction's phase.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Accepted, waiting for the session (or the previous transaction) to let it start.
    Queued,
    /// MAIL/RCPT (and DATA) sent, replies pending.
    Envelope,
    /// The body is being written.
    Body,
    /// The body is finished; the end of data is sent or queued.
    Final,
}

#[derive(Debug)]
enum BodyEncoder {
    Data(DotStuffer),
    Bdat {
        normalizer: Option<CrlfNormalizer>,
        chunk: Vec<u8>,
    },
}

#[derive(Debug)]
struct Txn {
    id: MessageId,
    env: Envelope,
    phase: Phase,
    pipelined: bool,
    use_bdat: bool,
    rcpt_replies: Vec<Option<Reply>>,
    lmtp_replies: Vec<Option<Reply>>,
    accepted: usize,
    /// Index of the next RCPT to send, in lock-step mode.
    next_rcpt: usize,
    mail_ok: bool,
    mail_reply: Option<Reply>,
    data_reply: Option<Reply>,
    final_reply: Option<Reply>,
    failure: Option<Failure>,
    warnings: Vec<Warning>,
    /// The outcome is decided; the report goes out once `outstanding` reaches zero.
    decided: bool,
    /// Replies still due for this transaction.
    outstanding: usize,
    /// Send RSET once the last reply of this transaction is in.
    rset_after: bool,
    /// The end of data (final dot or `BDAT … LAST`) was handed to the driver.
    terminator_out: bool,
    encoder: BodyEncoder,
    sent: u64,
    /// `write_body` gave back less than asked: announce `BodyWritable` when room frees up.
    blocked: bool,
}

/// The sans-IO SMTP client session.
///
/// Inputs: [`handle_input`](Client::handle_input), [`handle_eof`](Client::handle_eof),
/// [`handle_timeout`](Client::handle_timeout). Commands: [`send_message`](Client::send_message),
/// [`write_body`](Client::write_body), [`finish_body`](Client::finish_body),
/// [`tls_established`](Client::tls_established), [`quit`](Client::quit), [`abort`](Client::abort).
/// Outputs, to drain in this order after every input or command: [`poll_transmit`](Client::poll_transmit),
/// [`poll_event`](Client::poll_event), [`poll_timeout`](Client::poll_timeout).
///
/// See the crate documentation for the run loop and a complete example.
#[derive(Debug)]
pub struct Client {
    config: ClientConfig,
    parser: ReplyParser,
    state: State,
    caps: Option<Capabilities>,
    is_tls: bool,
    authenticated: bool,
    ready_announced: bool,
    tx: Vec<u8>,
    expects: VecDeque<Expect>,
    events: VecDeque<Event>,
    txns: VecDeque<Txn>,
    next_id: u64,
    quit_requested: bool,
    /// Why the session ends, once QUIT was sent because of an error.
    closing: Option<Error>,
    sasl: Option<SaslClient>,
    /// An AUTH initial response that was too long for the AUTH line (RFC 4954 §4): sent after the first 334.
    deferred_ir: Option<Vec<u8>>,
    sasl_cancelled: bool,
    block_deadline: Option<Duration>,
    /// MAIL commands sent in this session (RFC 9422 MAILMAX counts failed ones too).
    mail_count: u64,
    /// The latest time the caller gave us: arms the data-block timer when the body is requested.
    now: Duration,
    /// Replies matched to a command so far (for the fuzz invariants).
    answered: u64,
}

impl Client {
    /// A session on a connection that was just opened (and, for [`TlsMode::Implicit`], already wrapped in TLS).
    /// Arms the greeting timer from `now`, a time since an origin of the caller's choosing.
    pub fn new(config: ClientConfig, now: Duration) -> Client {
        let parser = ReplyParser::new(config.reply);
        let is_tls = config.tls == TlsMode::Implicit;
        let mut expects = VecDeque::with_capacity(8);
        expects.push_back(Expect {
            kind: Kind::Greeting,
            deadline: Some(now + config.timeouts.greeting),
        });
        Client {
            config,
            parser,
            state: State::Greeting,
            caps: None,
            is_tls,
            authenticated: false,
            ready_announced: false,
            tx: Vec::new(),
            expects,
            events: VecDeque::with_capacity(8),
            txns: VecDeque::with_capacity(2),
            next_id: 1,
            quit_requested: false,
            closing: None,
            sasl: None,
            deferred_ir: None,
            sasl_cancelled: false,
            block_deadline: None,
            mail_count: 0,
            now,
            answered: 0,
        }
    }

    // ----------------------------------------------------------------------------------------------
    // Getters

    /// Where the session is.
    pub fn state(&self) -> State {
        self.state
    }

    /// The server's capabilities from the latest EHLO/LHLO (empty after HELO), once known. Cleared when TLS
    /// starts (RFC 3207 §4.2).
    pub fn capabilities(&self) -> Option<&Capabilities> {
        self.caps.as_ref()
    }

    /// True once the connection is encrypted (implicit TLS, or after `tls_established`).
    pub fn is_tls(&self) -> bool {
        self.is_tls
    }

    /// True once AUTH succeeded.
    pub fn is_authenticated(&self) -> bool {
        self.authenticated
    }

    /// True once the session is over.
    pub fn is_closed(&self) -> bool {
        self.state == State::Closed
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
    // Commands

    /// Hands the client one message. It starts as soon as the session is ready (right away if it is), and ends
    /// with exactly one [`Event::MessageDone`].
    ///
    /// Refused before any byte is written: on a closed or closing session ([`ApiMisuse::NotConnected`]);
    /// while another message's body is unfinished ([`ApiMisuse::Busy`]); and, once the server's capabilities
    /// are known, when the server cannot carry it ([`Refusal`]). A message queued before the capabilities are
    /// known gets the same refusals as its `MessageDone`, still before any of its bytes is written.
    pub fn send_message(&mut self, envelope: Envelope) -> Result<MessageId, SendError> {
        if matches!(self.state, State::Closed | State::Quitting) || self.quit_requested {
            return Err(ApiMisuse::NotConnected.into());
        }
        if self.txns.iter().any(|t| t.phase != Phase::Final) {
            return Err(ApiMisuse::Busy.into());
        }
        if self.state == State::Ready {
            self.precheck(&envelope)?;
        }
        let id = MessageId(self.next_id);
        self.next_id += 1;
        let n = envelope.recipients().len();
        let mut rcpt_replies = Vec::with_capacity(n);
        rcpt_replies.resize(n, None);
        self.txns.push_back(Txn {
            id,
            env: envelope,
            phase: Phase::Queued,
            pipelined: false,
            use_bdat: false,
            rcpt_replies,
            lmtp_replies: Vec::new(),
            accepted: 0,
            next_rcpt: 0,
            mail_ok: false,
            mail_reply: None,
            data_reply: None,
            final_reply: None,
            failure: None,
            warnings: Vec::new(),
            decided: false,
            outstanding: 0,
            rset_after: false,
            terminator_out: false,
            encoder: BodyEncoder::Data(DotStuffer::new()),
            sent: 0,
            blocked: false,
        });
        if self.can_start_txn() {
            // Started synchronously: a refusal (e.g. a command too long) is the caller's to see now.
            if let Err(refusal) = self.start_txn() {
                self.txns.pop_back();
                return Err(refusal.into());
            }
        }
        Ok(id)
    }

    /// Gives the client body octets for message `id` after its [`Event::BodyRequested`]. Returns how many
    /// were accepted: fewer than given when the client's buffer is full (then [`Event::BodyWritable`] follows
    /// once the driver has taken the output), and 0 before the body was requested.
    ///
    /// Line endings may be anything: bare CR and bare LF become CRLF, dots at line starts are doubled (DATA),
    /// so the server sees exactly one end of data, at the end.
    pub fn write_body(&mut self, id: MessageId, chunk: &[u8]) -> Result<usize, ApiMisuse> {
        let limit = self.config.body_buffer;
        let idx = self.txn_index(id).ok_or(ApiMisuse::UnknownMessage)?;
        let room = self.body_room(&self.txns[idx]);
        let txn = &mut self.txns[idx];
        match txn.phase {
            Phase::Final => return Err(ApiMisuse::BodyFinished),
            Phase::Queued | Phase::Envelope => return Ok(0),
            Phase::Body => {}
        }
        // SMTPUTF8 goes with BODY=8BITMIME (RFC 6531 §3.4): only a plain 7-bit declaration refuses 8-bit octets.
        if txn.env.declared_body() == BodyType::SevenBit
            && !chunk.is_ascii()
            && !txn.env.needs_smtputf8()
        {
            return Err(ApiMisuse::UndeclaredEightBit);
        }
        let n = chunk.len().min(room);
        if n < chunk.len() {
            txn.blocked = true;
        }
        if n == 0 {
            return Ok(0);
        }
        let data = &chunk[..n];
        let mut new_expect = None;
        match &mut txn.encoder {
            BodyEncoder::Data(stuffer) => stuffer.encode(data, &mut self.tx),
            BodyEncoder::Bdat {
                normalizer,
                chunk: buf,
            } => {
                match normalizer {
                    Some(norm) => norm.encode(data, buf),
                    None => buf.extend_from_slice(data),
                }
                if buf.len() >= limit {
                    new_expect = Some((self.tx.len(), buf.len()));
                    bdat_header(buf.len() as u64, false, &mut self.tx);
                    self.tx.extend_from_slice(buf);
                    buf.clear();
                    txn.outstanding += 1;
                }
            }
        }
        txn.sent += n as u64;
        let (sent, total) = (txn.sent, txn.env.declared_size());
        if let Some((start, size)) = new_expect {
            self.log_tx_header(start, size);
            self.push_expect(Kind::Bdat { id, last: false });
        }
        self.events.push_back(Event::Progress { id, sent, total });
        Ok(n)
    }

    /// Ends message `id`'s body: sends the end of data (`CRLF . CRLF`, or the last `BDAT … LAST`).
    /// Another message may be handed over right after: with PIPELINING its MAIL goes out with this dot.
    pub fn finish_body(&mut self, id: MessageId) -> Result<(), ApiMisuse> {
        let lmtp = self.config.protocol == Protocol::Lmtp;
        let idx = self
            .txns
            .iter()
            .position(|t| t.id == id)
            .ok_or(ApiMisuse::UnknownMessage)?;
        let txn = &mut self.txns[idx];
        match txn.phase {
            Phase::Final => return Err(ApiMisuse::BodyFinished),
            // Not requested yet: nothing can be finished.
            Phase::Queued | Phase::Envelope => return Err(ApiMisuse::UnknownMessage),
            Phase::Body => {}
        }
        let start = self.tx.len();
        let sent = txn.sent;
        let bdat_last = match &mut txn.encoder {
            BodyEncoder::Data(stuffer) => {
                stuffer.finish(&mut self.tx);
                None
            }
            BodyEncoder::Bdat { normalizer, chunk } => {
                if let Some(norm) = normalizer {
                    norm.finish(chunk);
                }
                let size = chunk.len();
                bdat_header(size as u64, true, &mut self.tx);
                self.tx.extend_from_slice(chunk);
                *chunk = Vec::new();
                Some(size)
            }
        };
        txn.phase = Phase::Final;
        txn.blocked = false;
        self.block_deadline = None;
        if lmtp {
            txn.lmtp_replies.resize(txn.rcpt_replies.len(), None);
            for (i, r) in txn.rcpt_replies.iter().enumerate() {
                if r.as_ref().is_some_and(Reply::is_positive) {
                    txn.outstanding += 1;
                    self.expects.push_back(Expect {
                        kind: Kind::LmtpRcpt(id, i),
                        deadline: None,
                    });
                }
            }
        } else {
            txn.outstanding += 1;
            let kind = if txn.use_bdat {
                Kind::Bdat { id, last: true }
            } else {
                Kind::DataEnd(id)
            };
            self.expects.push_back(Expect {
                kind,
                deadline: None,
            });
        }
        match bdat_last {
            Some(size) => self.log_tx_header(start, size),
            // Built only when asked for: no allocation per message otherwise.
            None if self.config.transcript => {
                self.log_text(false, format!("({sent} octets of body)"));
                self.log_text(false, ".".into());
            }
            None => {}
        }
        self.try_progress();
        Ok(())
    }

    /// Tells the client that the driver finished the TLS handshake after [`Event::StartTls`]. The client
    /// forgets everything it learnt in plaintext and sends EHLO again (RFC 3207 §4.2).
    pub fn tls_established(&mut self, now: Duration) -> Result<(), ApiMisuse> {
        if self.state != State::AwaitingTls {
            return Err(ApiMisuse::NoTlsUpgradePending);
        }
        self.now = now;
        self.is_tls = true;
        self.caps = None;
        self.parser = ReplyParser::new(self.config.reply);
        self.send_hello();
        Ok(())
    }

    /// Ends the session gracefully: QUIT goes out once the messages in flight are done (right away when idle),
    /// and [`Event::Closed`] with no reason follows the 221 or the server's close.
    pub fn quit(&mut self) {
        if matches!(self.state, State::Closed | State::Quitting) {
            return;
        }
        self.quit_requested = true;
        self.try_progress();
    }

    /// Ends the session at once, without QUIT: every open message gets its outcome (Unknown after the final
    /// dot), then [`Event::Closed`] with [`Error::Aborted`]. The driver should close the connection.
    pub fn abort(&mut self) {
        if self.state != State::Closed {
            self.fail(Error::Aborted);
        }
    }

    // ----------------------------------------------------------------------------------------------
    // Inputs

    /// Feeds bytes received from the server. All of `data` is consumed.
    pub fn handle_input(&mut self, now: Duration, data: &[u8]) {
        if self.state == State::Closed || data.is_empty() {
            return;
        }
        if self.state == State::AwaitingTls {
            // Plaintext after the 220 to STARTTLS: never parsed (CVE-2011-0411 class, checklist TLS-03).
            self.fail(Error::StartTlsInjection);
            return;
        }
        self.now = now;
        let mut rest = data;
        while !rest.is_empty() && self.state != State::Closed {
            match self.parser.push(rest) {
                Err(e) => {
                    self.fail_with_quit(Error::Parse(e));
                    return;
                }
                Ok((_, None)) => return,
                Ok((n, Some(reply))) => {
                    rest = &rest[n..];
                    self.on_reply(now, reply);
                    if self.state == State::AwaitingTls
                        && (!rest.is_empty() || self.parser.has_partial())
                    {
                        self.fail(Error::StartTlsInjection);
                        return;
                    }
                }
            }
        }
    }

    /// Tells the client the server closed the connection (or it broke). Every open message gets its
    /// outcome; after QUIT this is a clean end.
    pub fn handle_eof(&mut self, now: Duration) {
        self.now = now;
        match self.state {
            State::Closed => {}
            State::Quitting
                if self
                    .expects
                    .iter()
                    .all(|e| e.kind == Kind::Quit || self.txn_gone(e.kind)) =>
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
        let Some(deadline) = self.poll_timeout() else {
            return;
        };
        if now < deadline || self.state == State::Closed {
            return;
        }
        if self.block_deadline.is_some_and(|d| d <= now) {
            self.fail(Error::Timeout(Timer::DataBlock));
            return;
        }
        let kind = self.expects.front().map_or(Kind::Quit, |e| e.kind);
        if kind == Kind::Quit {
            self.close_quietly();
        } else {
            self.fail(Error::Timeout(kind.timer()));
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
        for e in self.expects.iter_mut() {
            if e.deadline.is_none() {
                e.deadline = Some(now + timeout_for(&timeouts, e.kind));
                if let Kind::DataEnd(id) | Kind::LmtpRcpt(id, _) | Kind::Bdat { id, last: true } =
                    e.kind
                {
                    // Only an end of data that may deliver counts: not the lone dot that closes a DATA
                    // no recipient can use.
                    if let Some(t) = self.txns.iter_mut().find(|t| t.id == id) {
                        t.terminator_out |= t.failure.is_none();
                    }
                }
            }
        }
        if self.txns.iter().any(|t| t.phase == Phase::Body) {
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
    /// awaited. With pipelining the deadline follows the oldest command still waiting (checklist TIME-04).
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Duration> {
        if self.state == State::Closed {
            return None;
        }
        let head = self.expects.front().and_then(|e| e.deadline);
        match (head, self.block_deadline) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    // ----------------------------------------------------------------------------------------------
    // Replies

    fn on_reply(&mut self, now: Duration, reply: Reply) {
        if self.config.transcript {
            let auth = self.expects.front().is_some_and(|e| e.kind == Kind::Auth);
            let line = if auth && reply.code() == 334 {
                "334 <redacted>".into()
            } else {
                alloc::format!("{reply}")
            };
            self.log_text(true, line);
        }
        // A reply answers the oldest command already handed out by `poll_transmit`. One that arrives
        // before its command left (say in the greeting's packet, before EHLO) answers nothing.
        if self.expects.front().is_none_or(|e| e.deadline.is_none()) {
            self.unsolicited(reply);
            return;
        }
        let Some(expect) = self.expects.pop_front() else {
            return;
        };
        self.answered += 1;
        // The next command's wait starts no earlier than now: its reply could not come before this one.
        let timeouts = self.config.timeouts;
        if let Some(next) = self.expects.front_mut() {
            if let Some(d) = next.deadline {
                next.deadline = Some(d.max(now + timeout_for(&timeouts, next.kind)));
            }
        }
        if let Some(id) = expect.kind.message() {
            if let Some(t) = self.txns.iter_mut().find(|t| t.id == id) {
                t.outstanding -= 1;
            }
        }
        if reply.code() == 421 && expect.kind != Kind::Quit {
            // The command failed temporarily and the server is closing (checklist CLOSE-01/02).
            self.record_421(expect.kind, &reply);
            self.fail(Error::ServiceUnavailable(reply));
            return;
        }
        if self.state == State::Quitting
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
            Kind::Mail(id) => self.on_mail(id, reply),
            Kind::Rcpt(id, i) => self.on_rcpt(id, i, reply),
            Kind::Data(id) => self.on_data(id, reply),
            Kind::DataEnd(id) => self.on_final(id, reply),
            Kind::LmtpRcpt(id, i) => self.on_lmtp(id, i, reply),
            Kind::Bdat { id, last } => self.on_bdat(id, last, reply),
            Kind::Rset => {
                if reply.is_positive() {
                    self.try_progress();
                } else {
                    self.quit_with(Error::ResetFailed(reply));
                }
            }
            Kind::Quit => self.close_quietly(),
        }
    }

    fn unsolicited(&mut self, reply: Reply) {
        // A reply while a DATA body is being written: the server gave up on it (checklist CLOSE-05, TV-31).
        if let Some(t) = self
            .txns
            .iter_mut()
            .find(|t| t.phase == Phase::Body && !t.use_bdat)
        {
            t.failure = Some(Failure::Interrupted);
            t.final_reply = Some(reply.clone());
            t.decided = true;
        }
        if reply.code() == 421 {
            self.fail(Error::ServiceUnavailable(reply));
        } else {
            let before = self
                .expects
                .front()
                .map(|e| e.kind.command(self.config.protocol));
            self.fail_with_quit(Error::Protocol(ProtocolViolation::UnsolicitedReply {
                reply,
                before,
            }));
        }
    }

    fn record_421(&mut self, kind: Kind, reply: &Reply) {
        let Some(id) = kind.message() else { return };
        let Some(t) = self.txns.iter_mut().find(|t| t.id == id) else {
            return;
        };
        match kind {
            Kind::Rcpt(_, i) => t.rcpt_replies[i] = Some(reply.clone()),
            Kind::Mail(_) => {
                t.mail_reply = Some(reply.clone());
                t.failure.get_or_insert(Failure::MailRejected);
            }
            Kind::Data(_) => {
                t.data_reply = Some(reply.clone());
                t.failure.get_or_insert(Failure::DataRejected);
            }
            Kind::LmtpRcpt(_, i) => t.lmtp_replies[i] = Some(reply.clone()),
            _ => {
                // A reply to the end of data: the server refused the message (not unknown).
                t.final_reply = Some(reply.clone());
                t.failure.get_or_insert(Failure::Rejected);
            }
        }
        t.decided = true;
        t.terminator_out = false;
    }

    fn on_greeting(&mut self, reply: Reply) {
        match reply.code() {
            220 => {
                if self.quit_requested {
                    self.send_quit();
                } else {
                    self.send_hello();
                }
            }
            // 554/521/4xx: no service; the server waits for QUIT (checklist SESS-02, TV-12).
            _ => self.quit_with(Error::ServiceUnavailable(reply)),
        }
    }

    fn send_hello(&mut self) {
        let cmd = match self.config.protocol {
            Protocol::Smtp => Command::Ehlo(&self.config.helo_name),
            Protocol::Lmtp => Command::Lhlo(&self.config.helo_name),
        };
        let start = self.tx.len();
        encode_fixed(&cmd, &mut self.tx);
        self.log_tx(start, false);
        self.push_expect(Kind::Hello);
        self.state = State::Hello;
    }

    fn on_hello(&mut self, reply: Reply) {
        if reply.is_positive() {
            self.caps = Some(Capabilities::from_ehlo(&reply));
            self.after_hello();
            return;
        }
        // HELO only after "not recognised", only in SMTP, and never when TLS or AUTH is required
        // (checklist SESS-04): HELO has no extensions to offer either.
        let fallback = matches!(reply.code(), 500 | 502)
            && self.config.protocol == Protocol::Smtp
            && self.config.tls != TlsMode::Required
            && self.config.credentials.is_none();
        if fallback {
            let start = self.tx.len();
            encode_fixed(&Command::Helo(&self.config.helo_name), &mut self.tx);
            self.log_tx(start, false);
            self.push_expect(Kind::Helo);
        } else {
            self.quit_with(Error::HelloRejected(reply));
        }
    }

    fn on_helo(&mut self, reply: Reply) {
        if reply.is_positive() {
            self.caps = Some(Capabilities::none());
            self.after_hello();
        } else {
            self.quit_with(Error::HelloRejected(reply));
        }
    }

    fn after_hello(&mut self) {
        let caps = self.caps.as_ref().expect("after a successful hello");
        let wants_tls = matches!(self.config.tls, TlsMode::Opportunistic | TlsMode::Required);
        if !self.is_tls && wants_tls && caps.starttls() {
            self.emit(&Command::StartTls);
            self.push_expect(Kind::StartTls);
            self.state = State::StartTls;
        } else if !self.is_tls && self.config.tls == TlsMode::Required {
            self.quit_with(Error::TlsUnavailable(None));
        } else {
            self.start_auth_or_ready();
        }
    }

    fn on_starttls(&mut self, reply: Reply) {
        if reply.code() == 220 {
            self.state = State::AwaitingTls;
            self.events.push_back(Event::StartTls);
        } else if self.config.tls == TlsMode::Required {
            self.quit_with(Error::TlsUnavailable(Some(reply)));
        } else {
            // Opportunistic: go on in plaintext with what the EHLO said.
            self.start_auth_or_ready();
        }
    }

    fn start_auth_or_ready(&mut self) {
        let Some(creds) = self.config.credentials.as_ref() else {
            self.become_ready();
            return;
        };
        if self.authenticated {
            self.become_ready();
            return;
        }
        if !self.is_tls && !self.config.allow_plaintext_auth {
            self.quit_with(Error::AuthRequiresTls);
            return;
        }
        let caps = self.caps.as_ref().expect("after a successful hello");
        let Some(mech) = self
            .config
            .auth_mechanisms
            .iter()
            .copied()
            .find(|m| caps.auth(*m) && m.usable_with(creds))
        else {
            self.quit_with(Error::NoAuthMechanism);
            return;
        };
        let mut sasl = match SaslClient::new(mech, creds) {
            Ok(s) => s,
            Err(_) => {
                self.quit_with(Error::AuthFailed {
                    reply: None,
                    sasl: None,
                });
                return;
            }
        };
        let ir = sasl.initial_response();
        let start = self.tx.len();
        let cmd = Command::Auth {
            mechanism: mech.name(),
            initial_response: ir.as_deref(),
        };
        // An initial response that would push the line past 512 octets waits for the first 334 (RFC 4954 §4).
        let fits = cmd.encode(&mut self.tx).is_ok() && self.tx.len() - start <= 512;
        if !fits {
            self.tx.truncate(start);
            encode_fixed(
                &Command::Auth {
                    mechanism: mech.name(),
                    initial_response: None,
                },
                &mut self.tx,
            );
            self.deferred_ir = ir;
        }
        self.log_tx(start, true);
        self.sasl = Some(sasl);
        self.sasl_cancelled = false;
        self.push_expect(Kind::Auth);
        self.state = State::Auth;
    }

    fn on_auth(&mut self, reply: Reply) {
        match reply.code() {
            235 if !self.sasl_cancelled => {
                self.authenticated = true;
                let mech = self.sasl.take().map(|s| s.mechanism());
                self.deferred_ir = None;
                if let Some(m) = mech {
                    self.events.push_back(Event::Authenticated(m));
                }
                self.become_ready();
            }
            334 if !self.sasl_cancelled => {
                let response = match self.deferred_ir.take() {
                    Some(ir) => Step::Respond(ir),
                    None => match self.sasl.as_mut() {
                        Some(s) => s.step(reply.text()),
                        None => Step::Cancel,
                    },
                };
                match response {
                    Step::Respond(bytes) => {
                        let start = self.tx.len();
                        encode_auth(&Command::AuthResponse(&bytes), &mut self.tx);
                        self.log_tx(start, true);
                    }
                    Step::Cancel => {
                        self.sasl_cancelled = true;
                        self.emit(&Command::AuthCancel);
                    }
                }
                self.push_expect(Kind::Auth);
            }
            _ => {
                let sasl = self.sasl.take().and_then(|s| s.failure().cloned());
                self.quit_with(Error::AuthFailed {
                    reply: Some(reply),
                    sasl,
                });
            }
        }
    }

    fn become_ready(&mut self) {
        self.state = State::Ready;
        if !self.ready_announced {
            self.ready_announced = true;
            self.events.push_back(Event::Ready);
        }
        self.try_progress();
    }

    // ----------------------------------------------------------------------------------------------
    // Transactions

    /// Starts the next queued message, or sends QUIT when asked and idle.
    fn try_progress(&mut self) {
        if self.state != State::Ready {
            return;
        }
        while self.can_start_txn() {
            if let Err(refusal) = self.start_txn() {
                let idx = self
                    .txns
                    .iter()
                    .position(|t| t.phase == Phase::Queued)
                    .expect("queued txn");
                let t = &mut self.txns[idx];
                t.failure = Some(Failure::Refused(refusal));
                t.decided = true;
                self.maybe_conclude(idx);
            }
        }
        if self.quit_requested
            && self.txns.iter().all(|t| t.phase == Phase::Final)
            && self.pipeline_open()
        {
            self.send_quit();
        }
    }

    /// Whether a new command may go out now: nothing outstanding, or, with PIPELINING, only replies that may
    /// be followed by a new transaction (the end of data, RSET).
    fn pipeline_open(&self) -> bool {
        self.expects.is_empty()
            || (self.pipelining() && self.expects.iter().all(|e| e.kind.allows_pipelined_mail()))
    }

    fn pipelining(&self) -> bool {
        self.config.pipelining && self.caps.as_ref().is_some_and(Capabilities::pipelining)
    }

    fn can_start_txn(&self) -> bool {
        self.state == State::Ready
            && self.txns.iter().any(|t| t.phase == Phase::Queued)
            && self.pipeline_open()
            // A BDAT transaction must be over before the next MAIL: its failure needs an RSET first.
            && !self.txns.iter().any(|t| t.use_bdat && t.phase == Phase::Final)
    }

    fn precheck(&self, env: &Envelope) -> Result<(), Refusal> {
        let caps = match self.caps.as_ref() {
            Some(c) => c,
            None => return Ok(()),
        };
        if let (Some(size), Some(limit)) = (env.declared_size(), caps.max_size()) {
            if size > limit {
                return Err(Refusal::TooBig { size, limit });
            }
        }
        match env.declared_body() {
            BodyType::SevenBit => {}
            BodyType::EightBitMime => {
                if !caps.eight_bit_mime() {
                    return Err(Refusal::EightBitUnsupported);
                }
            }
            BodyType::BinaryMime => {
                if !(caps.binary_mime() && caps.chunking() && self.config.chunking) {
                    return Err(Refusal::BinaryUnsupported);
                }
            }
        }
        if let Some(max) = caps.rcpt_max() {
            if env.recipients().len() > max as usize {
                return Err(Refusal::TooManyRecipients {
                    count: env.recipients().len(),
                    max,
                });
            }
        }
        if let Some(max) = caps.mail_max() {
            if self.mail_count >= u64::from(max) {
                return Err(Refusal::SessionLimit { max });
            }
        }
        if env.needs_smtputf8() && !caps.smtp_utf8() {
            return Err(Refusal::Utf8Unsupported);
        }
        if env.requires_tls() && !(self.is_tls && caps.requiretls()) {
            return Err(Refusal::RequireTlsUnavailable);
        }
        if env.wants_dsn() && !caps.dsn() && self.config.dsn_policy == DsnPolicy::Require {
            return Err(Refusal::DsnNotSupported);
        }
        Ok(())
    }

    /// Writes MAIL (and, pipelined, every RCPT and DATA) for the first queued message. On a refusal nothing
    /// was written.
    fn start_txn(&mut self) -> Result<(), Refusal> {
        let idx = self
            .txns
            .iter()
            .position(|t| t.phase == Phase::Queued)
            .expect("queued txn");
        self.precheck(&self.txns[idx].env)?;
        let caps = self.caps.as_ref().expect("ready session");
        let pipelined = self.pipelining();
        let t = &self.txns[idx];
        let env = &t.env;
        let body = env.declared_body();
        let use_bdat = body == BodyType::BinaryMime || (self.config.chunking && caps.chunking());
        let smtputf8 = env.needs_smtputf8();
        let dsn = caps.dsn();
        let mail = MailParams {
            size: if caps.size_advertised() {
                env.declared_size()
            } else {
                None
            },
            body: match body {
                BodyType::BinaryMime => Some(BodyType::BinaryMime),
                BodyType::EightBitMime => Some(BodyType::EightBitMime),
                // RFC 6531 §3.4: SMTPUTF8 goes with BODY=8BITMIME.
                BodyType::SevenBit if smtputf8 => Some(BodyType::EightBitMime),
                BodyType::SevenBit => None,
            },
            smtputf8,
            ret: if dsn { env.ret_request() } else { None },
            envid: if dsn {
                env.envid_value().cloned()
            } else {
                None
            },
            requiretls: env.requires_tls(),
            auth: None,
        };
        let (tx_start, expects_start) = (self.tx.len(), self.expects.len());
        let id = t.id;
        let expects = &mut self.expects;
        let mut expect = |kind| {
            expects.push_back(Expect {
                kind,
                deadline: None,
            })
        };
        // Every line is encoded now, pipelined or not, so that a recipient whose RCPT line would be too long
        // refuses the message before MAIL goes out. In lock-step mode the RCPTs are encoded again later.
        let mut mail_end = tx_start;
        let result = (|| {
            Command::Mail {
                from: env.from(),
                params: &mail,
            }
            .encode(&mut self.tx)?;
            expect(Kind::Mail(id));
            mail_end = self.tx.len();
            for (i, r) in env.recipients().iter().enumerate() {
                let params = rcpt_params(r, dsn);
                Command::Rcpt {
                    to: r.path(),
                    params: &params,
                    smtputf8,
                }
                .encode(&mut self.tx)?;
                if pipelined {
                    expect(Kind::Rcpt(id, i));
                }
            }
            if pipelined && !use_bdat {
                Command::Data.encode(&mut self.tx)?;
                expect(Kind::Data(id));
            }
            Ok(())
        })();
        if let Err(e) = result {
            self.tx.truncate(tx_start);
            self.expects.truncate(expects_start);
            return Err(Refusal::Command(e));
        }
        if !pipelined {
            self.tx.truncate(mail_end);
        }
        self.mail_count += 1;
        let warn = env.wants_dsn() && !dsn;
        let t = &mut self.txns[idx];
        t.phase = Phase::Envelope;
        t.pipelined = pipelined;
        t.use_bdat = use_bdat;
        t.outstanding += self.expects.len() - expects_start;
        t.next_rcpt = if pipelined { t.rcpt_replies.len() } else { 0 };
        if warn {
            t.warnings.push(Warning::NoDsnSupport);
        }
        if use_bdat {
            let normalizer = if body == BodyType::BinaryMime {
                None
            } else {
                Some(CrlfNormalizer::new())
            };
            t.encoder = BodyEncoder::Bdat {
                normalizer,
                chunk: Vec::new(),
            };
        }
        self.log_tx(tx_start, false);
        Ok(())
    }

    fn on_mail(&mut self, id: MessageId, reply: Reply) {
        let Some(idx) = self.txn_index(id) else {
            return;
        };
        if reply.is_intermediate() {
            self.protocol_error("MAIL", reply);
            return;
        }
        let t = &mut self.txns[idx];
        let positive = reply.is_positive();
        t.mail_reply = Some(reply);
        if positive {
            t.mail_ok = true;
            if !t.pipelined {
                self.send_next_rcpt(idx);
            }
        } else {
            t.failure = Some(Failure::MailRejected);
            t.decided = true;
            t.rset_after = true;
            self.maybe_conclude(idx);
        }
    }

    fn send_next_rcpt(&mut self, idx: usize) {
        let dsn = self.caps.as_ref().is_some_and(Capabilities::dsn);
        let t = &mut self.txns[idx];
        let i = t.next_rcpt;
        let r = &t.env.recipients()[i];
        let params = rcpt_params(r, dsn);
        let smtputf8 = t.env.needs_smtputf8();
        let start = self.tx.len();
        // Its length was checked when the transaction started.
        encode_fixed(
            &Command::Rcpt {
                to: r.path(),
                params: &params,
                smtputf8,
            },
            &mut self.tx,
        );
        t.next_rcpt += 1;
        t.outstanding += 1;
        let id = t.id;
        self.log_tx(start, false);
        self.push_expect(Kind::Rcpt(id, i));
    }

    fn on_rcpt(&mut self, id: MessageId, i: usize, reply: Reply) {
        let Some(idx) = self.txn_index(id) else {
            return;
        };
        if reply.is_intermediate() {
            self.protocol_error("RCPT", reply);
            return;
        }
        let t = &mut self.txns[idx];
        if reply.is_positive() {
            t.accepted += 1;
            self.events
                .push_back(Event::RecipientAccepted { id, index: i });
        } else {
            self.events.push_back(Event::RecipientRejected {
                id,
                index: i,
                reply: reply.clone(),
            });
        }
        t.rcpt_replies[i] = Some(reply);
        let last = i + 1 == t.rcpt_replies.len();
        if !t.pipelined && !last && t.failure.is_none() {
            self.send_next_rcpt(idx);
            return;
        }
        if !last {
            return;
        }
        if t.failure.is_some() {
            self.maybe_conclude(idx);
            return;
        }
        if t.accepted == 0 {
            t.failure = Some(Failure::NoRecipientAccepted);
            t.decided = true;
            // Pipelined DATA is still to be answered; lock-step and BDAT sessions reset now (TV-18).
            t.rset_after = !t.pipelined || t.use_bdat;
            self.maybe_conclude(idx);
            return;
        }
        if t.use_bdat {
            self.start_body(idx);
        } else if !t.pipelined {
            t.outstanding += 1;
            self.emit(&Command::Data);
            self.push_expect(Kind::Data(id));
        }
    }

    fn on_data(&mut self, id: MessageId, reply: Reply) {
        let Some(idx) = self.txn_index(id) else {
            return;
        };
        let t = &mut self.txns[idx];
        let code = reply.code();
        let usable = t.failure.is_none() && t.mail_ok && t.accepted > 0;
        if !matches!(code, 354 | 400..=599) {
            // 250 to DATA (TV-28) or any other 2yz/3yz: no body, the session is unreliable.
            self.protocol_error("DATA", reply);
            return;
        }
        t.data_reply = Some(reply);
        match code / 100 {
            3 if usable => self.start_body(idx),
            3 => {
                // Nobody to deliver to, yet the server waits for data: end it with a lone dot, no body
                // (checklist PIPE-06/08, TV-21). The reply to that dot is only recorded.
                t.outstanding += 1;
                let start = self.tx.len();
                self.tx.extend_from_slice(b".\r\n");
                self.log_tx(start, false);
                self.push_expect(Kind::DataEnd(id));
            }
            _ => {
                t.failure.get_or_insert(if t.accepted == 0 {
                    Failure::NoRecipientAccepted
                } else {
                    Failure::DataRejected
                });
                t.decided = true;
                t.rset_after = true;
                self.maybe_conclude(idx);
            }
        }
    }

    /// How many body octets `write_body` may take now for `t`: none while as many BDAT chunks as the window
    /// allows await their replies (one at a time without PIPELINING, RFC 3030 §2), else what is left of the
    /// buffer.
    fn body_room(&self, t: &Txn) -> usize {
        if t.use_bdat {
            let window = if t.pipelined {
                self.config.bdat_window.max(1)
            } else {
                1
            };
            if t.outstanding >= window {
                return 0;
            }
        }
        self.config.body_buffer.saturating_sub(self.tx.len())
    }

    /// Announces `BodyWritable` for a body that was pushed back, once there is room for it again.
    fn wake_body(&mut self) {
        let Some(idx) = self
            .txns
            .iter()
            .position(|t| t.phase == Phase::Body && t.blocked)
        else {
            return;
        };
        if self.body_room(&self.txns[idx]) > 0 {
            let t = &mut self.txns[idx];
            t.blocked = false;
            self.events.push_back(Event::BodyWritable { id: t.id });
        }
    }

    fn start_body(&mut self, idx: usize) {
        // The application must start feeding the body within a data block's time.
        self.block_deadline = Some(self.now + self.config.timeouts.data_block);
        let t = &mut self.txns[idx];
        t.phase = Phase::Body;
        let id = t.id;
        self.events.push_back(Event::BodyRequested { id });
    }

    fn on_final(&mut self, id: MessageId, reply: Reply) {
        let Some(idx) = self.txn_index(id) else {
            return;
        };
        if reply.is_intermediate() {
            // Not an end-of-data reply (RFC 5321 §4.3.2): the message may or may not have been taken.
            self.protocol_error("the end of data", reply);
            return;
        }
        let t = &mut self.txns[idx];
        if t.failure.is_none() && !reply.is_positive() {
            t.failure = Some(Failure::Rejected);
        }
        if t.final_reply.is_none() {
            t.final_reply = Some(reply);
        }
        t.decided = true;
        t.terminator_out = false;
        self.maybe_conclude(idx);
    }

    fn on_lmtp(&mut self, id: MessageId, i: usize, reply: Reply) {
        let Some(idx) = self.txn_index(id) else {
            return;
        };
        if reply.is_intermediate() {
            // This recipient (and any still unanswered) is left unknown.
            self.protocol_error("the end of data", reply);
            return;
        }
        let t = &mut self.txns[idx];
        t.lmtp_replies[i] = Some(reply);
        if t.outstanding == 0 {
            t.decided = true;
            t.terminator_out = false;
            if !t.lmtp_replies.iter().flatten().any(Reply::is_positive) {
                t.failure.get_or_insert(Failure::Rejected);
            }
            self.maybe_conclude(idx);
        }
    }

    fn on_bdat(&mut self, id: MessageId, last: bool, reply: Reply) {
        let Some(idx) = self.txn_index(id) else {
            return;
        };
        if reply.is_intermediate() {
            self.protocol_error("BDAT", reply);
            return;
        }
        let t = &mut self.txns[idx];
        if reply.is_positive() {
            if last {
                t.final_reply.get_or_insert(reply);
                t.decided = true;
                t.terminator_out = false;
                self.maybe_conclude(idx);
            } else {
                self.wake_body();
            }
            return;
        }
        // Any refused chunk fails the transaction: no further chunk (those not yet handed out are dropped),
        // read the replies of those in flight, then RSET (RFC 3030 §2, TV-38).
        let before = self.expects.len();
        self.expects.retain(|e| {
            e.deadline.is_some() || !matches!(e.kind, Kind::Bdat { id: x, .. } if x == id)
        });
        let dropped = before - self.expects.len();
        if dropped > 0 || t.phase == Phase::Body {
            // Since the last transmit only this body was written: nothing else is in `tx`.
            debug_assert!(self.expects.iter().all(|e| e.deadline.is_some()));
            self.tx.clear();
        }
        t.outstanding -= dropped;
        if t.failure.is_none() {
            t.failure = Some(Failure::Rejected);
            t.final_reply = Some(reply);
        }
        t.decided = true;
        t.rset_after = true;
        t.terminator_out = false;
        if t.phase == Phase::Body {
            // The caller is still writing: the message ends now, further writes get UnknownMessage.
            t.phase = Phase::Final;
            self.block_deadline = None;
        }
        self.maybe_conclude(idx);
    }

    /// Emits the report once the outcome is decided and every reply of the transaction is in.
    fn maybe_conclude(&mut self, idx: usize) {
        let t = &self.txns[idx];
        if !t.decided || t.outstanding > 0 {
            return;
        }
        let t = self.txns.remove(idx).expect("index in range");
        let rset = t.rset_after;
        let report = conclude(t, None);
        self.events.push_back(Event::MessageDone(report));
        if rset && self.state == State::Ready {
            self.emit(&Command::Rset);
            self.push_expect(Kind::Rset);
        }
        self.try_progress();
    }

    // ----------------------------------------------------------------------------------------------
    // Ending

    fn protocol_error(&mut self, command: &'static str, reply: Reply) {
        self.quit_with(Error::Protocol(ProtocolViolation::UnexpectedReply {
            command,
            reply,
        }));
    }

    /// Settles every message with `err`, sends QUIT and waits for 221 or the close.
    fn quit_with(&mut self, err: Error) {
        self.settle_all(&err);
        self.closing = Some(err);
        self.send_quit();
    }

    fn send_quit(&mut self) {
        self.emit(&Command::Quit);
        self.push_expect(Kind::Quit);
        self.state = State::Quitting;
    }

    /// Ends the session now, without QUIT.
    fn fail(&mut self, err: Error) {
        self.end_now(err, false);
    }

    /// Ends the session now after a last QUIT (checklist TV-08): the replies can no longer be trusted to
    /// match our commands, so nothing more is read. No QUIT in the middle of a DATA body, where it would be
    /// taken as message text.
    fn fail_with_quit(&mut self, err: Error) {
        let mid_body = self
            .txns
            .iter()
            .any(|t| t.phase == Phase::Body && !t.use_bdat);
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
        self.expects.clear();
        self.block_deadline = None;
        self.state = State::Closed;
        self.closing = None;
        self.events.push_back(Event::Closed { reason: Some(err) });
    }

    fn close_quietly(&mut self) {
        let reason = self.closing.take();
        let err = reason.clone().unwrap_or(Error::UnexpectedEof);
        self.settle_all(&err);
        self.tx.clear();
        self.expects.clear();
        self.block_deadline = None;
        self.state = State::Closed;
        self.events.push_back(Event::Closed { reason });
    }

    /// Gives every open message its outcome: Unknown when its end of data is out and unanswered, else its
    /// own failure if it had one, else the session's error.
    fn settle_all(&mut self, err: &Error) {
        while let Some(t) = self.txns.pop_front() {
            let report = conclude(t, Some(err));
            self.events.push_back(Event::MessageDone(report));
        }
    }

    fn txn_index(&self, id: MessageId) -> Option<usize> {
        self.txns.iter().position(|t| t.id == id)
    }

    fn txn_gone(&self, kind: Kind) -> bool {
        kind.message()
            .is_some_and(|id| self.txn_index(id).is_none())
    }

    /// Writes a command whose arguments were validated when built, and logs it.
    fn emit(&mut self, cmd: &Command<'_>) {
        let start = self.tx.len();
        encode_fixed(cmd, &mut self.tx);
        self.log_tx(start, false);
    }

    /// Transcript: the command lines written to `tx` since `start` (AUTH payloads redacted).
    fn log_tx(&mut self, start: usize, auth: bool) {
        if !self.config.transcript {
            return;
        }
        let lines: Vec<String> = self.tx[start..]
            .split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
            .map(|l| {
                let l = l.strip_suffix(b"\r").unwrap_or(l);
                if auth {
                    redact_auth(l)
                } else {
                    String::from_utf8_lossy(l).into_owned()
                }
            })
            .collect();
        for line in lines {
            self.events.push_back(Event::Transcript {
                from_server: false,
                line,
            });
        }
    }

    /// Transcript: a BDAT header written at `start` (not the chunk's octets).
    fn log_tx_header(&mut self, start: usize, size: usize) {
        if self.config.transcript {
            let end = self.tx[start..]
                .iter()
                .position(|&b| b == b'\r')
                .map_or(self.tx.len(), |p| start + p);
            let line = String::from_utf8_lossy(&self.tx[start..end]).into_owned();
            self.log_text(false, format!("{line} ({size} octets)"));
        }
    }

    fn log_text(&mut self, from_server: bool, line: String) {
        if self.config.transcript {
            self.events
                .push_back(Event::Transcript { from_server, line });
        }
    }

    fn push_expect(&mut self, kind: Kind) {
        self.expects.push_back(Expect {
            kind,
            deadline: None,
        });
    }
}

fn timeout_for(t: &crate::config::Timeouts, kind: Kind) -> Duration {
    match kind.timer() {
        Timer::Greeting => t.greeting,
        Timer::Mail => t.mail,
        Timer::Rcpt => t.rcpt,
        Timer::DataInit => t.data_init,
        Timer::DataBlock => t.data_block,
        Timer::DataTermination => t.data_termination,
        Timer::Quit => t.quit,
        _ => t.command,
    }
}

fn rcpt_params(r: &crate::envelope::Recipient, dsn: bool) -> RcptParams {
    if dsn {
        RcptParams {
            notify: r.notify_request().cloned(),
            orcpt: r.orcpt_value().cloned(),
        }
    } else {
        RcptParams::default()
    }
}

/// Encodes a command whose arguments were validated when they were built and cannot be too long.
/// An AUTH line for the transcript: the verb and mechanism stay, any payload is hidden.
fn redact_auth(line: &[u8]) -> String {
    let text = String::from_utf8_lossy(line);
    let mut words = text.splitn(3, ' ');
    match (words.next(), words.next(), words.next()) {
        (Some(verb), Some(mech), rest) if verb.eq_ignore_ascii_case("AUTH") => match rest {
            Some(_) => format!("{verb} {mech} <redacted>"),
            None => format!("{verb} {mech}"),
        },
        _ if line == b"*" => "*".into(),
        _ => "<redacted>".into(),
    }
}

fn encode_fixed(cmd: &Command<'_>, out: &mut Vec<u8>) {
    cmd.encode(out)
        .expect("validated command within its length limit");
}

/// Encodes a SASL response line; base64 of any response fits the AUTH line limit.
fn encode_auth(cmd: &Command<'_>, out: &mut Vec<u8>) {
    if cmd.encode(out).is_err() {
        // Longer than any server accepts: cancel instead of sending a line it would cut.
        encode_fixed(&Command::AuthCancel, out);
    }
}

/// Builds the report of a transaction; `session` is the error that ended the session, if one did.
fn conclude(t: Txn, session: Option<&Error>) -> MessageReport {
    let unknown = session.is_some() && t.terminator_out;
    let mut failure = t.failure;
    if failure.is_none() {
        if let Some(err) = session {
            failure = Some(Failure::Session(err.clone()));
        }
    }
    let lmtp_any = t.lmtp_replies.iter().flatten().any(Reply::is_positive);
    let outcome = if unknown && !lmtp_any {
        Outcome::Unknown
    } else if lmtp_any || failure.is_none() {
        Outcome::Sent
    } else {
        Outcome::Rejected
    };
    // What accepted recipients got when the message failed as a whole.
    let whole = match (&failure, outcome) {
        (_, Outcome::Sent) => RecipientStatus::Delivered,
        (_, Outcome::Unknown) => RecipientStatus::Unknown,
        (Some(Failure::Refused(_)), _) => RecipientStatus::PermanentFailure,
        (Some(Failure::Session(_)), _) | (None, _) => RecipientStatus::TemporaryFailure,
        (Some(Failure::MailRejected), _) => class_status(t.mail_reply.as_ref()),
        (Some(Failure::DataRejected), _) => class_status(t.data_reply.as_ref()),
        (Some(_), _) => class_status(t.final_reply.as_ref()),
    };
    let lmtp = !t.lmtp_replies.is_empty();
    // After a refused MAIL the RCPT replies only echo it (503 "need MAIL"): the MAIL reply decides.
    let mail_refused = failure == Some(Failure::MailRejected);
    let mut lmtp_replies = t.lmtp_replies.into_iter();
    let recipients = t
        .env
        .into_recipients()
        .into_iter()
        .zip(t.rcpt_replies)
        .map(|(r, rcpt_reply)| {
            let lmtp_reply = if lmtp {
                lmtp_replies.next().flatten()
            } else {
                None
            };
            let status = match &rcpt_reply {
                _ if mail_refused => whole,
                Some(rr) if !rr.is_positive() => class_status(Some(rr)),
                Some(_) if lmtp => match &lmtp_reply {
                    Some(lr) if lr.is_positive() => RecipientStatus::Delivered,
                    Some(lr) => class_status(Some(lr)),
                    None if unknown => RecipientStatus::Unknown,
                    None => RecipientStatus::TemporaryFailure,
                },
                Some(_) => whole,
                None if outcome == Outcome::Sent => RecipientStatus::TemporaryFailure,
                None => match whole {
                    RecipientStatus::Unknown | RecipientStatus::Delivered => {
                        RecipientStatus::TemporaryFailure
                    }
                    s => s,
                },
            };
            RecipientResult {
                path: r.into_path(),
                rcpt_reply,
                lmtp_reply,
                status,
            }
        })
        .collect();
    MessageReport {
        id: t.id,
        outcome,
        failure: if outcome == Outcome::Sent {
            None
        } else {
            failure
        },
        recipients,
        mail_reply: t.mail_reply,
        data_reply: t.data_reply,
        final_reply: t.final_reply,
        warnings: t.warnings,
    }
}

fn class_status(reply: Option<&Reply>) -> RecipientStatus {
    match reply {
        Some(r) if r.is_permanent() => RecipientStatus::PermanentFailure,
        _ => RecipientStatus::TemporaryFailure,
    }
}
