//! Fuzz body for [`ReplyParser`]: split-equivalence, limits, and agreement with the raw lines.

use alloc::{format, vec::Vec};

use super::{Input, chunks, map_onto, push_chunk_lens, read_chunk_lens};
use crate::reply::{ParseError, Reply, ReplyConfig, ReplyParser};

/// Bytes an SMTP reply plausibly holds; digits, separators and line ends are weighted up.
const REPLY_ALPHABET: &[u8] =
    b"0123456789012345234523452345 - - .. \r\n\r\n\r\n\n\rABCDEHILMNOPSTXabcdehilmnopstx=:<>@\t\xc3\xa9";

/// Maps bytes onto `REPLY_ALPHABET`, so mutations keep producing reply-like text.
pub fn into_reply_alphabet(data: &[u8]) -> Vec<u8> {
    map_onto(data, REPLY_ALPHABET)
}

/// Input layout: `[flags, max_line_len, max_lines, chunk lengths (see read_chunk_lens), payload…]`.
///
/// `flags` bit 0 is `allow_bare_lf`, bit 1 `allow_code_mismatch`; a limit byte of 0 means the default,
/// otherwise it is the limit itself (1 to 255), so the limits are easy to hit.
///
/// The payload is parsed three ways (whole, in the chosen chunks, byte by byte), then again after
/// [`into_reply_alphabet`]. Asserts:
/// - the same replies, ending at the same stream offsets, and the same error, whatever the chunking;
/// - `push` consumes at most what it is given, everything when it returns no reply, and errors are sticky;
/// - [`ReplyParser::has_partial`] is true exactly when bytes follow the last reply;
/// - no line of a reply holds CR or LF, and in strict mode every line ended with CRLF;
/// - each reply's raw bytes split into lines of at most `max_line_len` octets (terminator included), at
///   most `max_lines` of them, as many as [`Reply::line_count`], every one starting with three digits,
///   continuation lines with `-`, the last one without; the codes agree with [`Reply::code`] (the last
///   line's, in lenient mode); each text line is its raw line's text, possibly minus an enhanced code;
/// - an enhanced code has the reply's class; `Display` is one line.
pub fn reply(data: &[u8]) {
    let mut input = Input::new(data);
    let flags = input.byte();
    let limit = |b: u8, default: usize| if b == 0 { default } else { usize::from(b) };
    let defaults = ReplyConfig::default();
    let config = ReplyConfig {
        allow_bare_lf: flags & 1 != 0,
        allow_code_mismatch: flags & 2 != 0,
        max_line_len: limit(input.byte(), defaults.max_line_len),
        max_lines: limit(input.byte(), defaults.max_lines),
    };
    let lens = read_chunk_lens(&mut input);
    let payload = input.rest();
    check_all_splits(config, &lens, payload);
    check_all_splits(config, &lens, &into_reply_alphabet(payload));
}

/// Builds a [`reply`] input: `payload` fed in chunks of `lens` (byte by byte when empty); a limit of 0 is the
/// default.
pub fn reply_seed(flags: u8, max_line_len: u8, max_lines: u8, lens: &[u8], payload: &[u8]) -> Vec<u8> {
    let mut out = alloc::vec![flags, max_line_len, max_lines];
    push_chunk_lens(&mut out, lens);
    out.extend_from_slice(payload);
    out
}

/// What one way of feeding the payload produced.
#[derive(Debug, PartialEq)]
struct Outcome {
    /// Each reply with the stream offset just past its last byte.
    replies: Vec<(Reply, usize)>,
    error: Option<ParseError>,
    /// `has_partial()` at the end (meaningful without an error).
    partial: bool,
}

fn check_all_splits(config: ReplyConfig, lens: &[usize], payload: &[u8]) {
    let whole = feed(config, &[payload]);
    let chunked = feed(config, &chunks(payload, lens));
    let bytewise = feed(config, &chunks(payload, &[]));
    assert_eq!(whole, chunked, "whole vs chunked {lens:?}");
    assert_eq!(whole, bytewise, "whole vs byte by byte");

    let mut start = 0;
    for (reply, end) in &whole.replies {
        check_reply(config, reply, &payload[start..*end]);
        start = *end;
    }
    if whole.error.is_none() {
        assert_eq!(whole.partial, start < payload.len(), "has_partial");
    }
}

