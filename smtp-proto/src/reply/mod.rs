//! Server replies: the [`Reply`] type and the incremental [`ReplyParser`].
//!
//! # Two layers
//!
//! Parsing server bytes happens in two steps:
//!
//! 1. **A line framer** finds the end of each line (CRLF only: a bare CR or LF is an error, RFC 5321 §2.3.8). It
//!    remembers what it has already scanned, so every input byte is looked at once, and it enforces
//!    [`ReplyConfig::max_line_len`] while the line is still incomplete: a line with no end never makes the
//!    buffer grow past the cap. Lines that arrive whole inside the caller's slice are parsed in place; only an
//!    incomplete tail is copied.
//! 2. **nom, over one complete line**, with `complete` combinators only: three digits, then `-`, a space or
//!    the end of the line, then the text, and an optional enhanced status code (RFC 3463) at the start of the
//!    text. The lines of a multi-line reply are accumulated in one reused buffer, so the work per line does not
//!    depend on how many lines came before.
//!
//! Why not nom's streaming mode over a growing buffer? Each `Incomplete` would make the caller re-parse the
//! reply from its first byte when the next chunk arrives. A server that drips a long reply a few bytes at a
//! time then costs time quadratic in the reply's size. With the framer, "incomplete" is the framer's business,
//! and a nom error always means malformed input.
//!
//! # Example
//!
//! ```
//! use smtp_proto::reply::{ReplyConfig, ReplyParser};
//!
//! let mut parser = ReplyParser::new(ReplyConfig::default());
//! assert_eq!(parser.push(b"250-mx.example.com\r\n250 PIPE").unwrap(), (28, None));
//! assert!(parser.has_partial());
//! let (used, reply) = parser.push(b"LINING\r\n550 5.1.1 no\r\n").unwrap();
//! let reply = reply.unwrap();
//! assert_eq!(used, 8); // the 550 is left for the next call
//! assert_eq!(reply.code(), 250);
//! assert_eq!(reply.lines().collect::<Vec<_>>(), [&b"mx.example.com"[..], b"PIPELINING"]);
//! ```

mod framer;
mod parse;

use alloc::{borrow::Cow, boxed::Box, string::String, vec::Vec};
use core::fmt;

use framer::Framer;
use parse::{parse_line, split_enhanced};

/// An enhanced mail system status code (RFC 3463), such as `5.7.30`.
///
/// ```
/// use smtp_proto::reply::{EnhancedCode, Reply};
///
/// let reply = Reply::new(550, "5.7.30 REQUIRETLS support required");
/// let code = reply.enhanced().unwrap();
/// assert_eq!(code, EnhancedCode { class: 5, subject: 7, detail: 30 });
/// assert_eq!(code.to_string(), "5.7.30");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct EnhancedCode {
    /// The class: 2 (success), 4 (persistent transient failure) or 5 (permanent failure).
    pub class: u8,
    /// The subject, 0 to 999.
    pub subject: u16,
    /// The detail, 0 to 999.
    pub detail: u16,
}

impl fmt::Display for EnhancedCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.class, self.subject, self.detail)
    }
}

/// The class of a reply, from the first digit of its code (RFC 5321 §4.2.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ReplyClass {
    /// `2yz`: the requested action completed.
    PositiveCompletion,
    /// `3yz`: accepted, the server waits for more (354 after DATA, 334 during AUTH).
    PositiveIntermediate,
    /// `4yz`: not done, but the same request may succeed later.
    TransientNegative,
    /// `5yz`: not done, and repeating the request as is will fail again.
    PermanentNegative,
}

impl ReplyClass {
    /// The class of a three-digit code, or `None` when its first digit is not 2 to 5.
    ///
    /// ```
    /// use smtp_proto::reply::ReplyClass;
    /// assert_eq!(ReplyClass::from_code(459), Some(ReplyClass::TransientNegative));
    /// assert_eq!(ReplyClass::from_code(199), None);
    /// ```
    pub fn from_code(code: u16) -> Option<ReplyClass> {
        match code {
            200..=299 => Some(ReplyClass::PositiveCompletion),
            300..=399 => Some(ReplyClass::PositiveIntermediate),
            400..=499 => Some(ReplyClass::TransientNegative),
            500..=599 => Some(ReplyClass::PermanentNegative),
            _ => None,
        }
    }
}

