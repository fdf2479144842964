//! Fuzz body for the body encoders: [`DotStuffer`], [`CrlfNormalizer`], [`BodyScan`] and BDAT framing.

use alloc::vec::Vec;

use super::{Input, chunks, contains, map_onto, only_crlf, push_chunk_lens, read_chunk_lens};
use crate::body::{BodyScan, CrlfNormalizer, DotStuffer, bdat_chunk, bdat_header};
use crate::internal::{normalize_line_endings, unstuff};

/// Body bytes that make smuggling look-alikes likely: dots, CR, LF, plus 8-bit and NUL octets.
const BODY_ALPHABET: &[u8] = b"..\r\n\r\n.\r\n\n\r.ab \x00\xff";

/// Pieces of text for [`text_onto`]: long clean runs, so that the encoders' whole-block path (64-byte blocks
/// with no line end to rewrite) meets every kind of line end and dot at every offset of a block.
const TEXT_PIECES: &[&[u8]] = &[
    b"Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor incididunt ut",
    b"labore et dolore magna aliqua",
    b" ",
    b"\r\n",
    b"\r\n",
    b"\r\n",
    b"\r\n.",
    b".",
    b"\n",
    b"\r",
    b"\r\n\r\n",
    b"\n.",
    b"\r.",
    b"..",
    b"\xc3\xa9",
    b"\x00",
];

/// At most this many input bytes become text in [`text_onto`] (each makes up to 94 bytes): a few KiB, enough
/// for dozens of blocks, and the fuzzer keeps its pace (the body is also encoded byte by byte).
const TEXT_MAX_PIECES: usize = 64;

/// Maps each byte onto a piece of [`TEXT_PIECES`]: text whose clean stretches are long enough for whole
/// blocks, with the odd bare line end or line-start dot.
fn text_onto(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    for &b in data.iter().take(TEXT_MAX_PIECES) {
        out.extend_from_slice(TEXT_PIECES[usize::from(b) % TEXT_PIECES.len()]);
    }
    out
}

/// The reference for [`DotStuffer`] and [`CrlfNormalizer`]: byte at a time, the rules straight from the
/// module docs, with nothing clever to get wrong. The fast encoders must append exactly what this appends, call
/// by call, for every chunking.
#[derive(Clone, Debug)]
pub struct ReferenceEncoder {
    stuff: bool,
    /// A CR was seen; whether it is half of a CRLF depends on the next byte.
    pending_cr: bool,
    /// The next output byte starts a line.
    at_line_start: bool,
}

impl ReferenceEncoder {
    /// The reference [`DotStuffer`]: normalises line ends, doubles a dot at a line start (RFC 5321 §4.5.2).
    pub fn dot_stuffer() -> Self {
        ReferenceEncoder { stuff: true, pending_cr: false, at_line_start: true }
    }

    /// The reference [`CrlfNormalizer`]: normalises line ends only.
    pub fn normalizer() -> Self {
        ReferenceEncoder { stuff: false, ..Self::dot_stuffer() }
    }

    /// Appends the encoding of `chunk`; a CR at its end waits for the next byte.
    pub fn encode(&mut self, chunk: &[u8], out: &mut Vec<u8>) {
        for &b in chunk {
            self.push(b, out);
        }
    }

    fn push(&mut self, b: u8, out: &mut Vec<u8>) {
        if self.pending_cr {
            // CR LF, or a bare CR: a line end either way, written as CR LF.
            self.pending_cr = false;
            out.extend_from_slice(b"\r\n");
            self.at_line_start = true;
            if b == b'\n' {
                return;
            }
        }
        match b {
            b'\r' => self.pending_cr = true,
            b'\n' => {
                // A bare LF.
                out.extend_from_slice(b"\r\n");
                self.at_line_start = true;
            }
            _ => {
                if self.stuff && self.at_line_start && b == b'.' {
                    out.push(b'.');
                }
                out.push(b);
                self.at_line_start = false;
            }
        }
    }

    /// Ends the body: a pending CR becomes CR LF; the stuffer also ends the last line and appends `.` CR LF.
    pub fn finish(&mut self, out: &mut Vec<u8>) {
        if self.pending_cr {
            self.pending_cr = false;
            out.extend_from_slice(b"\r\n");
            self.at_line_start = true;
        }
        if self.stuff {
            if !self.at_line_start {
                out.extend_from_slice(b"\r\n");
            }
            out.extend_from_slice(b".\r\n");
            self.at_line_start = true;
        }
    }
}

/// Feeds `pieces` to the fast encoders and to the reference, checking that every call appends the same bytes.
pub fn compare_with_reference(pieces: &[&[u8]]) {
    let mut stuffer = DotStuffer::new();
    let mut norm = CrlfNormalizer::new();
    let mut ref_stuffer = ReferenceEncoder::dot_stuffer();
    let mut ref_norm = ReferenceEncoder::normalizer();
    let (mut fast, mut slow) = (Vec::new(), Vec::new());
    for (n, piece) in pieces.iter().enumerate() {
        fast.clear();
        slow.clear();
        stuffer.encode(piece, &mut fast);
        ref_stuffer.encode(piece, &mut slow);
        assert_eq!(fast, slow, "DotStuffer differs from the reference at piece {n}");
        fast.clear();
        slow.clear();
        norm.encode(piece, &mut fast);
        ref_norm.encode(piece, &mut slow);
        assert_eq!(fast, slow, "CrlfNormalizer differs from the reference at piece {n}");
    }
    fast.clear();
    slow.clear();
    stuffer.finish(&mut fast);
    ref_stuffer.finish(&mut slow);
    assert_eq!(fast, slow, "DotStuffer::finish differs from the reference");
    fast.clear();
    slow.clear();
    norm.finish(&mut fast);
    ref_norm.finish(&mut slow);
    assert_eq!(fast, slow, "CrlfNormalizer::finish differs from the reference");
}

/// Input layout: `[chunk lengths (see read_chunk_lens; count bit 4: BDAT LAST on every chunk), bdat size
/// (8 bytes LE), body…]`.
///
/// The body is encoded whole, in the chosen chunks and byte by byte, then again after mapping onto an
/// alphabet of dots and line ends, and after mapping onto pieces of text (long clean runs with the odd bare
/// line end or line-start dot, `text_onto`). Asserts:
/// - [`DotStuffer`] and [`CrlfNormalizer`] append, call by call, exactly what [`ReferenceEncoder`] (byte at a
///   time) appends, for every chunking;
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
    check(&lens, &text_onto(payload), last_every);
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

    // Against the byte-at-a-time reference, call by call.
    for pieces in &splittings {
        compare_with_reference(pieces);
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
