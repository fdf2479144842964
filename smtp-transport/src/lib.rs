//! What the SMTP drivers (`smtp-blocking`, `smtp-smol`) share: where to connect and how, the URL form users
//! know from lettre, and the rustls configuration. No IO happens here except reading a CA file.
//!
//! ```
//! use smtp_transport::Options;
//! use smtp_proto::TlsMode;
//!
//! let o = Options::from_url("smtps://alice:s3cr%2Ft@mail.example.org").unwrap();
//! assert_eq!((o.host.as_str(), o.port, o.session.tls), ("mail.example.org", 465, TlsMode::Implicit));
//! assert_eq!(o.session.credentials.as_ref().map(|c| c.username()), Some("alice"));
//!
//! let o = Options::from_url("smtp+starttls://mail.example.org").unwrap();
//! assert_eq!((o.port, o.session.tls), (587, TlsMode::Required));
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs, unreachable_pub)]

pub mod driver;
#[doc(hidden)]
pub mod fuzzing;
pub mod mx;
mod one_shot;
pub mod pool;
pub mod rate;
mod split;
mod tls;

pub use one_shot::OneShot;
pub use tls::{CertificateCheck, TlsSetup};

use std::fmt;
use std::io::{self, ErrorKind};
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::RootCertStore;
use rustls::client::WebPkiServerVerifier;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};
use smtp_proto::address::HeloName;
use smtp_proto::sasl::{Credentials, SaslError};
use smtp_proto::{ApiMisuse, Blame, ClientConfig, ExtensionUse, Protocol, SendError, TlsMode};

/// The SMTP relay port (RFC 5321).
pub const SMTP_PORT: u16 = 25;
/// The submission port, STARTTLS (RFC 6409).
pub const SUBMISSION_PORT: u16 = 587;
/// The submission port with implicit TLS (RFC 8314).
pub const SUBMISSIONS_PORT: u16 = 465;

/// Where to connect and how: everything a driver needs besides the messages.
///
/// How the session runs (TLS mode, credentials, AUTH mechanisms, PIPELINING and CHUNKING, DSN policy,
/// timeouts, reply limits and leniency, buffers, transcript) is the core's [`ClientConfig`], in
/// [`Options::session`]; the rest is about reaching the server.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Options {
    /// Host name or IP address of the server. Also the name the TLS certificate must carry, unless
    /// [`Options::tls_name`] says otherwise.
    pub host: String,
    /// TCP port.
    pub port: u16,
    /// The EHLO name. `None`: the address literal of the local end of the connection (`[192.0.2.1]`),
    /// which RFC 5321 §4.1.4 allows when the host has no meaningful name.
    pub helo_name: Option<HeloName>,
    /// How the session runs.
    pub session: ClientConfig,
    /// Bound on DNS + TCP connect (+ the TLS handshake).
    pub connect_timeout: Duration,
    /// Extra trust roots (PEM), added to the webpki roots: for private CAs and tests.
    pub ca_file: Option<PathBuf>,
    /// The name checked in the server's certificate, when it differs from `host` (an MX host's name when
    /// `host` is one of its addresses).
    pub tls_name: Option<String>,
    /// Whether the server's certificate must verify ([`CertificateCheck::Required`], the default) or is
    /// only checked and the verdict recorded (opportunistic TLS for MX delivery: see [`mx::TlsPolicy`]).
    pub certificate: CertificateCheck,
    /// Send a message whose connection died before its end of data (a lost connection, a 421) again, once,
    /// on a new connection: it was not sent. Off by default; a [pool] turns it on.
    pub retry_unsent: bool,
    /// A rate limit on transactions, shared by every connection made with these options (and their clones):
    /// see [`rate`]. `None`: as fast as the server answers.
    pub rate: Option<Arc<rate::Rate>>,
    /// At most this many recipients in one transaction, the rest in further ones (when the body can be read
    /// again), besides the server's `LIMITS RCPTMAX`. Default 100: what RFC 5321 §4.5.3.1.8 makes every
    /// server take; Postfix, for one, ends a session that sends far more.
    pub rcpt_per_transaction: Option<u32>,
}

