//! MAIL and RCPT parameters: SIZE, BODY, SMTPUTF8, DSN (RET, ENVID, NOTIFY, ORCPT), AUTH=, REQUIRETLS.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use super::xtext::{utf8_addr_encode, utf8_addr_len, xtext_encode, xtext_len};
use crate::address::{AddressErrorKind, ForwardPath, Mailbox, ReversePath};

/// Maximum length of an ENVID value before encoding (RFC 3461 §4.4).
pub const MAX_ENVID_LEN: usize = 100;
/// Maximum length of an ORCPT value, `addr-type;` included, as sent (RFC 3461 §4.2).
pub const MAX_ORCPT_LEN: usize = 500;

/// Why a MAIL or RCPT parameter value was rejected.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParamErrorKind {
    /// The value is empty.
    Empty,
    /// The value holds a control character (CR, LF, NUL, ...).
    ControlCharacter,
    /// The value holds a non-ASCII character where only ASCII is allowed.
    NonAscii,
    /// The value is longer than its limit (ENVID 100 characters, ORCPT 500).
    TooLong,
    /// The value does not follow the parameter's syntax.
    Syntax,
    /// A NOTIFY keyword is repeated.
    Duplicate,
    /// `NEVER` is combined with other NOTIFY keywords (RFC 3461 §4.1).
    NeverWithOthers,
    /// Malformed xtext: a `+` without two upper-case hex digits, or an octet outside 33–126, or a raw `=`.
    InvalidXtext,
    /// A `utf-8` ORCPT address is not a valid mailbox.
    InvalidAddress(AddressErrorKind),
}

impl fmt::Display for ParamErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Empty => f.write_str("empty value"),
            Self::ControlCharacter => f.write_str("control character"),
            Self::NonAscii => f.write_str("non-ASCII character"),
            Self::TooLong => f.write_str("value too long"),
            Self::Syntax => f.write_str("invalid syntax"),
            Self::Duplicate => f.write_str("repeated keyword"),
            Self::NeverWithOthers => f.write_str("NEVER combined with other keywords"),
            Self::InvalidXtext => f.write_str("invalid xtext"),
            Self::InvalidAddress(k) => write!(f, "invalid address: {k}"),
        }
    }
}

/// A MAIL or RCPT parameter value that failed validation.
///
/// ```
/// use smtp_proto::command::{EnvId, ParamErrorKind};
///
/// let e = EnvId::new("a\r\nRSET").unwrap_err();
/// assert_eq!(e.parameter(), "ENVID");
/// assert_eq!(e.kind(), ParamErrorKind::ControlCharacter);
/// assert_eq!(e.to_string(), "invalid ENVID parameter: control character");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParamError {
    param: &'static str,
    kind: ParamErrorKind,
}

impl ParamError {
    pub(crate) fn new(param: &'static str, kind: ParamErrorKind) -> Self {
        ParamError { param, kind }
    }

    /// What was wrong.
    pub fn kind(&self) -> ParamErrorKind {
        self.kind
    }

    /// Which parameter: `"ENVID"`, `"NOTIFY"`, `"ORCPT"` or `"xtext"`.
    pub fn parameter(&self) -> &'static str {
        self.param
    }
}

impl fmt::Display for ParamError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid {} parameter: {}", self.param, self.kind)
    }
}

#[cfg(feature = "std")]
impl std::error::Error for ParamError {}

/// `RET=` on MAIL (RFC 3461 §4.3): what a DSN returns of the message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Ret {
    /// `RET=FULL`: the whole message.
    Full,
    /// `RET=HDRS`: the headers only.
    Hdrs,
}

/// `BODY=` on MAIL (RFC 6152, RFC 3030).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BodyType {
    /// `BODY=7BIT`.
    SevenBit,
    /// `BODY=8BITMIME`.
    EightBitMime,
    /// `BODY=BINARYMIME` (needs BDAT).
    BinaryMime,
}

