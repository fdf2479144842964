//! SASL for SMTP AUTH (RFC 4954): PLAIN, LOGIN, CRAM-MD5, XOAUTH2 and OAUTHBEARER, client side.
//!
//! [`SaslClient`] runs one exchange. It produces *raw* response bytes; the command encoder base64-encodes
//! them (and sends `=` for an empty initial response, `*` for [`Step::Cancel`]). Challenges come in as the
//! base64 text of a `334` reply and are decoded strictly (AUTH-03).
//!
//! Secrets ([`Secret`]) print as `Secret(***)` in `Debug` output, so logging [`Credentials`] or a
//! [`SaslClient`] never shows a password or token. They are not zeroised on drop.
//!
//! ```
//! use smtp_proto::sasl::{Credentials, Mechanism, SaslClient, Step};
//!
//! let creds = Credentials::password("tim", "tanstaaftanstaaf");
//! // The server offered these in EHLO; take the strongest one the credentials can use.
//! let mech = Mechanism::choose(&[Mechanism::Login, Mechanism::Plain], &creds).unwrap();
//! assert_eq!(mech, Mechanism::Plain);
//!
//! let mut sasl = SaslClient::new(mech, &creds)?;
//! // PLAIN is client-first: the response goes on the AUTH line (base64-encoded by the caller).
//! assert_eq!(sasl.initial_response().unwrap(), b"\0tim\0tanstaaftanstaaf");
//! // A 334 after an initial response that was sent is unexpected: cancel with `*`.
//! assert_eq!(sasl.step(b"Zm9v"), Step::Cancel);
//! # Ok::<(), smtp_proto::sasl::SaslError>(())
//! ```

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, KeyInit, Mac};

/// A secret string (password or token) whose `Debug` output is `Secret(***)`. It has no `Display`.
///
/// ```
/// use smtp_proto::sasl::Secret;
///
/// let s = Secret::new("hunter2");
/// assert_eq!(format!("{s:?}"), "Secret(***)");
/// assert_eq!(s.expose(), "hunter2");
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret.
    #[must_use]
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }

    /// The secret text. Take care where it goes.
    #[must_use]
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl From<String> for Secret {
    fn from(s: String) -> Self {
        Secret(s)
    }
}

impl From<&str> for Secret {
    fn from(s: &str) -> Self {
        Secret(s.into())
    }
}

/// What to authenticate with. The derived `Debug` redacts the password or token.
///
/// ```
/// use smtp_proto::sasl::Credentials;
///
/// let creds = Credentials::password("tim", "tanstaaftanstaaf");
/// assert!(!format!("{creds:?}").contains("tanstaaf"));
/// assert!(creds.validate().is_ok());
/// assert!(Credentials::password("t\0im", "x").validate().is_err());
/// ```
#[derive(Clone, Debug)]
pub enum Credentials {
    /// A user name and password, for PLAIN, LOGIN and CRAM-MD5.
    Password {
        /// Identity to act as (PLAIN only; RFC 4616 authzid). `None` means the user's own identity.
        authzid: Option<String>,
        /// Authentication identity (RFC 4616 authcid).
        username: String,
        /// The password.
        password: Secret,
    },
    /// An OAuth 2.0 bearer token, for XOAUTH2 and OAUTHBEARER.
    OAuth2 {
        /// The user (XOAUTH2 `user=`, OAUTHBEARER `a=`).
        username: String,
        /// The access token.
        token: Secret,
        /// Server host name for OAUTHBEARER's `host=` key (RFC 7628 §3.1); left out when `None`.
        host: Option<String>,
        /// Server port for OAUTHBEARER's `port=` key; left out when `None`.
        port: Option<u16>,
    },
}

impl Credentials {
    /// User name and password, no authzid.
    #[must_use]
    pub fn password(username: impl Into<String>, password: impl Into<Secret>) -> Self {
        Credentials::Password { authzid: None, username: username.into(), password: password.into() }
    }

