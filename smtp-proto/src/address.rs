//! Validated envelope addresses: [`Mailbox`], [`ReversePath`], [`ForwardPath`] and [`HeloName`].
//!
//! Every value that can reach a command line is checked when it is built (RFC 5321 §4.1.2, §4.1.3,
//! §4.5.3.1; RFC 6531 §3.3), so a command built from these types can never carry CR, LF, NUL, another
//! control character, a stray `>` or a space outside quotes. The library adds the angle brackets itself:
//! input that already has them is rejected (policy ADDR-09).
//!
//! ```
//! use smtp_proto::address::{AddressErrorKind, Mailbox};
//!
//! let m = Mailbox::parse("\"john\"@example.com").unwrap();
//! assert_eq!(m.as_str(), "john@example.com"); // least-quoted form
//! let e = Mailbox::parse("r@example.net>\r\nDATA").unwrap_err();
//! assert_eq!(e.kind(), AddressErrorKind::ControlCharacter);
//! ```

use alloc::string::String;
use alloc::sync::Arc;
use core::fmt;
use core::str::FromStr;

/// Maximum length of a local part in octets (RFC 5321 §4.5.3.1.1).
pub const MAX_LOCAL_PART_LEN: usize = 64;
/// Maximum length of a domain in octets (RFC 5321 §4.5.3.1.2).
pub const MAX_DOMAIN_LEN: usize = 255;
/// Maximum length of one domain label in octets (RFC 1035 §2.3.4).
pub const MAX_LABEL_LEN: usize = 63;
/// Maximum length of a path, angle brackets included, in octets (RFC 5321 §4.5.3.1.3).
pub const MAX_PATH_LEN: usize = 256;

/// How much of a rejected input an [`AddressError`] keeps.
const MAX_ERROR_INPUT: usize = 512;

// ---------------------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------------------

/// Why an address, path or HELO name was rejected.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AddressErrorKind {
    /// The input is empty.
    Empty,
    /// A control character (0–31, 127, or a C1 control 128–159) appears anywhere, quoted or not.
    ControlCharacter,
    /// There is no `@` between a local part and a domain.
    MissingAt,
    /// The local part is neither a valid dot-string nor a valid quoted string.
    LocalPartSyntax,
    /// The local part is longer than 64 octets.
    LocalPartTooLong,
    /// The domain is not a sequence of LDH labels (or U-labels).
    DomainSyntax,
    /// The domain is longer than 255 octets.
    DomainTooLong,
    /// A domain label is longer than 63 octets.
    LabelTooLong,
    /// An address literal (`[...]`) is malformed.
    AddressLiteral,
    /// The path, with its angle brackets, is longer than 256 octets.
    PathTooLong,
    /// A source route (`@a.test:u@b.test`) was given; they are never generated (RFC 5321 App. C).
    SourceRoute,
    /// The input carries angle brackets; the library adds them itself.
    AngleBrackets,
    /// The null path `<>` where it is not allowed (a forward-path).
    NullNotAllowed,
    /// Non-ASCII characters where only ASCII is allowed (HELO names).
    NonAscii,
}

impl AddressErrorKind {
    fn message(self) -> &'static str {
        match self {
            Self::Empty => "empty",
            Self::ControlCharacter => "control character",
            Self::MissingAt => "missing @",
            Self::LocalPartSyntax => "invalid local part",
            Self::LocalPartTooLong => "local part longer than 64 octets",
            Self::DomainSyntax => "invalid domain",
            Self::DomainTooLong => "domain longer than 255 octets",
            Self::LabelTooLong => "domain label longer than 63 octets",
            Self::AddressLiteral => "invalid address literal",
            Self::PathTooLong => "path longer than 256 octets",
            Self::SourceRoute => "source route",
            Self::AngleBrackets => "angle brackets (the library adds them)",
            Self::NullNotAllowed => "null path not allowed",
            Self::NonAscii => "non-ASCII character",
        }
    }
}

impl fmt::Display for AddressErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message())
    }
}

