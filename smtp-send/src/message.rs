//! The message to send: read from a file or stdin and scanned once (8-bit and NUL octets, line lengths,
//! size); its header read for the default reverse-path (`From:`, or `Sender:`) and for UTF-8 (SMTPUTF8).

use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::{Path, PathBuf};

use mail_parser::{HeaderName, HeaderValue, MessageParser};
use smtp_proto::body::{BodyScan, CrlfNormalizer};
use smtp_proto::command::BodyType;

/// How much of the message is searched for the header block.
const HEADER_LIMIT: usize = 256 * 1024;

/// Messages up to this size are held in memory once instead of being read again for every copy.
const IN_MEMORY_LIMIT: usize = 4 * 1024 * 1024;

/// The longest line SMTP carries without BINARYMIME: 1,000 octets with the CRLF (RFC 5321 §4.5.3.1.6).
pub const MAX_LINE: u64 = 998;

/// Where the message's bytes come from.
#[derive(Debug)]
enum Source {
    /// A file larger than `IN_MEMORY_LIMIT`, streamed again for each copy sent: never read whole into
    /// memory.
    File(PathBuf),
    /// Standard input (it cannot be read twice) or a small file, read once into memory.
    Memory(Vec<u8>),
}

/// The envelope sender the message's header names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HeaderSender {
    /// The field it came from: `"From:"`, or `"Sender:"` when From: names several mailboxes.
    pub field: &'static str,
    /// The address (addr-spec), comments and display names removed.
    pub address: String,
}

/// What the header says, read once when the message is loaded.
#[derive(Clone, Debug)]
struct Header {
    /// The default reverse-path, or why the header names none without guessing.
    sender: Result<HeaderSender, String>,
    /// The first header field that holds an octet above 0x7F.
    eight_bit_field: Option<String>,
}

/// A body the drivers can read again from its start.
pub trait ReadSeek: Read + io::Seek + Send {}
impl<T: Read + io::Seek + Send> ReadSeek for T {}

/// A message ready to be sent any number of times.
#[derive(Debug)]
pub struct Message {
    source: Source,
    scan: BodyScan,
    header: Header,
}

/// Why the message cannot be used. `smtp-send` exits with 65 for these, before connecting.
#[derive(Debug)]
pub struct MessageError(pub String);

impl std::fmt::Display for MessageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for MessageError {}

impl Message {
    /// Reads `path` (`None` or `-`: stdin) once to scan it.
    pub fn load(path: Option<&Path>) -> Result<Message, MessageError> {
        match path {
            None => Message::from_stdin(),
            Some(p) if p == Path::new("-") => Message::from_stdin(),
            Some(p) => {
                let unreadable = |e: io::Error| MessageError(format!("cannot read {}: {e}", p.display()));
                let mut file = BufReader::with_capacity(64 * 1024, File::open(p).map_err(unreadable)?);
                let mut scan = BodyScan::new();
                // Kept whole while small, so that `--count` does not reopen and reread the file per copy;
                // a larger message is streamed from the file each time, never held in memory.
                let small = std::fs::metadata(p).is_ok_and(|m| m.len() <= IN_MEMORY_LIMIT as u64);
                let mut kept = Vec::new();
                let mut buf = vec![0; 64 * 1024];
                loop {
                    let n = file.read(&mut buf).map_err(unreadable)?;
                    if n == 0 {
                        break;
                    }
                    scan.update(&buf[..n]);
                    if small || kept.len() < HEADER_LIMIT {
                        kept.extend_from_slice(&buf[..n]);
                    }
                }
                let header = read_header(&kept);
                let source = if small && scan.len() <= IN_MEMORY_LIMIT as u64 {
                    Source::Memory(kept)
                } else {
                    Source::File(p.to_owned())
                };
                Ok(Message { source, scan, header })
            }
        }
    }

    fn from_stdin() -> Result<Message, MessageError> {
        let mut data = Vec::new();
        io::stdin()
            .lock()
            .read_to_end(&mut data)
            .map_err(|e| MessageError(format!("cannot read the message from stdin: {e}")))?;
        Ok(Message::from_bytes(data))
    }

