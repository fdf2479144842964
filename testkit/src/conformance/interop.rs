//! Against real servers on 127.0.0.1, started by this crate: Postfix's smtp-sink (with and without
//! PIPELINING, LMTP, scripted faults, load), aiosmtpd (STARTTLS, AUTH, implicit TLS, byte-exact bodies) and
//! a private Postfix (BDAT, DSN, SMTPUTF8, a recipient limit, delivered to Maildirs).
//!
//! The suite marks every test here `#[ignore]`: install the servers with `scripts/install-test-servers`,
//! then run `cargo test -- --include-ignored`.

use std::collections::HashSet;
use std::io::{BufRead, BufReader, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use smtp_proto::address::{ForwardPath, ReversePath};
use smtp_proto::command::{BodyType, EnvId, Notify, OrigRecipient, Ret};
use smtp_proto::sasl::{Credentials, Mechanism};
use smtp_proto::{
    Envelope, Failure, MessageReport, Outcome, Protocol, Recipient, RecipientStatus, Timeouts, TlsMode,
};
use smtp_transport::{Error, Options};

use super::{
    Adapter, Body, MIB, assert_closed, capture, client_form, code, envelope, exclusive, is_eof, options_for,
    peak_rss, reset_peak_rss, shared, text, tricky_body,
};
use crate::{AioOptions, Aiosmtpd, Postfix, ReceivedMessage, SinkOptions, SmtpSink};

const WAIT: Duration = Duration::from_secs(10);

fn sink(opts: SinkOptions) -> SmtpSink {
    SmtpSink::start(opts).unwrap_or_else(|e| panic!("{e}"))
}

fn aio(opts: AioOptions) -> Aiosmtpd {
    Aiosmtpd::start(opts).unwrap_or_else(|e| panic!("{e}"))
}

fn postfix() -> Postfix {
    Postfix::start().unwrap_or_else(|e| panic!("{e}"))
}

/// Options for a real server: replies bounded by 30 s (real servers on a busy machine).
fn options(port: u16) -> Options {
    let mut o = options_for(port);
    o.session.timeouts = Timeouts::uniform(Duration::from_secs(30));
    o
}

/// What smtp-sink and Postfix store for a body our client sent: CRLF becomes LF (the client sends no
/// bare CR or LF).
fn lf_form(body: &[u8]) -> Vec<u8> {
    let mut v = client_form(body);
    v.retain(|&b| b != b'\r');
    v
}

fn show(b: &[u8]) -> String {
    let s = text(b);
    if s.len() > 300 { format!("{}… ({} bytes)", &s[..300], b.len()) } else { s }
}

#[track_caller]
fn assert_sent(report: &MessageReport) {
    assert_eq!(report.outcome, Outcome::Sent, "{report:?}");
    assert!(report.all_delivered(), "{report:?}");
}

/// Dots at line starts (alone, doubled, leading), bare LFs (one before a dot), a bare CR, no final newline.
const TRICKY: &[u8] =
    b"Subject: dots\r\n\r\n.\r\n..\r\n.leading\nbare LF\n.after a bare LF\r\nCR\ralone\r\n.\r\nend";

/// Empty, 1 KiB of short lines, 64 KiB of everything the stuffer handles, and [`TRICKY`].
fn bodies() -> Vec<Vec<u8>> {
    vec![
        Vec::new(),
        (0..1024).map(|i| b"abcdefghijklmnopqrstuvwxyz\r\n"[i % 28]).collect(),
        tricky_body(64 * 1024),
        TRICKY.to_vec(),
    ]
}

fn sink_sends_bodies<A: Adapter>(opts: SinkOptions) {
    let sink = sink(opts);
    let mut client = A::connect(&options(sink.port())).expect("connect");
    let bodies = bodies();
    for body in &bodies {
        let env = envelope(&["bob@example.org"]).body_type(BodyType::EightBitMime);
        assert_sent(&client.send(env, Body::bytes(body)).expect("send"));
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

/// smtp-sink, pipelined: empty, short and tricky bodies arrive as sent (after its CR removal).
pub fn sink_pipelined_bodies<A: Adapter>() {
    let _serial = shared();
    sink_sends_bodies::<A>(SinkOptions::default());
}

/// The same without PIPELINING.
pub fn sink_without_pipelining_bodies<A: Adapter>() {
    let _serial = shared();
    sink_sends_bodies::<A>(SinkOptions { no_pipelining: true, ..SinkOptions::default() });
}

/// smtp-sink speaking LMTP: one 250 per recipient after the body.
pub fn sink_lmtp_two_recipients<A: Adapter>() {
    let _serial = shared();
    let sink = sink(SinkOptions { lmtp: true, ..SinkOptions::default() });
    let mut o = options(sink.port());
    o.session.protocol = Protocol::Lmtp;
    let mut client = A::connect(&o).expect("connect");
    let report =
        client.send(envelope(&["bob@example.org", "carol@example.org"]), Body::bytes(TRICKY)).expect("send");
    assert_sent(&report);
    for r in &report.recipients {
        assert_eq!(code(&r.lmtp_reply), Some(250), "{report:?}");
    }
    client.quit().expect("quit");
    let got = sink.wait_for(1, WAIT);
    assert_eq!(got[0].recipients, ["bob@example.org", "carol@example.org"]);
    assert_eq!(got[0].body, lf_form(TRICKY));
}

/// A 50 MiB body generated as it is read (it cannot seek) and streamed to smtp-sink: the process's peak
/// memory grows by less than half of it, progress ends at the whole body, and the stored copy is the body
/// (compared as it is generated: the expected body is never held whole either).
pub fn sink_50_mib_streamed_in_constant_memory<A: Adapter>() {
    const LEN: u64 = 50 * MIB;
    let _alone = exclusive();
    let sink = sink(SinkOptions::default());
    let mut client = A::connect(&options(sink.port())).expect("connect");
    reset_peak_rss();
    let before = peak_rss();
    let mut last = 0;
    let report = client
        .send_with_progress(
            envelope(&["bob@example.org"]),
            Body::generated(LEN).one_shot(),
            &mut |sent, _| last = sent,
        )
        .expect("send");
    assert_sent(&report);
    assert_eq!(last, LEN);
    client.quit().expect("quit");
    // Measured before reading the stored copy back (which needs the whole body in memory).
    let growth = peak_rss().saturating_sub(before);
    eprintln!("peak RSS grew by {} KiB while sending 50 MiB", growth / 1024);
    assert!(growth < LEN / 2, "peak RSS grew by {growth} bytes: the body was held in memory");
    let got = sink.wait_for(1, Duration::from_secs(30));
    assert_eq!(got.len(), 1);
    // The generated body has no bare CR; its last line gets the CRLF the client adds.
    let ends_with_lf = Body::generated_byte(LEN - 1) == b'\n';
    let expected =
        (0..LEN).map(Body::generated_byte).filter(|&b| b != b'\r').chain((!ends_with_lf).then_some(b'\n'));
    assert!(got[0].body.iter().copied().eq(expected), "the 50 MiB body differs");
}

/// A fault of smtp-sink on `cmd`: the report, and the session's end.
fn sink_fault<A: Adapter>(opts: SinkOptions) -> (A, MessageReport, SmtpSink) {
    let sink = sink(opts);
    let mut client = A::connect(&options(sink.port())).expect("connect");
    let report = client.send(envelope(&["bob@example.org"]), Body::bytes(TRICKY)).expect("send");
    (client, report, sink)
}

/// smtp-sink closes without a reply on MAIL, RCPT, DATA or the final dot: rejected, or unknown after the
/// dot; the connection's end is the session's close reason, and a later send is refused.
pub fn sink_disconnect_without_reply<A: Adapter>() {
    let _serial = shared();
    for (cmd, outcome) in [
        ("MAIL", Outcome::Rejected),
        ("RCPT", Outcome::Rejected),
        ("DATA", Outcome::Rejected),
        (".", Outcome::Unknown),
    ] {
        let opts = SinkOptions { disconnect_after: Some(cmd), ..SinkOptions::default() };
        let (mut client, report, _sink) = sink_fault::<A>(opts);
        assert_eq!(report.outcome, outcome, "-q {cmd}: {report:?}");
        assert!(matches!(report.failure, Some(Failure::Session(_))), "-q {cmd}: {report:?}");
        let reason = client.close_reason().unwrap_or_else(|| panic!("-q {cmd}: no close reason"));
        assert!(is_eof(reason), "-q {cmd}: {reason:?}");
        assert_closed(client.send(envelope(&["bob@example.org"]), Body::bytes("x\r\n")));
    }
}

/// smtp-sink says 421 and closes on MAIL, RCPT, DATA or the final dot: a 421 is an answer, even to the
/// dot, so the message is rejected (temporary) and the 421 ends the session.
pub fn sink_421_and_disconnect<A: Adapter>() {
    let _serial = shared();
    for cmd in ["MAIL", "RCPT", "DATA", "."] {
        let opts = SinkOptions { close_421_after: Some(cmd), ..SinkOptions::default() };
        let (mut client, report, _sink) = sink_fault::<A>(opts);
        assert_eq!(report.outcome, Outcome::Rejected, "-Q {cmd}: {report:?}");
        assert!(report.is_temporary(), "-Q {cmd}: {report:?}");
        match client.close_reason() {
            Some(Error::Session(smtp_proto::Error::ServiceUnavailable(r))) => assert_eq!(r.code(), 421),
            other => panic!("-Q {cmd}: {other:?}"),
        }
        assert_closed(client.send(envelope(&["bob@example.org"]), Body::bytes("x\r\n")));
    }
}

/// smtp-sink soft-rejects MAIL, RCPT, DATA or the final dot (450): rejected each time, temporary, the
/// session goes on.
pub fn sink_soft_reject<A: Adapter>() {
    let _serial = shared();
    for (cmd, failure) in [
        ("MAIL", Failure::MailRejected),
        ("RCPT", Failure::NoRecipientAccepted),
        ("DATA", Failure::DataRejected),
        (".", Failure::BodyRejected),
    ] {
        let opts = SinkOptions { soft_reject: Some(cmd), ..SinkOptions::default() };
        let (mut client, first, sink) = sink_fault::<A>(opts);
        let second = client.send(envelope(&["bob@example.org"]), Body::bytes("x\r\n")).expect("send");
        for report in [first, second] {
            assert_eq!(report.outcome, Outcome::Rejected, "-r {cmd}: {report:?}");
            assert_eq!(report.failure.as_ref(), Some(&failure), "-r {cmd}");
            assert!(report.is_temporary(), "-r {cmd}: 450 is temporary");
            assert_eq!(report.recipients[0].status, RecipientStatus::TemporaryFailure, "-r {cmd}");
            assert!(client.close_reason().is_none(), "-r {cmd}");
        }
        client.quit().expect("quit");
        // smtp-sink stores a transaction when its final dot arrives, before it replies (here 450).
        let stored = if cmd == "." { 2 } else { 0 };
        assert_eq!(sink.messages().len(), stored, "-r {cmd}");
    }
}

/// 200 concurrent sessions (a thread each) of 50 messages against smtp-sink: 10,000 Sent reports and
/// 10,000 distinct messages stored, none lost, none twice.
pub fn sink_load_200_sessions_of_50_messages<A: Adapter>() {
    const SESSIONS: usize = 200;
    const MESSAGES: usize = 50;
    let _serial = shared();
    let sink = sink(SinkOptions { backlog: Some(1024), ..SinkOptions::default() });
    let mut o = options(sink.port());
    o.helo_name = Some("load.test".parse().expect("valid EHLO name"));
    o.connect_timeout = Duration::from_secs(30);
    let start = Instant::now();
    let sent: usize = std::thread::scope(|scope| {
        let sessions: Vec<_> = (0..SESSIONS)
            .map(|s| {
                let o = &o;
                scope.spawn(move || {
                    let mut client = A::connect(o).unwrap_or_else(|e| panic!("session {s}: connect: {e}"));
                    for m in 0..MESSAGES {
                        let to = format!("s{s}.m{m}@example.org");
                        let body = format!("Subject: session {s} message {m}\r\n\r\nhello\r\n");
                        let report = client
                            .send(envelope(&[&to]), Body::bytes(body))
                            .unwrap_or_else(|e| panic!("{to}: {e}"));
                        assert_eq!(report.outcome, Outcome::Sent, "{to}: {report:?}");
                    }
                    client.quit().expect("quit");
                    MESSAGES
                })
            })
            .collect();
        sessions.into_iter().map(|t| t.join().expect("a session panicked")).sum()
    });
    let sending = start.elapsed();
    assert_eq!(sent, SESSIONS * MESSAGES);
    // The sink stores each message before its 250, so all are there already; the wait is a bound.
    let got = sink.wait_for(SESSIONS * MESSAGES, Duration::from_secs(30));
    assert_eq!(got.len(), SESSIONS * MESSAGES, "messages lost");
    let mut seen = HashSet::new();
    for message in &got {
        assert_eq!(message.recipients.len(), 1);
        let to = &message.recipients[0];
        let (s, m) = to
            .strip_suffix("@example.org")
            .and_then(|l| l.strip_prefix('s'))
            .and_then(|l| l.split_once(".m"))
            .expect("one of ours");
        let subject = format!("Subject: session {s} message {m}\n\nhello\n");
        assert_eq!(message.body, subject.as_bytes(), "{to}");
        assert!(seen.insert(to.clone()), "{to} stored twice");
    }
    eprintln!("{sent} messages over {SESSIONS} sessions sent in {sending:.1?}, all {} stored", seen.len());
}

fn aio_options(server: &Aiosmtpd, tls: TlsMode) -> Options {
    let mut o = options(server.port());
    o.session.tls = tls;
    o.ca_file = Some(server.ca_pem_path().to_path_buf());
    o
}

fn aio_with_auth(starttls: bool, implicit_tls: bool) -> Aiosmtpd {
    aio(AioOptions {
        starttls,
        implicit_tls,
        auth: Some(("alice".into(), "s3cret".into())),
        ..AioOptions::default()
    })
}

/// aiosmtpd keeps the body byte for byte (un-stuffed): it must be exactly what the client meant to send.
#[track_caller]
fn assert_stored_exactly(got: &ReceivedMessage, body: &[u8]) {
    let want = client_form(body);
    assert!(got.body == want, "stored {} want {}", show(&got.body), show(&want));
}

/// aiosmtpd with STARTTLS and AUTH PLAIN: every body stored byte for byte, inside TLS, authenticated.
pub fn aiosmtpd_starttls_auth_plain_byte_exact_bodies<A: Adapter>() {
    let _serial = shared();
    let server = aio_with_auth(true, false);
    let o =
        aio_options(&server, TlsMode::Required).with_credentials(Credentials::password("alice", "s3cret"));
    let mut client = A::connect(&o).expect("connect");
    assert!(client.is_tls());
    let bodies = bodies();
    for body in &bodies {
        let env = envelope(&["bob@example.org"]).body_type(BodyType::EightBitMime);
        assert_sent(&client.send(env, Body::bytes(body)).expect("send"));
    }
    client.quit().expect("quit");
    let got = server.wait_for(bodies.len(), WAIT);
    assert_eq!(got.len(), bodies.len());
    for (m, body) in got.iter().zip(&bodies) {
        assert_stored_exactly(m, body);
        let meta = text(m.raw.split(|&b| b == b'\n').next().unwrap_or_default());
        assert!(meta.contains("\"tls\": true") && meta.contains("\"authenticated\": true"), "{meta}");
    }
}

/// A one-connection plaintext proxy on 127.0.0.1 that rewrites the server's `AUTH` capability line to
/// offer LOGIN only (the core prefers PLAIN when both are offered), and records the client's lines.
fn login_only_proxy(upstream: u16) -> (u16, JoinHandle<Vec<String>>) {
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

/// AUTH LOGIN against aiosmtpd (plaintext AUTH, allowed for this loopback test, so that a proxy can hide
/// PLAIN from the EHLO reply).
pub fn aiosmtpd_auth_login<A: Adapter>() {
    let _serial = shared();
    let server = aio(AioOptions {
        auth: Some(("alice".into(), "s3cret".into())),
        auth_require_tls: false,
        ..AioOptions::default()
    });
    let (port, proxy) = login_only_proxy(server.port());
    let mut o = options(port).with_credentials(Credentials::password("alice", "s3cret"));
    o.session.tls = TlsMode::None;
    o.session.allow_plaintext_auth = true;
    let mut client = A::connect(&o).expect("connect");
    let offered: Vec<_> = client.capabilities().expect("caps").auth_mechanisms().collect();
    assert_eq!(offered, [Mechanism::Login]);
    assert_sent(&client.send(envelope(&["bob@example.org"]), Body::bytes(TRICKY)).expect("send"));
    client.quit().expect("quit");
    let got = server.wait_for(1, WAIT);
    assert_stored_exactly(&got[0], TRICKY);
    assert!(text(&got[0].raw).contains("\"authenticated\": true"));
    let lines = proxy.join().expect("proxy");
    assert!(lines.iter().any(|l| l == "AUTH LOGIN"), "{lines:?}");
}

/// A wrong password: `AuthFailed` with aiosmtpd's 535.
pub fn aiosmtpd_wrong_password_is_auth_failed_535<A: Adapter>() {
    let _serial = shared();
    let server = aio_with_auth(true, false);
    let o = aio_options(&server, TlsMode::Required).with_credentials(Credentials::password("alice", "wrong"));
    match A::connect(&o) {
        Err(Error::Session(smtp_proto::Error::AuthFailed { reply, .. })) => {
            assert_eq!(code(&reply), Some(535))
        }
        Err(other) => panic!("{other:?}"),
        Ok(_) => panic!("authenticated with a wrong password"),
    }
}

/// Implicit TLS with AUTH: TLS from the first byte, the body stored exactly.
pub fn aiosmtpd_implicit_tls_with_auth<A: Adapter>() {
    let _serial = shared();
    let server = aio_with_auth(false, true);
    let o =
        aio_options(&server, TlsMode::Implicit).with_credentials(Credentials::password("alice", "s3cret"));
    let mut client = A::connect(&o).expect("connect");
    assert!(client.is_tls());
    assert_sent(&client.send(envelope(&["bob@example.org"]), Body::bytes(TRICKY)).expect("send"));
    client.quit().expect("quit");
    assert_stored_exactly(&server.wait_for(1, WAIT)[0], TRICKY);
}

/// aiosmtpd refuses recipients by name (550, 451): a partial report with each reply; only the accepted
/// recipient gets the message.
pub fn aiosmtpd_refused_recipients_give_a_partial_report<A: Adapter>() {
    let _serial = shared();
    let server = aio(AioOptions::default());
    let mut client = A::connect(&aio_options(&server, TlsMode::None)).expect("connect");
    let to = ["bob@example.org", "reject.me@example.org", "tempfail@example.org"];
    let report = client.send(envelope(&to), Body::bytes(TRICKY)).expect("send");
    assert_eq!(report.outcome, Outcome::Sent, "{report:?}");
    let statuses: Vec<_> = report.recipients.iter().map(|r| r.status).collect();
    use RecipientStatus::{Delivered, PermanentFailure, TemporaryFailure};
    assert_eq!(statuses, [Delivered, PermanentFailure, TemporaryFailure]);
    let codes: Vec<_> = report.recipients.iter().map(|r| code(&r.rcpt_reply)).collect();
    assert_eq!(codes, [Some(250), Some(550), Some(451)]);
    client.quit().expect("quit");
    let got = server.wait_for(1, WAIT);
    assert_eq!(got[0].recipients, ["bob@example.org"]);
    assert_stored_exactly(&got[0], TRICKY);
}

/// The transcript lines the client wrote (`C: …`), from the driver's logs.
fn client_lines(logs: &[String]) -> Vec<&str> {
    logs.iter().filter_map(|l| l.strip_prefix("C: ")).collect()
}

/// BDAT to Postfix (it offers CHUNKING): several chunks, the last `LAST`, no DATA; the Maildir copy is the
/// message.
pub fn postfix_bdat_delivers_to_the_maildir<A: Adapter>() {
    let _serial = shared();
    let server = postfix();
    let mut message = b"Subject: bdat\r\n\r\n".to_vec();
    message.extend_from_slice(&tricky_body(200 * 1024));
    let ((), logs) = capture(|| {
        let mut client = A::connect(&options(server.port())).expect("connect");
        assert!(client.capabilities().expect("caps").chunking());
        let env = envelope(&["bob@example.org"]).body_type(BodyType::EightBitMime);
        assert_sent(&client.send(env, Body::bytes(&message)).expect("send"));
        client.quit().expect("quit");
    });
    let sent = client_lines(&logs);
    let bdat: Vec<_> = sent.iter().filter(|l| l.starts_with("BDAT ")).collect();
    assert!(bdat.len() > 1, "{sent:?}");
    assert!(bdat.last().is_some_and(|l| l.contains(" LAST ")), "{sent:?}");
    assert!(!sent.contains(&"DATA"), "{sent:?}");
    let got = server.wait_for_mailbox("bob", 1, WAIT);
    assert_eq!(got.len(), 1);
    let want = lf_form(&message);
    assert!(got[0].body == want, "stored {} want {}", show(&got[0].body), show(&want));
}

/// A DSN request (NOTIFY, ORCPT, RET, ENVID) to Postfix: the parameters on MAIL and RCPT, no warning, and
/// Postfix's success report to the (local) sender, with the ENVID and ORCPT given.
pub fn postfix_dsn_request_gets_a_success_report<A: Adapter>() {
    let _serial = shared();
    let server = postfix();
    let rcpt = Recipient::new(ForwardPath::parse("bob@example.org").expect("address"))
        .notify(Notify::on(true, true, false).expect("notify"))
        .orcpt(OrigRecipient::rfc822("bob@example.org").expect("orcpt"));
    let env = Envelope::new(ReversePath::parse("alice@example.org").expect("address"), [rcpt])
        .expect("envelope")
        .ret(Ret::Hdrs)
        .envid(EnvId::new("conformance-envid-1").expect("envid"));
    let body = b"Subject: dsn\r\n\r\nnotify me\r\n";
    let ((), logs) = capture(|| {
        let mut client = A::connect(&options(server.port())).expect("connect");
        assert!(client.capabilities().expect("caps").dsn());
        let report = client.send(env, Body::bytes(body)).expect("send");
        assert_sent(&report);
        assert!(report.warnings.is_empty(), "{:?}", report.warnings);
        client.quit().expect("quit");
    });
    let sent = client_lines(&logs);
    assert!(
        sent.iter().any(|l| l.starts_with("MAIL FROM:<alice@example.org>")
            && l.contains("RET=HDRS")
            && l.contains("ENVID=conformance-envid-1")),
        "{sent:?}"
    );
    assert!(
        sent.iter().any(|l| l.starts_with("RCPT TO:<bob@example.org>")
            && l.contains("NOTIFY=SUCCESS,FAILURE")
            && l.contains("ORCPT=rfc822;bob@example.org")),
        "{sent:?}"
    );
    assert_eq!(server.wait_for_mailbox("bob", 1, WAIT)[0].body, lf_form(body));
    let alice = server.wait_for_mailbox("alice", 1, WAIT);
    assert_eq!(alice.len(), 1, "no DSN for alice");
    let dsn = text(&alice[0].raw);
    assert!(dsn.contains("Original-Envelope-Id: conformance-envid-1"), "{dsn}");
    assert!(dsn.contains("Original-Recipient: rfc822;bob@example.org"), "{dsn}");
    assert!(dsn.contains("Action: delivered"), "{dsn}");
}

/// A UTF-8 recipient to Postfix (SMTPUTF8, strict): delivered to jörg's Maildir.
pub fn postfix_utf8_address<A: Adapter>() {
    let _serial = shared();
    let server = postfix();
    let mut client = A::connect(&options(server.port())).expect("connect");
    assert!(client.capabilities().expect("caps").smtp_utf8());
    let body = "Subject: =?UTF-8?Q?gr=C3=BC=C3=9Fe?=\r\n\r\nHallo Jörg\r\n".as_bytes();
    let env = envelope(&["jörg@example.org"]).body_type(BodyType::EightBitMime);
    assert_sent(&client.send(env, Body::bytes(body)).expect("send"));
    client.quit().expect("quit");
    let got = server.wait_for_mailbox("jörg", 1, WAIT);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].recipients, ["jörg@example.org"]);
    assert_eq!(got[0].body, lf_form(body));
}

/// Issue 10: 2,000 recipients in one send to a Postfix with `smtpd_recipient_limit = 100` (it says `452
/// 4.5.3` from the 101st recipient of a transaction on): the driver sends the rest in later transactions,
/// and every recipient is delivered, read back from the Maildir.
pub fn postfix_2000_recipients_over_a_limit_of_100_all_delivered<A: Adapter>() {
    const N: usize = 2000;
    let _serial = shared();
    let server = Postfix::start_with(&[("smtpd_recipient_limit", "100")]).unwrap_or_else(|e| panic!("{e}"));
    let to: Vec<String> = (0..N).map(|i| format!("many{i:04}@example.org")).collect();
    let all: Vec<&str> = to.iter().map(String::as_str).collect();
    let body = b"Subject: two thousand\r\n\r\none body for every recipient\r\n";
    let mut client = A::connect(&options(server.port())).expect("connect");
    let report = client.send(envelope(&all), Body::bytes(body)).expect("send");
    assert_eq!(report.outcome, Outcome::Sent, "{:?}", report.failure);
    let undelivered: Vec<_> = report
        .recipients
        .iter()
        .filter(|r| r.status != RecipientStatus::Delivered)
        .map(|r| r.path.to_string())
        .collect();
    assert!(
        undelivered.is_empty(),
        "{} not delivered, e.g. {:?}",
        undelivered.len(),
        &undelivered[..undelivered.len().min(5)]
    );
    client.quit().expect("quit");
    let got = server.wait_for_mailbox(Postfix::CATCH_ALL, N, Duration::from_secs(120));
    let delivered: HashSet<&str> = got.iter().flat_map(|m| m.recipients.iter().map(String::as_str)).collect();
    assert_eq!(got.len(), N, "{} copies in the Maildir", got.len());
    assert_eq!(delivered, all.iter().copied().collect::<HashSet<_>>());
    assert!(got.iter().all(|m| m.body == lf_form(body)));
}
