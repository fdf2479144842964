//! [`Body`]: a message body every adapter can read, for the conformance suite.

use std::io::{self, Read, Seek, SeekFrom};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use smtp_transport::OneShot;

/// The generated body repeats this: a line that needs dot-stuffing, a bare LF, a CRLF line.
const PATTERN: &[u8] =
    b".a line that starts with a dot, then a bare LF\nand a CRLF line 0123456789 abcdefghij\r\n";

/// A message body for every adapter: std [`Read`] + [`Seek`] (smtp-blocking), futures-io
/// `AsyncRead` + `AsyncSeek` (smtp-smol) and tokio's `AsyncRead` + `AsyncSeek` (smtp-tokio), all
/// reading the same octets. Wrap it in [`OneShot`] ([`Body::one_shot`]) for a body that cannot
/// seek, so it cannot be read again.
///
/// Every read is answered at once (the async ones never return `Pending`). The content is a pure
/// function of the position, so seeking back replays it exactly.
#[derive(Debug)]
pub struct Body {
    source: Source,
    pos: u64,
    /// Reads so far (a trickled body gives 1, 2 or 3 octets by turns).
    reads: u64,
    trickle: bool,
    /// Reading at or past this position fails.
    fail_at: Option<u64>,
    /// A tokio seek started and not yet completed.
    seeking: Option<io::Result<u64>>,
}

#[derive(Debug)]
enum Source {
    Bytes(Arc<[u8]>),
    /// [`Body::generated`] content of this length.
    Generated(u64),
}

impl Body {
    /// These octets.
    pub fn bytes(bytes: impl AsRef<[u8]>) -> Body {
        Body::new(Source::Bytes(bytes.as_ref().into()))
    }

    /// `len` octets generated as they are read, never held in memory: a line that starts with a
    /// dot (stuffed on the wire), a bare LF and CRLF lines, over and over (see [`Body::generated_byte`]).
    pub fn generated(len: u64) -> Body {
        Body::new(Source::Generated(len))
    }

    /// `ok` generated octets, then every read fails with "disk on fire".
    pub fn failing_after(ok: u64) -> Body {
        Body { fail_at: Some(ok), ..Body::generated(u64::MAX) }
    }

    /// The same content, read 1, 2 or 3 octets at a time: every chunk boundary a driver can see.
    pub fn trickled(self) -> Body {
        Body { trickle: true, ..self }
    }

    /// Wrapped so that it cannot seek: read once, never replayed.
    pub fn one_shot(self) -> OneShot<Body> {
        OneShot(self)
    }

    /// Octet `i` of every [`Body::generated`] body.
    pub fn generated_byte(i: u64) -> u8 {
        PATTERN[(i % PATTERN.len() as u64) as usize]
    }

    /// The content of `Body::generated(len)`, in memory (for comparisons).
    pub fn generated_content(len: u64) -> Vec<u8> {
        (0..len).map(Body::generated_byte).collect()
    }

    fn new(source: Source) -> Body {
        Body { source, pos: 0, reads: 0, trickle: false, fail_at: None, seeking: None }
    }

    fn len(&self) -> u64 {
        match &self.source {
            Source::Bytes(b) => b.len() as u64,
            Source::Generated(len) => *len,
        }
    }
}

impl Read for Body {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.fail_at.is_some_and(|at| self.pos >= at) {
            return Err(io::Error::other("disk on fire"));
        }
        self.reads += 1;
        let mut n = (self.len().saturating_sub(self.pos)).min(buf.len() as u64) as usize;
        if let Some(at) = self.fail_at {
            n = n.min((at - self.pos) as usize);
        }
        if self.trickle {
            n = n.min((self.reads % 3 + 1) as usize);
        }
        match &self.source {
            Source::Bytes(b) => {
                let from = self.pos as usize;
                buf[..n].copy_from_slice(&b[from..from + n]);
            }
            Source::Generated(_) => {
                for (i, out) in buf[..n].iter_mut().enumerate() {
                    *out = Body::generated_byte(self.pos + i as u64);
                }
            }
        }
        self.pos += n as u64;
        Ok(n)
    }
}

impl Seek for Body {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let pos = match to {
            SeekFrom::Start(p) => Some(p),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
            SeekFrom::End(d) => self.len().checked_add_signed(d),
        };
        self.pos = pos.ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "seek before the start"))?;
        Ok(self.pos)
    }
}

impl futures_io::AsyncRead for Body {
    fn poll_read(self: Pin<&mut Self>, _: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        Poll::Ready(self.get_mut().read(buf))
    }
}

impl futures_io::AsyncSeek for Body {
    fn poll_seek(self: Pin<&mut Self>, _: &mut Context<'_>, to: SeekFrom) -> Poll<io::Result<u64>> {
        Poll::Ready(self.get_mut().seek(to))
    }
}

impl tokio::io::AsyncRead for Body {
    fn poll_read(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let n = self.get_mut().read(buf.initialize_unfilled())?;
        buf.advance(n);
        Poll::Ready(Ok(()))
    }
}

impl tokio::io::AsyncSeek for Body {
    fn start_seek(self: Pin<&mut Self>, to: SeekFrom) -> io::Result<()> {
        let this = self.get_mut();
        this.seeking = Some(this.seek(to));
        Ok(())
    }

    fn poll_complete(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<u64>> {
        let this = self.get_mut();
        Poll::Ready(this.seeking.take().unwrap_or(Ok(this.pos)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_reads_and_replays_its_content() {
        let mut all = Vec::new();
        let mut body = Body::bytes("hello, world").trickled();
        body.read_to_end(&mut all).unwrap();
        assert_eq!(all, b"hello, world");
        assert!(body.reads >= 6, "{} reads", body.reads);
        body.seek(SeekFrom::Start(7)).unwrap();
        all.clear();
        body.read_to_end(&mut all).unwrap();
        assert_eq!(all, b"world");

        let mut body = Body::generated(1000);
        all.clear();
        body.read_to_end(&mut all).unwrap();
        assert_eq!(all, Body::generated_content(1000));

        let mut body = Body::failing_after(100);
        let mut buf = [0u8; 64];
        assert_eq!(body.read(&mut buf).unwrap(), 64);
        assert_eq!(body.read(&mut buf).unwrap(), 36);
        assert_eq!(body.read(&mut buf).unwrap_err().to_string(), "disk on fire");

        let mut once = Body::bytes("x").one_shot();
        assert!(once.stream_position().is_err());
    }
}