impl BodyType {
    pub(crate) fn keyword(self) -> &'static str {
        match self {
            BodyType::SevenBit => "7BIT",
            BodyType::EightBitMime => "8BITMIME",
            BodyType::BinaryMime => "BINARYMIME",
        }
    }
}

/// A DSN envelope identifier for `ENVID=` on MAIL (RFC 3461 §4.4).
///
/// Validated at construction: 1 to 100 printable US-ASCII characters, 32 (space) to 126. We read
/// "printable" as C's `isprint`, so the space is allowed (xtext sends it as `+20`); CR, LF, NUL and every
/// other control character are rejected even though xtext could encode them (TV-50). On the wire the value
/// is xtext-encoded.
///
/// ```
/// use smtp_proto::command::EnvId;
///
/// assert_eq!(EnvId::new("QQ314159").unwrap().as_str(), "QQ314159");
/// assert!(EnvId::new("a b").is_ok());
/// assert!(EnvId::new("a\r\nb").is_err());
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct EnvId(String);

impl EnvId {
    /// Validates an envelope identifier.
    pub fn new(s: &str) -> Result<EnvId, ParamError> {
        let err = |kind| ParamError::new("ENVID", kind);
        if s.is_empty() {
            return Err(err(ParamErrorKind::Empty));
        }
        if s.chars().any(|c| c < ' ' || c == '\u{7f}' || ('\u{80}'..='\u{9f}').contains(&c)) {
            return Err(err(ParamErrorKind::ControlCharacter));
        }
        if !s.is_ascii() {
            return Err(err(ParamErrorKind::NonAscii));
        }
        if s.len() > MAX_ENVID_LEN {
            return Err(err(ParamErrorKind::TooLong));
        }
        Ok(EnvId(String::from(s)))
    }

    /// The identifier, before xtext encoding.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

const SUCCESS: u8 = 1;
const FAILURE: u8 = 2;
const DELAY: u8 = 4;

/// `NOTIFY=` on RCPT (RFC 3461 §4.1): `NEVER`, or a non-empty set of `SUCCESS`, `FAILURE`, `DELAY`.
///
/// On the wire: `NOTIFY=NEVER`, or the set in the order `SUCCESS,FAILURE,DELAY`.
///
/// ```
/// use smtp_proto::command::Notify;
///
/// let n = Notify::parse("failure,Success").unwrap();
/// assert!(n.success() && n.failure() && !n.delay());
/// assert!(Notify::parse("NEVER").unwrap().is_never());
/// assert!(Notify::parse("NEVER,SUCCESS").is_err());
/// assert!(Notify::on(false, false, false).is_err());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Notify(u8);

impl Notify {
    /// `NOTIFY=NEVER`.
    pub fn never() -> Notify {
        Notify(0)
    }

    /// A set of conditions; at least one must be true (use [`Notify::never`] for none).
    pub fn on(success: bool, failure: bool, delay: bool) -> Result<Notify, ParamError> {
        let mut bits = 0;
        for (on, bit) in [(success, SUCCESS), (failure, FAILURE), (delay, DELAY)] {
            if on {
                bits |= bit;
            }
        }
        if bits == 0 {
            return Err(ParamError::new("NOTIFY", ParamErrorKind::Empty));
        }
        Ok(Notify(bits))
    }

    /// Parses `NEVER` or a comma-separated list of `SUCCESS`, `FAILURE`, `DELAY`, case-insensitively,
    /// without spaces or repeats.
    pub fn parse(s: &str) -> Result<Notify, ParamError> {
        let err = |kind| ParamError::new("NOTIFY", kind);
        if s.is_empty() {
            return Err(err(ParamErrorKind::Empty));
        }
        let mut bits = 0;
        let mut never = false;
        let mut items = 0;
        for item in s.split(',') {
            items += 1;
            let bit = if item.eq_ignore_ascii_case("SUCCESS") {
                SUCCESS
            } else if item.eq_ignore_ascii_case("FAILURE") {
                FAILURE
            } else if item.eq_ignore_ascii_case("DELAY") {
                DELAY
            } else if item.eq_ignore_ascii_case("NEVER") {
                never = true;
                0
            } else {
                return Err(err(ParamErrorKind::Syntax));
            };
            if bits & bit != 0 {
                return Err(err(ParamErrorKind::Duplicate));
            }
            bits |= bit;
        }
        if never && items > 1 {
            return Err(err(ParamErrorKind::NeverWithOthers));
        }
        Ok(Notify(bits))
    }

