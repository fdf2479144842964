//! Body encoding: dot-stuffing vectors (TV-32..35, TV-37), smuggling (SMUG-1..4), chunk-boundary safety and
//! property tests.

use proptest::prelude::*;
use smtp_proto::body::{BodyScan, CrlfNormalizer, DotStuffer, bdat_chunk, bdat_header};
use smtp_proto::internal::fuzzing::{ReferenceEncoder, compare_with_reference};
use smtp_proto::internal::{normalize_line_endings, unstuff};

/// Encodes `chunks` with one `DotStuffer`, checking the per-call bound, and finishes.
fn stuff_chunks<'a>(chunks: impl IntoIterator<Item = &'a [u8]>) -> Vec<u8> {
    let mut s = DotStuffer::new();
    let mut out = Vec::new();
    let mut total = 0u64;
    for chunk in chunks {
        let before = out.len();
        s.encode(chunk, &mut out);
        assert!(out.len() - before <= DotStuffer::max_encoded_len(chunk.len()));
        total += chunk.len() as u64;
        assert_eq!(s.consumed(), total);
    }
    s.finish(&mut out);
    out
}

fn normalize_chunks<'a>(chunks: impl IntoIterator<Item = &'a [u8]>) -> Vec<u8> {
    let mut n = CrlfNormalizer::new();
    let mut out = Vec::new();
    for chunk in chunks {
        let before = out.len();
        n.encode(chunk, &mut out);
        assert!(out.len() - before <= DotStuffer::max_encoded_len(chunk.len()));
    }
    n.finish(&mut out);
    out
}

fn scan_chunks<'a>(chunks: impl IntoIterator<Item = &'a [u8]>) -> BodyScan {
    let mut scan = BodyScan::new();
    for chunk in chunks {
        scan.update(chunk);
    }
    scan
}

/// Every way of cutting `input` into pieces that this test tries: whole, at every single boundary, at every
/// pair of boundaries (short inputs), and byte by byte.
fn splittings(input: &[u8]) -> Vec<Vec<&[u8]>> {
    let n = input.len();
    let mut all = vec![vec![input]];
    for i in 0..=n {
        all.push(vec![&input[..i], &input[i..]]);
    }
    if n <= 80 {
        for i in 0..=n {
            for j in i..=n {
                all.push(vec![&input[..i], &input[i..j], &input[j..]]);
            }
        }
    }
    all.push(input.chunks(1).collect());
    all.push(input.chunks(3).collect());
    all
}

/// Checks the DotStuffer output for `body` against `expected` under every splitting, plus the invariants.
fn check_stuff(body: &[u8], expected: &[u8]) {
    for split in splittings(body) {
        let got = stuff_chunks(split.iter().copied());
        assert_eq!(
            got.escape_ascii().to_string(),
            expected.escape_ascii().to_string(),
            "body {:?} split {:?}",
            body.escape_ascii().to_string(),
            split.iter().map(|c| c.escape_ascii().to_string()).collect::<Vec<_>>()
        );
    }
    check_wire_invariants(expected);
    assert_eq!(unstuff(expected).unwrap(), expected_unstuffed(body));
}

/// What unstuffing the wire form of `body` must give.
fn expected_unstuffed(body: &[u8]) -> Vec<u8> {
    let mut n = normalize_line_endings(body);
    if !n.is_empty() && !n.ends_with(b"\r\n") {
        n.extend_from_slice(b"\r\n");
    }
    n
}

fn count(hay: &[u8], needle: &[u8]) -> usize {
    hay.windows(needle.len()).filter(|w| *w == needle).count()
}

/// No bare CR/LF; `\r\n.\r\n` exactly once, at the end (or the whole output is `.\r\n`).
fn check_wire_invariants(wire: &[u8]) {
    for (i, &b) in wire.iter().enumerate() {
        if b == b'\r' {
            assert_eq!(
                wire.get(i + 1),
                Some(&b'\n'),
                "bare CR at {i} in {:?}",
                wire.escape_ascii().to_string()
            );
        }
        if b == b'\n' {
            assert!(i > 0 && wire[i - 1] == b'\r', "bare LF at {i} in {:?}", wire.escape_ascii().to_string());
        }
    }
    if wire == b".\r\n" {
        return;
    }
    assert!(wire.ends_with(b"\r\n.\r\n"));
    assert_eq!(count(wire, b"\r\n.\r\n"), 1, "{:?}", wire.escape_ascii().to_string());
}

