//! Fuzz body for [`Capabilities::from_ehlo`]: agreement with a reference reading of the reply.

use alloc::{format, string::String, vec::Vec};

use super::Input;
use crate::ehlo::Capabilities;
use crate::reply::{Reply, ReplyConfig, ReplyParser};
use crate::sasl::Mechanism;

/// Keywords and parameters a mutation may splice in whole: bytes from `0xE0` up in the alphabet variant.
const WORDS: [&str; 32] = [
    "PIPELINING",
    "SIZE",
    "SIZE 0",
    "SIZE 35882577",
    "AUTH",
    "AUTH=",
    "auth=login",
    "PLAIN",
    "LOGIN",
    "CRAM-MD5",
    "XOAUTH2",
    "OAUTHBEARER",
    "GSSAPI",
    "LIMITS",
    "RCPTMAX=",
    "MAILMAX=",
    "999999",
    "1000000",
    "STARTTLS",
    "8BITMIME",
    "SMTPUTF8",
    "DSN",
    "CHUNKING",
    "BINARYMIME",
    "ENHANCEDSTATUSCODES",
    "REQUIRETLS",
    "18446744073709551616",
    "\n",
    " ",
    "\t",
    "=",
    "mx.example.com",
];

/// Single characters for the bytes below `0xE0` in the alphabet variant.
const CHARS: &[u8] = b"ABCDEFGHIKLMNOPRSTUXZabcdefghiklmnoprstuxz0123456789 \t\n==--_.,;";

/// Codes for the [`Reply::new`] path: mostly 250, also other 2yz and failures (which give no capabilities).
const CODES: [u16; 8] = [250, 250, 250, 250, 220, 299, 550, 421];

/// Expands fuzz bytes into EHLO-like text: a byte from `0xE0` up is a whole keyword, any other one character.
fn into_ehlo_alphabet(data: &[u8]) -> String {
    let mut out = String::new();
    for &b in data {
        if b >= 0xE0 {
            out.push_str(WORDS[usize::from(b - 0xE0)]);
        } else {
            out.push(char::from(CHARS[usize::from(b) % CHARS.len()]));
        }
    }
    out
}

/// Input layout: `[code selector, payload…]`.
///
/// The payload is read as server bytes (lenient framing: bare LF ends a line, mixed codes allowed), and each
/// complete reply goes through [`Capabilities::from_ehlo`]; then the payload, as lossy UTF-8 and after the
/// keyword alphabet, is the text of a [`Reply::new`] with a code picked by the first byte. Asserts, against
/// a reference reading of the reply's lines:
/// - a non-2yz reply gives [`Capabilities::none`];
/// - the domain is the first token of the first line;
/// - the keywords are those of lines 2.., once each (case-insensitively), in order of first appearance,
///   non-empty and without SP/HTAB, each with an [`extension`](Capabilities::extension);
/// - each flag getter is true exactly when its keyword is present;
/// - `auth(m)` is true exactly when an `AUTH` (or legacy `AUTH=`) line names `m`, and `auth_mechanisms`
///   lists exactly those;
/// - `max_size` is `Some` only with `SIZE` advertised, and equals the first SIZE parameter when it is a
///   decimal above 0 that fits in a `u64`;
/// - `rcpt_max`/`mail_max` are within 1..=999999 and come from a `LIMITS` line.
pub fn ehlo(data: &[u8]) {
    let mut input = Input::new(data);
    let code = CODES[usize::from(input.byte()) % CODES.len()];
    let payload = input.rest();

    let mut parser = ReplyParser::new(ReplyConfig {
        allow_bare_lf: true,
        allow_code_mismatch: true,
        ..ReplyConfig::default()
    });
    let mut rest = payload;
    while !rest.is_empty() {
        match parser.push(rest) {
            Ok((n, Some(reply))) => {
                check(&reply);
                rest = &rest[n..];
            }
            Ok((_, None)) | Err(_) => break,
        }
    }
    // A reply never holds a CR (the parser refuses one): a CR here stands for a space.
    check(&Reply::new(code, &String::from_utf8_lossy(payload).replace('\r', " ")));
    check(&Reply::new(code, &into_ehlo_alphabet(payload)));
}

/// Builds an [`ehlo`] input whose [`Reply::new`] path uses code 250.
pub fn ehlo_seed(payload: &[u8]) -> Vec<u8> {
    let mut out = alloc::vec![0];
    out.extend_from_slice(payload);
    out
}

