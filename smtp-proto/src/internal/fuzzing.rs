//! Fuzz bodies: each `fuzz/fuzz_targets/<name>.rs` is a shim calling the function of the same name here.
//!
//! They are compiled in every build (no `cfg(fuzzing)`), so they cannot rot, and `tests/fuzz_corpus.rs`
//! replays the committed corpus through them on stable under `cargo test`. Every body asserts invariants (it
//! panics on a violation), not only the absence of a panic:
//!
//! - `reply`: the same bytes fed whole, in fuzzer-chosen chunks and byte by byte give the same replies at
//!   the same offsets and the same error; every reply respects the configured limits and matches its raw
//!   lines; also run over an SMTP-reply alphabet ([`into_reply_alphabet`]).
//! - `ehlo`: [`Capabilities`](crate::ehlo::Capabilities) agree with a reference reading of the reply.
//! - `body`: the dot-stuffer and CRLF normaliser append, call by call, what a byte-at-a-time reference
//!   ([`ReferenceEncoder`]) appends; with the body scan they give chunking-independent output that un-stuffs
//!   to the normalised body, with no bare CR/LF and `CRLF.CRLF` only at the end; BDAT framing parses back.
//! - `command`: accepted addresses, HELO names and parameters encode to exactly one line that parses back.
//! - `sasl`: every response follows the mechanism's script, a cancel is final, secrets stay out of `Debug`.
//! - `session`: the whole `Client` against a cooperative server, garbage, time, EOF and aborts: one outcome
//!   per message before `Closed`, nothing but QUIT after it, Sent/Unknown only past an end of data.
//!
//! Each body reads its input with [`Input`]; the `*_seed` builders write inputs in the same layout, so the
//! corpus generator in `tests/fuzz_corpus.rs` never duplicates a format.

mod body;
mod command;
mod ehlo;
mod reply;
mod sasl;
mod session;

pub use body::{ReferenceEncoder, body, body_seed, compare_with_reference};
pub use command::{CommandSeed, command, command_seed};
pub use ehlo::{ehlo, ehlo_seed};
pub use reply::{into_reply_alphabet, reply, reply_seed};
pub use sasl::{SaslSeed, sasl, sasl_seed};
pub use session::{session, session_happy_seed, session_seed};

use crate::reply::Reply;
use crate::{MessageReport, Outcome, RecipientStatus};

use alloc::vec::Vec;

/// A cursor over fuzz input that turns bytes into structured choices (str0m's `Rng` idea). Reading past the
/// end yields zeros and empty slices, so every input is valid.
#[derive(Clone, Debug)]
pub struct Input<'a> {
    data: &'a [u8],
}

impl<'a> Input<'a> {
    /// A cursor at the start of `data`.
    pub fn new(data: &'a [u8]) -> Self {
        Input { data }
    }

    /// The next byte, or 0 at the end.
    pub fn byte(&mut self) -> u8 {
        match self.data.split_first() {
            Some((&b, rest)) => {
                self.data = rest;
                b
            }
            None => 0,
        }
    }

    /// A little-endian `u16` (missing bytes read as 0).
    pub fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.byte(), self.byte()])
    }

    /// A little-endian `u64` (missing bytes read as 0).
    pub fn u64(&mut self) -> u64 {
        let mut raw = [0u8; 8];
        for b in &mut raw {
            *b = self.byte();
        }
        u64::from_le_bytes(raw)
    }

    /// Up to `n` bytes.
    pub fn take(&mut self, n: usize) -> &'a [u8] {
        let (head, rest) = self.data.split_at(n.min(self.data.len()));
        self.data = rest;
        head
    }

    /// A length byte, then that many bytes.
    pub fn bytes(&mut self) -> &'a [u8] {
        let n = usize::from(self.byte());
        self.take(n)
    }

    /// Everything left.
    pub fn rest(self) -> &'a [u8] {
        self.data
    }

    /// Whether nothing is left.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }
}

/// Asserts that a report agrees with its recipients: Sent when one was delivered, Unknown when none was and
/// one is unknown, else Rejected; and only a recipient whose RCPT was accepted is delivered or unknown. The
/// `session` body and the driver's (`smtp_transport::fuzzing`) both check every report with it.
///
/// # Panics
/// When the report disagrees with itself.
pub fn assert_recipients_agree(r: &MessageReport) {
    let has = |s| r.recipients.iter().any(|x| x.status == s);
    let from_recipients = match (has(RecipientStatus::Delivered), has(RecipientStatus::Unknown)) {
        (true, _) => Outcome::Sent,
        (false, true) => Outcome::Unknown,
        (false, false) => Outcome::Rejected,
    };
    assert_eq!(r.outcome, from_recipients, "the outcome is not its recipients': {r:?}");
    for x in &r.recipients {
        if matches!(x.status, RecipientStatus::Delivered | RecipientStatus::Unknown) {
            let accepted = x.rcpt_reply.as_ref().is_some_and(Reply::is_positive);
            assert!(accepted, "{} is {:?} without an accepted RCPT: {r:?}", x.path, x.status);
        }
    }
}

