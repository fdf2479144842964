//! Transcript harness: a scripted server on a fake clock, with every script also run on fragmented input.
//!
//! A script is a list of [`Step`]s. `S` feeds server bytes, `C` asserts the exact bytes the client wrote
//! since the previous `C` (so every byte the client emits is accounted for), `Send` hands over a message
//! whose body the harness writes as soon as the client asks for it (and again after each `BodyWritable`).
//! [`check`] runs a script once with the server bytes whole, then split at every byte boundary, byte by
//! byte and in pseudo-random chunks, and requires identical events every time. An `S` step is one packet:
//! its pieces are all fed before the client's output is taken, so a reply in it can only answer a command
//! written before the step.
//!
//! Every script is also a `session` fuzz input: [`session_input`] translates it (server bytes, sends, time,
//! EOF, TLS, quit) and [`check`] runs the translation through `smtp_proto::internal::fuzzing::session`, then
//! checks that the committed corpus holds it as `fuzz/corpus/session/seed-transcript-<test>[-<n>]` (the
//! `n`th `check` of a test). With `SMTP_FUZZ_WRITE_CORPUS=1` it (re)writes that file instead:
//! `SMTP_FUZZ_WRITE_CORPUS=1 cargo test -p smtp-proto --test transcripts --test timeouts`.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use smtp_proto::internal::fuzzing::{self, push_bytes, session_seed};
use smtp_proto::{
    Client, ClientConfig, Envelope, Error, Event, ExtensionUse, MessageId, MessageReport, Protocol,
    RecipientStatus, TlsMode,
};

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
    Send { env: Envelope, body: Vec<u8>, chunk: usize },
    /// `send_message` must fail with this error's Debug text containing the given string.
    SendFails { env: Envelope, contains: &'static str },
    /// The server closes the connection.
    Eof,
    /// Time passes; `handle_timeout` is called.
    Advance(Duration),
    /// The driver finished the TLS handshake.
    TlsUp,
    /// The driver finished the TLS handshake and read these bytes before it wrote anything.
    TlsUpWith(&'static [u8]),
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
        assert_eq!(r.len(), 1, "expected exactly one report, events: {:#?}", self.events);
        r[0]
    }

    /// Each recipient's status in the one report, in envelope order.
    pub fn statuses(&self) -> Vec<RecipientStatus> {
        self.report().recipients.iter().map(|r| r.status).collect()
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
    ClientConfig::new()
}

/// The client's EHLO name in every transcript.
pub fn helo() -> smtp_proto::address::HeloName {
    "client.example.org".parse().unwrap()
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
    /// Bodies not yet finished: the message, the body, the chunk size, and how much was accepted.
    bodies: Vec<(MessageId, Vec<u8>, usize, usize)>,
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
                if let Event::BodyRequested { id } | Event::BodyWritable { id } = event {
                    self.write_body(id);
                }
                self.events.push(event);
            }
            if !busy {
                return;
            }
        }
    }

    /// Writes as much of the body as the client takes; finishes it once all is taken. Pushed back with
    /// nothing left to transmit (BDAT chunks awaiting their replies), it waits for `BodyWritable`.
    fn write_body(&mut self, id: MessageId) {
        let Some(pos) = self.bodies.iter().position(|(i, ..)| *i == id) else {
            return;
        };
        loop {
            let (_, body, chunk, done) = &self.bodies[pos];
            if *done == body.len() {
                break;
            }
            let end = body.len().min(done + chunk);
            match self.client.write_body(id, &body[*done..end]) {
                Ok(0) => {
                    // Buffer full: hand the output to the "socket" and go on, if there is any.
                    if self.client.poll_transmit(self.now, &mut self.out) == 0 {
                        return;
                    }
                    self.wire.extend_from_slice(&self.out);
                    self.out.clear();
                }
                Ok(n) => self.bodies[pos].3 += n,
                // The message ended while its body was being written (a refused BDAT chunk).
                Err(_) => {
                    self.bodies.remove(pos);
                    return;
                }
            }
        }
        self.bodies.remove(pos);
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
        }
        self.drain();
    }
}

