//! Message body encoding: DATA dot-stuffing, CRLF normalisation, BDAT framing and body scanning.
//!
//! # Line endings
//!
//! SMTP only knows CRLF as a line end (RFC 5321 §2.3.8): a client MUST NOT send a bare CR or a bare LF.
//! Every encoder here rewrites the input's line ends the same way (the tests hold them to a byte-at-a-time
//! reference):
//!
//! - `CR LF` stays `CR LF`, also when the CR ends one chunk and the LF starts the next one;
//! - a bare `LF` becomes `CR LF`;
//! - a bare `CR` (a CR not directly followed by LF) becomes `CR LF`, so `"\r\r\n"` is a bare CR then a
//!   CRLF: `"\r\n\r\n"`.
//!
//! Normalisation happens *before* dot-stuffing, so a `.` after a former bare LF or CR is at a line start and is
//! stuffed (SMUG-2). This is what keeps `\n.\n`, `\n.\r\n`, `\r.\r` and friends from ever reaching the wire as
//! an end-of-data look-alike (SMTP smuggling, CVE-2023-51764/51765/51766, RUSTSEC-2026-0561).
//!
//! # Which encoder
//!
//! - DATA: [`DotStuffer`] (normalise, stuff, terminate).
//! - BDAT with a text body (RFC 3030 §2, BDAT-07): [`CrlfNormalizer`] then [`bdat_header`] with the
//!   normalised length; [`BodyScan::crlf_len`] gives that length up front.
//! - BDAT with `BODY=BINARYMIME`: [`bdat_chunk`], bytes unchanged.

use alloc::vec::Vec;
use memchr::{memchr, memchr_iter, memchr2};

const CR: u8 = b'\r';
const LF: u8 = b'\n';
const DOT: u8 = b'.';

/// Bytes the encoders judge at once. 64 keeps the per-block check in registers (SSE2 is the x86-64 baseline:
/// four 16-byte vectors) and a dirty block's flags in one small array.
const BLOCK: usize = 64;
/// A block plus the byte before it and the byte after it: what the rules need to judge every byte of it.
const WINDOW: usize = BLOCK + 2;
/// From this many CR/LF bytes in a dirty block on, the block is rewritten byte by byte without branches
/// (dot- and line-end-dense bodies) instead of run by run (a stray bare LF or a stuffed dot in plain text).
const DENSE: u32 = 4;
/// A run of clean blocks is copied out at least this often, while the scan has just brought it into L1.
const FLUSH: usize = 8 * 1024;

// How the encoders work. Each input byte's output depends only on itself and its two neighbours (the byte
// before it, the byte after it), which is what makes whole-block processing exact:
//
// - CR: `CR` if the next byte is LF, else `CR LF` (a bare CR);
// - LF: `LF` if the previous byte is CR, else `CR LF` (a bare LF);
// - `.`: `..` if the previous byte is CR or LF or the body starts here (RFC 5321 §4.5.2; a dot after a bare
//   CR is at a line start too, since that CR becomes CRLF), else `.`;
// - anything else: itself.
//
// So a block whose every CR is followed by LF, every LF preceded by CR and no dot follows a line end goes out
// unchanged: `clean_block` checks exactly that with a byte-class pass the compiler vectorises (three
// compares a byte: SSE2 on x86-64), and runs of clean blocks are copied with one memcpy. Only dirty blocks
// are taken apart (`dirty_block`). A CR ending a chunk is held back, since its fate depends on the next
// chunk's first byte; whatever the chunking, every byte ends up judged with its real neighbours, so the
// output never depends on where the chunks end.

/// Whether `w[..BLOCK]` goes out unchanged, given `w[BLOCK]` and `w[BLOCK + 1]` after it, provided that its
/// first byte is no bare LF and its first two bytes are no dot at a line start (checked by the caller:
/// [`clean_start`], or the previous clean block, whose check covers the two bytes after it).
#[inline(always)]
fn clean_block<const STUFF: bool>(w: &[u8; WINDOW]) -> bool {
    let (a, b, d) = split_window(w);
    // No early exit: the OR over the whole block compiles to vector compares.
    let mut dirty = false;
    for k in 0..BLOCK {
        let cr = a[k] == CR;
        // A CR without LF after it, or an LF (at k + 1) without CR before it.
        dirty |= cr ^ (b[k] == LF);
        if STUFF {
            // CR LF then a dot: a line-start dot (at k + 2). A dot after a bare CR or LF is dirty already.
            dirty |= cr & (d[k] == DOT);
        }
    }
    !dirty
}

