//! Errors, sorted by blame: [`Error`] ends the session ([`Error::blame`] says whose fault it was),
//! [`ApiMisuse`] is a caller bug, [`Unsendable`] is a message refused before any of its bytes was written.

use core::fmt;

use crate::address::AddressError;
use crate::command::CommandError;
use crate::reply::{ParseError, Reply};
use crate::sasl::SaslFailure;
use crate::timer::Timer;

/// Why a session ended. It arrives once, in [`Event::Closed`](crate::Event::Closed); every message still open
/// gets its outcome before it.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// The server's bytes are not valid SMTP replies (or passed a configured limit).
    Parse(ParseError),
    /// The server broke the protocol with well-formed replies.
    Protocol(ProtocolViolation),
    /// The server said it is closing (421 at any time) or refused service in its greeting (554, 521, 4xx).
    ServiceUnavailable(Reply),
    /// EHLO/LHLO (and HELO, if tried) was refused.
    HelloRejected(Reply),
    /// Bytes arrived after the 220 to STARTTLS and before the TLS handshake: a STARTTLS response injection
    /// (CVE-2011-0411 class). Nothing received in plaintext is trusted after the upgrade.
    StartTlsInjection,
    /// TLS was required and the server did not offer STARTTLS (`None`) or refused it (`Some(reply)`).
    TlsUnavailable(Option<Reply>),
    /// Credentials are configured but the session is not encrypted and plaintext AUTH is not allowed.
    AuthRequiresTls,
    /// Credentials are configured but the server offers no mechanism that both sides support
    /// (or no AUTH at all).
    NoAuthMechanism,
    /// Authentication failed: the server's reply (535, 534, 538, 454, …), and what the SASL exchange learnt.
    AuthFailed {
        /// The final reply to the AUTH exchange, if one came.
        reply: Option<Reply>,
        /// Details from the SASL exchange (an undecodable challenge, an OAuth error document).
        sasl: Option<SaslFailure>,
    },
    /// RSET or NOOP was refused: the session is no longer reliable.
    ResetFailed(Reply),
    /// A reply did not come within its deadline.
    Timeout(Timer),
    /// The connection closed when a reply was still due.
    UnexpectedEof,
    /// The caller closed the session with [`Client::abort`](crate::Client::abort).
    Aborted,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Parse(e) => write!(f, "malformed reply from the server: {e}"),
            Error::Protocol(v) => write!(f, "protocol violation: {v}"),
            Error::ServiceUnavailable(r) => write!(f, "service unavailable: {r}"),
            Error::HelloRejected(r) => write!(f, "EHLO/HELO rejected: {r}"),
            Error::StartTlsInjection => f.write_str(
                "bytes arrived between the STARTTLS reply and the TLS handshake (injection attempt)",
            ),
            Error::TlsUnavailable(None) => {
                f.write_str("TLS is required and the server does not offer STARTTLS")
            }
            Error::TlsUnavailable(Some(r)) => write!(f, "TLS is required and STARTTLS was refused: {r}"),
            Error::AuthRequiresTls => f.write_str("refusing to authenticate over an unencrypted connection"),
            Error::NoAuthMechanism => f.write_str("the server offers no usable authentication mechanism"),
            Error::AuthFailed { reply: Some(r), .. } => write!(f, "authentication failed: {r}"),
            Error::AuthFailed { reply: None, .. } => f.write_str("authentication failed"),
            Error::ResetFailed(r) => write!(f, "RSET or NOOP refused: {r}"),
            Error::Timeout(t) => write!(f, "timed out waiting for {t}"),
            Error::UnexpectedEof => f.write_str("the server closed the connection unexpectedly"),
            Error::Aborted => f.write_str("the session was aborted"),
        }
    }
}

/// Whose fault an error is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Blame {
    /// The server broke the protocol or refused the session (a malformed or misplaced reply, a 421, a refused
    /// EHLO, AUTH or RSET, bytes injected before TLS).
    Remote,
    /// The client's own configuration or policy: TLS or an AUTH mechanism it requires is not available.
    Local,
    /// The caller: an abort, or a call the API does not allow.
    Misuse,
    /// The connection or the clock: it closed, or a reply did not come in time.
    Transport,
}

