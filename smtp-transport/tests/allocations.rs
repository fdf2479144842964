//! Allocations a message costs through the whole driver (the core, the split bookkeeping, the body pump), in
//! a batch on one session in steady state, counted by a global allocator: one, the report's recipient list
//! (shared address strings and recipient lists, a reused reply list, no split bookkeeping for a message that
//! goes in one transaction). The server is played in memory:
//! every command line gets its reply, the body is skipped to its final dot.

use std::alloc::{GlobalAlloc, Layout, System};
use std::io::{Cursor, Read};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use smtp_proto::{ClientConfig, Envelope, Outcome, TlsMode};
use smtp_transport::driver::{Action, Bodies, Driver};

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

/// A server in memory: answers each command line; in a body, waits for the final dot.
#[derive(Default)]
struct Server {
    line: Vec<u8>,
    in_body: bool,
    replies: Vec<u8>,
}

impl Server {
    fn take(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.line.push(b);
            if b != b'\n' {
                continue;
            }
            if self.in_body {
                if self.line == b".\r\n" {
                    self.in_body = false;
                    self.replies.extend_from_slice(b"250 2.0.0 queued\r\n");
                }
            } else {
                let reply: &[u8] = match &self.line[..4] {
                    b"EHLO" => b"250-mx\r\n250-PIPELINING\r\n250 8BITMIME\r\n",
                    b"DATA" => {
                        self.in_body = true;
                        b"354 go\r\n"
                    }
                    b"QUIT" => b"221 bye\r\n",
                    _ => b"250 2.1.0 ok\r\n",
                };
                self.replies.extend_from_slice(reply);
            }
            self.line.clear();
        }
    }
}

/// The allocations of each message of a batch of `count` to `recipients`.
fn per_message(recipients: &[&str], count: usize) -> Vec<u64> {
    let mut config = ClientConfig::new();
    config.tls = TlsMode::None;
    let helo = Some("client.example.org".parse().unwrap());
    let mut driver = Driver::new(helo, None, config, None, Duration::ZERO);
    let mut server = Server { replies: b"220 mx ESMTP\r\n".to_vec(), ..Server::default() };
    let envelope = Envelope::parse("alice@example.org", recipients).unwrap();
    // The bodies and envelopes are the caller's: made before counting.
    let mut messages: Vec<_> =
        (0..count).map(|_| (envelope.clone(), Cursor::new(vec![b'x'; 1024]))).collect();
    messages.reverse();
    let mut bodies: Bodies<Cursor<Vec<u8>>> = Bodies::default();
    let mut marks = Vec::with_capacity(count + 1);
    driver.start_batch();
    loop {
        match driver.poll() {
            Action::Write { .. } => {
                let n = driver.to_write().len();
                server.take(driver.to_write());
                driver.wrote(Duration::ZERO, n);
            }
            Action::Read { .. } => {
                let n = server.replies.len().min(driver.read_buf().len());
                driver.read_buf()[..n].copy_from_slice(&server.replies[..n]);
                server.replies.drain(..n);
                driver.received(Duration::ZERO, n);
            }
            Action::FillBody { slot } => {
                let n = bodies.get(slot).0.read(driver.body_buf()).unwrap();
                driver.body_read(Duration::ZERO, n);
            }
            Action::NextMessage => {
                marks.push(ALLOCS.load(Ordering::Relaxed));
                bodies.submit(&mut driver, messages.pop(), Ok(0));
            }
            Action::Report { slot, report } => {
                assert_eq!(report.outcome, Outcome::Sent);
                bodies.reported(slot);
            }
            Action::Progress { .. } => {}
            Action::Done => break,
            other => panic!("{other:?}"),
        }
    }
    bodies.finish(&mut driver).unwrap();
    marks.windows(2).map(|w| w[1] - w[0]).collect()
}

#[test]
fn steady_state_allocations_per_message() {
    // One test function: the counter is global, and tests in threads would add to each other's counts.
    for recipients in [&["bob@example.org"][..], &["bob@example.org", "carol@example.org"]] {
        let counted = per_message(recipients, 30);
        let steady = &counted[10..];
        assert!(steady.iter().all(|&n| n <= 1), "{recipients:?}: allocations per message: {counted:?}");
    }
}
