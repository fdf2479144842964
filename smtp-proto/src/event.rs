//! What the client tells its driver: events, and the report that ends every message.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use crate::address::ForwardPath;
use crate::error::{Error, Unsendable};
use crate::reply::Reply;
use crate::sasl::Mechanism;

/// A handle on one message, unique within a [`Client`](crate::Client).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MessageId(pub(crate) u64);

impl MessageId {
    /// The id in the report of a message no session took (sessions count their messages from 1).
    pub const UNSENT: MessageId = MessageId(0);

    /// The number behind the handle (1 for the session's first message, then counting up).
    pub fn get(self) -> u64 {
        self.0
    }
}

/// Something the driver or the application must know or do. Poll them with
/// [`Client::poll_event`](crate::Client::poll_event) after every input or command.
#[derive(Clone, Debug, PartialEq, Eq)]
// A report is big; events are few (a handful per message), so boxing would only add an allocation.
#[allow(clippy::large_enum_variant)]
#[non_exhaustive]
pub enum Event {
    /// The session is ready for mail: greeting, EHLO, STARTTLS and AUTH are done. Sent once.
    Ready,
    /// Upgrade the connection to TLS now, then call [`Client::tls_established`](crate::Client::tls_established).
    /// Read nothing more in plaintext.
    StartTls,
    /// AUTH succeeded with this mechanism.
    Authenticated(Mechanism),
    /// The server answered [`Client::noop`](crate::Client::noop) or [`Client::rset`](crate::Client::rset) with
    /// 250: the session works.
    Alive,
    /// The server is ready for this message's body: call `write_body` and `finish_body`.
    BodyRequested {
        /// The message.
        id: MessageId,
    },
    /// `write_body` accepted less than it was given; there is room again.
    BodyWritable {
        /// The message.
        id: MessageId,
    },
    /// Body octets accepted so far (the original API's `SMTPSTREAM`).
    Progress {
        /// The message.
        id: MessageId,
        /// Octets of body accepted so far (before line-ending normalisation and dot-stuffing).
        sent: u64,
        /// The declared size, if the envelope gave one.
        total: Option<u64>,
    },
    /// The server accepted a recipient.
    RecipientAccepted {
        /// The message.
        id: MessageId,
        /// Index in the envelope's recipient list.
        index: usize,
    },
    /// The server refused a recipient.
    RecipientRejected {
        /// The message.
        id: MessageId,
        /// Index in the envelope's recipient list.
        index: usize,
        /// The server's reply.
        reply: Reply,
    },
    /// The message has its outcome. Exactly one per message accepted by `send_message`.
    MessageDone(MessageReport),
    /// One line of the dialogue, when [`ClientConfig::transcript`](crate::ClientConfig::transcript) is on:
    /// a command (AUTH payloads redacted; a DATA body is summarised as its size) or a reply.
    Transcript {
        /// True for a server reply, false for what the client wrote.
        from_server: bool,
        /// The line, without CRLF (a multi-line reply in one line, its lines joined).
        line: String,
    },
    /// The session is over. Every message already has its `MessageDone`. `None` after a clean QUIT.
    Closed {
        /// Why, when it was not a clean QUIT.
        reason: Option<Error>,
    },
}

/// How a message ended: exactly one of these.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The server took responsibility for it (for at least one recipient; see each recipient's status).
    Sent,
    /// It was not delivered to anyone: refused locally, by the server, or the session ended before the end of
    /// data. Safe to retry when [`MessageReport::is_temporary`] says so.
    Rejected,
    /// The session ended after the final dot (or `BDAT … LAST`) and before the reply: it may have been
    /// delivered. A retry may deliver it twice.
    Unknown,
}

/// Why a message was not sent.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Failure {
    /// Not sent: the client found, before writing any of its bytes, that this server cannot carry it.
    Unsendable(Unsendable),
    /// MAIL was refused (see [`MessageReport::mail_reply`]).
    MailRejected,
    /// No recipient was accepted (see each recipient's reply).
    NoRecipientAccepted,
    /// DATA was refused (see [`MessageReport::data_reply`]).
    DataRejected,
    /// The end of data or a BDAT chunk was refused (see [`MessageReport::final_reply`]).
    BodyRejected,
    /// The server replied while the body was being sent (see [`MessageReport::final_reply`]).
    Interrupted,
    /// The session ended (before the end of data for [`Outcome::Rejected`], after it for [`Outcome::Unknown`]).
    Session(Error),
}

