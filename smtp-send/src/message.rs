//! The message to send: read from a file or stdin, scanned once (8-bit content, size, line lengths), and
//! its `From:` address found for the default reverse-path.

use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::{Path, PathBuf};

use smtp_proto::body::BodyScan;
use smtp_proto::command::BodyType;

/// How much of the message is searched for the header block (the `From:` line).
const HEADER_LIMIT: usize = 256 * 1024;

/// Messages up to this size are held in memory once instead of being read again for every copy.
const IN_MEMORY_LIMIT: usize = 4 * 1024 * 1024;

/// Where the message's bytes come from.
#[derive(Debug)]
enum Source {
    /// A file larger than `IN_MEMORY_LIMIT`, streamed again for each copy sent: never read whole into
    /// memory.
    File(PathBuf),
    /// Standard input (it cannot be read twice) or a small file, read once into memory.
    Memory(Vec<u8>),
}

/// A message ready to be sent any number of times.
#[derive(Debug)]
pub struct Message {
    source: Source,
    scan: BodyScan,
    from: Option<String>,
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
                let unreadable =
                    |e: io::Error| MessageError(format!("cannot read {}: {e}", p.display()));
                let mut file =
                    BufReader::with_capacity(64 * 1024, File::open(p).map_err(unreadable)?);
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
                let from = from_header(&kept[..kept.len().min(HEADER_LIMIT)]);
                let source = if small && scan.len() <= IN_MEMORY_LIMIT as u64 {
                    Source::Memory(kept)
                } else {
                    Source::File(p.to_owned())
                };
                Ok(Message { from, source, scan })
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
        let from = from_header(&data[..data.len().min(HEADER_LIMIT)]);
        Message { source: Source::Memory(data), scan, from }
    }

    /// The address in the `From:` header, if there is one.
    pub fn from_address(&self) -> Option<&str> {
        self.from.as_deref()
    }

    /// The body type to declare: 8BITMIME when any octet is above 0x7F.
    pub fn body_type(&self) -> BodyType {
        if self.scan.has_8bit() { BodyType::EightBitMime } else { BodyType::SevenBit }
    }

    /// The size to declare with SIZE= (CRLF line endings, no dot-stuffing).
    pub fn size(&self) -> u64 {
        self.scan.crlf_len()
    }

    /// A fresh reader over the message's bytes.
    pub fn open(&self) -> io::Result<Box<dyn Read + Send + '_>> {
        Ok(match &self.source {
            Source::File(p) => Box::new(BufReader::with_capacity(64 * 1024, File::open(p)?)),
            Source::Memory(d) => Box::new(&d[..]),
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

/// Finds the address of the `From:` header in the header block (before the first empty line), unfolding
/// continuation lines: the part in `<…>` if any, else the whole value.
pub fn from_header(data: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(data);
    let mut value: Option<String> = None;
    for line in text.split('\n') {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.is_empty() {
            break;
        }
        if let Some(v) = value.as_mut() {
            if line.starts_with([' ', '\t']) {
                v.push(' ');
                v.push_str(line.trim());
                continue;
            }
            break;
        }
        if let Some((name, rest)) = line.split_once(':') {
            if name.eq_ignore_ascii_case("from") {
                value = Some(rest.trim().to_owned());
            }
        }
    }
    let v = value?;
    let addr = match (v.rfind('<'), v.rfind('>')) {
        (Some(a), Some(b)) if a < b => v[a + 1..b].trim().to_owned(),
        _ => v.trim().to_owned(),
    };
    (!addr.is_empty()).then_some(addr)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn from_header_forms() {
        assert_eq!(
            from_header(b"From: alice@example.org\r\n\r\nbody").as_deref(),
            Some("alice@example.org")
        );
        assert_eq!(
            from_header(b"Subject: x\nFROM: \"Alice A.\" <alice@example.org>\n\n").as_deref(),
            Some("alice@example.org")
        );
        assert_eq!(
            from_header(b"From: Alice\r\n <alice@example.org>\r\nTo: b\r\n\r\n").as_deref(),
            Some("alice@example.org")
        );
        assert_eq!(from_header(b"To: b@x\r\n\r\nFrom: not@header\r\n"), None);
        assert_eq!(from_header(b"From: <>\r\n\r\n"), None);
    }

    #[test]
    fn scan_decides_body_type_and_size() {
        let m = Message::from_bytes(b"From: a@x.test\n\nh\xc3\xa9\n".to_vec());
        assert_eq!(m.body_type(), BodyType::EightBitMime);
        assert_eq!(m.size(), 23);
        let m = Message::from_bytes(b"plain\r\n".to_vec());
        assert_eq!(m.body_type(), BodyType::SevenBit);
    }
}
