//! Fuzz body for [`SaslClient`]: every answer follows the mechanism's documented script.

use alloc::{format, string::String, vec::Vec};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, KeyInit, Mac};

use super::{Input, push_bytes};
use crate::command::Command;
use crate::sasl::{Credentials, Mechanism, SaslClient, SaslError, SaslFailureReason, Secret, Step};

/// Characters for credentials in the alphabet variant: separators of every mechanism, controls, UTF-8.
const CRED_CHARS: [char; 16] =
    ['u', 's', 'e', 'r', '@', '.', ',', '=', '\0', '\u{1}', ' ', '\r', '\n', 'é', '=', '2'];

/// Everything the [`sasl`] body reads, in order. Build seeds with [`sasl_seed`].
#[derive(Clone, Debug, Default)]
pub struct SaslSeed<'a> {
    /// Mechanism: index into [`Mechanism::PREFERENCE`] (mod 5).
    pub mechanism: u8,
    /// Bit 0: credentials of the other kind than the mechanism uses; bit 1: take the initial response;
    /// bit 2: authzid (password) or host (OAuth); bit 3: port (OAuth); bit 4: map the strings onto
    /// separator-heavy characters.
    pub flags: u8,
    /// OAUTHBEARER port.
    pub port: u16,
    /// User name.
    pub username: &'a [u8],
    /// Password or token.
    pub secret: &'a [u8],
    /// Authzid or host.
    pub extra: &'a [u8],
    /// `334` challenges: `(mode, bytes)`. Mode bit 0: send `bytes` base64-encoded (else raw); bit 1: wrap in
    /// blanks.
    pub challenges: &'a [(u8, &'a [u8])],
}

/// Builds a [`sasl`] input from its fields (each string at most 255 bytes).
pub fn sasl_seed(seed: &SaslSeed<'_>) -> Vec<u8> {
    let mut out = alloc::vec![seed.mechanism, seed.flags];
    out.extend_from_slice(&seed.port.to_le_bytes());
    for s in [seed.username, seed.secret, seed.extra] {
        push_bytes(&mut out, s);
    }
    for (mode, bytes) in seed.challenges {
        out.push(*mode);
        push_bytes(&mut out, bytes);
    }
    out
}

fn text(bytes: &[u8], alphabet: bool) -> String {
    if alphabet {
        bytes.iter().map(|&b| CRED_CHARS[usize::from(b) % CRED_CHARS.len()]).collect()
    } else {
        String::from_utf8_lossy(bytes).into_owned()
    }
}

/// Another secret with the same UTF-8 length per character (so response lengths match), never `s` itself.
fn same_shape(s: &str) -> String {
    let pick = |alt: bool| {
        if alt { ['y', 'ê', '丁', '\u{1f601}'] } else { ['x', 'é', '中', '\u{1f600}'] }
    };
    let shaped = |alt| -> String { s.chars().map(|c| pick(alt)[c.len_utf8() - 1]).collect() };
    let first = shaped(false);
    if first == s { shaped(true) } else { first }
}

fn with_secret(creds: &Credentials, secret: &str) -> Credentials {
    let mut c = creds.clone();
    match &mut c {
        Credentials::Password { password, .. } => *password = Secret::new(secret),
        Credentials::OAuth2 { token, .. } => *token = Secret::new(secret),
    }
    c
}

