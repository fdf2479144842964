//! Property tests of the whole session against random servers: whatever the server says, however its bytes
//! are cut, whatever time does, every message handed over ends in exactly one outcome, `Closed` comes once
//! and last, and nothing but one QUIT is written after it.

use std::collections::BTreeMap;
use std::time::Duration;

use proptest::prelude::*;
use smtp_proto::{Client, ClientConfig, Envelope, Event, MessageId, Outcome};

/// Replies a server might plausibly send, plus some garbage.
const VOCAB: &[&[u8]] = &[
    b"220 mx ESMTP\r\n",
    b"220-mx\r\n",
    b"250 ok\r\n",
    b"250-mx\r\n250-PIPELINING\r\n250-8BITMIME\r\n250 SIZE 100\r\n",
    b"250-mx\r\n250-CHUNKING\r\n250 PIPELINING\r\n",
    b"250-mx\r\n250-STARTTLS\r\n250 AUTH PLAIN LOGIN CRAM-MD5\r\n",
    b"250-mx\r\n250 AUTH PLAIN\r\n",
    b"250 mx\r\n",
    b"251 forwarded\r\n",
    b"354 go\r\n",
    b"334 \r\n",
    b"334 PDE4OTYuNjk3MTcwOTUyQHBvc3RvZmZpY2U+\r\n",
    b"235 ok\r\n",
    b"221 bye\r\n",
    b"421 closing\r\n",
    b"450 busy\r\n",
    b"451 later\r\n",
    b"452 4.5.3 too many\r\n",
    b"500 what\r\n",
    b"502 no\r\n",
    b"503 sequence\r\n",
    b"535 bad\r\n",
    b"550 no\r\n",
    b"554 no\r\n",
    b"199 bad\r\n",
    b"2",
    b"\r\n",
    b"250 a\n",
];

/// A small cooperative server: reads the client's bytes as a server would (commands, DATA bodies, BDAT
/// chunks) and queues a plausible reply for each command, positive unless the test picks a refusal.
#[derive(Default)]
struct MiniServer {
    /// Everything the client wrote.
    wire: Vec<u8>,
    buf: Vec<u8>,
    in_data: bool,
    bdat_left: usize,
    pending: std::collections::VecDeque<Vec<u8>>,
    caps: usize,
    refusals: u64,
}

const CAPS: &[&[u8]] = &[
    b"250-mx\r\n250-PIPELINING\r\n250-8BITMIME\r\n250 DSN\r\n",
    b"250-mx\r\n250-PIPELINING\r\n250 CHUNKING\r\n",
    b"250 mx\r\n",
    b"250-mx\r\n250-STARTTLS\r\n250-PIPELINING\r\n250 AUTH PLAIN LOGIN\r\n",
    b"250-mx\r\n250 AUTH LOGIN CRAM-MD5\r\n",
];

impl MiniServer {
    fn reply(&mut self, positive: &[u8], negative: &[u8]) {
        // The low bits of `refusals` pick which replies are refusals, one bit per reply.
        let refuse = self.refusals & 1 == 1;
        self.refusals = self.refusals.rotate_right(1);
        self.pending.push_back(if refuse {
            negative.to_vec()
        } else {
            positive.to_vec()
        });
    }

    fn read(&mut self, bytes: &[u8]) {
        self.wire.extend_from_slice(bytes);
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
            let verb = upper.split(|&b| b == b' ').next().unwrap_or(b"");
            match verb {
                b"EHLO" | b"LHLO" => {
                    let caps = CAPS[self.caps % CAPS.len()];
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
                    let n = upper
                        .split(|&b| b == b' ')
                        .nth(1)
                        .and_then(|n| std::str::from_utf8(n).ok()?.parse().ok());
                    self.bdat_left = n.unwrap_or(0);
                    self.reply(b"250 ok\r\n", b"552 too big\r\n");
                }
                b"QUIT" => self.reply(b"221 bye\r\n", b"221 bye\r\n"),
                _ => self.reply(b"235 ok\r\n", b"501 what\r\n"),
            }
        }
    }
}

