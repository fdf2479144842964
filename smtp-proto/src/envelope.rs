//! The envelope of one message: who it is from, who it goes to, and what it asks of the server.

use alloc::sync::Arc;
use alloc::vec::Vec;
use core::fmt;

use crate::address::{AddressError, ForwardPath, ReversePath};
use crate::command::{BodyType, EnvId, Notify, OrigRecipient, Ret};

/// One recipient, with its DSN requests (RFC 3461: NOTIFY and ORCPT).
///
/// ```
/// use smtp_proto::{Recipient, command::Notify};
/// let r = Recipient::new("bob@example.org".parse().unwrap()).notify(Notify::never());
/// assert_eq!(r.path().as_str(), "bob@example.org");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Recipient {
    path: ForwardPath,
    notify: Option<Notify>,
    orcpt: Option<OrigRecipient>,
}

impl Recipient {
    /// A recipient with no DSN request.
    pub fn new(path: ForwardPath) -> Recipient {
        Recipient { path, notify: None, orcpt: None }
    }

    /// Asks for NOTIFY (sent only when the server offers DSN).
    pub fn notify(mut self, notify: Notify) -> Recipient {
        self.notify = Some(notify);
        self
    }

    /// Sets ORCPT, the original recipient (sent only when the server offers DSN).
    pub fn orcpt(mut self, orcpt: OrigRecipient) -> Recipient {
        self.orcpt = Some(orcpt);
        self
    }

    /// The forward-path.
    pub fn path(&self) -> &ForwardPath {
        &self.path
    }

    /// The NOTIFY request, if any.
    pub fn notify_request(&self) -> Option<&Notify> {
        self.notify.as_ref()
    }

    /// The ORCPT value, if any.
    pub fn orcpt_value(&self) -> Option<&OrigRecipient> {
        self.orcpt.as_ref()
    }

    /// Gives back the forward-path.
    pub fn into_path(self) -> ForwardPath {
        self.path
    }

    pub(crate) fn wants_dsn(&self) -> bool {
        self.notify.is_some() || self.orcpt.is_some()
    }
}

impl From<ForwardPath> for Recipient {
    fn from(path: ForwardPath) -> Self {
        Recipient::new(path)
    }
}

/// Why an envelope could not be built.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum EnvelopeError {
    /// No recipient.
    NoRecipients,
    /// An address is invalid. The error names the address.
    InvalidAddress(AddressError),
}

impl fmt::Display for EnvelopeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EnvelopeError::NoRecipients => f.write_str("the message has no recipient"),
            EnvelopeError::InvalidAddress(e) => write!(f, "{e}"),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for EnvelopeError {}

impl From<AddressError> for EnvelopeError {
    fn from(e: AddressError) -> Self {
        EnvelopeError::InvalidAddress(e)
    }
}

/// The envelope of one message: a reverse-path, at least one recipient, and message-level parameters.
///
/// ```
/// use smtp_proto::{Envelope, command::{BodyType, Ret}};
/// let env = Envelope::parse("alice@example.org", &["bob@example.org", "carol@example.net"])
///     .unwrap()
///     .ret(Ret::Hdrs)
///     .body_type(BodyType::EightBitMime);
/// assert_eq!(env.recipients().len(), 2);
/// assert!(Envelope::parse("alice@example.org", &[]).is_err());
/// assert!(Envelope::parse("alice@example.org", &["bob@example.org>\r\nDATA"]).is_err());
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Envelope {
    from: ReversePath,
    /// Shared with the envelope's copies (a driver keeps one while the core sends another): a copy costs no
    /// allocation.
    recipients: Arc<Vec<Recipient>>,
    ret: Option<Ret>,
    envid: Option<EnvId>,
    body: Option<BodyType>,
    size: Option<u64>,
    requiretls: bool,
    smtputf8: bool,
}

impl Envelope {
    /// An envelope; fails with [`EnvelopeError::NoRecipients`] when `recipients` is empty.
    pub fn new<R: Into<Recipient>>(
        from: ReversePath,
        recipients: impl IntoIterator<Item = R>,
    ) -> Result<Envelope, EnvelopeError> {
        let recipients: Vec<Recipient> = recipients.into_iter().map(Into::into).collect();
        if recipients.is_empty() {
            return Err(EnvelopeError::NoRecipients);
        }
        Ok(Envelope {
            from,
            recipients: Arc::new(recipients),
            ret: None,
            envid: None,
            body: None,
            size: None,
            requiretls: false,
            smtputf8: false,
        })
    }