/// Input layout: see [`SaslSeed`] (fields in declaration order; strings length-prefixed; challenges until
/// the input ends).
///
/// Asserts:
/// - [`SaslClient::new`] fails exactly for a mechanism/credentials mismatch or credentials that break the
///   documented rules (empty user or secret, NUL, `^A` for OAuth);
/// - `Debug` of the credentials, the client and each step never depends on the secret;
/// - the initial response is `None` for LOGIN and CRAM-MD5, and otherwise the documented message
///   (`authzid NUL user NUL pass`; `user=U ^A auth=Bearer T ^A ^A`; the GS2 header with `,` and `=` escaped,
///   host, port, token);
/// - each `step` gives exactly what the mechanism's table says (the same message again for PLAIN and the
///   OAuth mechanisms, user then password for LOGIN, `user SP hex(HMAC-MD5)` for CRAM-MD5, the empty or
///   `^A` acknowledgement after an OAuth error challenge), and [`Step::Cancel`] for an undecodable or
///   unexpected challenge; once cancelled (or acknowledged), always cancelled;
/// - [`SaslClient::failure`] keeps the first failure and its detail;
/// - every response encodes as one base64 line, a cancel as `*`.
pub fn sasl(data: &[u8]) {
    let mut input = Input::new(data);
    let mech = Mechanism::PREFERENCE[usize::from(input.byte()) % 5];
    let flags = input.byte();
    let port = input.u16();
    let alphabet = flags & 0x10 != 0;
    let username = text(input.bytes(), alphabet);
    let secret = text(input.bytes(), alphabet);
    let extra = (flags & 4 != 0).then(|| text(input.bytes(), alphabet));
    let wants_password = matches!(mech, Mechanism::Plain | Mechanism::Login | Mechanism::CramMd5);
    let creds = if wants_password != (flags & 1 != 0) {
        Credentials::Password { authzid: extra, username, password: Secret::new(secret.clone()) }
    } else {
        Credentials::OAuth2 {
            username,
            token: Secret::new(secret.clone()),
            host: extra,
            port: (flags & 8 != 0).then_some(port),
        }
    };
    let dummy = &same_shape(&secret);
    assert_eq!(format!("{creds:?}"), format!("{:?}", with_secret(&creds, dummy)), "secret in Debug");

    let mut client = match SaslClient::new(mech, &creds) {
        Ok(c) => {
            assert!(mech.usable_with(&creds) && valid(&creds));
            c
        }
        Err(SaslError::MechanismMismatch) => {
            assert!(!mech.usable_with(&creds));
            return;
        }
        Err(SaslError::InvalidCredentials(_)) => {
            assert!(mech.usable_with(&creds) && !valid(&creds));
            return;
        }
    };
    let mut twin = SaslClient::new(mech, &with_secret(&creds, dummy)).expect("same validity");
    assert_eq!(client.mechanism(), mech);

    let first = client_first(mech, &creds);
    let mut model = Model { rounds: 0, done: false, ir_taken: false, failure: None };
    if flags & 2 != 0 {
        let ir = client.initial_response();
        let _ = twin.initial_response();
        assert_eq!(ir, first, "initial response");
        model.ir_taken = first.is_some();
    }

    while !input.is_empty() {
        let mode = input.byte();
        let bytes = input.bytes();
        let mut challenge = Vec::new();
        if mode & 2 != 0 {
            challenge.extend_from_slice(b" \t");
        }
        if mode & 1 != 0 {
            challenge.extend_from_slice(STANDARD.encode(bytes).as_bytes());
        } else {
            challenge.extend_from_slice(bytes);
        }
        if mode & 2 != 0 {
            challenge.extend_from_slice(b"\t ");
        }
        let step = client.step(&challenge);
        let twin_step = twin.step(&challenge);
        assert_eq!(format!("{step:?}"), format!("{twin_step:?}"), "secret in Debug");
        let (want, detail) = model.step(mech, &creds, first.as_deref(), &challenge);
        assert_eq!(step, want, "{mech} step");
        assert_eq!(client.failure().map(|f| f.reason), model.failure, "failure");
        if let Some(d) = detail {
            assert_eq!(client.failure().and_then(|f| f.detail.clone()), d);
        }
        let mut line = Vec::new();
        match &step {
            Step::Respond(bytes) => {
                Command::AuthResponse(bytes).encode(&mut line).expect("a response fits on a line");
                let b64 = &line[..line.len() - 2];
                assert_eq!(STANDARD.decode(b64).as_deref(), Ok(&bytes[..]));
            }
            Step::Cancel => {
                Command::AuthCancel.encode(&mut line).expect("cancel");
                assert_eq!(line, b"*\r\n");
            }
        }
        assert_eq!(format!("{client:?}"), format!("{twin:?}"), "secret in Debug");
    }
}

/// The documented validity rules of [`Credentials::validate`].
fn valid(creds: &Credentials) -> bool {
    match creds {
        Credentials::Password { authzid, username, password } => {
            let p = password.expose();
            !username.is_empty()
                && !p.is_empty()
                && ![username.as_str(), p, authzid.as_deref().unwrap_or("")].iter().any(|s| s.contains('\0'))
        }
        Credentials::OAuth2 { username, token, host, .. } => {
            let t = token.expose();
            !username.is_empty()
                && !t.is_empty()
                && ![username.as_str(), t, host.as_deref().unwrap_or("")]
                    .iter()
                    .any(|s| s.contains(['\0', '\u{1}']))
        }
    }
}

