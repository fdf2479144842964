//! Reply parser and EHLO capability vectors (`docs/conformance.md` §22: TV-01..TV-11, TV-17, TV-50), each also fed split at
//! every byte boundary and byte by byte, plus DoS caps and property tests.

use proptest::prelude::*;
use smtp_proto::ehlo::Capabilities;
use smtp_proto::reply::{EnhancedCode, ParseError, Reply, ReplyClass, ReplyConfig, ReplyParser};
use smtp_proto::sasl::Mechanism;

/// Everything a run over some input produced: each reply with the total number of bytes consumed when it was
/// returned, the fatal error if any, and whether an incomplete reply was left buffered.
#[derive(Debug, PartialEq, Eq)]
struct Outcome {
    replies: Vec<(usize, Reply)>,
    error: Option<ParseError>,
    partial: bool,
}

/// Feeds the pieces in order, re-feeding the unconsumed rest after each reply (as a driver would).
fn run(config: ReplyConfig, pieces: &[&[u8]]) -> Outcome {
    let mut parser = ReplyParser::new(config);
    let mut replies = Vec::new();
    let mut total = 0;
    for piece in pieces {
        let mut off = 0;
        loop {
            match parser.push(&piece[off..]) {
                Ok((n, reply)) => {
                    assert!(off + n <= piece.len());
                    off += n;
                    total += n;
                    match reply {
                        Some(r) => {
                            assert!(n > 0, "a reply always consumes bytes");
                            replies.push((total, r));
                            if off == piece.len() {
                                break;
                            }
                        }
                        None => {
                            assert_eq!(off, piece.len(), "no reply: everything is consumed");
                            break;
                        }
                    }
                }
                Err(e) => {
                    // Poisoned: the same error again, whatever comes next.
                    assert_eq!(parser.push(b"250 ok\r\n"), Err(e));
                    return Outcome { replies, error: Some(e), partial: parser.has_partial() };
                }
            }
        }
    }
    Outcome { replies, error: None, partial: parser.has_partial() }
}

/// Runs `input` whole, split in two at every boundary (or at a sample of boundaries for big inputs), and
/// byte by byte; every run must give the same outcome, which is returned.
fn run_all_splits(config: ReplyConfig, input: &[u8]) -> Outcome {
    let whole = run(config, &[input]);
    // An error makes `partial` depend on where the error hit inside the last piece; compare it only without one.
    let same = |a: &Outcome, b: &Outcome| {
        a.replies == b.replies && a.error == b.error && (a.error.is_some() || a.partial == b.partial)
    };
    let splits: Vec<usize> = if input.len() <= 4096 {
        (0..=input.len()).collect()
    } else {
        let mut s: Vec<usize> = (0..=input.len()).step_by(997).collect();
        s.extend([1, 2, input.len() / 2, input.len() - 1, input.len()]);
        s
    };
    for at in splits {
        let split = run(config, &[&input[..at], &input[at..]]);
        assert!(same(&whole, &split), "split at {at}: {whole:?} vs {split:?}");
    }
    let bytes: Vec<&[u8]> = input.chunks(1).collect();
    let byte_by_byte = run(config, &bytes);
    assert!(same(&whole, &byte_by_byte), "byte by byte: {whole:?} vs {byte_by_byte:?}");
    whole
}

fn strict() -> ReplyConfig {
    ReplyConfig::default()
}

fn lines(r: &Reply) -> Vec<Vec<u8>> {
    r.lines().map(<[u8]>::to_vec).collect()
}

fn v(lines: &[&[u8]]) -> Vec<Vec<u8>> {
    lines.iter().map(|l| l.to_vec()).collect()
}

/// The single reply of `input`, which must be consumed whole.
fn one(config: ReplyConfig, input: &[u8]) -> Reply {
    let out = run_all_splits(config, input);
    assert_eq!(out.error, None, "{input:?}");
    assert_eq!(out.replies.len(), 1, "{input:?}");
    let (n, r) = out.replies.into_iter().next().unwrap();
    assert_eq!(n, input.len());
    assert!(!out.partial);
    r
}