/// One complete server reply: a code, an optional enhanced status code, and one or more lines of text.
///
/// The text is kept as bytes (it may hold 8-bit data, never CR or LF); [`Reply::text_lossy`] and `Display`
/// decode it lossily. A reply of up to 46 octets of text is kept inside the value; a longer one costs one
/// heap allocation.
///
/// ```
/// use smtp_proto::reply::{Reply, ReplyClass};
///
/// let reply = Reply::new(550, "5.1.1 Mailbox \"x\" does not exist\n5.1.1 try another");
/// assert_eq!(reply.code(), 550);
/// assert_eq!(reply.class(), ReplyClass::PermanentNegative);
/// assert!(reply.is_permanent());
/// assert_eq!(reply.enhanced().unwrap().to_string(), "5.1.1");
/// assert_eq!(reply.line_count(), 2);
/// assert_eq!(reply.text(), b"Mailbox \"x\" does not exist\ntry another");
/// assert_eq!(reply.to_string(), "550 5.1.1 Mailbox \"x\" does not exist / try another");
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Reply {
    code: u16,
    enhanced: Option<EnhancedCode>,
    /// The lines' text joined with `\n`: unambiguous, since no line holds CR or LF.
    data: Storage,
}

/// Replies this short are kept inside the `Reply`: the usual `250 2.1.5 Ok`, `354 go ahead` or
/// `250 2.0.0 Ok: queued as …` cost no allocation at all.
const INLINE: usize = 46;

/// Where a reply's bytes live: inline when short, else in one allocation.
#[derive(Clone)]
enum Storage {
    Inline { len: u8, buf: [u8; INLINE] },
    Heap(Box<[u8]>),
}

impl Storage {
    fn new(text: &[u8]) -> Storage {
        if text.len() <= INLINE {
            let mut buf = [0u8; INLINE];
            buf[..text.len()].copy_from_slice(text);
            return Storage::Inline { len: text.len() as u8, buf };
        }
        Storage::Heap(text.into())
    }

    fn as_slice(&self) -> &[u8] {
        match self {
            Storage::Inline { len, buf } => &buf[..usize::from(*len)],
            Storage::Heap(b) => b,
        }
    }
}

impl PartialEq for Storage {
    fn eq(&self, other: &Self) -> bool {
        self.as_slice() == other.as_slice()
    }
}

impl Eq for Storage {}

impl Reply {
    /// Builds a reply, e.g. for tests or for a reply the client synthesizes.
    ///
    /// `text` holds the lines separated by `'\n'` (an empty `text` is one empty line). An enhanced status code
    /// at the start of a line is recognised and stripped by the same rules as the parser: its class must
    /// equal the first digit of `code`.
    ///
    /// # Panics
    ///
    /// When `code` is outside `200..=599` or `text` holds a CR (the parser never produces such a reply).
    ///
    /// ```
    /// use smtp_proto::reply::Reply;
    /// let r = Reply::new(451, "5.3.0 odd");
    /// assert_eq!(r.enhanced(), None); // class mismatch: plain text
    /// assert_eq!(r.text(), b"5.3.0 odd");
    /// ```
    pub fn new(code: u16, text: &str) -> Reply {
        assert!(ReplyClass::from_code(code).is_some(), "reply code {code} outside 200..=599");
        assert!(!text.contains('\r'), "a reply's text holds no CR");
        let class = (code / 100) as u8;
        let mut enhanced = None;
        let mut joined = Vec::with_capacity(text.len());
        for (i, line) in text.split('\n').enumerate() {
            if i > 0 {
                joined.push(b'\n');
            }
            let (esc, rest) = split_enhanced(class, line.as_bytes());
            enhanced = enhanced.or(esc);
            joined.extend_from_slice(rest);
        }
        Reply::build(code, enhanced, &joined)
    }

    /// Assembles the reply from its lines' text joined with `\n` (at most one allocation).
    fn build(code: u16, enhanced: Option<EnhancedCode>, text: &[u8]) -> Reply {
        Reply { code, enhanced, data: Storage::new(text) }
    }

    /// The three-digit reply code.
    pub fn code(&self) -> u16 {
        self.code
    }

