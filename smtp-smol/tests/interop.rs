//! The driver against real servers on 127.0.0.1 (smtp-testkit): Postfix's smtp-sink, Python's aiosmtpd and a
//! private Postfix. Install them with `scripts/install-test-servers`, then run
//! `cargo test -p smtp-smol -- --include-ignored`.

mod common;

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use common::GeneratedBody;
use smtp_smol::smtp_proto::address::{ForwardPath, ReversePath};
use smtp_smol::smtp_proto::body::normalize_line_endings;
use smtp_smol::smtp_proto::command::{EnvId, Notify, OrigRecipient, Ret};
use smtp_smol::smtp_proto::sasl::Credentials;
use smtp_smol::smtp_proto::{
    Error as ProtoError, Failure, Protocol, Recipient, RecipientStatus, Timeouts, TlsMode,
};
use smtp_smol::{Envelope, Error, MessageReport, Options, Outcome, SmtpClient, TcpStream};
use smtp_testkit::{AioOptions, Aiosmtpd, Postfix, ReceivedMessage, SinkOptions, SmtpSink};

/// How long a test waits for a server to store a message.
const WAIT: Duration = Duration::from_secs(10);

fn sink(opts: SinkOptions) -> SmtpSink {
    SmtpSink::start(opts).unwrap_or_else(|e| panic!("{e}"))
}

fn aiosmtpd(opts: AioOptions) -> Aiosmtpd {
    Aiosmtpd::start(opts).unwrap_or_else(|e| panic!("{e}"))
}

fn postfix() -> Postfix {
    Postfix::start().unwrap_or_else(|e| panic!("{e}"))
}

fn options(port: u16) -> Options {
    let mut o = Options::new("127.0.0.1", port);
    o.session.tls = TlsMode::None;
    o.helo_name = Some("client.example.org".parse().unwrap());
    o.session.timeouts = Timeouts::uniform(Duration::from_secs(30));
    o.connect_timeout = Duration::from_secs(10);
    o
}

fn envelope(to: &[&str]) -> Envelope {
    Envelope::parse("alice@example.org", to).unwrap()
}

async fn send(client: &mut SmtpClient, to: &[&str], body: &[u8]) -> MessageReport {
    client.send(envelope(to), body).await.unwrap()
}

/// The body as the client puts it on the wire, before dot-stuffing: CRLF everywhere, ending with CRLF.
fn on_the_wire(body: &[u8]) -> Vec<u8> {
    let mut wire = normalize_line_endings(body);
    if !wire.is_empty() && !wire.ends_with(b"\r\n") {
        wire.extend_from_slice(b"\r\n");
    }
    wire
}

/// What smtp-sink and Postfix store for a body: the wire form with CRLF turned into LF.
fn stored_with_lf(body: &[u8]) -> Vec<u8> {
    on_the_wire(body).into_iter().filter(|&b| b != b'\r').collect()
}

/// Dots at line starts (alone, doubled, leading), bare LFs (one before a dot), a bare CR, no final newline.
const TRICKY: &[u8] =
    b"Subject: dots\r\n\r\n.\r\n..\r\n.leading\nbare LF\n.after a bare LF\r\nCR\ralone\r\n.\r\nend";

fn bodies() -> Vec<Vec<u8>> {
    vec![Vec::new(), GeneratedBody::expected(1024), TRICKY.to_vec()]
}

fn assert_sent(report: &MessageReport) {
    assert_eq!(report.outcome, Outcome::Sent, "{report:?}");
    assert!(report.all_delivered(), "{report:?}");
}

/// Sends every test body over one connection; each arrives byte for byte (after smtp-sink's CR removal).
fn sink_round_trip(opts: SinkOptions) {
    let server = sink(opts);
    smol::block_on(async {
        let mut client = SmtpClient::connect(&options(server.port())).await.unwrap();
        for body in bodies() {
            assert_sent(&send(&mut client, &["bob@example.org"], &body).await);
        }
        client.quit().await.unwrap();
    });
    let got = server.wait_for(bodies().len(), WAIT);
    assert_eq!(got.len(), bodies().len());
    for (msg, body) in got.iter().zip(bodies()) {
        assert_eq!(msg.recipients, ["bob@example.org"]);
        assert_eq!(String::from_utf8_lossy(&msg.body), String::from_utf8_lossy(&stored_with_lf(&body)));
    }
}

