//! STARTTLS and implicit TLS against the scripted server, with a CA and a server certificate made by rcgen.

mod common;

use std::sync::OnceLock;

use common::{Action, Pki, Script, Server, esmtp, options};
use smtp_smol::smtp_proto::body::unstuff;
use smtp_smol::smtp_proto::sasl::Credentials;
use smtp_smol::smtp_proto::{Error as ProtoError, TlsMode};
use smtp_smol::{Envelope, Error, Options, Outcome, SmtpClient};

const BODY: &[u8] = b"Subject: secret\r\n\r\nover TLS\r\n";

fn pki() -> &'static Pki {
    static PKI: OnceLock<Pki> = OnceLock::new();
    PKI.get_or_init(Pki::new)
}

fn tls_options(port: u16, tls: TlsMode) -> Options {
    let mut o = options(port);
    o.session.tls = tls;
    o.ca_file = Some(pki().ca_file.clone());
    o
}

fn envelope() -> Envelope {
    Envelope::parse("alice@example.org", &["bob@example.org"]).unwrap()
}

/// The rustls error inside a handshake failure.
fn rustls_error(err: &Error) -> &rustls::Error {
    match err {
        Error::Tls(e) => e
            .get_ref()
            .and_then(|e| e.downcast_ref::<rustls::Error>())
            .unwrap_or_else(|| panic!("no rustls error in {e:?}")),
        other => panic!("expected Error::Tls, got {other:?}"),
    }
}

#[test]
fn starttls_then_auth_plain() {
    let server = Server::start(
        Script::new(esmtp(&["PIPELINING", "STARTTLS", "AUTH PLAIN LOGIN"])).tls(pki().server.clone()),
    );
    let mut opts = tls_options(server.port, TlsMode::Required)
        .with_credentials(Credentials::password("alice", "s3cret"));
    opts.tls_name = Some("localhost".into());
    smol::block_on(async {
        let mut client = SmtpClient::connect(&opts).await.unwrap();
        assert!(client.is_tls());
        // The capabilities are the ones announced inside TLS.
        assert!(!client.capabilities().unwrap().starttls());
        let report = client.send(envelope(), BODY).await.unwrap();
        assert_eq!(report.outcome, Outcome::Sent, "{report:?}");
        client.quit().await.unwrap();
    });
    let rec = server.finish();
    assert_eq!(rec.tls_from, Some(2));
    assert_eq!(
        rec.commands,
        [
            "EHLO client.test",
            "STARTTLS",
            "EHLO client.test",
            "AUTH PLAIN AGFsaWNlAHMzY3JldA==",
            "MAIL FROM:<alice@example.org>",
            "RCPT TO:<bob@example.org>",
            "DATA",
            ".",
            "QUIT"
        ]
    );
    assert_eq!(unstuff(&rec.bodies[0]).unwrap(), BODY);
}

#[test]
fn wrong_password_is_an_auth_failure() {
    let server =
        Server::start(Script::new(esmtp(&["STARTTLS", "AUTH PLAIN LOGIN"])).tls(pki().server.clone()));
    let opts =
        tls_options(server.port, TlsMode::Required).with_credentials(Credentials::password("alice", "wrong"));
    let err = smol::block_on(SmtpClient::connect(&opts)).unwrap_err();
    match err {
        Error::Session(ProtoError::AuthFailed { reply: Some(reply), .. }) => {
            assert_eq!(reply.code(), 535)
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(server.finish().count("MAIL"), 0);
}

#[test]
fn implicit_tls() {
    let mut script = Script::new(esmtp(&["PIPELINING", "AUTH PLAIN"])).tls(pki().server.clone());
    script.implicit_tls = true;
    let server = Server::start(script);
    let opts = tls_options(server.port, TlsMode::Implicit)
        .with_credentials(Credentials::password("alice", "s3cret"));
    smol::block_on(async {
        let mut client = SmtpClient::connect(&opts).await.unwrap();
        assert!(client.is_tls());
        let report = client.send(envelope(), BODY).await.unwrap();
        assert_eq!(report.outcome, Outcome::Sent, "{report:?}");
        client.quit().await.unwrap();
    });
    let rec = server.finish();
    assert_eq!(rec.count("STARTTLS"), 0);
    assert_eq!(rec.count("AUTH PLAIN"), 1);
    assert_eq!(unstuff(&rec.bodies[0]).unwrap(), BODY);
}

#[test]
fn an_unknown_ca_fails_the_handshake() {
    let server = Server::start(Script::new(esmtp(&["STARTTLS"])).tls(pki().server.clone()));
    let mut opts = tls_options(server.port, TlsMode::Required);
    opts.ca_file = Some(Pki::new().ca_file); // another CA
    let err = smol::block_on(SmtpClient::connect(&opts)).unwrap_err();
    assert!(
        matches!(
            rustls_error(&err),
            rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer)
        ),
        "{err:?}"
    );
    server.finish();
}

#[test]
fn a_certificate_for_another_name_fails_the_handshake() {
    let mut script = Script::new(esmtp(&[])).tls(pki().server.clone());
    script.implicit_tls = true;
    let server = Server::start(script);
    let mut opts = tls_options(server.port, TlsMode::Implicit);
    opts.tls_name = Some("mail.example.org".into());
    let err = smol::block_on(SmtpClient::connect(&opts)).unwrap_err();
    assert!(
        matches!(
            rustls_error(&err),
            rustls::Error::InvalidCertificate(rustls::CertificateError::NotValidForNameContext { .. })
        ),
        "{err:?}"
    );
    server.finish();
}

#[test]
fn required_starttls_not_offered() {
    let server = Server::start(Script::new(esmtp(&["PIPELINING"])).tls(pki().server.clone()));
    let opts = tls_options(server.port, TlsMode::Required);
    let err = smol::block_on(SmtpClient::connect(&opts)).unwrap_err();
    assert!(matches!(err, Error::Session(ProtoError::TlsUnavailable(None))), "{err:?}");
    assert_eq!(server.finish().count("MAIL"), 0);
}

#[test]
fn starttls_response_injection_is_refused() {
    let mut std = esmtp(&["STARTTLS"]);
    let server = Server::start(
        Script::new(move |cmd, tls| {
            if cmd == "STARTTLS" {
                Action::Reply("220 go ahead\r\n250 fake\r\n".into())
            } else {
                std(cmd, tls)
            }
        })
        .tls(pki().server.clone()),
    );
    let opts = tls_options(server.port, TlsMode::Required);
    let err = smol::block_on(SmtpClient::connect(&opts)).unwrap_err();
    assert!(matches!(err, Error::Session(ProtoError::StartTlsInjection)), "{err:?}");
    let rec = server.finish();
    assert_eq!(rec.commands, ["EHLO client.test", "STARTTLS"]);
}

#[test]
fn a_silent_implicit_tls_server_times_out_in_the_handshake() {
    // The server accepts and never says a word: no ServerHello. The handshake is bounded by connect_timeout.
    let mut script = Script::new(esmtp(&[]));
    script.greeting = None;
    let server = Server::start(script);
    let mut opts = tls_options(server.port, TlsMode::Implicit);
    opts.connect_timeout = std::time::Duration::from_millis(200);
    let err = smol::block_on(SmtpClient::connect(&opts)).unwrap_err();
    match &err {
        Error::Tls(e) => assert_eq!(e.kind(), std::io::ErrorKind::TimedOut),
        other => panic!("{other:?}"),
    }
    server.finish();
}