impl fmt::Display for Blame {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Blame::Remote => "the server",
            Blame::Local => "the configuration",
            Blame::Misuse => "the caller",
            Blame::Transport => "the connection",
        })
    }
}

impl Error {
    /// Whose fault the end of the session was.
    pub fn blame(&self) -> Blame {
        match self {
            Error::Parse(_)
            | Error::Protocol(_)
            | Error::ServiceUnavailable(_)
            | Error::HelloRejected(_)
            | Error::StartTlsInjection
            | Error::AuthFailed { .. }
            | Error::ResetFailed(_) => Blame::Remote,
            Error::TlsUnavailable(_) | Error::AuthRequiresTls | Error::NoAuthMechanism => Blame::Local,
            Error::Aborted => Blame::Misuse,
            Error::Timeout(_) | Error::UnexpectedEof => Blame::Transport,
        }
    }

    /// The server's reply that ended the session, when one did (a 421, a refused EHLO or AUTH, a reply out of
    /// place…).
    pub fn reply(&self) -> Option<&Reply> {
        match self {
            Error::ServiceUnavailable(r)
            | Error::HelloRejected(r)
            | Error::ResetFailed(r)
            | Error::TlsUnavailable(Some(r))
            | Error::AuthFailed { reply: Some(r), .. } => Some(r),
            Error::Protocol(v) => Some(v.reply()),
            Error::Parse(_)
            | Error::StartTlsInjection
            | Error::TlsUnavailable(None)
            | Error::AuthRequiresTls
            | Error::NoAuthMechanism
            | Error::AuthFailed { reply: None, .. }
            | Error::Timeout(_)
            | Error::UnexpectedEof
            | Error::Aborted => None,
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for Error {}

/// A protocol violation by the server, with well-formed replies.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProtocolViolation {
    /// A reply arrived that answers no command the client had sent: with nothing outstanding (421
    /// excepted), or before the command it would answer had been handed out by
    /// [`Client::poll_transmit`](crate::Client::poll_transmit) (e.g. a reply in the greeting's packet).
    UnsolicitedReply {
        /// The reply.
        reply: Reply,
        /// The command still waiting to be sent, which the reply must not be taken to answer.
        before: Option<&'static str>,
    },
    /// A reply whose class makes no sense for the command (e.g. 250 to DATA, 354 to MAIL or to the end of
    /// data).
    UnexpectedReply {
        /// The command it answered.
        command: &'static str,
        /// The reply.
        reply: Reply,
    },
}

impl ProtocolViolation {
    /// The offending reply.
    pub fn reply(&self) -> &Reply {
        match self {
            ProtocolViolation::UnsolicitedReply { reply, .. }
            | ProtocolViolation::UnexpectedReply { reply, .. } => reply,
        }
    }
}

impl fmt::Display for ProtocolViolation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProtocolViolation::UnsolicitedReply { reply, before: Some(command) } => {
                write!(f, "the server sent \"{reply}\" before the client had sent {command}")
            }
            ProtocolViolation::UnsolicitedReply { reply, before: None } => {
                write!(f, "the server sent \"{reply}\" when no reply was due")
            }
            ProtocolViolation::UnexpectedReply { command, reply } => {
                write!(f, "the server answered {command} with \"{reply}\", which makes no sense there")
            }
        }
    }
}

/// A caller bug: the call had no effect.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ApiMisuse {
    /// The session is closed or closing.
    NotConnected,
    /// Another message's body is still being written. Finish it first.
    Busy,
    /// No message with this id takes a body: it never existed, or it already has its outcome (a refused BDAT
    /// chunk, a reply during the body), whose `MessageDone` follows or came.
    UnknownMessage,
    /// `finish_body` before [`Event::BodyRequested`](crate::Event::BodyRequested).
    BodyNotRequested,
    /// The message's body was already finished.
    BodyFinished,
    /// `tls_established` was called while no TLS upgrade was asked for.
    NoTlsUpgradePending,
    /// The body holds octets above 0x7F but the envelope declared a 7-bit body.
    UndeclaredEightBit,
}

impl fmt::Display for ApiMisuse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ApiMisuse::NotConnected => "the session is closed",
            ApiMisuse::Busy => "another message's body is still being written",
            ApiMisuse::UnknownMessage => "no message with this id takes a body",
            ApiMisuse::BodyNotRequested => "the body was not requested yet",
            ApiMisuse::BodyFinished => "the message body is already finished",
            ApiMisuse::NoTlsUpgradePending => "no TLS upgrade was requested",
            ApiMisuse::UndeclaredEightBit => "8-bit body data but the envelope declares a 7-bit body",
        })
    }
}