    /// Parses the reverse-path (`""` or `"<>"` for the null path) and each recipient, naming the first
    /// invalid address in the error.
    pub fn parse(from: &str, to: &[&str]) -> Result<Envelope, EnvelopeError> {
        let from = ReversePath::parse(from)?;
        let mut recipients = Vec::with_capacity(to.len());
        for t in to {
            recipients.push(Recipient::new(ForwardPath::parse(t)?));
        }
        Envelope::new(from, recipients)
    }

    /// Asks for RET (DSN: return the full message or headers only).
    pub fn ret(mut self, ret: Ret) -> Envelope {
        self.ret = Some(ret);
        self
    }

    /// Sets ENVID (DSN envelope identifier).
    pub fn envid(mut self, envid: EnvId) -> Envelope {
        self.envid = Some(envid);
        self
    }

    /// Declares the body's content: 7-bit, 8-bit MIME, or binary MIME (RFC 6152, RFC 3030). Undeclared, the
    /// client declares 8BITMIME to a server that offers it, and 7-bit to one that does not. Under a 7-bit
    /// declaration the client checks the body as it streams and refuses 8-bit octets.
    pub fn body_type(mut self, body: BodyType) -> Envelope {
        self.body = Some(body);
        self
    }

    /// Declares the body's size in octets (CRLF line endings, no dot-stuffing): checked against the server's
    /// SIZE before MAIL, sent as `SIZE=`, and used as the total in progress events.
    pub fn size(mut self, size: u64) -> Envelope {
        self.size = Some(size);
        self
    }

    /// Asks for REQUIRETLS (RFC 8689): the message is refused unless the session is TLS and the server
    /// offers it.
    pub fn requiretls(mut self, on: bool) -> Envelope {
        self.requiretls = on;
        self
    }

    /// Asks for SMTPUTF8 (RFC 6531) even when every address is ASCII: for a message whose header fields hold
    /// UTF-8 (RFC 6532). An address that needs it asks for it by itself. A server without SMTPUTF8 gets the
    /// message refused before MAIL ([`Unsendable::Utf8Unsupported`](crate::Unsendable::Utf8Unsupported)).
    pub fn smtputf8(mut self, on: bool) -> Envelope {
        self.smtputf8 = on;
        self
    }

    /// The same envelope (reverse-path, DSN requests, body type, size, REQUIRETLS, SMTPUTF8) for other
    /// recipients: one transaction of a message sent in several (RFC 5321 §4.5.3.1.10).
    pub fn with_recipients(
        &self,
        recipients: impl IntoIterator<Item = Recipient>,
    ) -> Result<Envelope, EnvelopeError> {
        let Envelope { from, recipients, .. } = Envelope::new(self.from.clone(), recipients)?;
        Ok(Envelope { from, recipients, envid: self.envid.clone(), ..*self })
    }

    /// Appends a recipient.
    pub fn add_recipient(&mut self, recipient: impl Into<Recipient>) {
        Arc::make_mut(&mut self.recipients).push(recipient.into());
    }

    /// The reverse-path.
    pub fn from(&self) -> &ReversePath {
        &self.from
    }

    /// The recipients, never empty.
    pub fn recipients(&self) -> &[Recipient] {
        &self.recipients
    }

    /// The RET request, if any.
    pub fn ret_request(&self) -> Option<Ret> {
        self.ret
    }

    /// The ENVID, if any.
    pub fn envid_value(&self) -> Option<&EnvId> {
        self.envid.as_ref()
    }

    /// The declared body type, if any.
    pub fn declared_body(&self) -> Option<BodyType> {
        self.body
    }

    /// The declared size, if any.
    pub fn declared_size(&self) -> Option<u64> {
        self.size
    }

    /// Whether REQUIRETLS is asked for.
    pub fn requires_tls(&self) -> bool {
        self.requiretls
    }

    /// Gives back the recipients.
    pub fn into_recipients(self) -> Vec<Recipient> {
        Arc::try_unwrap(self.recipients).unwrap_or_else(|shared| (*shared).clone())
    }

    pub(crate) fn wants_dsn(&self) -> bool {
        self.ret.is_some() || self.envid.is_some() || self.recipients.iter().any(Recipient::wants_dsn)
    }

    /// Whether the message needs SMTPUTF8: asked for, or an address that is not ASCII.
    pub fn needs_smtputf8(&self) -> bool {
        self.smtputf8 || self.from.needs_smtputf8() || self.recipients.iter().any(|r| r.path.needs_smtputf8())
    }
}
