//! smtp-sink, driven by hand-written SMTP.

mod common;

use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::{Raw, STUFFED, UNSTUFFED, expect, send_mail};
use smtp_testkit::{SinkOptions, SmtpSink};

const WAIT: Duration = Duration::from_secs(5);

fn start(opts: SinkOptions) -> SmtpSink {
    SmtpSink::start(opts).unwrap_or_else(|e| panic!("{e}"))
}

/// What smtp-sink stores: every CR deleted.
fn without_cr(data: &[u8]) -> Vec<u8> {
    data.iter().copied().filter(|&b| b != b'\r').collect()
}

#[test]
#[ignore = "needs smtp-sink/postfix/aiosmtpd: run scripts/install-test-servers, then cargo test -- --include-ignored"]
fn stores_the_message_without_crs() {
    let started = Instant::now();
    let sink = start(SinkOptions::default());
    eprintln!("smtp-sink start: {:?}", started.elapsed());
    let (mut raw, greeting) = Raw::connect(sink.port());
    expect(&greeting, "220");
    let to = ["bob@example.org", "carol@example.org"];
    expect(&send_mail(&mut raw, "EHLO", "alice@example.org", &to, STUFFED), "250");
    expect(&raw.cmd("QUIT"), "221");

    // Stored before the 250, so no waiting is needed.
    let got = sink.messages();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].from, "alice@example.org");
    assert_eq!(got[0].recipients, to);
    assert_eq!(got[0].body, without_cr(UNSTUFFED));
    assert_eq!(
        String::from_utf8_lossy(&got[0].body),
        "Subject: testkit\n\nline one\n.leading dot\n.\nété 8-bit\nbarecr and bare\nlf\nlast\n"
    );
    assert!(got[0].raw.starts_with(b"X-Testkit-Dump: "));
    assert!(got[0].raw.ends_with(b"last\n\n"));

    let port = sink.port();
    let stopped = Instant::now();
    drop(sink);
    eprintln!("smtp-sink stop: {:?}", stopped.elapsed());
    assert!(TcpStream::connect(("127.0.0.1", port)).is_err(), "still listening");
}

#[test]
#[ignore = "needs smtp-sink/postfix/aiosmtpd: run scripts/install-test-servers, then cargo test -- --include-ignored"]
fn keeps_parameters_and_order_and_leaves_out_unfinished_transactions() {
    let sink = start(SinkOptions::default());
    let (mut raw, _) = Raw::connect(sink.port());
    expect(&raw.cmd("EHLO client.test"), "250");
    for n in 1..=3 {
        expect(&raw.cmd("MAIL FROM:<a@example.org> BODY=8BITMIME"), "250");
        expect(&raw.cmd(&format!("RCPT TO:<r{n}@example.org> NOTIFY=NEVER")), "250");
        expect(&raw.cmd("DATA"), "354");
        raw.send(format!("Subject: {n}\r\n\r\n.\r\n").as_bytes());
        expect(&raw.reply(), "250");
    }
    // An aborted transaction and an open one are not messages.
    expect(&raw.cmd("MAIL FROM:<b@example.org>"), "250");
    expect(&raw.cmd("RSET"), "250");
    expect(&raw.cmd("MAIL FROM:<c@example.org>"), "250");
    expect(&raw.cmd("RCPT TO:<d@example.org>"), "250");
    expect(&raw.cmd("DATA"), "354");
    raw.send(b"Subject: not finished\r\n");

    let got = sink.wait_for(4, Duration::from_millis(300));
    let subjects: Vec<_> = got.iter().map(|m| m.body.clone()).collect();
    assert_eq!(subjects, [b"Subject: 1\n\n", b"Subject: 2\n\n", b"Subject: 3\n\n"]);
    let raw_text = String::from_utf8_lossy(&got[0].raw);
    assert!(raw_text.contains("X-Mail-Args: <a@example.org> BODY=8BITMIME\n"), "{raw_text}");
    assert!(raw_text.contains("X-Rcpt-Args: <r1@example.org> NOTIFY=NEVER\n"), "{raw_text}");

    raw.send(b".\r\n");
    expect(&raw.reply(), "250");
    assert_eq!(sink.wait_for(4, WAIT).len(), 4);
}