fn show(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn run_split(config: &ClientConfig, script: &[Step], split: Split) -> Run {
    let mut h = Harness {
        client: Client::new(helo(), config.clone(), Duration::ZERO),
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
                assert_eq!(show(&h.wire), show(expected), "step {n}: client bytes differ (split {split:?})");
                h.wire.clear();
            }
            Step::Nothing => {
                assert_eq!(show(&h.wire), "", "step {n}: client wrote something (split {split:?})");
            }
            Step::Send { env, body, chunk } => {
                let id = h.client.send_message(env.clone()).expect("send_message");
                h.bodies.push((id, body.clone(), *chunk, 0));
                h.drain();
            }
            Step::SendFails { env, contains } => {
                let err = h.client.send_message(env.clone()).expect_err("send_message must fail");
                let text = format!("{err:?}");
                assert!(text.contains(contains), "step {n}: error {text} lacks {contains}");
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
            Step::TlsUpWith(bytes) => {
                h.client.tls_established(h.now).expect("tls_established");
                h.feed(bytes, split, &mut rng);
            }
            Step::Quit => {
                h.client.quit();
                h.drain();
            }
        }
    }
    assert_eq!(show(&h.wire), "", "client bytes not accounted for by a C step (split {split:?})");
    Run { events: h.events }
}

/// Runs `script` whole, then with the server bytes split at every offset, byte by byte and in random chunks:
/// every run must pass the `C` checks and give the same events.
pub fn check(config: &ClientConfig, script: &[Step]) -> Run {
    let whole = run_split(config, script, Split::Whole);
    let longest = script
        .iter()
        .map(|s| match s {
            Step::S(b) | Step::TlsUpWith(b) => b.len(),
            _ => 0,
        })
        .max()
        .unwrap_or(0);
    let mut splits: Vec<Split> = (1..longest).map(Split::At).collect();
    splits.push(Split::ByteByByte);
    splits.extend((1..=8).map(Split::Random));
    for split in splits {
        let run = run_split(config, script, split);
        assert_eq!(comparable(&run), comparable(&whole), "events differ with split {split:?}");
    }
    fuzz_seed(config, script);
    whole
}

/// The `session` fuzz input that replays `script` (layout: `smtp_proto::internal::fuzzing::session`).
///
/// The configuration maps onto the config byte as far as its bits go (pipelining, chunking, TLS mode, LMTP,
/// credentials present, transcript; the body buffer capped at 64); timeouts, mechanisms, plaintext AUTH and
/// DSN policy keep the fuzz body's defaults. The fuzz server's capability set is 2 (a one-line EHLO reply,
/// never used: the script's own server bytes carry the real EHLO reply), with no refusals. Steps:
/// - `S` → raw server bytes (opcode 6), in pieces of at most 255 bytes;
/// - `Send` → a send (opcode 7) to as many recipients as the fuzz body allows (1 to 3; it names them
///   `r<i>@x.test`), the body (at most 255 bytes) mapped onto the fuzz body alphabet `.`, `a`, CR, LF;
/// - `Advance` → time (opcode 10) in whole seconds: each step brings the fuzz clock to the script's total
///   elapsed time rounded down, so sub-second steps add up (each step saturates at `u16::MAX`);
/// - `Eof`, `TlsUp` → opcode 11 with its EOF or TLS choice (`TlsUpWith` adds its bytes as `S`); `Quit` → 9;
/// - `C`, `Nothing`, `SendFails` → nothing (the fuzz body's own sends use valid envelopes).
pub fn session_input(config: &ClientConfig, script: &[Step]) -> Vec<u8> {
    let on = |u| u8::from(u == ExtensionUse::WhenOffered);
    let mut bits = on(config.pipelining) | on(config.chunking) << 1;
    bits |= match config.tls {
        TlsMode::None => 0,
        TlsMode::Opportunistic => 1,
        TlsMode::Required => 2,
        TlsMode::Implicit => 3,
    } << 2;
    bits |= u8::from(config.protocol == Protocol::Lmtp) << 4;
    bits |= u8::from(config.credentials.is_some()) << 5;
    bits |= u8::from(config.transcript) << 6;
    // The fuzz body's buffer is 1 + (byte % 64).
    let buffer = u8::try_from(config.body_buffer.clamp(1, 64) - 1).expect("at most 63");
    let mut actions = Vec::new();
    let mut elapsed = Duration::ZERO;
    for step in script {
        match step {
            Step::S(bytes) => {
                for piece in bytes.chunks(255) {
                    actions.push(6);
                    push_bytes(&mut actions, piece);
                }
            }
            Step::Send { env, body, .. } => {
                let rcpts = env.recipients().len().clamp(1, 3) - 1;
                actions.extend([7, u8::try_from(rcpts).expect("at most 2")]);
                // Onto `b".a\r\n"[byte % 4]`: dot, CR and LF are kept, every other byte becomes `a`.
                let mapped: Vec<u8> = body
                    .iter()
                    .take(255)
                    .map(|b| match b {
                        b'.' => 0,
                        b'\r' => 2,
                        b'\n' => 3,
                        _ => 1,
                    })
                    .collect();
                push_bytes(&mut actions, &mapped);
            }
            Step::Advance(d) => {
                let before = elapsed.as_secs();
                elapsed += *d;
                let secs = u16::try_from(elapsed.as_secs() - before).unwrap_or(u16::MAX);
                actions.push(10);
                actions.extend(secs.to_le_bytes());
            }
            Step::Eof => actions.extend([11, 1]),
            Step::TlsUp => actions.extend([11, 2]),
            Step::TlsUpWith(bytes) => {
                actions.extend([11, 2]);
                for piece in bytes.chunks(255) {
                    actions.push(6);
                    push_bytes(&mut actions, piece);
                }
            }
            Step::Quit => actions.push(9),
            Step::C(_) | Step::Nothing | Step::SendFails { .. } => {}
        }
    }
    session_seed(bits, buffer, 2, None, &actions)
}