impl Options {
    /// Options for `host:port`: implicit TLS on 465, opportunistic STARTTLS elsewhere; the core's defaults
    /// for the rest (RFC 5321 timeouts, PIPELINING and CHUNKING when offered).
    pub fn new(host: impl Into<String>, port: u16) -> Options {
        let mut session = ClientConfig::new();
        if port == SUBMISSIONS_PORT {
            session.tls = TlsMode::Implicit;
        }
        Options {
            host: host.into(),
            port,
            helo_name: None,
            session,
            connect_timeout: Duration::from_secs(30),
            ca_file: None,
            tls_name: None,
            certificate: CertificateCheck::Required,
            retry_unsent: false,
            rate: None,
            rcpt_per_transaction: Some(100),
        }
    }

    /// Options for a server given as `HOST[:PORT]` or `[IPv6][:PORT]` (port 25 by default), as
    /// [`Options::new`] sets them.
    ///
    /// ```
    /// use smtp_transport::Options;
    /// assert_eq!(Options::from_server("[::1]:2525").unwrap().port, 2525);
    /// assert!(Options::from_server("::1").is_err()); // IPv6 needs brackets
    /// ```
    pub fn from_server(server: &str) -> Result<Options, UrlError> {
        let bad = |what| UrlError { url: server.to_owned(), what };
        let (host, port) = split_host_port(server).ok_or(bad("expected HOST[:PORT] or [IPv6][:PORT]"))?;
        if host.chars().any(|c| c.is_control() || c.is_whitespace()) {
            return Err(bad("invalid host"));
        }
        Ok(Options::new(host, port.unwrap_or(SMTP_PORT)))
    }

    /// Sets credentials; STARTTLS becomes required unless TLS is implicit (RFC 8314 §5.2).
    pub fn with_credentials(mut self, credentials: Credentials) -> Options {
        self.session = self.session.with_credentials(credentials);
        self
    }

