//! The fuzz corpus under `fuzz/corpus/<target>/`, replayed on stable by every `cargo test`.
//!
//! - `replay_corpus` runs every file of every target directory through the matching body in
//!   `smtp_proto::internal::fuzzing` (the same function the `cargo fuzz` shim calls). It fails when a
//!   directory is missing or empty, or when a directory has no matching body, so it cannot pass by asserting
//!   nothing.
//! - `seeds` builds the hand-written seeds (`docs/conformance.md` §22 vectors, smuggling strings, address vectors) and runs
//!   them through the bodies, and checks that the committed corpus holds each one, unchanged, as
//!   `fuzz/corpus/<target>/seed-<name>`. With `SMTP_FUZZ_WRITE_CORPUS=1`, both tests first (re)write the
//!   seed files (stale `seed-*` files of removed seeds must be deleted by hand).
//! - `transcript_seeds_name_tests` covers the `session` seeds translated from the transcript tests
//!   (`seed-transcript-<test>[-<n>]`, see `tests/common/mod.rs`): each names a test of `transcripts.rs` or
//!   `timeouts.rs` (no orphans of renamed or removed tests). That each `check` of those tests has its file,
//!   unchanged, is checked by the harness itself, so neither check depends on which test runs first.

use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::path::{Path, PathBuf};

use smtp_proto::internal::fuzzing::{
    self, CommandSeed, SaslSeed, body_seed, command_seed, ehlo_seed, reply_seed, sasl_seed,
};

type Body = fn(&[u8]);

const TARGETS: [(&str, Body); 6] = [
    ("reply", fuzzing::reply),
    ("ehlo", fuzzing::ehlo),
    ("body", fuzzing::body),
    ("command", fuzzing::command),
    ("sasl", fuzzing::sasl),
    ("session", fuzzing::session),
];

/// Corpus directories of fuzz bodies in other crates, replayed by their own tests: `driver` by
/// `smtp-transport/tests/fuzz_driver.rs`.
const ELSEWHERE: [&str; 1] = ["driver"];

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus")
}

fn body_of(target: &str) -> Body {
    TARGETS
        .iter()
        .find(|(name, _)| *name == target)
        .unwrap_or_else(|| panic!("no fuzz body for corpus directory {target:?}"))
        .1
}

/// Runs `body` on `data`, naming `what` if it panics.
fn run(body: Body, data: &[u8], what: &str) {
    if let Err(panic) = catch_unwind(AssertUnwindSafe(|| body(data))) {
        eprintln!("fuzz body panicked on {what}");
        resume_unwind(panic);
    }
}

/// With `SMTP_FUZZ_WRITE_CORPUS=1`, writes every seed once, before either test reads the corpus.
fn write_seeds_if_asked() -> bool {
    static WRITE: std::sync::Once = std::sync::Once::new();
    let write = std::env::var_os("SMTP_FUZZ_WRITE_CORPUS").is_some_and(|v| v == "1");
    if write {
        WRITE.call_once(|| {
            for (target, name, data) in all_seeds() {
                let path = seed_path(target, &name);
                std::fs::create_dir_all(path.parent().unwrap()).unwrap();
                std::fs::write(&path, data).unwrap();
            }
        });
    }
    write
}

fn seed_path(target: &str, name: &str) -> PathBuf {
    corpus_dir().join(target).join(format!("seed-{name}"))
}

#[test]
fn replay_corpus() {
    write_seeds_if_asked();
    let root = corpus_dir();
    let mut dirs: Vec<String> = std::fs::read_dir(&root)
        .unwrap_or_else(|e| panic!("corpus directory {} missing: {e}", root.display()))
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .collect();
    dirs.sort();
    let mut want: Vec<&str> = TARGETS.iter().map(|(name, _)| *name).chain(ELSEWHERE).collect();
    want.sort();
    assert_eq!(dirs, want, "one corpus directory per fuzz body");
    for dir in dirs.into_iter().filter(|dir| !ELSEWHERE.contains(&dir.as_str())) {
        let body = body_of(&dir);
        let mut files: Vec<PathBuf> =
            std::fs::read_dir(root.join(&dir)).unwrap().map(|entry| entry.unwrap().path()).collect();
        files.sort();
        assert!(!files.is_empty(), "corpus directory {dir} is empty");
        for file in &files {
            let data = std::fs::read(file).unwrap();
            run(body, &data, &file.display().to_string());
        }
    }
}