/// The three overlapping views of a window: bytes 0.., 1.. and 2.. (as fixed-size arrays, so the loops over
/// them need no bounds checks).
#[inline(always)]
fn split_window(w: &[u8; WINDOW]) -> (&[u8; BLOCK], &[u8; BLOCK], &[u8; BLOCK]) {
    let first =
        |at: usize| -> &[u8; BLOCK] { w[at..at + BLOCK].try_into().expect("a window holds BLOCK + 2 bytes") };
    (first(0), first(1), first(2))
}

/// Whether the first two bytes at a position are fine to start a run of clean blocks, `prev` being the byte
/// before them (CR, LF or anything else). [`clean_block`] covers the rest.
#[inline(always)]
fn clean_start<const STUFF: bool>(prev: u8, x0: u8, x1: u8) -> bool {
    match x0 {
        LF => prev == CR && !(STUFF && x1 == DOT),
        DOT => !(STUFF && (prev == LF || prev == CR)),
        _ => true,
    }
}

/// Like [`clean_start`], for a run of [`lf_block`]s: an LF here must be bare, and no dot may need stuffing.
#[inline(always)]
fn lf_start<const STUFF: bool>(prev: u8, x0: u8, x1: u8) -> bool {
    match x0 {
        LF => prev != CR && !(STUFF && x1 == DOT),
        DOT => !(STUFF && (prev == LF || prev == CR)),
        _ => true,
    }
}

/// Whether `w[..BLOCK]` has no CR and, with `STUFF`, no dot after an LF (so every LF in it is bare and
/// becomes CR LF, and nothing else changes), given the same guarantee for its first two bytes as
/// [`clean_block`].
#[inline(always)]
fn lf_block<const STUFF: bool>(w: &[u8; WINDOW]) -> bool {
    let (a, b, d) = split_window(w);
    let mut dirty = false;
    for k in 0..BLOCK {
        dirty |= a[k] == CR;
        if STUFF {
            dirty |= (b[k] == LF) & (d[k] == DOT);
        }
    }
    !dirty
}

/// Appends `chunk[from..to]`. Short runs are copied as one fixed-size piece and cut back, which compiles to
/// a few vector moves instead of a `memcpy` call; only when the chunk and the reserved room allow it.
#[inline(always)]
fn copy_run(out: &mut Vec<u8>, chunk: &[u8], from: usize, to: usize) {
    const SHORT: usize = 128;
    let len = out.len();
    if to - from <= SHORT && from + SHORT <= chunk.len() && out.capacity() - len >= SHORT {
        let piece: &[u8; SHORT] = chunk[from..from + SHORT].try_into().expect("SHORT bytes");
        out.extend_from_slice(piece);
        out.truncate(len + (to - from));
    } else {
        out.extend_from_slice(&chunk[from..to]);
    }
}