/// `seed-transcript-<test>` for the first `check` of the current test, `…-2`, `…-3` for the next ones.
fn seed_name() -> String {
    static CHECKS: Mutex<BTreeMap<String, usize>> = Mutex::new(BTreeMap::new());
    let test: String = std::thread::current()
        .name()
        .unwrap_or("unnamed")
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '_' { c } else { '-' })
        .collect();
    let mut checks = CHECKS.lock().unwrap_or_else(PoisonError::into_inner);
    let n = checks.entry(test.clone()).or_insert(0);
    *n += 1;
    match *n {
        1 => format!("seed-transcript-{test}"),
        n => format!("seed-transcript-{test}-{n}"),
    }
}

fn seed_path(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/session").join(name)
}

/// Runs the script's translation through the `session` fuzz body, then checks (or, with
/// `SMTP_FUZZ_WRITE_CORPUS=1`, writes) its committed seed.
fn fuzz_seed(config: &ClientConfig, script: &[Step]) {
    let name = seed_name();
    let input = session_input(config, script);
    if let Err(panic) = catch_unwind(AssertUnwindSafe(|| fuzzing::session(&input))) {
        eprintln!("the session fuzz body panicked on {name}: {input:?}");
        resume_unwind(panic);
    }
    let path = seed_path(&name);
    if std::env::var_os("SMTP_FUZZ_WRITE_CORPUS").is_some_and(|v| v == "1") {
        std::fs::write(&path, &input).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
    } else {
        let stored = std::fs::read(&path).unwrap_or_default();
        assert!(
            stored == input,
            "{} is missing or stale: run \
             `SMTP_FUZZ_WRITE_CORPUS=1 cargo test -p smtp-proto --test transcripts --test timeouts`",
            path.display()
        );
    }
}

/// The events to compare across splits. One difference is legitimate: when injected bytes arrive in the
/// same read as the 220 to STARTTLS, the client never announces StartTls; when they arrive in a later read,
/// StartTls was already announced (a real driver would be in the handshake, which the bytes then break).
fn comparable(run: &Run) -> Vec<&Event> {
    let injected = run.closed() == Some(Some(Error::StartTlsInjection));
    run.events.iter().filter(|e| !(injected && **e == Event::StartTls)).collect()
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