    /// The class, from the code's first digit.
    pub fn class(&self) -> ReplyClass {
        match self.code / 100 {
            2 => ReplyClass::PositiveCompletion,
            3 => ReplyClass::PositiveIntermediate,
            4 => ReplyClass::TransientNegative,
            _ => ReplyClass::PermanentNegative,
        }
    }

    /// True for `2yz`.
    pub fn is_positive(&self) -> bool {
        self.class() == ReplyClass::PositiveCompletion
    }

    /// True for `3yz`.
    pub fn is_intermediate(&self) -> bool {
        self.class() == ReplyClass::PositiveIntermediate
    }

    /// True for `4yz`.
    pub fn is_transient(&self) -> bool {
        self.class() == ReplyClass::TransientNegative
    }

    /// True for `5yz`.
    pub fn is_permanent(&self) -> bool {
        self.class() == ReplyClass::PermanentNegative
    }

    /// The enhanced status code: the first one found at the start of a line (normally the first line's).
    /// Its class always equals the reply code's first digit.
    pub fn enhanced(&self) -> Option<EnhancedCode> {
        self.enhanced
    }

    /// Number of lines, at least 1.
    pub fn line_count(&self) -> usize {
        memchr::memchr_iter(b'\n', self.text()).count() + 1
    }

    /// The text of each line, with the code, the separator and any enhanced status code stripped. A line
    /// with only a code gives `b""`. No line holds CR or LF.
    pub fn lines(&self) -> Lines<'_> {
        Lines { rest: Some(self.text()), left: self.line_count() }
    }

    /// All lines' text joined with `b'\n'`.
    pub fn text(&self) -> &[u8] {
        self.data.as_slice()
    }

    /// [`Reply::text`] decoded as UTF-8, invalid sequences replaced by U+FFFD.
    pub fn text_lossy(&self) -> Cow<'_, str> {
        String::from_utf8_lossy(self.text())
    }
}

/// The lines of a [`Reply`], from [`Reply::lines`].
#[derive(Clone, Debug)]
pub struct Lines<'a> {
    /// What is left, `None` once the last line was taken.
    rest: Option<&'a [u8]>,
    left: usize,
}

impl<'a> Iterator for Lines<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        let rest = self.rest?;
        self.left -= 1;
        match memchr::memchr(b'\n', rest) {
            Some(i) => {
                self.rest = Some(&rest[i + 1..]);
                Some(&rest[..i])
            }
            None => {
                self.rest = None;
                Some(rest)
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.left, Some(self.left))
    }
}

impl<'a> DoubleEndedIterator for Lines<'a> {
    fn next_back(&mut self) -> Option<&'a [u8]> {
        let rest = self.rest?;
        self.left -= 1;
        match memchr::memrchr(b'\n', rest) {
            Some(i) => {
                self.rest = Some(&rest[..i]);
                Some(&rest[i + 1..])
            }
            None => {
                self.rest = None;
                Some(rest)
            }
        }
    }
}

impl ExactSizeIterator for Lines<'_> {}

/// Writes bytes as lossy UTF-8, with control characters (bare CR/LF included) escaped so that one reply stays
/// one line of output.
fn write_lossy(f: &mut fmt::Formatter<'_>, bytes: &[u8]) -> fmt::Result {
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            if c.is_control() && c != '\t' {
                write!(f, "{}", c.escape_default())?;
            } else {
                fmt::Write::write_char(f, c)?;
            }
        }
        if !chunk.invalid().is_empty() {
            fmt::Write::write_char(f, char::REPLACEMENT_CHARACTER)?;
        }
    }
    Ok(())
}

/// `550 5.1.1 first line / second line`: lossy UTF-8, control characters escaped.
impl fmt::Display for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.code)?;
        if let Some(esc) = self.enhanced {
            write!(f, " {esc}")?;
        }
        for (i, line) in self.lines().enumerate() {
            if i > 0 {
                f.write_str(" /")?;
            }
            if !line.is_empty() || i > 0 {
                f.write_str(" ")?;
            }
            write_lossy(f, line)?;
        }
        Ok(())
    }
}

impl fmt::Debug for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Reply")
            .field("code", &self.code)
            .field("enhanced", &self.enhanced)
            .field("lines", &LinesDebug(self))
            .finish()
    }
}

