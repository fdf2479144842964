//! A 50 MiB message streamed from a generator to smtp-sink, in its own test binary so that the process's
//! peak memory measures this test alone. Needs the real servers (see `interop.rs`).

use std::io::{self, Read};
use std::time::Duration;

use smtp_blocking::SmtpClient;
use smtp_proto::{Envelope, Outcome, Timeouts, TlsMode};
use smtp_testkit::{SinkOptions, SmtpSink};
use smtp_transport::Options;

const WAIT: Duration = Duration::from_secs(30);

fn envelope(to: &[&str]) -> Envelope {
    Envelope::parse("alice@example.org", to).expect("valid addresses")
}

fn sink(opts: SinkOptions) -> SmtpSink {
    SmtpSink::start(opts).unwrap_or_else(|e| panic!("{e}"))
}

fn options(port: u16) -> Options {
    let mut o = Options::new("127.0.0.1", port);
    o.session.tls = TlsMode::None;
    o.helo_name = Some("client.test".parse().expect("valid EHLO name"));
    o.session.timeouts = Timeouts::uniform(WAIT);
    o
}

/// A body that comes from a generator, never from memory: numbered lines, every fifth one starting with
/// a dot, every seventh with a bare LF, until at least `len` bytes; it ends at a line end.
struct Generated {
    len: u64,
    produced: u64,
    line: u64,
    pending: Vec<u8>,
    at: usize,
}

impl Generated {
    fn new(len: u64) -> Generated {
        Generated { len, produced: 0, line: 0, pending: Vec::with_capacity(128), at: 0 }
    }
}

impl Read for Generated {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut n = 0;
        while n < buf.len() {
            if self.at == self.pending.len() {
                if self.produced >= self.len {
                    break;
                }
                self.pending.clear();
                self.at = 0;
                self.line += 1;
                let i = self.line;
                let dot = if i % 5 == 0 { "." } else { "" };
                let end = if i % 7 == 0 { "\n" } else { "\r\n" };
                let pad = "abcdefghijklmnopqrstuvwxyz0123456789".repeat((i % 4 + 1) as usize);
                self.pending.extend_from_slice(format!("{dot}line {i} {pad}{end}").as_bytes());
            }
            let k = (buf.len() - n).min(self.pending.len() - self.at);
            buf[n..n + k].copy_from_slice(&self.pending[self.at..self.at + k]);
            self.at += k;
            n += k;
            self.produced += k as u64;
        }
        Ok(n)
    }
}

/// Peak resident memory of this process so far (VmHWM), in bytes.
fn peak_rss() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

#[test]
#[ignore = "needs real servers: scripts/install-test-servers, then cargo test -- --include-ignored"]
fn sink_50_mib_streamed_in_constant_memory() {
    const LEN: u64 = 50 << 20;
    let sink = sink(SinkOptions::default());
    let mut client = SmtpClient::connect(&options(sink.port())).expect("connect");
    let report = client
        .send(envelope(&["bob@example.org"]), smtp_blocking::OneShot(Generated::new(LEN)))
        .expect("send");
    assert_eq!(report.outcome, Outcome::Sent);
    client.quit().expect("quit");
    // Measured before reading the stored copy back (which needs the whole body in memory).
    let peak = peak_rss().expect("VmHWM");
    eprintln!("peak RSS after sending 50 MiB: {} KiB", peak / 1024);
    assert!(peak < LEN / 2, "peak RSS {peak} bytes: the body was held in memory");
    let got = sink.wait_for(1, WAIT);
    assert_eq!(got.len(), 1);
    // Compare with a second run of the generator, chunk by chunk.
    let stored = &got[0].body;
    let mut generated = Generated::new(LEN);
    let mut chunk = vec![0u8; 1 << 16];
    let mut at = 0;
    loop {
        let n = generated.read(&mut chunk).expect("generator");
        if n == 0 {
            break;
        }
        let want: Vec<u8> = chunk[..n].iter().copied().filter(|&b| b != b'\r').collect();
        assert!(stored.get(at..at + want.len()) == Some(&want[..]), "stored body differs near offset {at}");
        at += want.len();
    }
    assert_eq!(at, stored.len());
}
