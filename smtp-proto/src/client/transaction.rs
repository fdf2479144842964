//! A message's transaction: the checks before any of its bytes is written, MAIL, RCPT and DATA (pipelined
//! or in lock-step), and the replies to its envelope.

use alloc::collections::VecDeque;
use alloc::vec::Vec;

use super::body::Body;
use super::expect::{Expect, Kind, Step};
use super::{Client, Session, find};
use crate::command::{BodyType, Command, CommandError, MailParams, RcptParams};
use crate::config::{DsnPolicy, ExtensionUse};
use crate::ehlo::Capabilities;
use crate::envelope::{Envelope, Recipient};
use crate::error::{ApiMisuse, SendError, Unsendable};
use crate::event::{Event, Failure, MessageId, Warning};
use crate::reply::Reply;

/// One message, from `send_message` to its report.
#[derive(Debug)]
pub(super) struct Txn {
    pub(super) id: MessageId,
    pub(super) env: Envelope,
    /// How it goes out, fixed when it starts.
    pub(super) plan: Plan,
    pub(super) replies: Replies,
    /// Replies still due.
    pub(super) outstanding: usize,
    pub(super) warnings: Vec<Warning>,
    pub(super) phase: Phase,
}

/// How a transaction goes out.
#[derive(Clone, Copy, Debug)]
pub(super) struct Plan {
    /// MAIL, every RCPT (and DATA) in one write (RFC 2920).
    pub(super) pipelined: bool,
    /// The body goes by BDAT (RFC 3030), not DATA.
    pub(super) bdat: bool,
    /// What the body is declared to be.
    pub(super) body: BodyType,
}

/// The server's replies to one transaction.
#[derive(Debug, Default)]
pub(super) struct Replies {
    pub(super) mail: Option<Reply>,
    pub(super) rcpt: Vec<Option<Reply>>,
    pub(super) data: Option<Reply>,
    /// The reply to the end of data, to a refused BDAT chunk, or the one that interrupted the body.
    pub(super) end: Option<Reply>,
    /// LMTP: each recipient's reply after the body.
    pub(super) lmtp: Vec<Option<Reply>>,
}

/// Where a transaction is.
#[derive(Debug)]
pub(super) enum Phase {
    /// Accepted, waiting for the session (or the previous transaction) to let it start.
    Queued,
    /// MAIL is out; its replies, the RCPTs' and DATA's are due. `next_rcpt` is the next RCPT to send in
    /// lock-step mode.
    Envelope { next_rcpt: usize },
    /// The body is being written.
    Body(Body),
    /// The end of data is written (and `handed_out` to the driver): its reply decides.
    Ending { handed_out: bool },
    /// The outcome is known (`None`: delivered); the report goes out once no reply is due, then RSET if
    /// `rset`.
    Decided { failure: Option<Failure>, rset: bool },
}

impl Txn {
    /// `rcpt`: a list to keep the RCPT replies in (a spare one, so that it need not be allocated).
    fn new(id: MessageId, env: Envelope, mut rcpt: Vec<Option<Reply>>) -> Txn {
        rcpt.clear();
        rcpt.resize(env.recipients().len(), None);
        Txn {
            id,
            replies: Replies { rcpt, ..Replies::default() },
            env,
            plan: Plan { pipelined: false, bdat: false, body: BodyType::SevenBit },
            outstanding: 0,
            warnings: Vec::new(),
            phase: Phase::Queued,
        }
    }

    pub(super) fn in_body(&self) -> bool {
        matches!(self.phase, Phase::Body(_))
    }

    /// A DATA body is being written: a reply now is the server giving up on it.
    pub(super) fn in_data_body(&self) -> bool {
        self.in_body() && !self.plan.bdat
    }

    /// The body is done with (finished, or no longer wanted).
    fn past_body(&self) -> bool {
        matches!(self.phase, Phase::Ending { .. } | Phase::Decided { .. })
    }

    pub(super) fn decided(&self) -> bool {
        matches!(self.phase, Phase::Decided { .. })
    }

    /// The end of data left: from now on a lost connection leaves the outcome unknown.
    pub(super) fn end_handed_out(&mut self) {
        if let Phase::Ending { handed_out } = &mut self.phase {
            *handed_out = true;
        }
    }

    pub(super) fn interrupted(&mut self, reply: Reply) {
        self.replies.end = Some(reply);
        self.fail(Failure::Interrupted, false);
    }

