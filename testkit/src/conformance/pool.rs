//! The pool, through each adapter's `Pool`: reuse, liveness, the one retry before the final dot (never after),
//! limits, expiry, backoff, the rate limit, and the same report as on a single connection. The servers are
//! [`MultiServer`]s (one fault a connection) and a private Postfix.

use std::time::{Duration, Instant};

use smtp_proto::{Failure, Outcome, Warning};
use smtp_transport::pool::PoolConfig;
use smtp_transport::{Error, Options};

use super::{Adapter, Body, PoolMessage, envelope, shared};
use crate::multi::{Fault, MultiServer};
use crate::{Postfix, free_port};

fn options_for(server: &MultiServer) -> Options {
    super::options_for(server.addr().port())
}

/// `n` one-line messages to bob, each after `pause`.
fn messages(n: usize, pause: Duration) -> Vec<PoolMessage> {
    (0..n)
        .map(|i| PoolMessage {
            pause,
            envelope: envelope(&["bob@example.org"]),
            body: Body::bytes(format!("Subject: {i}\r\n\r\nmessage {i}\r\n")),
        })
        .collect()
}

fn config(max_connections: usize) -> PoolConfig {
    let mut c = PoolConfig::default();
    c.max_connections = max_connections;
    c
}

/// Every result a report, every report `Sent`.
#[track_caller]
fn all_sent(results: &[Vec<Result<smtp_proto::MessageReport, Error>>]) {
    for r in results.iter().flatten() {
        match r {
            Ok(report) => assert_eq!(report.outcome, Outcome::Sent, "{report:?}"),
            Err(e) => panic!("{e:?}"),
        }
    }
}

/// One caller, six messages: one connection carries them all; closing the pool ends it with QUIT.
pub fn pool_reuses_connections_and_quits_them_on_close<A: Adapter>() {
    let _serial = shared();
    let server = MultiServer::every(&["PIPELINING"], Fault::None);
    let pool = A::pool(options_for(&server), config(2));
    all_sent(&A::pool_send(&pool, vec![messages(6, Duration::ZERO)]));
    A::pool_close(&pool, Duration::from_secs(5));
    let conns = server.connections();
    assert_eq!(conns.len(), 1, "{conns:?}");
    assert_eq!(conns[0].data_ends, 6);
    assert!(conns[0].quit, "{:?}", conns[0].commands);
}

/// The server closes each connection, silently, after its first message. The next message, a moment later,
/// goes on a new connection, and the caller sees no error: the dead one was never handed out.
pub fn pool_never_hands_out_a_connection_the_server_closed_while_idle<A: Adapter>() {
    idle_close::<A>(Fault::CloseAfter(1));
}

/// As above, with a 421 before the close.
pub fn pool_never_hands_out_a_connection_the_server_sent_421_on_while_idle<A: Adapter>() {
    idle_close::<A>(Fault::Close421After(1));
}

fn idle_close<A: Adapter>(fault: Fault) {
    let _serial = shared();
    let server = MultiServer::every(&["PIPELINING"], fault);
    let mut c = config(1);
    // Without the RSET check: the close must be seen without a round trip.
    c.check_after = Duration::from_secs(3600);
    let pool = A::pool(options_for(&server), c);
    let results = A::pool_send(&pool, vec![messages(3, Duration::from_millis(150))]);
    all_sent(&results);
    for r in results.iter().flatten().flatten() {
        assert!(r.warnings.is_empty(), "sent once each: {r:?}");
    }
    A::pool_close(&pool, Duration::from_secs(5));
    let conns = server.connections();
    assert_eq!(conns.len(), 3, "{conns:?}");
    assert!(conns.iter().all(|c| c.data_ends == 1 && !c.commands.iter().any(|l| l.starts_with("RSET"))));
}