#[cfg(feature = "std")]
impl std::error::Error for ApiMisuse {}

/// Why a message cannot go to this server, found before any of its bytes was written (the server lacks what
/// it needs: SIZE, 8BITMIME, SMTPUTF8, …). The client never sends it; the server never saw it, so nothing
/// was *rejected*.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Unsendable {
    /// The declared size is over the server's SIZE limit (RFC 1870).
    TooBig {
        /// The declared size.
        size: u64,
        /// The server's limit.
        limit: u64,
    },
    /// The body is 8-bit and the server lacks 8BITMIME (RFC 6152).
    EightBitUnsupported,
    /// The body is binary and the server lacks BINARYMIME or CHUNKING (RFC 3030), or chunking is disabled.
    BinaryUnsupported,
    /// An address (or, as the envelope says, the header) needs SMTPUTF8 and the server lacks it (RFC 6531).
    Utf8Unsupported,
    /// REQUIRETLS was asked for outside TLS, or the server does not offer it (RFC 8689).
    RequireTlsUnavailable,
    /// DSN was asked for, the server lacks it, and the policy is [`DsnPolicy::Require`](crate::DsnPolicy).
    DsnNotSupported,
    /// More recipients than the server's `LIMITS RCPTMAX` (RFC 9422): split them over several messages.
    TooManyRecipients {
        /// Recipients in the envelope.
        count: usize,
        /// The server's limit.
        max: u32,
    },
    /// This session already sent the server's `LIMITS MAILMAX` transactions (RFC 9422): open a new one.
    SessionLimit {
        /// The server's limit.
        max: u32,
    },
    /// A command would exceed its line limit (RFC 5321 §4.5.3.1.4).
    Command(CommandError),
    /// An address is invalid.
    Address(AddressError),
}

impl fmt::Display for Unsendable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Unsendable::TooBig { size, limit } => {
                write!(f, "message of {size} octets exceeds the server's limit of {limit}")
            }
            Unsendable::EightBitUnsupported => f.write_str("8-bit body and the server lacks 8BITMIME"),
            Unsendable::BinaryUnsupported => {
                f.write_str("binary body and the server lacks BINARYMIME/CHUNKING")
            }
            Unsendable::Utf8Unsupported => f.write_str(
                "the message needs SMTPUTF8 (UTF-8 in an address or the header) and the server lacks it",
            ),
            Unsendable::RequireTlsUnavailable => {
                f.write_str("REQUIRETLS needs TLS and a server that offers it")
            }
            Unsendable::DsnNotSupported => f.write_str("DSN requested and the server lacks it"),
            Unsendable::TooManyRecipients { count, max } => {
                write!(f, "{count} recipients exceed the server's limit of {max} per message")
            }
            Unsendable::SessionLimit { max } => {
                write!(f, "the server takes at most {max} messages per session")
            }
            Unsendable::Command(e) => write!(f, "{e}"),
            Unsendable::Address(e) => write!(f, "{e}"),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for Unsendable {}

/// What [`Client::send_message`](crate::Client::send_message) refuses.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SendError {
    /// A caller bug (closed session, busy).
    Misuse(ApiMisuse),
    /// The message cannot go to this server.
    Unsendable(Unsendable),
}

impl SendError {
    /// Whose fault the refusal is: the caller's, or the configuration's (the message asks for what this
    /// server cannot do).
    pub fn blame(&self) -> Blame {
        match self {
            SendError::Misuse(_) => Blame::Misuse,
            SendError::Unsendable(_) => Blame::Local,
        }
    }
}

impl From<ApiMisuse> for SendError {
    fn from(e: ApiMisuse) -> Self {
        SendError::Misuse(e)
    }
}

impl From<Unsendable> for SendError {
    fn from(e: Unsendable) -> Self {
        SendError::Unsendable(e)
    }
}

impl fmt::Display for SendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SendError::Misuse(e) => write!(f, "{e}"),
            SendError::Unsendable(e) => write!(f, "not sendable to this server: {e}"),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for SendError {}