    /// User name and OAuth 2.0 bearer token, no host or port.
    #[must_use]
    pub fn oauth2(username: impl Into<String>, token: impl Into<Secret>) -> Self {
        Credentials::OAuth2 { username: username.into(), token: token.into(), host: None, port: None }
    }

    /// The user name (authentication identity), for display and logs.
    pub fn username(&self) -> &str {
        match self {
            Credentials::Password { username, .. } | Credentials::OAuth2 { username, .. } => username,
        }
    }

    /// Checks that the fields can be framed safely by every mechanism they are usable with.
    ///
    /// - Password: the user name and password are not empty (RFC 4616: `1*SAFE`), and no field (authzid
    ///   included) contains NUL, PLAIN's separator (AUTH-08, INJ-5).
    /// - OAuth2: the user name and token are not empty, and no field contains NUL or `^A` (0x01), the
    ///   XOAUTH2/OAUTHBEARER separator. A `,` or `=` in the user name is fine: OAUTHBEARER escapes it
    ///   (RFC 5801: `=2C`, `=3D`).
    ///
    /// Every payload is base64-encoded on the wire, so CR and LF cannot inject commands and are allowed.
    ///
    /// # Errors
    /// [`SaslError::InvalidCredentials`] naming the problem.
    pub fn validate(&self) -> Result<(), SaslError> {
        let invalid = |what| Err(SaslError::InvalidCredentials(what));
        match self {
            Credentials::Password { authzid, username, password } => {
                if username.is_empty() {
                    return invalid("empty username");
                }
                if password.expose().is_empty() {
                    return invalid("empty password");
                }
                if username.contains('\0') {
                    return invalid("NUL in username");
                }
                if password.expose().contains('\0') {
                    return invalid("NUL in password");
                }
                if authzid.as_deref().is_some_and(|a| a.contains('\0')) {
                    return invalid("NUL in authzid");
                }
            }
            Credentials::OAuth2 { username, token, host, .. } => {
                let bad = |s: &str| s.contains(['\0', '\x01']);
                if username.is_empty() {
                    return invalid("empty username");
                }
                if token.expose().is_empty() {
                    return invalid("empty token");
                }
                if bad(username) {
                    return invalid("NUL or ^A in username");
                }
                if bad(token.expose()) {
                    return invalid("NUL or ^A in token");
                }
                if host.as_deref().is_some_and(bad) {
                    return invalid("NUL or ^A in host");
                }
            }
        }
        Ok(())
    }
}

/// A SASL mechanism this crate implements.
///
/// ```
/// use smtp_proto::sasl::Mechanism;
///
/// assert_eq!(Mechanism::from_name(b"cram-md5"), Some(Mechanism::CramMd5));
/// assert_eq!(Mechanism::OAuthBearer.name(), "OAUTHBEARER");
/// assert_eq!(Mechanism::from_name(b"GSSAPI"), None);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Mechanism {
    /// PLAIN (RFC 4616): `[authzid] NUL user NUL password`, one message, client-first.
    Plain,
    /// LOGIN (draft-murchison-sasl-login): user name, then password, each answering a `334`.
    Login,
    /// CRAM-MD5 (RFC 2195): `user SP hex(HMAC-MD5(password, challenge))`, server-first.
    CramMd5,
    /// XOAUTH2 (Google): `user=U ^A auth=Bearer T ^A ^A`, client-first.
    XOAuth2,
    /// OAUTHBEARER (RFC 7628): GS2 header plus `host`, `port` and `auth` key-value pairs, client-first.
    OAuthBearer,
}

