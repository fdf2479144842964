//! Fuzz body for the whole [`Client`] session: fuzzer-chosen configuration, server bytes (from a cooperative
//! mini server that answers what the client sent, with chosen refusals, or raw garbage), chunking, time
//! steps, sends, quits, aborts and EOF.
//!
//! Invariants, always:
//! - every message accepted by `send_message` ends in exactly one `MessageDone`, all before `Closed`;
//!   `Closed` comes once and last; after it nothing is written but one QUIT;
//! - no reply is taken as the answer to a command that had not been transmitted when the reply's bytes were
//!   fed (the client never answers more replies than the commands on the wire call for);
//! - no reply text holds CR or LF;
//! - a report is consistent with its replies: Sent has a positive final reply (or LMTP recipient reply), a
//!   refused end of data a 4yz/5yz one, no stored final reply is 3yz, Unknown only when the session ended;
//!   and with its recipients: Sent when one was delivered, Unknown when none was and one is unknown, else
//!   Rejected, a recipient delivered or unknown only if its RCPT was accepted;
//! - a message is Sent or Unknown only if an end of data was written for it; no single transmit exceeds
//!   the buffering bound.
//!
//! And while the server and the client agree (no garbage injected):
//! - every line outside DATA and BDAT is a command the client may send;
//! - after a 4yz/5yz to a BDAT chunk, no further BDAT of that message is transmitted;
//! - an end of data that could deliver and whose reply never came leaves the message (in LMTP, the
//!   recipient) Unknown.
//!
//! Input layout: a config byte, a body-buffer byte, a capability-set byte, then actions, each an opcode byte
//! followed by its arguments.

use alloc::collections::{BTreeMap, VecDeque};
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::time::Duration;

use super::{Input, push_bytes};
use crate::reply::Reply;
use crate::sasl::Credentials;
use crate::{
    Client, ClientConfig, Envelope, Event, ExtensionUse, Failure, MessageId, MessageReport, Outcome,
    Protocol, RecipientStatus, TlsMode,
};

/// Capability sets the mini server offers.
const CAPS: &[&[u8]] = &[
    b"250-mx\r\n250-PIPELINING\r\n250-8BITMIME\r\n250 DSN\r\n",
    b"250-mx\r\n250-PIPELINING\r\n250 CHUNKING\r\n",
    b"250 mx\r\n",
    b"250-mx\r\n250-STARTTLS\r\n250-PIPELINING\r\n250 AUTH PLAIN LOGIN\r\n",
    b"250-mx\r\n250 AUTH LOGIN CRAM-MD5\r\n",
    b"250-mx\r\n250-PIPELINING\r\n250 LIMITS RCPTMAX=2 MAILMAX=3\r\n",
];

/// Garbage and odd replies the fuzzer may inject as they are.
const ODD: &[&[u8]] = &[
    b"421 closing\r\n",
    b"250 surprise\r\n",
    b"354 go\r\n",
    b"334 \r\n",
    b"199 bad\r\n",
    b"250-a\r\n550 b\r\n",
    b"220 go\r\n250 injected\r\n",
    b"2",
    b"250 ok\n354 go\r\n",
];

/// What a queued reply means to the invariants once the client has been fed all of it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Tag {
    Plain,
    /// The reply to a (non-last) BDAT chunk of this transaction, and whether it refuses it.
    Chunk {
        txn: u32,
        refused: bool,
    },
    /// The reply to an end of data that could deliver (in LMTP, one recipient's).
    Final,
}

/// The transaction the mini server is in, as it sees it.
#[derive(Clone, Copy, Debug, Default)]
struct Txn {
    mail_ok: bool,
    rcpts: usize,
    rcpts_ok: usize,
    chunk_refused: bool,
}

impl Txn {
    fn deliverable(&self) -> bool {
        self.mail_ok && self.rcpts_ok > 0 && !self.chunk_refused
    }
}