/// Lists a reply's lines, decoded lossily, without collecting them.
struct LinesDebug<'a>(&'a Reply);

impl fmt::Debug for LinesDebug<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.0.lines().map(String::from_utf8_lossy)).finish()
    }
}

/// Limits and leniency switches for [`ReplyParser`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReplyConfig {
    /// Longest accepted line, CRLF included. Default 16 KiB: far above RFC 5321's 512, enough for a
    /// 12 288-octet SASL challenge (RFC 4954 §4).
    pub max_line_len: usize,
    /// Most lines in one reply. Default 1000.
    pub max_lines: usize,
    /// COMPAT: accept a bare LF as a line end. Default false: only CRLF ends a line and a bare LF is
    /// [`ParseError::BareLf`] (RFC 5321 §2.3.8). A CR not followed by LF is [`ParseError::BareCr`] in either
    /// mode: reply text never holds CR or LF.
    pub allow_bare_lf: bool,
    /// COMPAT: accept lines with different codes in one reply; the reply takes the LAST line's code. Default
    /// false: a mismatch is [`ParseError::CodeMismatch`]. In this mode each line's enhanced code is checked
    /// against that line's own code, and [`Reply::enhanced`] is dropped if its class differs from the final
    /// code's first digit.
    pub allow_code_mismatch: bool,
}

impl Default for ReplyConfig {
    fn default() -> Self {
        ReplyConfig {
            max_line_len: 16 * 1024,
            max_lines: 1000,
            allow_bare_lf: false,
            allow_code_mismatch: false,
        }
    }
}

/// Why server bytes could not be parsed as replies. Every one is fatal for the connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParseError {
    /// A line passed [`ReplyConfig::max_line_len`].
    LineTooLong,
    /// A LF not preceded by CR (in the default strict mode).
    BareLf,
    /// A CR not followed by LF.
    BareCr,
    /// A reply passed [`ReplyConfig::max_lines`].
    TooManyLines,
    /// A line does not start with three digits followed by `-`, a space or the end of the line.
    Malformed,
    /// A well-formed code whose first digit is not 2 to 5.
    InvalidCode(u16),
    /// A line of a multi-line reply carries another code than the reply's first line.
    CodeMismatch {
        /// The code of the reply's first line.
        first: u16,
        /// The differing code.
        line: u16,
    },
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParseError::LineTooLong => f.write_str("reply line too long"),
            ParseError::BareLf => f.write_str("a line feed without a carriage return in a reply"),
            ParseError::BareCr => f.write_str("a carriage return without a line feed in a reply"),
            ParseError::TooManyLines => f.write_str("reply has too many lines"),
            ParseError::Malformed => f.write_str("malformed reply line"),
            ParseError::InvalidCode(code) => write!(f, "invalid reply code {code:03}"),
            ParseError::CodeMismatch { first, line } => {
                write!(f, "reply code {line:03} inside a reply that started with {first:03}")
            }
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for ParseError {}

/// Turns server bytes, fed in pieces of any size, into [`Reply`] values.
///
/// ```
/// use smtp_proto::reply::{ParseError, ReplyConfig, ReplyParser};
///
/// let mut parser = ReplyParser::new(ReplyConfig::default());
/// let input = b"220-mx.example.com ESMTP\r\n220 ready\r\n";
/// // Byte by byte: nothing until the last byte.
/// for &b in &input[..input.len() - 1] {
///     assert_eq!(parser.push(&[b]).unwrap(), (1, None));
/// }
/// let (_, greeting) = parser.push(b"\n").unwrap();
/// assert_eq!(greeting.unwrap().lines().next(), Some(&b"mx.example.com ESMTP"[..]));
///
/// // Errors are fatal and sticky.
/// assert_eq!(parser.push(b"25O ok\r\n"), Err(ParseError::Malformed));
/// assert_eq!(parser.push(b"250 ok\r\n"), Err(ParseError::Malformed));
/// ```
#[derive(Debug)]
pub struct ReplyParser {
    framer: Framer,
    acc: Accumulator,
    error: Option<ParseError>,
}

/// The lines of the reply in progress.
#[derive(Debug)]
struct Accumulator {
    max_lines: usize,
    allow_code_mismatch: bool,
    /// Code of the first line; 0 when no line is pending.
    first_code: u16,
    enhanced: Option<EnhancedCode>,
    /// Lines so far, joined with `\n`; reused between replies.
    text: Vec<u8>,
    /// Lines so far.
    lines: usize,
}

