//! RFC 5321 §4.5.3.2 timers on a fake clock: each phase times out at its own value, a drip-fed reply cannot
//! stretch its deadline, and a timeout after the final dot leaves the outcome unknown.

mod common;

use std::time::Duration;

use common::{Step::*, check, config, ehlo, env};
use smtp_proto::{Client, Error, Event, Outcome, Timeouts, Timer};

const PIPE: &[u8] = b"250-mx\r\n250 PIPELINING\r\n";
const MIN: Duration = Duration::from_secs(60);

fn closed(run: &common::Run) -> Error {
    run.closed().expect("closed").expect("with an error")
}

#[test]
fn greeting_times_out_at_five_minutes_even_when_dripped() {
    // One byte every 299 s never completes the greeting: the deadline counts from the connection.
    let script = [
        Advance(Duration::from_secs(299)),
        S(b"2"),
        Advance(Duration::from_secs(1) - Duration::from_millis(1)),
        Nothing,
        Advance(Duration::from_millis(1)),
    ];
    let run = check(&config(), &script);
    assert_eq!(closed(&run), Error::Timeout(Timer::Greeting));
}

#[test]
fn early_handle_timeout_is_a_no_op() {
    let mut c = Client::new(common::helo(), config(), Duration::ZERO);
    assert_eq!(c.poll_timeout(), Some(5 * MIN));
    c.handle_timeout(5 * MIN - Duration::from_nanos(1));
    assert!(!c.is_closed());
    c.handle_timeout(5 * MIN);
    assert!(c.is_closed());
}

/// Runs a session up to the point where `phase` is awaited, then checks that it fires at exactly its own
/// timeout and not a nanosecond before.
fn phase_fires_at(timeouts: Timeouts, setup: &[common::Step], expected: Timer, after: Duration) {
    let mut c = config();
    c.timeouts = timeouts;
    let mut script = setup.to_vec();
    script.push(Advance(after - Duration::from_nanos(1)));
    let run = check(&c, &script);
    assert_eq!(run.closed(), None, "{expected:?} fired early");
    script.push(Advance(Duration::from_nanos(1)));
    let run = check(&c, &script);
    assert_eq!(closed(&run), Error::Timeout(expected));
}

#[test]
fn each_phase_has_its_own_timeout() {
    let t = Timeouts {
        greeting: Duration::from_secs(11),
        command: Duration::from_secs(12),
        mail: Duration::from_secs(13),
        rcpt: Duration::from_secs(14),
        data_init: Duration::from_secs(15),
        data_block: Duration::from_secs(16),
        data_termination: Duration::from_secs(17),
        quit: Duration::from_secs(18),
    };
    phase_fires_at(t, &[], Timer::Greeting, t.greeting);
    phase_fires_at(t, &[S(b"220 mx\r\n"), C(b"EHLO client.example.org\r\n")], Timer::Hello, t.command);
    let lockstep: Vec<common::Step> = ehlo(b"250 mx\r\n")
        .into_iter()
        .chain([Send { env: env("a@x.test", &["b@x.test"]), body: b"x\r\n".to_vec(), chunk: 8 }])
        .collect();
    let mut s = lockstep.clone();
    s.push(C(b"MAIL FROM:<a@x.test>\r\n"));
    phase_fires_at(t, &s, Timer::Mail, t.mail);
    s.extend([S(b"250 ok\r\n"), C(b"RCPT TO:<b@x.test>\r\n")]);
    phase_fires_at(t, &s, Timer::Rcpt, t.rcpt);
    s.extend([S(b"250 ok\r\n"), C(b"DATA\r\n")]);
    phase_fires_at(t, &s, Timer::DataInit, t.data_init);
    s.extend([S(b"354 go\r\n"), C(b"x\r\n.\r\n")]);
    phase_fires_at(t, &s, Timer::DataTermination, t.data_termination);
}

#[test]
fn timeout_after_final_dot_is_unknown() {
    let mut script = ehlo(PIPE).to_vec();
    script.extend([
        Send { env: env("a@x.test", &["b@x.test"]), body: b"x\r\n".to_vec(), chunk: 8 },
        C(b"MAIL FROM:<a@x.test>\r\nRCPT TO:<b@x.test>\r\nDATA\r\n"),
        S(b"250 ok\r\n250 ok\r\n354 go\r\n"),
        C(b"x\r\n.\r\n"),
        Advance(10 * MIN),
    ]);
    let run = check(&config(), &script);
    assert_eq!(run.report().outcome, Outcome::Unknown);
    assert_eq!(closed(&run), Error::Timeout(Timer::DataTermination));
}

/// TIME-04: with pipelining the deadline follows the oldest command still waiting; a reply restarts the
/// clock for the next one, so a slow MAIL does not eat the RCPTs' time.
#[test]
fn pipelined_deadline_follows_the_oldest_command() {
    let mut script = ehlo(PIPE).to_vec();
    script.extend([
        Send { env: env("a@x.test", &["b@x.test"]), body: b"x\r\n".to_vec(), chunk: 8 },
        C(b"MAIL FROM:<a@x.test>\r\nRCPT TO:<b@x.test>\r\nDATA\r\n"),
        // DATA's own 2 minutes would have passed, but MAIL (5 min) is the oldest: no timeout.
        Advance(4 * MIN),
        S(b"250 ok\r\n"),
        // The RCPT reply is now awaited, its 5 minutes counting from the MAIL reply.
        Advance(4 * MIN),
        S(b"250 ok\r\n"),
        // DATA's 2 minutes count from the RCPT reply.
        Advance(2 * MIN - Duration::from_secs(1)),
        S(b"354 go\r\n"),
        C(b"x\r\n.\r\n"),
        S(b"250 ok\r\n"),
    ]);
    let run = check(&config(), &script);
    assert_eq!(run.report().outcome, Outcome::Sent);
}