/// An address, path or HELO name that failed validation.
///
/// It keeps the offending input (its first 512 bytes); `Display` shows it escaped, so control characters
/// in it are visible and harmless in logs:
///
/// ```
/// use smtp_proto::address::Mailbox;
///
/// let e = Mailbox::parse("a@b\r\nc").unwrap_err();
/// assert_eq!(e.to_string(), r#"invalid address "a@b\r\nc": control character"#);
/// assert_eq!(e.input(), "a@b\r\nc");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AddressError {
    kind: AddressErrorKind,
    input: String,
}

impl AddressError {
    fn new(kind: AddressErrorKind, input: &str) -> Self {
        let mut end = input.len().min(MAX_ERROR_INPUT);
        while !input.is_char_boundary(end) {
            end -= 1;
        }
        AddressError { kind, input: String::from(&input[..end]) }
    }

    /// What was wrong.
    pub fn kind(&self) -> AddressErrorKind {
        self.kind
    }

    /// The rejected input, raw (possibly truncated to its first 512 bytes).
    pub fn input(&self) -> &str {
        &self.input
    }
}

impl fmt::Display for AddressError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid address \"{}\": {}", self.input.escape_debug(), self.kind)
    }
}

#[cfg(feature = "std")]
impl std::error::Error for AddressError {}

// ---------------------------------------------------------------------------------------------------------
// Character classes
// ---------------------------------------------------------------------------------------------------------

/// C0 controls, DEL and C1 controls.
fn is_control(c: char) -> bool {
    c < ' ' || ('\u{7f}'..='\u{9f}').contains(&c)
}

/// RFC 5322 `atext`, extended with any non-ASCII character by RFC 6531 §3.3 (controls are rejected earlier).
fn is_atext(c: char) -> bool {
    c.is_ascii_alphanumeric() || "!#$%&'*+-/=?^_`{|}~".contains(c) || (!c.is_ascii() && !is_control(c))
}

/// `Dot-string = Atom *("." Atom)`.
fn is_dot_string(s: &str) -> bool {
    !s.is_empty() && s.split('.').all(|atom| !atom.is_empty() && atom.chars().all(is_atext))
}

/// A character of a U-label, checked loosely: a letter or digit, a combining mark, or ZWNJ/ZWJ.
fn is_ulabel_char(c: char) -> bool {
    c.is_alphanumeric()
        || matches!(c, '\u{300}'..='\u{36f}' | '\u{1ab0}'..='\u{1aff}' | '\u{1dc0}'..='\u{1dff}')
        || matches!(c, '\u{20d0}'..='\u{20ff}' | '\u{fe20}'..='\u{fe2f}' | '\u{200c}' | '\u{200d}')
}

// ---------------------------------------------------------------------------------------------------------
// Grammar
// ---------------------------------------------------------------------------------------------------------

/// Checks a domain made of labels; `utf8` allows U-labels.
fn check_domain(d: &str, utf8: bool) -> Result<(), AddressErrorKind> {
    if d.is_empty() {
        return Err(AddressErrorKind::DomainSyntax);
    }
    if d.len() > MAX_DOMAIN_LEN {
        return Err(AddressErrorKind::DomainTooLong);
    }
    for label in d.split('.') {
        if label.is_empty() || label.starts_with('-') || label.ends_with('-') {
            return Err(AddressErrorKind::DomainSyntax);
        }
        if label.len() > MAX_LABEL_LEN {
            return Err(AddressErrorKind::LabelTooLong);
        }
        for c in label.chars() {
            if c.is_ascii_alphanumeric() || c == '-' {
                continue;
            }
            if c.is_ascii() {
                return Err(AddressErrorKind::DomainSyntax);
            }
            if !utf8 {
                return Err(AddressErrorKind::NonAscii);
            }
            if !is_ulabel_char(c) {
                return Err(AddressErrorKind::DomainSyntax);
            }
        }
    }
    Ok(())
}

