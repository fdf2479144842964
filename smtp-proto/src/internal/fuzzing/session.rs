//! Fuzz body for the whole [`Client`] session: fuzzer-chosen configuration, server bytes (from a cooperative
//! mini server that answers what the client sent, with chosen refusals, or raw garbage), chunking, time
//! steps, sends, quits, aborts and EOF.
//!
//! Invariants: every message accepted by `send_message` ends in exactly one `MessageDone`, all before
//! `Closed`; `Closed` comes once and last; after it nothing is written but one QUIT; a message is Sent or
//! Unknown only if an end of data was written for it; no single transmit exceeds the buffering bound.
//!
//! Input layout: a config byte, a body-buffer byte, a capability-set byte, then actions, each an opcode byte
//! followed by its arguments.

use alloc::collections::{BTreeMap, VecDeque};
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::time::Duration;

use super::{Input, push_bytes};
use crate::sasl::Credentials;
use crate::{Client, ClientConfig, Envelope, Event, MessageId, Outcome, Protocol, TlsMode};

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
];

/// Reads the client's bytes as a server would and queues a reply for each command.
#[derive(Default)]
struct MiniServer {
    buf: Vec<u8>,
    in_data: bool,
    bdat_left: usize,
    pending: VecDeque<&'static [u8]>,
    caps: &'static [u8],
    refusals: u64,
    /// The first line read as a command that is no command the client may send (body bytes outside DATA,
    /// say). Only meaningful while the server and the client agree, i.e. when no garbage was injected.
    stray: Option<Vec<u8>>,
}

