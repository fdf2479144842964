//! SASL mechanisms: byte-exact vectors TV-43..46, LOGIN by position, strict challenge decoding, credential
//! validation (INJ-5, AUTH-08) and redaction.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use smtp_proto::sasl::{
    Credentials, Mechanism, SaslClient, SaslError, SaslFailure, SaslFailureReason, Secret, Step,
};

fn b64(bytes: &[u8]) -> String {
    STANDARD.encode(bytes)
}

/// The base64 line the command encoder would send for a step.
fn wire(step: Step) -> String {
    match step {
        Step::Respond(bytes) => b64(&bytes),
        Step::Cancel => "*".into(),
    }
}

fn tim() -> Credentials {
    Credentials::password("tim", "tanstaaftanstaaf")
}

fn xoauth2_creds() -> Credentials {
    Credentials::oauth2("someuser@example.com", "ya29.vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg")
}

fn oauthbearer_creds() -> Credentials {
    Credentials::OAuth2 {
        username: "user@example.com".into(),
        token: "vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg==".into(),
        host: Some("server.example.com".into()),
        port: Some(587),
    }
}

const PLAIN_TIM: &str = "AHRpbQB0YW5zdGFhZnRhbnN0YWFm";
const XOAUTH2_IR: &str = "dXNlcj1zb21ldXNlckBleGFtcGxlLmNvbQFhdXRoPUJlYXJlciB5YTI5LnZGOWRmdDRxbVRjMk52YjNSbGNrQmhkSFJoZG1semRHRXVZMjl0Q2cBAQ==";
const OAUTHBEARER_IR: &str = "bixhPXVzZXJAZXhhbXBsZS5jb20sAWhvc3Q9c2VydmVyLmV4YW1wbGUuY29tAXBvcnQ9NTg3AWF1dGg9QmVhcmVyIHZGOWRmdDRxbVRjMk52YjNSbGNrQmhiSFJoZG1semRHRXVZMjl0Q2c9PQEB";

#[test]
fn tv43_plain_with_initial_response() {
    let mut sasl = SaslClient::new(Mechanism::Plain, &tim()).unwrap();
    assert_eq!(sasl.mechanism(), Mechanism::Plain);
    assert_eq!(b64(&sasl.initial_response().unwrap()), PLAIN_TIM);
    assert!(sasl.failure().is_none());
}

#[test]
fn tv43_plain_without_initial_response() {
    let mut sasl = SaslClient::new(Mechanism::Plain, &tim()).unwrap();
    assert_eq!(wire(sasl.step(b"")), PLAIN_TIM);
    // PLAIN has one message: another 334 is cancelled.
    assert_eq!(sasl.step(b""), Step::Cancel);
    assert_eq!(sasl.failure().unwrap().reason, SaslFailureReason::UnexpectedChallenge);
}

#[test]
fn tv43_plain_initial_response_taken_but_server_asks() {
    // The caller measured the initial response but did not send it (LIM-04): the empty 334 gets it once.
    let mut sasl = SaslClient::new(Mechanism::Plain, &tim()).unwrap();
    let _ = sasl.initial_response();
    assert_eq!(wire(sasl.step(b"")), PLAIN_TIM);
    assert_eq!(sasl.step(b""), Step::Cancel);
}

#[test]
fn tv43_plain_with_authzid() {
    let creds = Credentials::Password {
        authzid: Some("test".into()),
        username: "test".into(),
        password: "1234".into(),
    };
    let mut sasl = SaslClient::new(Mechanism::Plain, &creds).unwrap();
    let ir = sasl.initial_response().unwrap();
    assert_eq!(ir, b"test\0test\x001234");
    assert_eq!(b64(&ir), "dGVzdAB0ZXN0ADEyMzQ=");
}

#[test]
fn tv44_cram_md5() {
    let mut sasl = SaslClient::new(Mechanism::CramMd5, &tim()).unwrap();
    assert_eq!(sasl.initial_response(), None);
    let step = sasl.step(b"PDE4OTYuNjk3MTcwOTUyQHBvc3RvZmZpY2UucmVzdG9uLm1jaS5uZXQ+");
    assert_eq!(step, Step::Respond(b"tim b913a602c7eda7a495b4e6e7334d3890".to_vec()));
    assert_eq!(wire(step), "dGltIGI5MTNhNjAyYzdlZGE3YTQ5NWI0ZTZlNzMzNGQzODkw");
    assert_eq!(sasl.step(b"PDE4OTYuNjk3MTcwOTUyQHBvc3RvZmZpY2UucmVzdG9uLm1jaS5uZXQ+"), Step::Cancel);
    assert_eq!(sasl.failure().unwrap().reason, SaslFailureReason::UnexpectedChallenge);
}