/// `Snum 3("." Snum)`, each 1–3 digits, 0–255.
fn is_ipv4(s: &str) -> bool {
    let mut n = 0;
    for part in s.split('.') {
        n += 1;
        if part.is_empty() || part.len() > 3 || !part.bytes().all(|b| b.is_ascii_digit()) {
            return false;
        }
        if part.parse::<u16>().map_or(true, |v| v > 255) {
            return false;
        }
    }
    n == 4
}

/// Counts `IPv6-hex *(":" IPv6-hex)` groups; `None` if malformed. The empty string is zero groups.
fn hex_groups(s: &str) -> Option<usize> {
    if s.is_empty() {
        return Some(0);
    }
    let mut n = 0;
    for g in s.split(':') {
        if g.is_empty() || g.len() > 4 || !g.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        n += 1;
    }
    Some(n)
}

/// RFC 5321 §4.1.3 `IPv6-addr` (full, compressed, and the IPv4-embedded forms).
fn is_ipv6(s: &str) -> bool {
    // Split off an embedded IPv4 address: the last group, if it has a dot.
    let (hex, v4) = match s.rfind(':') {
        Some(i) if s[i + 1..].contains('.') => {
            if !is_ipv4(&s[i + 1..]) {
                return false;
            }
            (&s[..=i], true)
        }
        _ => (s, false),
    };
    if let Some(i) = hex.find("::") {
        let left = &hex[..i];
        let mut right = &hex[i + 2..];
        if v4 && !right.is_empty() {
            // `[left] "::" [right ":"] IPv4`
            match right.strip_suffix(':') {
                Some(r) if !r.is_empty() => right = r,
                _ => return false,
            }
        }
        let max = if v4 { 4 } else { 6 };
        matches!((hex_groups(left), hex_groups(right)), (Some(l), Some(r)) if l + r <= max)
    } else if v4 {
        hex.strip_suffix(':').and_then(hex_groups) == Some(6)
    } else {
        hex_groups(hex) == Some(8)
    }
}

/// `Ldh-str`: letters, digits and hyphens, starting and ending with a letter or digit.
fn is_ldh_str(s: &str) -> bool {
    !s.is_empty()
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

/// `address-literal = "[" ( IPv4 / IPv6 / General ) "]"`, brackets included in `s`.
fn check_address_literal(s: &str) -> Result<(), AddressErrorKind> {
    if s.len() > MAX_DOMAIN_LEN {
        return Err(AddressErrorKind::DomainTooLong);
    }
    let inner =
        s.strip_prefix('[').and_then(|s| s.strip_suffix(']')).ok_or(AddressErrorKind::AddressLiteral)?;
    // Compare bytes: `inner[..5]` would panic when byte 5 falls inside a UTF-8 character.
    let ok = if inner.len() >= 5 && inner.as_bytes()[..5].eq_ignore_ascii_case(b"IPv6:") {
        is_ipv6(&inner[5..])
    } else if let Some((tag, content)) = inner.split_once(':') {
        // General-address-literal = Standardized-tag ":" 1*dcontent. Policy: the tag starts with a letter,
        // so that a bare IPv6 address (`[2001:db8::1]`, a common mistake) is not taken for a tag "2001".
        // Stricter than dcontent: `<` and `>` are refused too, so no path this crate writes holds a stray
        // `>` that a server cutting the path at the first `>` would misread (no tag is registered anyway).
        is_ldh_str(tag)
            && tag.starts_with(|c: char| c.is_ascii_alphabetic())
            && !content.is_empty()
            && content.bytes().all(|b| matches!(b, 33..=90 | 94..=126) && b != b'<' && b != b'>')
    } else {
        is_ipv4(inner)
    };
    if ok { Ok(()) } else { Err(AddressErrorKind::AddressLiteral) }
}

/// Checks a mailbox domain: a domain name (U-labels allowed) or an address literal.
fn check_mailbox_domain(d: &str) -> Result<(), AddressErrorKind> {
    if d.starts_with('[') { check_address_literal(d) } else { check_domain(d, true) }
}

/// Parses a quoted string at the start of `s` (which begins with `"`); returns the unquoted content and the
/// rest after the closing quote.
fn parse_quoted(s: &str) -> Result<(String, &str), AddressErrorKind> {
    let mut content = String::new();
    let mut chars = s.char_indices().skip(1);
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Ok((content, &s[i + 1..])),
            // quoted-pairSMTP = "\" %d32-126
            '\\' => match chars.next() {
                Some((_, q)) if (' '..='~').contains(&q) => content.push(q),
                _ => return Err(AddressErrorKind::LocalPartSyntax),
            },
            // qtextSMTP = %d32-33 / %d35-91 / %d93-126, plus UTF-8 (RFC 6531); controls are rejected earlier.
            c => content.push(c),
        }
    }
    Err(AddressErrorKind::LocalPartSyntax)
}