fn err(config: ReplyConfig, input: &[u8]) -> ParseError {
    let out = run_all_splits(config, input);
    assert!(out.replies.is_empty(), "{input:?}");
    out.error.unwrap_or_else(|| panic!("no error for {input:?}"))
}

#[test]
fn tv01_multiline_greeting() {
    let input = b"220-mx.example.com ESMTP\r\n220 ready\r\n";
    let r = one(strict(), input);
    assert_eq!(r.code(), 220);
    assert_eq!(lines(&r), v(&[b"mx.example.com ESMTP", b"ready"]));
    // Nothing before the last line: the first line alone is an incomplete reply.
    let out = run_all_splits(strict(), b"220-mx.example.com ESMTP\r\n");
    assert!(out.replies.is_empty() && out.partial && out.error.is_none());
}

#[test]
fn tv02_code_only_and_empty_text() {
    for input in [&b"250\r\n"[..], b"250 \r\n"] {
        let r = one(strict(), input);
        assert_eq!((r.code(), lines(&r)), (250, v(&[b""])));
        assert_eq!(r.text(), b"");
    }
    let r = one(strict(), b"334\r\n");
    assert!(r.is_intermediate());
    assert_eq!(r.text(), b"");
    let r = one(strict(), b"250-\r\n250-x\r\n250\r\n");
    assert_eq!(lines(&r), v(&[b"", b"x", b""]));
}

#[test]
fn tv03_multiline_ehlo() {
    let input = b"250-mx.example.com greets you\r\n250-pipelining\r\n250-SIZE 35882577\r\n250-AUTH=LOGIN\r\n\
                  250-AUTH PLAIN LOGIN XOAUTH2\r\n250-LIMITS RCPTMAX=20 MAILMAX=5\r\n250 ENHANCEDSTATUSCODES\r\n";
    let r = one(strict(), input);
    assert_eq!(r.line_count(), 7);
    assert_eq!(r.enhanced(), None);
    let caps = Capabilities::from_ehlo(&r);
    assert_eq!(caps.domain(), b"mx.example.com");
    assert!(caps.pipelining());
    assert_eq!(caps.max_size(), Some(35_882_577));
    assert_eq!(
        caps.auth_mechanisms().collect::<Vec<_>>(),
        [Mechanism::Plain, Mechanism::Login, Mechanism::XOAuth2]
    );
    assert_eq!((caps.rcpt_max(), caps.mail_max()), (Some(20), Some(5)));
    assert!(caps.enhanced_status_codes());
    assert!(!caps.starttls() && !caps.auth(Mechanism::CramMd5));
    let kws: Vec<String> = caps.keywords().map(|k| String::from_utf8_lossy(k).to_uppercase()).collect();
    assert_eq!(kws, ["PIPELINING", "SIZE", "AUTH", "LIMITS", "ENHANCEDSTATUSCODES"]);
}

#[test]
fn tv04_continuation_text_beginning_with_digits() {
    let input =
        b"250-First line\r\n250-Second line\r\n250-234 Text beginning with numbers\r\n250 The last line\r\n";
    let r = one(strict(), input);
    assert_eq!(r.code(), 250);
    assert_eq!(r.line_count(), 4);
    assert_eq!(r.lines().nth(2), Some(&b"234 Text beginning with numbers"[..]));
}

#[test]
fn tv05_split_at_arbitrary_boundaries() {
    let mut p = ReplyParser::new(strict());
    assert_eq!(p.push(b"25"), Ok((2, None)));
    assert_eq!(p.push(b"0-mx\r"), Ok((5, None)));
    assert_eq!(p.push(b"\n250 8BITMIME\r"), Ok((14, None)));
    assert!(p.has_partial());
    let (n, r) = p.push(b"\n").unwrap();
    let r = r.unwrap();
    assert_eq!(n, 1);
    assert_eq!((r.code(), lines(&r)), (250, v(&[b"mx", b"8BITMIME"])));
    assert!(!p.has_partial());
    one(strict(), b"250-mx\r\n250 8BITMIME\r\n");
}

