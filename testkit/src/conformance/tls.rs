//! TLS against the scripted server, with its test CA and a `localhost`/127.0.0.1 certificate made by rcgen
//! at test time: STARTTLS, AUTH over it, implicit TLS, certificate failures, opportunistic TLS, the
//! handshake deadline.

use std::error::Error as _;
use std::time::Duration;

use smtp_proto::internal::unstuff;
use smtp_proto::sasl::Credentials;
use smtp_proto::{Error as Core, Outcome, TlsMode};
use smtp_transport::{Error, Options};

use super::{
    AUTH_ALICE, Adapter, Body, EHLO_AUTH, EHLO_STARTTLS, GREETING, capture, code, envelope, options,
    other_ca, shared, tls_options, to_the_body,
};
use crate::scripted::{Script, ScriptedServer};

const EHLO_STARTTLS_PIPELINING: &str = "250-mx.test\r\n250-PIPELINING\r\n250 STARTTLS\r\n";
const EHLO_AUTH_PIPELINING: &str = "250-mx.test\r\n250-PIPELINING\r\n250 AUTH PLAIN\r\n";

/// The rustls error inside a TLS failure, shown with `Debug`.
#[track_caller]
fn rustls_error<A>(result: Result<A, Error>) -> String {
    match result {
        Err(e @ Error::Tls(_)) => {
            let source = e.source().expect("a source");
            let rustls_error = source
                .downcast_ref::<rustls::Error>()
                .unwrap_or_else(|| panic!("the source is not a rustls error: {source:?}"));
            format!("{rustls_error:?}")
        }
        Err(other) => panic!("expected a TLS error, got {other:?}"),
        Ok(_) => panic!("expected a TLS error, got a session"),
    }
}

/// Implicit TLS, trusting the scripted server's CA.
fn implicit_options(server: &ScriptedServer) -> Options {
    let mut o = options(server);
    o.session.tls = TlsMode::Implicit;
    o.ca_file = Some(server.ca_pem_path().to_owned());
    o
}

/// STARTTLS, then (RFC 3207 §4.2) EHLO again with everything learnt before forgotten, AUTH PLAIN inside
/// TLS only, then a pipelined transaction. With DEBUG enabled the dialogue is logged, AUTH redacted and
/// the body only counted.
pub fn starttls_then_ehlo_again_then_auth_plain_then_mail<A: Adapter>() {
    let _serial = shared();
    let server = ScriptedServer::start(
        Script::new()
            .send(GREETING)
            .on("EHLO client.test", EHLO_STARTTLS_PIPELINING)
            .on("STARTTLS", "220 2.0.0 ready to start TLS\r\n")
            .starttls()
            .on("EHLO client.test", EHLO_AUTH_PIPELINING)
            .on(AUTH_ALICE, "235 2.7.0 authenticated\r\n")
            .expect_line("MAIL FROM:<alice@example.org>")
            .expect_line("RCPT TO:<bob@example.org>")
            .expect_line("DATA")
            .send("250 ok\r\n250 ok\r\n354 go\r\n")
            .expect_data_end()
            .send("250 queued\r\n")
            .on("QUIT", "221 bye\r\n")
            .read_to_eof(),
    );
    let options = tls_options(&server);
    let ((), logs) = capture(|| {
        let mut client = A::connect(&options).expect("connect");
        assert!(client.is_tls());
        let caps = client.capabilities().expect("capabilities after TLS");
        assert!(!caps.starttls(), "the capabilities are the ones from inside TLS");
        let report = client.send(envelope(&["bob@example.org"]), Body::bytes("secret\r\n")).expect("send");
        assert_eq!(report.outcome, Outcome::Sent, "{report:?}");
        client.quit().expect("quit");
    });
    let logs = logs.join("\n");
    assert!(logs.contains("C: STARTTLS"), "{logs}");
    assert!(logs.contains("C: AUTH PLAIN"), "{logs}");
    assert!(logs.contains("S: 235"), "{logs}");
    assert!(!logs.contains("AGFsaWNlAHMzY3JldA=="), "credentials in the logs: {logs}");
    assert!(!logs.contains("secret"), "body in the logs: {logs}");
    let rec = server.finish();
    assert_eq!(rec.plaintext, b"EHLO client.test\r\nSTARTTLS\r\n");
    assert_eq!(
        rec.commands,
        [
            "EHLO client.test",
            "STARTTLS",
            "EHLO client.test",
            AUTH_ALICE,
            "MAIL FROM:<alice@example.org>",
            "RCPT TO:<bob@example.org>",
            "DATA",
            "QUIT"
        ]
    );
    assert_eq!(unstuff(&rec.data[0]).expect("well-formed"), b"secret\r\n");
}