#[test]
fn cram_md5_key_longer_than_block() {
    // HMAC hashes keys longer than the 64-byte MD5 block first (RFC 2104 §2); value from Python's hmac module.
    let creds = Credentials::password("u", "k".repeat(80));
    let mut sasl = SaslClient::new(Mechanism::CramMd5, &creds).unwrap();
    assert_eq!(sasl.step(b"PGNoYWxsZW5nZT4="), Step::Respond(b"u a9cb17b7299ec35dc4401ee476722afa".to_vec()));
}

#[test]
fn tv44_undecodable_challenge_cancels() {
    for bad in [&b"!!!"[..], b"Zm9v=", b"Zg", b"Zm 9v", b"Zh==", b"=", b"Zm9v\r\n", b"Zm9vYg==Zm9v"] {
        let mut sasl = SaslClient::new(Mechanism::CramMd5, &tim()).unwrap();
        assert_eq!(sasl.step(bad), Step::Cancel, "{:?}", bad.escape_ascii().to_string());
        assert_eq!(
            sasl.failure(),
            Some(&SaslFailure { reason: SaslFailureReason::BadChallenge, detail: None })
        );
        // Once cancelled, always cancelled; the first reason stays.
        assert_eq!(sasl.step(b"PGE+"), Step::Cancel);
        assert_eq!(sasl.failure().unwrap().reason, SaslFailureReason::BadChallenge);
    }
    for bad in [&b"!!!"[..], b"Zg"] {
        for mech in [Mechanism::Plain, Mechanism::Login] {
            let mut sasl = SaslClient::new(mech, &tim()).unwrap();
            assert_eq!(sasl.step(bad), Step::Cancel);
            assert_eq!(sasl.failure().unwrap().reason, SaslFailureReason::BadChallenge);
        }
    }
    // An empty CRAM-MD5 challenge has nothing to sign.
    let mut sasl = SaslClient::new(Mechanism::CramMd5, &tim()).unwrap();
    assert_eq!(sasl.step(b""), Step::Cancel);
    assert_eq!(sasl.failure().unwrap().reason, SaslFailureReason::BadChallenge);
}

#[test]
fn surrounding_blanks_are_ignored() {
    let mut sasl = SaslClient::new(Mechanism::CramMd5, &tim()).unwrap();
    let step = sasl.step(b" PDE4OTYuNjk3MTcwOTUyQHBvc3RvZmZpY2UucmVzdG9uLm1jaS5uZXQ+\t ");
    assert_eq!(wire(step), "dGltIGI5MTNhNjAyYzdlZGE3YTQ5NWI0ZTZlNzMzNGQzODkw");
}

#[test]
fn tv45_xoauth2() {
    let mut sasl = SaslClient::new(Mechanism::XOAuth2, &xoauth2_creds()).unwrap();
    assert_eq!(b64(&sasl.initial_response().unwrap()), XOAUTH2_IR);
    assert!(sasl.failure().is_none());
}

#[test]
fn tv45_xoauth2_error_challenge() {
    let json = r#"{"status":"401","schemes":"bearer mac","scope":"https://mail.google.com/"}"#;
    let mut sasl = SaslClient::new(Mechanism::XOAuth2, &xoauth2_creds()).unwrap();
    let _ = sasl.initial_response().unwrap();
    assert_eq!(sasl.step(b64(json.as_bytes()).as_bytes()), Step::Respond(Vec::new()));
    assert_eq!(
        sasl.failure(),
        Some(&SaslFailure { reason: SaslFailureReason::ServerError, detail: Some(json.into()) })
    );
    // Anything after the acknowledgement is cancelled, and the server's error is kept.
    assert_eq!(sasl.step(b""), Step::Cancel);
    assert_eq!(sasl.failure().unwrap().reason, SaslFailureReason::ServerError);
}

