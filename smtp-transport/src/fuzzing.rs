//! Fuzz body for the [`Driver`]: the session around the core as an adapter runs it, against a mini server
//! that keeps the truth of what it delivered. `fuzz/fuzz_targets/driver.rs` is a shim over [`driver`];
//! `tests/fuzz_driver.rs` replays the committed corpus on stable.
//!
//! The fuzzer chooses the server's capabilities (PIPELINING, `LIMITS RCPTMAX`/`MAILMAX`), the client's limits
//! (recipients a transaction, messages a connection, a rate, sending again what a lost connection did not send),
//! SMTP or LMTP,
//! the messages (1 to 4, each with 1 to 6 recipients, a body that can or cannot be read again), every server
//! reply (accept, 4yz, 5yz, 421, a delivery whose reply is lost), how the IO goes (partial writes and reads,
//! resets, timeouts, failed reconnects and body reads) and, now and then, bytes no honest server would send.
//!
//! Invariants, always:
//! - the driver finishes every operation in a bounded number of steps, and never waits without a deadline
//!   for a server that is waiting for it;
//! - every message the batch took gets exactly one report before the batch is done, none for anything else;
//! - a report lists every recipient of the envelope once, in order, and its outcome agrees with them: Sent
//!   when one was delivered, Unknown when none was and one is unknown, else Rejected.
//!
//! And while the server plays honest (nothing injected), against its own record:
//! - no recipient is delivered twice (a message goes again only when its first try could not deliver);
//! - a recipient reported delivered was delivered; one reported failed was not, then or later; one reported
//!   unknown was accepted in a transaction whose body the server had started to take.
//!
//! Input layout: a flags byte (bits 0–1 the capability set, 2 send again, 3 a cap of 1 + bits 4–5 recipients a
//! transaction, 6 a limit of messages a connection whose byte follows, 7 a liveness check before QUIT), a shape
//! byte (bits 0–1 the message count − 1; bit 2 LMTP; bit 7 a rate of 1 + bits 4–6 messages a second), a byte a message
//! (its recipients − 1, mod 6; bit 7: its body cannot be read again), then the choices, read as the driver asks
//! for IO. A zero byte is always the honest, cooperative choice, so a short input is a clean run.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{self, Cursor, Read};
use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use smtp_proto::internal::fuzzing::{Input, assert_recipients_agree};
use smtp_proto::{ClientConfig, Envelope, MessageReport, Protocol, RecipientStatus, TlsMode};

use crate::Error;
use crate::driver::{Action, Driver, Slot};
use crate::rate::Rate;

/// Capability sets the mini server offers (after `250-mx`).
const CAPS: [&str; 4] = [
    "250-PIPELINING\r\n250 8BITMIME\r\n",
    "250-PIPELINING\r\n250 LIMITS RCPTMAX=2 MAILMAX=3\r\n",
    "250 8BITMIME\r\n",
    "250-PIPELINING\r\n250 LIMITS MAILMAX=1\r\n",
];

/// Bytes no honest server sends at that point: after one of these, only the always-invariants hold.
const ODD: [&[u8]; 5] = [b"250 surprise\r\n", b"421 bye\r\n", b"354 go\r\n", b"2", b"250 ok\n554 no\r\n"];

/// Steps an operation may take: far more than any input can use up honestly.
const STEPS: u32 = 20_000;