/// Encodes the dirty block `chunk[i..e]` (`e - i <= BLOCK`), whose previous byte is `prev`. Bytes from
/// `*run` on are input not yet copied out; on return `*run` says how far the output has caught up (the bytes
/// after it go out unchanged). Returns whether the block was dense (rewritten byte by byte).
#[inline(never)]
fn dirty_block<const STUFF: bool>(
    chunk: &[u8],
    i: usize,
    e: usize,
    prev: u8,
    run: &mut usize,
    out: &mut Vec<u8>,
) -> bool {
    let count = e - i;
    // The window: previous byte, the block, next byte (0 stands for "nothing" past the end: only a CR looks
    // at its next byte, and a chunk-final CR never gets here).
    let mut padded = [0u8; WINDOW];
    let w: &[u8; WINDOW] = if i >= 1 && i + BLOCK < chunk.len() {
        chunk[i - 1..=i + BLOCK].try_into().expect("WINDOW bytes")
    } else {
        padded[0] = prev;
        padded[1..=count].copy_from_slice(&chunk[i..e]);
        padded[count + 1] = chunk.get(e).copied().unwrap_or(0);
        &padded
    };
    let (p, x, n) = split_window(w);
    // Every byte that may change sits at a CR or LF, or right after one (a dot): find those first, as a bit
    // mask (byte flags packed eight at a time by a multiply).
    let mut ends = [0u8; BLOCK];
    for k in 0..BLOCK {
        ends[k] = u8::from((x[k] == CR) | (x[k] == LF));
    }
    let mut mask = 0u64;
    for (j, word) in ends.chunks_exact(8).enumerate() {
        let flags = u64::from_le_bytes(word.try_into().expect("8 bytes"));
        mask |= (flags.wrapping_mul(0x0102_0408_1020_4080) >> 56) << (8 * j);
    }
    if count < BLOCK {
        mask &= (1 << count) - 1;
    }
    if mask.count_ones() >= DENSE {
        out.extend_from_slice(&chunk[*run..i]);
        rewrite_dense::<STUFF>(p, x, n, count, out);
        *run = e;
        return true;
    }
    let mut r = *run;
    if STUFF && (prev == LF || prev == CR) && x[0] == DOT {
        copy_run(out, chunk, r, i);
        out.push(DOT);
        r = i;
    }
    while mask != 0 {
        let k = mask.trailing_zeros() as usize;
        mask &= mask - 1;
        let q = i + k;
        if x[k] == CR {
            if n[k] == LF {
                continue; // CRLF; the LF's turn comes next.
            }
            // Bare CR: CR LF.
            copy_run(out, chunk, r, q + 1);
            out.push(LF);
            r = q + 1;
        } else if p[k] != CR {
            // Bare LF: CR LF.
            copy_run(out, chunk, r, q);
            out.push(CR);
            r = q;
        }
        // A line ends at q: a dot after it is stuffed (one past the block is the next block's first byte,
        // judged there).
        if STUFF && n[k] == DOT && k + 1 < count {
            copy_run(out, chunk, r, q + 1);
            out.push(DOT);
            r = q + 1;
        }
    }
    *run = r;
    false
}

/// Rewrites the `count` bytes `x[..count]` (previous bytes `p`, next bytes `n`) byte by byte: each becomes a
/// pair or a single byte by a flag, so the loop has no branch to mispredict on dense bodies.
#[inline(always)]
fn rewrite_dense<const STUFF: bool>(
    p: &[u8; BLOCK],
    x: &[u8; BLOCK],
    n: &[u8; BLOCK],
    count: usize,
    out: &mut Vec<u8>,
) {
    let mut two = [0u8; BLOCK];
    let mut pairs = [[0u8; 2]; BLOCK];
    for k in 0..BLOCK {
        let (p, x, n) = (p[k], x[k], n[k]);
        let bare_lf = (x == LF) & (p != CR);
        let bare_cr = (x == CR) & (n != LF);
        let stuffed = STUFF & (x == DOT) & ((p == LF) | (p == CR));
        two[k] = u8::from(bare_lf | bare_cr | stuffed);
        // A pair is `..` for a stuffed dot, CR LF for a bare CR or LF; a single byte is the pair's first byte.
        pairs[k] = [if bare_lf { CR } else { x }, if x == DOT { DOT } else { LF }];
    }
    let mut buf = [0u8; 2 * BLOCK + 2];
    let mut at = 0usize;
    for k in 0..count.min(BLOCK) {
        // `at <= 2 * k`, so the mask never changes it; it only spares the bounds check.
        let a = at & (2 * BLOCK - 1);
        buf[a..a + 2].copy_from_slice(&pairs[k]);
        at += 1 + usize::from(two[k]);
    }
    out.extend_from_slice(&buf[..at]);
}

/// Line-end state shared by [`DotStuffer`] and [`CrlfNormalizer`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct LineState {
    /// The previous chunk ended in a CR whose fate (CRLF or bare CR) depends on the next byte.
    pending_cr: bool,
    /// The next output byte starts a line (start of body, or right after an emitted CRLF).
    at_line_start: bool,
    /// Input bytes seen.
    consumed: u64,
}

impl LineState {
    const fn new() -> Self {
        LineState { pending_cr: false, at_line_start: true, consumed: 0 }
    }