/// The client-first message as RFC 4616, Google's XOAUTH2 page and RFC 7628 spell it.
fn client_first(mech: Mechanism, creds: &Credentials) -> Option<Vec<u8>> {
    let msg = match (mech, creds) {
        (Mechanism::Plain, Credentials::Password { authzid, username, password }) => {
            format!("{}\0{username}\0{}", authzid.as_deref().unwrap_or(""), password.expose())
        }
        (Mechanism::XOAuth2, Credentials::OAuth2 { username, token, .. }) => {
            format!("user={username}\u{1}auth=Bearer {}\u{1}\u{1}", token.expose())
        }
        (Mechanism::OAuthBearer, Credentials::OAuth2 { username, token, host, port }) => {
            let mut user = String::new();
            for c in username.chars() {
                match c {
                    ',' => user.push_str("=2C"),
                    '=' => user.push_str("=3D"),
                    c => user.push(c),
                }
            }
            let host = host.as_deref().map_or(String::new(), |h| format!("host={h}\u{1}"));
            let port = port.map_or(String::new(), |p| format!("port={p}\u{1}"));
            format!("n,a={user},\u{1}{host}{port}auth=Bearer {}\u{1}\u{1}", token.expose())
        }
        _ => return None,
    };
    Some(msg.into_bytes())
}

/// The exchange as the table in [`SaslClient`]'s docs describes it.
struct Model {
    rounds: u8,
    done: bool,
    ir_taken: bool,
    failure: Option<SaslFailureReason>,
}

type Detail = Option<Option<String>>;

impl Model {
    fn cancel(&mut self, reason: SaslFailureReason) -> (Step, Detail) {
        self.done = true;
        self.failure.get_or_insert(reason);
        (Step::Cancel, None)
    }

    fn respond(&mut self, bytes: Vec<u8>) -> (Step, Detail) {
        self.rounds += 1;
        (Step::Respond(bytes), None)
    }

    /// The expected step, and the expected failure detail when it is known.
    fn step(
        &mut self,
        mech: Mechanism,
        creds: &Credentials,
        first: Option<&[u8]>,
        challenge: &[u8],
    ) -> (Step, Detail) {
        if self.done {
            return self.cancel(SaslFailureReason::UnexpectedChallenge);
        }
        let trimmed = trim_blanks(challenge);
        let Ok(decoded) = STANDARD.decode(trimmed) else {
            return self.cancel(SaslFailureReason::BadChallenge);
        };
        let (user, secret) = match creds {
            Credentials::Password { username, password, .. } => (username, password.expose()),
            Credentials::OAuth2 { username, token, .. } => (username, token.expose()),
        };
        let fresh = self.rounds == 0 && (!self.ir_taken || decoded.is_empty());
        match mech {
            Mechanism::Plain if fresh => self.respond(first.expect("PLAIN").to_vec()),
            Mechanism::Plain => self.cancel(SaslFailureReason::UnexpectedChallenge),
            Mechanism::Login => match self.rounds {
                0 => self.respond(user.as_bytes().to_vec()),
                1 => self.respond(secret.as_bytes().to_vec()),
                _ => self.cancel(SaslFailureReason::UnexpectedChallenge),
            },
            Mechanism::CramMd5 if self.rounds > 0 => self.cancel(SaslFailureReason::UnexpectedChallenge),
            Mechanism::CramMd5 if decoded.is_empty() => self.cancel(SaslFailureReason::BadChallenge),
            Mechanism::CramMd5 => {
                let mut mac = Hmac::<md5::Md5>::new_from_slice(secret.as_bytes()).expect("any key");
                mac.update(&decoded);
                let mut response = format!("{user} ").into_bytes();
                for b in mac.finalize().into_bytes() {
                    response.extend_from_slice(format!("{b:02x}").as_bytes());
                }
                self.respond(response)
            }
            Mechanism::XOAuth2 | Mechanism::OAuthBearer if fresh => {
                self.respond(first.expect("OAuth").to_vec())
            }
            Mechanism::XOAuth2 | Mechanism::OAuthBearer => {
                self.done = true;
                self.failure = Some(SaslFailureReason::ServerError);
                let detail = (!decoded.is_empty()).then(|| String::from_utf8_lossy(&decoded).into_owned());
                let ack = if mech == Mechanism::OAuthBearer { alloc::vec![1] } else { Vec::new() };
                (Step::Respond(ack), Some(detail))
            }
        }
    }
}

fn trim_blanks(s: &[u8]) -> &[u8] {
    let start = s.iter().position(|&b| b != b' ' && b != b'\t').unwrap_or(s.len());
    let end = s.iter().rposition(|&b| b != b' ' && b != b'\t').map_or(start, |i| i + 1);
    &s[start..end]
}