#[test]
#[ignore = "needs real servers: scripts/install-test-servers, then cargo test -- --include-ignored"]
fn sink_pipelined() {
    sink_round_trip(SinkOptions::default());
}

#[test]
#[ignore = "needs real servers: scripts/install-test-servers, then cargo test -- --include-ignored"]
fn sink_without_pipelining() {
    sink_round_trip(SinkOptions { no_pipelining: true, ..SinkOptions::default() });
}

#[test]
#[ignore = "needs real servers: scripts/install-test-servers, then cargo test -- --include-ignored"]
fn sink_lmtp() {
    let server = sink(SinkOptions { lmtp: true, ..SinkOptions::default() });
    let mut opts = options(server.port());
    opts.session.protocol = Protocol::Lmtp;
    smol::block_on(async {
        let mut client = SmtpClient::connect(&opts).await.unwrap();
        let report = send(&mut client, &["bob@example.org", "carol@example.org"], TRICKY).await;
        assert_sent(&report);
        for r in &report.recipients {
            assert_eq!(r.lmtp_reply.as_ref().map(|r| r.code()), Some(250));
        }
        client.quit().await.unwrap();
    });
    let got = server.wait_for(1, WAIT);
    assert_eq!(got[0].recipients, ["bob@example.org", "carol@example.org"]);
    assert_eq!(got[0].body, stored_with_lf(TRICKY));
}

#[test]
#[ignore = "needs real servers: scripts/install-test-servers, then cargo test -- --include-ignored"]
fn sink_50_mib_streamed() {
    const LEN: usize = 50 * 1024 * 1024;
    let server = sink(SinkOptions::default());
    smol::block_on(async {
        let mut client = SmtpClient::connect(&options(server.port())).await.unwrap();
        let mut last = 0;
        let report = client
            .send_with_progress(envelope(&["bob@example.org"]), GeneratedBody::new(LEN), |sent, _| {
                last = sent
            })
            .await
            .unwrap();
        assert_sent(&report);
        assert_eq!(last, LEN as u64);
        client.quit().await.unwrap();
    });
    let got = server.wait_for(1, WAIT);
    // Compared as it is generated: the expected body is never held whole either.
    let expected = (0..LEN).map(GeneratedBody::byte).filter(|&b| b != b'\r');
    assert!(got[0].body.iter().copied().eq(expected), "the 50 MiB body differs");
}

/// One message against smtp-sink with a fault on `cmd`; the session's close reason, if it ended.
fn sink_fault(opts: SinkOptions) -> (MessageReport, Option<String>) {
    let server = sink(opts);
    smol::block_on(async {
        let mut client = SmtpClient::connect(&options(server.port())).await.unwrap();
        let report = send(&mut client, &["bob@example.org"], TRICKY).await;
        let reason = client.close_reason().map(|e| format!("{e:?}"));
        client.quit().await.unwrap();
        (report, reason)
    })
}

#[test]
#[ignore = "needs real servers: scripts/install-test-servers, then cargo test -- --include-ignored"]
fn sink_disconnects_without_reply() {
    for (cmd, outcome) in [
        ("MAIL", Outcome::Rejected),
        ("RCPT", Outcome::Rejected),
        ("DATA", Outcome::Rejected),
        (".", Outcome::Unknown),
    ] {
        let (report, reason) =
            sink_fault(SinkOptions { disconnect_after: Some(cmd), ..SinkOptions::default() });
        assert_eq!(report.outcome, outcome, "-q {cmd}: {report:?}");
        assert!(matches!(report.failure, Some(Failure::Session(_))), "-q {cmd}: {report:?}");
        let reason = reason.unwrap_or_else(|| panic!("-q {cmd}: no close reason"));
        assert!(reason.contains("UnexpectedEof") || reason.contains("Io("), "-q {cmd}: {reason}");
    }
}