#[test]
fn tv32_dot_stuffing_and_final_crlf() {
    check_stuff(b".hidden\r\n..two\r\nend", b"..hidden\r\n...two\r\nend\r\n.\r\n");
    check_stuff(b"x\r\n", b"x\r\n.\r\n");
    check_stuff(b".\r\n", b"..\r\n.\r\n");
}

#[test]
fn tv33_bare_lf_and_bare_cr() {
    check_stuff(b"a\n.\nb\r\n", b"a\r\n..\r\nb\r\n.\r\n");
    check_stuff(b"a\rb\r\n", b"a\r\nb\r\n.\r\n");
}

#[test]
fn tv34_stuffing_across_chunk_boundaries() {
    assert_eq!(stuff_chunks([&b"l1\r"[..], b"\n.x\r\n"]), b"l1\r\n..x\r\n.\r\n");
    assert_eq!(stuff_chunks([&b"l1\r\n"[..], b".", b"x\r\n"]), b"l1\r\n..x\r\n.\r\n");
    check_stuff(b"l1\r\n.x\r\n", b"l1\r\n..x\r\n.\r\n");
}

#[test]
fn smug1_every_line_end_becomes_crlf() {
    check_stuff(b"a\nb\rc\r\n", b"a\r\nb\r\nc\r\n.\r\n");
}

#[test]
fn smug2_stuffing_after_normalisation() {
    let body = b"x\n.\nMAIL FROM:<e@vil>\r\n";
    let wire = stuff_chunks([&body[..]]);
    assert!(count(&wire, b"x\r\n..\r\nMAIL") == 1);
    check_stuff(body, b"x\r\n..\r\nMAIL FROM:<e@vil>\r\n.\r\n");
}

#[test]
fn smug4_no_extra_blank_line() {
    check_stuff(b"body\r\n", b"body\r\n.\r\n");
    check_stuff(b"body\n", b"body\r\n.\r\n");
    check_stuff(b"body\r", b"body\r\n.\r\n");
    check_stuff(b"body", b"body\r\n.\r\n");
    check_stuff(b"body\r\n\r\n", b"body\r\n\r\n.\r\n");
}

#[test]
fn data07_empty_body() {
    check_stuff(b"", b".\r\n");
    assert_eq!(stuff_chunks([&b""[..], b"", b""]), b".\r\n");
}

#[test]
fn cr_cr_lf_is_bare_cr_then_crlf() {
    check_stuff(b"\r\r\n", b"\r\n\r\n.\r\n");
    check_stuff(b"a\r\r\n.", b"a\r\n\r\n..\r\n.\r\n");
    check_stuff(b"\n\r", b"\r\n\r\n.\r\n");
}

#[test]
fn smuggling_end_of_data_lookalikes() {
    let injected = b"MAIL FROM:<spoof@victim.example>\r\nRCPT TO:<x@y.example>\r\nDATA\r\nFrom: ceo\r\n\r\nspoofed\r\n.\r\n";
    for sep in [&b"\n.\r\n"[..], b"\n.\n", b"\r.\r\n", b"\r.\r", b"\r\n.\n", b"\n.\r", b".\n", b".\r"] {
        for prefix in [&b""[..], b"hello", b"hello\r\n", b"hello\n"] {
            let mut body = prefix.to_vec();
            body.extend_from_slice(sep);
            body.extend_from_slice(injected);
            let wire = stuff_chunks([&body[..]]);
            check_wire_invariants(&wire);
            // The injected commands never start a line outside the body: there is one terminator, at the end.
            assert!(!wire[..wire.len() - 5].windows(5).any(|w| w == b"\r\n.\r\n"));
            assert!(!wire.starts_with(b".\r\n"));
            assert_eq!(unstuff(&wire).unwrap(), expected_unstuffed(&body));
            check_stuff(&body, &wire);
        }
    }
}