    /// Parses `scheme://[user[:password]@]host[:port][?key=value&…]`.
    ///
    /// | scheme | TLS | default port |
    /// | --- | --- | --- |
    /// | `smtp` | STARTTLS when offered; required with credentials | 25, or 587 with credentials |
    /// | `smtp+starttls` | STARTTLS required | 587 |
    /// | `smtps` | implicit TLS | 465 |
    /// | `lmtp` | none | 24 |
    ///
    /// User and password are percent-decoded. Query keys: `ehlo=NAME`, `tls=none|opportunistic|required|implicit`,
    /// `pipelining=auto|never`, `chunking=auto|never`. IPv6 hosts go in brackets: `smtp://[::1]:2525`.
    pub fn from_url(url: &str) -> Result<Options, UrlError> {
        let bad = |what: &'static str| UrlError { url: redact(url), what };
        let (scheme, rest) = url.split_once("://").ok_or(bad("missing scheme://"))?;
        let (rest, query) = match rest.split_once('?') {
            Some((r, q)) => (r, Some(q)),
            None => (rest, None),
        };
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        if rest.contains('/') {
            return Err(bad("a path is not allowed"));
        }
        let (userinfo, hostport) = match rest.rsplit_once('@') {
            Some((u, h)) => (Some(u), h),
            None => (None, rest),
        };
        let (host, port) = split_host_port(hostport).ok_or(bad("invalid host or port"))?;
        if host.is_empty() || host.chars().any(|c| c.is_control() || c.is_whitespace()) {
            return Err(bad("invalid host"));
        }
        let credentials = match userinfo {
            None => None,
            Some(u) => {
                let (user, pass) = u.split_once(':').ok_or(bad("credentials need user:password"))?;
                let user = percent_decode(user).ok_or(bad("invalid percent-encoding in the user"))?;
                let pass = percent_decode(pass).ok_or(bad("invalid percent-encoding in the password"))?;
                let creds = Credentials::password(user, pass);
                creds.validate().map_err(|_| bad("invalid credentials"))?;
                Some(creds)
            }
        };
        let (tls, default_port, protocol) = match scheme.to_ascii_lowercase().as_str() {
            "smtp" if credentials.is_some() => (TlsMode::Required, SUBMISSION_PORT, Protocol::Smtp),
            "smtp" => (TlsMode::Opportunistic, SMTP_PORT, Protocol::Smtp),
            "smtp+starttls" | "submission" => (TlsMode::Required, SUBMISSION_PORT, Protocol::Smtp),
            "smtps" | "submissions" => (TlsMode::Implicit, SUBMISSIONS_PORT, Protocol::Smtp),
            "lmtp" => (TlsMode::None, 24, Protocol::Lmtp),
            _ => return Err(bad("unknown scheme (smtp, smtp+starttls, smtps, lmtp)")),
        };
        let mut o = Options::new(host, port.unwrap_or(default_port));
        o.session.tls = tls;
        o.session.protocol = protocol;
        o.session.credentials = credentials;
        for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').ok_or(bad("query parameters are key=value"))?;
            let v = percent_decode(v).ok_or(bad("invalid percent-encoding in the query"))?;
            match k {
                "ehlo" | "helo" => o.helo_name = Some(v.parse().map_err(|_| bad("invalid ehlo name"))?),
                "tls" => {
                    o.session.tls = match v.as_str() {
                        "none" => TlsMode::None,
                        "opportunistic" => TlsMode::Opportunistic,
                        "required" | "starttls" => TlsMode::Required,
                        "implicit" => TlsMode::Implicit,
                        _ => return Err(bad("tls is none, opportunistic, required or implicit")),
                    }
                }
                "pipelining" | "chunking" => {
                    let usage = match v.as_str() {
                        "auto" => ExtensionUse::WhenOffered,
                        "never" => ExtensionUse::Never,
                        _ => return Err(bad("pipelining and chunking are auto or never")),
                    };
                    match k {
                        "pipelining" => o.session.pipelining = usage,
                        _ => o.session.chunking = usage,
                    }
                }
                _ => return Err(bad("unknown query parameter (ehlo, tls, pipelining, chunking)")),
            }
        }
        Ok(o)
    }

    /// Checks what can be checked before connecting: the credentials (no NUL in PLAIN fields, no ^A in OAuth
    /// fields, nothing empty) and the TLS setup (the CA file, the server name). The adapters call it first, so
    /// bad input never reaches the wire.
    pub fn validate(&self) -> Result<(), Error> {
        if let Some(c) = &self.session.credentials {
            c.validate().map_err(Error::Credentials)?;
        }
        self.tls_setup()?;
        Ok(())
    }

    /// The EHLO name for a connection whose local address is `local`: [`Options::helo_name`], else that
    /// address as a literal.
    pub fn helo_name_for(&self, local: Option<IpAddr>) -> HeloName {
        helo_name_for(self.helo_name.as_ref(), local)
    }

    /// The rustls configuration: webpki roots plus [`Options::ca_file`], host-name checks on, TLS 1.2+. Under
    /// [`CertificateCheck::Recorded`] the driver puts a verifier of its own in each session's copy.
    pub fn tls_config(&self) -> Result<Arc<rustls::ClientConfig>, TlsSetupError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsSetupError::Rustls(e.to_string()))?
            .with_root_certificates(self.roots()?)
            .with_no_client_auth();
        Ok(Arc::new(config))
    }

    /// The trust roots: webpki's plus [`Options::ca_file`].
    fn roots(&self) -> Result<RootCertStore, TlsSetupError> {
        let mut roots = RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() };
        if let Some(path) = &self.ca_file {
            let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
                .map_err(|e| TlsSetupError::CaFile(path.clone(), e.to_string()))?
                .collect::<Result<_, _>>()
                .map_err(|e| TlsSetupError::CaFile(path.clone(), e.to_string()))?;
            if certs.is_empty() {
                return Err(TlsSetupError::CaFile(path.clone(), "no certificate in the file".into()));
            }
            for cert in certs {
                roots.add(cert).map_err(|e| TlsSetupError::CaFile(path.clone(), e.to_string()))?;
            }
        }
        Ok(roots)
    }

    /// What the driver's TLS needs, unless TLS is off ([`TlsMode::None`]).
    pub fn tls_setup(&self) -> Result<Option<TlsSetup>, TlsSetupError> {
        if self.session.tls == TlsMode::None {
            return Ok(None);
        }
        let recorded = match self.certificate {
            CertificateCheck::Required => None,
            CertificateCheck::Recorded => {
                let provider = Arc::new(rustls::crypto::ring::default_provider());
                let check = WebPkiServerVerifier::builder_with_provider(Arc::new(self.roots()?), provider)
                    .build()
                    .map_err(|e| TlsSetupError::Rustls(e.to_string()))?;
                Some(check)
            }
        };
        let (config, name) = (self.tls_config()?, self.server_name()?);
        Ok(Some(TlsSetup { config, name, handshake_timeout: self.connect_timeout, recorded }))
    }

    /// The driver for a connection whose local address is `local`: the session as these options say. Its
    /// time (every `now`) counts from `origin`, which the adapter reads as its clock.
    pub fn driver(&self, local: Option<IpAddr>, origin: Instant) -> Result<driver::Driver, Error> {
        let (helo, tls) = (self.helo_name.clone(), self.tls_setup()?);
        let mut driver = driver::Driver::new(helo, local, self.session.clone(), tls, Duration::ZERO);
        driver.retry_unsent(self.retry_unsent);
        driver.rcpt_per_transaction(self.rcpt_per_transaction);
        if let Some(rate) = &self.rate {
            driver.pace(Arc::clone(rate), origin);
        }
        Ok(driver)
    }

    /// The name the server's certificate must match.
    pub fn server_name(&self) -> Result<ServerName<'static>, TlsSetupError> {
        let name = self.tls_name.as_deref().unwrap_or(&self.host);
        ServerName::try_from(name.to_owned()).map_err(|_| TlsSetupError::ServerName(name.to_owned()))
    }
}