    /// A message held in memory.
    pub fn from_bytes(data: Vec<u8>) -> Message {
        let mut scan = BodyScan::new();
        scan.update(&data);
        let header = read_header(&data);
        Message { source: Source::Memory(data), scan, header }
    }

    /// The envelope sender named by the header (From:, or Sender: when From: names several mailboxes), or
    /// why the header names none that can be used without guessing (the caller asks for `--from`).
    pub fn header_sender(&self) -> Result<&HeaderSender, &str> {
        self.header.sender.as_ref().map_err(String::as_str)
    }

    /// The name of the first header field holding octets above 0x7F: such a header needs SMTPUTF8
    /// (RFC 6532 §3, RFC 6531 §3.4). `None` for an ASCII header.
    pub fn eight_bit_header_field(&self) -> Option<&str> {
        self.header.eight_bit_field.as_deref()
    }

    /// Why the message can only travel as `BODY=BINARYMIME` over BDAT (RFC 3030): NUL octets, or a line
    /// over [`MAX_LINE`] octets. `None` when DATA (or BDAT with a text body) can carry it.
    pub fn binary_reason(&self) -> Option<String> {
        let long = self.scan.longest_line();
        match (self.scan.has_nul(), long > MAX_LINE) {
            (false, false) => None,
            (true, false) => Some("it holds NUL octets".into()),
            (false, true) => Some(format!(
                "it has a line of {long} octets, over the {MAX_LINE} SMTP allows (RFC 5321 §4.5.3.1.6)"
            )),
            (true, true) => Some(format!(
                "it holds NUL octets and a line of {long} octets, over the {MAX_LINE} SMTP allows \
                 (RFC 5321 §4.5.3.1.6)"
            )),
        }
    }

    /// The body type to declare: BINARYMIME when [`binary_reason`](Self::binary_reason) says so, 8BITMIME
    /// when any octet is above 0x7F, else 7BIT.
    pub fn body_type(&self) -> BodyType {
        if self.binary_reason().is_some() {
            BodyType::BinaryMime
        } else if self.scan.has_8bit() {
            BodyType::EightBitMime
        } else {
            BodyType::SevenBit
        }
    }

    /// The size to declare with SIZE=: never below what goes on the wire (RFC 1870 §4), dot-stuffing
    /// excluded. A text body is sent with CRLF line ends, plus the CRLF that DATA appends to a last line
    /// without one (the same 2 octets over the exact BDAT size, which is allowed); a BINARYMIME body goes
    /// unchanged.
    pub fn size(&self) -> u64 {
        if self.body_type() == BodyType::BinaryMime {
            self.scan.len()
        } else if self.scan.ends_with_line_end() {
            self.scan.crlf_len()
        } else {
            self.scan.crlf_len() + 2
        }
    }

    /// A fresh reader over the message's bytes.
    /// It can seek, so the drivers read it again for recipients that need another transaction.
    pub fn open(&self) -> io::Result<Box<dyn ReadSeek + '_>> {
        Ok(match &self.source {
            Source::File(p) => Box::new(BufReader::with_capacity(64 * 1024, File::open(p)?)),
            Source::Memory(d) => Box::new(io::Cursor::new(&d[..])),
        })
    }

    /// The bytes, when the message is in memory (stdin), for the async sender.
    pub fn bytes(&self) -> io::Result<std::borrow::Cow<'_, [u8]>> {
        match &self.source {
            Source::Memory(d) => Ok(std::borrow::Cow::Borrowed(d)),
            Source::File(p) => std::fs::read(p).map(std::borrow::Cow::Owned),
        }
    }
}

/// Reads the header block at the start of `data` (up to [`HEADER_LIMIT`] octets).
fn read_header(data: &[u8]) -> Header {
    let data = &data[..data.len().min(HEADER_LIMIT)];
    // Line ends as the client will send them (bare CR and LF become CRLF), so that the parser and the
    // server see the same fields.
    let mut header = Vec::with_capacity(header_len(data) + 64);
    let mut normalizer = CrlfNormalizer::default();
    normalizer.encode(&data[..header_len(data)], &mut header);
    normalizer.finish(&mut header);
    Header { sender: header_sender(&header), eight_bit_field: eight_bit_field(&header) }
}