    /// Normalises (and, with `STUFF`, dot-stuffs) `chunk` into `out`.
    #[inline]
    fn encode<const STUFF: bool>(&mut self, chunk: &[u8], out: &mut Vec<u8>) {
        let len = chunk.len();
        if len == 0 {
            return;
        }
        self.consumed += len as u64;
        out.reserve(DotStuffer::max_encoded_len(len));
        let mut i = 0;
        // The byte before position `i` as far as the rules care: LF at a line start, 0 for "no line end".
        let mut prev = if self.at_line_start { LF } else { 0 };
        if self.pending_cr {
            // The held-back CR ends a line either way: as CRLF if this chunk starts with LF, as a bare CR
            // (normalised to CRLF) otherwise.
            self.pending_cr = false;
            out.extend_from_slice(b"\r\n");
            if chunk[0] == LF {
                i = 1;
                prev = LF;
            } else {
                prev = CR;
            }
        }
        // A chunk-final CR may be the first half of a CRLF: hold it back.
        let mut end = len;
        if chunk[len - 1] == CR {
            end = len - 1;
            self.pending_cr = true;
        }
        let mut run = i; // input from here on is not copied out yet
        let mut try_clean = true; // false right after a dense block: the next one is likely dense too
        while i < end {
            if try_clean && i + WINDOW <= len && clean_start::<STUFF>(prev, chunk[i], chunk[i + 1]) {
                let from = i;
                // Two blocks a test while they last: one branch per 128 bytes.
                while i + BLOCK + WINDOW <= len
                    && clean_block::<STUFF>(chunk[i..i + WINDOW].try_into().expect("WINDOW bytes"))
                        & clean_block::<STUFF>(
                            chunk[i + BLOCK..i + BLOCK + WINDOW].try_into().expect("WINDOW bytes"),
                        )
                {
                    i += 2 * BLOCK;
                    if i - run >= FLUSH {
                        out.extend_from_slice(&chunk[run..i]);
                        run = i;
                    }
                }
                while i + WINDOW <= len
                    && clean_block::<STUFF>(chunk[i..i + WINDOW].try_into().expect("WINDOW bytes"))
                {
                    i += BLOCK;
                    if i - run >= FLUSH {
                        out.extend_from_slice(&chunk[run..i]);
                        run = i;
                    }
                }
                if i > from {
                    prev = chunk[i - 1];
                }
            }
            // Text with bare LF line ends (a message file from a Unix disk): every LF becomes CR LF and
            // nothing else changes, so the run is checked whole and only the LFs are visited.
            if try_clean && i + WINDOW <= len && lf_start::<STUFF>(prev, chunk[i], chunk[i + 1]) {
                let from = i;
                while i + WINDOW <= len
                    && lf_block::<STUFF>(chunk[i..i + WINDOW].try_into().expect("WINDOW bytes"))
                {
                    i += BLOCK;
                }
                if i > from {
                    for q in memchr_iter(LF, &chunk[from..i]) {
                        copy_run(out, chunk, run, from + q);
                        out.push(CR);
                        run = from + q;
                    }
                    prev = chunk[i - 1];
                    continue;
                }
            }
            // `i + WINDOW <= len` kept every clean block's bytes before `end`.
            let e = (i + BLOCK).min(end);
            try_clean = !dirty_block::<STUFF>(chunk, i, e, prev, &mut run, out);
            prev = chunk[e - 1];
            i = e;
        }
        out.extend_from_slice(&chunk[run..end]);
        // While a CR is pending the next output starts a line whatever comes (it resolves to CRLF).
        self.at_line_start = self.pending_cr || prev == LF || prev == CR;
    }

    /// Resolves a pending CR into CRLF.
    #[inline]
    fn flush_cr(&mut self, out: &mut Vec<u8>) {
        if self.pending_cr {
            self.pending_cr = false;
            self.at_line_start = true;
            out.extend_from_slice(b"\r\n");
        }
    }
}

