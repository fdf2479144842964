//! Issue 10 against real servers (Postfix's smtp-sink, aiosmtpd): `#[ignore]`d, run by
//! `cargo test -- --include-ignored` once `scripts/install-test-servers` has installed them.

mod common;

use std::time::Duration;

use common::{both, json, run_stdin};
use smtp_testkit::{AioOptions, Aiosmtpd, SinkOptions, SmtpSink};

fn send(port: u16, extra: &[&str], message: &[u8]) -> std::process::Output {
    let server = format!("127.0.0.1:{port}");
    let mut args = vec!["--server", &server, "--tls", "none", "--json"];
    args.extend_from_slice(extra);
    args.push("-");
    run_stdin(&args, message)
}

#[test]
#[ignore = "needs real servers: scripts/install-test-servers, then cargo test -- --include-ignored"]
fn aiosmtpd_takes_the_address_not_the_comment_and_utf8_headers_with_smtputf8() {
    let aio = Aiosmtpd::start(AioOptions::default()).unwrap();
    let out = send(
        aio.port(),
        &["--to", "bob@example.org"],
        b"From: <alice@example.org> (on behalf of <ceo@bank.example>)\nSubject: caf\xc3\xa9\n\nhi\n",
    );
    assert_eq!(out.status.code(), Some(0), "{}", both(&out));
    let got = aio.wait_for(1, Duration::from_secs(5));
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].from, "alice@example.org");
    let raw = String::from_utf8_lossy(&got[0].raw);
    assert!(raw.contains("\"SMTPUTF8\""), "{raw}");
    // SIZE counted the CRLF line ends: never below what arrived.
    let mail = raw.lines().next().unwrap();
    let declared: usize = mail
        .split("SIZE=")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no SIZE= in {mail}"));
    assert!(declared >= got[0].body.len(), "{declared} < {}", got[0].body.len());
}

#[test]
#[ignore = "needs real servers: scripts/install-test-servers, then cargo test -- --include-ignored"]
fn smtp_sink_without_smtputf8_or_binarymime_gets_nothing_it_cannot_carry() {
    let sink = SmtpSink::start(SinkOptions::default()).unwrap();
    let out = send(
        sink.port(),
        &["--to", "bob@example.org"],
        b"From: alice@example.org\nSubject: caf\xc3\xa9\n\nhi\n",
    );
    assert_eq!(out.status.code(), Some(2), "{}", both(&out));
    let message = json(&out)["error"]["message"].as_str().unwrap().to_owned();
    assert!(message.contains("SMTPUTF8"), "{message}");
    let out = send(sink.port(), &["--to", "bob@example.org"], b"From: alice@example.org\n\na\0b\n");
    assert_eq!(out.status.code(), Some(65), "{}", both(&out));
    // The server works: a plain message gets through, and it is the only one.
    let out =
        send(sink.port(), &["--to", "bob@example.org"], b"From: alice@example.org\nSubject: plain\n\nhi\n");
    assert_eq!(out.status.code(), Some(0), "{}", both(&out));
    std::thread::sleep(Duration::from_millis(200));
    let got = sink.wait_for(1, Duration::from_secs(5));
    assert_eq!(got.len(), 1, "only the plain message");
}

#[test]
#[ignore = "needs real servers: scripts/install-test-servers, then cargo test -- --include-ignored"]
fn smtp_sink_dropping_every_connection_after_the_dot_never_gets_a_message_twice() {
    // Each connection reads one final dot and hangs up: that message is unknown, the next one (pipelined
    // behind the dot) goes over a new connection. Every message is tried once and counted once.
    let sink =
        SmtpSink::start(SinkOptions { disconnect_after: Some("."), ..SinkOptions::default() }).unwrap();
    let out = send(
        sink.port(),
        &["--to", "bob@example.org", "--count", "4"],
        b"From: alice@example.org\nSubject: x\n\nhi\n",
    );
    assert_eq!(out.status.code(), Some(3), "{}", both(&out));
    let v = json(&out);
    assert_eq!(
        (&v["requested"], &v["sent"], &v["unknown"], &v["not_attempted"]),
        (&4.into(), &0.into(), &4.into(), &0.into()),
        "{v}"
    );
}

#[test]
#[ignore = "needs real servers: scripts/install-test-servers, then cargo test -- --include-ignored"]
fn smtp_sink_421_to_every_mail_gives_up_after_three_tries() {
    let sink =
        SmtpSink::start(SinkOptions { close_421_after: Some("MAIL"), ..SinkOptions::default() }).unwrap();
    let started = std::time::Instant::now();
    let out = send(
        sink.port(),
        &["--to", "bob@example.org", "--count", "5", "--connections", "2"],
        b"From: alice@example.org\nSubject: x\n\nhi\n",
    );
    assert_eq!(out.status.code(), Some(2), "{}", both(&out));
    let v = json(&out);
    assert_eq!(v["requested"], 5, "{v}");
    assert_eq!(v["sent"], 0, "{v}");
    // Each copy refused (421) on two connections (the pool's one retry); three in a row end the run, the
    // rest never left (a fourth may have been on its way on the other connection).
    let (rejected, left) = (v["rejected"].as_u64().unwrap(), v["not_attempted"].as_u64().unwrap());
    assert!((3..=4).contains(&rejected) && rejected + left == 5, "{v}");
    assert!(v["error"]["message"].as_str().unwrap().contains("421"), "{v}");
    assert!(started.elapsed() < Duration::from_secs(10));
}