/// Runs the driver through connect, a batch, an optional liveness check and QUIT.
pub fn driver(data: &[u8]) {
    let mut input = Input::new(data);
    let flags = input.byte();
    let mut config = ClientConfig::default();
    config.tls = TlsMode::None;
    if flags & 0x40 != 0 {
        config.mail_max = Some(1 + u32::from(input.byte() % 3));
    }
    let shape = input.byte();
    let count = 1 + usize::from(shape % 4);
    let lmtp = shape & 4 != 0;
    if lmtp {
        config.protocol = Protocol::Lmtp;
    }
    let messages: Vec<Msg> = (0..count).map(|j| Msg::new(j, input.byte())).collect();
    let caps = Caps { lines: CAPS[usize::from(flags & 3)], lmtp };
    let local = IpAddr::V4(Ipv4Addr::LOCALHOST);
    let mut h = Harness {
        server: Server::new(caps, &mut input),
        driver: Driver::new(None, Some(local), config, None, Duration::ZERO),
        input,
        caps,
        now: Duration::ZERO,
        messages,
        next: 0,
        slots: BTreeMap::new(),
        bodies: BTreeMap::new(),
        reports: BTreeMap::new(),
        truth: Truth::default(),
        honest: true,
    };
    h.driver.retry_unsent(flags & 4 != 0);
    if flags & 8 != 0 {
        h.driver.rcpt_per_transaction(Some(1 + u32::from((flags >> 4) & 3)));
    }
    if shape & 0x80 != 0 {
        // A shared rate limit of 1 to 8 messages a second: transactions wait for it, reading meanwhile.
        h.driver.pace(Rate::new(f64::from(1 + ((shape >> 4) & 7))), Instant::now());
    }
    h.run();
    h.driver.start_batch();
    h.run();
    for slot in h.slots.keys() {
        assert!(h.reports.contains_key(slot), "message {slot} has no report after its batch");
    }
    if flags & 0x80 != 0 && h.driver.check(h.input.byte() & 1 == 1).is_ok() {
        h.run();
    }
    h.driver.quit();
    h.run();
    h.check_truth();
}

/// One message of the batch: recipients `m<j>r<i>@example.org`, so the server knows whose they are.
struct Msg {
    envelope: Envelope,
    body: Vec<u8>,
    replayable: bool,
}

impl Msg {
    fn new(j: usize, choice: u8) -> Msg {
        let rcpts: Vec<String> =
            (0..1 + usize::from(choice % 6)).map(|i| format!("m{j}r{i}@example.org")).collect();
        let to: Vec<&str> = rcpts.iter().map(String::as_str).collect();
        let envelope = Envelope::parse("sender@example.org", &to).expect("valid addresses");
        let body = format!("Subject: m{j}\r\n\r\nbody {j}\r\n.\r\n..x\n").into_bytes();
        Msg { envelope, body, replayable: choice & 0x80 == 0 }
    }
}

struct Harness<'a> {
    input: Input<'a>,
    driver: Driver,
    server: Server,
    caps: Caps,
    now: Duration,
    messages: Vec<Msg>,
    /// The next message the batch hands over.
    next: usize,
    /// Each slot the driver took, with its message.
    slots: BTreeMap<Slot, usize>,
    /// The bodies of the messages in flight, by slot.
    bodies: BTreeMap<Slot, Cursor<Vec<u8>>>,
    reports: BTreeMap<Slot, MessageReport>,
    /// What the servers did, over every connection.
    truth: Truth,
    /// Nothing was injected: the server's record is the truth the reports must agree with.
    honest: bool,
}