/// Streaming DATA encoder: CRLF normalisation, dot-stuffing and the terminator, with its state kept across
/// chunks (DATA-01..04, DATA-07, SMUG-1..4).
///
/// Feed the body in any number of chunks with [`encode`](Self::encode), then call
/// [`finish`](Self::finish) once. The output is identical however the input is split.
///
/// Rules, applied in this order:
/// 1. line ends are normalised to CRLF (see the [module docs](self)): bare CR and bare LF become CRLF;
/// 2. a `.` at a line start (first byte of the body, or after any line end) is doubled (RFC 5321 §4.5.2);
/// 3. [`finish`](Self::finish) appends CRLF if the body did not end at a line start, then `.` CRLF.
///
/// The output therefore never holds a CR without LF or a LF without CR, and holds `\r\n.\r\n` exactly once,
/// at its very end (or is exactly `.\r\n` for an empty body).
///
/// ```
/// use smtp_proto::body::DotStuffer;
///
/// let mut stuffer = DotStuffer::new();
/// let mut wire = Vec::new();
/// stuffer.encode(b"Hi\n.\nMAIL FROM:<e@vil>\r", &mut wire); // smuggling attempt, final CR held back
/// stuffer.encode(b"\n.hidden", &mut wire);
/// stuffer.finish(&mut wire);
/// assert_eq!(wire, b"Hi\r\n..\r\nMAIL FROM:<e@vil>\r\n..hidden\r\n.\r\n");
/// assert_eq!(stuffer.consumed(), 31);
///
/// // An empty body is just the terminator; a body ending in CRLF gets no extra blank line.
/// let mut wire = Vec::new();
/// DotStuffer::new().finish(&mut wire);
/// assert_eq!(wire, b".\r\n");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DotStuffer {
    state: LineState,
}

impl Default for DotStuffer {
    fn default() -> Self {
        Self::new()
    }
}

impl DotStuffer {
    /// A stuffer at the start of a body.
    #[must_use]
    pub const fn new() -> Self {
        DotStuffer { state: LineState::new() }
    }

    /// Appends the encoded form of `chunk` to `out`.
    ///
    /// Every bare CR and bare LF becomes CRLF; CRLF stays; a `.` at a line start is doubled. A CR that ends
    /// `chunk` is held back until the next call (or [`finish`](Self::finish)): it may be the first half of a
    /// CRLF. An empty `chunk` does nothing.
    ///
    /// Reserves [`max_encoded_len`](Self::max_encoded_len)`(chunk.len())` bytes in `out` once, and never
    /// allocates otherwise. Text that needs no change (CRLF line ends, no dot at a line start) is recognised 64
    /// bytes at a time and copied out in large runs; only the blocks around a bare CR or LF or a line-start
    /// dot are rewritten.
    pub fn encode(&mut self, chunk: &[u8], out: &mut Vec<u8>) {
        self.state.encode::<true>(chunk, out);
    }

    /// Appends the end of the body: a pending CR becomes CRLF; CRLF if the body did not end at a line start;
    /// then `.` CRLF.
    ///
    /// An empty body gives just `.\r\n` (DATA-07). A body ending in a line end gets no extra blank line
    /// (DATA-02). Afterwards the stuffer is back at a line start with nothing pending, as if new, except that
    /// [`consumed`](Self::consumed) keeps counting; use a new stuffer for the next message.
    pub fn finish(&mut self, out: &mut Vec<u8>) {
        self.state.flush_cr(out);
        if !self.state.at_line_start {
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b".\r\n");
        self.state.at_line_start = true;
    }

    /// The most bytes one [`encode`](Self::encode) call may append for a chunk of `len` bytes: `0` for an
    /// empty chunk, else `2 * len + 2`.
    ///
    /// Each input byte gives at most two output bytes (a bare CR or LF becomes CRLF, a `.` at a line start
    /// becomes `..`), and a CR held back from the previous call may add one CRLF. The bound is tight: a
    /// pending CR followed by the chunk `"."` gives `"\r\n.."`. Saturates instead of overflowing.
    #[must_use]
    pub const fn max_encoded_len(len: usize) -> usize {
        if len == 0 { 0 } else { len.saturating_mul(2).saturating_add(2) }
    }

    /// Input bytes consumed so far (body bytes given to [`encode`](Self::encode), not output bytes).
    #[must_use]
    pub const fn consumed(&self) -> u64 {
        self.state.consumed
    }
}

/// Streaming CRLF normaliser without dot-stuffing and without terminator, for text bodies sent with BDAT
/// (RFC 3030 §2: BDAT-07 text parts are still canonical CRLF MIME).
///
/// Line ends are rewritten exactly as [`DotStuffer`] does (and as the tests' reference does); a
/// chunk-final CR is held back until the next call or [`finish`](Self::finish). The normalised length is
/// known up front from [`BodyScan::crlf_len`], which is what the BDAT size must count (BDAT-02).
///
/// ```
/// use smtp_proto::body::CrlfNormalizer;
///
/// let mut norm = CrlfNormalizer::new();
/// let mut out = Vec::new();
/// norm.encode(b"a\nb\r", &mut out);
/// norm.encode(b".c\r", &mut out);
/// norm.finish(&mut out);
/// assert_eq!(out, b"a\r\nb\r\n.c\r\n");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CrlfNormalizer {
    state: LineState,
}