    /// The transaction failed; an earlier failure stands.
    pub(super) fn fail(&mut self, failure: Failure, rset: bool) {
        match &mut self.phase {
            Phase::Decided { failure: f, rset: r } => {
                f.get_or_insert(failure);
                *r |= rset;
            }
            phase => *phase = Phase::Decided { failure: Some(failure), rset },
        }
    }

    /// Whether the server accepted a recipient.
    pub(super) fn any_accepted(&self) -> bool {
        self.replies.rcpt.iter().flatten().any(Reply::is_positive)
    }
}

impl Client {
    /// Hands the client one message. It starts as soon as the session is ready (right away if it is), and ends
    /// with exactly one [`Event::MessageDone`].
    ///
    /// Refused before any byte is written: on a closed or closing session ([`ApiMisuse::NotConnected`]);
    /// while another message waits to start or its body is unfinished ([`ApiMisuse::Busy`]); and, once the
    /// server's capabilities are known, when the server cannot carry it ([`Unsendable`]). A message queued before
    /// the capabilities are known gets the same refusals as its `MessageDone`, still before any of its bytes
    /// is written.
    pub fn send_message(&mut self, envelope: Envelope) -> Result<MessageId, SendError> {
        if matches!(self.session, Session::Closed | Session::Quitting(_)) || self.quit_requested {
            return Err(ApiMisuse::NotConnected.into());
        }
        if self.is_busy() {
            return Err(ApiMisuse::Busy.into());
        }
        if matches!(self.session, Session::Ready) {
            self.precheck(&envelope)?;
        }
        let id = MessageId(self.next_id);
        self.next_id += 1;
        let rcpt = self.spare_rcpt.pop().unwrap_or_default();
        self.txns.push_back(Txn::new(id, envelope, rcpt));
        if self.can_start_txn() {
            // Started synchronously: a refusal (e.g. a command too long) is the caller's to see now.
            if let Err(refusal) = self.start_txn() {
                self.txns.pop_back();
                return Err(refusal.into());
            }
        }
        Ok(id)
    }

    /// The most transactions this session may carry: ours ([`ClientConfig::mail_max`](crate::ClientConfig::mail_max)) and the server's
    /// `LIMITS MAILMAX` (RFC 9422 §4), the fewer of the two; `None`: no limit. A message beyond it is refused
    /// with [`Unsendable::SessionLimit`]: it goes on a new session.
    pub fn mail_max(&self) -> Option<u32> {
        match (self.config.mail_max, self.caps.as_ref().and_then(|c| c.mail_max())) {
            (Some(ours), Some(theirs)) => Some(ours.min(theirs)),
            (ours, theirs) => ours.or(theirs),
        }
    }

    /// Whether the session has carried as many transactions as [`Client::mail_max`] allows.
    pub fn is_spent(&self) -> bool {
        self.mail_max().is_some_and(|max| self.mail_count >= u64::from(max))
    }

    /// True while a message waits to start or its body is unfinished: [`Client::send_message`] would answer
    /// [`ApiMisuse::Busy`]. Another message may be handed over as soon as this is false (with PIPELINING its
    /// MAIL then rides with the previous final dot).
    pub fn is_busy(&self) -> bool {
        !self.txns.iter().all(Txn::past_body)
    }

    /// Starts the next queued message, or sends QUIT when asked and idle.
    pub(super) fn try_progress(&mut self) {
        if !matches!(self.session, Session::Ready) {
            return;
        }
        while self.can_start_txn() {
            if let Err(refusal) = self.start_txn() {
                let idx = self.first_queued().expect("a queued message");
                self.txns[idx].fail(Failure::Unsendable(refusal), false);
                self.maybe_conclude(idx);
            }
        }
        if self.quit_requested && self.txns.iter().all(Txn::past_body) && self.pipeline_open() {
            self.send_quit(None);
        }
    }

    fn first_queued(&self) -> Option<usize> {
        self.txns.iter().position(|t| matches!(t.phase, Phase::Queued))
    }

    /// Whether a new command may go out now: nothing outstanding, or, with PIPELINING, only replies that may
    /// be followed by a new transaction (the end of data, RSET).
    fn pipeline_open(&self) -> bool {
        self.expects.is_empty()
            || (self.pipelining() && self.expects.iter().all(|e| e.kind.allows_pipelined_mail()))
    }