#[test]
fn tv06_two_replies_in_one_read() {
    let input = b"250 2.1.0 ok\r\n550 5.1.1 no\r\n";
    let mut p = ReplyParser::new(strict());
    let (n, r) = p.push(input).unwrap();
    let r = r.unwrap();
    assert_eq!(n, 14);
    assert_eq!(&input[n..], b"550 5.1.1 no\r\n");
    assert_eq!((r.code(), r.enhanced().map(|e| e.to_string())), (250, Some("2.1.0".into())));
    assert!(!p.has_partial());
    let (n2, r2) = p.push(&input[n..]).unwrap();
    let r2 = r2.unwrap();
    assert_eq!(n2, 14);
    assert_eq!((r2.code(), r2.text()), (550, &b"no"[..]));

    let out = run_all_splits(strict(), input);
    assert_eq!(out.replies.iter().map(|(n, r)| (*n, r.code())).collect::<Vec<_>>(), [(14, 250), (28, 550)]);
}

#[test]
fn several_replies_one_by_one() {
    // TV-19/TV-23 shaped: a pipelined group's replies, one multi-line.
    let input = b"250 ok\r\n550-5.1.1 user unknown\r\n550 5.1.1 see https://x\r\n250 ok\r\n354 go\r\n";
    let out = run_all_splits(strict(), input);
    assert_eq!(out.error, None);
    assert!(!out.partial);
    let got: Vec<(usize, u16, usize)> =
        out.replies.iter().map(|(n, r)| (*n, r.code(), r.line_count())).collect();
    assert_eq!(got, [(8, 250, 1), (57, 550, 2), (65, 250, 1), (73, 354, 1)]);
    assert_eq!(out.replies[1].1.enhanced(), Some(EnhancedCode { class: 5, subject: 1, detail: 1 }));
    // A trailing partial reply stays buffered.
    let mut with_tail = input.to_vec();
    with_tail.extend_from_slice(b"221-by");
    let out = run_all_splits(strict(), &with_tail);
    assert_eq!(out.replies.len(), 4);
    assert!(out.partial);
}

#[test]
fn tv07_code_mismatch() {
    let input = b"250-a\r\n550 b\r\n";
    assert_eq!(err(strict(), input), ParseError::CodeMismatch { first: 250, line: 550 });
    let lenient = ReplyConfig { allow_code_mismatch: true, ..strict() };
    let r = one(lenient, input);
    assert_eq!((r.code(), lines(&r)), (550, v(&[b"a", b"b"])));
}

#[test]
fn tv08_malformed_and_out_of_range_codes() {
    for input in [&b"25O ok\r\n"[..], b"250Xok\r\n", b"2500 ok\r\n", b"\r\n", b"ok\r\n", b"25\r\n"] {
        assert_eq!(err(strict(), input), ParseError::Malformed, "{input:?}");
    }
    assert_eq!(err(strict(), b"199 hmm\r\n"), ParseError::InvalidCode(199));
    assert_eq!(err(strict(), b"000 x\r\n"), ParseError::InvalidCode(0));
    assert_eq!(err(strict(), b"650 x\r\n"), ParseError::InvalidCode(650));
    for (input, class) in [
        (&b"299 fine\r\n"[..], ReplyClass::PositiveCompletion),
        (b"459 later\r\n", ReplyClass::TransientNegative),
        (b"599 never\r\n", ReplyClass::PermanentNegative),
        (b"279 second digit 7\r\n", ReplyClass::PositiveCompletion),
    ] {
        assert_eq!(one(strict(), input).class(), class);
    }
}