#[test]
fn tv35_line_length() {
    let line998 = [vec![b'a'; 998], b"\r\n".to_vec()].concat();
    let line999 = [vec![b'a'; 999], b"\r\n".to_vec()].concat();
    let dotted = [b".".to_vec(), vec![b'a'; 997], b"\r\n".to_vec()].concat();
    for (body, longest) in [(&line998, 998), (&line999, 999), (&dotted, 998)] {
        for split in splittings(body) {
            assert_eq!(scan_chunks(split.iter().copied()).longest_line(), longest);
        }
    }
    // The stuffed dot is on the wire but does not count against the limit.
    let wire = stuff_chunks([&dotted[..]]);
    assert_eq!(&wire[..2], b"..");
    assert_eq!(wire.len(), 1 + 998 + 2 + 3);
    // Bare line ends count as line ends, as the encoder emits them.
    let mut scan = BodyScan::new();
    scan.update(&[vec![b'a'; 500], b"\n".to_vec(), vec![b'b'; 600], b"\r".to_vec(), vec![b'c'; 10]].concat());
    assert_eq!(scan.longest_line(), 600);
    // The last line counts without a line end.
    let mut scan = BodyScan::new();
    scan.update(b"ab\r\n");
    scan.update(&[b'z'; 1200]);
    assert_eq!(scan.longest_line(), 1200);
}

#[test]
fn tv37_bdat_single_chunk() {
    let mut out = Vec::new();
    bdat_chunk(b"abc\r\n.\r\n", true, &mut out);
    assert_eq!(out, b"BDAT 8 LAST\r\nabc\r\n.\r\n");
    out.clear();
    bdat_chunk(b"abcd", false, &mut out);
    bdat_chunk(b"efgh", false, &mut out);
    bdat_chunk(b"", true, &mut out);
    assert_eq!(out, b"BDAT 4\r\nabcdBDAT 4\r\nefghBDAT 0 LAST\r\n");
}

#[test]
fn bdat_header_numbers() {
    for (n, text) in
        [(0u64, "0"), (7, "7"), (10, "10"), (1_000_000, "1000000"), (u64::MAX, "18446744073709551615")]
    {
        let mut out = Vec::new();
        bdat_header(n, false, &mut out);
        assert_eq!(out, format!("BDAT {text}\r\n").as_bytes());
    }
}

#[test]
fn bdat07_text_body_normalised_and_counted() {
    let body = b".a\nb\r.\r\nc\r";
    for split in splittings(body) {
        assert_eq!(normalize_chunks(split.iter().copied()), b".a\r\nb\r\n.\r\nc\r\n");
        let scan = scan_chunks(split.iter().copied());
        assert_eq!(scan.crlf_len(), 13);
        assert_eq!(scan.len(), body.len() as u64);
        assert!(scan.has_bare_cr_or_lf());
    }
}

#[test]
fn max_encoded_len_is_tight() {
    assert_eq!(DotStuffer::max_encoded_len(0), 0);
    assert_eq!(DotStuffer::max_encoded_len(1), 4);
    assert_eq!(DotStuffer::max_encoded_len(usize::MAX), usize::MAX);
    let mut s = DotStuffer::new();
    let mut out = Vec::new();
    s.encode(b"\r", &mut out);
    assert!(out.is_empty());
    s.encode(b".", &mut out);
    assert_eq!(out, b"\r\n..");
    assert_eq!(out.len(), DotStuffer::max_encoded_len(1));
    // All bare LFs: exactly 2 per byte.
    let mut out = Vec::new();
    DotStuffer::new().encode(b"\n\n\n\n", &mut out);
    assert_eq!(out.len(), 8);
}