    fn pipelining(&self) -> bool {
        self.config.pipelining == ExtensionUse::WhenOffered
            && self.caps.as_ref().is_some_and(Capabilities::pipelining)
    }

    fn can_start_txn(&self) -> bool {
        matches!(self.session, Session::Ready)
            && self.first_queued().is_some()
            && self.pipeline_open()
            // A BDAT transaction must be over before the next MAIL: its failure needs an RSET first.
            && !self.txns.iter().any(|t| t.plan.bdat && !matches!(t.phase, Phase::Queued))
    }

    /// The refusal [`Client::send_message`] would give `env` now, from the server's capabilities (none while
    /// they are unknown), without queuing anything: for a caller that hands the message over later.
    pub fn precheck(&self, env: &Envelope) -> Result<(), Unsendable> {
        let Some(caps) = self.caps.as_ref() else {
            return Ok(());
        };
        if let (Some(size), Some(limit)) = (env.declared_size(), caps.max_size()) {
            if size > limit {
                return Err(Unsendable::TooBig { size, limit });
            }
        }
        let chunking = self.config.chunking == ExtensionUse::WhenOffered && caps.chunking();
        match env.declared_body() {
            None | Some(BodyType::SevenBit) => {}
            Some(BodyType::EightBitMime) if !caps.eight_bit_mime() => {
                return Err(Unsendable::EightBitUnsupported);
            }
            Some(BodyType::EightBitMime) => {}
            Some(BodyType::BinaryMime) if !(caps.binary_mime() && chunking) => {
                return Err(Unsendable::BinaryUnsupported);
            }
            Some(BodyType::BinaryMime) => {}
        }
        let count = env.recipients().len();
        if let Some(max) = caps.rcpt_max().filter(|&max| count > max as usize) {
            return Err(Unsendable::TooManyRecipients { count, max });
        }
        if let Some(max) = self.mail_max().filter(|&max| self.mail_count >= u64::from(max)) {
            return Err(Unsendable::SessionLimit { max });
        }
        if env.needs_smtputf8() && !caps.smtp_utf8() {
            return Err(Unsendable::Utf8Unsupported);
        }
        if env.requires_tls() && !(self.tls && caps.requiretls()) {
            return Err(Unsendable::RequireTlsUnavailable);
        }
        if env.wants_dsn() && !caps.dsn() && self.config.dsn_policy == DsnPolicy::Require {
            return Err(Unsendable::DsnNotSupported);
        }
        Ok(())
    }

    /// Writes MAIL (and, pipelined, every RCPT and DATA) for the first queued message. On a refusal nothing
    /// was written.
    fn start_txn(&mut self) -> Result<(), Unsendable> {
        let idx = self.first_queued().expect("a queued message");
        self.precheck(&self.txns[idx].env)?;
        let caps = self.caps.as_ref().expect("a ready session knows the capabilities");
        let env = &self.txns[idx].env;
        let chunking = self.config.chunking == ExtensionUse::WhenOffered && caps.chunking();
        // An undeclared body is declared 8BITMIME where the server takes it (RFC 6152): a body with 8-bit
        // octets then never fails half-way; SMTPUTF8 goes with BODY=8BITMIME (RFC 6531 §3.4).
        let body = match env.declared_body() {
            Some(BodyType::SevenBit) | None if env.needs_smtputf8() => BodyType::EightBitMime,
            Some(declared) => declared,
            None if caps.eight_bit_mime() => BodyType::EightBitMime,
            None => BodyType::SevenBit,
        };
        let plan =
            Plan { pipelined: self.pipelining(), bdat: body == BodyType::BinaryMime || chunking, body };
        let dsn = caps.dsn();
        let id = self.txns[idx].id;
        let (tx_start, expects_start) = (self.tx.len(), self.expects.len());
        let written = encode_envelope(env, caps, plan, id, &mut self.tx, &mut self.expects);
        let mail_end = match written {
            Ok(end) => end,
            Err(e) => {
                self.tx.truncate(tx_start);
                self.expects.truncate(expects_start);
                return Err(Unsendable::Command(e));
            }
        };
        if !plan.pipelined {
            // Every RCPT line was encoded to check its length; in lock-step they go one at a time.
            self.tx.truncate(mail_end);
        }
        self.mail_count += 1;
        let t = &mut self.txns[idx];
        if t.env.wants_dsn() && !dsn {
            t.warnings.push(Warning::NoDsnSupport);
        }
        t.plan = plan;
        t.outstanding += self.expects.len() - expects_start;
        let next_rcpt = if plan.pipelined { t.replies.rcpt.len() } else { 0 };
        t.phase = Phase::Envelope { next_rcpt };
        self.log_tx(tx_start, false);
        Ok(())
    }