impl Harness<'_> {
    /// Does what the driver asks until it says `Done`.
    fn run(&mut self) {
        for _ in 0..STEPS {
            match self.driver.poll() {
                Action::Write { deadline } => self.write(deadline),
                Action::Read { deadline } => self.read(deadline),
                Action::FillBody { slot } => {
                    let choice = self.input.byte();
                    let buf = self.driver.body_buf();
                    let n = if choice == 0 { buf.len() } else { usize::from(choice).min(buf.len()) };
                    let body = self.bodies.get_mut(&slot).expect("the driver names only bodies it was given");
                    match body.read(&mut buf[..n]) {
                        _ if choice == 255 => self.driver.body_failed(io::Error::other("disk gone")),
                        Ok(n) => self.driver.body_read(self.now, n),
                        Err(e) => self.driver.body_failed(e),
                    }
                }
                Action::Rewind { slot } => {
                    self.bodies.get_mut(&slot).expect("a body it was given").set_position(0);
                    self.driver.rewound(Ok(()));
                }
                Action::Progress { .. } => {}
                Action::NextMessage => self.next_message(),
                Action::Report { slot, report } => {
                    self.bodies.remove(&slot);
                    self.report(slot, report);
                }
                Action::Reconnect => {
                    if self.input.byte() == 1 {
                        let refused = io::Error::from(io::ErrorKind::ConnectionRefused);
                        self.driver.reconnect_failed(Error::Connect(refused));
                    } else {
                        self.server = Server::new(self.caps, &mut self.input);
                        self.driver.reconnected(Some(IpAddr::V4(Ipv4Addr::LOCALHOST)), self.now);
                    }
                }
                Action::Done => return,
            }
        }
        panic!("the driver did not finish in {STEPS} steps");
    }

    /// The batch's next message, or its end; a refused one ends the batch, as in the adapters.
    fn next_message(&mut self) {
        let Some(m) = self.messages.get(self.next) else { return self.driver.end_batch() };
        match self.driver.submit(m.envelope.clone(), m.replayable) {
            Ok(slot) => {
                self.slots.insert(slot, self.next);
                self.bodies.insert(slot, Cursor::new(m.body.clone()));
            }
            Err(_) => self.driver.end_batch(),
        }
        self.next += 1;
    }

    fn write(&mut self, deadline: Option<Duration>) {
        let out = self.driver.to_write().to_vec();
        assert!(!out.is_empty(), "asked to write nothing");
        let n = match self.input.byte() % 16 {
            13 => 1 + usize::from(self.input.byte()) % out.len(),
            14 => {
                self.server.gone = true;
                return self.driver.write_failed(self.now, io::ErrorKind::ConnectionReset.into());
            }
            15 if deadline.is_some() => return self.time_out(deadline),
            _ => out.len(),
        };
        if !self.server.gone {
            self.server.input.extend_from_slice(&out[..n]);
        }
        self.driver.wrote(self.now, n);
    }

    fn read(&mut self, deadline: Option<Duration>) {
        let choice = self.input.byte() % 32;
        match choice {
            28 | 29 => {
                self.honest = false;
                let odd = ODD[usize::from(self.input.byte()) % ODD.len()];
                self.server.output.extend_from_slice(odd);
            }
            30 => {
                // The connection drops: what the server had not sent yet is lost.
                self.server.gone = true;
                self.server.output.clear();
            }
            27 if self.server.in_data => {
                // The server shuts down in the middle of a body: a 421 before the end of data, then it closes.
                self.server.process(&mut self.input, &mut self.truth);
                if self.server.in_data && !self.server.closed && !self.server.gone {
                    self.server.close(b"421 4.3.2 shutting down\r\n");
                }
            }
            31 if deadline.is_some() => return self.time_out(deadline),
            _ => {}
        }
        self.server.process(&mut self.input, &mut self.truth);
        if !self.server.output.is_empty() {
            let buf = self.driver.read_buf();
            let mut n = self.server.output.len().min(buf.len());
            if choice >= 24 {
                n = n.min(1 + usize::from(self.input.byte()));
            }
            buf[..n].copy_from_slice(&self.server.output[..n]);
            self.server.output.drain(..n);
            return self.driver.received(self.now, n);
        }
        if self.server.gone || self.server.closed {
            return self.driver.received(self.now, 0);
        }
        assert!(deadline.is_some(), "the driver waits for ever on a server that waits for it");
        self.time_out(deadline);
    }

    fn time_out(&mut self, deadline: Option<Duration>) {
        self.now = self.now.max(deadline.expect("a deadline"));
        self.driver.timed_out(self.now);
    }

    fn report(&mut self, slot: Slot, report: MessageReport) {
        let Some(&j) = self.slots.get(&slot) else { panic!("a report for slot {slot}, never handed over") };
        let want: Vec<String> =
            self.messages[j].envelope.recipients().iter().map(|r| r.path().to_string()).collect();
        let got: Vec<String> = report.recipients.iter().map(|r| r.path.to_string()).collect();
        assert_eq!(got, want, "message {j}: every recipient once, in order");
        assert_recipients_agree(&report);
        assert!(self.reports.insert(slot, report).is_none(), "two reports for message {j}");
    }

    /// Every report against what the server did, once nothing more can be delivered.
    fn check_truth(&self) {
        if !self.honest {
            return;
        }
        assert!(self.truth.twice.is_empty(), "delivered twice: {:?} ({:?})", self.truth.twice, self.reports);
        for report in self.reports.values() {
            for r in &report.recipients {
                let delivered = self.truth.delivered.contains(r.path.as_str());
                match r.status {
                    RecipientStatus::Delivered => {
                        assert!(delivered, "{} reported delivered: it was not", r.path)
                    }
                    RecipientStatus::TemporaryFailure | RecipientStatus::PermanentFailure => {
                        assert!(!delivered, "{} reported failed: it was delivered ({report:?})", r.path)
                    }
                    RecipientStatus::Unknown => assert!(
                        self.truth.in_body.contains(r.path.as_str()),
                        "{} reported unknown: no body was ever started for it ({report:?})",
                        r.path
                    ),
                }
            }
        }
    }
}