#[test]
fn seeds() {
    let written = write_seeds_if_asked();
    let seeds = all_seeds();
    let mut names = std::collections::HashSet::new();
    for (target, name, data) in &seeds {
        assert!(names.insert((*target, name.as_str())), "duplicate seed {target}/{name}");
        run(body_of(target), data, &format!("seed {target}/{name}"));
        let path = seed_path(target, name);
        let stored = std::fs::read(&path).unwrap_or_default();
        assert!(
            stored == *data,
            "{} is missing or stale (written: {written}): run \
             `SMTP_FUZZ_WRITE_CORPUS=1 cargo test -p smtp-proto --test fuzz_corpus`",
            path.display()
        );
    }
}

/// The transcript seeds are written by the transcript harness (`tests/common/mod.rs`), which also fails when
/// one of them is missing or stale; here, the other direction: every one belongs to an existing test.
#[test]
fn transcript_seeds_name_tests() {
    let sources = [include_str!("transcripts.rs"), include_str!("timeouts.rs")];
    let mut names: Vec<String> = std::fs::read_dir(corpus_dir().join("session"))
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .filter(|name| name.starts_with("seed-transcript-"))
        .collect();
    names.sort();
    assert!(
        !names.is_empty(),
        "no transcript seeds: run \
         `SMTP_FUZZ_WRITE_CORPUS=1 cargo test -p smtp-proto --test transcripts --test timeouts`"
    );
    for name in &names {
        let test = &name["seed-transcript-".len()..];
        let (test, n) = match test.rsplit_once('-') {
            Some((test, n)) => (test, n.parse::<usize>().expect("a check number")),
            None => (test, 1),
        };
        assert!(
            sources.iter().any(|s| s.contains(&format!("fn {test}()"))),
            "{name}: no test {test} in transcripts.rs or timeouts.rs; delete this stale seed"
        );
        let previous = match n {
            1 => continue,
            2 => format!("seed-transcript-{test}"),
            n => format!("seed-transcript-{test}-{}", n - 1),
        };
        assert!(names.contains(&previous), "{name} without {previous}: a stale seed; delete it");
    }
}

/// `(target, name, input)` for every hand-written seed.
fn all_seeds() -> Vec<(&'static str, String, Vec<u8>)> {
    let mut out = Vec::new();
    for (name, data) in reply_seeds() {
        out.push(("reply", name.to_string(), data));
    }
    for (name, data) in ehlo_seeds() {
        out.push(("ehlo", name.to_string(), data));
    }
    for (name, data) in body_seeds() {
        out.push(("body", name.to_string(), data));
    }
    for (name, data) in command_seeds() {
        out.push(("command", name.to_string(), data));
    }
    for (name, data) in sasl_seeds() {
        out.push(("sasl", name.to_string(), data));
    }
    for (name, data) in session_seeds() {
        out.push(("session", name.to_string(), data));
    }
    out
}

/// Whole sessions: the happy path under each configuration family, then refusals, garbage and time.
fn session_seeds() -> Vec<(&'static str, Vec<u8>)> {
    use fuzzing::{session_happy_seed, session_seed};
    let happy = session_happy_seed();
    let actions = &happy[4..];
    let with = |config: u8, caps: u8, refusals: Option<u64>, extra: &[u8]| {
        let mut a = actions.to_vec();
        a.extend_from_slice(extra);
        session_seed(config, 16, caps, refusals, &a)
    };
    vec![
        ("happy-pipelined", happy.clone()),
        ("happy-lockstep", with(0b0000_0000, 2, None, &[])),
        ("happy-bdat", with(0b0000_0011, 1, None, &[])),
        ("happy-lmtp", with(0b0001_0001, 0, None, &[])),
        ("starttls-auth", with(0b0110_1011, 3, None, &[0, 5, 40, 0, 5, 40])),
        ("refusals", with(0b0000_0001, 0, Some(0b1010_0110), &[])),
        ("garbage", with(0b0000_0001, 0, None, &[5, 0, 5, 6, 6, 3, b'2', b'5', b'0'])),
        ("timeout-after-dot", with(0b0000_0001, 0, None, &[10, 0xff, 0xff])),
        ("abort-eof", with(0b0000_0001, 5, None, &[11, 0, 11, 1])),
    ]
}

/// Reply flags: bit 0 bare LF ends a line, bit 1 mixed codes allowed.
const STRICT: u8 = 0;
const BARE_LF: u8 = 1;
const LENIENT_CODES: u8 = 2;