/// Something worth knowing about a message that did not stop it.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Warning {
    /// DSN was asked for but the server does not offer it: sent without the DSN parameters.
    NoDsnSupport,
    /// The message's connection ended before its end of data (a lost connection, or a 421: `failure`, with the
    /// `reply` that decided it), so it was not sent; it went again, once, on a new connection. Added by a
    /// driver that sends such messages again (a pool), never by the core.
    SentAgain {
        /// Why the first try ended.
        failure: Failure,
        /// The reply that ended it, if the server gave one.
        reply: Option<Reply>,
    },
}

/// How one recipient fared.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecipientStatus {
    /// The server took responsibility for delivering to this recipient.
    Delivered,
    /// Not delivered; a retry later may succeed (4xx, or a session that ended).
    TemporaryFailure,
    /// Not delivered; do not retry as is (5xx, or refused locally).
    PermanentFailure,
    /// The session ended after the final dot and before this recipient's reply.
    Unknown,
}

/// One recipient's result.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecipientResult {
    /// The recipient.
    pub path: ForwardPath,
    /// The reply to its RCPT, if one came.
    pub rcpt_reply: Option<Reply>,
    /// In LMTP, its own reply after the body, if one came.
    pub lmtp_reply: Option<Reply>,
    /// The verdict.
    pub status: RecipientStatus,
    /// The reply that decided the verdict, as the server wrote it: its own LMTP reply or RCPT refusal, the
    /// refusal of MAIL (which the RCPT replies after it only echo), or, for a recipient the server accepted,
    /// the message's [`reply`](MessageReport::reply). `None` when no reply decided it (refused before any
    /// byte, the connection lost, a timeout, or the outcome is unknown).
    pub reply: Option<Reply>,
}

/// The report that ends a message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MessageReport {
    /// The message.
    pub id: MessageId,
    /// Sent, Rejected or Unknown.
    pub outcome: Outcome,
    /// Why it was not sent (or, for Unknown, how the session ended).
    pub failure: Option<Failure>,
    /// Each recipient, in envelope order.
    pub recipients: Vec<RecipientResult>,
    /// The reply to MAIL, if one came.
    pub mail_reply: Option<Reply>,
    /// The reply to DATA, if one came.
    pub data_reply: Option<Reply>,
    /// The reply to the end of data or `BDAT … LAST` (or the one that interrupted the body), if one came.
    pub final_reply: Option<Reply>,
    /// Warnings, such as [`Warning::NoDsnSupport`].
    pub warnings: Vec<Warning>,
}

impl MessageReport {
    /// The reply that decided the message, as the server wrote it: the reply to the end of data (or, in
    /// LMTP, the first recipient's), the refusal of MAIL or DATA, the first recipient's refusal when none was
    /// accepted, or the reply that ended the session. `None` when no reply decided it (refused before any
    /// byte, the connection lost, a timeout).
    pub fn reply(&self) -> Option<&Reply> {
        let lmtp = |positive: bool| {
            self.recipients.iter().filter_map(|r| r.lmtp_reply.as_ref()).find(|r| r.is_positive() == positive)
        };
        match &self.failure {
            None => self.final_reply.as_ref().or_else(|| lmtp(true)),
            Some(Failure::Unsendable(_)) => None,
            Some(Failure::MailRejected) => self.mail_reply.as_ref(),
            Some(Failure::NoRecipientAccepted) => self
                .recipients
                .iter()
                .filter_map(|r| r.rcpt_reply.as_ref())
                .find(|r| !r.is_positive())
                .or(self.data_reply.as_ref()),
            Some(Failure::DataRejected) => self.data_reply.as_ref(),
            Some(Failure::BodyRejected | Failure::Interrupted) => {
                self.final_reply.as_ref().or_else(|| lmtp(false))
            }
            Some(Failure::Session(e)) => e.reply(),
        }
    }

