//! Server capabilities from an EHLO (or LHLO) reply: SIZE, PIPELINING, AUTH, LIMITS and the rest.
//!
//! Parsing rules (RFC 5321 §4.1.1.1, RFC 1869, docs/conformance.md SESS-07/08):
//! - the first line is `domain [greeting]`, never a keyword; a one-line `250 domain` means no extensions;
//! - keywords are case-insensitive; a line splits on runs of SP/HTAB into the keyword and its parameters;
//! - unknown keywords are kept with their parameters ([`Capabilities::extension`]);
//! - a repeated keyword's last instance wins, except that AUTH mechanisms from every AUTH line are merged;
//! - COMPAT: the legacy `AUTH=LOGIN PLAIN` form is read as `AUTH LOGIN PLAIN`;
//! - empty or whitespace-only lines are skipped; no reply makes this code panic.

use alloc::{boxed::Box, string::String, vec::Vec};
use core::fmt;

use crate::reply::Reply;
use crate::sasl::Mechanism;

/// Every mechanism this crate can run, in the order [`Capabilities::auth_mechanisms`] reports them.
const ALL_MECHANISMS: [Mechanism; 5] =
    [Mechanism::Plain, Mechanism::Login, Mechanism::CramMd5, Mechanism::XOAuth2, Mechanism::OAuthBearer];

/// The mechanism's bit in [`Capabilities`]' set.
fn mechanism_bit(m: Mechanism) -> u8 {
    1 << (m as u8)
}

/// A byte range in `Capabilities::text`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
struct Span {
    start: usize,
    end: usize,
}

/// One advertised extension.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Entry {
    keyword: Span,
    params: Span,
    /// Came from the legacy `AUTH=` form: a real `AUTH` line takes precedence over it.
    legacy_auth: bool,
}

/// Flags for the parameterless extensions.
const PIPELINING: u16 = 1 << 0;
const EIGHT_BIT_MIME: u16 = 1 << 1;
const SMTP_UTF8: u16 = 1 << 2;
const DSN: u16 = 1 << 3;
const CHUNKING: u16 = 1 << 4;
const BINARY_MIME: u16 = 1 << 5;
const ENHANCED_STATUS_CODES: u16 = 1 << 6;
const STARTTLS: u16 = 1 << 7;
const REQUIRETLS: u16 = 1 << 8;
const SIZE: u16 = 1 << 9;

const FLAGS: [(&str, u16); 10] = [
    ("PIPELINING", PIPELINING),
    ("8BITMIME", EIGHT_BIT_MIME),
    ("SMTPUTF8", SMTP_UTF8),
    ("DSN", DSN),
    ("CHUNKING", CHUNKING),
    ("BINARYMIME", BINARY_MIME),
    ("ENHANCEDSTATUSCODES", ENHANCED_STATUS_CODES),
    ("STARTTLS", STARTTLS),
    ("REQUIRETLS", REQUIRETLS),
    ("SIZE", SIZE),
];

/// What a server advertised in its EHLO reply.
///
/// Replaced as a whole on every EHLO (RFC 9422 §3.6: an EHLO without LIMITS means no limits).
///
/// ```
/// use smtp_proto::{ehlo::Capabilities, sasl::Mechanism};
/// use smtp_proto::reply::Reply;
///
/// let reply = Reply::new(
///     250,
///     "mx.example.com greets you\npipelining\nSIZE 35882577\nAUTH=LOGIN\n\
///      AUTH PLAIN LOGIN XOAUTH2\nLIMITS RCPTMAX=20 MAILMAX=5\nX-FOO bar  baz",
/// );
/// let caps = Capabilities::from_ehlo(&reply);
/// assert_eq!(caps.domain(), b"mx.example.com");
/// assert!(caps.pipelining());
/// assert_eq!(caps.max_size(), Some(35882577));
/// assert!(caps.auth(Mechanism::XOAuth2));
/// assert_eq!(caps.rcpt_max(), Some(20));
/// assert_eq!(caps.extension("x-foo"), Some(&b"bar  baz"[..]));
/// assert!(!caps.starttls());
/// ```
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Capabilities {
    /// The reply's text (lines joined with `\n`); spans point into it.
    text: Box<[u8]>,
    domain: Span,
    entries: Vec<Entry>,
    flags: u16,
    auth: u8,
    max_size: Option<u64>,
    rcpt_max: Option<u32>,
    mail_max: Option<u32>,
}