fn feed(config: ReplyConfig, pieces: &[&[u8]]) -> Outcome {
    let mut parser = ReplyParser::new(config);
    let mut replies = Vec::new();
    let mut offset = 0;
    for piece in pieces {
        let mut off = 0;
        loop {
            let rest = &piece[off..];
            match parser.push(rest) {
                Ok((n, reply)) => {
                    assert!(n <= rest.len(), "consumed {n} of {}", rest.len());
                    off += n;
                    match reply {
                        Some(r) => replies.push((r, offset + off)),
                        None => assert_eq!(n, rest.len(), "no reply yet everything consumed"),
                    }
                }
                Err(e) => {
                    assert_eq!(parser.push(b"250 ok\r\n"), Err(e), "sticky error");
                    return Outcome { replies, error: Some(e), partial: false };
                }
            }
            if off == piece.len() {
                break;
            }
        }
        offset += piece.len();
    }
    assert_eq!(offset, pieces.iter().map(|p| p.len()).sum::<usize>());
    Outcome { replies, error: None, partial: parser.has_partial() }
}

/// Splits a reply's raw bytes into lines: `(content, length with terminator)`. Every LF ends a line (the
/// parser refuses a bare one unless `allow_bare_lf`), a CR before it belongs to the terminator.
fn raw_lines(raw: &[u8]) -> Vec<(&[u8], usize)> {
    let mut out = Vec::new();
    let mut rest = raw;
    while !rest.is_empty() {
        let lf = rest.iter().position(|&b| b == b'\n').expect("a reply ends with a line terminator");
        let content = rest[..lf].strip_suffix(b"\r").unwrap_or(&rest[..lf]);
        out.push((content, lf + 1));
        rest = &rest[lf + 1..];
    }
    out
}

fn check_reply(config: ReplyConfig, reply: &Reply, raw: &[u8]) {
    let code = reply.code();
    assert!((200..=599).contains(&code), "code {code}");
    let lines = raw_lines(raw);
    assert!(!lines.is_empty());
    assert!(lines.len() <= config.max_lines, "{} lines", lines.len());
    assert_eq!(lines.len(), reply.line_count());
    assert_eq!(reply.lines().len(), reply.line_count());
    let n = lines.len();
    for (i, ((content, len), text)) in lines.iter().zip(reply.lines()).enumerate() {
        assert!(*len <= config.max_line_len, "line of {len} octets");
        // Reply text never holds CR or LF: one line can never swallow another (RFC 5321 §2.3.8).
        assert!(!content.contains(&b'\r'), "line {i} holds a CR");
        assert!(!text.contains(&b'\r') && !text.contains(&b'\n'), "line {i}");
        if !config.allow_bare_lf {
            assert!(*len - content.len() == 2, "line {i} not ended by CRLF");
        }
        assert!(content.len() >= 3 && content[..3].iter().all(u8::is_ascii_digit));
        let line_code = content[..3].iter().fold(0u16, |acc, &d| acc * 10 + u16::from(d - b'0'));
        if !config.allow_code_mismatch || i + 1 == n {
            assert_eq!(line_code, code, "line {i}");
        }
        let sep = content.get(3).copied();
        if i + 1 < n {
            assert_eq!(sep, Some(b'-'), "continuation line {i}");
        } else {
            assert_ne!(sep, Some(b'-'), "last line");
        }
        let raw_text = content.get(4..).unwrap_or(b"");
        assert!(raw_text.ends_with(text), "line {i}: text is not from the raw line");
        if raw_text.len() != text.len() {
            // Only an enhanced code (and the spaces after it) is ever stripped.
            assert_eq!(raw_text[0], b'0' + (line_code / 100) as u8);
            assert_eq!(raw_text.get(1), Some(&b'.'));
        }
    }
    let joined: Vec<u8> = reply.lines().collect::<Vec<_>>().join(&b'\n');
    assert_eq!(reply.text(), &joined[..]);
    if let Some(esc) = reply.enhanced() {
        assert_eq!(u16::from(esc.class), code / 100);
        assert!(esc.subject <= 999 && esc.detail <= 999);
    }
    let shown = format!("{reply}");
    assert!(!shown.contains(['\r', '\n']), "Display spans lines: {shown:?}");
    let _ = format!("{reply:?}");
}
