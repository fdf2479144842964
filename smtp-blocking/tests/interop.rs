//! The driver against real servers on 127.0.0.1, started by `smtp-testkit`: Postfix's smtp-sink (with and
//! without PIPELINING, LMTP, scripted faults), aiosmtpd (STARTTLS, AUTH, implicit TLS, byte-exact bodies)
//! and a private Postfix (BDAT, DSN, SMTPUTF8, delivered to Maildirs).
//!
//! Every test is `#[ignore]`d: install the servers with `scripts/install-test-servers`, then run
//! `cargo test -p smtp-blocking -- --include-ignored`.

mod common;

use std::time::Duration;

use common::capture::capture;
use common::{options, tricky_body};
use smtp_blocking::{Error, SmtpClient};
use smtp_proto::body::normalize_line_endings;
use smtp_proto::command::{BodyType, EnvId, Notify, OrigRecipient, Ret};
use smtp_proto::sasl::Credentials;
use smtp_proto::{Envelope, Failure, Outcome, Recipient, RecipientStatus, TlsMode};
use smtp_testkit::{AioOptions, Aiosmtpd, Postfix, SinkOptions, SmtpSink};
use smtp_transport::Options;

const WAIT: Duration = Duration::from_secs(10);

fn envelope(to: &[&str]) -> Envelope {
    Envelope::parse("alice@example.org", to).expect("valid addresses")
}

fn sink(opts: SinkOptions) -> SmtpSink {
    SmtpSink::start(opts).unwrap_or_else(|e| panic!("{e}"))
}

/// The body as the client puts it on the wire, before dot-stuffing: every line ending CRLF, and a final
/// CRLF added to a body that does not end with a line ending.
fn client_form(body: &[u8]) -> Vec<u8> {
    let mut v = normalize_line_endings(body);
    if !v.is_empty() && !v.ends_with(b"\r\n") {
        v.extend_from_slice(b"\r\n");
    }
    v
}

/// What smtp-sink and Postfix store for a body our client sent: CRLF becomes LF (the client sends no
/// bare CR or LF).
fn lf_form(body: &[u8]) -> Vec<u8> {
    let mut v = client_form(body);
    v.retain(|&b| b != b'\r');
    v
}

fn show(b: &[u8]) -> String {
    let s = String::from_utf8_lossy(b);
    if s.len() > 300 { format!("{}… ({} bytes)", &s[..300], b.len()) } else { s.into_owned() }
}

fn sink_sends_bodies(opts: SinkOptions) {
    let sink = sink(opts);
    let mut client = SmtpClient::connect(&options(sink.port())).expect("connect");
    let bodies: Vec<Vec<u8>> = vec![
        Vec::new(),
        (0..1024).map(|i| b"abcdefghijklmnopqrstuvwxyz\r\n"[i % 28]).collect(),
        tricky_body(64 * 1024),
    ];
    for body in &bodies {
        let env = envelope(&["bob@example.org"]).body_type(BodyType::EightBitMime);
        let report = client.send(env, std::io::Cursor::new(&body[..])).expect("send");
        assert_eq!(report.outcome, Outcome::Sent, "{report:?}");
    }
    client.quit().expect("quit");
    let got = sink.wait_for(bodies.len(), WAIT);
    assert_eq!(got.len(), bodies.len());
    for (m, body) in got.iter().zip(&bodies) {
        assert_eq!(m.from, "alice@example.org");
        assert_eq!(m.recipients, ["bob@example.org"]);
        let want = lf_form(body);
        assert!(m.body == want, "stored {} want {}", show(&m.body), show(&want));
    }
}

#[test]
#[ignore = "needs real servers: scripts/install-test-servers, then cargo test -- --include-ignored"]
fn sink_pipelined_bodies_of_0_1k_and_dots() {
    sink_sends_bodies(SinkOptions::default());
}

#[test]
#[ignore = "needs real servers: scripts/install-test-servers, then cargo test -- --include-ignored"]
fn sink_without_pipelining_bodies_of_0_1k_and_dots() {
    sink_sends_bodies(SinkOptions { no_pipelining: true, ..SinkOptions::default() });
}