#[derive(Clone, Debug)]
enum Action {
    /// The cooperative server sends up to this many queued replies, in chunks of this size.
    Respond(usize, usize),
    Server(Vec<u8>, usize),
    Send {
        rcpts: usize,
        body: Vec<u8>,
    },
    Quit,
    Abort,
    Eof,
    Advance(u64),
    TlsUp,
}

fn action() -> impl Strategy<Value = Action> {
    prop_oneof![
        30 => (1usize..6, 1usize..40).prop_map(|(n, c)| Action::Respond(n, c)),
        1 => (proptest::collection::vec(0..VOCAB.len(), 1..4), 1usize..8).prop_map(|(ix, chunk)| {
            Action::Server(ix.into_iter().flat_map(|i| VOCAB[i].iter().copied()).collect(), chunk)
        }),
        1 => (proptest::collection::vec(any::<u8>(), 0..20), 1usize..8).prop_map(|(b, c)| Action::Server(b, c)),
        8 => (1usize..4, proptest::collection::vec(prop_oneof![Just(b'a'), Just(b'.'), Just(b'\r'), Just(b'\n')], 0..40))
            .prop_map(|(rcpts, body)| Action::Send { rcpts, body }),
        1 => Just(Action::Quit),
        1 => Just(Action::Eof),
        1 => Just(Action::Abort),
        2 => (0u64..700).prop_map(Action::Advance),
        1 => Just(Action::TlsUp),
    ]
}

fn configs() -> impl Strategy<Value = ClientConfig> {
    (
        any::<bool>(),
        any::<bool>(),
        0u8..4,
        any::<bool>(),
        any::<bool>(),
        1usize..64,
        any::<bool>(),
    )
        .prop_map(
            |(pipelining, chunking, tls, lmtp, creds, buffer, transcript)| {
                let mut c = ClientConfig::new("client.example.org".parse().unwrap());
                c.pipelining = pipelining;
                c.chunking = chunking;
                c.tls = [
                    smtp_proto::TlsMode::None,
                    smtp_proto::TlsMode::Opportunistic,
                    smtp_proto::TlsMode::Required,
                    smtp_proto::TlsMode::Implicit,
                ][tls as usize];
                if lmtp {
                    c.protocol = smtp_proto::Protocol::Lmtp;
                }
                if creds {
                    c.credentials = Some(smtp_proto::sasl::Credentials::password("u", "p"));
                }
                c.body_buffer = buffer;
                c.transcript = transcript;
                c
            },
        )
}

struct World {
    server: MiniServer,
    client: Client,
    now: Duration,
    out: Vec<u8>,
    bodies: BTreeMap<MessageId, Vec<u8>>,
    sent: Vec<MessageId>,
    done: BTreeMap<MessageId, Outcome>,
    closed: bool,
    after_close: Vec<u8>,
}

