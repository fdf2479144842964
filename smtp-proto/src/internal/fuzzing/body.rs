//! Fuzz body for the body encoders: [`DotStuffer`], [`CrlfNormalizer`], [`BodyScan`] and BDAT framing.

use alloc::vec::Vec;

use super::{Input, chunks, contains, map_onto, only_crlf, push_chunk_lens, read_chunk_lens};
use crate::body::{
    BodyScan, CrlfNormalizer, DotStuffer, bdat_chunk, bdat_header, normalize_line_endings, unstuff,
};

/// Body bytes that make smuggling look-alikes likely: dots, CR, LF, plus 8-bit and NUL octets.
const BODY_ALPHABET: &[u8] = b"..\r\n\r\n.\r\n\n\r.ab \x00\xff";

/// Input layout: `[chunk lengths (see read_chunk_lens; count bit 4: BDAT LAST on every chunk), bdat size
/// (8 bytes LE), body…]`.
///
/// The body is encoded whole, in the chosen chunks and byte by byte, then again after mapping onto an
/// alphabet of dots and line ends. Asserts:
/// - [`DotStuffer`]: the same wire bytes for every chunking; each `encode` appends at most
///   [`DotStuffer::max_encoded_len`]; `consumed` counts the input; the wire has only CRLF line ends, ends
///   with `CRLF.CRLF` (or is `.CRLF` for an empty body) and holds no other `CRLF.CRLF` and no line `.`
///   before the end; [`unstuff`] gives back the normalised body with a final CRLF added when missing;
/// - [`CrlfNormalizer`] equals [`normalize_line_endings`] for every chunking;
/// - [`BodyScan`] is the same for every chunking and agrees with the normalised body (length, CRLF length,
///   8-bit, NUL, bare line ends, longest line, ends with a line end);
/// - [`bdat_chunk`] per chunk makes a stream that parses back into the body, `LAST` only where asked;
///   [`bdat_header`] of any size parses back.
pub fn body(data: &[u8]) {
    let mut input = Input::new(data);
    let last_every = data.first().is_some_and(|b| b & 0x10 != 0);
    let lens = read_chunk_lens(&mut input);
    let size = input.u64();
    let payload = input.rest();
    check(&lens, payload, last_every);
    check(&lens, &map_onto(payload, BODY_ALPHABET), last_every);
    for last in [false, true] {
        let mut out = Vec::new();
        bdat_header(size, last, &mut out);
        let (n, got_last, used) = parse_bdat_header(&out).expect("bdat_header parses back");
        assert_eq!((n, got_last, used), (size, last, out.len()));
    }
}

/// Builds a [`body`] input: `body` fed in chunks of `lens` (byte by byte when empty).
pub fn body_seed(lens: &[u8], body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    push_chunk_lens(&mut out, lens);
    out.extend_from_slice(&(body.len() as u64).to_le_bytes());
    out.extend_from_slice(body);
    out
}

fn stuff(pieces: &[&[u8]]) -> Vec<u8> {
    let mut stuffer = DotStuffer::new();
    let mut out = Vec::new();
    let mut total = 0u64;
    for piece in pieces {
        let before = out.len();
        stuffer.encode(piece, &mut out);
        assert!(out.len() - before <= DotStuffer::max_encoded_len(piece.len()));
        total += piece.len() as u64;
        assert_eq!(stuffer.consumed(), total);
    }
    stuffer.finish(&mut out);
    out
}

fn normalize(pieces: &[&[u8]]) -> Vec<u8> {
    let mut norm = CrlfNormalizer::new();
    let mut out = Vec::new();
    for piece in pieces {
        let before = out.len();
        norm.encode(piece, &mut out);
        assert!(out.len() - before <= DotStuffer::max_encoded_len(piece.len()));
    }
    norm.finish(&mut out);
    assert_eq!(norm.consumed(), pieces.iter().map(|p| p.len() as u64).sum::<u64>());
    out
}