fn is_ws(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

/// Splits `text[span]` into its first token and the rest (leading and trailing whitespace dropped).
fn split_token(text: &[u8], span: Span) -> (Span, Span) {
    let mut start = span.start;
    let mut end = span.end;
    while start < end && is_ws(text[start]) {
        start += 1;
    }
    while end > start && is_ws(text[end - 1]) {
        end -= 1;
    }
    let mut tok_end = start;
    while tok_end < end && !is_ws(text[tok_end]) {
        tok_end += 1;
    }
    let mut rest = tok_end;
    while rest < end && is_ws(text[rest]) {
        rest += 1;
    }
    (Span { start, end: tok_end }, Span { start: rest, end })
}

/// The tokens of a parameter string, split on runs of SP/HTAB.
fn tokens(params: &[u8]) -> impl Iterator<Item = &[u8]> {
    params.split(|&b| is_ws(b)).filter(|t| !t.is_empty())
}

/// `SIZE` parameter: `Some(n)` only for a plain decimal `n > 0` that fits in a u64.
fn parse_size(params: &[u8]) -> Option<u64> {
    let tok = tokens(params).next()?;
    if tok.is_empty() || !tok.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let n = tok.iter().try_fold(0u64, |acc, &d| acc.checked_mul(10)?.checked_add(u64::from(d - b'0')))?;
    (n > 0).then_some(n)
}

/// RFC 9422 limit value for RCPTMAX/MAILMAX: 1 to 999999, no leading zero.
fn parse_limit_value(value: &[u8]) -> Option<u32> {
    if value.is_empty() || value.len() > 6 || value[0] == b'0' || !value.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(value.iter().fold(0u32, |acc, &d| acc * 10 + u32::from(d - b'0')))
}

/// `LIMITS` parameters (RFC 9422 §3): `(RCPTMAX, MAILMAX)`.
///
/// A syntactically malformed parameter list is ignored as a whole; a bad value drops only that limit; unknown
/// names are ignored.
fn parse_limits(params: &[u8]) -> (Option<u32>, Option<u32>) {
    let valid_name =
        |n: &[u8]| !n.is_empty() && n.iter().all(|&b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    let valid_value = |v: &[u8]| !v.is_empty() && v.iter().all(|&b| (0x21..=0x7e).contains(&b) && b != b';');
    let well_formed = tokens(params).all(|tok| match tok.iter().position(|&b| b == b'=') {
        Some(eq) => valid_name(&tok[..eq]) && valid_value(&tok[eq + 1..]),
        None => valid_name(tok),
    });
    if !well_formed {
        return (None, None);
    }
    let (mut rcpt, mut mail) = (None, None);
    for tok in tokens(params) {
        let (name, value) = match tok.iter().position(|&b| b == b'=') {
            Some(eq) => (&tok[..eq], &tok[eq + 1..]),
            None => (tok, &b""[..]),
        };
        let slot = if name.eq_ignore_ascii_case(b"RCPTMAX") {
            &mut rcpt
        } else if name.eq_ignore_ascii_case(b"MAILMAX") {
            &mut mail
        } else {
            continue;
        };
        if let Some(v) = parse_limit_value(value) {
            *slot = Some(v);
        }
    }
    (rcpt, mail)
}

impl Capabilities {
    /// Reads the capabilities from a reply to EHLO (or LHLO).
    ///
    /// A reply that is not `2yz` gives [`Capabilities::none`]. Never panics, whatever the reply holds.
    pub fn from_ehlo(reply: &Reply) -> Capabilities {
        if !reply.is_positive() {
            return Capabilities::none();
        }
        let mut caps = Capabilities { text: reply.text().into(), ..Capabilities::default() };
        let text = &*caps.text;
        let mut pos = 0;
        for (i, line) in reply.lines().enumerate() {
            let span = Span { start: pos, end: pos + line.len() };
            pos = span.end + 1;
            let (first, rest) = split_token(text, span);
            if i == 0 {
                caps.domain = first;
                continue;
            }
            if first.start == first.end {
                continue; // empty or whitespace-only line
            }
            let mut entry = Entry { keyword: first, params: rest, legacy_auth: false };
            let kw = &text[first.start..first.end];
            if kw.len() >= 5 && kw[..5].eq_ignore_ascii_case(b"AUTH=") {
                // Legacy `AUTH=LOGIN PLAIN`: keyword AUTH, parameters from after the `=`.
                entry.keyword.end = first.start + 4;
                entry.params =
                    Span { start: first.start + 5, end: span_trim_end(text, span).max(first.start + 5) };
                entry.legacy_auth = true;
            }
            let kw = &text[entry.keyword.start..entry.keyword.end];
            if kw.eq_ignore_ascii_case(b"AUTH") {
                for mech in tokens(&text[entry.params.start..entry.params.end]) {
                    if let Some(m) = Mechanism::from_name(mech) {
                        caps.auth |= mechanism_bit(m);
                    }
                }
            }
            let existing = caps
                .entries
                .iter_mut()
                .find(|e| text[e.keyword.start..e.keyword.end].eq_ignore_ascii_case(kw));
            match existing {
                Some(e) if entry.legacy_auth && !e.legacy_auth => {}
                Some(e) => *e = entry,
                None => caps.entries.push(entry),
            }
        }
        for e in &caps.entries {
            let kw = &text[e.keyword.start..e.keyword.end];
            let params = &text[e.params.start..e.params.end];
            if let Some(&(_, flag)) = FLAGS.iter().find(|(name, _)| name.as_bytes().eq_ignore_ascii_case(kw))
            {
                caps.flags |= flag;
                if flag == SIZE {
                    caps.max_size = parse_size(params);
                }
            } else if kw.eq_ignore_ascii_case(b"LIMITS") {
                (caps.rcpt_max, caps.mail_max) = parse_limits(params);
            }
        }
        caps
    }

    /// No extensions at all: the state after HELO, or before any EHLO.
    pub fn none() -> Capabilities {
        Capabilities::default()
    }

    /// The server's name from the first line of the EHLO reply (empty for [`Capabilities::none`]).
    pub fn domain(&self) -> &[u8] {
        &self.text[self.domain.start..self.domain.end]
    }

    fn has(&self, flag: u16) -> bool {
        self.flags & flag != 0
    }

    /// `SIZE` (RFC 1870) was advertised, with or without a limit: `SIZE=` may be sent on MAIL.
    pub fn size_advertised(&self) -> bool {
        self.has(SIZE)
    }

    /// The declared maximum message size. `None` for `SIZE`, `SIZE 0` (no limit declared), an unreadable
    /// value, a value too large for a `u64`, or no `SIZE` at all.
    pub fn max_size(&self) -> Option<u64> {
        self.max_size
    }

    /// `PIPELINING` (RFC 2920).
    pub fn pipelining(&self) -> bool {
        self.has(PIPELINING)
    }

    /// `8BITMIME` (RFC 6152).
    pub fn eight_bit_mime(&self) -> bool {
        self.has(EIGHT_BIT_MIME)
    }

    /// `SMTPUTF8` (RFC 6531).
    pub fn smtp_utf8(&self) -> bool {
        self.has(SMTP_UTF8)
    }

    /// `DSN` (RFC 3461).
    pub fn dsn(&self) -> bool {
        self.has(DSN)
    }

    /// `CHUNKING` (RFC 3030): BDAT.
    pub fn chunking(&self) -> bool {
        self.has(CHUNKING)
    }

    /// `BINARYMIME` (RFC 3030).
    pub fn binary_mime(&self) -> bool {
        self.has(BINARY_MIME)
    }

    /// `ENHANCEDSTATUSCODES` (RFC 2034).
    pub fn enhanced_status_codes(&self) -> bool {
        self.has(ENHANCED_STATUS_CODES)
    }

    /// `STARTTLS` (RFC 3207).
    pub fn starttls(&self) -> bool {
        self.has(STARTTLS)
    }

    /// `REQUIRETLS` (RFC 8689).
    pub fn requiretls(&self) -> bool {
        self.has(REQUIRETLS)
    }

    /// The server offers this SASL mechanism (from any `AUTH` or legacy `AUTH=` line).
    pub fn auth(&self, mech: Mechanism) -> bool {
        self.auth & mechanism_bit(mech) != 0
    }

    /// The offered mechanisms this crate knows, in the order of [`Mechanism`]'s variants. Other names
    /// stay visible through `extension("AUTH")`.
    pub fn auth_mechanisms(&self) -> impl Iterator<Item = Mechanism> + '_ {
        ALL_MECHANISMS.into_iter().filter(|&m| self.auth(m))
    }

    /// `LIMITS RCPTMAX=n` (RFC 9422): most RCPT commands per transaction.
    pub fn rcpt_max(&self) -> Option<u32> {
        self.rcpt_max
    }

    /// `LIMITS MAILMAX=n` (RFC 9422): most MAIL commands per session.
    pub fn mail_max(&self) -> Option<u32> {
        self.mail_max
    }

    /// The parameter text of any advertised keyword, known or not, looked up case-insensitively (`Some(b"")`
    /// for a keyword without parameters). For `AUTH`, the last real `AUTH` line wins over a legacy `AUTH=`.
    pub fn extension(&self, keyword: &str) -> Option<&[u8]> {
        self.entries
            .iter()
            .find(|e| self.text[e.keyword.start..e.keyword.end].eq_ignore_ascii_case(keyword.as_bytes()))
            .map(|e| &self.text[e.params.start..e.params.end])
    }

    /// Every advertised keyword once, spelled as the server sent it, in order of first appearance.
    pub fn keywords(&self) -> impl Iterator<Item = &[u8]> + '_ {
        self.entries.iter().map(|e| &self.text[e.keyword.start..e.keyword.end])
    }
}