impl Default for CrlfNormalizer {
    fn default() -> Self {
        Self::new()
    }
}

impl CrlfNormalizer {
    /// A normaliser at the start of a body.
    #[must_use]
    pub const fn new() -> Self {
        CrlfNormalizer { state: LineState::new() }
    }

    /// Appends the normalised form of `chunk` to `out`; a chunk-final CR is held back. Appends at most
    /// [`DotStuffer::max_encoded_len`]`(chunk.len())` bytes.
    pub fn encode(&mut self, chunk: &[u8], out: &mut Vec<u8>) {
        self.state.encode::<false>(chunk, out);
    }

    /// Appends a held-back CR as CRLF, if any. Adds nothing else: no final CRLF, no terminator.
    pub fn finish(&mut self, out: &mut Vec<u8>) {
        self.state.flush_cr(out);
    }

    /// Input bytes consumed so far.
    #[must_use]
    pub const fn consumed(&self) -> u64 {
        self.state.consumed
    }
}

/// Appends a BDAT command line (RFC 3030 §2): `BDAT <size>\r\n`, or `BDAT <size> LAST\r\n`.
///
/// The caller must then send exactly `size` octets. `BDAT 0 LAST` is legal.
///
/// ```
/// let mut out = Vec::new();
/// smtp_proto::body::bdat_header(8, true, &mut out);
/// assert_eq!(out, b"BDAT 8 LAST\r\n");
/// ```
pub fn bdat_header(size: u64, last: bool, out: &mut Vec<u8>) {
    out.extend_from_slice(b"BDAT ");
    crate::command::push_u64(out, size);
    if last {
        out.extend_from_slice(b" LAST");
    }
    out.extend_from_slice(b"\r\n");
}

/// Appends one BDAT chunk: the [`bdat_header`] for `data.len()` octets, then `data` unchanged (no stuffing,
/// no terminator, no line-end rewriting; BDAT-02, TV-37).
///
/// ```
/// let mut out = Vec::new();
/// smtp_proto::body::bdat_chunk(b"abc\r\n.\r\n", true, &mut out);
/// assert_eq!(out, b"BDAT 8 LAST\r\nabc\r\n.\r\n");
/// ```
pub fn bdat_chunk(data: &[u8], last: bool, out: &mut Vec<u8>) {
    out.reserve(data.len() + 32);
    bdat_header(data.len() as u64, last, out);
    out.extend_from_slice(data);
}

/// What a body needs from the server, found by scanning it: 8-bit or NUL octets, bare line ends, the longest
/// line, and the sizes before and after CRLF normalisation.
///
/// [`update`](Self::update) can be called with any chunking; the results only depend on the concatenated
/// input. The getters describe the input seen so far *as if it were the whole body*: a CR at the end of the
/// input so far counts as a bare CR (and as a line end) until a LF arrives.
///
/// Line ends are counted the way the encoders emit them: CRLF, bare CR and bare LF each end a line.
///
/// ```
/// use smtp_proto::body::BodyScan;
///
/// let mut scan = BodyScan::new();
/// scan.update(b"Subject: caf\xc3\xa9\n\r");
/// scan.update(b"\nbody\r\n");
/// assert!(scan.has_8bit());
/// assert!(scan.has_bare_cr_or_lf()); // the LF after the subject
/// assert!(!scan.has_nul());
/// assert_eq!(scan.longest_line(), 14);
/// assert_eq!(scan.len(), 23);
/// assert_eq!(scan.crlf_len(), 24); // one bare LF became CRLF
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BodyScan {
    len: u64,
    /// Normalised length, excluding a pending CR.
    crlf_len: u64,
    longest: u64,
    current: u64,
    pending_cr: bool,
    eight_bit: bool,
    nul: bool,
    bare: bool,
}

impl BodyScan {
    /// An empty scan.
    #[must_use]
    pub const fn new() -> Self {
        BodyScan {
            len: 0,
            crlf_len: 0,
            longest: 0,
            current: 0,
            pending_cr: false,
            eight_bit: false,
            nul: false,
            bare: false,
        }
    }