#[test]
fn tv09_bare_lf_fails_at_once_in_strict_mode() {
    // RFC 5321 §2.3.8: CR and LF only as CRLF. Strict mode refuses a bare LF as soon as it arrives, without
    // waiting for a CRLF that would make the next reply part of this one.
    assert_eq!(err(strict(), b"250 ok\n"), ParseError::BareLf);
    let bare = ReplyConfig { allow_bare_lf: true, ..strict() };
    let r = one(bare, b"250 ok\n");
    assert_eq!(lines(&r), v(&[b"ok"]));
    let r = one(bare, b"250-a\r\n250 b\n");
    assert_eq!(lines(&r), v(&[b"a", b"b"]));
}

#[test]
fn dos4_lf_inside_a_line_never_merges_two_replies() {
    // Strict: an error at the LF, before the second reply is looked at.
    assert_eq!(err(strict(), b"250 ok\n354 go ahead\r\n"), ParseError::BareLf);
    // Bare-LF mode: two complete replies.
    let bare = ReplyConfig { allow_bare_lf: true, ..strict() };
    let out = run_all_splits(bare, b"250 ok\n354 go ahead\r\n");
    let got: Vec<(usize, u16, Vec<Vec<u8>>)> =
        out.replies.iter().map(|(n, r)| (*n, r.code(), lines(r))).collect();
    assert_eq!(got, [(7, 250, v(&[b"ok"])), (21, 354, v(&[b"go ahead"]))]);
    // A bare CR is no line end and no text, in either mode.
    assert_eq!(err(strict(), b"250 a\rb\r\n"), ParseError::BareCr);
    assert_eq!(err(bare, b"250 a\rb\n"), ParseError::BareCr);
}

#[test]
fn tv10_oversized_line_fails_at_the_cap() {
    let mut input = b"250 ".to_vec();
    input.resize(4 + 20_000, b'a');
    assert_eq!(err(strict(), &input), ParseError::LineTooLong);
    // Byte by byte it fails exactly when the line can no longer fit: 16 383 buffered bytes + CRLF > 16 KiB.
    let mut p = ReplyParser::new(strict());
    for (i, b) in input.iter().enumerate() {
        match p.push(std::slice::from_ref(b)) {
            Ok(_) => assert!(i + 1 < 16_383),
            Err(e) => {
                assert_eq!((i + 1, e), (16_383, ParseError::LineTooLong));
                break;
            }
        }
    }
    // The largest line that fits, CRLF included, is accepted.
    let mut max = b"250 ".to_vec();
    max.resize(16 * 1024 - 2, b'a');
    max.extend_from_slice(b"\r\n");
    assert_eq!(one(strict(), &max).text().len(), 16 * 1024 - 6);
    max.insert(5, b'a');
    assert_eq!(err(strict(), &max), ParseError::LineTooLong);
}

#[test]
fn dos1_100k_line_without_crlf() {
    let input = vec![b'x'; 100 * 1024];
    let mut with_code = b"250-".to_vec();
    with_code.extend_from_slice(&input);
    assert_eq!(err(strict(), &with_code), ParseError::LineTooLong);
    // A custom cap.
    let small = ReplyConfig { max_line_len: 512, ..strict() };
    let mut p = ReplyParser::new(small);
    let fed: usize = (0..1000).map_while(|i| p.push(&input[i * 100..(i + 1) * 100]).ok().map(|r| r.0)).sum();
    assert_eq!(fed, 500, "fails on the chunk after which the line can no longer fit in 512");
}

#[test]
fn dos2_endless_continuation_stream_stops_at_max_lines() {
    // 1000 continuation lines are one too many: the reply cannot end within 1000 lines.
    let endless = b"250-x\r\n".repeat(5000);
    assert_eq!(err(strict(), &endless[..7 * 1500]), ParseError::TooManyLines);
    let mut p = ReplyParser::new(strict());
    for i in 1..=1000 {
        let r = p.push(b"250-x\r\n");
        if i < 1000 {
            assert_eq!(r, Ok((7, None)), "line {i}");
        } else {
            assert_eq!(r, Err(ParseError::TooManyLines));
        }
    }
    // Exactly 1000 lines is fine.
    let mut ok = b"250-x\r\n".repeat(999);
    ok.extend_from_slice(b"250 end\r\n");
    assert_eq!(one(strict(), &ok).line_count(), 1000);
}