fn reply_seeds() -> Vec<(&'static str, Vec<u8>)> {
    let plain = |payload: &[u8]| reply_seed(STRICT, 0, 0, &[], payload);
    let mut long = b"250 ".to_vec();
    long.extend_from_slice(&[b'a'; 100]);
    vec![
        ("tv01-greeting", plain(b"220-mx.example.com ESMTP\r\n220 ready\r\n")),
        ("tv02-code-only", plain(b"250\r\n250 \r\n334\r\n")),
        (
            "tv03-ehlo",
            reply_seed(
                STRICT,
                0,
                0,
                &[7, 30],
                b"250-mx.example.com greets you\r\n250-pipelining\r\n250-SIZE 35882577\r\n\
                  250-AUTH=LOGIN\r\n250-AUTH PLAIN LOGIN XOAUTH2\r\n250-LIMITS RCPTMAX=20 MAILMAX=5\r\n\
                  250 ENHANCEDSTATUSCODES\r\n",
            ),
        ),
        (
            "tv04-digits-in-text",
            plain(
                b"250-First line\r\n250-Second line\r\n250-234 Text beginning with numbers\r\n\
                  250 The last line\r\n",
            ),
        ),
        ("tv05-split", reply_seed(STRICT, 0, 0, &[2, 5, 13, 1], b"250-mx\r\n250 8BITMIME\r\n")),
        ("tv06-two-replies", reply_seed(STRICT, 0, 0, &[0, 200], b"250 2.1.0 ok\r\n550 5.1.1 no\r\n")),
        ("tv07-code-mismatch", plain(b"250-a\r\n550 b\r\n")),
        (
            "tv07-code-mismatch-lenient",
            reply_seed(LENIENT_CODES, 0, 0, &[], b"250-2.0.0 a\r\n550 5.0.0 b\r\n"),
        ),
        ("tv08-letter-o", plain(b"25O ok\r\n")),
        ("tv08-no-separator", plain(b"250Xok\r\n")),
        ("tv08-four-digits", plain(b"2500 ok\r\n")),
        ("tv08-class-1", plain(b"199 hmm\r\n")),
        ("tv08-odd-codes", plain(b"299 fine\r\n459 later\r\n599 never\r\n")),
        ("tv09-bare-lf-strict", plain(b"250 ok\n")),
        ("tv09-bare-lf-compat", reply_seed(BARE_LF, 0, 0, &[], b"250 ok\n250-a\r\n250 b\n")),
        ("tv10-too-long", reply_seed(STRICT, 64, 0, &[9], &long)),
        ("tv10-at-the-limit", reply_seed(STRICT, 8, 0, &[], b"250 abc\r\n250 abcd\r\n")),
        (
            "too-many-lines",
            reply_seed(STRICT, 0, 3, &[], b"250-a\r\n250-b\r\n250 c\r\n250-a\r\n250-b\r\n250-c\r\n250 d\r\n"),
        ),
        (
            "tv11-enhanced",
            plain(
                b"550 5.1.1 Mailbox \"x\" does not exist\r\n550-5.7.1 first\r\n550 5.7.1 second\r\n\
                  451 5.3.0 odd\r\n550 5.7.30 REQUIRETLS support required\r\n",
            ),
        ),
        ("tv12-554-greeting", plain(b"554 mx.example.com no SMTP service here\r\n")),
        ("tv13-421-greeting", plain(b"421 4.3.2 too busy\r\n")),
        ("tv20-pipelined-rejects", plain(b"250 ok\r\n550 no\r\n550 no\r\n554 no valid recipients\r\n")),
        (
            "tv23-multiline-in-group",
            reply_seed(
                STRICT,
                0,
                0,
                &[3, 17],
                b"250 ok\r\n550-5.1.1 user unknown\r\n550 5.1.1 see https://x\r\n250 ok\r\n354 go\r\n",
            ),
        ),
        ("tv42-starttls-injection", plain(b"220 Ready\r\n250-AUTH PLAIN\r\n")),
        ("tv45-login-prompts", plain(b"334 VXNlcm5hbWU6\r\n334 UGFzc3dvcmQ6\r\n235 2.7.0 ok\r\n")),
        ("tv47-lmtp", plain(b"250 OK\r\n452 <green@foo.edu> is temporarily over quota\r\n")),
        // Found by the fuzzer: an empty push errored with max_line_len below 2.
        ("regress-empty-push-tiny-limit", reply_seed(STRICT, 1, 0, &[2], b"")),
        ("cr-inside-text", plain(b"250 a\rb\r\r\n250 \xff\xfe\r\n")),
    ]
}