    /// Scans the next chunk of the body. Chunk boundaries do not matter.
    pub fn update(&mut self, chunk: &[u8]) {
        let len = chunk.len();
        if len == 0 {
            return;
        }
        self.len += len as u64;
        if !self.eight_bit && has_high_bit(chunk) {
            self.eight_bit = true;
        }
        if !self.nul && memchr(0, chunk).is_some() {
            self.nul = true;
        }
        let mut i = 0;
        if self.pending_cr {
            self.pending_cr = false;
            self.end_line();
            if chunk[0] == b'\n' {
                i = 1;
            } else {
                self.bare = true;
            }
        }
        while i < len {
            let Some(off) = memchr2(b'\r', b'\n', &chunk[i..]) else {
                self.add_run((len - i) as u64);
                return;
            };
            let j = i + off;
            self.add_run(off as u64);
            if chunk[j] == b'\n' {
                self.bare = true;
                i = j + 1;
            } else if j + 1 == len {
                self.pending_cr = true;
                return;
            } else if chunk[j + 1] == b'\n' {
                i = j + 2;
            } else {
                self.bare = true;
                i = j + 1;
            }
            self.end_line();
        }
    }

    #[inline]
    fn add_run(&mut self, n: u64) {
        self.current += n;
        self.crlf_len += n;
    }

    #[inline]
    fn end_line(&mut self) {
        if self.current > self.longest {
            self.longest = self.current;
        }
        self.current = 0;
        self.crlf_len += 2;
    }

    /// Whether any octet is above 0x7F (needs `BODY=8BITMIME` or BINARYMIME; DATA-05).
    #[must_use]
    pub const fn has_8bit(&self) -> bool {
        self.eight_bit
    }

    /// Whether any octet is NUL (binary content: needs BINARYMIME with BDAT).
    #[must_use]
    pub const fn has_nul(&self) -> bool {
        self.nul
    }

    /// Whether a CR or LF occurs outside a CRLF pair (the encoders rewrite each to CRLF; a strict mode
    /// rejects the body instead, DATA-03). A CR that ends the input so far counts as bare.
    #[must_use]
    pub const fn has_bare_cr_or_lf(&self) -> bool {
        self.bare || self.pending_cr
    }

    /// Octets in the longest line, excluding its line end (CRLF, bare CR or bare LF) and excluding any
    /// stuffed dot. The last line counts even without a line end.
    ///
    /// RFC 5321 §4.5.3.1.6 allows 1 000 octets with CRLF in DATA, so a value above 998 is too long for DATA
    /// (LIM-03, TV-35); only BDAT with `BODY=BINARYMIME` lifts the limit.
    #[must_use]
    pub const fn longest_line(&self) -> u64 {
        if self.current > self.longest { self.current } else { self.longest }
    }

    /// Input octets scanned.
    #[must_use]
    pub const fn len(&self) -> u64 {
        self.len
    }

    /// Whether nothing (or only empty chunks) was scanned.
    #[must_use]
    pub const fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Octets after CRLF normalisation: the length of the input's CRLF-normalised form, which is what
    /// [`CrlfNormalizer`] emits (the exact BDAT size, BDAT-02) and what `SIZE=` should declare (RFC 1870
    /// counts CRLF-canonical content, without stuffing and without the final `.` CRLF). A trailing CR counts
    /// as CRLF.
    ///
    /// With DATA, [`DotStuffer::finish`] adds 2 more octets if the body does not end in a line end; see
    /// [`ends_with_line_end`](Self::ends_with_line_end).
    #[must_use]
    pub const fn crlf_len(&self) -> u64 {
        if self.pending_cr { self.crlf_len + 2 } else { self.crlf_len }
    }

    /// Whether the input is empty or ends in a line end (CRLF, bare CR or bare LF).
    #[must_use]
    pub const fn ends_with_line_end(&self) -> bool {
        self.pending_cr || self.current == 0
    }
}

/// Whether any byte has its high bit set; OR-folds blocks so the loop vectorises, stopping at the first hit.
fn has_high_bit(bytes: &[u8]) -> bool {
    bytes.chunks(256).any(|block| block.iter().fold(0u8, |acc, &b| acc | b) & 0x80 != 0)
}