impl Mechanism {
    /// Strongest first: the order in which to pick among the mechanisms a server offers.
    ///
    /// - OAUTHBEARER and XOAUTH2 send a scoped, expiring token instead of the long-term password;
    ///   OAUTHBEARER first because it is the standard (RFC 7628) and XOAUTH2 is a vendor variant.
    /// - CRAM-MD5 next: the password itself never crosses the wire, only a keyed digest of a fresh challenge
    ///   (it still relies on TLS for everything else, and MD5 is old).
    /// - PLAIN: standard, one round trip, sends the password (protected by the TLS that AUTH-13 requires).
    /// - LOGIN last: unstandardised, two round trips, same exposure as PLAIN, no authzid.
    ///
    /// Only mechanisms [`usable_with`](Self::usable_with) the credentials take part; see
    /// [`choose`](Self::choose).
    pub const PREFERENCE: [Mechanism; 5] =
        [Mechanism::OAuthBearer, Mechanism::XOAuth2, Mechanism::CramMd5, Mechanism::Plain, Mechanism::Login];

    /// The registered name, upper case.
    #[must_use]
    pub const fn name(&self) -> &'static str {
        match self {
            Mechanism::Plain => "PLAIN",
            Mechanism::Login => "LOGIN",
            Mechanism::CramMd5 => "CRAM-MD5",
            Mechanism::XOAuth2 => "XOAUTH2",
            Mechanism::OAuthBearer => "OAUTHBEARER",
        }
    }

    /// Parses a mechanism name from an EHLO `AUTH` line, case-insensitively (AUTH-01).
    #[must_use]
    pub fn from_name(name: &[u8]) -> Option<Self> {
        Self::PREFERENCE.into_iter().find(|m| m.name().as_bytes().eq_ignore_ascii_case(name))
    }

    /// Whether the mechanism can use these credentials: passwords for PLAIN, LOGIN and CRAM-MD5; OAuth 2.0
    /// tokens for XOAUTH2 and OAUTHBEARER.
    #[must_use]
    pub const fn usable_with(&self, credentials: &Credentials) -> bool {
        match credentials {
            Credentials::Password { .. } => {
                matches!(self, Mechanism::Plain | Mechanism::Login | Mechanism::CramMd5)
            }
            Credentials::OAuth2 { .. } => {
                matches!(self, Mechanism::XOAuth2 | Mechanism::OAuthBearer)
            }
        }
    }

    /// Whether the client speaks first, i.e. the mechanism has an initial response (AUTH-04): PLAIN, XOAUTH2
    /// and OAUTHBEARER. LOGIN and CRAM-MD5 wait for a `334`.
    #[must_use]
    pub const fn is_client_first(&self) -> bool {
        matches!(self, Mechanism::Plain | Mechanism::XOAuth2 | Mechanism::OAuthBearer)
    }

    /// The first mechanism of [`PREFERENCE`](Self::PREFERENCE) that the server `offered` and the
    /// credentials can use.
    #[must_use]
    pub fn choose(offered: &[Mechanism], credentials: &Credentials) -> Option<Mechanism> {
        Self::PREFERENCE.into_iter().find(|m| offered.contains(m) && m.usable_with(credentials))
    }
}

impl fmt::Display for Mechanism {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The client's answer to one `334` challenge.
///
/// `Debug` shows only the length of a response: LOGIN's second response is the password.
#[derive(Clone, PartialEq, Eq)]
pub enum Step {
    /// Send these raw bytes, base64-encoded, as one line (possibly empty: an empty line).
    Respond(Vec<u8>),
    /// Send `*` to cancel the exchange (the server answers `501`). See [`SaslClient::failure`] for why.
    Cancel,
}

impl fmt::Debug for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Step::Respond(bytes) => write!(f, "Respond(<{} bytes>)", bytes.len()),
            Step::Cancel => f.write_str("Cancel"),
        }
    }
}

/// Why an exchange went wrong on the client's side of the wire (the server's final reply says the rest).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SaslFailure {
    /// What happened.
    pub reason: SaslFailureReason,
    /// For [`SaslFailureReason::ServerError`]: the decoded error challenge, for XOAUTH2 and OAUTHBEARER a JSON
    /// object such as `{"status":"invalid_token","scope":"…"}` (keep `scope` for the token refresh, AUTH-12).
    /// Invalid UTF-8 is replaced with U+FFFD. `None` for the other reasons.
    pub detail: Option<String>,
}