fn ehlo_seeds() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        (
            "tv03-capabilities",
            ehlo_seed(
                b"250-mx.example.com greets you\r\n250-pipelining\r\n250-SIZE 35882577\r\n\
                  250-AUTH=LOGIN\r\n250-AUTH PLAIN LOGIN XOAUTH2\r\n250-LIMITS RCPTMAX=20 MAILMAX=5\r\n\
                  250 ENHANCEDSTATUSCODES\r\n",
            ),
        ),
        ("tv17-no-extensions", ehlo_seed(b"250 mx.example.com\r\n")),
        ("tv42-starttls", ehlo_seed(b"250-mx\r\n250-STARTTLS\r\n250 AUTH PLAIN\r\n")),
        ("tv36-size", ehlo_seed(b"250-mx\r\n250-SIZE 1000000\r\n250-SIZE\r\n250 SIZE 0\r\n")),
        ("size-overflow", ehlo_seed(b"250-mx\r\n250 SIZE 18446744073709551616\r\n")),
        ("tv50-limits", ehlo_seed(b"250-mx\r\n250 LIMITS RCPTMAX=2\r\n")),
        ("limits-bad-values", ehlo_seed(b"250-mx\r\n250 LIMITS RCPTMAX=0 MAILMAX=1000000 X=y\r\n")),
        (
            "legacy-auth-after-real",
            ehlo_seed(
                b"250-mx\r\n250-AUTH CRAM-MD5\r\n250-AUTH=LOGIN PLAIN\r\n250-auth oauthbearer\r\n\
                  250 X-FOO bar  baz\r\n",
            ),
        ),
        (
            "tabs-and-blank-lines",
            ehlo_seed(b"250-mx\t greets\n250-\r\n250- \t\r\n250-\tDSN\t\r\n250 8bitmime\r\n"),
        ),
        (
            "every-flag",
            ehlo_seed(
                b"250-mx\r\n250-PIPELINING\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n250-DSN\r\n\
                  250-CHUNKING\r\n250-BINARYMIME\r\n250-ENHANCEDSTATUSCODES\r\n250-STARTTLS\r\n\
                  250-REQUIRETLS\r\n250 SIZE 1\r\n",
            ),
        ),
        ("failure-reply", ehlo_seed(b"550 5.7.1 go away\r\n")),
        ("text-lines", ehlo_seed(b"mx greets\npipelining\nSIZE 35882577\nAUTH=LOGIN PLAIN")),
        (
            "keyword-alphabet",
            ehlo_seed(&[b'm', 0xFB, 0xE0, 0xFB, 0xE5, 0xFC, 0xE8, 0xFB, 0xED, 0xFC, 0xEE, 0xF0]),
        ),
    ]
}

fn body_seeds() -> Vec<(&'static str, Vec<u8>)> {
    let line = |first: u8, len: usize| {
        let mut v = vec![first];
        v.extend(std::iter::repeat_n(b'a', len - 1));
        v.extend_from_slice(b"\r\n");
        v
    };
    vec![
        ("empty", body_seed(&[], b"")),
        ("tv32-stuffing", body_seed(&[5], b".hidden\r\n..two\r\nend")),
        ("tv32-final-crlf", body_seed(&[], b"x\r\n")),
        ("tv32-lone-dot", body_seed(&[1], b".\r\n")),
        ("tv33-bare-lf", body_seed(&[2], b"a\n.\nb\r\n")),
        ("tv33-bare-cr", body_seed(&[], b"a\rb\r\n")),
        ("tv34-cr-lf-split", body_seed(&[3, 6], b"l1\r\n.x\r\n")),
        ("tv34-dot-alone", body_seed(&[4, 1, 3], b"l1\r\n.x\r\n")),
        ("tv35-998", body_seed(&[200], &line(b'a', 998))),
        ("tv35-dot-997", body_seed(&[200], &line(b'.', 998))),
        ("tv35-999", body_seed(&[255], &line(b'a', 999))),
        ("tv37-bdat-terminator", body_seed(&[8], b"abc\r\n.\r\n")),
        ("smug-lf-dot-crlf", body_seed(&[], b"x\n.\r\nMAIL FROM:<e@vil>\r\n")),
        ("smug-lf-dot-lf", body_seed(&[], b"x\n.\nMAIL FROM:<e@vil>\n")),
        ("smug-cr-dot-crlf", body_seed(&[], b"x\r.\r\nRCPT TO:<e@vil>\r\n")),
        ("smug-cr-dot-cr", body_seed(&[], b"x\r.\rDATA\r")),
        ("smug-split", body_seed(&[1, 2, 3], b"Hi\n.\nMAIL FROM:<e@vil>\r\n.hidden")),
        ("eight-bit-and-nul", body_seed(&[7], b"caf\xc3\xa9\0\r\n\r\r\n\n\r")),
    ]
}