#[test]
fn scan_flags() {
    let scan = scan_chunks([&b"plain ascii\r\n"[..]]);
    assert!(!scan.has_8bit() && !scan.has_nul() && !scan.has_bare_cr_or_lf());
    assert!(scan.ends_with_line_end());
    assert_eq!(scan.crlf_len(), 13);
    let scan = scan_chunks([&b"nul\0"[..]]);
    assert!(scan.has_nul() && !scan.has_8bit() && !scan.ends_with_line_end());
    let mut long = vec![b'a'; 5000];
    long[4321] = 0x80;
    assert!(scan_chunks([&long[..]]).has_8bit());
    // A trailing CR is bare until a LF arrives.
    let mut scan = BodyScan::new();
    scan.update(b"a\r");
    assert!(scan.has_bare_cr_or_lf());
    assert_eq!(scan.crlf_len(), 3);
    scan.update(b"\n");
    assert!(!scan.has_bare_cr_or_lf());
    assert_eq!(scan.crlf_len(), 3);
    assert_eq!(BodyScan::new(), BodyScan::default());
    assert!(BodyScan::new().is_empty());
}

#[test]
fn unstuff_rejects_malformed() {
    for bad in [
        &b""[..],
        b"\r\n",
        b"a\r\n",
        b".\r\nx",
        b"a\r\n.\r\n.\r\n",
        b".x\r\n.\r\n",
        b"a\rb\r\n.\r\n",
        b"a\nb\r\n.\r\n",
        b"a\r\n.\n",
        b"a\r\n.\r",
    ] {
        assert_eq!(unstuff(bad), None, "{:?}", bad.escape_ascii().to_string());
    }
    assert_eq!(unstuff(b"\r\n.\r\n").unwrap(), b"\r\n");
    assert_eq!(unstuff(b"...\r\n.\r\n").unwrap(), b"..\r\n");
}

#[test]
fn finish_resets_to_line_start() {
    let mut s = DotStuffer::default();
    let mut out = Vec::new();
    s.encode(b"abc", &mut out);
    s.finish(&mut out);
    assert_eq!(out, b"abc\r\n.\r\n");
    assert_eq!(s.consumed(), 3);
    let mut n = CrlfNormalizer::default();
    let mut out = Vec::new();
    n.encode(b"abc", &mut out);
    n.finish(&mut out);
    assert_eq!(out, b"abc");
    assert_eq!(n.consumed(), 3);
}

/// Bodies biased toward the interesting bytes.
fn body_strategy() -> impl Strategy<Value = Vec<u8>> {
    let byte = prop_oneof![
        6 => prop::sample::select(&b"\r\n.a"[..]),
        1 => any::<u8>(),
    ];
    prop::collection::vec(byte, 0..300)
}

/// Cuts `body` at the given (unsorted, possibly out-of-range) points.
fn cut(body: &[u8], points: &[usize]) -> Vec<Vec<u8>> {
    let mut cuts: Vec<usize> = points.iter().map(|p| p % (body.len() + 1)).collect();
    cuts.sort_unstable();
    let mut chunks = Vec::new();
    let mut at = 0;
    for c in cuts {
        chunks.push(body[at..c].to_vec());
        at = c;
    }
    chunks.push(body[at..].to_vec());
    chunks
}

/// Text in pieces: long clean runs (so that whole 64-byte blocks go through the fast path) broken by every kind
/// of line end, line-start dots and the odd arbitrary byte, up to a few KiB.
fn text_strategy() -> impl Strategy<Value = Vec<u8>> {
    let piece = prop_oneof![
        8 => prop::collection::vec(prop::sample::select(&b"abcdefghij klmnop,;:-"[..]), 1..200),
        6 => Just(b"\r\n".to_vec()),
        2 => Just(b"\r\n.".to_vec()),
        1 => Just(b"\n".to_vec()),
        1 => Just(b"\r".to_vec()),
        1 => Just(b".".to_vec()),
        1 => Just(b"\n.".to_vec()),
        1 => Just(b"\r.".to_vec()),
        1 => prop::collection::vec(any::<u8>(), 1..4),
    ];
    prop::collection::vec(piece, 0..60).prop_map(|pieces| pieces.concat())
}

#[test]
fn reference_encoder_vectors() {
    let stuff = |body: &[u8]| {
        let mut r = ReferenceEncoder::dot_stuffer();
        let mut out = Vec::new();
        r.encode(body, &mut out);
        r.finish(&mut out);
        out
    };
    assert_eq!(stuff(b""), b".\r\n");
    assert_eq!(stuff(b".a\n.\r.\r\n."), b"..a\r\n..\r\n..\r\n..\r\n.\r\n");
    let mut r = ReferenceEncoder::normalizer();
    let mut out = Vec::new();
    r.encode(b".a\r", &mut out);
    assert_eq!(out, b".a");
    r.finish(&mut out);
    assert_eq!(out, b".a\r\n");
}