#[test]
#[ignore = "needs smtp-sink/postfix/aiosmtpd: run scripts/install-test-servers, then cargo test -- --include-ignored"]
fn options_change_the_dialog() {
    let plain = start(SinkOptions { no_esmtp: true, ..SinkOptions::default() });
    let (mut raw, greeting) = Raw::connect(plain.port());
    assert!(!greeting.contains("ESMTP"), "{greeting:?}");
    expect(&raw.cmd("EHLO client.test"), "500");
    expect(&raw.cmd("HELO client.test"), "250");

    let picky = start(SinkOptions {
        no_pipelining: true,
        no_8bitmime: true,
        hard_reject: Some("RCPT"),
        soft_reject: Some("DATA"),
        ..SinkOptions::default()
    });
    let (mut raw, _) = Raw::connect(picky.port());
    let ehlo = raw.cmd("EHLO client.test");
    assert!(!ehlo.contains("PIPELINING") && !ehlo.contains("8BITMIME"), "{ehlo:?}");
    expect(&raw.cmd("MAIL FROM:<a@example.org>"), "250");
    let rcpt = raw.cmd("RCPT TO:<b@example.org>");
    eprintln!("hard_reject RCPT: {rcpt:?}");
    expect(&rcpt, "5");
    let data = raw.cmd("DATA");
    eprintln!("soft_reject DATA: {data:?}");
    expect(&data, "4");

    let dropper = start(SinkOptions { disconnect_after: Some("MAIL"), ..SinkOptions::default() });
    let (mut raw, _) = Raw::connect(dropper.port());
    expect(&raw.cmd("EHLO client.test"), "250");
    assert_eq!(raw.cmd("MAIL FROM:<a@example.org>"), "", "expected end-of-file");

    let closer = start(SinkOptions { close_421_after: Some("RCPT"), ..SinkOptions::default() });
    let (mut raw, _) = Raw::connect(closer.port());
    expect(&raw.cmd("EHLO client.test"), "250");
    expect(&raw.cmd("MAIL FROM:<a@example.org>"), "250");
    expect(&raw.cmd("RCPT TO:<b@example.org>"), "421");
    assert_eq!(raw.reply(), "", "expected end-of-file");
}

#[test]
#[ignore = "needs smtp-sink/postfix/aiosmtpd: run scripts/install-test-servers, then cargo test -- --include-ignored"]
fn lmtp_replies_once_per_recipient() {
    let sink = start(SinkOptions { lmtp: true, ..SinkOptions::default() });
    let (mut raw, _) = Raw::connect(sink.port());
    let to = ["x@example.org", "y@example.org"];
    expect(&send_mail(&mut raw, "LHLO", "a@example.org", &to, b"Hi\r\n"), "250");
    expect(&raw.reply(), "250");
    let got = sink.wait_for(1, WAIT);
    assert_eq!(got[0].recipients, to);
    assert_eq!(got[0].body, b"Hi\n");
}

#[test]
#[ignore = "needs smtp-sink/postfix/aiosmtpd: run scripts/install-test-servers, then cargo test -- --include-ignored"]
fn delays_the_data_reply() {
    let sink = start(SinkOptions { delay_data_reply_secs: Some(1), ..SinkOptions::default() });
    let (mut raw, _) = Raw::connect(sink.port());
    expect(&raw.cmd("EHLO client.test"), "250");
    expect(&raw.cmd("MAIL FROM:<a@example.org>"), "250");
    expect(&raw.cmd("RCPT TO:<b@example.org>"), "250");
    let asked = Instant::now();
    expect(&raw.cmd("DATA"), "354");
    assert!(asked.elapsed() >= Duration::from_millis(900), "{:?}", asked.elapsed());
}

#[test]
#[ignore = "needs smtp-sink/postfix/aiosmtpd: run scripts/install-test-servers, then cargo test -- --include-ignored"]
fn instances_are_independent() {
    let sinks: Vec<SmtpSink> = (0..4).map(|_| start(SinkOptions::default())).collect();
    for (i, sink) in sinks.iter().enumerate() {
        let (mut raw, _) = Raw::connect(sink.port());
        let to = format!("r{i}@example.org");
        expect(&send_mail(&mut raw, "EHLO", "a@example.org", &[&to], b"x\r\n"), "250");
    }
    for (i, sink) in sinks.iter().enumerate() {
        let got = sink.wait_for(1, WAIT);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].recipients, [format!("r{i}@example.org")]);
    }
}