#[test]
#[ignore = "needs real servers: scripts/install-test-servers, then cargo test -- --include-ignored"]
fn sink_lmtp_two_recipients() {
    let sink = sink(SinkOptions { lmtp: true, ..SinkOptions::default() });
    let mut o = options(sink.port());
    o.session.protocol = smtp_proto::Protocol::Lmtp;
    let mut client = SmtpClient::connect(&o).expect("connect");
    let body = b"Subject: lmtp\r\n\r\nhello\r\n.dot\r\n";
    let report = client
        .send(envelope(&["bob@example.org", "carol@example.org"]), std::io::Cursor::new(&body[..]))
        .expect("send");
    assert_eq!(report.outcome, Outcome::Sent);
    for r in &report.recipients {
        assert_eq!(r.status, RecipientStatus::Delivered);
        assert!(r.lmtp_reply.as_ref().is_some_and(|r| r.code() == 250));
    }
    client.quit().expect("quit");
    let got = sink.wait_for(1, WAIT);
    assert_eq!(got[0].recipients, ["bob@example.org", "carol@example.org"]);
    assert_eq!(got[0].body, lf_form(body));
}

/// A fault of smtp-sink, the command it hits, and what the report must say.
struct Fault {
    cmd: &'static str,
    outcome: Outcome,
    /// The session survives (the fault is a refusal, not a disconnect).
    alive: bool,
}

fn run_fault(opts: SinkOptions, fault: &Fault) {
    let sink = sink(opts);
    let mut client = SmtpClient::connect(&options(sink.port())).expect("connect");
    let report = client
        .send(envelope(&["bob@example.org"]), std::io::Cursor::new(&b"Subject: fault\r\n\r\nx\r\n"[..]))
        .expect("send");
    assert_eq!(report.outcome, fault.outcome, "{}: {report:?}", fault.cmd);
    assert_eq!(client.close_reason().is_none(), fault.alive, "{}: {:?}", fault.cmd, client.close_reason());
    if fault.alive {
        client.quit().expect("quit");
        assert!(sink.messages().is_empty());
    } else {
        assert!(matches!(
            client.send(envelope(&["bob@example.org"]), std::io::Cursor::new(&b"x\r\n"[..])),
            Err(Error::Closed(_))
        ));
    }
}

#[test]
#[ignore = "needs real servers: scripts/install-test-servers, then cargo test -- --include-ignored"]
fn sink_disconnect_without_reply() {
    for fault in [
        Fault { cmd: "MAIL", outcome: Outcome::Rejected, alive: false },
        Fault { cmd: "RCPT", outcome: Outcome::Rejected, alive: false },
        Fault { cmd: "DATA", outcome: Outcome::Rejected, alive: false },
        // After the final dot, silence then EOF: it may have been delivered.
        Fault { cmd: ".", outcome: Outcome::Unknown, alive: false },
    ] {
        let opts = SinkOptions { disconnect_after: Some(fault.cmd), ..SinkOptions::default() };
        run_fault(opts, &fault);
    }
}

#[test]
#[ignore = "needs real servers: scripts/install-test-servers, then cargo test -- --include-ignored"]
fn sink_421_and_disconnect() {
    for fault in [
        Fault { cmd: "MAIL", outcome: Outcome::Rejected, alive: false },
        Fault { cmd: "RCPT", outcome: Outcome::Rejected, alive: false },
        Fault { cmd: "DATA", outcome: Outcome::Rejected, alive: false },
        // A 421 is a reply: the end of data was refused.
        Fault { cmd: ".", outcome: Outcome::Rejected, alive: false },
    ] {
        let opts = SinkOptions { close_421_after: Some(fault.cmd), ..SinkOptions::default() };
        run_fault(opts, &fault);
    }
}

#[test]
#[ignore = "needs real servers: scripts/install-test-servers, then cargo test -- --include-ignored"]
fn sink_soft_reject() {
    for (fault, failure) in [
        (Fault { cmd: "MAIL", outcome: Outcome::Rejected, alive: true }, Failure::MailRejected),
        (Fault { cmd: "RCPT", outcome: Outcome::Rejected, alive: true }, Failure::NoRecipientAccepted),
        (Fault { cmd: "DATA", outcome: Outcome::Rejected, alive: true }, Failure::DataRejected),
        (Fault { cmd: ".", outcome: Outcome::Rejected, alive: true }, Failure::BodyRejected),
    ] {
        let sink = sink(SinkOptions { soft_reject: Some(fault.cmd), ..SinkOptions::default() });
        let mut client = SmtpClient::connect(&options(sink.port())).expect("connect");
        for _ in 0..2 {
            let report = client
                .send(envelope(&["bob@example.org"]), std::io::Cursor::new(&b"x\r\n"[..]))
                .expect("send");
            assert_eq!(report.outcome, fault.outcome, "{}", fault.cmd);
            assert_eq!(report.failure.as_ref(), Some(&failure), "{}", fault.cmd);
            assert!(report.is_temporary(), "{}: 450 is temporary", fault.cmd);
            assert!(client.close_reason().is_none(), "{}", fault.cmd);
        }
        client.quit().expect("quit");
        // smtp-sink stores a transaction when its final dot arrives, before it replies (here 450).
        let stored = if fault.cmd == "." { 2 } else { 0 };
        assert_eq!(sink.messages().len(), stored, "{}", fault.cmd);
    }
}