    fn send_next_rcpt(&mut self, idx: usize) {
        let dsn = self.caps.as_ref().is_some_and(Capabilities::dsn);
        let t = &mut self.txns[idx];
        let Phase::Envelope { next_rcpt } = &mut t.phase else {
            return;
        };
        let i = *next_rcpt;
        *next_rcpt += 1;
        t.outstanding += 1;
        let start = self.tx.len();
        // Its length was checked when the transaction started.
        rcpt_line(&t.env, &t.env.recipients()[i], dsn, &mut self.tx)
            .expect("checked when the transaction started");
        let id = t.id;
        self.log_tx(start, false);
        self.push_expect(Kind::Txn(id, Step::Rcpt(i)));
    }

    /// A reply to one of a message's commands. Dropped once the message has its report; a 3yz where only a
    /// final reply fits breaks the protocol (DATA's 354 is checked by `on_data`): after the end of data, the
    /// message, or its LMTP recipients still unanswered, may or may not have been taken (RFC 5321 §4.3.2).
    pub(super) fn on_txn_reply(&mut self, id: MessageId, step: Step, reply: Reply) {
        let Some(idx) = self.txn_index(id) else {
            return;
        };
        if reply.is_intermediate() && step != Step::Data {
            return self.protocol_error(Kind::Txn(id, step).command(self.config.protocol), reply);
        }
        match step {
            Step::Mail => self.on_mail(idx, reply),
            Step::Rcpt(i) => self.on_rcpt(idx, i, reply),
            Step::Data => self.on_data(idx, reply),
            Step::DataEnd => self.on_data_end(idx, reply),
            Step::LmtpRcpt(i) => self.on_lmtp(idx, i, reply),
            Step::Bdat { last } => self.on_bdat(idx, last, reply),
        }
    }

    fn on_mail(&mut self, idx: usize, reply: Reply) {
        let t = &mut self.txns[idx];
        let ok = reply.is_positive();
        t.replies.mail = Some(reply);
        if !ok {
            t.fail(Failure::MailRejected, true);
            self.maybe_conclude(idx);
        } else if !t.plan.pipelined {
            self.send_next_rcpt(idx);
        }
    }

    fn on_rcpt(&mut self, idx: usize, i: usize, reply: Reply) {
        let id = self.txns[idx].id;
        let event = if reply.is_positive() {
            Event::RecipientAccepted { id, index: i }
        } else {
            let reply = reply.clone();
            Event::RecipientRejected { id, index: i, reply }
        };
        self.events.push_back(event);
        let t = &mut self.txns[idx];
        t.replies.rcpt[i] = Some(reply);
        if i + 1 < t.replies.rcpt.len() {
            if !t.plan.pipelined && !t.decided() {
                self.send_next_rcpt(idx);
            }
            return;
        }
        if t.decided() {
            return self.maybe_conclude(idx);
        }
        if !t.any_accepted() {
            // Pipelined DATA is still to be answered; lock-step and BDAT sessions reset now.
            let rset = !t.plan.pipelined || t.plan.bdat;
            t.fail(Failure::NoRecipientAccepted, rset);
            return self.maybe_conclude(idx);
        }
        if t.plan.bdat {
            self.start_body(idx);
        } else if !t.plan.pipelined {
            t.outstanding += 1;
            self.emit(&Command::Data);
            self.push_expect(Kind::Txn(id, Step::Data));
        }
    }

    fn on_data(&mut self, idx: usize, reply: Reply) {
        let code = reply.code();
        if !matches!(code, 354 | 400..=599) {
            // 250 to DATA, or any other 2yz/3yz: no body, the session is unreliable.
            return self.protocol_error("DATA", reply);
        }
        let t = &mut self.txns[idx];
        let id = t.id;
        t.replies.data = Some(reply);
        match code {
            354 if !t.decided() => self.start_body(idx),
            354 => {
                // Nobody to deliver to, yet the server waits for data: end it with a lone dot, no body
                // (RFC 2920 §3.1). The reply to that dot is only recorded.
                t.outstanding += 1;
                let start = self.tx.len();
                self.tx.extend_from_slice(b".\r\n");
                self.log_tx(start, false);
                self.push_expect(Kind::Txn(id, Step::DataEnd));
            }
            _ => {
                let failure =
                    if !t.any_accepted() { Failure::NoRecipientAccepted } else { Failure::DataRejected };
                t.fail(failure, true);
                self.maybe_conclude(idx);
            }
        }
    }

