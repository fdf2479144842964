//! A private Postfix, driven by hand-written SMTP. Needs root.

mod common;

use std::time::{Duration, Instant};

use common::{Raw, STUFFED, expect, send_mail};
use smtp_testkit::Postfix;

const WAIT: Duration = Duration::from_secs(10);

fn start() -> Postfix {
    Postfix::start().unwrap_or_else(|e| panic!("{e}"))
}

#[test]
#[ignore = "needs smtp-sink/postfix/aiosmtpd: run scripts/install-test-servers, then cargo test -- --include-ignored"]
fn delivers_to_maildirs_and_refuses_by_rule() {
    let started = Instant::now();
    let postfix = start();
    eprintln!("postfix start: {:?}", started.elapsed());
    let (mut raw, greeting) = Raw::connect(postfix.port());
    expect(&greeting, "220");
    let ehlo = raw.cmd("EHLO client.test");
    for ext in ["PIPELINING", "SIZE", "8BITMIME", "DSN", "SMTPUTF8", "CHUNKING", "ENHANCEDSTATUSCODES"] {
        assert!(ehlo.contains(ext), "{ext} missing: {ehlo:?}");
    }
    expect(&raw.cmd("MAIL FROM:<alice@example.org>"), "250");
    expect(&raw.cmd("RCPT TO:<unknown7@example.org>"), "550 5.1.1");
    expect(&raw.cmd("RCPT TO:<tempfail@example.org>"), "450 4.2.0");
    expect(&raw.cmd("RCPT TO:<someone@elsewhere.test>"), "554 5.7.1");
    expect(&raw.cmd("RCPT TO:<bob@example.org>"), "250");
    expect(&raw.cmd("RCPT TO:<zed@example.org>"), "250");
    expect(&raw.cmd("DATA"), "354");
    raw.send(STUFFED);
    raw.send(b".\r\n");
    expect(&raw.reply(), "250");
    let sent = Instant::now();

    let bob = postfix.wait_for_mailbox("bob", 1, WAIT);
    eprintln!("postfix delivery to bob: {:?}", sent.elapsed());
    assert_eq!(bob.len(), 1);
    assert_eq!(bob[0].from, "alice@example.org");
    assert_eq!(bob[0].recipients, ["bob@example.org"]);
    assert_eq!(
        String::from_utf8_lossy(&bob[0].body),
        "Subject: testkit\n\nline one\n.leading dot\n.\nété 8-bit\nbare cr and bare\nlf\nlast\n"
    );
    assert!(bob[0].raw.starts_with(b"Return-Path: <alice@example.org>\n"));
    let other = postfix.wait_for_mailbox(Postfix::CATCH_ALL, 1, WAIT);
    assert_eq!(other[0].recipients, ["zed@example.org"]);
    assert_eq!(other[0].body, bob[0].body);
    assert!(postfix.mailbox("carol").is_empty());

    // SMTPUTF8 to jörg, and BDAT.
    let chunk = "Subject: ü\r\n\r\nbdat\r\n";
    let utf8 = format!(
        "MAIL FROM:<ålice@example.org> SMTPUTF8\r\nRCPT TO:<jörg@example.org>\r\n\
        BDAT {} LAST\r\n{chunk}",
        chunk.len()
    );
    raw.send(utf8.as_bytes());
    for code in ["250", "250", "250"] {
        expect(&raw.reply(), code);
    }
    let jorg = postfix.wait_for_mailbox("jörg", 1, WAIT);
    assert_eq!(jorg[0].from, "ålice@example.org");
    assert_eq!(jorg[0].body, "Subject: ü\n\nbdat\n".as_bytes());
    expect(&raw.cmd("QUIT"), "221");

    let port = postfix.port();
    let stopped = Instant::now();
    drop(postfix);
    eprintln!("postfix stop: {:?}", stopped.elapsed());
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err(), "still listening");
}

#[test]
#[ignore = "needs smtp-sink/postfix/aiosmtpd: run scripts/install-test-servers, then cargo test -- --include-ignored"]
fn bounces_come_back_to_a_local_sender() {
    let postfix = start();
    let (mut raw, _) = Raw::connect(postfix.port());
    expect(&raw.cmd("EHLO client.test"), "250");
    expect(&raw.cmd("MAIL FROM:<alice@example.org> RET=HDRS"), "250");
    expect(&raw.cmd("RCPT TO:<bounce1@example.org> NOTIFY=FAILURE"), "250");
    expect(&raw.cmd("RCPT TO:<carol@example.org> NOTIFY=SUCCESS"), "250");
    expect(&raw.cmd("DATA"), "354");
    raw.send(b"Subject: dsn\r\n\r\nbody\r\n.\r\n");
    expect(&raw.reply(), "250");
    assert_eq!(postfix.wait_for_mailbox("carol", 1, WAIT).len(), 1);
    let reports = postfix.wait_for_mailbox("alice", 2, WAIT);
    assert_eq!(reports.len(), 2, "a failure and a success report");
    let text: String = reports.iter().map(|r| String::from_utf8_lossy(&r.body)).collect();
    assert!(text.contains("Action: failed") && text.contains("Action: delivered"), "{text}");
    assert!(reports.iter().all(|r| r.from.is_empty()), "reports have a null sender");
}

#[test]
#[ignore = "needs smtp-sink/postfix/aiosmtpd: run scripts/install-test-servers, then cargo test -- --include-ignored"]
fn two_instances_run_side_by_side() {
    let (a, b) = (start(), start());
    assert_ne!(a.port(), b.port());
    for (server, user) in [(&a, "alice"), (&b, "bob")] {
        let (mut raw, _) = Raw::connect(server.port());
        let to = format!("{user}@example.org");
        expect(&send_mail(&mut raw, "EHLO", "x@client.test", &[&to], b"Hi\r\n"), "250");
    }
    // "Hi" is not a header: Postfix ends the (empty) header section with a blank line first.
    assert_eq!(a.wait_for_mailbox("alice", 1, WAIT)[0].body, b"\nHi\n");
    assert_eq!(b.wait_for_mailbox("bob", 1, WAIT)[0].body, b"\nHi\n");
    drop(a);
    // b still works after a is stopped.
    let (mut raw, _) = Raw::connect(b.port());
    expect(&send_mail(&mut raw, "EHLO", "x@client.test", &["bob@example.org"], b"Again\r\n"), "250");
    assert_eq!(b.wait_for_mailbox("bob", 2, WAIT).len(), 2);
}