/// Parses `Local-part "@" ( Domain / address-literal )` into its canonical form and the position of the `@`.
fn parse_mailbox(s: &str) -> Result<(String, usize), AddressErrorKind> {
    if s.is_empty() {
        return Err(AddressErrorKind::Empty);
    }
    if s.chars().any(is_control) {
        return Err(AddressErrorKind::ControlCharacter);
    }
    if let Some(rest) = s.strip_prefix('<') {
        return Err(if rest.starts_with('@') {
            AddressErrorKind::SourceRoute
        } else {
            AddressErrorKind::AngleBrackets
        });
    }
    if s.starts_with('@') {
        return Err(if s.contains(':') {
            AddressErrorKind::SourceRoute
        } else {
            AddressErrorKind::LocalPartSyntax
        });
    }

    let mut canonical = String::with_capacity(s.len());
    let domain = if s.starts_with('"') {
        let (content, rest) = parse_quoted(s)?;
        let domain = match rest.strip_prefix('@') {
            Some(d) => d,
            None if rest.is_empty() => return Err(AddressErrorKind::MissingAt),
            None => return Err(AddressErrorKind::LocalPartSyntax),
        };
        if is_dot_string(&content) {
            canonical.push_str(&content);
        } else {
            canonical.push('"');
            for c in content.chars() {
                if c == '"' || c == '\\' {
                    canonical.push('\\');
                }
                canonical.push(c);
            }
            canonical.push('"');
        }
        domain
    } else {
        let end = s.find(|c: char| !(is_atext(c) || c == '.')).unwrap_or(s.len());
        match s[end..].chars().next() {
            Some('@') => {}
            None => return Err(AddressErrorKind::MissingAt),
            Some('<' | '>') => return Err(AddressErrorKind::AngleBrackets),
            Some(_) => return Err(AddressErrorKind::LocalPartSyntax),
        }
        if !is_dot_string(&s[..end]) {
            return Err(AddressErrorKind::LocalPartSyntax);
        }
        canonical.push_str(&s[..end]);
        &s[end + 1..]
    };
    if canonical.len() > MAX_LOCAL_PART_LEN {
        return Err(AddressErrorKind::LocalPartTooLong);
    }
    check_mailbox_domain(domain)?;
    let at = canonical.len();
    canonical.push('@');
    canonical.push_str(domain);
    if canonical.len() + 2 > MAX_PATH_LEN {
        return Err(AddressErrorKind::PathTooLong);
    }
    Ok((canonical, at))
}

// ---------------------------------------------------------------------------------------------------------
// Mailbox
// ---------------------------------------------------------------------------------------------------------

/// A validated RFC 5321 `Mailbox` (`local-part@domain`), kept in its canonical, least-quoted wire form.
///
/// The local part is a dot-string or a quoted string (only printable ASCII and, per RFC 6531, non-ASCII
/// UTF-8 inside the quotes; never CR, LF or NUL, even quoted). Its case is kept. The domain is a domain
/// name (LDH labels, or U-labels) or an address literal. Length limits: local part ≤ 64 octets, domain ≤ 255,
/// path (`<` + mailbox + `>`) ≤ 256.
///
/// ```
/// use smtp_proto::address::Mailbox;
///
/// let m: Mailbox = "\"John Doe\"@Example.com".parse().unwrap();
/// assert_eq!(m.as_str(), "\"John Doe\"@Example.com");
/// assert_eq!(m.local_part(), "\"John Doe\"");
/// assert_eq!(m.domain(), "Example.com");
/// assert!(!m.needs_smtputf8());
///
/// assert_eq!(Mailbox::parse("\"john\"@example.com").unwrap().as_str(), "john@example.com");
/// assert!(Mailbox::parse("café@example.com").unwrap().needs_smtputf8());
/// assert!(Mailbox::parse("<a@example.com>").is_err()); // no angle brackets
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Mailbox {
    /// Canonical `local@domain`. Shared: an envelope, its copies and the reports made from them hold one
    /// string (a copy costs no allocation).
    text: Arc<str>,
    /// Byte offset of the `@` that separates local part and domain.
    at: usize,
}