#[test]
fn fast_encoders_match_the_reference_on_the_bench_bodies() {
    // Long enough for many blocks, cut at sizes around the block size and at odd offsets.
    let plain: Vec<u8> = b"Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tem\r\n"
        .iter()
        .copied()
        .cycle()
        .take(20_000)
        .collect();
    let lf: Vec<u8> = plain.iter().copied().filter(|&b| b != b'\r').collect();
    let dense: Vec<u8> = b".a\n..\r\n.\rx.\n".iter().copied().cycle().take(5_000).collect();
    let mut dotted = plain.clone();
    for at in (0..dotted.len()).step_by(701) {
        dotted[at] = b'.';
    }
    for body in [&plain, &lf, &dense, &dotted] {
        for size in [1, 2, 3, 63, 64, 65, 66, 67, 127, 128, 129, 1000, 4096, 65536] {
            compare_with_reference(&body.chunks(size).collect::<Vec<_>>());
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn fast_encoders_match_the_reference(body in text_strategy(), points in prop::collection::vec(any::<usize>(), 0..12)) {
        let chunks = cut(&body, &points);
        compare_with_reference(&chunks.iter().map(Vec::as_slice).collect::<Vec<_>>());
        compare_with_reference(&[&body[..]]);
    }

    #[test]
    fn fast_encoders_match_the_reference_on_arbitrary_bytes(body in prop::collection::vec(any::<u8>(), 0..2000), points in prop::collection::vec(any::<usize>(), 0..12)) {
        let chunks = cut(&body, &points);
        compare_with_reference(&chunks.iter().map(Vec::as_slice).collect::<Vec<_>>());
    }

    #[test]
    fn stuffing_properties(body in body_strategy(), points in prop::collection::vec(any::<usize>(), 0..12)) {
        let chunks = cut(&body, &points);
        let whole = stuff_chunks([&body[..]]);
        let chunked = stuff_chunks(chunks.iter().map(Vec::as_slice));
        prop_assert_eq!(&chunked, &whole);
        check_wire_invariants(&whole);
        prop_assert_eq!(unstuff(&whole), Some(expected_unstuffed(&body)));

        let normalized = normalize_line_endings(&body);
        prop_assert_eq!(&normalize_chunks(chunks.iter().map(Vec::as_slice)), &normalized);
        prop_assert_eq!(&normalize_chunks([&body[..]]), &normalized);

        let scan_whole = scan_chunks([&body[..]]);
        let scan_chunked = scan_chunks(chunks.iter().map(Vec::as_slice));
        prop_assert_eq!(scan_whole, scan_chunked);
        prop_assert_eq!(scan_whole.len(), body.len() as u64);
        prop_assert_eq!(scan_whole.crlf_len(), normalized.len() as u64);
        prop_assert_eq!(scan_whole.has_8bit(), body.iter().any(|&b| b > 0x7f));
        prop_assert_eq!(scan_whole.has_nul(), body.contains(&0));
        prop_assert_eq!(scan_whole.has_bare_cr_or_lf(), normalized.len() != body.len());
        let longest = normalized
            .split(|&b| b == b'\n')
            .map(|l| l.strip_suffix(b"\r").unwrap_or(l).len() as u64)
            .max()
            .unwrap_or(0);
        prop_assert_eq!(scan_whole.longest_line(), longest);
        prop_assert_eq!(scan_whole.ends_with_line_end(), normalized.is_empty() || normalized.ends_with(b"\r\n"));
    }

    #[test]
    fn arbitrary_bytes_never_end_early(body in prop::collection::vec(any::<u8>(), 0..600), split in any::<usize>()) {
        let split = split % (body.len() + 1);
        let wire = stuff_chunks([&body[..split], &body[split..]]);
        check_wire_invariants(&wire);
        prop_assert_eq!(unstuff(&wire), Some(expected_unstuffed(&body)));
    }
}