    /// Whether this is `NEVER`.
    pub fn is_never(&self) -> bool {
        self.0 == 0
    }

    /// Whether `SUCCESS` is set.
    pub fn success(&self) -> bool {
        self.0 & SUCCESS != 0
    }

    /// Whether `FAILURE` is set.
    pub fn failure(&self) -> bool {
        self.0 & FAILURE != 0
    }

    /// Whether `DELAY` is set.
    pub fn delay(&self) -> bool {
        self.0 & DELAY != 0
    }

    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        if self.is_never() {
            out.extend_from_slice(b"NEVER");
            return;
        }
        let mut first = true;
        for (bit, name) in [(SUCCESS, "SUCCESS"), (FAILURE, "FAILURE"), (DELAY, "DELAY")] {
            if self.0 & bit != 0 {
                if !first {
                    out.push(b',');
                }
                out.extend_from_slice(name.as_bytes());
                first = false;
            }
        }
    }
}

/// `ORCPT=` on RCPT (RFC 3461 §4.2, RFC 6533 §3): the original recipient, as `addr-type;address`.
///
/// For `rfc822` (and any other ASCII type) the address is sent xtext-encoded. For `utf-8` the address must
/// be a mailbox; it is sent as RFC 6533 `utf-8-addr-xtext` (`\x{HEX}` escapes, 7-bit) when SMTPUTF8 is not
/// in use, and as `utf-8-addr-unitext` (UTF-8 as-is) when it is. The value must fit in 500 characters:
/// the constructors check the shortest form, and [`Command::encode`](super::Command::encode) checks the
/// form it sends.
///
/// ```
/// use smtp_proto::address::ForwardPath;
/// use smtp_proto::command::OrigRecipient;
///
/// let o = OrigRecipient::rfc822("Dana@Ivory.EDU").unwrap();
/// assert_eq!((o.addr_type(), o.address()), ("rfc822", "Dana@Ivory.EDU"));
/// let p = ForwardPath::parse("café@example.com").unwrap();
/// assert_eq!(OrigRecipient::from_forward_path(&p).addr_type(), "utf-8");
/// assert!(OrigRecipient::rfc822("a\r\nb").is_err());
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct OrigRecipient {
    addr_type: String,
    addr: String,
    utf8: bool,
}

fn is_atom_char(b: u8) -> bool {
    matches!(b, 33..=126) && !b"()<>@,;:\\\".[]".contains(&b)
}

impl OrigRecipient {
    /// An `rfc822` original recipient: printable ASCII, no controls.
    pub fn rfc822(addr: &str) -> Result<Self, ParamError> {
        Self::new("rfc822", addr)
    }

    /// An original recipient of any address type (an RFC 822 `atom`, kept as given).
    ///
    /// A `utf-8` type (any case) needs a valid [`Mailbox`] as its address, kept in canonical form. Other
    /// types take any non-empty ASCII text without control characters.
    pub fn new(addr_type: &str, addr: &str) -> Result<Self, ParamError> {
        let err = |kind| ParamError::new("ORCPT", kind);
        if addr_type.is_empty() || !addr_type.bytes().all(is_atom_char) {
            return Err(err(ParamErrorKind::Syntax));
        }
        let utf8 = addr_type.eq_ignore_ascii_case("utf-8");
        let (addr, len) = if utf8 {
            let m = Mailbox::parse(addr).map_err(|e| err(ParamErrorKind::InvalidAddress(e.kind())))?;
            let len = utf8_addr_len(m.as_str(), true);
            (String::from(m.as_str()), len)
        } else {
            if addr.is_empty() {
                return Err(err(ParamErrorKind::Empty));
            }
            if addr.chars().any(|c| c < ' ' || ('\u{7f}'..='\u{9f}').contains(&c)) {
                return Err(err(ParamErrorKind::ControlCharacter));
            }
            if !addr.is_ascii() {
                return Err(err(ParamErrorKind::NonAscii));
            }
            (String::from(addr), xtext_len(addr.as_bytes()))
        };
        if addr_type.len() + 1 + len > MAX_ORCPT_LEN {
            return Err(err(ParamErrorKind::TooLong));
        }
        Ok(OrigRecipient { addr_type: String::from(addr_type), addr, utf8 })
    }