fn command_seeds() -> Vec<(&'static str, Vec<u8>)> {
    let addr = |a: &str| {
        command_seed(&CommandSeed {
            flags: 0x02 | 0x20,
            address: a.as_bytes(),
            helo: b"client.example.org",
            ..CommandSeed::default()
        })
    };
    let local65 = format!("{}@x.test", "a".repeat(65));
    let long_path = format!("a@{}.test", vec!["b".repeat(60); 4].join("."));
    vec![
        (
            "tv39-dsn-mail",
            command_seed(&CommandSeed {
                flags: 0x08,                 // RET=HDRS
                options: 0x04 | 0x08 | 0x10, // ENVID, NOTIFY, ORCPT
                address: b"Alice@Example.ORG",
                helo: b"client.example.org",
                envid: b"QQ314159",
                notify: b"SUCCESS,FAILURE",
                orcpt: b"Dana@Ivory.EDU",
                ..CommandSeed::default()
            }),
        ),
        (
            "tv39-notify-never",
            command_seed(&CommandSeed {
                options: 0x08,
                address: b"Fred@Bombs.AF.MIL",
                notify: b"NEVER",
                ..CommandSeed::default()
            }),
        ),
        (
            "tv39-never-with-others",
            command_seed(&CommandSeed {
                options: 0x08,
                address: b"b@x.test",
                notify: b"NEVER,SUCCESS",
                ..CommandSeed::default()
            }),
        ),
        (
            "tv40-xtext",
            command_seed(&CommandSeed {
                flags: 0x80, // AUTH=
                address: b"e=mc2@example.com",
                raw: b"a b+c",
                ..CommandSeed::default()
            }),
        ),
        ("tv40-xtext-decode", command_seed(&CommandSeed { raw: b"x+2b", ..CommandSeed::default() })),
        (
            "tv40-utf8-orcpt",
            command_seed(&CommandSeed {
                options: 0x10 | 0x20,
                address: "café@example.com".as_bytes(),
                orcpt_type: b"utf-8",
                orcpt: "café@example.com".as_bytes(),
                ..CommandSeed::default()
            }),
        ),
        (
            "all-mail-params",
            command_seed(&CommandSeed {
                flags: 0xFE,
                options: 0x03 | 0x04,
                size: 35_882_577,
                address: "\"john doe\"@example.com".as_bytes(),
                envid: b"a+b=c",
                ..CommandSeed::default()
            }),
        ),
        ("tv49-null", addr("<>")),
        ("tv49-empty", addr("")),
        ("tv49-postmaster", addr("POSTMASTER")),
        ("tv49-quoted-space", addr("\"john doe\"@example.com")),
        ("tv49-minimal-quoting", addr("\"john\"@example.com")),
        ("tv49-ipv4-literal", addr("user@[192.0.2.1]")),
        ("tv49-ipv6-literal", addr("user@[IPv6:2001:db8::1]")),
        ("tv49-general-literal", addr("user@[tag:a>b]")),
        ("tv49-utf8", addr("café@example.com")),
        // Found by the fuzzer: slicing the literal at byte 5 inside a UTF-8 character panicked.
        ("regress-literal-utf8-at-byte-5", addr("user@[IPv7\u{fffd}zz::1]")),
        ("tv49-bad-ipv4", addr("user@[300.1.1.1]")),
        ("tv49-bad-ipv6", addr("user@[IPv6:zz::1]")),
        ("tv49-underscore", addr("user@exa_mple.com")),
        ("tv49-trailing-dot", addr("user@example.com.")),
        ("tv49-leading-dot", addr(".a@x.test")),
        ("tv49-double-dot", addr("a..b@x.test")),
        ("tv49-local-65", addr(&local65)),
        ("tv49-long-path", addr(&long_path)),
        ("tv49-angle", addr("a<b@x.test")),
        ("tv49-source-route", addr("<@a.test:u@b.test>")),
        ("tv50-injection", addr("a@x.test>\r\nRCPT TO:<evil@y.test")),
        (
            "tv50-envid-crlf",
            command_seed(&CommandSeed {
                options: 0x04,
                address: b"a@x.test",
                envid: b"id\r\nRSET",
                ..CommandSeed::default()
            }),
        ),
        (
            "helo-literal",
            command_seed(&CommandSeed { helo: b"[IPv6:2001:db8::1]", ..CommandSeed::default() }),
        ),
        (
            "helo-injection",
            command_seed(&CommandSeed { helo: b"client\r\nMAIL FROM:<x@y>", ..CommandSeed::default() }),
        ),
        (
            "alphabet",
            command_seed(&CommandSeed {
                flags: 0x01,
                address: &[0, 1, 8, 9, 5, 6, 15, 16, 7, 2],
                helo: &[0, 1, 7, 2, 3],
                ..CommandSeed::default()
            }),
        ),
    ]
}