/// Reads the client's bytes as a server would and queues a reply for each command.
#[derive(Default)]
struct MiniServer {
    buf: Vec<u8>,
    in_data: bool,
    bdat_left: usize,
    bdat_last: bool,
    pending: VecDeque<(&'static [u8], Tag)>,
    caps: &'static [u8],
    lmtp: bool,
    refusals: u64,
    /// The first line read as a command that is no command the client may send (body bytes outside DATA,
    /// say). Only meaningful while the server and the client agree, i.e. when no garbage was injected.
    stray: Option<Vec<u8>>,
    /// Replies the client's bytes call for so far: one per command line, one per end of data (in LMTP, at
    /// most one per recipient). Counted from the wire alone, whatever the server replied: the fuzz bodies
    /// are made of `a`, `.`, CR and LF, so a body line is never a command.
    due: u64,
    /// RCPT lines since the last MAIL, by the same count.
    rcpt_lines: u64,
    /// MAIL commands seen: the number of the current transaction.
    txn_no: u32,
    txn: Txn,
    /// The transaction whose refused BDAT chunk the client has been fed.
    refusal_fed: Option<u32>,
    /// A BDAT of that transaction arrived after the refusal was fed.
    bdat_after_refusal: bool,
    /// Non-last BDAT chunks of the current transaction, and how many of their replies the client was fed.
    chunks: (u32, u32),
    /// The most chunks of one transaction ever awaiting their replies at once.
    most_in_flight: u32,
    /// Final replies queued for ends of data that could deliver.
    finals: u64,
}

impl MiniServer {
    /// Whether the next reply is positive, by the fuzzer's refusal bits.
    fn decide(&mut self) -> bool {
        let refuse = self.refusals & 1 == 1;
        self.refusals = self.refusals.rotate_right(1);
        !refuse
    }

    fn reply(&mut self, positive: &'static [u8], negative: &'static [u8]) -> bool {
        let ok = self.decide();
        self.pending.push_back((if ok { positive } else { negative }, Tag::Plain));
        ok
    }

    /// The replies to an end of data (the final dot or `BDAT … LAST`).
    fn end_of_data(&mut self, lmtp_replies: usize) {
        if !self.txn.deliverable() {
            self.reply(b"250 ok\r\n", b"554 rejected\r\n");
            return;
        }
        for _ in 0..lmtp_replies {
            let ok = self.decide();
            self.finals += 1;
            let reply: &'static [u8] = if ok { b"250 queued\r\n" } else { b"554 rejected\r\n" };
            self.pending.push_back((reply, Tag::Final));
        }
    }

    fn read(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
        loop {
            if self.bdat_left > 0 {
                let n = self.bdat_left.min(self.buf.len());
                self.buf.drain(..n);
                self.bdat_left -= n;
                if self.bdat_left > 0 {
                    return;
                }
            }
            if core::mem::take(&mut self.bdat_last) {
                let replies = if self.lmtp { self.txn.rcpts_ok } else { 1 };
                self.end_of_data(replies);
                continue;
            }
            let Some(end) = self.buf.windows(2).position(|w| w == b"\r\n") else {
                return;
            };
            let line: Vec<u8> = self.buf.drain(..end + 2).collect();
            let line = &line[..line.len() - 2];
            self.count_due(line);
            if self.in_data {
                if line == b"." {
                    self.in_data = false;
                    let replies = if self.lmtp { self.txn.rcpts_ok } else { 1 };
                    self.end_of_data(replies);
                }
                continue;
            }
            self.command(line);
        }
    }

    /// Counts the replies a line calls for, from the line alone.
    fn count_due(&mut self, line: &[u8]) {
        let per_end = if self.lmtp { self.rcpt_lines.max(1) } else { 1 };
        let upper = line.to_ascii_uppercase();
        if line == b"." {
            self.due += per_end;
        } else if line.iter().all(|b| matches!(b, b'a' | b'.')) {
            // A body line.
        } else if upper.starts_with(b"BDAT ") && upper.ends_with(b" LAST") {
            self.due += per_end;
        } else {
            self.due += 1;
            if upper.starts_with(b"MAIL ") {
                self.rcpt_lines = 0;
            } else if upper.starts_with(b"RCPT ") {
                self.rcpt_lines += 1;
            }
        }
    }