/// Why a connection, a session or a send failed. [`Error::blame`] says whose fault it is.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// The `smtp://` URL is invalid.
    Url(UrlError),
    /// The TLS configuration could not be built (CA file, server name).
    TlsSetup(TlsSetupError),
    /// The credentials are unusable (a NUL in a PLAIN field, an empty password…): refused before connecting.
    Credentials(SaslError),
    /// DNS resolution or the TCP connect failed, or the connect timeout passed.
    Connect(io::Error),
    /// The TLS handshake failed (certificate, host name, protocol, timeout); a rustls error is its source.
    Tls(io::Error),
    /// Reading or writing the connection failed in the middle of the session.
    Io(io::Error),
    /// The core ended the session: a 421, a refused AUTH, missing STARTTLS, a timeout, an unexpected EOF…
    /// The server's reply is inside when there was one.
    Session(smtp_proto::Error),
    /// The message could not be handed over, before any of its bytes was written: the server cannot carry it
    /// (SIZE, 8BITMIME, SMTPUTF8, DSN, REQUIRETLS, LIMITS), or the session is busy or closed.
    Send(SendError),
    /// Reading the message body failed (or it had 8-bit octets under a 7-bit declaration): the session was
    /// aborted, since DATA cannot be cancelled cleanly.
    Body(io::Error),
    /// The session had already ended, for this reason.
    Closed(Arc<Error>),
    /// A pool's server failed (connects, or greetings refusing service) and is left alone for this long more.
    Backoff(Duration),
}

impl Error {
    /// Whose fault it is: the server's, the configuration's, the caller's, or the connection's.
    pub fn blame(&self) -> Blame {
        match self {
            Error::Url(_) | Error::TlsSetup(_) | Error::Credentials(_) => Blame::Local,
            Error::Connect(_) | Error::Tls(_) | Error::Io(_) => Blame::Transport,
            Error::Session(e) => e.blame(),
            Error::Send(e) => e.blame(),
            Error::Body(_) => Blame::Misuse,
            Error::Closed(cause) => cause.blame(),
            Error::Backoff(_) => Blame::Transport,
        }
    }

    /// The server's reply behind the error, when there is one (a 421, a refused AUTH, …).
    pub fn reply(&self) -> Option<&smtp_proto::Reply> {
        match self {
            Error::Session(e) => e.reply(),
            Error::Closed(cause) => cause.reply(),
            _ => None,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Url(e) => e.fmt(f),
            Error::TlsSetup(e) => e.fmt(f),
            Error::Credentials(e) => write!(f, "invalid credentials: {e}"),
            Error::Connect(e) => write!(f, "cannot connect to the SMTP server: {e}"),
            Error::Tls(e) => write!(f, "TLS handshake failed: {e}"),
            Error::Io(e) => write!(f, "SMTP connection failed: {e}"),
            Error::Session(e) => write!(f, "SMTP session ended: {e}"),
            Error::Send(e) => e.fmt(f),
            Error::Body(e) => write!(f, "reading the message body failed: {e}"),
            Error::Closed(cause) => write!(f, "the session had already ended: {cause}"),
            Error::Backoff(left) => {
                write!(f, "the server failed and is left alone for {:.1} s more", left.as_secs_f64())
            }
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Url(e) => Some(e),
            Error::TlsSetup(e) => Some(e),
            Error::Credentials(e) => Some(e),
            Error::Tls(e) => match e.get_ref() {
                Some(inner) => Some(inner),
                None => Some(e),
            },
            Error::Connect(e) | Error::Io(e) | Error::Body(e) => Some(e),
            Error::Session(e) => Some(e),
            Error::Send(e) => Some(e),
            Error::Closed(cause) => Some(cause.as_ref()),
            Error::Backoff(_) => None,
        }
    }
}