#[test]
#[ignore = "needs real servers: scripts/install-test-servers, then cargo test -- --include-ignored"]
fn sink_closes_with_421() {
    for cmd in ["MAIL", "RCPT", "DATA", "."] {
        let (report, reason) =
            sink_fault(SinkOptions { close_421_after: Some(cmd), ..SinkOptions::default() });
        // A 421 is an answer, even to the final dot: the message was not taken, and may be retried.
        assert_eq!(report.outcome, Outcome::Rejected, "-Q {cmd}: {report:?}");
        assert!(report.is_temporary(), "-Q {cmd}: {report:?}");
        let reason = reason.unwrap_or_else(|| panic!("-Q {cmd}: no close reason"));
        assert!(reason.contains("ServiceUnavailable") && reason.contains("421"), "-Q {cmd}: {reason}");
    }
}

#[test]
#[ignore = "needs real servers: scripts/install-test-servers, then cargo test -- --include-ignored"]
fn sink_soft_rejects() {
    for (cmd, failure) in [
        ("MAIL", Failure::MailRejected),
        ("RCPT", Failure::NoRecipientAccepted),
        ("DATA", Failure::DataRejected),
        (".", Failure::BodyRejected),
    ] {
        let (report, reason) = sink_fault(SinkOptions { soft_reject: Some(cmd), ..SinkOptions::default() });
        assert_eq!(report.outcome, Outcome::Rejected, "-r {cmd}: {report:?}");
        assert_eq!(report.failure, Some(failure), "-r {cmd}: {report:?}");
        assert!(report.is_temporary(), "-r {cmd}: {report:?}");
        assert_eq!(report.recipients[0].status, RecipientStatus::TemporaryFailure);
        // A refusal is not the end of the session.
        assert_eq!(reason, None, "-r {cmd}");
    }
}

fn aio_options(server: &Aiosmtpd, tls: TlsMode) -> Options {
    let mut o = options(server.port());
    o.session.tls = tls;
    o.ca_file = Some(server.ca_pem_path().to_path_buf());
    o
}

fn aio_with_auth(starttls: bool, implicit_tls: bool) -> Aiosmtpd {
    aiosmtpd(AioOptions {
        starttls,
        implicit_tls,
        auth: Some(("alice".into(), "s3cret".into())),
        ..AioOptions::default()
    })
}

/// aiosmtpd keeps the body byte for byte (un-stuffed): it must be exactly what the client meant to send.
fn assert_stored_exactly(got: &ReceivedMessage, body: &[u8]) {
    assert_eq!(String::from_utf8_lossy(&got.body), String::from_utf8_lossy(&on_the_wire(body)));
}

