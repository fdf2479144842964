//! aiosmtpd, driven by hand-written SMTP (and by Python's smtplib for real TLS handshakes).

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::{Raw, STUFFED, UNSTUFFED, expect, send_mail};
use smtp_testkit::{AioOptions, Aiosmtpd};

const WAIT: Duration = Duration::from_secs(5);

fn start(opts: AioOptions) -> Aiosmtpd {
    Aiosmtpd::start(opts).unwrap_or_else(|e| panic!("{e}"))
}

fn with_auth(starttls: bool, implicit_tls: bool, auth_require_tls: bool) -> AioOptions {
    AioOptions { starttls, implicit_tls, auth: Some(("user".into(), "secret".into())), auth_require_tls }
}

#[test]
#[ignore = "needs smtp-sink/postfix/aiosmtpd: run scripts/install-test-servers, then cargo test -- --include-ignored"]
fn stores_the_message_byte_for_byte() {
    let started = Instant::now();
    let server = start(AioOptions::default());
    eprintln!("aiosmtpd start: {:?}", started.elapsed());
    let (mut raw, greeting) = Raw::connect(server.port());
    expect(&greeting, "220");
    let ehlo = raw.cmd("EHLO client.test");
    assert!(!ehlo.contains("STARTTLS") && !ehlo.contains("AUTH"), "{ehlo:?}");
    assert!(ehlo.contains("SMTPUTF8") && ehlo.contains("8BITMIME"), "{ehlo:?}");
    expect(&raw.cmd("MAIL FROM:<alice@example.org> BODY=8BITMIME"), "250");
    expect(&raw.cmd("RCPT TO:<bob@example.org>"), "250");
    expect(&raw.cmd("RCPT TO:<carol@example.org>"), "250");
    expect(&raw.cmd("DATA"), "354");
    raw.send(STUFFED);
    raw.send(b".\r\n");
    expect(&raw.reply(), "250");
    expect(&raw.cmd("QUIT"), "221");

    let got = server.messages();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].from, "alice@example.org");
    assert_eq!(got[0].recipients, ["bob@example.org", "carol@example.org"]);
    assert_eq!(got[0].body, UNSTUFFED);
    let envelope = String::from_utf8_lossy(&got[0].raw);
    assert!(
        envelope.starts_with('{') && envelope.contains(r#""mail_options": ["BODY=8BITMIME"]"#),
        "{envelope}"
    );

    let port = server.port();
    let stopped = Instant::now();
    drop(server);
    eprintln!("aiosmtpd stop: {:?}", stopped.elapsed());
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err(), "still listening");
}

#[test]
#[ignore = "needs smtp-sink/postfix/aiosmtpd: run scripts/install-test-servers, then cargo test -- --include-ignored"]
fn refuses_recipients_by_local_part() {
    let server = start(AioOptions::default());
    let (mut raw, _) = Raw::connect(server.port());
    expect(&raw.cmd("EHLO client.test"), "250");
    expect(&raw.cmd("MAIL FROM:<alice@example.org>"), "250");
    assert_eq!(raw.cmd("RCPT TO:<reject-me@example.org>"), "550 5.1.1 no such user\r\n");
    assert_eq!(raw.cmd("RCPT TO:<TempFail2@example.org>"), "451 4.3.0 try later\r\n");
    assert_eq!(raw.cmd("RCPT TO:<full@example.org>"), "552 5.2.2 mailbox full\r\n");
    assert_eq!(raw.cmd("RCPT TO:<bob@example.org>"), "250 OK\r\n");
    expect(&raw.cmd("DATA"), "354");
    raw.send(b"Hi\r\n.\r\n");
    expect(&raw.reply(), "250");
    // A second transaction on the same connection, pipelined.
    raw.send(b"MAIL FROM:<>\r\nRCPT TO:<x@example.org>\r\nDATA\r\n");
    for code in ["250", "250", "354"] {
        expect(&raw.reply(), code);
    }
    raw.send(b"Second\r\n.\r\n");
    expect(&raw.reply(), "250");

    let got = server.wait_for(2, WAIT);
    assert_eq!(got.len(), 2);
    assert_eq!(got[0].recipients, ["bob@example.org"]);
    assert_eq!(got[0].body, b"Hi\r\n");
    assert_eq!(got[1].from, "");
    assert_eq!(got[1].body, b"Second\r\n");
}