impl MiniServer {
    fn reply(&mut self, positive: &'static [u8], negative: &'static [u8]) {
        let refuse = self.refusals & 1 == 1;
        self.refusals = self.refusals.rotate_right(1);
        self.pending
            .push_back(if refuse { negative } else { positive });
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
                continue;
            }
            let Some(end) = self.buf.windows(2).position(|w| w == b"\r\n") else {
                return;
            };
            let line: Vec<u8> = self.buf.drain(..end + 2).collect();
            let line = &line[..line.len() - 2];
            if self.in_data {
                if line == b"." {
                    self.in_data = false;
                    self.reply(b"250 queued\r\n", b"554 rejected\r\n");
                }
                continue;
            }
            let upper = line.to_ascii_uppercase();
            let mut words = upper.split(|&b| b == b' ');
            match words.next().unwrap_or(b"") {
                b"EHLO" | b"LHLO" => {
                    let caps = self.caps;
                    self.reply(caps, b"502 no\r\n");
                }
                b"HELO" => self.reply(b"250 mx\r\n", b"550 no\r\n"),
                b"STARTTLS" => self.reply(b"220 go\r\n", b"454 no\r\n"),
                b"AUTH" => self.reply(b"235 ok\r\n", b"535 bad\r\n"),
                b"MAIL" | b"RCPT" | b"RSET" | b"NOOP" => self.reply(b"250 ok\r\n", b"550 no\r\n"),
                b"DATA" => {
                    self.reply(b"354 go\r\n", b"554 no\r\n");
                    self.in_data = self.pending.back().is_some_and(|r| r.starts_with(b"354"));
                }
                b"BDAT" => {
                    let n = words
                        .next()
                        .and_then(|n| core::str::from_utf8(n).ok()?.parse().ok());
                    self.bdat_left = n.unwrap_or(0);
                    self.reply(b"250 ok\r\n", b"552 too big\r\n");
                }
                b"QUIT" => self.reply(b"221 bye\r\n", b"221 bye\r\n"),
                _ => {
                    if self.stray.is_none() {
                        self.stray = Some(line.to_vec());
                    }
                    self.reply(b"235 ok\r\n", b"501 what\r\n");
                }
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
    bodies: BTreeMap<MessageId, Vec<u8>>,
    sent: Vec<MessageId>,
    done: BTreeMap<MessageId, Outcome>,
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
        assert!(
            self.out.len() <= self.bound,
            "one transmit of {} octets",
            self.out.len()
        );
        if self.closed {
            self.after_close.extend_from_slice(&self.out);
        }
        self.wire.extend_from_slice(&self.out);
        self.server.read(&self.out);
        true
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
                    Event::BodyRequested { id } => self.write_body(id),
                    Event::StartTls => {
                        self.client
                            .tls_established(self.now)
                            .expect("an upgrade was asked for");
                    }
                    Event::MessageDone(r) => {
                        assert!(self.sent.contains(&r.id), "report for an unknown message");
                        assert!(
                            self.done.insert(r.id, r.outcome).is_none(),
                            "two reports for {:?}",
                            r.id
                        );
                        assert_eq!(r.failure.is_none(), r.outcome == Outcome::Sent, "{r:?}");
                    }
                    Event::Closed { .. } => {
                        for id in &self.sent {
                            assert!(
                                self.done.contains_key(id),
                                "{id:?} without an outcome at Closed"
                            );
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

    fn write_body(&mut self, id: MessageId) {
        let body = self
            .bodies
            .remove(&id)
            .expect("body requested once, for a sent message");
        let mut rest = &body[..];
        while !rest.is_empty() {
            match self.client.write_body(id, rest) {
                Ok(0) => {
                    if !self.take_output() {
                        break;
                    }
                }
                Ok(n) => rest = &rest[n..],
                Err(_) => return,
            }
        }
        let _ = self.client.finish_body(id);
    }
}

fn config(input: &mut Input<'_>) -> ClientConfig {
    let bits = input.byte();
    let mut c = ClientConfig::new("client.example.org".parse().expect("valid name"));
    c.pipelining = bits & 1 != 0;
    c.chunking = bits & 2 != 0;
    c.tls = [
        TlsMode::None,
        TlsMode::Opportunistic,
        TlsMode::Required,
        TlsMode::Implicit,
    ][usize::from(bits >> 2) & 3];
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
    let refusals = if input.byte() & 1 == 0 {
        0
    } else {
        input.u64()
    };
    let mut w = World {
        server: MiniServer {
            caps,
            refusals,
            ..MiniServer::default()
        },
        client: Client::new(config, Duration::ZERO),
        now: Duration::ZERO,
        out: Vec::new(),
        wire: Vec::new(),
        bodies: BTreeMap::new(),
        sent: Vec::new(),
        done: BTreeMap::new(),
        closed: false,
        after_close: Vec::new(),
        bound,
    };
    // Whether the fuzzer injected replies of its own: the mini server may then disagree with the client.
    let mut garbage = false;
    w.server.pending.push_back(b"220 mx ESMTP\r\n");
    w.drain();
    while !input.is_empty() {
        match input.byte() % 12 {
            // The cooperative server answers up to n queued replies, cut into chunks of `chunk` octets.
            0..=4 => {
                let (n, chunk) = (1 + input.byte() % 6, 1 + usize::from(input.byte() % 40));
                let mut bytes = Vec::new();
                for _ in 0..n {
                    match w.server.pending.pop_front() {
                        Some(r) => bytes.extend_from_slice(r),
                        None => break,
                    }
                }
                for piece in bytes.chunks(chunk) {
                    w.client.handle_input(w.now, piece);
                    w.drain();
                }
            }
            5 => {
                garbage = true;
                let odd = ODD[usize::from(input.byte()) % ODD.len()];
                w.client.handle_input(w.now, odd);
            }
            6 => {
                garbage = true;
                let raw = input.bytes();
                w.client.handle_input(w.now, raw);
            }
            7 | 8 => {
                let rcpts = 1 + usize::from(input.byte() % 3);
                let body: Vec<u8> = input
                    .bytes()
                    .iter()
                    .map(|b| b".a\r\n"[usize::from(*b) % 4])
                    .collect();
                let to: Vec<String> = (0..rcpts).map(|i| format!("r{i}@x.test")).collect();
                let to: Vec<&str> = to.iter().map(String::as_str).collect();
                let env = Envelope::parse("a@x.test", &to).expect("valid addresses");
                if let Ok(id) = w.client.send_message(env) {
                    w.sent.push(id);
                    w.bodies.insert(id, body);
                }
            }
            9 => w.client.quit(),
            10 => {
                w.now += Duration::from_secs(u64::from(input.u16()));
                w.client.handle_timeout(w.now);
            }
            _ => match input.byte() % 3 {
                0 => w.client.abort(),
                1 => w.client.handle_eof(w.now),
                _ => {
                    let _ = w.client.tls_established(w.now);
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
    }
    // Bodies hold no "LAST" and DATA bodies are stuffed: these count ends of data (and lone dots).
    let ends = w.wire.windows(5).filter(|x| *x == b"\r\n.\r\n").count()
        + w.wire.windows(6).filter(|x| *x == b"LAST\r\n").count();
    let ended = w.done.values().filter(|o| **o != Outcome::Rejected).count();
    assert!(
        ended <= ends,
        "{ended} messages past the end of data, {ends} ends written"
    );
    w.done.into_values().collect()
}

/// Builds a session input: config byte, body-buffer byte, capability set, refusal bits, then raw actions.
pub fn session_seed(
    config: u8,
    buffer: u8,
    caps: u8,
    refusals: Option<u64>,
    actions: &[u8],
) -> Vec<u8> {
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