    fn command(&mut self, line: &[u8]) {
        let upper = line.to_ascii_uppercase();
        let mut words = upper.split(|&b| b == b' ');
        match words.next().unwrap_or(b"") {
            b"EHLO" | b"LHLO" => {
                let caps = self.caps;
                self.reply(caps, b"502 no\r\n");
            }
            b"HELO" => {
                self.reply(b"250 mx\r\n", b"550 no\r\n");
            }
            b"STARTTLS" => {
                self.reply(b"220 go\r\n", b"454 no\r\n");
            }
            b"AUTH" => {
                self.reply(b"235 ok\r\n", b"535 bad\r\n");
            }
            b"MAIL" => {
                self.txn_no += 1;
                self.txn = Txn::default();
                self.chunks = (0, 0);
                self.txn.mail_ok = self.reply(b"250 ok\r\n", b"550 no\r\n");
            }
            b"RCPT" => {
                self.txn.rcpts += 1;
                if self.reply(b"250 ok\r\n", b"550 no\r\n") {
                    self.txn.rcpts_ok += 1;
                }
            }
            b"RSET" | b"NOOP" => {
                self.reply(b"250 ok\r\n", b"550 no\r\n");
            }
            b"DATA" => self.in_data = self.reply(b"354 go\r\n", b"554 no\r\n"),
            b"BDAT" => {
                if self.refusal_fed == Some(self.txn_no) {
                    self.bdat_after_refusal = true;
                }
                let n = words.next().and_then(|n| core::str::from_utf8(n).ok()?.parse().ok());
                self.bdat_left = n.unwrap_or(0);
                if words.next() == Some(b"LAST") {
                    // Answered once its octets are read.
                    self.bdat_last = true;
                } else {
                    self.chunks.0 += 1;
                    self.most_in_flight = self.most_in_flight.max(self.chunks.0 - self.chunks.1);
                    let refused = !self.decide();
                    self.txn.chunk_refused |= refused;
                    let tag = Tag::Chunk { txn: self.txn_no, refused };
                    let reply: &'static [u8] = if refused { b"552 too big\r\n" } else { b"250 ok\r\n" };
                    self.pending.push_back((reply, tag));
                }
            }
            b"QUIT" => {
                self.reply(b"221 bye\r\n", b"221 bye\r\n");
            }
            _ => {
                if self.stray.is_none() {
                    self.stray = Some(line.to_vec());
                }
                self.reply(b"235 ok\r\n", b"501 what\r\n");
            }
        }
    }
}

struct World {
    server: MiniServer,
    client: Client,
    now: Duration,
    out: Vec<u8>,
    wire: Vec<u8>,
    /// Bodies not yet finished, with how much of each the client took.
    bodies: BTreeMap<MessageId, (Vec<u8>, usize)>,
    sent: Vec<MessageId>,
    done: BTreeMap<MessageId, Outcome>,
    /// Unknown messages (SMTP) or recipients (LMTP).
    unknown: u64,
    /// Final replies the client was fed whole.
    finals_fed: u64,
    closed: bool,
    after_close: Vec<u8>,
    bound: usize,
}

impl World {
    fn take_output(&mut self) -> bool {
        self.out.clear();
        if self.client.poll_transmit(self.now, &mut self.out) == 0 {
            return false;
        }
        assert!(self.out.len() <= self.bound, "one transmit of {} octets", self.out.len());
        if self.closed {
            self.after_close.extend_from_slice(&self.out);
        }
        self.wire.extend_from_slice(&self.out);
        self.server.read(&self.out);
        true
    }

    /// Feeds server bytes; the client may not have answered more replies than the bytes on the wire call
    /// for (the greeting counts as one).
    fn input(&mut self, bytes: &[u8]) {
        self.client.handle_input(self.now, bytes);
        assert!(
            self.client.replies_answered() <= self.server.due + 1,
            "{} replies taken as answers, {} due: a reply answered a command not yet sent",
            self.client.replies_answered(),
            self.server.due + 1
        );
    }

