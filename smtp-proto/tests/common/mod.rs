//! Transcript harness: a scripted server on a fake clock, with every script also run on fragmented input.
//!
//! A script is a list of [`Step`]s. `S` feeds server bytes, `C` asserts the exact bytes the client wrote
//! since the previous `C` (so every byte the client emits is accounted for), `Send` hands over a message
//! whose body the harness writes as soon as the client asks for it. [`check`] runs a script once with the
//! server bytes whole, then split at every byte boundary, byte by byte and in pseudo-random chunks, and
//! requires identical events every time.
#![allow(dead_code)]

use std::time::Duration;

use smtp_proto::{Client, ClientConfig, Envelope, Error, Event, MessageId, MessageReport};

/// One step of a transcript.
#[derive(Clone, Debug)]
pub enum Step {
    /// Server bytes.
    S(&'static [u8]),
    /// Exactly the bytes the client must have written since the previous `C`.
    C(&'static [u8]),
    /// The client must have written nothing since the previous `C`.
    Nothing,
    /// Hand over a message; its body is written when requested, in chunks of `chunk` bytes.
    Send {
        env: Envelope,
        body: Vec<u8>,
        chunk: usize,
    },
    /// `send_message` must fail with this error's Debug text containing the given string.
    SendFails {
        env: Envelope,
        contains: &'static str,
    },
    /// The server closes the connection.
    Eof,
    /// Time passes; `handle_timeout` is called.
    Advance(Duration),
    /// The driver finished the TLS handshake.
    TlsUp,
    /// The application asks to quit.
    Quit,
}

/// What a transcript run produced.
#[derive(Clone, Debug, PartialEq)]
pub struct Run {
    pub events: Vec<Event>,
}

impl Run {
    pub fn reports(&self) -> Vec<&MessageReport> {
        self.events
            .iter()
            .filter_map(|e| match e {
                Event::MessageDone(r) => Some(r),
                _ => None,
            })
            .collect()
    }

    pub fn report(&self) -> &MessageReport {
        let r = self.reports();
        assert_eq!(
            r.len(),
            1,
            "expected exactly one report, events: {:#?}",
            self.events
        );
        r[0]
    }

    /// `Some(reason)` once the session closed.
    pub fn closed(&self) -> Option<Option<Error>> {
        self.events.iter().find_map(|e| match e {
            Event::Closed { reason } => Some(reason.clone()),
            _ => None,
        })
    }

    pub fn has(&self, pred: impl Fn(&Event) -> bool) -> bool {
        self.events.iter().any(pred)
    }
}

pub fn config() -> ClientConfig {
    ClientConfig::new("client.example.org".parse().unwrap())
}

pub fn env(from: &str, to: &[&str]) -> Envelope {
    Envelope::parse(from, to).unwrap()
}

/// How server bytes are cut before they are fed.
#[derive(Clone, Copy, Debug)]
enum Split {
    Whole,
    /// Every `S` step cut once at this offset (when it is shorter, fed whole).
    At(usize),
    ByteByByte,
    /// Pseudo-random chunk sizes from this seed.
    Random(u64),
}

struct Harness {
    client: Client,
    now: Duration,
    wire: Vec<u8>,
    out: Vec<u8>,
    events: Vec<Event>,
    bodies: Vec<(MessageId, Vec<u8>, usize)>,
}

impl Harness {
    /// Drains output and events, writing requested bodies, until the client is idle.
    fn drain(&mut self) {
        loop {
            let mut busy = false;
            while self.client.poll_transmit(self.now, &mut self.out) > 0 {
                self.wire.extend_from_slice(&self.out);
                self.out.clear();
                busy = true;
            }
            while let Some(event) = self.client.poll_event() {
                busy = true;
                if let Event::BodyRequested { id } = event {
                    self.write_body(id);
                }
                self.events.push(event);
            }
            if !busy {
                return;
            }
        }
    }

    fn write_body(&mut self, id: MessageId) {
        let pos = self
            .bodies
            .iter()
            .position(|(i, ..)| *i == id)
            .expect("body for the message");
        let (_, body, chunk) = self.bodies.remove(pos);
        let mut rest = &body[..];
        while !rest.is_empty() {
            let end = chunk.min(rest.len());
            match self.client.write_body(id, &rest[..end]) {
                Ok(0) => {
                    // Buffer full: hand the output to the "socket" and go on.
                    let n = self.client.poll_transmit(self.now, &mut self.out);
                    assert!(
                        n > 0,
                        "write_body accepted nothing and there is nothing to send"
                    );
                    self.wire.extend_from_slice(&self.out);
                    self.out.clear();
                }
                Ok(n) => rest = &rest[n..],
                // The message ended while its body was being written (a refused BDAT chunk).
                Err(_) => return,
            }
        }
        self.client.finish_body(id).expect("finish_body");
    }

    fn feed(&mut self, bytes: &[u8], split: Split, rng: &mut u64) {
        let mut pieces: Vec<&[u8]> = Vec::new();
        match split {
            Split::Whole => pieces.push(bytes),
            Split::At(k) if k > 0 && k < bytes.len() => {
                pieces.push(&bytes[..k]);
                pieces.push(&bytes[k..]);
            }
            Split::At(_) => pieces.push(bytes),
            Split::ByteByByte => pieces.extend(bytes.chunks(1)),
            Split::Random(_) => {
                let mut rest = bytes;
                while !rest.is_empty() {
                    *rng ^= *rng << 13;
                    *rng ^= *rng >> 7;
                    *rng ^= *rng << 17;
                    let n = 1 + (*rng as usize % 7).min(rest.len() - 1);
                    pieces.push(&rest[..n]);
                    rest = &rest[n..];
                }
            }
        }
        for p in pieces {
            self.client.handle_input(self.now, p);
            self.drain();
        }
    }
}

fn show(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn run_split(config: &ClientConfig, script: &[Step], split: Split) -> Run {
    let mut h = Harness {
        client: Client::new(config.clone(), Duration::ZERO),
        now: Duration::ZERO,
        wire: Vec::new(),
        out: Vec::new(),
        events: Vec::new(),
        bodies: Vec::new(),
    };
    let mut rng = match split {
        Split::Random(seed) => seed | 1,
        _ => 1,
    };
    h.drain();
    for (n, step) in script.iter().enumerate() {
        match step {
            Step::S(bytes) => h.feed(bytes, split, &mut rng),
            Step::C(expected) => {
                assert_eq!(
                    show(&h.wire),
                    show(expected),
                    "step {n}: client bytes differ (split {split:?})"
                );
                h.wire.clear();
            }
            Step::Nothing => {
                assert_eq!(
                    show(&h.wire),
                    "",
                    "step {n}: client wrote something (split {split:?})"
                );
            }
            Step::Send { env, body, chunk } => {
                let id = h.client.send_message(env.clone()).expect("send_message");
                h.bodies.push((id, body.clone(), *chunk));
                h.drain();
            }
            Step::SendFails { env, contains } => {
                let err = h
                    .client
                    .send_message(env.clone())
                    .expect_err("send_message must fail");
                let text = format!("{err:?}");
                assert!(
                    text.contains(contains),
                    "step {n}: error {text} lacks {contains}"
                );
                h.drain();
            }
            Step::Eof => {
                h.client.handle_eof(h.now);
                h.drain();
            }
            Step::Advance(d) => {
                h.now += *d;
                h.client.handle_timeout(h.now);
                h.drain();
            }
            Step::TlsUp => {
                h.client.tls_established(h.now).expect("tls_established");
                h.drain();
            }
            Step::Quit => {
                h.client.quit();
                h.drain();
            }
        }
    }
    assert_eq!(
        show(&h.wire),
        "",
        "client bytes not accounted for by a C step (split {split:?})"
    );
    Run { events: h.events }
}

/// Runs `script` whole, then with the server bytes split at every offset, byte by byte and in random chunks:
/// every run must pass the `C` checks and give the same events.
pub fn check(config: &ClientConfig, script: &[Step]) -> Run {
    let whole = run_split(config, script, Split::Whole);
    let longest = script
        .iter()
        .map(|s| match s {
            Step::S(b) => b.len(),
            _ => 0,
        })
        .max()
        .unwrap_or(0);
    let mut splits: Vec<Split> = (1..longest).map(Split::At).collect();
    splits.push(Split::ByteByByte);
    splits.extend((1..=8).map(Split::Random));
    for split in splits {
        let run = run_split(config, script, split);
        assert_eq!(
            comparable(&run),
            comparable(&whole),
            "events differ with split {split:?}"
        );
    }
    whole
}

/// The events to compare across splits. One difference is legitimate: when injected bytes arrive in the
/// same read as the 220 to STARTTLS, the client never announces StartTls; when they arrive in a later read,
/// StartTls was already announced (a real driver would be in the handshake, which the bytes then break).
fn comparable(run: &Run) -> Vec<&Event> {
    let injected = run.closed() == Some(Some(Error::StartTlsInjection));
    run.events
        .iter()
        .filter(|e| !(injected && **e == Event::StartTls))
        .collect()
}

/// The usual start: greeting, EHLO with the given capability lines.
pub fn ehlo(caps: &'static [u8]) -> [Step; 4] {
    [
        Step::S(b"220 mx.example.com ESMTP\r\n"),
        Step::C(b"EHLO client.example.org\r\n"),
        Step::S(caps),
        Step::Nothing,
    ]
}
