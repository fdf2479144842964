//! Not part of the API: fuzz bodies and test support, compiled in every build so that they cannot rot.
#![allow(missing_docs)]

pub mod fuzzing;

use alloc::vec::Vec;

use memchr::memchr2;

/// Reverses dot-stuffing, as a strict server would (for tests and fuzzing).
///
/// `wire` must be a sequence of CRLF-terminated lines whose last line is exactly `.`, with no other line
/// being exactly `.`, no bare CR or LF, and every other line that starts with `.` starting with `..` (which
/// is what [`DotStuffer`](crate::body::DotStuffer) produces; a lone leading dot would be an unstuffed line). Returns the body with one
/// leading dot removed from each stuffed line and the terminator removed, or `None` if `wire` is not of that
/// form.
///
/// ```
/// use smtp_proto::internal::unstuff;
///
/// assert_eq!(unstuff(b"..x\r\ny\r\n.\r\n").unwrap(), b".x\r\ny\r\n");
/// assert_eq!(unstuff(b".\r\n").unwrap(), b"");
/// assert_eq!(unstuff(b"a\r\n.\r\nb\r\n.\r\n"), None); // early terminator
/// assert_eq!(unstuff(b"a\n.\r\n"), None); // bare LF
/// ```
#[must_use]
pub fn unstuff(wire: &[u8]) -> Option<Vec<u8>> {
    let mut body = Vec::with_capacity(wire.len());
    let mut rest = wire;
    loop {
        let end = memchr2(b'\r', b'\n', rest)?;
        if rest[end] != b'\r' || rest.get(end + 1) != Some(&b'\n') {
            return None;
        }
        let line = &rest[..end];
        rest = &rest[end + 2..];
        if line == b"." {
            return rest.is_empty().then_some(body);
        }
        let content = match line.first() {
            Some(b'.') if line.get(1) == Some(&b'.') => &line[1..],
            Some(b'.') => return None,
            _ => line,
        };
        body.extend_from_slice(content);
        body.extend_from_slice(b"\r\n");
    }
}

/// CRLF-normalises `input` the way the encoders do: CRLF stays, a bare CR or bare LF becomes CRLF.
///
/// A simple byte-at-a-time reference implementation, for tests and fuzzing.
///
/// ```
/// use smtp_proto::internal::normalize_line_endings;
///
/// assert_eq!(normalize_line_endings(b"a\nb\rc\r\n"), b"a\r\nb\r\nc\r\n");
/// assert_eq!(normalize_line_endings(b"\r\r\n"), b"\r\n\r\n");
/// ```
#[must_use]
pub fn normalize_line_endings(input: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len() + input.len() / 8);
    let mut i = 0;
    while i < input.len() {
        match input[i] {
            b'\r' => {
                out.extend_from_slice(b"\r\n");
                if input.get(i + 1) == Some(&b'\n') {
                    i += 1;
                }
            }
            b'\n' => out.extend_from_slice(b"\r\n"),
            b => out.push(b),
        }
        i += 1;
    }
    out
}
