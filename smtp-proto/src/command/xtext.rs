//! xtext (RFC 3461 §4) and the RFC 6533 `\x{HEX}` forms used by `ORCPT=utf-8;...`.

use alloc::vec::Vec;

use super::params::ParamError;
use super::params::ParamErrorKind;

const HEX: &[u8; 16] = b"0123456789ABCDEF";

/// Appends the xtext encoding of `input` to `out` (RFC 3461 §4, DSN-06).
///
/// Octets 33–126 other than `+` and `=` go as-is; every other octet becomes `+` and two upper-case hex
/// digits. The output is printable ASCII with no space, so it can never end a command line early.
///
/// ```
/// use smtp_proto::command::xtext_encode;
///
/// let mut out = Vec::new();
/// xtext_encode(b"a b+c", &mut out);
/// assert_eq!(out, b"a+20b+2Bc");
/// ```
pub fn xtext_encode(input: &[u8], out: &mut Vec<u8>) {
    for &b in input {
        if matches!(b, 33..=126) && b != b'+' && b != b'=' {
            out.push(b);
        } else {
            out.extend_from_slice(&[b'+', HEX[usize::from(b >> 4)], HEX[usize::from(b & 15)]]);
        }
    }
}

/// The length of the xtext encoding of `input`.
pub(crate) fn xtext_len(input: &[u8]) -> usize {
    input.iter().map(|&b| if matches!(b, 33..=126) && b != b'+' && b != b'=' { 1 } else { 3 }).sum()
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Decodes xtext (RFC 3461 §4) strictly.
///
/// Rejects a `+` not followed by two **upper-case** hex digits, a raw `=`, and any octet outside 33–126.
///
/// ```
/// use smtp_proto::command::xtext_decode;
///
/// assert_eq!(xtext_decode(b"e+3Dmc2@example.com").unwrap(), b"e=mc2@example.com");
/// assert!(xtext_decode(b"x+2b").is_err()); // lower-case hex
/// assert!(xtext_decode(b"x+2").is_err()); // truncated
/// ```
pub fn xtext_decode(input: &[u8]) -> Result<Vec<u8>, ParamError> {
    let err = || ParamError::new("xtext", ParamErrorKind::InvalidXtext);
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while i < input.len() {
        let b = input[i];
        if b == b'+' {
            let hi = input.get(i + 1).copied().and_then(hex_value).ok_or_else(err)?;
            let lo = input.get(i + 2).copied().and_then(hex_value).ok_or_else(err)?;
            out.push(hi << 4 | lo);
            i += 3;
        } else if matches!(b, 33..=126) && b != b'=' {
            out.push(b);
            i += 1;
        } else {
            return Err(err());
        }
    }
    Ok(out)
}

/// RFC 6533 `QCHAR`: printable ASCII except `+`, `=` and `\`.
fn is_qchar(c: char) -> bool {
    matches!(c, '!'..='~') && !matches!(c, '+' | '=' | '\\')
}

/// Appends the RFC 6533 §3 form of `addr`: `utf-8-addr-xtext` (7-bit; every non-`QCHAR` character as
/// `\x{HEX}`) when `unitext` is false, `utf-8-addr-unitext` (non-ASCII characters as-is) when true.
pub(crate) fn utf8_addr_encode(addr: &str, unitext: bool, out: &mut Vec<u8>) {
    for c in addr.chars() {
        if is_qchar(c) || (unitext && !c.is_ascii()) {
            let mut buf = [0u8; 4];
            out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
        } else {
            out.extend_from_slice(b"\\x{");
            let v = u32::from(c);
            // HEXPOINT: upper-case, no leading zeros, at least two digits.
            let digits = ((32 - v.leading_zeros()).div_ceil(4)).max(2);
            for k in (0..digits).rev() {
                out.push(HEX[((v >> (4 * k)) & 15) as usize]);
            }
            out.push(b'}');
        }
    }
}

/// The length of [`utf8_addr_encode`]'s output.
pub(crate) fn utf8_addr_len(addr: &str, unitext: bool) -> usize {
    addr.chars()
        .map(|c| {
            if is_qchar(c) || (unitext && !c.is_ascii()) {
                c.len_utf8()
            } else {
                let v = u32::from(c);
                4 + ((32 - v.leading_zeros()).div_ceil(4)).max(2) as usize
            }
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc(s: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        xtext_encode(s, &mut v);
        assert_eq!(v.len(), xtext_len(s));
        v
    }

    fn utf8(s: &str, unitext: bool) -> alloc::string::String {
        let mut v = Vec::new();
        utf8_addr_encode(s, unitext, &mut v);
        assert_eq!(v.len(), utf8_addr_len(s, unitext));
        alloc::string::String::from_utf8(v).unwrap()
    }

    #[test]
    fn tv40_xtext() {
        assert_eq!(enc(b"e=mc2@example.com"), b"e+3Dmc2@example.com");
        assert_eq!(enc(b"a b+c"), b"a+20b+2Bc");
        assert_eq!(enc(b"\r\n\0\xff~!"), b"+0D+0A+00+FF~!");
        assert!(xtext_decode(b"x+2b").is_err());
        assert!(xtext_decode(b"x+2").is_err());
        assert!(xtext_decode(b"x+").is_err());
        assert!(xtext_decode(b"a=b").is_err());
        assert!(xtext_decode(b"a b").is_err());
        assert!(xtext_decode(b"a\xc3\xa9").is_err());
        assert_eq!(xtext_decode(b"a+20b+2Bc").unwrap(), b"a b+c");
        assert_eq!(xtext_decode(b"").unwrap(), b"");
    }

    #[test]
    fn tv40_utf8_addr() {
        assert_eq!(utf8("caf\u{e9}@example.com", false), "caf\\x{E9}@example.com");
        assert_eq!(utf8("caf\u{e9}@example.com", true), "caf\u{e9}@example.com");
        assert_eq!(utf8("\"a b+=\\\\\"@x", true), "\"a\\x{20}b\\x{2B}\\x{3D}\\x{5C}\\x{5C}\"@x");
        assert_eq!(utf8("\u{4e2d}\u{1f600}\u{100}", false), "\\x{4E2D}\\x{1F600}\\x{100}");
        assert_eq!(utf8("\u{1}", false), "\\x{01}");
    }
}