    /// Emits the report once the outcome is decided and every reply of the transaction is in.
    pub(super) fn maybe_conclude(&mut self, idx: usize) {
        let t = &self.txns[idx];
        let Phase::Decided { rset, .. } = t.phase else {
            return;
        };
        if t.outstanding > 0 {
            return;
        }
        let t = self.txns.remove(idx).expect("index in range");
        self.events.push_back(Event::MessageDone(t.conclude(None, &mut self.spare_rcpt)));
        if rset && matches!(self.session, Session::Ready) {
            self.emit(&Command::Rset);
            self.push_expect(Kind::Rset);
        }
        self.try_progress();
    }

    /// A 421 answered `kind`: record it where the report will look for it. The session ends next.
    pub(super) fn record_421(&mut self, kind: Kind, reply: &Reply) {
        let Kind::Txn(id, step) = kind else {
            return;
        };
        let Some(t) = find(&mut self.txns, id) else {
            return;
        };
        let reply = Some(reply.clone());
        match step {
            Step::Rcpt(i) => t.replies.rcpt[i] = reply,
            Step::Mail => {
                t.replies.mail = reply;
                t.fail(Failure::MailRejected, false);
            }
            Step::Data => {
                t.replies.data = reply;
                t.fail(Failure::DataRejected, false);
            }
            // The other recipients' replies never come: they stay unknown (RFC 2033 §4.2).
            Step::LmtpRcpt(i) => t.replies.lmtp[i] = reply,
            // A reply to the end of data or a chunk: the server refused the message (not unknown).
            Step::DataEnd | Step::Bdat { .. } => {
                t.replies.end = reply;
                t.fail(Failure::BodyRejected, false);
            }
        }
    }
}

/// Writes MAIL and every RCPT (and, pipelined with DATA, DATA) with their expectations; returns where MAIL
/// ends. Every line is encoded, pipelined or not, so that a recipient whose RCPT line would be too long
/// refuses the message before MAIL goes out.
fn encode_envelope(
    env: &Envelope,
    caps: &Capabilities,
    plan: Plan,
    id: MessageId,
    tx: &mut Vec<u8>,
    expects: &mut VecDeque<Expect>,
) -> Result<usize, CommandError> {
    let mut expect = |kind| expects.push_back(Expect { kind, deadline: None });
    let params = mail_params(env, caps, plan.body);
    Command::Mail { from: env.from(), params: &params }.encode(tx)?;
    expect(Kind::Txn(id, Step::Mail));
    let mail_end = tx.len();
    for (i, r) in env.recipients().iter().enumerate() {
        rcpt_line(env, r, caps.dsn(), tx)?;
        if plan.pipelined {
            expect(Kind::Txn(id, Step::Rcpt(i)));
        }
    }
    if plan.pipelined && !plan.bdat {
        Command::Data.encode(tx)?;
        expect(Kind::Txn(id, Step::Data));
    }
    Ok(mail_end)
}

/// MAIL's parameters for what the envelope asks and the server offers.
fn mail_params(env: &Envelope, caps: &Capabilities, body: BodyType) -> MailParams {
    let dsn = caps.dsn();
    MailParams {
        size: env.declared_size().filter(|_| caps.size_advertised()),
        body: Some(body).filter(|b| *b != BodyType::SevenBit),
        smtputf8: env.needs_smtputf8(),
        ret: env.ret_request().filter(|_| dsn),
        envid: env.envid_value().filter(|_| dsn).cloned(),
        requiretls: env.requires_tls(),
        auth: None,
    }
}

fn rcpt_line(env: &Envelope, r: &Recipient, dsn: bool, tx: &mut Vec<u8>) -> Result<(), CommandError> {
    // DSN parameters only to a server that offers DSN (RFC 3461 §4).
    let params = if dsn {
        RcptParams { notify: r.notify_request().cloned(), orcpt: r.orcpt_value().cloned() }
    } else {
        RcptParams::default()
    };
    Command::Rcpt { to: r.path(), params: &params, smtputf8: env.needs_smtputf8() }.encode(tx)
}