/// End of `span` with trailing whitespace removed.
fn span_trim_end(text: &[u8], span: Span) -> usize {
    let mut end = span.end;
    while end > span.start && is_ws(text[end - 1]) {
        end -= 1;
    }
    end
}

impl fmt::Debug for Capabilities {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        struct Ext<'a>(&'a [u8], &'a [u8]);
        impl fmt::Debug for Ext<'_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                let kw = String::from_utf8_lossy(self.0);
                if self.1.is_empty() {
                    write!(f, "{kw:?}")
                } else {
                    write!(f, "{:?}", alloc::format!("{kw} {}", String::from_utf8_lossy(self.1)))
                }
            }
        }
        f.debug_struct("Capabilities")
            .field("domain", &String::from_utf8_lossy(self.domain()))
            .field(
                "extensions",
                &DebugList(self.entries.iter().map(|e| {
                    Ext(&self.text[e.keyword.start..e.keyword.end], &self.text[e.params.start..e.params.end])
                })),
            )
            .finish()
    }
}

/// Debug-prints an iterator as a list.
struct DebugList<I>(I);

impl<I: Iterator<Item = T> + Clone, T: fmt::Debug> fmt::Debug for DebugList<I> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.0.clone()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::{format, vec, vec::Vec};

    fn caps(text: &str) -> Capabilities {
        Capabilities::from_ehlo(&Reply::new(250, text))
    }

    fn mechs(c: &Capabilities) -> Vec<Mechanism> {
        c.auth_mechanisms().collect()
    }

    #[test]
    fn tv03_multiline_mixed_case_legacy_auth() {
        let c = caps(
            "mx.example.com greets you\npipelining\nSIZE 35882577\nAUTH=LOGIN\nAUTH PLAIN LOGIN XOAUTH2\n\
             LIMITS RCPTMAX=20 MAILMAX=5\nENHANCEDSTATUSCODES",
        );
        assert_eq!(c.domain(), b"mx.example.com");
        assert!(c.pipelining() && c.size_advertised() && c.enhanced_status_codes());
        assert_eq!(c.max_size(), Some(35_882_577));
        use Mechanism::*;
        assert_eq!(mechs(&c), vec![Plain, Login, XOAuth2]);
        assert_eq!((c.rcpt_max(), c.mail_max()), (Some(20), Some(5)));
        assert_eq!(c.extension("auth"), Some(&b"PLAIN LOGIN XOAUTH2"[..]));
        assert_eq!(c.extension("mx.example.com"), None, "the first line is not a keyword");
        let kws: Vec<&[u8]> = c.keywords().collect();
        assert_eq!(kws, vec![&b"pipelining"[..], b"SIZE", b"AUTH", b"LIMITS", b"ENHANCEDSTATUSCODES"]);
        assert!(!c.starttls() && !c.dsn() && !c.chunking());
    }

    #[test]
    fn tv17_single_line_means_no_extensions() {
        let c = caps("mx.example.com");
        assert_eq!(c.domain(), b"mx.example.com");
        assert_eq!(c.keywords().count(), 0);
        assert!(!c.size_advertised() && !c.pipelining());
        // A greeting on the first line that looks like keywords is still not a keyword.
        let c = caps("mx.example.com PIPELINING SIZE 10");
        assert!(!c.pipelining() && !c.size_advertised());
    }

    #[test]
    fn flags_table() {
        type Check = fn(&Capabilities) -> bool;
        let cases: &[(&str, Check)] = &[
            ("PIPELINING", Capabilities::pipelining),
            ("8bitmime", Capabilities::eight_bit_mime),
            ("SmtpUtf8", Capabilities::smtp_utf8),
            ("DSN", Capabilities::dsn),
            ("CHUNKING", Capabilities::chunking),
            ("BINARYMIME", Capabilities::binary_mime),
            ("ENHANCEDSTATUSCODES", Capabilities::enhanced_status_codes),
            ("STARTTLS", Capabilities::starttls),
            ("REQUIRETLS", Capabilities::requiretls),
            ("SIZE", Capabilities::size_advertised),
        ];
        for &(kw, check) in cases {
            assert!(check(&caps(&format!("mx\n{kw}"))), "{kw}");
            assert!(check(&caps(&format!("mx\n\t {kw} \t"))), "{kw} with whitespace");
            assert!(!check(&caps("mx\nX-OTHER")), "{kw}");
            assert!(!check(&Capabilities::none()), "{kw}");
        }
    }

    #[test]
    fn size_table() {
        let cases: &[(&str, bool, Option<u64>)] = &[
            ("SIZE", true, None),
            ("SIZE 0", true, None),
            ("SIZE 1000000", true, Some(1_000_000)),
            ("SIZE   42  ", true, Some(42)),
            ("SIZE 18446744073709551615", true, Some(u64::MAX)),
            ("SIZE 18446744073709551616", true, None),
            ("SIZE 99999999999999999999999999", true, None),
            ("SIZE -5", true, None),
            ("SIZE 12abc", true, None),
            ("SIZE 007", true, Some(7)),
            ("X-SIZE 5", false, None),
        ];
        for &(line, adv, max) in cases {
            let c = caps(&format!("mx\n{line}"));
            assert_eq!((c.size_advertised(), c.max_size()), (adv, max), "{line}");
        }
        // Last instance wins.
        assert_eq!(caps("mx\nSIZE 10\nsize 20").max_size(), Some(20));
        assert_eq!(caps("mx\nSIZE 10\nSIZE").max_size(), None);
    }

    #[test]
    fn limits_table() {
        let cases: &[(&str, Option<u32>, Option<u32>)] = &[
            ("LIMITS RCPTMAX=20 MAILMAX=5", Some(20), Some(5)),
            ("limits rcptmax=1 mailmax=999999", Some(1), Some(999_999)),
            ("LIMITS RCPTMAX=0 MAILMAX=5", None, Some(5)),
            ("LIMITS RCPTMAX=020 MAILMAX=5", None, Some(5)),
            ("LIMITS RCPTMAX=1000000", None, None),
            ("LIMITS RCPTMAX=abc MAILMAX=3", None, Some(3)),
            ("LIMITS RCPTMAX MAILMAX=3", None, Some(3)),
            ("LIMITS RCPTDOMAINMAX=4 X_Y-Z=whatever RCPTMAX=7", Some(7), None),
            ("LIMITS RCPTMAX=7;x MAILMAX=3", None, None),
            ("LIMITS RCPTMAX=7 M@IL=3", None, None),
            ("LIMITS RCPTMAX= MAILMAX=3", None, None),
            ("LIMITS", None, None),
            ("X-LIMITS RCPTMAX=7", None, None),
        ];
        for &(line, rcpt, mail) in cases {
            let c = caps(&format!("mx\n{line}"));
            assert_eq!((c.rcpt_max(), c.mail_max()), (rcpt, mail), "{line}");
        }
        // Last instance wins, and an EHLO without LIMITS has none (TV-50): values never leak between replies.
        assert_eq!(caps("mx\nLIMITS RCPTMAX=2\nLIMITS MAILMAX=3").rcpt_max(), None);
        assert_eq!(caps("mx\nPIPELINING").rcpt_max(), None);
    }

    #[test]
    fn auth_table() {
        use Mechanism::*;
        type Case = (&'static str, &'static [Mechanism], Option<&'static [u8]>);
        let cases: &[Case] = &[
            ("AUTH PLAIN LOGIN", &[Plain, Login], Some(b"PLAIN LOGIN")),
            (
                "auth cram-md5 xoauth2 oauthbearer",
                &[CramMd5, XOAuth2, OAuthBearer],
                Some(b"cram-md5 xoauth2 oauthbearer"),
            ),
            ("AUTH SCRAM-SHA-256 PLAIN", &[Plain], Some(b"SCRAM-SHA-256 PLAIN")),
            ("AUTH SCRAM-SHA-256", &[], Some(b"SCRAM-SHA-256")),
            ("AUTH", &[], Some(b"")),
            ("AUTH=LOGIN PLAIN", &[Plain, Login], Some(b"LOGIN PLAIN")),
            ("auth=login", &[Login], Some(b"login")),
            ("AUTH=", &[], Some(b"")),
            ("AUTH PLAIN\nAUTH=LOGIN", &[Plain, Login], Some(b"PLAIN")),
            ("AUTH=LOGIN\nAUTH\tPLAIN", &[Plain, Login], Some(b"PLAIN")),
            ("AUTH PLAIN\nAUTH LOGIN", &[Plain, Login], Some(b"LOGIN")),
            ("AUTHX PLAIN", &[], None),
        ];
        for &(lines, want, ext) in cases {
            let c = caps(&format!("mx\n{lines}"));
            assert_eq!(mechs(&c), want, "{lines}");
            assert_eq!(c.extension("AUTH"), ext, "{lines}");
            for m in ALL_MECHANISMS {
                assert_eq!(c.auth(m), want.contains(&m), "{lines} {m}");
            }
        }
    }

    #[test]
    fn unknown_and_repeated_keywords() {
        let c = caps("mx\nX-EXPS GSSAPI NTLM\nVRFY\nXFOO a\nxfoo   b  c \nETRN");
        assert_eq!(c.extension("x-exps"), Some(&b"GSSAPI NTLM"[..]));
        assert_eq!(c.extension("VRFY"), Some(&b""[..]));
        assert_eq!(c.extension("XFOO"), Some(&b"b  c"[..]));
        assert_eq!(c.extension("NOPE"), None);
        let kws: Vec<&[u8]> = c.keywords().collect();
        assert_eq!(kws, vec![&b"X-EXPS"[..], b"VRFY", b"xfoo", b"ETRN"]);
    }

    #[test]
    fn never_panics_on_odd_replies() {
        let texts = [
            "",
            " ",
            "\t",
            "\n",
            " \n ",
            "mx\n",
            "mx\n \n\t\n",
            "mx\n=",
            "mx\nAUTH=\t",
            "mx\n\u{e9}t\u{e9} x",
            "   \n   PIPELINING  ",
            "mx\nAUTH=  ",
            "mx\nLIMITS ==",
            "mx\nSIZE \t",
        ];
        for t in texts {
            let c = caps(t);
            let _ = format!("{c:?}");
            let _ = (c.keywords().count(), c.domain(), c.max_size(), c.extension(""));
        }
        // The whitespace-only line lettre panicked on: skipped.
        let c = caps("mx\n \nPIPELINING");
        assert!(c.pipelining());
        assert_eq!(c.keywords().count(), 1);
        // The first line's whitespace is skipped for the domain.
        assert_eq!(caps("   \nPIPELINING").domain(), b"");
        assert!(caps("   \nPIPELINING").pipelining());
    }

    #[test]
    fn non_positive_reply_gives_none() {
        let c = Capabilities::from_ehlo(&Reply::new(502, "5.5.1 not implemented\nPIPELINING"));
        assert_eq!(c, Capabilities::none());
        assert_eq!(c.domain(), b"");
    }

    #[test]
    fn bare_lf_inside_an_ehlo_line_never_makes_a_keyword() {
        use crate::reply::{ParseError, ReplyConfig, ReplyParser};
        let input = b"250-mx\r\n250 X-A\nSTARTTLS\r\n";
        let strict = ReplyParser::new(ReplyConfig::default()).push(input);
        assert_eq!(strict, Err(ParseError::BareLf));
        // Lenient: the LF ends the line, and "STARTTLS" after it is no reply line.
        let lenient = ReplyConfig { allow_bare_lf: true, ..ReplyConfig::default() };
        let mut p = ReplyParser::new(lenient);
        let (n, r) = p.push(input).unwrap();
        assert!(!Capabilities::from_ehlo(&r.unwrap()).starttls());
        assert_eq!(p.push(&input[n..]), Err(ParseError::Malformed));
    }

    #[test]
    fn auth_mechanism_names_round_trip() {
        for m in ALL_MECHANISMS {
            assert_eq!(Mechanism::from_name(m.name().as_bytes()), Some(m));
            assert_eq!(Mechanism::from_name(m.name().to_ascii_lowercase().as_bytes()), Some(m));
            assert_eq!(format!("{m}"), m.name());
        }
        assert_eq!(Mechanism::from_name(b""), None);
        assert_eq!(Mechanism::from_name(b"PLAIN "), None);
    }
}