impl Accumulator {
    fn is_empty(&self) -> bool {
        self.first_code == 0
    }

    fn reset(&mut self) {
        self.first_code = 0;
        self.enhanced = None;
        self.text.clear();
        self.lines = 0;
    }

    /// Adds one complete line; returns the reply when the line ends it.
    fn line(&mut self, raw: &[u8]) -> Result<Option<Reply>, ParseError> {
        let line = parse_line(raw)?;
        if ReplyClass::from_code(line.code).is_none() {
            return Err(ParseError::InvalidCode(line.code));
        }
        if !self.is_empty() && line.code != self.first_code && !self.allow_code_mismatch {
            return Err(ParseError::CodeMismatch { first: self.first_code, line: line.code });
        }
        let (esc, text) = split_enhanced((line.code / 100) as u8, line.text);
        if self.is_empty() {
            if line.last {
                // Fast path: a one-line reply goes straight from the input to its allocation.
                return Ok(Some(Reply::build(line.code, esc, text)));
            }
            self.first_code = line.code;
        } else {
            self.text.push(b'\n');
        }
        self.enhanced = self.enhanced.or(esc);
        self.text.extend_from_slice(text);
        self.lines += 1;
        if !line.last {
            if self.lines >= self.max_lines {
                // This line is the last allowed one, yet another must follow.
                return Err(ParseError::TooManyLines);
            }
            return Ok(None);
        }
        // In lenient mode the last line's code wins; keep the enhanced code only if it still agrees.
        let enhanced = self.enhanced.filter(|e| u16::from(e.class) == line.code / 100);
        let reply = Reply::build(line.code, enhanced, &self.text);
        self.reset();
        Ok(Some(reply))
    }
}

impl ReplyParser {
    /// A parser with the given limits, waiting for the first byte of a reply.
    pub fn new(config: ReplyConfig) -> Self {
        ReplyParser {
            framer: Framer::new(config.max_line_len, config.allow_bare_lf),
            acc: Accumulator {
                max_lines: config.max_lines,
                allow_code_mismatch: config.allow_code_mismatch,
                first_code: 0,
                enhanced: None,
                text: Vec::new(),
                lines: 0,
            },
            error: None,
        }
    }

    /// Feeds server bytes.
    ///
    /// Consumes bytes up to and including the end of the FIRST complete reply and returns it:
    /// `Ok((consumed, Some(reply)))`, with `data[consumed..]` left untouched for the caller (it may feed them
    /// again, or, after a STARTTLS 220, treat them as an injection). When no reply completes, all bytes are
    /// consumed and the partial tail is buffered: `Ok((data.len(), None))`.
    ///
    /// An `Err` is fatal: the parser is poisoned and every later call returns the same error.
    pub fn push(&mut self, data: &[u8]) -> Result<(usize, Option<Reply>), ParseError> {
        if let Some(e) = self.error {
            return Err(e);
        }
        let result = self.push_inner(data);
        if let Err(e) = result {
            self.error = Some(e);
        }
        result
    }

    fn push_inner(&mut self, data: &[u8]) -> Result<(usize, Option<Reply>), ParseError> {
        let mut off = 0;
        loop {
            let (n, line) = self.framer.next_line(&data[off..])?;
            off += n;
            let Some(line) = line else {
                return Ok((off, None));
            };
            if let Some(reply) = self.acc.line(line)? {
                return Ok((off, Some(reply)));
            }
            if off == data.len() {
                return Ok((off, None));
            }
        }
    }