/// The kind of [`SaslFailure`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SaslFailureReason {
    /// A `334` challenge was not strict base64 (AUTH-03), or CRAM-MD5 got an empty challenge.
    BadChallenge,
    /// More `334` rounds than the mechanism has.
    UnexpectedChallenge,
    /// XOAUTH2 or OAUTHBEARER: the server sent an error challenge (JSON) after the client's response.
    ServerError,
}

/// Credentials that cannot be used with the requested mechanism.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SaslError {
    /// The credentials fail [`Credentials::validate`]; the text names the problem (never the secret).
    InvalidCredentials(&'static str),
    /// The mechanism cannot use this kind of credentials (see [`Mechanism::usable_with`]).
    MechanismMismatch,
}

impl fmt::Display for SaslError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SaslError::InvalidCredentials(what) => write!(f, "invalid credentials: {what}"),
            SaslError::MechanismMismatch => f.write_str("mechanism cannot use these credentials"),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for SaslError {}

/// One SASL exchange, client side.
///
/// Create it with the mechanism chosen from the server's EHLO `AUTH` list, send `AUTH <name>` with the
/// [`initial_response`](Self::initial_response) if there is one, then answer each `334` with
/// [`step`](Self::step) until the server sends its final reply (`235`, `535`, …).
///
/// How each mechanism answers a `334`:
///
/// | Mechanism | `334` | Response |
/// |---|---|---|
/// | PLAIN | first, if no initial response was taken, or an empty one | `[authzid] NUL user NUL pass` |
/// | LOGIN | 1st / 2nd (by position, not by the prompt text, AUTH-09) | user name / password |
/// | CRAM-MD5 | 1st | `user SP lowercase-hex(HMAC-MD5(password, challenge))` |
/// | XOAUTH2 | first, if no initial response was taken, or an empty one | `user=U ^A auth=Bearer T ^A ^A` |
/// | XOAUTH2 | an error (JSON) after the response | empty (the server then sends `535`) |
/// | OAUTHBEARER | first, if no initial response was taken, or an empty one | `n,a=U,^Ahost=H^Aport=P^Aauth=Bearer T^A^A` |
/// | OAUTHBEARER | an error (JSON) after the response | `^A` (`AQ==` on the wire) |
///
/// Any other `334`, or one that is not strict base64, gets [`Step::Cancel`] and sets
/// [`failure`](Self::failure).
///
/// ```
/// use smtp_proto::sasl::{Credentials, Mechanism, SaslClient, SaslFailureReason, Step};
///
/// let creds = Credentials::password("tim", "tanstaaftanstaaf");
/// let mut sasl = SaslClient::new(Mechanism::CramMd5, &creds)?;
/// assert_eq!(sasl.initial_response(), None); // server-first
/// let step = sasl.step(b"PDE4OTYuNjk3MTcwOTUyQHBvc3RvZmZpY2UucmVzdG9uLm1jaS5uZXQ+");
/// assert_eq!(step, Step::Respond(b"tim b913a602c7eda7a495b4e6e7334d3890".to_vec()));
///
/// let mut sasl = SaslClient::new(Mechanism::CramMd5, &creds)?;
/// assert_eq!(sasl.step(b"!!!"), Step::Cancel);
/// assert_eq!(sasl.failure().unwrap().reason, SaslFailureReason::BadChallenge);
/// # Ok::<(), smtp_proto::sasl::SaslError>(())
/// ```
#[derive(Clone, Debug)]
pub struct SaslClient {
    mechanism: Mechanism,
    credentials: Credentials,
    /// `initial_response` handed out the client-first message.
    ir_taken: bool,
    /// `334` rounds answered with `Step::Respond`.
    rounds: u8,
    /// The exchange has nothing more to send: every further `334` is cancelled.
    done: bool,
    failure: Option<SaslFailure>,
}