#[test]
fn quit_timeout_is_a_clean_close() {
    let mut script = ehlo(PIPE).to_vec();
    script.extend([Quit, C(b"QUIT\r\n"), Advance(MIN)]);
    let run = check(&config(), &script);
    assert_eq!(run.closed(), Some(None));
}

#[test]
fn data_block_timer_while_body_is_pending() {
    // The app stops feeding the body: the data-block timer fires 3 minutes after the last handout.
    let mut c = Client::new(common::helo(), config(), Duration::ZERO);
    let now = Duration::ZERO;
    let mut out = Vec::new();
    for packet in [&b"220 mx\r\n"[..], PIPE] {
        c.handle_input(now, packet);
        while c.poll_transmit(now, &mut out) > 0 {}
    }
    let id = c.send_message(env("a@x.test", &["b@x.test"])).unwrap();
    while c.poll_transmit(now, &mut out) > 0 {}
    c.handle_input(now, b"250 ok\r\n250 ok\r\n354 go\r\n");
    c.write_body(id, b"part").unwrap();
    let _ = c.poll_transmit(now, &mut out);
    while c.poll_event().is_some() {}
    assert_eq!(c.poll_timeout(), Some(3 * MIN));
    c.handle_timeout(3 * MIN);
    assert!(c.is_closed());
    let events: Vec<_> = std::iter::from_fn(|| c.poll_event()).collect();
    assert!(events.contains(&Event::Closed { reason: Some(Error::Timeout(Timer::DataBlock)) }));
}

#[test]
fn data_block_timer_armed_when_body_is_requested() {
    // An application that never writes the body cannot hang the session.
    let mut c = Client::new(common::helo(), config(), Duration::ZERO);
    let mut out = Vec::new();
    for packet in [&b"220 mx\r\n"[..], PIPE] {
        c.handle_input(Duration::ZERO, packet);
        while c.poll_transmit(Duration::ZERO, &mut out) > 0 {}
    }
    c.send_message(env("a@x.test", &["b@x.test"])).unwrap();
    while c.poll_transmit(Duration::ZERO, &mut out) > 0 {}
    c.handle_input(MIN, b"250 ok\r\n250 ok\r\n354 go\r\n");
    while c.poll_event().is_some() {}
    assert_eq!(c.poll_timeout(), Some(4 * MIN));
}

/// A run loop that ignores `Event::StartTls` must not wait for ever: the handshake has a deadline.
#[test]
fn tls_handshake_has_a_deadline() {
    let mut c = Client::new(common::helo(), tls_required(), Duration::ZERO);
    let mut out = Vec::new();
    for (at, packet) in
        [(0, &b"220 mx\r\n"[..]), (1, b"250-mx\r\n250 STARTTLS\r\n"), (2, b"220 go ahead\r\n")]
    {
        c.handle_input(Duration::from_secs(at), packet);
        while c.poll_transmit(Duration::from_secs(at), &mut out) > 0 {}
    }
    assert!(std::iter::from_fn(|| c.poll_event()).any(|e| e == Event::StartTls));
    assert_eq!(c.poll_timeout(), Some(Duration::from_secs(2) + 5 * MIN));
    c.handle_timeout(Duration::from_secs(2) + 5 * MIN);
    let closed = std::iter::from_fn(|| c.poll_event()).find_map(|e| match e {
        Event::Closed { reason } => reason,
        _ => None,
    });
    assert_eq!(closed, Some(Error::Timeout(Timer::TlsHandshake)));
}

/// The documented order (transmit, events, then the deadline) is checked in debug builds: waiting with
/// events not taken would stall the session.
#[test]
#[cfg(debug_assertions)]
#[should_panic(expected = "drain them before waiting")]
fn waiting_with_events_not_taken_is_caught() {
    let mut c = Client::new(common::helo(), config(), Duration::ZERO);
    c.handle_input(Duration::ZERO, b"220 mx\r\n");
    while c.poll_transmit(Duration::ZERO, &mut Vec::new()) > 0 {}
    c.handle_input(Duration::ZERO, b"250 mx\r\n"); // Event::Ready is now queued
    let _ = c.poll_timeout();
}

#[test]
#[cfg(debug_assertions)]
#[should_panic(expected = "drain it before waiting")]
fn waiting_with_bytes_not_taken_is_caught() {
    let mut c = Client::new(common::helo(), config(), Duration::ZERO);
    c.handle_input(Duration::ZERO, b"220 mx\r\n"); // EHLO is now queued
    let _ = c.poll_timeout();
}

fn tls_required() -> smtp_proto::ClientConfig {
    let mut c = config();
    c.tls = smtp_proto::TlsMode::Required;
    c
}