/// Implicit TLS (RFC 8314) with AUTH: TLS from the first byte, no STARTTLS, one AUTH; QUIT ends TLS with a
/// close_notify.
pub fn implicit_tls_with_auth_and_close_notify_on_quit<A: Adapter>() {
    let _serial = shared();
    let server = ScriptedServer::start(
        Script::new()
            .starttls()
            .send(GREETING)
            .on("EHLO client.test", EHLO_AUTH)
            .on(AUTH_ALICE, "235 2.7.0 ok\r\n")
            .on("MAIL", "250 ok\r\n")
            .on("RCPT", "250 ok\r\n")
            .on("DATA", "354 go\r\n")
            .expect_data_end()
            .send("250 queued\r\n")
            .on("QUIT", "221 bye\r\n")
            .read_to_eof(),
    );
    let o = implicit_options(&server).with_credentials(Credentials::password("alice", "s3cret"));
    let mut client = A::connect(&o).expect("connect");
    assert!(client.is_tls());
    let body = "Subject: secret\r\n\r\nover TLS\r\n";
    let report = client.send(envelope(&["bob@example.org"]), Body::bytes(body)).expect("send");
    assert_eq!(report.outcome, Outcome::Sent, "{report:?}");
    client.quit().expect("quit");
    let rec = server.finish();
    assert!(rec.plaintext.is_empty(), "{rec}");
    assert!(rec.close_notify, "no close_notify");
    assert!(!rec.sent_command("STARTTLS"));
    assert_eq!(rec.commands.iter().filter(|c| c.starts_with("AUTH PLAIN")).count(), 1);
    assert_eq!(unstuff(&rec.data[0]).expect("well-formed"), body.as_bytes());
}

/// The certificate is checked against `tls_name` when it is set.
pub fn implicit_tls_checks_the_name_given_by_tls_name<A: Adapter>() {
    let _serial = shared();
    let server = ScriptedServer::start(
        Script::new().starttls().send(GREETING).on("EHLO", EHLO_AUTH).on("QUIT", "221 bye\r\n").read_to_eof(),
    );
    let mut o = implicit_options(&server);
    o.tls_name = Some("localhost".into());
    A::connect(&o).expect("connect").quit().expect("quit");
    server.finish();
}

/// Implicit TLS to a server whose CA the client does not trust: `Error::Tls` (UnknownIssuer); the server
/// sees the client's alert.
pub fn implicit_tls_with_an_unknown_ca_fails_at_connect<A: Adapter>() {
    let _serial = shared();
    let server = ScriptedServer::start(Script::new().starttls());
    let (_dir, wrong) = other_ca();
    let mut o = implicit_options(&server);
    o.ca_file = Some(wrong);
    let shown = rustls_error(A::connect(&o));
    assert!(shown.contains("UnknownIssuer"), "{shown}");
    let rec = server.join();
    assert!(rec.tls_error.is_some(), "the server did not see the handshake fail");
}

/// The same over STARTTLS: `Error::Tls` (UnknownIssuer), no AUTH, no mail.
pub fn starttls_with_an_unknown_ca_fails_at_connect<A: Adapter>() {
    let _serial = shared();
    let server = ScriptedServer::start(
        Script::new().send(GREETING).on("EHLO", EHLO_STARTTLS).on("STARTTLS", "220 go ahead\r\n").starttls(),
    );
    let (_dir, wrong) = other_ca();
    let mut o = tls_options(&server);
    o.ca_file = Some(wrong);
    let shown = rustls_error(A::connect(&o));
    assert!(shown.contains("UnknownIssuer"), "{shown}");
    let rec = server.join();
    assert!(rec.tls_error.is_some(), "the server did not see the handshake fail");
    assert!(!rec.sent_command("AUTH") && !rec.sent_command("MAIL"), "{rec}");
}

/// A certificate for `localhost` when `mail.example.org` is expected: `Error::Tls` (NotValidForName).
pub fn a_certificate_for_another_name_fails<A: Adapter>() {
    let _serial = shared();
    let server = ScriptedServer::start(Script::new().starttls());
    let mut o = implicit_options(&server);
    o.tls_name = Some("mail.example.org".into());
    let shown = rustls_error(A::connect(&o));
    assert!(shown.contains("NotValidForName"), "{shown}");
    server.join();
}