impl SaslClient {
    /// Starts an exchange.
    ///
    /// # Errors
    /// [`SaslError::MechanismMismatch`] if the mechanism cannot use this kind of credentials,
    /// [`SaslError::InvalidCredentials`] if they fail [`Credentials::validate`].
    pub fn new(mechanism: Mechanism, credentials: &Credentials) -> Result<SaslClient, SaslError> {
        if !mechanism.usable_with(credentials) {
            return Err(SaslError::MechanismMismatch);
        }
        credentials.validate()?;
        Ok(SaslClient {
            mechanism,
            credentials: credentials.clone(),
            ir_taken: false,
            rounds: 0,
            done: false,
            failure: None,
        })
    }

    /// The mechanism of this exchange.
    #[must_use]
    pub const fn mechanism(&self) -> Mechanism {
        self.mechanism
    }

    /// The initial response, raw (not base64), for client-first mechanisms (PLAIN, XOAUTH2, OAUTHBEARER);
    /// `None` for LOGIN and CRAM-MD5 (AUTH-04). The bytes carry the secret: don't log them.
    ///
    /// Calling this records that the response is being sent on the `AUTH` line; a later non-empty `334` is
    /// then treated as an error challenge (or cancelled, for PLAIN). If the line would be too long (LIM-04:
    /// over 512 octets), don't call it: the server's empty `334` gets the same bytes from
    /// [`step`](Self::step). Calling it and not sending is tolerated, since an empty `334` also gets the
    /// response once.
    pub fn initial_response(&mut self) -> Option<Vec<u8>> {
        if !self.mechanism.is_client_first() {
            return None;
        }
        self.ir_taken = true;
        Some(self.client_first_message())
    }

    /// Answers a `334` challenge. `challenge_b64` is the reply text (base64, possibly empty); surrounding
    /// spaces and tabs are ignored, anything else must be strict base64 (standard alphabet, canonical `=`
    /// padding only at the end; AUTH-03).
    ///
    /// Returns [`Step::Cancel`] (send `*`) for an undecodable challenge ([`SaslFailureReason::BadChallenge`])
    /// or a round the mechanism does not have ([`SaslFailureReason::UnexpectedChallenge`]); see
    /// [`failure`](Self::failure). After a cancel, every further call cancels too.
    pub fn step(&mut self, challenge_b64: &[u8]) -> Step {
        if self.done {
            return self.cancel(SaslFailureReason::UnexpectedChallenge);
        }
        let Ok(challenge) = STANDARD.decode(trim_blanks(challenge_b64)) else {
            return self.cancel(SaslFailureReason::BadChallenge);
        };
        match self.mechanism {
            Mechanism::Plain => {
                if self.rounds == 0 && (!self.ir_taken || challenge.is_empty()) {
                    self.respond(self.client_first_message())
                } else {
                    self.cancel(SaslFailureReason::UnexpectedChallenge)
                }
            }
            Mechanism::Login => match self.rounds {
                0 => self.respond(self.username().as_bytes().to_vec()),
                1 => self.respond(self.secret().as_bytes().to_vec()),
                _ => self.cancel(SaslFailureReason::UnexpectedChallenge),
            },
            Mechanism::CramMd5 => {
                if self.rounds > 0 {
                    self.cancel(SaslFailureReason::UnexpectedChallenge)
                } else if challenge.is_empty() {
                    self.cancel(SaslFailureReason::BadChallenge)
                } else {
                    let response = cram_md5(self.username(), self.secret(), &challenge);
                    self.respond(response)
                }
            }
            Mechanism::XOAuth2 | Mechanism::OAuthBearer => {
                if self.rounds == 0 && (!self.ir_taken || challenge.is_empty()) {
                    // No initial response was sent (Yandex's bare 334 for XOAUTH2), or the server asks again.
                    self.respond(self.client_first_message())
                } else {
                    // The response was sent: this is the error challenge (AUTH-11, AUTH-12).
                    self.failure = Some(SaslFailure {
                        reason: SaslFailureReason::ServerError,
                        detail: (!challenge.is_empty())
                            .then(|| String::from_utf8_lossy(&challenge).into_owned()),
                    });
                    self.done = true;
                    let ack =
                        if self.mechanism == Mechanism::OAuthBearer { b"\x01".to_vec() } else { Vec::new() };
                    Step::Respond(ack)
                }
            }
        }
    }

