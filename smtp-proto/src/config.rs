//! Session configuration: who we are, how we secure the session, and how long we wait.

use alloc::vec::Vec;

use crate::reply::ReplyConfig;
use crate::sasl::{Credentials, Mechanism};
use crate::timer::Timeouts;

/// Which protocol the session speaks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Protocol {
    /// SMTP (RFC 5321): EHLO, with HELO only after a 500/502 to EHLO.
    #[default]
    Smtp,
    /// LMTP (RFC 2033): LHLO, no HELO fallback, one reply per accepted recipient after the body.
    Lmtp,
}

/// How the session is secured.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TlsMode {
    /// Never upgrade, even when the server offers STARTTLS. Credentials then need
    /// [`ClientConfig::allow_plaintext_auth`].
    None,
    /// Upgrade with STARTTLS when the server offers it; go on in plaintext when it does not or refuses.
    /// Strippable by an active attacker: use it only without credentials.
    Opportunistic,
    /// Upgrade with STARTTLS; a server that does not offer it or refuses it ends the session with
    /// [`Error::TlsUnavailable`](crate::Error::TlsUnavailable). Never a silent downgrade.
    Required,
    /// The driver wrapped the connection in TLS before the greeting (port 465, RFC 8314).
    Implicit,
}

/// What to do when the caller asks for DSN (RFC 3461) and the server does not offer it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum DsnPolicy {
    /// Send without the DSN parameters and record [`Warning::NoDsnSupport`](crate::Warning::NoDsnSupport) in
    /// the report.
    #[default]
    BestEffort,
    /// Refuse the message before MAIL with [`Unsendable::DsnNotSupported`](crate::Unsendable::DsnNotSupported).
    Require,
}

/// Whether to use a service extension the server offers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ExtensionUse {
    /// Use it when the server offers it.
    #[default]
    WhenOffered,
    /// Never use it.
    Never,
}

/// How a [`Client`](crate::Client) runs its session: everything it needs to know before the greeting
/// besides its own name.
///
/// ```
/// use smtp_proto::{ClientConfig, ExtensionUse, TlsMode};
/// let mut config = ClientConfig::new();
/// config.tls = TlsMode::Required;
/// assert_eq!(config.pipelining, ExtensionUse::WhenOffered);
/// ```
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ClientConfig {
    /// SMTP or LMTP.
    pub protocol: Protocol,
    /// How the session is secured. Default: [`TlsMode::Opportunistic`], made [`TlsMode::Required`] by
    /// [`ClientConfig::with_credentials`].
    pub tls: TlsMode,
    /// Credentials for AUTH. When set, the session fails rather than send mail unauthenticated.
    pub credentials: Option<Credentials>,
    /// The SASL mechanisms to use, in order of preference: the first that the server offers and that fits
    /// the credentials is used. Default: [`Mechanism::PREFERENCE`] (strongest first).
    pub auth_mechanisms: Vec<Mechanism>,
    /// Allow AUTH outside TLS. Off by default (RFC 8314 §5, RFC 4954 §14): only for loopback tests.
    pub allow_plaintext_auth: bool,
    /// PIPELINING (RFC 2920).
    pub pipelining: ExtensionUse,
    /// BDAT (RFC 3030), when the server offers CHUNKING. A body declared binary needs it.
    pub chunking: ExtensionUse,
    /// What to do when DSN is asked for and not offered.
    pub dsn_policy: DsnPolicy,
    /// Per-command timeouts.
    pub timeouts: Timeouts,
    /// Reply parser limits and leniency.
    pub reply: ReplyConfig,
    /// Emit [`Event::Transcript`](crate::Event::Transcript) for every command and reply (AUTH payloads
    /// redacted, body octets counted, not shown). Off by default: it allocates per line.
    pub transcript: bool,
    /// How many body bytes the client buffers before `write_body` pushes back (and the size of a BDAT chunk).
    pub body_buffer: usize,
    /// With PIPELINING, how many BDAT chunks may await their reply at once (at least 1; without PIPELINING
    /// always 1). After a refused chunk no further chunk is sent (RFC 3030 §2), so this also bounds what a
    /// refused message still puts on the wire: `bdat_window` chunks of `body_buffer` octets, plus the last.
    pub bdat_window: usize,
    /// At most this many transactions (MAIL commands) a session: our own limit, on top of the server's
    /// `LIMITS MAILMAX` (RFC 9422 §4); the fewer of the two applies ([`Client::mail_max`](crate::Client::mail_max)).
    /// Default: none of ours.
    pub mail_max: Option<u32>,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig::new()
    }
}

impl ClientConfig {
    /// A configuration with the defaults: SMTP, opportunistic STARTTLS, pipelining and chunking when
    /// offered, best-effort DSN, RFC 5321 timeouts, 64 KiB body buffer.
    pub fn new() -> ClientConfig {
        ClientConfig {
            protocol: Protocol::Smtp,
            tls: TlsMode::Opportunistic,
            credentials: None,
            auth_mechanisms: Mechanism::PREFERENCE.to_vec(),
            allow_plaintext_auth: false,
            pipelining: ExtensionUse::WhenOffered,
            chunking: ExtensionUse::WhenOffered,
            dsn_policy: DsnPolicy::BestEffort,
            timeouts: Timeouts::RFC5321,
            reply: ReplyConfig::default(),
            body_buffer: 64 * 1024,
            bdat_window: 2,
            mail_max: None,
            transcript: false,
        }
    }

    /// Sets credentials and, unless TLS is implicit, makes STARTTLS required (RFC 8314 §5.2).
    pub fn with_credentials(mut self, credentials: Credentials) -> ClientConfig {
        self.credentials = Some(credentials);
        if self.tls != TlsMode::Implicit {
            self.tls = TlsMode::Required;
        }
        self
    }
}