/// Opportunistic TLS, STARTTLS not offered: the session goes on in plaintext.
pub fn opportunistic_tls_goes_on_in_plaintext_when_not_offered<A: Adapter>() {
    let _serial = shared();
    let server = ScriptedServer::start(
        to_the_body("250-mx.test\r\n250 PIPELINING\r\n")
            .expect_data_end()
            .send("250 queued\r\n")
            .on("QUIT", "221 bye\r\n")
            .read_to_eof(),
    );
    let mut o = options(&server);
    o.session.tls = TlsMode::Opportunistic;
    o.ca_file = Some(server.ca_pem_path().to_owned());
    let mut client = A::connect(&o).expect("connect");
    assert!(!client.is_tls());
    let report = client.send(envelope(&["bob@example.org"]), Body::bytes("x\r\n")).expect("send");
    assert_eq!(report.outcome, Outcome::Sent, "{report:?}");
    client.quit().expect("quit");
    server.finish();
}

/// A wrong password: `AuthFailed` with the 535; QUIT, no mail.
pub fn wrong_password_is_auth_failed_with_the_reply<A: Adapter>() {
    let _serial = shared();
    let server = ScriptedServer::start(
        Script::new()
            .send(GREETING)
            .on("EHLO", EHLO_STARTTLS)
            .on("STARTTLS", "220 go ahead\r\n")
            .starttls()
            .on("EHLO", EHLO_AUTH)
            .on("AUTH PLAIN", "535 5.7.8 authentication credentials invalid\r\n")
            .on("QUIT", "221 bye\r\n")
            .read_to_eof(),
    );
    let o = tls_options(&server).with_credentials(Credentials::password("alice", "wrong"));
    match A::connect(&o) {
        Err(Error::Session(Core::AuthFailed { reply, .. })) => assert_eq!(code(&reply), Some(535)),
        Err(other) => panic!("{other:?}"),
        Ok(_) => panic!("authenticated with a wrong password"),
    }
    let rec = server.finish();
    assert!(!rec.sent_command("MAIL"));
}

/// A CA file that cannot be read: `Error::TlsSetup`, before any connection.
pub fn unreadable_ca_file_is_a_setup_error<A: Adapter>() {
    let mut o = super::options_for(25);
    o.session.tls = TlsMode::Required;
    o.ca_file = Some("/nonexistent/ca.pem".into());
    match A::connect(&o) {
        Err(Error::TlsSetup(smtp_transport::TlsSetupError::CaFile(..))) => {}
        Err(other) => panic!("{other:?}"),
        Ok(_) => panic!("connected"),
    }
}

/// AUTH LOGIN when it is all the server offers, inside TLS.
pub fn auth_login_when_it_is_all_the_server_offers<A: Adapter>() {
    let _serial = shared();
    let server = ScriptedServer::start(
        Script::new()
            .send(GREETING)
            .on("EHLO", EHLO_STARTTLS)
            .on("STARTTLS", "220 go ahead\r\n")
            .starttls()
            .on("EHLO", "250-mx.test\r\n250 AUTH LOGIN\r\n")
            .on("AUTH LOGIN", "334 VXNlcm5hbWU6\r\n")
            .on("dXNlcg==", "334 UGFzc3dvcmQ6\r\n")
            .on("cGFzcw==", "235 2.7.0 ok\r\n")
            .on("QUIT", "221 bye\r\n")
            .read_to_eof(),
    );
    let o = tls_options(&server).with_credentials(Credentials::password("user", "pass"));
    A::connect(&o).expect("connect").quit().expect("quit");
    let rec = server.finish();
    // base64("user"), base64("pass"), exactly.
    assert_eq!(rec.commands[4..6], ["dXNlcg==", "cGFzcw=="]);
}

/// A server that accepts and never speaks, to an implicit-TLS client: the handshake is bounded by
/// `connect_timeout` (as `Options::connect_timeout` says: "DNS + TCP connect (+ the TLS handshake)"), not
/// by the much longer reply timeouts, and fails as a timeout.
pub fn a_silent_implicit_tls_server_times_out_in_the_handshake<A: Adapter>() {
    let _serial = shared();
    let server = ScriptedServer::start(Script::new().read_to_eof());
    let mut o = implicit_options(&server);
    o.connect_timeout = Duration::from_millis(200);
    let started = std::time::Instant::now();
    let err = A::connect(&o).expect_err("connected to a silent server");
    let took = started.elapsed();
    assert!(took < Duration::from_secs(3), "took {took:?} (every reply timeout is 10 s): {err:?}");
    assert_eq!(std::io::Error::from(err).kind(), std::io::ErrorKind::TimedOut);
    server.finish();
}