fn aio(opts: AioOptions) -> Aiosmtpd {
    Aiosmtpd::start(opts).unwrap_or_else(|e| panic!("{e}"))
}

fn aio_options(server: &Aiosmtpd, tls: TlsMode) -> Options {
    let mut o = options(server.port());
    o.session.tls = tls;
    o.ca_file = Some(server.ca_pem_path().to_path_buf());
    o
}

#[test]
#[ignore = "needs real servers: scripts/install-test-servers, then cargo test -- --include-ignored"]
fn aiosmtpd_starttls_auth_plain_byte_exact_bodies() {
    let server = aio(AioOptions {
        starttls: true,
        auth: Some(("alice".into(), "s3cret".into())),
        ..AioOptions::default()
    });
    let o =
        aio_options(&server, TlsMode::Required).with_credentials(Credentials::password("alice", "s3cret"));
    let mut client = SmtpClient::connect(&o).expect("connect");
    assert!(client.is_tls());
    let bodies: Vec<Vec<u8>> = vec![
        Vec::new(),
        (0..1024).map(|i| b"abcdefghijklmnopqrstuvwxyz\r\n"[i % 28]).collect(),
        tricky_body(64 * 1024),
    ];
    for body in &bodies {
        let env = envelope(&["bob@example.org"]).body_type(BodyType::EightBitMime);
        let report = client.send(env, std::io::Cursor::new(&body[..])).expect("send");
        assert_eq!(report.outcome, Outcome::Sent, "{report:?}");
    }
    client.quit().expect("quit");
    let got = server.wait_for(bodies.len(), WAIT);
    assert_eq!(got.len(), bodies.len());
    for (m, body) in got.iter().zip(&bodies) {
        // aiosmtpd keeps the bytes as sent (dots un-stuffed).
        let want = client_form(body);
        assert!(m.body == want, "stored {} want {}", show(&m.body), show(&want));
        let meta =
            String::from_utf8_lossy(m.raw.split(|&b| b == b'\n').next().unwrap_or_default()).into_owned();
        assert!(meta.contains("\"tls\": true") && meta.contains("\"authenticated\": true"), "{meta}");
    }
}

/// A one-connection plaintext proxy on 127.0.0.1 that rewrites the server's `AUTH` capability line to
/// offer LOGIN only (the core prefers PLAIN when both are offered), and records the client's lines.
fn login_only_proxy(upstream: u16) -> (u16, std::thread::JoinHandle<Vec<String>>) {
    use std::io::{BufRead, BufReader, Write};
    use std::net::{Shutdown, TcpListener, TcpStream};

    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let handle = std::thread::spawn(move || {
        let (client, _) = listener.accept().expect("the client connects");
        let server = TcpStream::connect(("127.0.0.1", upstream)).expect("upstream");
        for s in [&client, &server] {
            s.set_read_timeout(Some(WAIT)).expect("timeout");
        }
        let mut to_client = client.try_clone().expect("clone");
        let from_server = server.try_clone().expect("clone");
        let down = std::thread::spawn(move || {
            let mut reader = BufReader::new(from_server);
            let mut line = String::new();
            while reader.read_line(&mut line).is_ok_and(|n| n > 0) {
                let is_auth = line.get(4..9).is_some_and(|w| w.eq_ignore_ascii_case("AUTH "));
                let out = if is_auth { format!("{}AUTH LOGIN\r\n", &line[..4]) } else { line.clone() };
                if to_client.write_all(out.as_bytes()).is_err() {
                    break;
                }
                line.clear();
            }
            let _ = to_client.shutdown(Shutdown::Write);
        });
        let mut lines = Vec::new();
        let mut to_server = server;
        let mut reader = BufReader::new(client);
        let mut line = String::new();
        while reader.read_line(&mut line).is_ok_and(|n| n > 0) {
            lines.push(line.trim_end().to_owned());
            if to_server.write_all(line.as_bytes()).is_err() {
                break;
            }
            line.clear();
        }
        let _ = to_server.shutdown(Shutdown::Write);
        let _ = down.join();
        lines
    });
    (port, handle)
}