impl Mailbox {
    /// Parses `local@domain`, without angle brackets, and converts it to the least-quoted form.
    pub fn parse(s: &str) -> Result<Mailbox, AddressError> {
        match parse_mailbox(s) {
            Ok((text, at)) => Ok(Mailbox { text: text.into(), at }),
            Err(kind) => Err(AddressError::new(kind, s)),
        }
    }

    /// The canonical form as it goes on the wire, without angle brackets.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The local part in wire form (with its quotes and backslashes, if it needs them).
    pub fn local_part(&self) -> &str {
        &self.text[..self.at]
    }

    /// The domain or address literal.
    pub fn domain(&self) -> &str {
        &self.text[self.at + 1..]
    }

    /// Whether the mailbox has a non-ASCII octet, so it may only be sent with SMTPUTF8 (RFC 6531 §3.2).
    pub fn needs_smtputf8(&self) -> bool {
        !self.text.is_ascii()
    }
}

impl FromStr for Mailbox {
    type Err = AddressError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Mailbox::parse(s)
    }
}

impl fmt::Display for Mailbox {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

// ---------------------------------------------------------------------------------------------------------
// Paths
// ---------------------------------------------------------------------------------------------------------

/// The reverse-path of `MAIL FROM`: a mailbox, or the null path `<>` (bounces, DSNs, auto-replies).
///
/// `Display` writes `<>` for the null path and the bare mailbox otherwise, so it parses back.
///
/// ```
/// use smtp_proto::address::ReversePath;
///
/// assert!(ReversePath::parse("<>").unwrap().is_null());
/// assert!(ReversePath::parse("").unwrap().is_null());
/// let p = ReversePath::parse("alice@example.org").unwrap();
/// assert_eq!(p.as_mailbox().unwrap().as_str(), "alice@example.org");
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ReversePath(Option<Mailbox>);

impl ReversePath {
    /// The null reverse-path `<>`.
    pub fn null() -> Self {
        ReversePath(None)
    }

    /// A reverse-path holding `m`.
    pub fn mailbox(m: Mailbox) -> Self {
        ReversePath(Some(m))
    }

    /// Parses a reverse-path: `""` or `"<>"` is the null path, anything else must be a [`Mailbox`]
    /// without angle brackets.
    pub fn parse(s: &str) -> Result<Self, AddressError> {
        if s.is_empty() || s == "<>" {
            Ok(ReversePath(None))
        } else {
            Mailbox::parse(s).map(|m| ReversePath(Some(m)))
        }
    }

    /// Whether this is the null path.
    pub fn is_null(&self) -> bool {
        self.0.is_none()
    }

    /// The mailbox, unless this is the null path.
    pub fn as_mailbox(&self) -> Option<&Mailbox> {
        self.0.as_ref()
    }

    /// The path without angle brackets: empty for the null path.
    pub(crate) fn wire(&self) -> &str {
        self.0.as_ref().map_or("", Mailbox::as_str)
    }

    /// Whether the path has a non-ASCII octet (see [`Mailbox::needs_smtputf8`]).
    pub fn needs_smtputf8(&self) -> bool {
        self.0.as_ref().is_some_and(Mailbox::needs_smtputf8)
    }
}

impl From<Mailbox> for ReversePath {
    fn from(m: Mailbox) -> Self {
        ReversePath(Some(m))
    }
}

impl FromStr for ReversePath {
    type Err = AddressError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ReversePath::parse(s)
    }
}