#[test]
fn long_reply_dripped_is_linear() {
    // 200 000 lines fed 3 bytes at a time: quadratic re-parsing would take hours; this takes well under a second
    // even unoptimized.
    let config = ReplyConfig { max_lines: usize::MAX, ..strict() };
    let mut input = b"250-line\r\n".repeat(200_000);
    input.extend_from_slice(b"250 end\r\n");
    let out = run(config, &input.chunks(3).collect::<Vec<_>>());
    assert_eq!(out.error, None);
    assert_eq!(out.replies.len(), 1);
    assert_eq!(out.replies[0].1.line_count(), 200_001);
}

#[test]
fn tv11_enhanced_status_codes() {
    let r = one(strict(), b"550 5.1.1 Mailbox \"x\" does not exist\r\n");
    assert_eq!(r.enhanced(), Some(EnhancedCode { class: 5, subject: 1, detail: 1 }));
    assert_eq!(r.text(), b"Mailbox \"x\" does not exist");
    assert_eq!(r.to_string(), "550 5.1.1 Mailbox \"x\" does not exist");

    let r = one(strict(), b"550-5.7.1 first\r\n550 5.7.1 second\r\n");
    assert_eq!(r.enhanced().unwrap().to_string(), "5.7.1");
    assert_eq!(lines(&r), v(&[b"first", b"second"]));

    let r = one(strict(), b"451 5.3.0 odd\r\n");
    assert_eq!(r.enhanced(), None);
    assert_eq!(r.text(), b"5.3.0 odd");

    let r = one(strict(), b"550 5.7.30 REQUIRETLS support required\r\n");
    assert_eq!(r.enhanced(), Some(EnhancedCode { class: 5, subject: 7, detail: 30 }));
    assert_eq!(r.text(), b"REQUIRETLS support required");

    // Not on 3xx (no class 3), leading zeros accepted, code-only text.
    assert_eq!(one(strict(), b"354 3.0.0 go\r\n").enhanced(), None);
    assert_eq!(
        one(strict(), b"250 2.01.002 ok\r\n").enhanced(),
        Some(EnhancedCode { class: 2, subject: 1, detail: 2 })
    );
    let r = one(strict(), b"250 2.0.0\r\n");
    assert_eq!((r.enhanced().is_some(), r.text()), (true, &b""[..]));
    assert_eq!(r, Reply::new(250, "2.0.0"));
}

#[test]
fn tv17_single_line_ehlo_has_no_extensions() {
    let caps = Capabilities::from_ehlo(&one(strict(), b"250 mx.example.com\r\n"));
    assert_eq!(caps.domain(), b"mx.example.com");
    assert_eq!(caps.keywords().count(), 0);
    assert!(!caps.size_advertised() && !caps.pipelining() && caps.auth_mechanisms().next().is_none());
}

#[test]
fn tv50_limits_reset_on_each_ehlo() {
    let first =
        Capabilities::from_ehlo(&one(strict(), b"250-mx\r\n250-STARTTLS\r\n250 LIMITS RCPTMAX=2\r\n"));
    assert_eq!(first.rcpt_max(), Some(2));
    let second = Capabilities::from_ehlo(&one(strict(), b"250-mx\r\n250 AUTH PLAIN\r\n"));
    assert_eq!(second.rcpt_max(), None);
    let bad = Capabilities::from_ehlo(&one(strict(), b"250-mx\r\n250 LIMITS RCPTMAX=0 MAILMAX=3\r\n"));
    assert_eq!((bad.rcpt_max(), bad.mail_max()), (None, Some(3)));
}

#[test]
fn ehlo_whitespace_only_lines_do_not_panic() {
    let r = one(strict(), b"250-mx\r\n250- \r\n250-\t\r\n250-\r\n250 8BITMIME\r\n");
    let caps = Capabilities::from_ehlo(&r);
    assert!(caps.eight_bit_mime());
    assert_eq!(caps.keywords().count(), 1);
}