/// The length of the header block, its empty line included: up to the first line that is empty, with line
/// ends counted as the encoders count them (CRLF, bare CR, bare LF). All of `data` without an empty line.
fn header_len(data: &[u8]) -> usize {
    let end_at = |j: usize| {
        if data[j] == b'\r' && data.get(j + 1) == Some(&b'\n') { j + 2 } else { j + 1 }
    };
    let mut i = 0;
    loop {
        // `i` is at the start of a line.
        match data.get(i) {
            None => return data.len(),
            Some(b'\r' | b'\n') => return end_at(i),
            Some(_) => {}
        }
        match data[i..].iter().position(|&b| b == b'\r' || b == b'\n') {
            None => return data.len(),
            Some(off) => i = end_at(i + off),
        }
    }
}

/// The name of the first field of a CRLF-normalised header block that holds an octet above 0x7F.
fn eight_bit_field(header: &[u8]) -> Option<String> {
    let mut field: &[u8] = b"";
    for line in header.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if !line.starts_with(b" ") && !line.starts_with(b"\t") {
            field = line.split(|&b| b == b':').next().unwrap_or(line);
        }
        if !line.is_ascii() {
            let name = String::from_utf8_lossy(&field[..field.len().min(64)]);
            return Some(name.trim().to_owned());
        }
    }
    None
}

/// The envelope sender a CRLF-normalised header block names: the one mailbox of its one From: field, else
/// (several mailboxes, RFC 5322 §3.6.2) the one mailbox of its one Sender: field. Anything else is
/// ambiguous: the error says why, and the caller asks for `--from`.
///
/// mail-parser reads the fields (comments, quoted strings, groups, encoded words, obsolete syntax); the
/// bytes of the field actually used must be UTF-8 (RFC 6532), or at least hold the address verbatim:
/// otherwise the address would be a guess (mail-parser decodes invalid UTF-8 lossily).
pub fn header_sender(header: &[u8]) -> Result<HeaderSender, String> {
    let parsed = MessageParser::default()
        .parse_headers(header)
        .ok_or_else(|| "the message has no header".to_owned())?;
    let fields =
        |want: HeaderName<'static>| parsed.headers().iter().filter(|h| h.name == want).collect::<Vec<_>>();
    let from = fields(HeaderName::From);
    let from = match from[..] {
        [] => return Err("the message has no From: field".into()),
        [one] => one,
        _ => {
            return Err(format!("the message has {} From: fields (RFC 5322 §3.6 allows one)", from.len()));
        }
    };
    let raw = |h: &mail_parser::Header<'_>| {
        header.get(h.offset_start as usize..h.offset_end as usize).unwrap_or(b"")
    };
    let from_boxes = mailboxes(from);
    if let [only] = &from_boxes[..] {
        return address_of("From:", raw(from), only);
    }
    // Zero mailboxes (an empty group) or several: Sender: says who sends (RFC 5322 §3.6.2).
    let sender = fields(HeaderName::Sender);
    let sender = match sender[..] {
        [one] => one,
        [] if from_boxes.is_empty() => {
            return Err("the From: field names no mailbox and there is no Sender: field".into());
        }
        [] => {
            return Err(format!(
                "the From: field names {} mailboxes and no Sender: field says which one sends \
                 (RFC 5322 §3.6.2)",
                from_boxes.len()
            ));
        }
        _ => {
            return Err(format!(
                "the message has {} Sender: fields (RFC 5322 §3.6 allows one)",
                sender.len()
            ));
        }
    };
    match &mailboxes(sender)[..] {
        [only] => address_of("Sender:", raw(sender), only),
        other => Err(format!("the Sender: field names {} mailboxes, not one", other.len())),
    }
}

/// The mailboxes a From: or Sender: field names, groups flattened (RFC 6854 allows groups in From:).
fn mailboxes<'a, 'x>(h: &'a mail_parser::Header<'x>) -> Vec<&'a mail_parser::Addr<'x>> {
    match &h.value {
        HeaderValue::Address(a) => a.iter().collect(),
        _ => Vec::new(),
    }
}