    /// The ORCPT for a recipient at first submission: `rfc822` for an ASCII path, `utf-8` otherwise
    /// (RFC 6533). A long non-ASCII path may not fit the 500-character limit in the 7-bit form; `encode`
    /// then fails with [`CommandError::Param`](super::CommandError::Param).
    pub fn from_forward_path(p: &ForwardPath) -> Self {
        let utf8 = p.needs_smtputf8();
        let addr_type = if utf8 { "utf-8" } else { "rfc822" };
        OrigRecipient { addr_type: String::from(addr_type), addr: String::from(p.as_str()), utf8 }
    }

    /// The address type, as given (`rfc822`, `utf-8`, ...).
    pub fn addr_type(&self) -> &str {
        &self.addr_type
    }

    /// The address, before encoding.
    pub fn address(&self) -> &str {
        &self.addr
    }

    /// The length of [`OrigRecipient::encode`]'s output.
    pub(crate) fn encoded_len(&self, smtputf8: bool) -> usize {
        let addr =
            if self.utf8 { utf8_addr_len(&self.addr, smtputf8) } else { xtext_len(self.addr.as_bytes()) };
        self.addr_type.len() + 1 + addr
    }

    /// Appends `addr-type;encoded-address`; `smtputf8` selects the `utf-8` form.
    pub(crate) fn encode(&self, smtputf8: bool, out: &mut Vec<u8>) {
        out.extend_from_slice(self.addr_type.as_bytes());
        out.push(b';');
        if self.utf8 {
            utf8_addr_encode(&self.addr, smtputf8, out);
        } else {
            xtext_encode(self.addr.as_bytes(), out);
        }
    }
}

/// Parameters of `MAIL FROM`. `Default` is none.
///
/// They are sent in this fixed order: `SIZE`, `BODY`, `SMTPUTF8`, `RET`, `ENVID`, `AUTH`, `REQUIRETLS`.
/// The caller sends only what the server advertised (RFC 5321 §4.1.1.3).
///
/// ```
/// use smtp_proto::command::{BodyType, MailParams};
///
/// let p = MailParams { size: Some(999), body: Some(BodyType::EightBitMime), ..MailParams::default() };
/// assert!(!p.smtputf8);
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct MailParams {
    /// `SIZE=<octets>` (RFC 1870).
    pub size: Option<u64>,
    /// `BODY=` (RFC 6152, RFC 3030).
    pub body: Option<BodyType>,
    /// `SMTPUTF8` (RFC 6531); required when the reverse-path is non-ASCII.
    pub smtputf8: bool,
    /// `RET=` (RFC 3461).
    pub ret: Option<Ret>,
    /// `ENVID=` (RFC 3461).
    pub envid: Option<EnvId>,
    /// `AUTH=<xtext mailbox>` or `AUTH=<>` (RFC 4954 §5).
    pub auth: Option<ReversePath>,
    /// `REQUIRETLS` (RFC 8689).
    pub requiretls: bool,
}

/// Parameters of `RCPT TO`, sent in the order `NOTIFY`, `ORCPT`. `Default` is none.
///
/// ```
/// use smtp_proto::command::{Notify, RcptParams};
///
/// let p = RcptParams { notify: Some(Notify::never()), ..RcptParams::default() };
/// assert!(p.orcpt.is_none());
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct RcptParams {
    /// `NOTIFY=` (RFC 3461).
    pub notify: Option<Notify>,
    /// `ORCPT=` (RFC 3461, RFC 6533).
    pub orcpt: Option<OrigRecipient>,
}