fn scan(pieces: &[&[u8]]) -> BodyScan {
    let mut scan = BodyScan::new();
    for piece in pieces {
        scan.update(piece);
    }
    scan
}

fn check(lens: &[usize], body: &[u8], last_every: bool) {
    let whole: &[&[u8]] = &[body];
    let chunked = chunks(body, lens);
    let bytewise = chunks(body, &[]);
    let splittings = [whole, &chunked[..], &bytewise[..]];

    let norm = normalize_line_endings(body);
    let mut expected = norm.clone();
    if !expected.is_empty() && !expected.ends_with(b"\r\n") {
        expected.extend_from_slice(b"\r\n");
    }

    // DATA.
    let wire = stuff(whole);
    for pieces in &splittings[1..] {
        assert_eq!(stuff(pieces), wire, "stuffer output depends on chunking");
    }
    assert!(only_crlf(&wire), "bare CR or LF on the wire");
    if body.is_empty() {
        assert_eq!(wire, b".\r\n");
    } else {
        assert!(wire.ends_with(b"\r\n.\r\n"));
        assert!(!wire.starts_with(b".\r\n"), "terminator at the start");
        let early = &wire[..wire.len() - 3];
        assert!(!contains(early, b"\r\n.\r\n"), "early end of data");
    }
    assert_eq!(unstuff(&wire).as_deref(), Some(&expected[..]), "unstuff");

    // BDAT text: CRLF normalisation alone.
    for pieces in &splittings {
        assert_eq!(normalize(pieces), norm, "normaliser vs reference");
    }

    // Scan.
    let reference = scan(whole);
    for pieces in &splittings[1..] {
        assert_eq!(scan(pieces), reference, "scan depends on chunking");
    }
    assert_eq!(reference.len(), body.len() as u64);
    assert_eq!(reference.is_empty(), body.is_empty());
    assert_eq!(reference.crlf_len(), norm.len() as u64);
    assert_eq!(reference.has_8bit(), body.iter().any(|&b| b >= 0x80));
    assert_eq!(reference.has_nul(), body.contains(&0));
    assert_eq!(reference.has_bare_cr_or_lf(), norm != body);
    let longest =
        norm.split(|&b| b == b'\n').map(|l| l.strip_suffix(b"\r").unwrap_or(l).len()).max().unwrap_or(0);
    assert_eq!(reference.longest_line(), longest as u64);
    assert_eq!(reference.ends_with_line_end(), body.is_empty() || norm.ends_with(b"\r\n"));

    // BDAT binary: header plus bytes unchanged, per chunk.
    let mut stream = Vec::new();
    let n = chunked.len();
    for (i, piece) in chunked.iter().enumerate() {
        bdat_chunk(piece, last_every || i + 1 == n, &mut stream);
    }
    let mut rest = &stream[..];
    let mut got = Vec::new();
    let mut i = 0;
    while !rest.is_empty() {
        let (size, last, used) = parse_bdat_header(rest).expect("BDAT header");
        assert_eq!(last, last_every || i + 1 == n, "LAST on chunk {i} of {n}");
        let size = usize::try_from(size).expect("chunk size fits");
        assert_eq!(size, chunked[i].len());
        got.extend_from_slice(&rest[used..used + size]);
        rest = &rest[used + size..];
        i += 1;
    }
    assert_eq!(i, n);
    assert_eq!(got, body);
}

/// Parses `BDAT <size>[ LAST]\r\n` at the start of `s`: `(size, last, header length)`.
fn parse_bdat_header(s: &[u8]) -> Option<(u64, bool, usize)> {
    let rest = s.strip_prefix(b"BDAT ")?;
    let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
    if digits == 0 || (digits > 1 && rest[0] == b'0') {
        return None;
    }
    let size = core::str::from_utf8(&rest[..digits]).ok()?.parse().ok()?;
    let after = &rest[digits..];
    let (last, tail) = match after.strip_prefix(b" LAST") {
        Some(t) => (true, t),
        None => (false, after),
    };
    tail.starts_with(b"\r\n").then(|| (size, last, s.len() - tail.len() + 2))
}