#[test]
fn non_utf8_text_is_preserved() {
    let r = one(strict(), b"550-\xff\xfe bytes\r\n550 caf\xc3\xa9\r\n");
    assert_eq!(lines(&r), v(&[b"\xff\xfe bytes", b"caf\xc3\xa9"]));
    assert_eq!(r.text_lossy(), "\u{fffd}\u{fffd} bytes\ncaf\u{e9}");
    assert_eq!(r.to_string(), "550 \u{fffd}\u{fffd} bytes / caf\u{e9}");
}

#[test]
fn errors_are_sticky_and_stop_at_the_first_complete_reply() {
    // The malformed second reply is not looked at until the first has been handed back.
    let out = run_all_splits(strict(), b"250 ok\r\n25O bad\r\n250 never\r\n");
    assert_eq!(out.replies.len(), 1);
    assert_eq!(out.error, Some(ParseError::Malformed));
}

/// Encodes lines as one reply.
fn encode(code: u16, texts: &[Vec<u8>], code_only_last: bool) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, t) in texts.iter().enumerate() {
        out.extend_from_slice(code.to_string().as_bytes());
        let last = i + 1 == texts.len();
        if last && t.is_empty() && code_only_last {
            // "250\r\n"
        } else {
            out.push(if last { b' ' } else { b'-' });
        }
        out.extend_from_slice(t);
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// Text bytes without CR/LF that cannot start an enhanced code nor lose a leading space to its stripping.
fn text_strategy() -> impl Strategy<Value = Vec<u8>> {
    (
        prop_oneof![
            Just(None),
            any::<u8>()
                .prop_filter("no digit/SP/CR/LF", |b| !b.is_ascii_digit() && !b"\r\n ".contains(b))
                .prop_map(Some)
        ],
        proptest::collection::vec(any::<u8>().prop_filter("no CR/LF", |b| *b != b'\r' && *b != b'\n'), 0..40),
    )
        .prop_map(|(first, rest)| match first {
            Some(f) => {
                let mut t = vec![f];
                t.extend(rest);
                t
            }
            None => Vec::new(),
        })
}

/// Split points for chunking `len` bytes.
fn chunked(input: &[u8], mut cuts: Vec<usize>) -> Vec<&[u8]> {
    cuts.iter_mut().for_each(|c| *c %= input.len() + 1);
    cuts.sort_unstable();
    let mut pieces = Vec::new();
    let mut prev = 0;
    for c in cuts {
        pieces.push(&input[prev..c]);
        prev = c;
    }
    pieces.push(&input[prev..]);
    pieces
}

proptest! {
    #[test]
    fn well_formed_replies_round_trip(
        code in 200u16..600,
        texts in proptest::collection::vec(text_strategy(), 1..=5),
        code_only_last in any::<bool>(),
        esc in proptest::option::of((0u16..1000, 0u16..1000)),
        cuts in proptest::collection::vec(any::<usize>(), 0..8),
    ) {
        let class = (code / 100) as u8;
        let mut wire_texts = texts.clone();
        let esc = esc.filter(|_| class != 3);
        if let Some((s, d)) = esc {
            for t in &mut wire_texts {
                let mut with = format!("{class}.{s}.{d}").into_bytes();
                if !t.is_empty() {
                    with.push(b' ');
                }
                with.extend_from_slice(t);
                *t = with;
            }
        }
        let input = encode(code, &wire_texts, code_only_last);
        let whole = run(strict(), &[&input]);
        prop_assert_eq!(whole.error, None);
        prop_assert_eq!(whole.replies.len(), 1);
        let (n, r) = &whole.replies[0];
        prop_assert_eq!(*n, input.len());
        prop_assert_eq!(r.code(), code);
        prop_assert_eq!(lines(r), texts.clone());
        prop_assert_eq!(r.enhanced(), esc.map(|(subject, detail)| EnhancedCode { class, subject, detail }));
        let joined = texts.join(&b'\n');
        prop_assert_eq!(r.text(), joined.as_slice());
        let pieces = chunked(&input, cuts);
        prop_assert_eq!(run(strict(), &pieces), whole);
    }

    #[test]
    fn arbitrary_bytes_never_panic_and_split_the_same(
        input in proptest::collection::vec(
            prop_oneof![
                4 => proptest::sample::select(b"0123456789- \r\n.".to_vec()),
                1 => any::<u8>(),
            ],
            0..300,
        ),
        cuts in proptest::collection::vec(any::<usize>(), 0..10),
        bare_lf in any::<bool>(),
        mismatch in any::<bool>(),
        max_line_len in 4usize..64,
        max_lines in 1usize..6,
    ) {
        let config = ReplyConfig { max_line_len, max_lines, allow_bare_lf: bare_lf, allow_code_mismatch: mismatch };
        let whole = run(config, &[&input]);
        let split = run(config, &chunked(&input, cuts));
        prop_assert_eq!(&whole.replies, &split.replies);
        prop_assert_eq!(whole.error, split.error);
        for (_, r) in &whole.replies {
            let caps = Capabilities::from_ehlo(r);
            let _ = (format!("{r} {r:?} {caps:?}"), caps.keywords().count(), caps.max_size());
            prop_assert!(r.line_count() <= max_lines);
        }
    }

    #[test]
    fn arbitrary_ehlo_text_never_panics(text in "[ \t\nA-Za-z0-9=;_.-]{0,120}") {
        let caps = Capabilities::from_ehlo(&Reply::new(250, &text));
        let _ = (format!("{caps:?}"), caps.keywords().count(), caps.extension("AUTH"), caps.rcpt_max());
    }
}

mod alloc_count {
    //! Counts heap allocations made by the current thread (tests run on parallel threads).
    use std::alloc::{GlobalAlloc, Layout, System};
    use std::cell::Cell;

    thread_local! {
        static COUNT: Cell<usize> = const { Cell::new(0) };
    }

    struct Counting;

    unsafe impl GlobalAlloc for Counting {
        unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
            COUNT.with(|c| c.set(c.get() + 1));
            unsafe { System.alloc(layout) }
        }
        unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
            unsafe { System.dealloc(ptr, layout) }
        }
        unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
            COUNT.with(|c| c.set(c.get() + 1));
            unsafe { System.realloc(ptr, layout, new_size) }
        }
    }

    #[global_allocator]
    static GLOBAL: Counting = Counting;

    pub(super) fn count() -> usize {
        COUNT.with(Cell::get)
    }
}