/// The address of one mailbox read from the field whose raw value is `raw`.
fn address_of(
    field: &'static str,
    raw: &[u8],
    mailbox: &mail_parser::Addr<'_>,
) -> Result<HeaderSender, String> {
    let address = mailbox.address().map(str::trim).unwrap_or("");
    if address.is_empty() {
        return Err(format!("the {field} field holds no address"));
    }
    if std::str::from_utf8(raw).is_err() && !contains(raw, address.as_bytes()) {
        return Err(format!(
            "the {field} field is not valid UTF-8 (RFC 6532; Latin-1, say), so its address cannot be \
             read without guessing"
        ));
    }
    Ok(HeaderSender { field, address: address.to_owned() })
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && hay.windows(needle.len()).any(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sender(header: &[u8]) -> Result<String, String> {
        read_header(header).sender.map(|s| s.address)
    }

    #[test]
    fn from_forms() {
        for (header, want) in [
            (&b"From: alice@example.org\r\n\r\nbody"[..], "alice@example.org"),
            (b"Subject: x\nFROM: \"Alice A.\" <alice@example.org>\n\n", "alice@example.org"),
            (b"From: Alice\r\n <alice@example.org>\r\nTo: b\r\n\r\n", "alice@example.org"),
            // A comment after the address (RFC 5322 §3.2.2): never the address.
            (b"From: <alice@example.org> (on behalf of <ceo@bank.example>)\r\n\r\n", "alice@example.org"),
            (b"From: a@b (Alice)\r\n\r\n", "a@b"),
            // A quoted display name that looks like an address.
            (b"From: \"ceo@bank.example\" <alice@example.org>\r\n\r\n", "alice@example.org"),
            (b"From: \"Alice <ceo@bank.example>\" <alice@example.org>\r\n\r\n", "alice@example.org"),
            // An encoded word (RFC 2047) in the display name.
            (b"From: =?utf-8?q?ceo=40bank.example?= <alice@example.org>\r\n\r\n", "alice@example.org"),
            // Comments inside the addr-spec (obsolete syntax, RFC 5322 §4.4).
            (
                b"From: Pete(A nice \\) chap) <pete(his account)@silly.test(his host)>\r\n\r\n",
                "pete@silly.test",
            ),
            // A quoted local part in angle brackets.
            (b"From: Alice <\"a b\"@example.org>\r\n\r\n", "\"a b\"@example.org"),
            // A group of one (RFC 6854).
            (b"From: Team: alice@example.org;\r\n\r\n", "alice@example.org"),
            // UTF-8 (RFC 6532).
            (b"From: J\xc3\xb6rg <j\xc3\xb6rg@example.org>\r\n\r\n", "j\u{f6}rg@example.org"),
            // Latin-1 outside the address: the address is read verbatim.
            (b"From: J\xf6rg <joerg@example.org>\r\n\r\n", "joerg@example.org"),
            // Bare CR line ends, as the client sends them (CRLF).
            (b"Subject: x\rFrom: a@x.test\r\rbody", "a@x.test"),
        ] {
            assert_eq!(sender(header).as_deref(), Ok(want), "{:?}", String::from_utf8_lossy(header));
        }
    }

    #[test]
    fn several_from_mailboxes_use_sender() {
        let h = b"From: Alice <alice@example.org>, Bob <bob@example.org>\r\n\
                  Sender: Carol <carol@example.org> (secretary)\r\n\r\n";
        let s = read_header(h).sender.unwrap();
        assert_eq!((s.field, s.address.as_str()), ("Sender:", "carol@example.org"));
        let h = b"From: undisclosed:;\r\nSender: carol@example.org\r\n\r\n";
        assert_eq!(sender(h).as_deref(), Ok("carol@example.org"));
        // One From: mailbox: From: decides, whatever Sender: says.
        let h = b"From: alice@example.org\r\nSender: carol@example.org\r\n\r\n";
        let s = read_header(h).sender.unwrap();
        assert_eq!((s.field, s.address.as_str()), ("From:", "alice@example.org"));
    }

    #[test]
    fn ambiguous_or_missing_senders_are_errors() {
        for (header, says) in [
            (&b"To: b@x\r\n\r\nFrom: not@header\r\n"[..], "no From: field"),
            (b"", "no"),
            (b"From: <>\r\n\r\n", "From:"),
            (b"From: alice@example.org, bob@example.org\r\n\r\n", "2 mailboxes"),
            (b"From: alice@example.org\r\nFrom: bob@example.org\r\n\r\n", "2 From: fields"),
            (b"From: a@x.test, b@x.test\r\nSender: c@x.test, d@x.test\r\n\r\n", "Sender: field names 2"),
            (b"From: a@x.test, b@x.test\r\nSender: c@x.test\r\nSender: d@x.test\r\n\r\n", "2 Sender: fields"),
            (b"From: undisclosed:;\r\n\r\n", "no mailbox"),
            (b"From: (only a comment)\r\n\r\n", "no address"),
            // Latin-1 in the address itself: never decoded into U+FFFD.
            (b"From: j\xf6rg@example.org\r\n\r\n", "not valid UTF-8"),
            (b"From: J\xf6rg <j\xf6rg@example.org>\r\n\r\n", "not valid UTF-8"),
        ] {
            let e = sender(header).expect_err(&String::from_utf8_lossy(header));
            assert!(e.contains(says), "{:?}: {e}", String::from_utf8_lossy(header));
        }
    }

    #[test]
    fn eight_bit_header_fields() {
        let m = Message::from_bytes(b"From: a@x.test\nSubject: caf\xc3\xa9\n\nbody\n".to_vec());
        assert_eq!(m.eight_bit_header_field(), Some("Subject"));
        let m = Message::from_bytes(
            b"From: a@x.test\nSubject: x\n  caf\xc3\xa9\nTo: b@x.test\n\nbody\n".to_vec(),
        );
        assert_eq!(m.eight_bit_header_field(), Some("Subject"));
        // 8-bit in the body only: 8BITMIME, not SMTPUTF8.
        let m = Message::from_bytes(b"From: a@x.test\n\ncaf\xc3\xa9\n".to_vec());
        assert_eq!(m.eight_bit_header_field(), None);
        assert_eq!(m.body_type(), BodyType::EightBitMime);
    }

    #[test]
    fn header_len_counts_every_line_end() {
        assert_eq!(header_len(b"A: b\r\n\r\nbody"), 8);
        assert_eq!(header_len(b"A: b\n\nbody"), 6);
        assert_eq!(header_len(b"A: b\r\rbody"), 6);
        assert_eq!(header_len(b"\r\nbody"), 2);
        assert_eq!(header_len(b"A: b\r\n"), 6);
    }

    #[test]
    fn scan_decides_body_type_and_size() {
        let m = Message::from_bytes(b"From: a@x.test\n\nh\xc3\xa9\n".to_vec());
        assert_eq!(m.body_type(), BodyType::EightBitMime);
        assert_eq!(m.size(), 23);
        let m = Message::from_bytes(b"plain\r\n".to_vec());
        assert_eq!(m.body_type(), BodyType::SevenBit);
        // RFC 1870: DATA appends CRLF to a last line without one; SIZE counts it.
        let m = Message::from_bytes(b"plain".to_vec());
        assert_eq!(m.size(), 7);
        assert_eq!(Message::from_bytes(Vec::new()).size(), 0);
        // A pending CR already counts as CRLF.
        assert_eq!(Message::from_bytes(b"plain\r".to_vec()).size(), 7);
    }

    #[test]
    fn nul_and_long_lines_need_binarymime() {
        let m = Message::from_bytes(b"From: a@x.test\n\na\0b\n".to_vec());
        assert_eq!(m.body_type(), BodyType::BinaryMime);
        assert!(m.binary_reason().unwrap().contains("NUL"));
        // Sent unchanged over BDAT: the size is the file's.
        assert_eq!(m.size(), 20);
        let mut long = b"From: a@x.test\n\n".to_vec();
        long.extend(std::iter::repeat_n(b'x', 999));
        let m = Message::from_bytes(long);
        assert!(m.binary_reason().unwrap().contains("999 octets"));
        let mut ok = b"From: a@x.test\n\n".to_vec();
        ok.extend(std::iter::repeat_n(b'x', 998));
        assert_eq!(Message::from_bytes(ok).binary_reason(), None);
    }
}
