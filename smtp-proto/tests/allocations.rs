//! Allocation budget of a whole pipelined message in steady state, counted by a global allocator (counts are
//! deterministic; speed is left to the benchmarks). Short replies (all 4 here: MAIL, RCPT, 354, the final
//! reply) are kept inside the `Reply`, so what remains is the per-recipient vector and the report's list.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use smtp_proto::{Client, ClientConfig, Envelope, Event, Outcome};

struct Counting;

static ALLOCS: AtomicU64 = AtomicU64::new(0);

// SAFETY: forwards every call to the system allocator unchanged; it only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: the caller upholds `alloc`'s contract, which we pass on.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as above.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: as above.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

#[test]
fn steady_state_allocations_per_message() {
    let now = Duration::ZERO;
    let mut client = Client::new("client.example.org".parse().unwrap(), ClientConfig::new(), now);
    let mut out = Vec::with_capacity(64 * 1024);
    client.handle_input(now, b"220 mx ESMTP\r\n");
    let _ = client.poll_transmit(now, &mut out);
    client.handle_input(now, b"250-mx\r\n250-PIPELINING\r\n250 8BITMIME\r\n");
    while client.poll_event().is_some() {}
    let envelope = Envelope::parse("alice@example.org", &["bob@example.org"]).unwrap();
    let body = vec![b'x'; 1024];
    let mut counted = Vec::new();
    for _ in 0..20 {
        let env = envelope.clone();
        let before = ALLOCS.load(Ordering::Relaxed);
        let id = client.send_message(env).unwrap();
        out.clear();
        let _ = client.poll_transmit(now, &mut out);
        client.handle_input(now, b"250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 go\r\n");
        while let Some(e) = client.poll_event() {
            if let Event::BodyRequested { .. } = e {
                assert_eq!(client.write_body(id, &body), Ok(body.len()));
                client.finish_body(id).unwrap();
            }
        }
        out.clear();
        let _ = client.poll_transmit(now, &mut out);
        client.handle_input(now, b"250 2.0.0 queued\r\n");
        let mut report = None;
        while let Some(e) = client.poll_event() {
            if let Event::MessageDone(r) = e {
                report = Some(r);
            }
        }
        counted.push(ALLOCS.load(Ordering::Relaxed) - before);
        assert_eq!(report.unwrap().outcome, Outcome::Sent);
    }
    // After a few messages every buffer has its size: 4 replies + 2 vectors per message.
    let steady = &counted[5..];
    assert!(steady.iter().all(|&n| n <= 6), "allocations per message: {counted:?}");
}