    /// True when bytes of an incomplete reply are buffered.
    pub fn has_partial(&self) -> bool {
        self.framer.has_partial() || !self.acc.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::{string::ToString, vec};

    fn parse_one(input: &[u8], config: ReplyConfig) -> Result<(usize, Option<Reply>), ParseError> {
        ReplyParser::new(config).push(input)
    }

    fn lines_of(r: &Reply) -> Vec<Vec<u8>> {
        r.lines().map(<[u8]>::to_vec).collect()
    }

    #[test]
    fn replies_table() {
        type Case = (&'static [u8], u16, Option<(u8, u16, u16)>, &'static [&'static [u8]]);
        let cases: &[Case] = &[
            (b"250\r\n", 250, None, &[b""]),
            (b"250 \r\n", 250, None, &[b""]),
            (b"334\r\n", 334, None, &[b""]),
            (b"250-a\r\n250-b\r\n250 c\r\n", 250, None, &[b"a", b"b", b"c"]),
            (b"250-\r\n250\r\n", 250, None, &[b"", b""]),
            (
                b"250-First line\r\n250-Second line\r\n250-234 Text beginning with numbers\r\n250 The last line\r\n",
                250,
                None,
                &[b"First line", b"Second line", b"234 Text beginning with numbers", b"The last line"],
            ),
            (b"550 5.1.1 Mailbox \"x\" does not exist\r\n", 550, Some((5, 1, 1)), &[b"Mailbox \"x\" does not exist"]),
            (b"550-5.7.1 first\r\n550 5.7.1 second\r\n", 550, Some((5, 7, 1)), &[b"first", b"second"]),
            (b"451 5.3.0 odd\r\n", 451, None, &[b"5.3.0 odd"]),
            (b"550 5.7.30 REQUIRETLS support required\r\n", 550, Some((5, 7, 30)), &[b"REQUIRETLS support required"]),
            (b"550-banner\r\n550 5.1.1 late\r\n", 550, Some((5, 1, 1)), &[b"banner", b"late"]),
            (b"250 caf\xc3\xa9 \xff\r\n", 250, None, &[b"caf\xc3\xa9 \xff"]),
            (b"299 fine\r\n", 299, None, &[b"fine"]),
            (b"269 odd second digit\r\n", 269, None, &[b"odd second digit"]),
        ];
        for &(input, code, esc, lines) in cases {
            let (n, reply) = parse_one(input, ReplyConfig::default()).unwrap();
            let reply = reply.unwrap_or_else(|| panic!("no reply for {input:?}"));
            assert_eq!(n, input.len());
            assert_eq!(reply.code(), code);
            assert_eq!(
                reply.enhanced(),
                esc.map(|(class, subject, detail)| EnhancedCode { class, subject, detail })
            );
            let want: Vec<Vec<u8>> = lines.iter().map(|l| l.to_vec()).collect();
            assert_eq!(lines_of(&reply), want, "{input:?}");
            assert_eq!(reply.line_count(), lines.len());
            assert_eq!(reply.text(), lines.join(&b'\n').as_slice());
        }
    }

    #[test]
    fn errors_table() {
        let strict = ReplyConfig::default();
        let cases: &[(&[u8], ParseError)] = &[
            (b"25O ok\r\n", ParseError::Malformed),
            (b"250Xok\r\n", ParseError::Malformed),
            (b"2500 ok\r\n", ParseError::Malformed),
            (b"\r\n", ParseError::Malformed),
            (b"250-a\r\n\r\n", ParseError::Malformed),
            (b"199 hmm\r\n", ParseError::InvalidCode(199)),
            (b"250 ok\n250 second\r\n", ParseError::BareLf),
            (b"250 ok\n", ParseError::BareLf),
            (b"250 a\rb\r\n", ParseError::BareCr),
            (b"099 x\r\n", ParseError::InvalidCode(99)),
            (b"600 x\r\n", ParseError::InvalidCode(600)),
            (b"250-a\r\n550 b\r\n", ParseError::CodeMismatch { first: 250, line: 550 }),
        ];
        for &(input, err) in cases {
            assert_eq!(parse_one(input, strict), Err(err), "{input:?}");
        }
    }

    #[test]
    fn lenient_modes() {
        let lenient = ReplyConfig { allow_code_mismatch: true, ..ReplyConfig::default() };
        let (_, r) = parse_one(b"250-a\r\n550 b\r\n", lenient).unwrap();
        let r = r.unwrap();
        assert_eq!(r.code(), 550);
        assert_eq!(lines_of(&r), vec![b"a".to_vec(), b"b".to_vec()]);
        // The first line's enhanced code does not match the final class: dropped.
        let (_, r) = parse_one(b"250-2.0.0 a\r\n550 b\r\n", lenient).unwrap();
        assert_eq!(r.unwrap().enhanced(), None);

        let bare = ReplyConfig { allow_bare_lf: true, ..ReplyConfig::default() };
        let (n, r) = parse_one(b"250 ok\n250 second\r\n", bare).unwrap();
        assert_eq!((n, lines_of(&r.unwrap())), (7, vec![b"ok".to_vec()]));
        let (n, r) = parse_one(b"250-a\n250 b\r\n", bare).unwrap();
        assert_eq!((n, lines_of(&r.unwrap())), (13, vec![b"a".to_vec(), b"b".to_vec()]));
        // Strict: a bare LF fails at once, before the rest of the line arrives.
        assert_eq!(parse_one(b"250 ok\n", ReplyConfig::default()), Err(ParseError::BareLf));
    }

    #[test]
    fn max_lines_boundary() {
        let config = ReplyConfig { max_lines: 3, ..ReplyConfig::default() };
        let (_, r) = parse_one(b"250-a\r\n250-b\r\n250 c\r\n", config).unwrap();
        assert_eq!(r.unwrap().line_count(), 3);
        assert_eq!(parse_one(b"250-a\r\n250-b\r\n250-c\r\n", config), Err(ParseError::TooManyLines));
        let one = ReplyConfig { max_lines: 1, ..ReplyConfig::default() };
        assert_eq!(parse_one(b"250-a\r\n", one), Err(ParseError::TooManyLines));
        assert!(parse_one(b"250 a\r\n", one).unwrap().1.is_some());
    }

    #[test]
    fn accumulator_reused_between_replies() {
        let mut p = ReplyParser::new(ReplyConfig::default());
        let input = b"250-a\r\n250 b\r\n221-x\r\n221 y\r\n";
        let (n, r) = p.push(input).unwrap();
        assert_eq!((n, r.unwrap().code()), (14, 250));
        assert!(!p.has_partial());
        let (n, r) = p.push(&input[14..]).unwrap();
        let r = r.unwrap();
        assert_eq!((n, r.code()), (14, 221));
        assert_eq!(lines_of(&r), vec![b"x".to_vec(), b"y".to_vec()]);
    }

    #[test]
    fn display_and_debug() {
        let cases: &[(Reply, &str)] = &[
            (Reply::new(250, ""), "250"),
            (Reply::new(250, "ok"), "250 ok"),
            (Reply::new(550, "5.1.1 no\n5.1.1 really"), "550 5.1.1 no / really"),
            (Reply::new(250, "a\n\nc"), "250 a /  / c"),
            (Reply::new(250, "x\ty\u{1b}"), "250 x\ty\\u{1b}"),
        ];
        for (reply, want) in cases {
            assert_eq!(reply.to_string(), *want);
        }
        let (_, r) = parse_one(b"250 caf\xc3\xa9\xff\r\n", ReplyConfig::default()).unwrap();
        let r = r.unwrap();
        assert_eq!(r.to_string(), "250 caf\u{e9}\u{fffd}");
        assert_eq!(r.text_lossy(), "caf\u{e9}\u{fffd}");
        let dbg = alloc::format!("{r:?}");
        assert!(dbg.contains("code: 250") && dbg.contains("caf\u{e9}\u{fffd}"), "{dbg}");
    }

    #[test]
    fn reply_new_matches_parser() {
        let (_, parsed) =
            parse_one(b"550-5.7.1 first\r\n550 5.7.1 second\r\n", ReplyConfig::default()).unwrap();
        assert_eq!(parsed.unwrap(), Reply::new(550, "5.7.1 first\n5.7.1 second"));
        let r = Reply::new(250, "a\n");
        assert_eq!(r.line_count(), 2);
        assert_eq!(r.lines().next_back(), Some(&b""[..]));
        assert!(Reply::new(354, "go").is_intermediate());
        assert!(Reply::new(421, "bye").is_transient());
        assert!(Reply::new(200, "").is_positive());
    }

    #[test]
    #[should_panic(expected = "outside 200..=599")]
    fn reply_new_rejects_invalid_code() {
        let _ = Reply::new(199, "x");
    }

    #[test]
    fn parse_error_display() {
        assert_eq!(ParseError::InvalidCode(99).to_string(), "invalid reply code 099");
        assert_eq!(
            ParseError::CodeMismatch { first: 250, line: 550 }.to_string(),
            "reply code 550 inside a reply that started with 250"
        );
    }
}