/// What the mini server is: its capabilities, and whether it speaks LMTP (a reply per recipient after the
/// body).
#[derive(Clone, Copy)]
struct Caps {
    lines: &'static str,
    lmtp: bool,
}

/// What the servers did, over every connection.
#[derive(Default)]
struct Truth {
    /// Recipients delivered.
    delivered: BTreeSet<String>,
    /// Recipients delivered a second time.
    twice: Vec<String>,
    /// Recipients accepted in a transaction whose DATA got its 354: the only ones whose outcome can be
    /// unknown.
    in_body: BTreeSet<String>,
}

impl Truth {
    fn deliver(&mut self, rcpt: &str) {
        if !self.delivered.insert(rcpt.to_owned()) {
            self.twice.push(rcpt.to_owned());
        }
    }
}

/// One connection's mini server: answers each complete command as the fuzzer decides, and records what it
/// delivered.
struct Server {
    caps: Caps,
    /// What the client wrote and the server has not taken yet.
    input: Vec<u8>,
    /// Replies the client has not read yet.
    output: Vec<u8>,
    /// After the 354: the body, until its end.
    in_data: bool,
    /// The server closes once its output is read (421, 221, a refused greeting).
    closed: bool,
    /// The connection is gone: nothing more arrives either way.
    gone: bool,
    mail: bool,
    /// Recipients accepted in this transaction.
    rcpts: Vec<String>,
    /// Recipients asked for in this transaction (accepted or not), for RCPTMAX.
    asked: usize,
    mails: u32,
}

impl Server {
    fn new(caps: Caps, input: &mut Input<'_>) -> Server {
        let mut server = Server {
            caps,
            input: Vec::new(),
            output: Vec::new(),
            in_data: false,
            closed: false,
            gone: false,
            mail: false,
            rcpts: Vec::new(),
            asked: 0,
            mails: 0,
        };
        match input.byte() % 16 {
            14 => server.close(b"554 5.3.2 not now\r\n"),
            15 => server.close(b"421 4.3.2 busy\r\n"),
            _ => server.output.extend_from_slice(b"220 mx ESMTP\r\n"),
        }
        server
    }

    fn close(&mut self, reply: &[u8]) {
        self.output.extend_from_slice(reply);
        self.closed = true;
    }

    fn limit(&self, name: &str) -> Option<usize> {
        let at = self.caps.lines.find(name)? + name.len();
        self.caps.lines[at..].split(|c: char| !c.is_ascii_digit()).next()?.parse().ok()
    }

    /// Answers every complete command (and body) the client has written.
    fn process(&mut self, choices: &mut Input<'_>, truth: &mut Truth) {
        while !self.closed && !self.gone {
            if self.in_data {
                let Some(end) = find(&self.input, b"\r\n.\r\n") else { return };
                self.input.drain(..end + 5);
                self.in_data = false;
                if self.caps.lmtp {
                    self.lmtp_end_of_data(choices, truth);
                } else {
                    self.end_of_data(choices.byte() % 8, truth);
                }
                continue;
            }
            let Some(end) = find(&self.input, b"\r\n") else { return };
            let line: Vec<u8> = self.input.drain(..end + 2).collect();
            let line = String::from_utf8_lossy(&line[..end]).into_owned();
            self.command(&line, choices.byte() % 8, truth);
        }
    }