    /// The reply that decides recipient `r`: see [`RecipientResult::reply`].
    pub(crate) fn deciding_reply<'a>(&'a self, r: &'a RecipientResult) -> Option<&'a Reply> {
        if let Some(reply) = &r.lmtp_reply {
            return Some(reply);
        }
        if self.failure == Some(Failure::MailRejected) {
            return self.mail_reply.as_ref();
        }
        match (&r.rcpt_reply, r.status) {
            (Some(reply), _) if !reply.is_positive() => Some(reply),
            (Some(_), RecipientStatus::Unknown) | (None, _) => match &self.failure {
                Some(Failure::Session(e)) => e.reply(),
                _ => None,
            },
            (Some(_), _) => self.reply(),
        }
    }

    /// True when every recipient was delivered.
    pub fn all_delivered(&self) -> bool {
        self.recipients.iter().all(|r| r.status == RecipientStatus::Delivered)
    }

    /// The recipients the server turned away for being too many in one transaction (452, or 552 with
    /// enhanced code X.5.3: RFC 5321 §4.5.3.1.10, docs/conformance.md TXN-09). Send them the message again in a new
    /// transaction; the body was streamed, so only the caller can supply it again.
    pub fn retry_recipients(&self) -> impl Iterator<Item = &ForwardPath> + '_ {
        self.recipients.iter().filter(|r| r.turned_away_as_too_many()).map(|r| &r.path)
    }

    /// True when no recipient failed permanently and nothing is unknown: a later retry of the whole message
    /// may succeed and cannot duplicate it.
    pub fn is_temporary(&self) -> bool {
        self.outcome == Outcome::Rejected
            && self.recipients.iter().all(|r| r.status == RecipientStatus::TemporaryFailure)
    }
}

impl RecipientResult {
    /// The server turned this recipient away as one too many for the transaction (452, or 552 with enhanced
    /// code X.5.3: RFC 5321 §4.5.3.1.10): it may be sent the message in another transaction.
    pub fn turned_away_as_too_many(&self) -> bool {
        self.rcpt_reply.as_ref().is_some_and(|reply| {
            let x53 = reply.enhanced().is_some_and(|e| e.subject == 5 && e.detail == 3);
            reply.code() == 452 || (reply.code() == 552 && x53)
        })
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Outcome::Sent => "sent",
            Outcome::Rejected => "rejected",
            Outcome::Unknown => "outcome unknown",
        })
    }
}

impl fmt::Display for RecipientStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RecipientStatus::Delivered => "delivered",
            RecipientStatus::TemporaryFailure => "rejected (temporary)",
            RecipientStatus::PermanentFailure => "rejected (permanent)",
            RecipientStatus::Unknown => "unknown",
        })
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Unsendable(r) => write!(f, "not sent: {r}"),
            Failure::MailRejected => f.write_str("the server refused the sender (MAIL)"),
            Failure::NoRecipientAccepted => f.write_str("the server accepted no recipient"),
            Failure::DataRejected => f.write_str("the server refused DATA"),
            Failure::BodyRejected => f.write_str("the server refused the message at its end"),
            Failure::Interrupted => f.write_str("the server answered in the middle of the body"),
            Failure::Session(e) => write!(f, "the session ended: {e}"),
        }
    }
}

/// The outcome with the reply that decided it, then one line a recipient with its own reply, as the server
/// wrote it, then the warnings:
///
/// ```text
/// sent: 250 2.0.0 Ok: queued as 4F2A
///   delivered bob@example.org: 250 2.0.0 Ok: queued as 4F2A
///   rejected (permanent) carol@example.org: 550 5.1.1 no such user
/// ```
impl fmt::Display for MessageReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.outcome)?;
        if let Some(failure) = &self.failure {
            write!(f, ": {failure}")?;
        }
        if let Some(reply) = self.reply() {
            write!(f, ": {reply}")?;
        }
        for r in &self.recipients {
            write!(f, "\n  {} {}", r.status, r.path)?;
            if let Some(reply) = &r.reply {
                write!(f, ": {reply}")?;
            }
        }
        for w in &self.warnings {
            write!(f, "\n  warning: {w}")?;
        }
        Ok(())
    }
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Warning::NoDsnSupport => {
                f.write_str("the server does not support DSN; sent without DSN parameters")
            }
            Warning::SentAgain { failure, reply } => {
                write!(f, "sent again on a new connection; the first try: {failure}")?;
                match reply {
                    Some(reply) => write!(f, ": {reply}"),
                    None => Ok(()),
                }
            }
        }
    }
}