impl fmt::Display for ReversePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Some(m) => f.write_str(m.as_str()),
            None => f.write_str("<>"),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Forward {
    Mailbox(Mailbox),
    Postmaster,
}

/// The forward-path of `RCPT TO`: a mailbox, or the bare `Postmaster` (RFC 5321 §4.1.1.3). Never null.
///
/// ```
/// use smtp_proto::address::{AddressErrorKind, ForwardPath};
///
/// assert_eq!(ForwardPath::parse("POSTMASTER").unwrap().as_str(), "Postmaster");
/// assert_eq!(ForwardPath::parse("b@example.net").unwrap().as_str(), "b@example.net");
/// assert_eq!(ForwardPath::parse("<>").unwrap_err().kind(), AddressErrorKind::NullNotAllowed);
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ForwardPath(Forward);

impl ForwardPath {
    /// Parses a forward-path: `Postmaster` (any case; stored as `Postmaster`) or a [`Mailbox`] without angle
    /// brackets. `""` and `"<>"` are rejected.
    pub fn parse(s: &str) -> Result<Self, AddressError> {
        if s == "<>" {
            return Err(AddressError::new(AddressErrorKind::NullNotAllowed, s));
        }
        if s.eq_ignore_ascii_case("postmaster") {
            return Ok(ForwardPath(Forward::Postmaster));
        }
        Mailbox::parse(s).map(|m| ForwardPath(Forward::Mailbox(m)))
    }

    /// A forward-path holding `m`.
    pub fn mailbox(m: Mailbox) -> Self {
        ForwardPath(Forward::Mailbox(m))
    }

    /// The domain-less `Postmaster` path.
    pub fn postmaster() -> Self {
        ForwardPath(Forward::Postmaster)
    }

    /// The mailbox, unless this is the bare `Postmaster`.
    pub fn as_mailbox(&self) -> Option<&Mailbox> {
        match &self.0 {
            Forward::Mailbox(m) => Some(m),
            Forward::Postmaster => None,
        }
    }

    /// The path as it goes on the wire, without angle brackets.
    pub fn as_str(&self) -> &str {
        match &self.0 {
            Forward::Mailbox(m) => m.as_str(),
            Forward::Postmaster => "Postmaster",
        }
    }

    /// Whether the path has a non-ASCII octet (see [`Mailbox::needs_smtputf8`]).
    pub fn needs_smtputf8(&self) -> bool {
        self.as_mailbox().is_some_and(Mailbox::needs_smtputf8)
    }
}

impl From<Mailbox> for ForwardPath {
    fn from(m: Mailbox) -> Self {
        ForwardPath(Forward::Mailbox(m))
    }
}

impl FromStr for ForwardPath {
    type Err = AddressError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ForwardPath::parse(s)
    }
}

impl fmt::Display for ForwardPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

// ---------------------------------------------------------------------------------------------------------
// HELO name
// ---------------------------------------------------------------------------------------------------------

/// The argument of EHLO, HELO and LHLO: an ASCII domain name (LDH labels) or an address literal
/// (`[192.0.2.1]`, `[IPv6:2001:db8::1]`). Always ASCII, even with SMTPUTF8 (RFC 6531 §3.7.1).
///
/// ```
/// use smtp_proto::address::HeloName;
///
/// let h = HeloName::parse("client.example.org").unwrap();
/// assert_eq!(h.as_str(), "client.example.org");
/// assert!(HeloName::parse("[IPv6:2001:db8::1]").unwrap().is_address_literal());
/// assert!(HeloName::parse("exa_mple.com").is_err());
/// assert!(HeloName::parse("client\r\nMAIL FROM:<x@y>").is_err());
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct HeloName {
    text: String,
}