    fn command(&mut self, line: &str, choice: u8, truth: &mut Truth) {
        let verb = line.get(..4).unwrap_or(line).to_ascii_uppercase();
        let reply: &[u8] = match verb.as_str() {
            "EHLO" | "LHLO" if (verb == "LHLO") == self.caps.lmtp => {
                self.output.extend_from_slice(b"250-mx\r\n");
                self.caps.lines.as_bytes()
            }
            "MAIL" if self.limit("MAILMAX=").is_some_and(|max| self.mails as usize >= max) => {
                return self.close(b"421 4.5.3 too many transactions\r\n");
            }
            "MAIL" => {
                self.mails += 1;
                match choice {
                    5 => b"451 4.3.0 try later\r\n",
                    6 => b"550 5.7.1 no\r\n",
                    7 => return self.close(b"421 4.3.0 closing\r\n"),
                    _ => {
                        self.mail = true;
                        b"250 2.1.0 ok\r\n"
                    }
                }
            }
            "RCPT" if !self.mail => b"503 5.5.1 MAIL first\r\n",
            "RCPT" => {
                self.asked += 1;
                match choice {
                    _ if self.limit("RCPTMAX=").is_some_and(|max| self.asked > max) => {
                        b"452 4.5.3 too many recipients\r\n"
                    }
                    3 => b"452 4.5.3 too many recipients\r\n",
                    4 => b"450 4.2.0 busy\r\n",
                    5 | 6 => b"550 5.1.1 unknown\r\n",
                    7 => return self.close(b"421 4.3.0 closing\r\n"),
                    _ => {
                        let addr = line.split(['<', '>']).nth(1).unwrap_or_default();
                        self.rcpts.push(addr.to_owned());
                        b"250 2.1.5 ok\r\n"
                    }
                }
            }
            "DATA" if self.rcpts.is_empty() => b"554 5.5.1 no valid recipients\r\n",
            "DATA" => match choice {
                6 => b"451 4.3.0 not now\r\n",
                7 => return self.close(b"421 4.3.0 closing\r\n"),
                _ => {
                    self.in_data = true;
                    truth.in_body.extend(self.rcpts.iter().cloned());
                    b"354 go ahead\r\n"
                }
            },
            "RSET" => {
                self.reset();
                b"250 2.0.0 ok\r\n"
            }
            "NOOP" => b"250 2.0.0 ok\r\n",
            "QUIT" => return self.close(b"221 2.0.0 bye\r\n"),
            _ => b"500 5.5.2 what\r\n",
        };
        self.output.extend_from_slice(reply);
    }

    fn end_of_data(&mut self, choice: u8, truth: &mut Truth) {
        match choice {
            5 => self.output.extend_from_slice(b"451 4.3.0 failed\r\n"),
            6 => self.output.extend_from_slice(b"554 5.6.0 rejected\r\n"),
            7 => {
                // Delivered, and the connection drops before the reply: the client cannot know.
                self.rcpts.iter().for_each(|r| truth.deliver(r));
                self.gone = true;
            }
            _ => {
                self.rcpts.iter().for_each(|r| truth.deliver(r));
                self.output.extend_from_slice(b"250 2.0.0 queued\r\n");
            }
        }
        self.reset();
    }

    /// LMTP (RFC 2033 §4.2): a reply per accepted recipient, in RCPT order; or the connection drops after
    /// some of them, with the rest delivered but unanswered.
    fn lmtp_end_of_data(&mut self, choices: &mut Input<'_>, truth: &mut Truth) {
        for (i, r) in self.rcpts.iter().enumerate() {
            match choices.byte() % 8 {
                4 => {
                    // Shutting down: this recipient's reply is the 421, the rest get none and nothing.
                    self.close(b"421 4.3.2 shutting down\r\n");
                    break;
                }
                5 => self.output.extend_from_slice(b"451 4.2.0 mailbox busy\r\n"),
                6 => self.output.extend_from_slice(b"550 5.2.1 mailbox disabled\r\n"),
                7 => {
                    self.rcpts[i..].iter().for_each(|r| truth.deliver(r));
                    self.gone = true;
                    break;
                }
                _ => {
                    truth.deliver(r);
                    self.output.extend_from_slice(b"250 2.1.5 delivered\r\n");
                }
            }
        }
        self.reset();
    }

    fn reset(&mut self) {
        self.mail = false;
        self.rcpts.clear();
        self.asked = 0;
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}