#[test]
#[ignore = "needs smtp-sink/postfix/aiosmtpd: run scripts/install-test-servers, then cargo test -- --include-ignored"]
fn starttls_and_auth_are_advertised_when_enabled() {
    // AUTH only after STARTTLS (the default): plaintext EHLO shows STARTTLS, not AUTH.
    let server = start(with_auth(true, false, true));
    let (mut raw, _) = Raw::connect(server.port());
    let ehlo = raw.cmd("EHLO client.test");
    assert!(ehlo.contains("250-STARTTLS"), "{ehlo:?}");
    assert!(!ehlo.contains("AUTH"), "{ehlo:?}");
    expect(&raw.cmd("MAIL FROM:<a@example.org>"), "530");
    expect(&raw.cmd("AUTH PLAIN AHVzZXIAc2VjcmV0"), "538");
    expect(&raw.cmd("STARTTLS"), "220");

    // AUTH allowed in plaintext.
    let server = start(with_auth(false, false, false));
    let (mut raw, _) = Raw::connect(server.port());
    let ehlo = raw.cmd("EHLO client.test");
    assert!(ehlo.contains("AUTH LOGIN PLAIN"), "{ehlo:?}");
    assert!(!ehlo.contains("STARTTLS"), "{ehlo:?}");
    expect(&raw.cmd("MAIL FROM:<a@example.org>"), "530");
    expect(&raw.cmd("AUTH PLAIN AHVzZXIAd3Jvbmc="), "535");
    expect(&raw.cmd("AUTH LOGIN"), "334");
    expect(&raw.cmd("dXNlcg=="), "334");
    expect(&raw.cmd("c2VjcmV0"), "235");
    assert_eq!(
        send_mail(&mut raw, "EHLO", "a@example.org", &["b@example.org"], b"x\r\n").get(..3),
        Some("250")
    );
    let got = server.wait_for(1, WAIT);
    assert!(String::from_utf8_lossy(&got[0].raw).contains(r#""authenticated": true"#));
}

#[test]
#[ignore = "needs smtp-sink/postfix/aiosmtpd: run scripts/install-test-servers, then cargo test -- --include-ignored"]
fn implicit_tls_speaks_tls_first() {
    let plain = start(AioOptions::default());
    assert_eq!(Raw::first_bytes(plain.port(), b"").first(), Some(&b'2'));

    let server = start(AioOptions { implicit_tls: true, ..AioOptions::default() });
    // No greeting in plaintext: a TLS server waits for a ClientHello, and answers a plaintext
    // command with an alert or by closing.
    let first = Raw::first_bytes(server.port(), b"EHLO client.test\r\n");
    assert_ne!(first.first(), Some(&b'2'), "{first:?}");
}

#[test]
fn starttls_and_implicit_tls_exclude_each_other() {
    let both = Aiosmtpd::start(AioOptions { starttls: true, implicit_tls: true, ..AioOptions::default() });
    assert!(both.is_err());
}

/// A real TLS client (Python's ssl, OpenSSL) trusting only the test CA, verifying the names
/// `localhost` and `127.0.0.1`, and sending one authenticated message.
fn python_tls_send(server: &Aiosmtpd, implicit: bool, host: &str) {
    let script = r#"
import smtplib, ssl, sys
port, ca, implicit, host = int(sys.argv[1]), sys.argv[2], sys.argv[3] == "1", sys.argv[4]
ctx = ssl.create_default_context(cafile=ca)
if implicit:
    s = smtplib.SMTP_SSL(host, port, context=ctx, timeout=10)
else:
    s = smtplib.SMTP(host, port, timeout=10)
    s.starttls(context=ctx)
s.login("user", "secret")
s.sendmail("alice@example.org", ["bob@example.org"], b"Subject: tls\r\n\r\nover TLS\r\n")
s.quit()
"#;
    let out = Command::new("python3")
        .args(["-c", script, &server.port().to_string()])
        .arg(server.ca_pem_path())
        .args([if implicit { "1" } else { "0" }, host])
        .output()
        .expect("python3");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
#[ignore = "needs smtp-sink/postfix/aiosmtpd: run scripts/install-test-servers, then cargo test -- --include-ignored"]
fn tls_certificate_verifies_against_the_test_ca() {
    let server = start(with_auth(true, false, true));
    python_tls_send(&server, false, "localhost");
    python_tls_send(&server, false, "127.0.0.1");
    let got = server.wait_for(2, WAIT);
    assert_eq!(got.len(), 2);
    assert_eq!(got[0].body, b"Subject: tls\r\n\r\nover TLS\r\n");
    assert!(String::from_utf8_lossy(&got[0].raw).contains(r#""tls": true"#));

    let server = start(with_auth(false, true, true));
    python_tls_send(&server, true, "localhost");
    assert_eq!(server.wait_for(1, WAIT).len(), 1);
}