#[test]
#[ignore = "needs real servers: scripts/install-test-servers, then cargo test -- --include-ignored"]
fn aiosmtpd_starttls_auth_plain() {
    let server = aio_with_auth(true, false);
    let opts =
        aio_options(&server, TlsMode::Required).with_credentials(Credentials::password("alice", "s3cret"));
    smol::block_on(async {
        let mut client = SmtpClient::connect(&opts).await.unwrap();
        assert!(client.is_tls());
        for body in bodies() {
            assert_sent(&send(&mut client, &["bob@example.org"], &body).await);
        }
        client.quit().await.unwrap();
    });
    let got = server.wait_for(bodies().len(), WAIT);
    assert_eq!(got.len(), bodies().len());
    for (msg, body) in got.iter().zip(bodies()) {
        assert_stored_exactly(msg, &body);
        let raw = String::from_utf8_lossy(&msg.raw);
        assert!(raw.contains(r#""tls": true"#) && raw.contains(r#""authenticated": true"#), "{raw}");
    }
}

#[test]
#[ignore = "needs real servers: scripts/install-test-servers, then cargo test -- --include-ignored"]
fn aiosmtpd_auth_login() {
    // The core always prefers PLAIN when offered, so a proxy hides PLAIN from the EHLO reply (plaintext
    // AUTH, allowed for this loopback test).
    let server = aiosmtpd(AioOptions {
        auth: Some(("alice".into(), "s3cret".into())),
        auth_require_tls: false,
        ..AioOptions::default()
    });
    let proxy = LoginOnlyProxy::start(server.port());
    let mut opts = options(proxy.port).with_credentials(Credentials::password("alice", "s3cret"));
    opts.session.tls = TlsMode::None;
    opts.session.allow_plaintext_auth = true;
    smol::block_on(async {
        let mut client = SmtpClient::connect(&opts).await.unwrap();
        let caps = client.capabilities().unwrap();
        let offered: Vec<_> = caps.auth_mechanisms().map(|m| m.to_string()).collect();
        assert_eq!(offered, ["LOGIN"]);
        assert_sent(&send(&mut client, &["bob@example.org"], TRICKY).await);
        client.quit().await.unwrap();
    });
    let got = server.wait_for(1, WAIT);
    assert_stored_exactly(&got[0], TRICKY);
    assert!(String::from_utf8_lossy(&got[0].raw).contains(r#""authenticated": true"#));
    assert!(proxy.client_lines().iter().any(|l| l == "AUTH LOGIN"));
}

#[test]
#[ignore = "needs real servers: scripts/install-test-servers, then cargo test -- --include-ignored"]
fn aiosmtpd_wrong_password() {
    let server = aio_with_auth(true, false);
    let opts =
        aio_options(&server, TlsMode::Required).with_credentials(Credentials::password("alice", "wrong"));
    let err = smol::block_on(SmtpClient::connect(&opts)).unwrap_err();
    match err {
        Error::Session(ProtoError::AuthFailed { reply: Some(reply), .. }) => {
            assert_eq!(reply.code(), 535)
        }
        other => panic!("{other:?}"),
    }
}

#[test]
#[ignore = "needs real servers: scripts/install-test-servers, then cargo test -- --include-ignored"]
fn aiosmtpd_implicit_tls() {
    let server = aio_with_auth(false, true);
    let opts =
        aio_options(&server, TlsMode::Implicit).with_credentials(Credentials::password("alice", "s3cret"));
    smol::block_on(async {
        let mut client = SmtpClient::connect(&opts).await.unwrap();
        assert!(client.is_tls());
        assert_sent(&send(&mut client, &["bob@example.org"], TRICKY).await);
        client.quit().await.unwrap();
    });
    assert_stored_exactly(&server.wait_for(1, WAIT)[0], TRICKY);
}

#[test]
#[ignore = "needs real servers: scripts/install-test-servers, then cargo test -- --include-ignored"]
fn aiosmtpd_refused_recipients() {
    let server = aiosmtpd(AioOptions::default());
    smol::block_on(async {
        let mut client = SmtpClient::connect(&options(server.port())).await.unwrap();
        let to = ["bob@example.org", "reject@example.org", "tempfail@example.org"];
        let report = send(&mut client, &to, TRICKY).await;
        assert_eq!(report.outcome, Outcome::Sent, "{report:?}");
        let status: Vec<_> = report.recipients.iter().map(|r| r.status).collect();
        assert_eq!(
            status,
            [
                RecipientStatus::Delivered,
                RecipientStatus::PermanentFailure,
                RecipientStatus::TemporaryFailure
            ]
        );
        let codes: Vec<_> =
            report.recipients.iter().map(|r| r.rcpt_reply.as_ref().map(|r| r.code())).collect();
        assert_eq!(codes, [Some(250), Some(550), Some(451)]);
        client.quit().await.unwrap();
    });
    let got = server.wait_for(1, WAIT);
    assert_eq!(got[0].recipients, ["bob@example.org"]);
    assert_stored_exactly(&got[0], TRICKY);
}

/// Records what the client writes, for checking which commands went out.
struct Tap<S> {
    inner: S,
    written: Arc<Mutex<Vec<u8>>>,
}

impl<S: futures_lite::AsyncRead + Unpin> futures_lite::AsyncRead for Tap<S> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: futures_lite::AsyncWrite + Unpin> futures_lite::AsyncWrite for Tap<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let poll = Pin::new(&mut self.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = poll {
            self.written.lock().unwrap().extend_from_slice(&buf[..n]);
        }
        poll
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_close(cx)
    }
}

/// Connects to Postfix through a [`Tap`]; the second value holds every byte the client wrote.
async fn tapped(server: &Postfix) -> (SmtpClient<Tap<TcpStream>>, Arc<Mutex<Vec<u8>>>) {
    let stream = TcpStream::connect(server.addr()).await.unwrap();
    let written = Arc::new(Mutex::new(Vec::new()));
    let tap = Tap { inner: stream, written: written.clone() };
    let client = SmtpClient::from_stream(tap, &options(server.port())).await.unwrap();
    (client, written)
}

/// The command lines the client wrote, skipping DATA bodies and BDAT chunks.
fn commands(written: &Mutex<Vec<u8>>) -> Vec<String> {
    let written = written.lock().unwrap();
    let mut rest = &written[..];
    let mut commands = Vec::new();
    let mut in_data = false;
    while let Some(end) = rest.windows(2).position(|w| w == b"\r\n") {
        let line = String::from_utf8_lossy(&rest[..end]).into_owned();
        rest = &rest[end + 2..];
        if in_data {
            in_data = line != ".";
            continue;
        }
        if let Some(size) = line.strip_prefix("BDAT ") {
            let size: usize = size.split(' ').next().unwrap().parse().unwrap();
            rest = &rest[size..];
        }
        // Pipelined: the reply to DATA is not awaited here, the body follows.
        in_data = line == "DATA";
        commands.push(line);
    }
    commands
}

#[test]
#[ignore = "needs real servers: scripts/install-test-servers, then cargo test -- --include-ignored"]
fn postfix_bdat() {
    const LEN: usize = 200 * 1024;
    let server = postfix();
    let written = smol::block_on(async {
        let (mut client, written) = tapped(&server).await;
        assert!(client.capabilities().unwrap().chunking());
        let mut body = b"Subject: chunks\r\n\r\n".to_vec();
        body.extend(GeneratedBody::expected(LEN));
        let report = client.send(envelope(&["bob@example.org"]), &body[..]).await.unwrap();
        assert_sent(&report);
        client.quit().await.unwrap();
        written
    });
    let sent = commands(&written);
    let bdat: Vec<_> = sent.iter().filter(|l| l.starts_with("BDAT ")).collect();
    assert!(bdat.len() > 1, "{sent:?}");
    assert!(bdat.last().unwrap().ends_with(" LAST"), "{sent:?}");
    assert!(!sent.iter().any(|l| l == "DATA"), "{sent:?}");
    let got = server.wait_for_mailbox("bob", 1, WAIT);
    let mut expected = b"Subject: chunks\n\n".to_vec();
    expected.extend(stored_with_lf(&GeneratedBody::expected(LEN)));
    assert!(got[0].body == expected, "the BDAT body differs");
}

#[test]
#[ignore = "needs real servers: scripts/install-test-servers, then cargo test -- --include-ignored"]
fn postfix_dsn_request() {
    let server = postfix();
    let bob = Recipient::new(ForwardPath::parse("bob@example.org").unwrap())
        .notify(Notify::on(true, true, false).unwrap())
        .orcpt(OrigRecipient::rfc822("bob@example.org").unwrap());
    let env = Envelope::new(ReversePath::parse("alice@example.org").unwrap(), [bob])
        .unwrap()
        .ret(Ret::Hdrs)
        .envid(EnvId::new("smol-dsn-42").unwrap());
    let body = b"Subject: dsn\r\n\r\nplease confirm\r\n";
    let written = smol::block_on(async {
        let (mut client, written) = tapped(&server).await;
        let report = client.send(env, &body[..]).await.unwrap();
        assert_sent(&report);
        assert!(report.warnings.is_empty(), "{report:?}");
        client.quit().await.unwrap();
        written
    });
    let sent = commands(&written);
    assert!(
        sent.iter().any(|l| l.starts_with("MAIL FROM:<alice@example.org>")
            && l.contains("RET=HDRS")
            && l.contains("ENVID=smol-dsn-42")),
        "{sent:?}"
    );
    assert!(
        sent.iter().any(|l| l.starts_with("RCPT TO:<bob@example.org>")
            && l.contains("NOTIFY=SUCCESS,FAILURE")
            && l.contains("ORCPT=rfc822;bob@example.org")),
        "{sent:?}"
    );
    assert_eq!(server.wait_for_mailbox("bob", 1, WAIT)[0].body, stored_with_lf(body));
    // NOTIFY=SUCCESS: Postfix reports the delivery to alice, with the ENVID and ORCPT we gave.
    let dsn = &server.wait_for_mailbox("alice", 1, WAIT)[0];
    let dsn = String::from_utf8_lossy(&dsn.raw);
    assert!(dsn.contains("Original-Envelope-Id: smol-dsn-42"), "{dsn}");
    assert!(dsn.contains("Original-Recipient: rfc822;bob@example.org"), "{dsn}");
}

#[test]
#[ignore = "needs real servers: scripts/install-test-servers, then cargo test -- --include-ignored"]
fn postfix_utf8_address() {
    let server = postfix();
    let body = b"Subject: hej\r\n\r\nhej J\xc3\xb6rg\r\n";
    smol::block_on(async {
        let mut client = SmtpClient::connect(&options(server.port())).await.unwrap();
        let env =
            envelope(&["jörg@example.org"]).body_type(smtp_smol::smtp_proto::command::BodyType::EightBitMime);
        let report = client.send(env, &body[..]).await.unwrap();
        assert_sent(&report);
        client.quit().await.unwrap();
    });
    let got = server.wait_for_mailbox("jörg", 1, WAIT);
    assert_eq!(got[0].recipients, ["jörg@example.org"]);
    assert_eq!(got[0].body, stored_with_lf(body));
}

/// A TCP proxy on 127.0.0.1 that removes PLAIN from the server's `AUTH` capability line and records the
/// client's lines. Plaintext only; one connection.
struct LoginOnlyProxy {
    port: u16,
    client_lines: Arc<Mutex<Vec<String>>>,
}

impl LoginOnlyProxy {
    fn start(upstream: u16) -> LoginOnlyProxy {
        use std::io::{BufRead, BufReader, Write};
        use std::net::{TcpListener, TcpStream};

        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let client_lines = Arc::new(Mutex::new(Vec::new()));
        let lines = client_lines.clone();
        std::thread::spawn(move || {
            let Ok((client, _)) = listener.accept() else {
                return;
            };
            let server = TcpStream::connect(("127.0.0.1", upstream)).unwrap();
            for s in [&client, &server] {
                s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
            }
            // Server to client, line by line, rewriting the AUTH capability.
            let (mut to_client, from_server) = (client.try_clone().unwrap(), server.try_clone().unwrap());
            let down = std::thread::spawn(move || {
                let mut reader = BufReader::new(from_server);
                let mut line = String::new();
                while reader.read_line(&mut line).is_ok_and(|n| n > 0) {
                    let upper = line.to_ascii_uppercase();
                    let auth = upper
                        .get(3..)
                        .is_some_and(|rest| rest.starts_with("-AUTH ") || rest.starts_with(" AUTH "));
                    let out = if auth { format!("{}AUTH LOGIN\r\n", &line[..4]) } else { line.clone() };
                    if to_client.write_all(out.as_bytes()).is_err() {
                        break;
                    }
                    line.clear();
                }
                let _ = to_client.shutdown(std::net::Shutdown::Write);
            });
            // Client to server, as is, recording lines.
            let mut to_server = server;
            let mut reader = BufReader::new(client);
            let mut line = String::new();
            while reader.read_line(&mut line).is_ok_and(|n| n > 0) {
                lines.lock().unwrap().push(line.trim_end().to_owned());
                if to_server.write_all(line.as_bytes()).is_err() {
                    break;
                }
                line.clear();
            }
            let _ = to_server.shutdown(std::net::Shutdown::Write);
            let _ = down.join();
        });
        LoginOnlyProxy { port, client_lines }
    }

    fn client_lines(&self) -> Vec<String> {
        self.client_lines.lock().unwrap().clone()
    }
}