    /// The cooperative server answers up to `n` queued replies, cut into chunks of `chunk` octets.
    fn serve(&mut self, n: u8, chunk: usize) {
        let mut bytes = Vec::new();
        let mut marks = Vec::new();
        for _ in 0..n {
            match self.server.pending.pop_front() {
                Some((r, tag)) => {
                    bytes.extend_from_slice(r);
                    marks.push((bytes.len(), tag));
                }
                None => break,
            }
        }
        let mut fed = 0;
        let mut marks = marks.into_iter().peekable();
        for piece in bytes.chunks(chunk) {
            self.input(piece);
            fed += piece.len();
            while let Some((_, tag)) = marks.next_if(|(end, _)| *end <= fed) {
                match tag {
                    Tag::Plain => {}
                    Tag::Chunk { txn, refused } => {
                        if txn == self.server.txn_no {
                            self.server.chunks.1 += 1;
                        }
                        if refused {
                            self.server.refusal_fed = Some(txn);
                        }
                    }
                    Tag::Final => self.finals_fed += 1,
                }
            }
            self.drain();
        }
    }

    fn drain(&mut self) {
        loop {
            let mut busy = false;
            while self.take_output() {
                busy = true;
            }
            while let Some(event) = self.client.poll_event() {
                busy = true;
                assert!(!self.closed, "event after Closed: {event:?}");
                match event {
                    Event::BodyRequested { id } | Event::BodyWritable { id } => self.write_body(id),
                    Event::StartTls => {
                        self.client.tls_established(self.now).expect("an upgrade was asked for");
                    }
                    Event::RecipientRejected { reply, .. } => check_reply(&reply),
                    Event::MessageDone(r) => self.report(&r),
                    Event::Closed { reason } => {
                        if let Some(reply) = reason.as_ref().and_then(crate::Error::reply) {
                            check_reply(reply);
                        }
                        for id in &self.sent {
                            assert!(self.done.contains_key(id), "{id:?} without an outcome at Closed");
                        }
                        self.closed = true;
                    }
                    _ => {}
                }
            }
            if !busy {
                return;
            }
        }
    }

    fn report(&mut self, r: &MessageReport) {
        assert!(self.sent.contains(&r.id), "report for an unknown message");
        assert!(self.done.insert(r.id, r.outcome).is_none(), "two reports for {:?}", r.id);
        self.bodies.remove(&r.id);
        assert_eq!(r.failure.is_none(), r.outcome == Outcome::Sent, "{r:?}");
        let replies = [&r.mail_reply, &r.data_reply, &r.final_reply];
        let each = r.recipients.iter().flat_map(|x| [&x.rcpt_reply, &x.lmtp_reply]);
        for reply in replies.into_iter().chain(each).flatten() {
            check_reply(reply);
        }
        let lmtp: Vec<&Reply> = r.recipients.iter().filter_map(|x| x.lmtp_reply.as_ref()).collect();
        let ends: Vec<&Reply> = r.final_reply.iter().chain(lmtp.iter().copied()).collect();
        // An end of data is answered 2yz, 4yz or 5yz; anything else leaves it unknown.
        assert!(ends.iter().all(|e| !e.is_intermediate()), "{r:?}");
        match r.outcome {
            Outcome::Sent => assert!(ends.iter().any(|e| e.is_positive()), "{r:?}"),
            Outcome::Unknown => {
                assert!(matches!(r.failure, Some(Failure::Session(_))), "{r:?}");
            }
            Outcome::Rejected => {}
        }
        if r.failure == Some(Failure::BodyRejected) {
            assert!(ends.iter().any(|e| !e.is_positive()), "{r:?}");
        }
        super::assert_recipients_agree(r);
        self.unknown += if self.server.lmtp {
            r.recipients.iter().filter(|x| x.status == RecipientStatus::Unknown).count() as u64
        } else {
            u64::from(r.outcome == Outcome::Unknown)
        };
    }