/// A connection idle for longer than `check_after` is checked with RSET before it carries a message.
pub fn pool_checks_a_long_idle_connection_with_rset<A: Adapter>() {
    let _serial = shared();
    let server = MultiServer::every(&["PIPELINING"], Fault::None);
    let mut c = config(1);
    c.check_after = Duration::from_millis(50);
    let pool = A::pool(options_for(&server), c);
    all_sent(&A::pool_send(&pool, vec![messages(2, Duration::from_millis(150))]));
    A::pool_close(&pool, Duration::from_secs(5));
    let conns = server.connections();
    assert_eq!(conns.len(), 1, "{conns:?}");
    let verbs: Vec<&str> = conns[0].commands.iter().map(|l| &l[..4]).collect();
    let rset = verbs.iter().position(|v| *v == "RSET").expect("an RSET");
    let mails: Vec<usize> = verbs.iter().enumerate().filter(|(_, v)| **v == "MAIL").map(|(i, _)| i).collect();
    assert!(mails[0] < rset && rset < mails[1], "{verbs:?}");
}

/// The server answers the second MAIL of each connection with 421: that message was not sent, so it goes
/// again, once, on a new connection, and its report says so.
pub fn pool_sends_again_a_message_whose_connection_died_before_the_dot<A: Adapter>() {
    let _serial = shared();
    let server = MultiServer::every(&["PIPELINING"], Fault::Reply421AtMail(2));
    let pool = A::pool(options_for(&server), config(1));
    let results = A::pool_send(&pool, vec![messages(3, Duration::ZERO)]);
    all_sent(&results);
    let reports: Vec<_> = results.into_iter().flatten().map(Result::unwrap).collect();
    assert!(reports[0].warnings.is_empty(), "{:?}", reports[0]);
    match &reports[1].warnings[..] {
        [Warning::SentAgain { failure: Failure::MailRejected, reply: Some(r) }] => assert_eq!(r.code(), 421),
        other => panic!("{other:?}"),
    }
    A::pool_close(&pool, Duration::from_secs(5));
    let conns = server.connections();
    assert_eq!(conns.iter().map(|c| c.data_ends).sum::<usize>(), 3, "each once: {conns:?}");
}

/// The server answers 421 in the middle of the first message's body (32 MiB, more than the socket buffers
/// hold, so the client is still writing) and stops reading: the end of data never went out, so the message
/// goes again, once, on a new connection, and is read there to its end exactly once.
pub fn pool_sends_again_a_message_interrupted_by_a_421_mid_body<A: Adapter>() {
    let _serial = shared();
    let server = MultiServer::start(&["PIPELINING"], vec![Fault::Reply421MidBody(1)]);
    let pool = A::pool(options_for(&server), config(1));
    let line = "x".repeat(76) + "\r\n";
    let big = PoolMessage {
        pause: Duration::ZERO,
        envelope: envelope(&["bob@example.org"]),
        body: Body::bytes(format!("Subject: big\r\n\r\n{}", line.repeat((32 << 20) / 78))),
    };
    let results = A::pool_send(&pool, vec![vec![big]]);
    all_sent(&results);
    let report = results.into_iter().flatten().next().expect("a result").expect("a report");
    match &report.warnings[..] {
        [Warning::SentAgain { failure: Failure::Interrupted, reply: Some(r) }] => assert_eq!(r.code(), 421),
        other => panic!("{other:?}"),
    }
    A::pool_close(&pool, Duration::from_secs(5));
    let conns = server.connections();
    assert_eq!(conns.iter().map(|c| c.data_ends).sum::<usize>(), 1, "read to its end once: {conns:?}");
}

/// The server reads the first message to its final dot and hangs up: its outcome is unknown, and the pool
/// never sends it again (it may have been delivered).
pub fn pool_never_sends_again_after_the_dot<A: Adapter>() {
    let _serial = shared();
    let server = MultiServer::start(&["PIPELINING"], vec![Fault::EofAfterDot(1)]);
    let pool = A::pool(options_for(&server), config(1));
    let results = A::pool_send(&pool, vec![messages(2, Duration::ZERO)]);
    let reports: Vec<_> = results.into_iter().flatten().map(|r| r.expect("a report")).collect();
    assert_eq!(reports[0].outcome, Outcome::Unknown, "{:?}", reports[0]);
    assert!(reports[0].warnings.is_empty());
    assert_eq!(reports[1].outcome, Outcome::Sent, "{:?}", reports[1]);
    A::pool_close(&pool, Duration::from_secs(5));
    let conns = server.connections();
    assert_eq!(
        conns.iter().map(|c| c.data_ends).sum::<usize>(),
        2,
        "the first once, the second once: {conns:?}"
    );
}