#[test]
#[ignore = "needs real servers: scripts/install-test-servers, then cargo test -- --include-ignored"]
fn aiosmtpd_auth_login() {
    // Plaintext AUTH (allowed for this loopback test) so that the proxy can rewrite the EHLO reply.
    let server = aio(AioOptions {
        auth: Some(("alice".into(), "s3cret".into())),
        auth_require_tls: false,
        ..AioOptions::default()
    });
    let (port, proxy) = login_only_proxy(server.port());
    let mut o = options(port).with_credentials(Credentials::password("alice", "s3cret"));
    o.session.tls = TlsMode::None;
    o.session.allow_plaintext_auth = true;
    let mut client = SmtpClient::connect(&o).expect("connect");
    let offered: Vec<_> = client.capabilities().expect("caps").auth_mechanisms().collect();
    assert_eq!(offered, [smtp_proto::sasl::Mechanism::Login]);
    let body = b"Subject: login\r\n\r\nhi\r\n";
    let report = client.send(envelope(&["bob@example.org"]), std::io::Cursor::new(&body[..])).expect("send");
    assert_eq!(report.outcome, Outcome::Sent);
    client.quit().expect("quit");
    let got = server.wait_for(1, WAIT);
    assert_eq!(got[0].body, body);
    assert!(String::from_utf8_lossy(&got[0].raw).contains("\"authenticated\": true"));
    let lines = proxy.join().expect("proxy");
    assert!(lines.iter().any(|l| l == "AUTH LOGIN"), "{lines:?}");
}

#[test]
#[ignore = "needs real servers: scripts/install-test-servers, then cargo test -- --include-ignored"]
fn aiosmtpd_wrong_password_is_auth_failed_535() {
    let server = aio(AioOptions {
        starttls: true,
        auth: Some(("alice".into(), "s3cret".into())),
        ..AioOptions::default()
    });
    let o = aio_options(&server, TlsMode::Required).with_credentials(Credentials::password("alice", "wrong"));
    match SmtpClient::connect(&o) {
        Err(Error::Session(smtp_proto::Error::AuthFailed { reply: Some(r), .. })) => {
            assert_eq!(r.code(), 535)
        }
        other => panic!("{other:?}"),
    }
}

#[test]
#[ignore = "needs real servers: scripts/install-test-servers, then cargo test -- --include-ignored"]
fn aiosmtpd_implicit_tls_with_auth() {
    let server = aio(AioOptions {
        implicit_tls: true,
        auth: Some(("alice".into(), "s3cret".into())),
        ..AioOptions::default()
    });
    let o =
        aio_options(&server, TlsMode::Implicit).with_credentials(Credentials::password("alice", "s3cret"));
    let mut client = SmtpClient::connect(&o).expect("connect");
    assert!(client.is_tls());
    let body = b"Subject: implicit\r\n\r\nover TLS from the first byte\r\n";
    let report = client.send(envelope(&["bob@example.org"]), std::io::Cursor::new(&body[..])).expect("send");
    assert_eq!(report.outcome, Outcome::Sent);
    client.quit().expect("quit");
    let got = server.wait_for(1, WAIT);
    assert_eq!(got[0].body, body);
}

#[test]
#[ignore = "needs real servers: scripts/install-test-servers, then cargo test -- --include-ignored"]
fn aiosmtpd_refused_recipient_gives_a_partial_report() {
    let server = aio(AioOptions::default());
    let mut client = SmtpClient::connect(&aio_options(&server, TlsMode::None)).expect("connect");
    let report = client
        .send(
            envelope(&["reject.me@example.org", "bob@example.org", "tempfail@example.org"]),
            std::io::Cursor::new(&b"Subject: partial\r\n\r\nhi\r\n"[..]),
        )
        .expect("send");
    assert_eq!(report.outcome, Outcome::Sent);
    let r = &report.recipients;
    assert_eq!(r[0].status, RecipientStatus::PermanentFailure);
    assert_eq!(r[0].rcpt_reply.as_ref().map(|r| r.code()), Some(550));
    assert_eq!(r[1].status, RecipientStatus::Delivered);
    assert_eq!(r[2].status, RecipientStatus::TemporaryFailure);
    assert_eq!(r[2].rcpt_reply.as_ref().map(|r| r.code()), Some(451));
    client.quit().expect("quit");
    let got = server.wait_for(1, WAIT);
    assert_eq!(got[0].recipients, ["bob@example.org"]);
}