    /// Writes as much of the body as the client takes now; finishes it once all is taken.
    fn write_body(&mut self, id: MessageId) {
        let Some((body, mut done)) = self.bodies.remove(&id) else {
            return;
        };
        while done < body.len() {
            match self.client.write_body(id, &body[done..]) {
                Ok(0) => {
                    if !self.take_output() {
                        // Pushed back with nothing to send: BodyWritable follows the server's replies.
                        self.bodies.insert(id, (body, done));
                        return;
                    }
                }
                Ok(n) => done += n,
                Err(_) => return,
            }
        }
        let _ = self.client.finish_body(id);
    }
}

/// Reply text never holds CR or LF (RFC 5321 §2.3.8): one reply can never swallow another.
fn check_reply(reply: &Reply) {
    for line in reply.lines() {
        assert!(!line.contains(&b'\r') && !line.contains(&b'\n'), "CR or LF in the reply {reply:?}");
    }
}

fn config(input: &mut Input<'_>) -> ClientConfig {
    let bits = input.byte();
    let mut c = ClientConfig::new();
    let offered = |on| {
        if on { ExtensionUse::WhenOffered } else { ExtensionUse::Never }
    };
    c.pipelining = offered(bits & 1 != 0);
    c.chunking = offered(bits & 2 != 0);
    c.tls = [TlsMode::None, TlsMode::Opportunistic, TlsMode::Required, TlsMode::Implicit]
        [usize::from(bits >> 2) & 3];
    if bits & 16 != 0 {
        c.protocol = Protocol::Lmtp;
    }
    if bits & 32 != 0 {
        c.credentials = Some(Credentials::password("u", "p"));
    }
    c.transcript = bits & 64 != 0;
    c.body_buffer = 1 + usize::from(input.byte() % 64);
    c
}

/// The fuzz body (see the module docs).
pub fn session(data: &[u8]) {
    run(data);
}

/// Runs a session input, checks the invariants, and returns each message's outcome.
fn run(data: &[u8]) -> Vec<Outcome> {
    let mut input = Input::new(data);
    let config = config(&mut input);
    let bound = 4 * config.body_buffer + 64 * 1024;
    let caps = CAPS[usize::from(input.byte()) % CAPS.len()];
    let refusals = if input.byte() & 1 == 0 { 0 } else { input.u64() };
    let lmtp = config.protocol == Protocol::Lmtp;
    let window = config.bdat_window.max(1);
    let mut w = World {
        server: MiniServer { caps, refusals, lmtp, ..MiniServer::default() },
        client: Client::new("client.example.org".parse().expect("valid name"), config, Duration::ZERO),
        now: Duration::ZERO,
        out: Vec::new(),
        wire: Vec::new(),
        bodies: BTreeMap::new(),
        sent: Vec::new(),
        done: BTreeMap::new(),
        unknown: 0,
        finals_fed: 0,
        closed: false,
        after_close: Vec::new(),
        bound,
    };
    // Whether the fuzzer injected replies of its own: the mini server may then disagree with the client.
    let mut garbage = false;
    w.server.pending.push_back((b"220 mx ESMTP\r\n", Tag::Plain));
    w.drain();
    while !input.is_empty() {
        match input.byte() % 12 {
            0..=4 => {
                let (n, chunk) = (1 + input.byte() % 6, 1 + usize::from(input.byte() % 40));
                w.serve(n, chunk);
            }
            5 => {
                garbage = true;
                let odd = ODD[usize::from(input.byte()) % ODD.len()];
                w.input(odd);
            }
            6 => {
                garbage = true;
                let raw = input.bytes();
                w.input(raw);
            }
            7 | 8 => {
                let rcpts = 1 + usize::from(input.byte() % 3);
                let body: Vec<u8> = input.bytes().iter().map(|b| b".a\r\n"[usize::from(*b) % 4]).collect();
                let to: Vec<String> = (0..rcpts).map(|i| format!("r{i}@x.test")).collect();
                let to: Vec<&str> = to.iter().map(String::as_str).collect();
                let env = Envelope::parse("a@x.test", &to).expect("valid addresses");
                if let Ok(id) = w.client.send_message(env) {
                    w.sent.push(id);
                    w.bodies.insert(id, (body, 0));
                }
            }
            9 => w.client.quit(),
            10 => {
                w.now += Duration::from_secs(u64::from(input.u16()));
                w.client.handle_timeout(w.now);
            }
            _ => match input.byte() % 4 {
                0 => w.client.abort(),
                1 => w.client.handle_eof(w.now),
                2 => {
                    let _ = w.client.tls_established(w.now);
                }
                _ => {
                    let _ = w.client.noop();
                }
            },
        }
        w.drain();
    }
    w.client.handle_eof(w.now);
    w.drain();
    assert!(w.closed, "handle_eof did not close the session");
    for id in &w.sent {
        assert!(w.done.contains_key(id), "{id:?} without an outcome");
    }
    assert!(
        w.after_close.is_empty() || w.after_close == b"QUIT\r\n",
        "written after Closed: {:?}",
        String::from_utf8_lossy(&w.after_close)
    );
    // With a cooperative server, every line outside DATA and BDAT is a command the client may send: no body
    // octet before the 354 (or outside a BDAT chunk), no stray line. (The cooperative server never sends a
    // 334, so no AUTH response lines either.)
    if !garbage {
        assert!(
            w.server.stray.is_none(),
            "not a command: {:?}",
            w.server.stray.as_deref().map(String::from_utf8_lossy)
        );
        // RFC 3030 §2: after a refused chunk, no further chunk of that message; and the chunks that may
        // already be on their way when a refusal comes are bounded by the window.
        assert!(!w.server.bdat_after_refusal, "a BDAT chunk was sent after the refusal of an earlier one");
        assert!(
            w.server.most_in_flight as usize <= window,
            "{} BDAT chunks awaiting their replies at once, the window is {window}",
            w.server.most_in_flight
        );
        // Every end of data that could deliver and got no reply leaves its message (LMTP: recipient)
        // unknown; an answered one may still be unknown (the session ended before the reply was read).
        let unanswered = w.server.finals - w.finals_fed;
        assert!(
            w.unknown >= unanswered,
            "{unanswered} ends of data never answered, {} unknown outcomes",
            w.unknown
        );
    }
    // Bodies hold no "LAST" and DATA bodies are stuffed: these count ends of data (and lone dots).
    let ends = w.wire.windows(5).filter(|x| *x == b"\r\n.\r\n").count()
        + w.wire.windows(6).filter(|x| *x == b"LAST\r\n").count();
    let ended = w.done.values().filter(|o| **o != Outcome::Rejected).count();
    assert!(ended <= ends, "{ended} messages past the end of data, {ends} ends written");
    w.done.into_values().collect()
}

/// Builds a session input: config byte, body-buffer byte, capability set, refusal bits, then raw actions.
pub fn session_seed(config: u8, buffer: u8, caps: u8, refusals: Option<u64>, actions: &[u8]) -> Vec<u8> {
    let mut v = alloc::vec![config, buffer, caps];
    match refusals {
        None => v.push(0),
        Some(r) => {
            v.push(1);
            v.extend_from_slice(&r.to_le_bytes());
        }
    }
    v.extend_from_slice(actions);
    v
}

/// A seed that sends one message through a cooperative pipelining server, with a body read by `bytes`.
pub fn session_happy_seed() -> Vec<u8> {
    let mut actions = Vec::new();
    actions.extend_from_slice(&[0, 1, 40]); // greeting
    actions.extend_from_slice(&[0, 1, 40]); // EHLO reply
    actions.extend_from_slice(&[7, 1]); // send to 2 recipients
    push_bytes(&mut actions, b"\x00\x01\x02\x03\x00\x01");
    actions.extend_from_slice(&[0, 5, 7]); // MAIL, RCPTs, DATA replies
    actions.extend_from_slice(&[0, 5, 3]); // final reply
    // Keep last: tests/session_props.rs cuts these 4 bytes to continue the session with random actions.
    actions.extend_from_slice(&[9, 0, 5, 40]); // quit, 221
    session_seed(0b0000_0011, 16, 0, None, &actions)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_happy_seed_sends_its_message() {
        assert_eq!(run(&session_happy_seed()), [Outcome::Sent]);
    }

    #[test]
    fn empty_and_short_inputs_are_fine() {
        for data in [&b""[..], b"\x00", b"\xff\xff\xff\xff"] {
            run(data);
        }
    }
}
