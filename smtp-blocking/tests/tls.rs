//! TLS against a scripted rustls server on 127.0.0.1, with a test CA and a "localhost"/127.0.0.1
//! certificate made by rcgen at test time: STARTTLS, AUTH over it, implicit TLS, certificate failures,
//! STARTTLS required but missing or refused, and STARTTLS response injection.

mod common;

use std::error::Error as _;

use common::capture::capture;
use common::{Peer, Pki, pki, serve, tls_options};
use smtp_blocking::{Error, SmtpClient};
use smtp_proto::body::unstuff;
use smtp_proto::sasl::Credentials;
use smtp_proto::{Envelope, Outcome, TlsMode};

const EHLO_STARTTLS: &str = "250-mx.test\r\n250-PIPELINING\r\n250 STARTTLS\r\n";
const EHLO_AUTH: &str = "250-mx.test\r\n250-PIPELINING\r\n250 AUTH PLAIN\r\n";

fn envelope() -> Envelope {
    Envelope::parse("alice@example.org", &["bob@example.org"]).expect("valid addresses")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The server's side up to the TLS handshake after STARTTLS.
fn plaintext_until_starttls(p: &mut Peer, pki_server: std::sync::Arc<rustls::ServerConfig>) {
    p.send("220 mx.test ESMTP\r\n");
    p.expect("EHLO client.test");
    p.send(EHLO_STARTTLS);
    p.expect("STARTTLS");
    p.send("220 2.0.0 ready to start TLS\r\n");
    p.starttls(pki_server).expect("server handshake");
}

fn assert_tls_error(result: Result<SmtpClient, Error>, what: &str) {
    match result {
        Err(e @ Error::Tls(_)) => {
            let source = e.source().expect("a source");
            let rustls_error = source
                .downcast_ref::<rustls::Error>()
                .unwrap_or_else(|| panic!("source is not a rustls error: {source:?}"));
            let shown = format!("{rustls_error:?}");
            assert!(shown.contains(what), "{shown}");
        }
        other => panic!("expected a TLS error, got {other:?}"),
    }
}

#[test]
fn starttls_then_ehlo_again_then_auth_plain_then_mail() {
    let pki = pki();
    let server_config = pki.server.clone();
    let (port, server) = serve(move |p: &mut Peer| {
        plaintext_until_starttls(p, server_config);
        let plaintext_len = p.received.len();
        // RFC 3207 §4.2: everything learnt before TLS is forgotten; the client says EHLO again.
        p.expect("EHLO client.test");
        p.send(EHLO_AUTH);
        // base64("\0user\0pass")
        p.expect("AUTH PLAIN AHVzZXIAcGFzcw==");
        p.send("235 2.7.0 authenticated\r\n");
        let messages = p.auto(EHLO_AUTH);
        (messages, plaintext_len)
    });
    let options =
        tls_options(port, &pki, TlsMode::Required).with_credentials(Credentials::password("user", "pass"));
    let ((), logs) = capture(|| {
        let mut client = SmtpClient::connect(&options).expect("connect");
        assert!(client.is_tls());
        let caps = client.capabilities().expect("capabilities after TLS");
        assert!(!caps.starttls(), "capabilities are the ones from inside TLS");
        let report = client.send(envelope(), std::io::Cursor::new(&b"secret\r\n"[..])).expect("send");
        assert_eq!(report.outcome, Outcome::Sent);
        client.quit().expect("quit");
    });
    // With DEBUG enabled the dialogue is logged, AUTH redacted and the body only counted.
    let logs = logs.join("\n");
    assert!(logs.contains("C: STARTTLS"), "{logs}");
    assert!(logs.contains("C: AUTH PLAIN"), "{logs}");
    assert!(logs.contains("S: 235"), "{logs}");
    assert!(!logs.contains("AHVzZXIAcGFzcw=="), "credentials in the logs: {logs}");
    assert!(!logs.contains("secret"), "body in the logs: {logs}");
    let ((messages, plaintext_len), received) = server.join().expect("server");
    assert_eq!(unstuff(&messages[0].wire).expect("well-formed"), b"secret\r\n");
    let plaintext = text(&received[..plaintext_len]);
    assert_eq!(plaintext, "EHLO client.test\r\nSTARTTLS\r\n");
}

#[test]
fn implicit_tls_and_close_notify_on_quit() {
    let pki = pki();
    let server_config = pki.server.clone();
    let (port, server) = serve(move |p: &mut Peer| {
        p.starttls(server_config).expect("server handshake");
        p.send("220 mx.test ESMTP\r\n");
        let messages = p.auto(EHLO_AUTH);
        // The client ends TLS with close_notify: a clean end of stream.
        let end = p.read_end();
        (messages, end.map_err(|e| e.kind()))
    });
    let options = tls_options(port, &pki, TlsMode::Implicit);
    let mut client = SmtpClient::connect(&options).expect("connect");
    assert!(client.is_tls());
    let report = client.send(envelope(), std::io::Cursor::new(&b"over TLS\r\n"[..])).expect("send");
    assert_eq!(report.outcome, Outcome::Sent);
    client.quit().expect("quit");
    let ((messages, end), _) = server.join().expect("server");
    assert_eq!(messages.len(), 1);
    assert_eq!(end, Ok(0));
}

#[test]
fn implicit_tls_checks_the_name_given_by_tls_name() {
    let pki = pki();
    let server_config = pki.server.clone();
    let (port, server) = serve(move |p: &mut Peer| {
        p.starttls(server_config).expect("server handshake");
        p.send("220 mx.test\r\n");
        p.auto(EHLO_AUTH)
    });
    let mut options = tls_options(port, &pki, TlsMode::Implicit);
    options.tls_name = Some("localhost".into());
    let client = SmtpClient::connect(&options).expect("connect");
    client.quit().expect("quit");
    server.join().expect("server");
}

fn other_ca(pki: &Pki) -> Pki {
    let other = common::pki();
    assert_ne!(other.ca_file, pki.ca_file);
    other
}

#[test]
fn implicit_tls_with_an_unknown_ca_fails_at_connect() {
    let pki = pki();
    let wrong = other_ca(&pki);
    let server_config = pki.server.clone();
    let (port, server) = serve(move |p: &mut Peer| p.starttls(server_config).is_err());
    assert_tls_error(SmtpClient::connect(&tls_options(port, &wrong, TlsMode::Implicit)), "UnknownIssuer");
    let (server_failed, _) = server.join().expect("server");
    assert!(server_failed, "the server saw the client's alert");
}

#[test]
fn starttls_with_an_unknown_ca_fails_at_connect() {
    let pki = pki();
    let wrong = other_ca(&pki);
    let server_config = pki.server.clone();
    let (port, server) = serve(move |p: &mut Peer| {
        p.send("220 mx.test\r\n");
        p.expect("EHLO");
        p.send(EHLO_STARTTLS);
        p.expect("STARTTLS");
        p.send("220 go ahead\r\n");
        p.starttls(server_config).is_err()
    });
    assert_tls_error(SmtpClient::connect(&tls_options(port, &wrong, TlsMode::Required)), "UnknownIssuer");
    let (server_failed, _) = server.join().expect("server");
    assert!(server_failed);
}

#[test]
fn a_certificate_for_another_name_fails() {
    let pki = pki();
    let server_config = pki.server.clone();
    let (port, server) = serve(move |p: &mut Peer| p.starttls(server_config).is_err());
    let mut options = tls_options(port, &pki, TlsMode::Implicit);
    options.tls_name = Some("mail.example.org".into());
    assert_tls_error(SmtpClient::connect(&options), "NotValidForName");
    server.join().expect("server");
}

#[test]
fn starttls_required_but_not_offered() {
    let pki = pki();
    let (port, server) = serve(|p: &mut Peer| {
        p.send("220 mx.test\r\n");
        p.expect("EHLO");
        p.send("250-mx.test\r\n250 PIPELINING\r\n");
        // The client gives up politely.
        if p.try_line().is_some_and(|l| l == "QUIT") {
            p.send("221 bye\r\n");
        }
    });
    match SmtpClient::connect(&tls_options(port, &pki, TlsMode::Required)) {
        Err(Error::Session(smtp_proto::Error::TlsUnavailable(None))) => {}
        other => panic!("{other:?}"),
    }
    let ((), received) = server.join().expect("server");
    assert!(!text(&received).contains("MAIL"));
}

#[test]
fn starttls_refused_when_required() {
    let pki = pki();
    let (port, server) = serve(|p: &mut Peer| {
        p.send("220 mx.test\r\n");
        p.expect("EHLO");
        p.send(EHLO_STARTTLS);
        p.expect("STARTTLS");
        p.send("454 4.7.0 TLS not available\r\n");
        if p.try_line().is_some_and(|l| l == "QUIT") {
            p.send("221 bye\r\n");
        }
    });
    match SmtpClient::connect(&tls_options(port, &pki, TlsMode::Required)) {
        Err(Error::Session(smtp_proto::Error::TlsUnavailable(Some(reply)))) => {
            assert_eq!(reply.code(), 454)
        }
        other => panic!("{other:?}"),
    }
    server.join().expect("server");
}

#[test]
fn opportunistic_tls_goes_on_in_plaintext_when_not_offered() {
    let pki = pki();
    let (port, server) = serve(|p: &mut Peer| {
        p.send("220 mx.test\r\n");
        p.auto("250-mx.test\r\n250 PIPELINING\r\n")
    });
    let mut client = SmtpClient::connect(&tls_options(port, &pki, TlsMode::Opportunistic)).expect("connect");
    assert!(!client.is_tls());
    let report = client.send(envelope(), std::io::Cursor::new(&b"x\r\n"[..])).expect("send");
    assert_eq!(report.outcome, Outcome::Sent);
    client.quit().expect("quit");
    server.join().expect("server");
}

#[test]
fn starttls_response_injection_is_refused() {
    let pki = pki();
    let (port, server) = serve(|p: &mut Peer| {
        p.send("220 mx.test\r\n");
        p.expect("EHLO");
        p.send(EHLO_STARTTLS);
        p.expect("STARTTLS");
        // A man in the middle appends a reply that would be read as if it came over TLS.
        p.send("220 go\r\n250 fake\r\n");
        p.wait_close();
    });
    match SmtpClient::connect(&tls_options(port, &pki, TlsMode::Required)) {
        Err(Error::Session(smtp_proto::Error::StartTlsInjection)) => {}
        other => panic!("{other:?}"),
    }
    server.join().expect("server");
}

#[test]
fn wrong_password_is_auth_failed_with_the_reply() {
    let pki = pki();
    let server_config = pki.server.clone();
    let (port, server) = serve(move |p: &mut Peer| {
        plaintext_until_starttls(p, server_config);
        p.expect("EHLO");
        p.send(EHLO_AUTH);
        p.expect("AUTH PLAIN");
        p.send("535 5.7.8 authentication credentials invalid\r\n");
        if p.try_line().is_some_and(|l| l == "QUIT") {
            p.send("221 bye\r\n");
        }
    });
    let options =
        tls_options(port, &pki, TlsMode::Required).with_credentials(Credentials::password("user", "wrong"));
    match SmtpClient::connect(&options) {
        Err(Error::Session(smtp_proto::Error::AuthFailed { reply: Some(r), .. })) => {
            assert_eq!(r.code(), 535)
        }
        other => panic!("{other:?}"),
    }
    server.join().expect("server");
}

#[test]
fn unreadable_ca_file_is_a_setup_error() {
    let mut options = common::options(25);
    options.session.tls = TlsMode::Required;
    options.ca_file = Some("/nonexistent/ca.pem".into());
    assert!(matches!(
        SmtpClient::connect(&options),
        Err(Error::TlsSetup(smtp_transport::TlsSetupError::CaFile(..)))
    ));
}

#[test]
fn auth_login_when_it_is_all_the_server_offers() {
    let pki = pki();
    let server_config = pki.server.clone();
    let (port, server) = serve(move |p: &mut Peer| {
        plaintext_until_starttls(p, server_config);
        p.expect("EHLO");
        p.send("250-mx.test\r\n250 AUTH LOGIN\r\n");
        p.expect("AUTH LOGIN");
        p.send("334 VXNlcm5hbWU6\r\n");
        let user = p.line();
        p.send("334 UGFzc3dvcmQ6\r\n");
        let pass = p.line();
        p.send("235 2.7.0 ok\r\n");
        p.expect("QUIT");
        p.send("221 bye\r\n");
        (user, pass)
    });
    let options =
        tls_options(port, &pki, TlsMode::Required).with_credentials(Credentials::password("user", "pass"));
    let client = SmtpClient::connect(&options).expect("connect");
    client.quit().expect("quit");
    let ((user, pass), _) = server.join().expect("server");
    // base64("user"), base64("pass")
    assert_eq!((user.as_str(), pass.as_str()), ("dXNlcg==", "cGFzcw=="));
}