/// At most two messages a connection: five messages take three connections, each ended with QUIT.
pub fn pool_follows_its_limit_of_messages_per_connection<A: Adapter>() {
    let _serial = shared();
    let server = MultiServer::every(&["PIPELINING"], Fault::None);
    let mut c = config(1);
    c.max_messages_per_connection = Some(2);
    let pool = A::pool(options_for(&server), c);
    all_sent(&A::pool_send(&pool, vec![messages(5, Duration::ZERO)]));
    A::pool_close(&pool, Duration::from_secs(5));
    let conns = server.connections();
    assert_eq!(conns.iter().map(|c| c.data_ends).collect::<Vec<_>>(), [2, 2, 1], "{conns:?}");
    assert!(conns.iter().all(|c| c.quit), "{conns:?}");
}

/// A connection idle past `idle_timeout` is closed with QUIT by `expire`, before the pool closes.
pub fn pool_closes_idle_connections_when_they_expire<A: Adapter>() {
    let _serial = shared();
    let server = MultiServer::every(&["PIPELINING"], Fault::None);
    let mut c = config(1);
    c.idle_timeout = Duration::from_millis(100);
    let pool = A::pool(options_for(&server), c);
    all_sent(&A::pool_send(&pool, vec![messages(1, Duration::ZERO)]));
    assert!(A::pool_expire(&pool).is_some(), "the idle connection expires later");
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(A::pool_expire(&pool), None, "nothing left to expire");
    // The QUIT went before the pool closed: the server saw it on the one connection.
    let conns = server.connections();
    assert_eq!(conns.len(), 1);
    assert!(conns[0].quit, "{:?}", conns[0].commands);
    A::pool_close(&pool, Duration::from_secs(5));
}