impl From<UrlError> for Error {
    fn from(e: UrlError) -> Self {
        Error::Url(e)
    }
}

impl From<TlsSetupError> for Error {
    fn from(e: TlsSetupError) -> Self {
        Error::TlsSetup(e)
    }
}

impl From<Error> for io::Error {
    /// Keeps the error whole (as the inner error of an `io::Error`) with the closest [`ErrorKind`]: the IO
    /// error's own kind, else one for whose fault it is.
    fn from(e: Error) -> io::Error {
        let kind = match &e {
            Error::Connect(e) | Error::Tls(e) | Error::Io(e) | Error::Body(e) => e.kind(),
            Error::Session(smtp_proto::Error::Timeout(_)) => ErrorKind::TimedOut,
            Error::Session(smtp_proto::Error::UnexpectedEof) => ErrorKind::UnexpectedEof,
            Error::Send(SendError::Misuse(ApiMisuse::NotConnected)) | Error::Closed(_) => {
                ErrorKind::NotConnected
            }
            other => match other.blame() {
                Blame::Remote => ErrorKind::ConnectionAborted,
                Blame::Local | Blame::Misuse => ErrorKind::InvalidInput,
                Blame::Transport => ErrorKind::BrokenPipe,
            },
        };
        io::Error::new(kind, e)
    }
}

/// A URL or `HOST[:PORT]` that [`Options::from_url`] or [`Options::from_server`] cannot use. The password
/// never appears in it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UrlError {
    url: String,
    what: &'static str,
}

impl fmt::Display for UrlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid SMTP server address {:?}: {}", self.url, self.what)
    }
}

impl std::error::Error for UrlError {}

/// Why the TLS configuration could not be built.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum TlsSetupError {
    /// The CA file could not be read or holds no valid certificate.
    CaFile(PathBuf, String),
    /// The host is not a valid DNS name or IP address for certificate checks.
    ServerName(String),
    /// rustls refused the configuration.
    Rustls(String),
}

impl fmt::Display for TlsSetupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TlsSetupError::CaFile(p, e) => write!(f, "CA file {}: {e}", p.display()),
            TlsSetupError::ServerName(n) => write!(f, "{n:?} is not a valid TLS server name"),
            TlsSetupError::Rustls(e) => write!(f, "TLS configuration: {e}"),
        }
    }
}

impl std::error::Error for TlsSetupError {}

/// `name`, else the address literal of `local` (RFC 5321 §4.1.4).
fn helo_name_for(name: Option<&HeloName>, local: Option<IpAddr>) -> HeloName {
    name.cloned().unwrap_or_else(|| {
        let literal = match local {
            Some(IpAddr::V4(a)) => format!("[{a}]"),
            Some(IpAddr::V6(a)) => format!("[IPv6:{a}]"),
            None => "[127.0.0.1]".to_owned(),
        };
        literal.parse().expect("an IP address literal is a valid EHLO name")
    })
}

/// Splits `HOST[:PORT]` or `[IPv6][:PORT]`. `None` for an empty host, a bare IPv6 address (it needs
/// brackets), an invalid bracketed address, or a port that is not 1..=65535.
fn split_host_port(s: &str) -> Option<(String, Option<u16>)> {
    let port = |p: &str| p.parse::<u16>().ok().filter(|p| *p != 0);
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        host.parse::<std::net::Ipv6Addr>().ok()?;
        match after {
            "" => (host, None),
            p => (host, Some(port(p.strip_prefix(':')?)?)),
        }
    } else {
        match s.split_once(':') {
            Some((h, p)) => (h, Some(port(p)?)),
            None => (s, None),
        }
    };
    (!host.is_empty()).then(|| (host.to_owned(), port))
}

fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// The URL with any password replaced, for error messages.
fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    match rest[..authority_end].rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split(':').next().unwrap_or("");
            format!("{scheme}://{user}:***@{host}{}", &rest[authority_end..])
        }
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_forms() {
        let o = Options::from_url("smtp://mx.example.org").unwrap();
        let s = &o.session;
        assert_eq!((o.port, s.tls, s.protocol), (25, TlsMode::Opportunistic, Protocol::Smtp));
        let o = Options::from_url("smtp://u:p@mx.example.org").unwrap();
        assert_eq!((o.port, o.session.tls), (587, TlsMode::Required));
        let url =
            "smtp://mx.example.org:2525?tls=none&ehlo=client.example.org&pipelining=never&chunking=never";
        let o = Options::from_url(url).unwrap();
        assert_eq!((o.port, o.session.tls), (2525, TlsMode::None));
        assert_eq!(o.helo_name.unwrap().as_str(), "client.example.org");
        let never = (ExtensionUse::Never, ExtensionUse::Never);
        assert_eq!((o.session.pipelining, o.session.chunking), never);
        let o = Options::from_url("SMTPS://[::1]:4650/").unwrap();
        assert_eq!((o.host.as_str(), o.port, o.session.tls), ("::1", 4650, TlsMode::Implicit));
        let o = Options::from_url("lmtp://127.0.0.1:2424").unwrap();
        assert_eq!((o.session.protocol, o.session.tls), (Protocol::Lmtp, TlsMode::None));
        let o = Options::from_url("smtps://a%40b.c:p%3Aw%25@h").unwrap();
        match o.session.credentials.unwrap() {
            Credentials::Password { username, password, .. } => {
                assert_eq!(username, "a@b.c");
                assert_eq!(password.expose(), "p:w%");
            }
            c => panic!("{c:?}"),
        }
    }

    #[test]
    fn url_errors_never_show_the_password() {
        for bad in [
            "mx.example.org",
            "http://mx.example.org",
            "smtp://",
            "smtp://mx:99999",
            "smtp://mx:0",
            "smtp://mx/path",
            "smtp://mx?tls=maybe",
            "smtp://mx?x=1",
            "smtp://mx?pipelining=maybe",
            "smtp://user@mx",
            "smtp://u:p%zz@mx",
            "smtp://[nothex]:25",
            "smtp://::1",
            "smtp://[::1]:0",
            "smtp://m x",
            "smtp://mx?ehlo=a%0d%0aRSET",
        ] {
            assert!(Options::from_url(bad).is_err(), "{bad}");
        }
        let e = Options::from_url("smtp://alice:hunter2@mx?tls=maybe").unwrap_err().to_string();
        assert!(!e.contains("hunter2") && e.contains("alice:***@mx"), "{e}");
    }

    #[test]
    fn default_ehlo_name_is_an_address_literal() {
        let o = Options::new("mx", 25);
        assert_eq!(o.helo_name_for(Some("192.0.2.1".parse().unwrap())).as_str(), "[192.0.2.1]");
        let name = o.helo_name_for(Some("2001:db8::1".parse().unwrap()));
        assert_eq!(name.as_str(), "[IPv6:2001:db8::1]");
    }

    #[test]
    fn credentials_make_tls_required() {
        let o = Options::new("mx", 587).with_credentials(Credentials::password("u", "p"));
        assert_eq!(o.session.tls, TlsMode::Required);
        let o = Options::new("mx", 465).with_credentials(Credentials::password("u", "p"));
        assert_eq!(o.session.tls, TlsMode::Implicit);
    }

    #[test]
    fn tls_config_and_ca_file_errors() {
        let o = Options::new("mx.example.org", 465);
        assert!(o.tls_config().is_ok());
        assert!(o.server_name().is_ok());
        let mut o = o;
        o.ca_file = Some("/nonexistent/ca.pem".into());
        assert!(matches!(o.tls_config(), Err(TlsSetupError::CaFile(..))));
        o.host = "not a name".into();
        assert!(matches!(o.server_name(), Err(TlsSetupError::ServerName(_))));
    }
}