impl HeloName {
    /// Parses a domain name or an address literal.
    pub fn parse(s: &str) -> Result<HeloName, AddressError> {
        let err = |kind| AddressError::new(kind, s);
        if s.is_empty() {
            return Err(err(AddressErrorKind::Empty));
        }
        if s.chars().any(is_control) {
            return Err(err(AddressErrorKind::ControlCharacter));
        }
        if !s.is_ascii() {
            return Err(err(AddressErrorKind::NonAscii));
        }
        let checked = if s.starts_with('[') { check_address_literal(s) } else { check_domain(s, false) };
        checked.map_err(err)?;
        Ok(HeloName { text: String::from(s) })
    }

    /// The name as it goes on the wire.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether this is an address literal (`[...]`) rather than a domain name.
    pub fn is_address_literal(&self) -> bool {
        self.text.starts_with('[')
    }
}

impl FromStr for HeloName {
    type Err = AddressError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        HeloName::parse(s)
    }
}

impl fmt::Display for HeloName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::format;

    fn kind(s: &str) -> AddressErrorKind {
        Mailbox::parse(s).unwrap_err().kind()
    }

    #[test]
    fn ipv4_literals() {
        for ok in ["1.2.3.4", "0.0.0.0", "255.255.255.255", "001.002.003.004"] {
            assert!(is_ipv4(ok), "{ok}");
        }
        for bad in ["256.1.1.1", "1.2.3", "1.2.3.4.5", "1..3.4", "1.2.3.0004", "a.b.c.d", ""] {
            assert!(!is_ipv4(bad), "{bad}");
        }
    }

    #[test]
    fn ipv6_literals() {
        for ok in [
            "2001:db8::1",
            "::",
            "::1",
            "1::",
            "1:2:3:4:5:6:7:8",
            "1:2:3::6:7",
            "1:2:3:4:5:6:1.2.3.4",
            "::ffff:192.0.2.1",
            "::192.0.2.1",
            "1:2::3:4:1.2.3.4",
            "FFFF:abcd::",
        ] {
            assert!(is_ipv6(ok), "{ok}");
        }
        for bad in [
            "zz::1",
            "1:2:3:4:5:6:7",
            "1:2:3:4:5:6:7:8:9",
            "1::2::3",
            "1:::2",
            "1:2:3:4:5:6:7::", // 7 groups + "::" > 6
            "12345::1",
            ":1:2:3:4:5:6:7",
            "1:2:3:4:5:6:7:",
            "1:2:3:4:5:1.2.3.4",
            "1:::1.2.3.4",
            "1:2:3:4:5::1.2.3.4", // 5 groups > 4 in the v4 compressed form
            "::1.2.3.256",
            "",
        ] {
            assert!(!is_ipv6(bad), "{bad}");
        }
    }

    #[test]
    fn general_literal() {
        assert!(check_address_literal("[x-tag:foo]").is_ok());
        assert!(check_address_literal("[x-tag:]").is_err());
        assert!(check_address_literal("[-x:foo]").is_err());
        assert!(check_address_literal("[2001:db8::1]").is_err());
        assert!(check_address_literal("[x:fo]o]").is_err());
        assert!(check_address_literal("[x:fo o]").is_err());
        assert!(check_address_literal("[1.2.3.4").is_err());
    }

    #[test]
    fn canonical_quoting() {
        let m = |s: &str| Mailbox::parse(s).unwrap().as_str().into();
        let c: String = m(r#""john"@example.com"#);
        assert_eq!(c, "john@example.com");
        assert_eq!(m(r#""jo\hn"@x.test"#), "john@x.test");
        assert_eq!(m(r#""a.b"@x.test"#), "a.b@x.test");
        assert_eq!(m(r#""a..b"@x.test"#), r#""a..b"@x.test"#);
        assert_eq!(m(r#""a\"b"@x.test"#), r#""a\"b"@x.test"#);
        assert_eq!(m(r#""a\\b"@x.test"#), r#""a\\b"@x.test"#);
        assert_eq!(m(r#""a<b"@x.test"#), r#""a<b"@x.test"#);
        assert_eq!(m(r#""\ "@x.test"#), r#"" "@x.test"#);
        assert_eq!(m("\"\"@x.test"), "\"\"@x.test");
        assert_eq!(m("Dana@Ivory.EDU"), "Dana@Ivory.EDU");
    }

    #[test]
    fn error_kinds() {
        assert_eq!(kind(""), AddressErrorKind::Empty);
        assert_eq!(kind("a@b\rc"), AddressErrorKind::ControlCharacter);
        assert_eq!(kind("a@b\u{85}c"), AddressErrorKind::ControlCharacter);
        assert_eq!(kind("abc"), AddressErrorKind::MissingAt);
        assert_eq!(kind("\"abc\""), AddressErrorKind::MissingAt);
        assert_eq!(kind("\"abc"), AddressErrorKind::LocalPartSyntax);
        assert_eq!(kind("\"a\"b@x.test"), AddressErrorKind::LocalPartSyntax);
        assert_eq!(kind("\"a\\é\"@x.test"), AddressErrorKind::LocalPartSyntax);
        assert_eq!(kind("a b@x.test"), AddressErrorKind::LocalPartSyntax);
        assert_eq!(kind("a<b@x.test"), AddressErrorKind::AngleBrackets);
        assert_eq!(kind("<a@x.test>"), AddressErrorKind::AngleBrackets);
        assert_eq!(kind("@x.test"), AddressErrorKind::LocalPartSyntax);
        assert_eq!(kind("a@"), AddressErrorKind::DomainSyntax);
        assert_eq!(kind("a@b@c"), AddressErrorKind::DomainSyntax);
        assert_eq!(kind("a@-b.test"), AddressErrorKind::DomainSyntax);
        assert_eq!(kind("a@b-.test"), AddressErrorKind::DomainSyntax);
        assert_eq!(kind("a@b..test"), AddressErrorKind::DomainSyntax);
        assert_eq!(kind("a@b.test "), AddressErrorKind::DomainSyntax);
        assert_eq!(kind("a@ex\u{2603}.test"), AddressErrorKind::DomainSyntax);
        let label = "a".repeat(64);
        assert_eq!(kind(&format!("a@{label}.test")), AddressErrorKind::LabelTooLong);
        assert!(Mailbox::parse(&format!("a@{}.test", &label[1..])).is_ok());
    }

    #[test]
    fn unicode_domains() {
        let m = Mailbox::parse("user@bücher.example").unwrap();
        assert!(m.needs_smtputf8());
        assert!(Mailbox::parse("user@例え.テスト").is_ok());
        assert!(Mailbox::parse("用户@例子.广告").is_ok());
        assert!(Mailbox::parse("user@b\u{fc}cher\u{3002}example").is_err());
        assert_eq!(HeloName::parse("bücher.example").unwrap_err().kind(), AddressErrorKind::NonAscii);
    }

    #[test]
    fn helo_names() {
        for ok in ["client.example.org", "localhost", "[192.0.2.1]", "[IPv6:2001:db8::1]", "a-b.c9"] {
            assert_eq!(HeloName::parse(ok).unwrap().as_str(), ok);
        }
        for (bad, k) in [
            ("", AddressErrorKind::Empty),
            ("client\r\n", AddressErrorKind::ControlCharacter),
            ("cl ient", AddressErrorKind::DomainSyntax),
            ("exa_mple.com", AddressErrorKind::DomainSyntax),
            ("example.com.", AddressErrorKind::DomainSyntax),
            ("[300.1.1.1]", AddressErrorKind::AddressLiteral),
            ("café.example", AddressErrorKind::NonAscii),
        ] {
            assert_eq!(HeloName::parse(bad).unwrap_err().kind(), k, "{bad:?}");
        }
    }

    #[test]
    fn error_display_and_truncation() {
        let e = Mailbox::parse("a@b\r\nc").unwrap_err();
        assert_eq!(format!("{e}"), "invalid address \"a@b\\r\\nc\": control character");
        let long = "é".repeat(400);
        let e = Mailbox::parse(&long).unwrap_err();
        assert!(e.input().len() <= MAX_ERROR_INPUT);
        assert!(long.starts_with(e.input()));
    }
}