impl World {
    fn drain(&mut self) {
        loop {
            let mut busy = false;
            self.out.clear();
            while self.client.poll_transmit(self.now, &mut self.out) > 0 {
                busy = true;
                self.server.read(&self.out);
                if self.closed {
                    self.after_close.extend_from_slice(&self.out);
                }
                // Bounded output: commands plus at most a few body buffers.
                assert!(
                    self.out.len() < 64 * 1024,
                    "output grew to {}",
                    self.out.len()
                );
                self.out.clear();
            }
            while let Some(ev) = self.client.poll_event() {
                busy = true;
                assert!(!self.closed, "event after Closed: {ev:?}");
                match ev {
                    Event::BodyRequested { id } => {
                        let body = self
                            .bodies
                            .remove(&id)
                            .expect("body requested once, for a sent message");
                        let mut rest = &body[..];
                        while !rest.is_empty() {
                            match self.client.write_body(id, rest) {
                                Ok(0) => {
                                    self.out.clear();
                                    if self.client.poll_transmit(self.now, &mut self.out) == 0 {
                                        break;
                                    }
                                    self.server.read(&self.out);
                                }
                                Ok(n) => rest = &rest[n..],
                                Err(_) => break,
                            }
                        }
                        let _ = self.client.finish_body(id);
                    }
                    Event::StartTls => {
                        // A cooperative driver upgrades at once; the mini server "is" TLS after its 220.
                        self.client
                            .tls_established(self.now)
                            .expect("upgrade was asked for");
                    }
                    Event::MessageDone(r) => {
                        assert!(self.sent.contains(&r.id), "report for an unknown message");
                        assert!(
                            self.done.insert(r.id, r.outcome).is_none(),
                            "two reports for {:?}",
                            r.id
                        );
                        if r.outcome == Outcome::Sent {
                            assert!(r.failure.is_none());
                        } else {
                            assert!(r.failure.is_some(), "{r:?}");
                        }
                    }
                    Event::Closed { .. } => {
                        // Every message has its outcome before the session ends.
                        for id in &self.sent {
                            assert!(
                                self.done.contains_key(id),
                                "{id:?} without outcome at Closed"
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
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn every_message_ends_once(
        config in configs(),
        actions in proptest::collection::vec(action(), 1..40),
        caps in 0usize..5,
        refusals in prop_oneof![3 => Just(0u64), 1 => any::<u64>()],
    ) {
        let mut w = World {
            server: MiniServer { caps, refusals, ..MiniServer::default() },
            client: Client::new(config, Duration::ZERO),
            now: Duration::ZERO,
            out: Vec::new(),
            bodies: BTreeMap::new(),
            sent: Vec::new(),
            done: BTreeMap::new(),
            closed: false,
            after_close: Vec::new(),
        };
        w.server.pending.push_back(b"220 mx ESMTP\r\n".to_vec());
        w.drain();
        for a in actions {
            match a {
                Action::Respond(n, chunk) => {
                    let mut bytes = Vec::new();
                    for _ in 0..n {
                        match w.server.pending.pop_front() {
                            Some(r) => bytes.extend_from_slice(&r),
                            None => break,
                        }
                    }
                    for piece in bytes.chunks(chunk) {
                        w.client.handle_input(w.now, piece);
                        w.drain();
                    }
                }
                Action::Server(bytes, chunk) => {
                    for piece in bytes.chunks(chunk) {
                        w.client.handle_input(w.now, piece);
                        w.drain();
                    }
                }
                Action::Send { rcpts, body } => {
                    let to: Vec<String> = (0..rcpts).map(|i| format!("r{i}@x.test")).collect();
                    let to: Vec<&str> = to.iter().map(String::as_str).collect();
                    let env = Envelope::parse("a@x.test", &to).unwrap();
                    if let Ok(id) = w.client.send_message(env) {
                        w.sent.push(id);
                        w.bodies.insert(id, body);
                    }
                }
                Action::Quit => w.client.quit(),
                Action::Abort => w.client.abort(),
                Action::Eof => w.client.handle_eof(w.now),
                Action::Advance(s) => {
                    w.now += Duration::from_secs(s);
                    w.client.handle_timeout(w.now);
                }
                Action::TlsUp => {
                    let _ = w.client.tls_established(w.now);
                }
            }
            w.drain();
        }
        // However it went, ending the connection settles everything.
        w.client.handle_eof(w.now);
        w.drain();
        prop_assert!(w.closed || !w.client.is_closed());
        if !w.closed {
            prop_assert!(false, "handle_eof did not close the session");
        }
        for id in &w.sent {
            prop_assert!(w.done.contains_key(id));
        }
        // Sent or Unknown only for messages whose end of data reached the server.
        // Bodies here hold no "LAST", and DATA bodies are stuffed, so these count ends of data (plus lone dots).
        let ends = w.server.wire.windows(5).filter(|x| x == b"\r\n.\r\n").count()
            + w.server.wire.windows(6).filter(|x| x == b"LAST\r\n").count();
        let ended = w.done.values().filter(|o| **o != Outcome::Rejected).count();
        prop_assert!(ended <= ends, "{ended} messages past the end of data, {ends} ends written");
        prop_assert!(w.after_close.is_empty() || w.after_close == b"QUIT\r\n", "{:?}", String::from_utf8_lossy(&w.after_close));
    }
}