/// Appends `bytes` in the layout [`Input::bytes`] reads (length byte first).
///
/// # Panics
/// When `bytes` is longer than 255.
pub fn push_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    out.push(u8::try_from(bytes.len()).expect("at most 255 bytes"));
    out.extend_from_slice(bytes);
}

/// Chunk lengths read from fuzz input: a count byte (mod 16), then that many lengths. A length of 0 stands
/// for an empty chunk followed by a one-byte chunk. No lengths at all means byte by byte.
pub(crate) fn read_chunk_lens(input: &mut Input<'_>) -> Vec<usize> {
    let n = input.byte() % 16;
    (0..n).map(|_| usize::from(input.byte())).collect()
}

/// Appends chunk lengths in the layout [`read_chunk_lens`] reads.
pub(crate) fn push_chunk_lens(out: &mut Vec<u8>, lens: &[u8]) {
    assert!(lens.len() < 16, "at most 15 chunk lengths");
    out.push(lens.len() as u8);
    out.extend_from_slice(lens);
}

/// Cuts `data` into chunks whose lengths cycle through `lens` (see [`read_chunk_lens`]). Empty chunks are
/// kept: feeding an empty chunk must change nothing.
pub(crate) fn chunks<'d>(data: &'d [u8], lens: &[usize]) -> Vec<&'d [u8]> {
    let mut out = Vec::new();
    let mut rest = data;
    let mut i = 0;
    while !rest.is_empty() {
        let len = match lens.get(i % lens.len().max(1)) {
            None => 1,
            Some(0) => {
                out.push(&rest[..0]);
                1
            }
            Some(&n) => n,
        };
        i += 1;
        let (head, tail) = rest.split_at(len.min(rest.len()));
        out.push(head);
        rest = tail;
    }
    out
}

/// Maps each byte onto `alphabet` (Stalwart smtp-proto's `into_alphabet`): mutations then stay within
/// plausible protocol text.
pub(crate) fn map_onto(data: &[u8], alphabet: &[u8]) -> Vec<u8> {
    data.iter().map(|&b| alphabet[usize::from(b) % alphabet.len()]).collect()
}

/// Whether every CR in `bytes` is followed by LF and every LF preceded by CR.
pub(crate) fn only_crlf(bytes: &[u8]) -> bool {
    bytes.iter().enumerate().all(|(i, &b)| match b {
        b'\r' => bytes.get(i + 1) == Some(&b'\n'),
        b'\n' => i > 0 && bytes[i - 1] == b'\r',
        _ => true,
    })
}

/// Whether `needle` occurs in `hay`.
pub(crate) fn contains(hay: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || hay.windows(needle.len()).any(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    #[test]
    fn chunking() {
        assert_eq!(chunks(b"abc", &[]), vec![&b"a"[..], b"b", b"c"]);
        assert_eq!(chunks(b"abcde", &[2]), vec![&b"ab"[..], b"cd", b"e"]);
        assert_eq!(chunks(b"abc", &[0, 5]), vec![&b""[..], b"a", b"bc"]);
        assert!(chunks(b"", &[3]).is_empty());
        let mut input = Input::new(&[2, 7, 0, 9]);
        assert_eq!(read_chunk_lens(&mut input), vec![7, 0]);
        assert_eq!(input.rest(), &[9]);
    }

    #[test]
    fn input_reads_past_the_end() {
        let mut input = Input::new(&[3, b'a']);
        assert_eq!(input.bytes(), b"a");
        assert!(input.is_empty());
        assert_eq!(input.byte(), 0);
        assert_eq!(input.u64(), 0);
        assert_eq!(input.bytes(), b"");
    }

    #[test]
    fn crlf_only() {
        assert!(only_crlf(b"a\r\nb\r\n"));
        assert!(!only_crlf(b"a\n"));
        assert!(!only_crlf(b"a\r"));
        assert!(!only_crlf(b"\r\r\n"));
        assert!(!only_crlf(b"\n"));
    }
}
