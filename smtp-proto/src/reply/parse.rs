//! nom parsers over ONE complete reply line (its CRLF already removed by the framer).
//!
//! Only `complete` combinators are used here: the framer has already decided that the line is whole, so a
//! nom error always means malformed input, never "need more data".

use nom::{
    IResult, Parser,
    branch::alt,
    bytes::complete::{tag, take_while_m_n, take_while1},
    combinator::{eof, map, rest, value},
};

use super::{EnhancedCode, ParseError};

/// One parsed reply line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Line<'a> {
    /// The three-digit code as sent (any digits; the class check is the caller's).
    pub(crate) code: u16,
    /// True when the fourth octet is not `-`: this line ends the reply.
    pub(crate) last: bool,
    /// Text after the separator (enhanced code NOT stripped yet).
    pub(crate) text: &'a [u8],
}

/// nom's unit error: we only need "matched or not".
type Res<'a, T> = IResult<&'a [u8], T, ()>;

fn digits_value(d: &[u8]) -> u16 {
    d.iter().fold(0u16, |acc, &b| acc * 10 + u16::from(b - b'0'))
}

fn is_digit(b: u8) -> bool {
    b.is_ascii_digit()
}

/// `3DIGIT ( "-" / SP / end-of-line ) text`.
fn line(i: &[u8]) -> Res<'_, (u16, bool, &[u8])> {
    (
        map(take_while_m_n(3, 3, is_digit), digits_value),
        alt((value(false, tag(&b"-"[..])), value(true, tag(&b" "[..])), value(true, eof))),
        rest,
    )
        .parse(i)
}

/// Parses one complete line (without its line terminator).
///
/// `25O ok`, `250Xok`, `2500 ok` and lines shorter than three digits are [`ParseError::Malformed`]. The first
/// digit is NOT checked here.
pub(crate) fn parse_line(input: &[u8]) -> Result<Line<'_>, ParseError> {
    match line(input) {
        Ok((_, (code, last, text))) => Ok(Line { code, last, text }),
        Err(_) => Err(ParseError::Malformed),
    }
}

/// `class "." 1*3DIGIT "." 1*3DIGIT ( 1*SP / end-of-line )`, with `class` fixed by the caller.
fn enhanced(class: u8) -> impl Fn(&[u8]) -> Res<'_, EnhancedCode> {
    move |i| {
        let (rest_in, (_, _, subject, _, detail, _)) = (
            tag(&[b'0' + class][..]),
            tag(&b"."[..]),
            map(take_while_m_n(1, 3, is_digit), digits_value),
            tag(&b"."[..]),
            map(take_while_m_n(1, 3, is_digit), digits_value),
            alt((take_while1(|b| b == b' '), eof)),
        )
            .parse(i)?;
        Ok((rest_in, EnhancedCode { class, subject, detail }))
    }
}

/// Splits an enhanced status code (RFC 3463, ESC-01/02) off the start of a line's text.
///
/// The code is accepted only if its class is 2, 4 or 5 AND equals `reply_class` (the first digit of the
/// reply code); otherwise the text is returned unchanged. Spaces after the code are stripped too.
pub(crate) fn split_enhanced(reply_class: u8, text: &[u8]) -> (Option<EnhancedCode>, &[u8]) {
    if !matches!(reply_class, 2 | 4 | 5) {
        return (None, text);
    }
    match enhanced(reply_class)(text) {
        Ok((rest_text, code)) => (Some(code), rest_text),
        Err(_) => (None, text),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_table() {
        let ok: &[(&[u8], u16, bool, &[u8])] = &[
            (b"250", 250, true, b""),
            (b"250 ", 250, true, b""),
            (b"250 ok", 250, true, b"ok"),
            (b"250-ok", 250, false, b"ok"),
            (b"250-", 250, false, b""),
            (b"250-234 Text", 250, false, b"234 Text"),
            (b"250  two", 250, true, b" two"),
            (b"199 hmm", 199, true, b"hmm"),
            (b"299 x", 299, true, b"x"),
            (b"269 x", 269, true, b"x"),
            (b"250 a\rb\nc", 250, true, b"a\rb\nc"),
            (b"250 \xff\xfe", 250, true, b"\xff\xfe"),
        ];
        for &(input, code, last, text) in ok {
            assert_eq!(parse_line(input), Ok(Line { code, last, text }), "{:?}", core::str::from_utf8(input));
        }
        let bad: &[&[u8]] =
            &[b"", b"2", b"25", b"25O ok", b"250Xok", b"2500 ok", b" 250 ok", b"250\tok", b"abc", b"-250"];
        for &input in bad {
            assert_eq!(parse_line(input), Err(ParseError::Malformed), "{input:?}");
        }
    }

    #[test]
    fn enhanced_table() {
        let e = |class, subject, detail| Some(EnhancedCode { class, subject, detail });
        type Case = (u8, &'static [u8], Option<EnhancedCode>, &'static [u8]);
        let cases: &[Case] = &[
            (5, b"5.1.1 Mailbox", e(5, 1, 1), b"Mailbox"),
            (5, b"5.7.30 REQUIRETLS", e(5, 7, 30), b"REQUIRETLS"),
            (5, b"5.7.1", e(5, 7, 1), b""),
            (5, b"5.7.1   many", e(5, 7, 1), b"many"),
            (2, b"2.000.001 zeros", e(2, 0, 1), b"zeros"),
            (2, b"2.999.999 x", e(2, 999, 999), b"x"),
            (4, b"5.3.0 odd", None, b"5.3.0 odd"),
            (3, b"3.0.0 x", None, b"3.0.0 x"),
            (5, b"5.1.1234 x", None, b"5.1.1234 x"),
            (5, b"5.1.1x", None, b"5.1.1x"),
            (5, b"5.1.1\tx", None, b"5.1.1\tx"),
            (5, b"5.1. x", None, b"5.1. x"),
            (5, b"5..1 x", None, b"5..1 x"),
            (5, b"55.1.1 x", None, b"55.1.1 x"),
            (5, b"", None, b""),
            (5, b"5", None, b"5"),
        ];
        for &(class, text, want, rest_text) in cases {
            assert_eq!(split_enhanced(class, text), (want, rest_text), "{text:?}");
        }
    }
}