#[test]
fn at_most_one_allocation_per_reply_in_steady_state() {
    let stream = b"250-mx.example.com\r\n250-PIPELINING\r\n250-SIZE 1000\r\n250-8BITMIME\r\n\
                   250 ENHANCEDSTATUSCODES\r\n\
                   250 2.1.0 ok\r\n550-5.1.1 no\r\n550 5.1.1 such user\r\n354 go\r\n";
    let mut p = ReplyParser::new(strict());
    let mut replies = Vec::with_capacity(64);
    let feed = |p: &mut ReplyParser, replies: &mut Vec<Reply>, chunk: usize| {
        for piece in stream.chunks(chunk) {
            let mut off = 0;
            while off < piece.len() {
                let (n, r) = p.push(&piece[off..]).unwrap();
                off += n;
                replies.extend(r);
            }
        }
    };
    // Warm-up: the reused buffers grow to their working size.
    feed(&mut p, &mut replies, 3);
    feed(&mut p, &mut replies, 1);
    replies.clear();
    for chunk in [1, 2, 7, stream.len()] {
        let before = alloc_count::count();
        feed(&mut p, &mut replies, chunk);
        let allocs = alloc_count::count() - before;
        assert_eq!(replies.len(), 4);
        // Only the EHLO reply (64 octets of text) is too long to be kept inline.
        assert_eq!(allocs, 1, "chunks of {chunk}: at most one allocation per reply, none for short ones");
        replies.clear();
    }
}