    /// What went wrong on the client's side, if anything: a bad or unexpected challenge, or the server's
    /// OAuth error challenge (kept as decoded text in [`SaslFailure::detail`]). The first failure is kept.
    #[must_use]
    pub fn failure(&self) -> Option<&SaslFailure> {
        self.failure.as_ref()
    }

    fn respond(&mut self, bytes: Vec<u8>) -> Step {
        self.rounds = self.rounds.saturating_add(1);
        Step::Respond(bytes)
    }

    fn cancel(&mut self, reason: SaslFailureReason) -> Step {
        self.done = true;
        if self.failure.is_none() {
            self.failure = Some(SaslFailure { reason, detail: None });
        }
        Step::Cancel
    }

    fn username(&self) -> &str {
        match &self.credentials {
            Credentials::Password { username, .. } | Credentials::OAuth2 { username, .. } => username,
        }
    }

    fn secret(&self) -> &str {
        match &self.credentials {
            Credentials::Password { password, .. } => password.expose(),
            Credentials::OAuth2 { token, .. } => token.expose(),
        }
    }

    /// The one client-first message of PLAIN, XOAUTH2 or OAUTHBEARER (empty for the others).
    fn client_first_message(&self) -> Vec<u8> {
        let mut out = Vec::new();
        match (&self.credentials, self.mechanism) {
            (Credentials::Password { authzid, username, password }, Mechanism::Plain) => {
                out.extend_from_slice(authzid.as_deref().unwrap_or("").as_bytes());
                out.push(0);
                out.extend_from_slice(username.as_bytes());
                out.push(0);
                out.extend_from_slice(password.expose().as_bytes());
            }
            (Credentials::OAuth2 { username, token, .. }, Mechanism::XOAuth2) => {
                out.extend_from_slice(b"user=");
                out.extend_from_slice(username.as_bytes());
                out.extend_from_slice(b"\x01auth=Bearer ");
                out.extend_from_slice(token.expose().as_bytes());
                out.extend_from_slice(b"\x01\x01");
            }
            (Credentials::OAuth2 { username, token, host, port }, Mechanism::OAuthBearer) => {
                out.extend_from_slice(b"n,a=");
                for &b in username.as_bytes() {
                    match b {
                        b',' => out.extend_from_slice(b"=2C"),
                        b'=' => out.extend_from_slice(b"=3D"),
                        _ => out.push(b),
                    }
                }
                out.extend_from_slice(b",\x01");
                if let Some(host) = host {
                    out.extend_from_slice(b"host=");
                    out.extend_from_slice(host.as_bytes());
                    out.push(1);
                }
                if let Some(port) = port {
                    out.extend_from_slice(b"port=");
                    crate::command::push_u64(&mut out, u64::from(*port));
                    out.push(1);
                }
                out.extend_from_slice(b"auth=Bearer ");
                out.extend_from_slice(token.expose().as_bytes());
                out.extend_from_slice(b"\x01\x01");
            }
            _ => {}
        }
        out
    }
}

/// `user SP lowercase-hex(HMAC-MD5(secret, challenge))` (RFC 2195 §2).
fn cram_md5(user: &str, secret: &str, challenge: &[u8]) -> Vec<u8> {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    // HMAC accepts keys of any length (longer ones are hashed first), so this cannot fail.
    let mut mac = Hmac::<md5::Md5>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length");
    mac.update(challenge);
    let digest = mac.finalize().into_bytes();
    let mut out = Vec::with_capacity(user.len() + 1 + 2 * digest.len());
    out.extend_from_slice(user.as_bytes());
    out.push(b' ');
    for b in digest.iter() {
        out.push(HEX[usize::from(b >> 4)]);
        out.push(HEX[usize::from(b & 0x0f)]);
    }
    out
}

fn trim_blanks(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = s {
        s = rest;
    }
    s
}
