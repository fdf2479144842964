//! The built-in sink: a small SMTP server on 127.0.0.1 that accepts every message and keeps what it received.
//!
//! `smtp-send` delivers to it when no server is named, so the README's main command works on a machine with
//! nothing installed. It offers PIPELINING, 8BITMIME, SMTPUTF8, DSN, CHUNKING, BINARYMIME and
//! ENHANCEDSTATUSCODES, reads DATA (un-stuffing dots) and BDAT chunks (octets kept as they came), and answers pipelined commands in one write. One thread per
//! connection; it stops when the [`Sink`] is dropped.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};

/// How much of each message the sink keeps (the size is always counted).
pub const KEEP: usize = 1 << 20;

/// Longest command line the sink reads before answering 500 and closing.
const MAX_LINE: usize = 4096;

/// One message as the sink received it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Received {
    /// The MAIL FROM line's argument, as sent (path and parameters).
    pub mail_from: String,
    /// The RCPT TO lines' arguments, as sent.
    pub rcpt_to: Vec<String>,
    /// The content, dots un-stuffed, CRLF kept; at most [`KEEP`] octets.
    pub data: Vec<u8>,
    /// The content's full size in octets.
    pub size: u64,
    /// Whether it came by BDAT rather than DATA.
    pub bdat: bool,
}

#[derive(Default)]
struct Shared {
    received: Mutex<Vec<Received>>,
    count: AtomicU64,
    stop: AtomicBool,
    keep: AtomicBool,
}

/// A running sink. Dropping it stops it.
pub struct Sink {
    addr: SocketAddr,
    shared: Arc<Shared>,
    acceptor: Option<JoinHandle<()>>,
}

impl Sink {
    /// Starts a sink on a free 127.0.0.1 port that keeps every message ([`Sink::take`]).
    pub fn start() -> io::Result<Sink> {
        Sink::start_with(true)
    }

    /// Starts a sink that only counts messages when `keep` is false (for load tests).
    pub fn start_with(keep: bool) -> io::Result<Sink> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared::default());
        shared.keep.store(keep, Ordering::Relaxed);
        let s = Arc::clone(&shared);
        let acceptor = thread::Builder::new().name("smtp-sink".into()).spawn(move || {
            for stream in listener.incoming() {
                if s.stop.load(Ordering::Relaxed) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let s = Arc::clone(&s);
                // A connection that fails just ends: the client sees the close.
                let _ = thread::Builder::new().name("smtp-sink-conn".into()).spawn(move || {
                    let _ = serve(stream, &s);
                });
            }
        })?;
        Ok(Sink { addr, shared, acceptor: Some(acceptor) })
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Messages accepted so far.
    pub fn count(&self) -> u64 {
        self.shared.count.load(Ordering::Relaxed)
    }

    /// Takes the messages kept so far.
    pub fn take(&self) -> Vec<Received> {
        std::mem::take(&mut *self.shared.received.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        // Wake the acceptor with one last connection so it sees the flag.
        let _ = TcpStream::connect(self.addr);
        if let Some(t) = self.acceptor.take() {
            let _ = t.join();
        }
    }
}

struct Txn {
    mail_from: String,
    rcpt_to: Vec<String>,
    data: Vec<u8>,
    size: u64,
}

fn serve(stream: TcpStream, shared: &Shared) -> io::Result<()> {
    stream.set_nodelay(true)?;
    let mut reader = BufReader::with_capacity(64 * 1024, stream.try_clone()?);
    let mut out = io::BufWriter::with_capacity(16 * 1024, stream.try_clone()?);
    out.write_all(b"220 localhost smtp-send built-in sink ESMTP\r\n")?;
    out.flush()?;
    let keep = shared.keep.load(Ordering::Relaxed);
    let mut txn: Option<Txn> = None;
    let mut line = Vec::with_capacity(256);
    loop {
        line.clear();
        if (&mut reader).take(MAX_LINE as u64).read_until(b'\n', &mut line)? == 0 {
            break;
        }
        if !line.ends_with(b"\n") {
            out.write_all(b"500 5.5.2 line too long\r\n")?;
            out.flush()?;
            break;
        }
        let text = String::from_utf8_lossy(trim_crlf(&line)).into_owned();
        let upper = text.to_ascii_uppercase();
        let verb = upper.split(' ').next().unwrap_or("");
        match verb {
            "EHLO" | "LHLO" => out.write_all(
                b"250-localhost\r\n250-PIPELINING\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n250-DSN\r\n\
                  250-CHUNKING\r\n250-BINARYMIME\r\n250 ENHANCEDSTATUSCODES\r\n",
            )?,
            "HELO" => out.write_all(b"250 localhost\r\n")?,
            "MAIL" if upper.starts_with("MAIL FROM:") => {
                txn = Some(Txn {
                    mail_from: text[10..].to_owned(),
                    rcpt_to: Vec::new(),
                    data: Vec::new(),
                    size: 0,
                });
                out.write_all(b"250 2.1.0 Ok\r\n")?;
            }
            "RCPT" if upper.starts_with("RCPT TO:") => match txn.as_mut() {
                Some(t) => {
                    t.rcpt_to.push(text[8..].to_owned());
                    out.write_all(b"250 2.1.5 Ok\r\n")?;
                }
                None => out.write_all(b"503 5.5.1 need MAIL\r\n")?,
            },
            "DATA" => match txn.take() {
                Some(mut t) if !t.rcpt_to.is_empty() => {
                    out.write_all(b"354 End data with <CR><LF>.<CR><LF>\r\n")?;
                    out.flush()?;
                    read_data(&mut reader, &mut t, keep)?;
                    finish(shared, t, false, keep);
                    let n = shared.count.load(Ordering::Relaxed);
                    write!(out, "250 2.0.0 Ok: queued as {n}\r\n")?;
                }
                _ => out.write_all(b"503 5.5.1 need RCPT\r\n")?,
            },
            "BDAT" => {
                let mut words = upper.split(' ').skip(1);
                let size: Option<u64> = words.next().and_then(|n| n.parse().ok());
                let last = words.next() == Some("LAST");
                let (Some(size), Some(t)) = (size, txn.as_mut()) else {
                    out.write_all(b"501 5.5.4 BDAT needs a size and a transaction\r\n")?;
                    out.flush()?;
                    break;
                };
                read_chunk(&mut reader, t, size, keep)?;
                if last {
                    let t = txn.take().expect("checked above");
                    finish(shared, t, true, keep);
                    let n = shared.count.load(Ordering::Relaxed);
                    write!(out, "250 2.0.0 Ok: queued as {n}\r\n")?;
                } else {
                    write!(out, "250 2.0.0 {size} octets received\r\n")?;
                }
            }
            "RSET" => {
                txn = None;
                out.write_all(b"250 2.0.0 Ok\r\n")?;
            }
            "NOOP" => out.write_all(b"250 2.0.0 Ok\r\n")?,
            "QUIT" => {
                out.write_all(b"221 2.0.0 Bye\r\n")?;
                out.flush()?;
                break;
            }
            _ => out.write_all(b"500 5.5.2 command not recognized\r\n")?,
        }
        // Answer a pipelined group in one write: flush only when no further command is already buffered.
        if reader.buffer().is_empty() {
            out.flush()?;
        }
    }
    out.flush()?;
    let _ = stream.shutdown(Shutdown::Both);
    Ok(())
}

