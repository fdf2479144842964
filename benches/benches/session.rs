//! A whole pipelined session in memory against canned replies: messages per second, and heap allocations
//! per message counted by a global allocator (printed once before the timing).

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use smtp_proto::{Client, ClientConfig, Envelope, Event, Outcome};
use std::hint::black_box;

struct Counting;

static ALLOCS: AtomicU64 = AtomicU64::new(0);

// SAFETY: forwards to the system allocator; only counts calls.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const BODY: &[u8] = &[b'x'; 1024];

/// A session ready for mail on a pipelining server, with reusable buffers.
struct Session {
    client: Client,
    out: Vec<u8>,
    envelope: Envelope,
}

impl Session {
    fn new() -> Session {
        let mut client =
            Client::new("client.example.org".parse().unwrap(), ClientConfig::new(), Duration::ZERO);
        let mut out = Vec::with_capacity(64 * 1024);
        client.handle_input(Duration::ZERO, b"220 mx ESMTP\r\n");
        let _ = client.poll_transmit(Duration::ZERO, &mut out);
        client.handle_input(Duration::ZERO, b"250-mx\r\n250-PIPELINING\r\n250 8BITMIME\r\n");
        while client.poll_event().is_some() {}
        let envelope = Envelope::parse("alice@example.org", &["bob@example.org"]).unwrap();
        Session { client, out, envelope }
    }

    /// One message, start to report: MAIL/RCPT/DATA, 354, 1 KiB body, final reply.
    fn one(&mut self) -> Outcome {
        let now = Duration::ZERO;
        let id = self.client.send_message(self.envelope.clone()).unwrap();
        self.out.clear();
        let _ = self.client.poll_transmit(now, &mut self.out);
        self.client.handle_input(now, b"250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 End data\r\n");
        while let Some(e) = self.client.poll_event() {
            if let Event::BodyRequested { .. } = e {
                self.client.write_body(id, BODY).unwrap();
                self.client.finish_body(id).unwrap();
            }
        }
        self.out.clear();
        let _ = self.client.poll_transmit(now, &mut self.out);
        self.client.handle_input(now, b"250 2.0.0 Ok: queued as 4XYZ\r\n");
        let mut outcome = Outcome::Rejected;
        while let Some(e) = self.client.poll_event() {
            if let Event::MessageDone(r) = e {
                outcome = r.outcome;
            }
        }
        outcome
    }
}

fn session(c: &mut Criterion) {
    let mut s = Session::new();
    for _ in 0..100 {
        assert_eq!(s.one(), Outcome::Sent);
    }
    let before = ALLOCS.load(Ordering::Relaxed);
    let n = 10_000;
    for _ in 0..n {
        s.one();
    }
    let per_message = (ALLOCS.load(Ordering::Relaxed) - before) as f64 / n as f64;
    // 4 server replies per message (MAIL, RCPT, 354, final), kept inline when short.
    println!(
        "session/allocations_per_message: {per_message:.2} (4 replies per message; 3 allocations are the caller's Envelope::clone)"
    );

    let mut g = c.benchmark_group("session");
    g.throughput(Throughput::Elements(1));
    g.bench_function("pipelined_1KiB_message", |b| b.iter(|| black_box(s.one())));
    g.finish();
}

criterion_group!(benches, session);
criterion_main!(benches);