/// Connects to a closed port fail, and the pool leaves the destination alone in between: over 10 s, asking
/// every 10 ms, the attempts are spaced 0.5 s, 1 s, 2 s, then 4 s (each less up to half of it), not a
/// thousand times.
pub fn pool_backs_off_after_failed_connects<A: Adapter>() {
    let _serial = shared();
    let port = free_port();
    let mut o = super::options_for(port);
    o.connect_timeout = Duration::from_secs(1);
    let mut c = config(1);
    c.backoff_first = Duration::from_millis(500);
    c.backoff_max = Duration::from_secs(4);
    let pool = A::pool(o, c);
    let started = Instant::now();
    let (mut attempts, mut backoffs) = (Vec::new(), 0);
    while started.elapsed() < Duration::from_secs(10) {
        let asked = started.elapsed();
        match A::pool_send(&pool, vec![messages(1, Duration::ZERO)]).remove(0).remove(0) {
            Err(Error::Connect(_)) => attempts.push(asked),
            Err(Error::Backoff(left)) => {
                assert!(left <= Duration::from_secs(4), "{left:?}");
                backoffs += 1;
            }
            other => panic!("{other:?}"),
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    A::pool_close(&pool, Duration::from_secs(1));
    let gaps: Vec<f64> = attempts.windows(2).map(|w| (w[1] - w[0]).as_secs_f64()).collect();
    for (gap, full) in gaps.iter().zip([0.5, 1.0, 2.0, 4.0, 4.0, 4.0]) {
        assert!(*gap >= full / 2.0 - 0.005 && *gap <= full + 0.25, "gaps {gaps:?}");
    }
    assert!((4..=9).contains(&attempts.len()), "{} attempts: {gaps:?}", attempts.len());
    assert!(backoffs > 300, "{backoffs} calls failed fast");
}

/// A 421 greeting puts the destination into backoff too: the next call fails fast, without connecting.
pub fn pool_backs_off_after_a_421_greeting<A: Adapter>() {
    let _serial = shared();
    let server = MultiServer::every(&["PIPELINING"], Fault::Greet421);
    let pool = A::pool(options_for(&server), config(1));
    let first = A::pool_send(&pool, vec![messages(1, Duration::ZERO)]).remove(0).remove(0);
    match first {
        Err(Error::Session(smtp_proto::Error::ServiceUnavailable(r))) => assert_eq!(r.code(), 421),
        other => panic!("{other:?}"),
    }
    let second = A::pool_send(&pool, vec![messages(1, Duration::ZERO)]).remove(0).remove(0);
    assert!(matches!(second, Err(Error::Backoff(_))), "{second:?}");
    A::pool_close(&pool, Duration::from_secs(1));
    assert_eq!(server.connections().len(), 1);
}

/// 60 messages from three callers at 40 a second: at least 1.45 s from the first MAIL to the last, and no
/// second at the server holds more than 40.
pub fn pool_rate_holds_in_every_second<A: Adapter>() {
    let _serial = shared();
    let server = MultiServer::every(&["PIPELINING"], Fault::None);
    let mut c = config(3);
    c.rate = Some(40.0);
    let pool = A::pool(options_for(&server), c);
    all_sent(&A::pool_send(&pool, (0..3).map(|_| messages(20, Duration::ZERO)).collect()));
    A::pool_close(&pool, Duration::from_secs(5));
    let mut mails: Vec<Instant> = server.connections().iter().flat_map(|c| c.mail_times.clone()).collect();
    mails.sort();
    assert_eq!(mails.len(), 60);
    assert!(mails[59] - mails[0] >= Duration::from_millis(1450), "{:?}", mails[59] - mails[0]);
    for (i, &start) in mails.iter().enumerate() {
        let held = mails[i..].iter().take_while(|&&t| t < start + Duration::from_secs(1)).count();
        assert!(held <= 40, "{held} MAIL commands in the second from message {i}");
    }
}

/// A report through the pool reads as the report of the same message on a connection of one's own.
pub fn pool_report_is_the_single_connection_report<A: Adapter>() {
    let _serial = shared();
    let server = MultiServer::every(&["PIPELINING"], Fault::None);
    let mut client = A::connect(&options_for(&server)).expect("connect");
    let single = client.send(envelope(&["bob@example.org"]), Body::bytes("hi\r\n")).expect("report");
    client.quit().expect("quit");
    let pool = A::pool(options_for(&server), config(1));
    let message = PoolMessage {
        pause: Duration::ZERO,
        envelope: envelope(&["bob@example.org"]),
        body: Body::bytes("hi\r\n"),
    };
    let pooled = A::pool_send(&pool, vec![vec![message]]).remove(0).remove(0).expect("report");
    A::pool_close(&pool, Duration::from_secs(5));
    assert_eq!(pooled.to_string(), single.to_string());
    assert_eq!(
        (pooled.outcome, &pooled.recipients, &pooled.final_reply),
        (single.outcome, &single.recipients, &single.final_reply)
    );
}

/// A private Postfix with `smtpd_timeout = 2s` drops the pool's idle connection (421, then close); the next
/// message goes on a new connection with no error to the caller, and both are in the Maildir.
pub fn postfix_idle_timeout_then_the_pool_delivers_on_a_new_connection<A: Adapter>() {
    let _serial = shared();
    let postfix = Postfix::start_with(&[("smtpd_timeout", "2s")]).expect("postfix");
    let mut o = super::options_for(postfix.port());
    o.helo_name = Some("client.example.org".parse().expect("valid"));
    let mut c = config(1);
    c.check_after = Duration::from_secs(3600);
    let pool = A::pool(o, c);
    let mut first = messages(1, Duration::ZERO);
    first.extend(messages(1, Duration::from_secs(3)));
    let results = A::pool_send(&pool, vec![first]);
    all_sent(&results);
    A::pool_close(&pool, Duration::from_secs(5));
    let delivered = postfix.wait_for_mailbox("bob", 2, Duration::from_secs(10));
    assert_eq!(delivered.len(), 2);
}