fn sasl_seeds() -> Vec<(&'static str, Vec<u8>)> {
    // Mechanism::PREFERENCE order.
    const OAUTHBEARER: u8 = 0;
    const XOAUTH2: u8 = 1;
    const CRAM_MD5: u8 = 2;
    const PLAIN: u8 = 3;
    const LOGIN: u8 = 4;
    const IR: u8 = 2;
    const EXTRA: u8 = 4;
    const PORT: u8 = 8;
    const B64: u8 = 1;
    const RAW: u8 = 0;
    let tim = |mechanism, flags, challenges| {
        sasl_seed(&SaslSeed {
            mechanism,
            flags,
            username: b"tim",
            secret: b"tanstaaftanstaaf",
            challenges,
            ..SaslSeed::default()
        })
    };
    let google = b"ya29.vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg";
    vec![
        ("tv43-plain-ir", tim(PLAIN, IR, &[])),
        ("tv43-plain-no-ir", tim(PLAIN, 0, &[(B64, b"")])),
        ("tv43-plain-unexpected", tim(PLAIN, IR, &[(B64, b"foo"), (B64, b"")])),
        ("tv44-cram-md5", tim(CRAM_MD5, 0, &[(B64, b"<1896.697170952@postoffice.reston.mci.net>")])),
        ("tv44-bad-challenge", tim(CRAM_MD5, 0, &[(RAW, b"!!!"), (B64, b"x")])),
        ("cram-md5-empty", tim(CRAM_MD5, 0, &[(B64, b"")])),
        ("tv45-login", tim(LOGIN, 0, &[(B64, b"Username:"), (B64 | 2, b"Password:"), (B64, b"again")])),
        (
            "tv45-xoauth2",
            sasl_seed(&SaslSeed {
                mechanism: XOAUTH2,
                flags: IR,
                username: b"someuser@example.com",
                secret: google,
                challenges: &[(B64, b"{\"status\":\"401\",\"schemes\":\"bearer\"}"), (B64, b"")],
                ..SaslSeed::default()
            }),
        ),
        (
            "tv45-xoauth2-bare-334",
            sasl_seed(&SaslSeed {
                mechanism: XOAUTH2,
                username: b"someuser@example.com",
                secret: google,
                challenges: &[(RAW, b""), (B64, b"{}")],
                ..SaslSeed::default()
            }),
        ),
        (
            "tv46-oauthbearer",
            sasl_seed(&SaslSeed {
                mechanism: OAUTHBEARER,
                flags: IR | EXTRA | PORT,
                port: 587,
                username: b"user@example.com",
                secret: b"vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg==",
                extra: b"server.example.com",
                challenges: &[(B64, b"{\"status\":\"invalid_token\",\"scope\":\"example_scope\"}")],
            }),
        ),
        (
            "oauthbearer-escapes",
            sasl_seed(&SaslSeed {
                mechanism: OAUTHBEARER,
                username: b"a,b=c",
                secret: b"t",
                challenges: &[(RAW | 2, b"")],
                ..SaslSeed::default()
            }),
        ),
        (
            "plain-authzid",
            sasl_seed(&SaslSeed {
                mechanism: PLAIN,
                flags: EXTRA,
                username: b"tim",
                secret: b"pw",
                extra: b"admin",
                challenges: &[(B64, b"")],
                ..SaslSeed::default()
            }),
        ),
        (
            "inj5-nul-in-user",
            sasl_seed(&SaslSeed {
                mechanism: PLAIN,
                username: b"t\0im",
                secret: b"x",
                ..SaslSeed::default()
            }),
        ),
        (
            "mechanism-mismatch",
            sasl_seed(&SaslSeed {
                mechanism: LOGIN,
                flags: 1,
                username: b"u",
                secret: b"token",
                ..SaslSeed::default()
            }),
        ),
    ]
}
