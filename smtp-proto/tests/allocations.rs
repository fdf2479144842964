//! Allocation budget of a whole pipelined message in steady state, counted by a global allocator (counts are
//! deterministic; speed is left to the benchmarks): at most one, the report's recipient list, which the
//! caller keeps. Short replies (MAIL, RCPT, 354, the final reply) are kept inside the `Reply`, and the list
//! of RCPT replies is reused from message to message.

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

/// The allocations of each of 20 messages to `recipients`, one after the other on one session.
fn allocations_per_message(recipients: &[&str]) -> Vec<u64> {
    let now = Duration::ZERO;
    let mut client = Client::new("client.example.org".parse().unwrap(), ClientConfig::new(), now);
    let mut out = Vec::with_capacity(64 * 1024);
    client.handle_input(now, b"220 mx ESMTP\r\n");
    let _ = client.poll_transmit(now, &mut out);
    client.handle_input(now, b"250-mx\r\n250-PIPELINING\r\n250 8BITMIME\r\n");
    while client.poll_event().is_some() {}
    let envelope = Envelope::parse("alice@example.org", recipients).unwrap();
    let body = vec![b'x'; 1024];
    let mut replies = b"250 2.1.0 Ok\r\n".to_vec();
    for _ in recipients {
        replies.extend_from_slice(b"250 2.1.5 Ok\r\n");
    }
    replies.extend_from_slice(b"354 go\r\n");
    let mut counted = Vec::new();
    for _ in 0..20 {
        // The caller's copy of the envelope is the caller's allocation, not the message's.
        let env = envelope.clone();
        let before = ALLOCS.load(Ordering::Relaxed);
        let id = client.send_message(env).unwrap();
        out.clear();
        let _ = client.poll_transmit(now, &mut out);
        client.handle_input(now, &replies);
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
        let report = report.unwrap();
        assert_eq!(report.outcome, Outcome::Sent);
        assert_eq!(report.recipients.len(), recipients.len());
        drop(report);
    }
    counted
}

#[test]
fn steady_state_allocations_per_message() {
    // One test function: the counter is global, and tests in threads would add to each other's counts.
    for recipients in [&["bob@example.org"][..], &["bob@example.org", "carol@example.org", "dan@example.org"]]
    {
        let counted = allocations_per_message(recipients);
        // After a few messages every buffer has its size: only the report's recipient list is new.
        assert!(counted[5..].iter().all(|&n| n <= 1), "{recipients:?}: allocations per message: {counted:?}");
    }
}