fn trim_crlf(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

fn keep_bytes(t: &mut Txn, bytes: &[u8], keep: bool) {
    t.size += bytes.len() as u64;
    if keep && t.data.len() < KEEP {
        let room = KEEP - t.data.len();
        t.data.extend_from_slice(&bytes[..bytes.len().min(room)]);
    }
}

/// Reads a DATA body up to the `.` line, un-stuffing leading dots.
fn read_data(reader: &mut BufReader<TcpStream>, t: &mut Txn, keep: bool) -> io::Result<()> {
    let mut line = Vec::with_capacity(1024);
    loop {
        line.clear();
        if reader.read_until(b'\n', &mut line)? == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        if line == b".\r\n" {
            return Ok(());
        }
        let content = line.strip_prefix(b".").unwrap_or(&line);
        keep_bytes(t, content, keep);
    }
}

/// Reads exactly `size` octets of a BDAT chunk.
fn read_chunk(reader: &mut BufReader<TcpStream>, t: &mut Txn, size: u64, keep: bool) -> io::Result<()> {
    let mut left = size;
    while left > 0 {
        let buf = reader.fill_buf()?;
        if buf.is_empty() {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        let n = buf.len().min(left as usize);
        let chunk = buf[..n].to_vec();
        reader.consume(n);
        keep_bytes(t, &chunk, keep);
        left -= n as u64;
    }
    Ok(())
}

fn finish(shared: &Shared, t: Txn, bdat: bool, keep: bool) {
    shared.count.fetch_add(1, Ordering::Relaxed);
    if keep {
        let r = Received { mail_from: t.mail_from, rcpt_to: t.rcpt_to, data: t.data, size: t.size, bdat };
        shared.received.lock().unwrap_or_else(|e| e.into_inner()).push(r);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn talk(sink: &Sink, script: &[u8]) -> String {
        let mut s = TcpStream::connect(sink.addr()).unwrap();
        s.write_all(script).unwrap();
        let mut reply = String::new();
        s.read_to_string(&mut reply).unwrap();
        reply
    }

    #[test]
    fn pipelined_data_and_bdat() {
        let sink = Sink::start().unwrap();
        let reply = talk(
            &sink,
            b"EHLO me\r\nMAIL FROM:<a@x.test> BODY=8BITMIME\r\nRCPT TO:<b@x.test>\r\nDATA\r\n\
              Subject: hi\r\n..dot\r\n.\r\n\
              MAIL FROM:<a@x.test>\r\nRCPT TO:<c@x.test>\r\nBDAT 5\r\nabc\r\nBDAT 0 LAST\r\nQUIT\r\n",
        );
        assert!(reply.starts_with("220 "), "{reply}");
        assert!(
            reply.contains("250-CHUNKING\r\n")
                && reply.contains("354 ")
                && reply.ends_with("221 2.0.0 Bye\r\n")
        );
        let got = sink.take();
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].mail_from, "<a@x.test> BODY=8BITMIME");
        assert_eq!(got[0].data, b"Subject: hi\r\n.dot\r\n");
        assert!(!got[0].bdat);
        assert_eq!(
            (got[1].data.as_slice(), got[1].rcpt_to.as_slice(), got[1].bdat),
            (&b"abc\r\n"[..], &["<c@x.test>".to_owned()][..], true)
        );
        assert_eq!(sink.count(), 2);
    }

    #[test]
    fn refuses_out_of_order_and_unknown_commands() {
        let sink = Sink::start().unwrap();
        let reply = talk(&sink, b"HELO me\r\nRCPT TO:<b@x.test>\r\nDATA\r\nVRFY x\r\nQUIT\r\n");
        let codes: Vec<&str> = reply.lines().map(|l| &l[..3]).collect();
        assert_eq!(codes, ["220", "250", "503", "503", "500", "221"]);
        assert!(sink.take().is_empty());
    }
}