fn is_ws(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

fn tokens(line: &[u8]) -> impl Iterator<Item = &[u8]> {
    line.split(|&b| is_ws(b)).filter(|t| !t.is_empty())
}

/// The reference reading: `(keyword, parameter tokens)` per extension line, `AUTH=x y` read as `AUTH x y`.
fn reference_lines(reply: &Reply) -> Vec<(&[u8], Vec<&[u8]>)> {
    let mut out = Vec::new();
    for line in reply.lines().skip(1) {
        let mut toks = tokens(line);
        let Some(kw) = toks.next() else { continue };
        let mut params: Vec<&[u8]> = Vec::new();
        let kw = if kw.len() >= 5 && kw[..5].eq_ignore_ascii_case(b"AUTH=") {
            if kw.len() > 5 {
                params.push(&kw[5..]);
            }
            &kw[..4]
        } else {
            kw
        };
        params.extend(toks);
        out.push((kw, params));
    }
    out
}

/// A flag getter of [`Capabilities`].
type Getter = fn(&Capabilities) -> bool;

const FLAGS: [(&str, Getter); 10] = [
    ("PIPELINING", Capabilities::pipelining),
    ("8BITMIME", Capabilities::eight_bit_mime),
    ("SMTPUTF8", Capabilities::smtp_utf8),
    ("DSN", Capabilities::dsn),
    ("CHUNKING", Capabilities::chunking),
    ("BINARYMIME", Capabilities::binary_mime),
    ("ENHANCEDSTATUSCODES", Capabilities::enhanced_status_codes),
    ("STARTTLS", Capabilities::starttls),
    ("REQUIRETLS", Capabilities::requiretls),
    ("SIZE", Capabilities::size_advertised),
];

const MECHANISMS: [Mechanism; 5] =
    [Mechanism::Plain, Mechanism::Login, Mechanism::CramMd5, Mechanism::XOAuth2, Mechanism::OAuthBearer];

fn check(reply: &Reply) {
    let caps = Capabilities::from_ehlo(reply);
    let _ = format!("{caps:?}");
    assert_eq!(caps.clone(), caps);
    if !reply.is_positive() {
        assert_eq!(caps, Capabilities::none());
        assert_eq!(caps.keywords().count(), 0);
        return;
    }
    let first = reply.lines().next().expect("a reply has a line");
    assert_eq!(caps.domain(), tokens(first).next().unwrap_or(b""), "domain");

    // Keywords: once each, in order of first appearance.
    let lines = reference_lines(reply);
    let mut want: Vec<&[u8]> = Vec::new();
    for (kw, _) in &lines {
        if !want.iter().any(|w| w.eq_ignore_ascii_case(kw)) {
            want.push(kw);
        }
    }
    let got: Vec<&[u8]> = caps.keywords().collect();
    assert_eq!(got.len(), want.len(), "keywords {got:?} vs {want:?}");
    for (g, w) in got.iter().zip(&want) {
        assert!(g.eq_ignore_ascii_case(w), "keyword {g:?} vs {w:?}");
        assert!(!g.is_empty() && !g.iter().any(|&b| is_ws(b)), "keyword {g:?}");
        let name = String::from_utf8_lossy(g);
        if !name.contains('\u{fffd}') {
            assert!(caps.extension(&name).is_some(), "extension({name:?})");
        }
    }
    let has = |name: &str| want.iter().any(|w| w.eq_ignore_ascii_case(name.as_bytes()));
    for (name, getter) in FLAGS {
        assert_eq!(getter(&caps), has(name), "{name}");
    }

    // AUTH: the union of every AUTH line, real or legacy.
    let offered = |m: Mechanism| {
        lines.iter().any(|(kw, params)| {
            kw.eq_ignore_ascii_case(b"AUTH") && params.iter().any(|p| Mechanism::from_name(p) == Some(m))
        })
    };
    for m in MECHANISMS {
        assert_eq!(caps.auth(m), offered(m), "{m}");
    }
    for m in caps.auth_mechanisms() {
        assert!(caps.auth(m));
    }
    assert_eq!(caps.auth_mechanisms().count(), MECHANISMS.iter().filter(|&&m| caps.auth(m)).count());

    // SIZE.
    if let Some(n) = caps.max_size() {
        assert!(caps.size_advertised() && n > 0);
    }
    if caps.size_advertised() {
        let params = caps.extension("SIZE").expect("SIZE advertised");
        let want = tokens(params)
            .next()
            .filter(|t| t.iter().all(u8::is_ascii_digit))
            .and_then(|t| core::str::from_utf8(t).ok()?.parse::<u64>().ok())
            .filter(|&n| n > 0);
        assert_eq!(caps.max_size(), want, "SIZE {params:?}");
    }

    // LIMITS.
    for (name, value) in [("RCPTMAX=", caps.rcpt_max()), ("MAILMAX=", caps.mail_max())] {
        let Some(v) = value else { continue };
        assert!((1..=999_999).contains(&v), "{name}{v}");
        let params = caps.extension("LIMITS").expect("a limit needs LIMITS");
        let digits = format!("{v}");
        assert!(
            tokens(params).any(|t| t.len() == name.len() + digits.len()
                && t[..name.len()].eq_ignore_ascii_case(name.as_bytes())
                && &t[name.len()..] == digits.as_bytes()),
            "{name}{v} not in {params:?}"
        );
    }
}