fn postfix() -> Postfix {
    Postfix::start().unwrap_or_else(|e| panic!("{e}"))
}

#[test]
#[ignore = "needs real servers: scripts/install-test-servers, then cargo test -- --include-ignored"]
fn postfix_bdat_delivers_to_the_maildir() {
    let server = postfix();
    let body = tricky_body(200 * 1024);
    let mut message = b"Subject: bdat\r\n\r\n".to_vec();
    message.extend_from_slice(&body);
    let ((), logs) = capture(|| {
        let mut client = SmtpClient::connect(&options(server.port())).expect("connect");
        assert!(client.capabilities().expect("caps").chunking());
        let env = envelope(&["bob@example.org"]).body_type(BodyType::EightBitMime);
        let report = client.send(env, std::io::Cursor::new(&message[..])).expect("send");
        assert_eq!(report.outcome, Outcome::Sent, "{report:?}");
        client.quit().expect("quit");
    });
    assert!(logs.iter().any(|l| l.contains("C: BDAT")), "no BDAT in {logs:?}");
    assert!(!logs.iter().any(|l| l == "C: DATA"));
    let got = server.wait_for_mailbox("bob", 1, WAIT);
    assert_eq!(got.len(), 1);
    let want = lf_form(&message);
    assert!(got[0].body == want, "stored {} want {}", show(&got[0].body), show(&want));
}

#[test]
#[ignore = "needs real servers: scripts/install-test-servers, then cargo test -- --include-ignored"]
fn postfix_dsn_request_gets_a_success_report() {
    let server = postfix();
    let rcpt = Recipient::new(smtp_proto::address::ForwardPath::parse("bob@example.org").expect("address"))
        .notify(Notify::on(true, true, false).expect("notify"))
        .orcpt(OrigRecipient::rfc822("bob@example.org").expect("orcpt"));
    let env =
        Envelope::new(smtp_proto::address::ReversePath::parse("alice@example.org").expect("address"), [rcpt])
            .expect("envelope")
            .ret(Ret::Hdrs)
            .envid(EnvId::new("blocking-envid-1").expect("envid"));
    let mut client = SmtpClient::connect(&options(server.port())).expect("connect");
    assert!(client.capabilities().expect("caps").dsn());
    let report =
        client.send(env, std::io::Cursor::new(&b"Subject: dsn\r\n\r\nnotify me\r\n"[..])).expect("send");
    assert_eq!(report.outcome, Outcome::Sent);
    assert!(report.warnings.is_empty(), "{:?}", report.warnings);
    client.quit().expect("quit");
    let bob = server.wait_for_mailbox("bob", 1, WAIT);
    assert_eq!(bob[0].body, b"Subject: dsn\n\nnotify me\n");
    // NOTIFY=SUCCESS: Postfix reports the delivery to the (local) sender, with ENVID and ORCPT.
    let alice = server.wait_for_mailbox("alice", 1, WAIT);
    assert_eq!(alice.len(), 1, "no DSN for alice");
    let dsn = String::from_utf8_lossy(&alice[0].raw);
    assert!(dsn.contains("Original-Envelope-Id: blocking-envid-1"), "{dsn}");
    assert!(dsn.contains("Original-Recipient: rfc822;bob@example.org"), "{dsn}");
    assert!(dsn.contains("Action: delivered"), "{dsn}");
}

#[test]
#[ignore = "needs real servers: scripts/install-test-servers, then cargo test -- --include-ignored"]
fn postfix_utf8_address() {
    let server = postfix();
    let mut client = SmtpClient::connect(&options(server.port())).expect("connect");
    assert!(client.capabilities().expect("caps").smtp_utf8());
    let body = "Subject: =?UTF-8?Q?gr=C3=BC=C3=9Fe?=\r\n\r\nHallo Jörg\r\n".as_bytes();
    let env = envelope(&["jörg@example.org"]).body_type(BodyType::EightBitMime);
    let report = client.send(env, std::io::Cursor::new(body)).expect("send");
    assert_eq!(report.outcome, Outcome::Sent, "{report:?}");
    client.quit().expect("quit");
    let got = server.wait_for_mailbox("jörg", 1, WAIT);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].recipients, ["jörg@example.org"]);
    assert_eq!(got[0].body, lf_form(body));
}