#[test]
fn tv45_xoauth2_bare_334_without_initial_response() {
    // Yandex sends a bare 334 when AUTH XOAUTH2 comes without an initial response (enough_mail #284).
    let mut sasl = SaslClient::new(Mechanism::XOAuth2, &xoauth2_creds()).unwrap();
    assert_eq!(wire(sasl.step(b"")), XOAUTH2_IR);
    let json = br#"{"status":"400"}"#;
    assert_eq!(sasl.step(b64(json).as_bytes()), Step::Respond(Vec::new()));
    assert_eq!(sasl.failure().unwrap().detail.as_deref(), Some(r#"{"status":"400"}"#));
}

#[test]
fn tv45_login_by_position() {
    let mut sasl = SaslClient::new(Mechanism::Login, &tim()).unwrap();
    assert_eq!(sasl.initial_response(), None);
    assert_eq!(sasl.step(b"VXNlcm5hbWU6"), Step::Respond(b"tim".to_vec()));
    assert_eq!(sasl.step(b"UGFzc3dvcmQ6"), Step::Respond(b"tanstaaftanstaaf".to_vec()));
    assert_eq!(sasl.step(b"UGFzc3dvcmQ6"), Step::Cancel);
    assert_eq!(sasl.failure().unwrap().reason, SaslFailureReason::UnexpectedChallenge);

    // The prompt text does not matter: swapped or odd prompts still get user, then password.
    let mut sasl = SaslClient::new(Mechanism::Login, &tim()).unwrap();
    assert_eq!(wire(sasl.step(b"UGFzc3dvcmQ6")), b64(b"tim"));
    assert_eq!(wire(sasl.step(b"")), b64(b"tanstaaftanstaaf"));
}

#[test]
fn tv46_oauthbearer() {
    let mut sasl = SaslClient::new(Mechanism::OAuthBearer, &oauthbearer_creds()).unwrap();
    assert_eq!(b64(&sasl.initial_response().unwrap()), OAUTHBEARER_IR);
}

#[test]
fn tv46_oauthbearer_error_challenge() {
    let json = r#"{"status":"invalid_token","scope":"example_scope","openid-configuration":"https://example.com/.well-known/openid-configuration"}"#;
    let mut sasl = SaslClient::new(Mechanism::OAuthBearer, &oauthbearer_creds()).unwrap();
    let _ = sasl.initial_response().unwrap();
    let step = sasl.step(b64(json.as_bytes()).as_bytes());
    assert_eq!(wire(step), "AQ==");
    let failure = sasl.failure().unwrap();
    assert_eq!(failure.reason, SaslFailureReason::ServerError);
    assert!(failure.detail.as_deref().unwrap().contains(r#""scope":"example_scope""#));
}

#[test]
fn oauthbearer_without_host_port_and_escaping() {
    let creds = Credentials::oauth2("a,b=c@example.com", "tok");
    let mut sasl = SaslClient::new(Mechanism::OAuthBearer, &creds).unwrap();
    assert_eq!(sasl.initial_response().unwrap(), b"n,a=a=2Cb=3Dc@example.com,\x01auth=Bearer tok\x01\x01");
    let creds = Credentials::OAuth2 { username: "u".into(), token: "t".into(), host: None, port: Some(465) };
    let mut sasl = SaslClient::new(Mechanism::OAuthBearer, &creds).unwrap();
    assert_eq!(sasl.initial_response().unwrap(), b"n,a=u,\x01port=465\x01auth=Bearer t\x01\x01");
    // Without an initial response, the empty 334 gets the message.
    let mut sasl = SaslClient::new(Mechanism::OAuthBearer, &oauthbearer_creds()).unwrap();
    assert_eq!(wire(sasl.step(b"")), OAUTHBEARER_IR);
}

#[test]
fn nul_in_plain_fields_is_rejected() {
    for creds in [
        Credentials::password("t\0im", "pw"),
        Credentials::password("tim", "p\0w"),
        Credentials::Password { authzid: Some("a\0".into()), username: "tim".into(), password: "pw".into() },
        Credentials::password("", "pw"),
        Credentials::password("tim", ""),
    ] {
        assert!(matches!(creds.validate(), Err(SaslError::InvalidCredentials(_))), "{creds:?}");
        for mech in [Mechanism::Plain, Mechanism::Login, Mechanism::CramMd5] {
            assert!(matches!(SaslClient::new(mech, &creds), Err(SaslError::InvalidCredentials(_))));
        }
    }
    assert_eq!(
        Credentials::password("t\0im", "pw").validate(),
        Err(SaslError::InvalidCredentials("NUL in username"))
    );
}

#[test]
fn control_a_in_oauth_fields_is_rejected() {
    for creds in [
        Credentials::oauth2("u\x01", "t"),
        Credentials::oauth2("u", "t\x01auth=x"),
        Credentials::oauth2("u", ""),
        Credentials::OAuth2 {
            username: "u".into(),
            token: "t".into(),
            host: Some("h\x01".into()),
            port: None,
        },
    ] {
        assert!(matches!(creds.validate(), Err(SaslError::InvalidCredentials(_))));
        assert!(SaslClient::new(Mechanism::XOAuth2, &creds).is_err());
    }
    // CR/LF are harmless inside base64 payloads.
    assert!(Credentials::password("tim", "a\r\nb").validate().is_ok());
}

#[test]
fn mechanism_mismatch() {
    assert_eq!(SaslClient::new(Mechanism::XOAuth2, &tim()).unwrap_err(), SaslError::MechanismMismatch);
    assert_eq!(
        SaslClient::new(Mechanism::Plain, &xoauth2_creds()).unwrap_err(),
        SaslError::MechanismMismatch
    );
    assert_eq!(SaslError::MechanismMismatch.to_string(), "mechanism cannot use these credentials");
    assert_eq!(
        SaslError::InvalidCredentials("NUL in username").to_string(),
        "invalid credentials: NUL in username"
    );
    #[cfg(feature = "std")]
    {
        let _: &dyn std::error::Error = &SaslError::MechanismMismatch;
    }
}

#[test]
fn mechanism_names_and_preference() {
    for m in Mechanism::PREFERENCE {
        assert_eq!(Mechanism::from_name(m.name().as_bytes()), Some(m));
        assert_eq!(Mechanism::from_name(m.name().to_ascii_lowercase().as_bytes()), Some(m));
        assert_eq!(m.to_string(), m.name());
    }
    assert_eq!(Mechanism::from_name(b"Cram-Md5"), Some(Mechanism::CramMd5));
    assert_eq!(Mechanism::from_name(b"PLAINX"), None);
    assert_eq!(Mechanism::from_name(b""), None);
    assert_eq!(
        Mechanism::PREFERENCE,
        [Mechanism::OAuthBearer, Mechanism::XOAuth2, Mechanism::CramMd5, Mechanism::Plain, Mechanism::Login]
    );
    let all = Mechanism::PREFERENCE;
    assert_eq!(Mechanism::choose(&all, &tim()), Some(Mechanism::CramMd5));
    assert_eq!(Mechanism::choose(&all, &xoauth2_creds()), Some(Mechanism::OAuthBearer));
    assert_eq!(Mechanism::choose(&[Mechanism::Login, Mechanism::Plain], &tim()), Some(Mechanism::Plain));
    assert_eq!(Mechanism::choose(&[Mechanism::Plain], &xoauth2_creds()), None);
    assert!(Mechanism::Plain.usable_with(&tim()) && !Mechanism::Plain.usable_with(&xoauth2_creds()));
    assert!(Mechanism::XOAuth2.usable_with(&xoauth2_creds()) && !Mechanism::XOAuth2.usable_with(&tim()));
    let client_first: Vec<_> = all.into_iter().filter(Mechanism::is_client_first).collect();
    assert_eq!(client_first, [Mechanism::OAuthBearer, Mechanism::XOAuth2, Mechanism::Plain]);
}

#[test]
fn debug_never_shows_secrets() {
    let secret = Secret::new("tanstaaftanstaaf");
    assert_eq!(format!("{secret:?}"), "Secret(***)");
    assert_eq!(format!("{secret:#?}"), "Secret(***)");
    assert_eq!(Secret::from("x"), Secret::from(String::from("x")));
    assert_eq!(secret.expose(), "tanstaaftanstaaf");

    let creds = Credentials::Password {
        authzid: Some("admin".into()),
        username: "tim".into(),
        password: "tanstaaftanstaaf".into(),
    };
    for text in [format!("{creds:?}"), format!("{creds:#?}")] {
        assert!(!text.contains("tanstaaf"), "{text}");
        assert!(text.contains("tim") && text.contains("Secret(***)"));
    }
    for creds in [xoauth2_creds(), oauthbearer_creds()] {
        assert!(!format!("{creds:?}").contains("vF9dft4q"));
    }

    // The client and its steps don't leak either (LOGIN's second step is the password).
    let mut sasl = SaslClient::new(Mechanism::Login, &tim()).unwrap();
    assert!(!format!("{sasl:?}").contains("tanstaaf"));
    let _ = sasl.step(b"");
    let step = sasl.step(b"");
    assert_eq!(format!("{step:?}"), "Respond(<16 bytes>)");
    assert!(!format!("{sasl:?}").contains("tanstaaf"));
}
