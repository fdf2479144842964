//! A message body that can be read only once.

use std::io::{self, Read, Seek, SeekFrom};
#[cfg(any(feature = "futures-io", feature = "tokio"))]
use std::{
    pin::Pin,
    task::{Context, Poll},
};

/// A body read once, from a source that cannot go back (standard input, a pipe, a socket). The adapters take
/// bodies that can seek, so that recipients who need another transaction (a 452, the server's `LIMITS
/// RCPTMAX`) or another connection (its MAILMAX) get the message too; wrapped in `OneShot`, a body is sent
/// once and those recipients are listed in the report ([`smtp_proto::MessageReport::retry_recipients`]).
///
/// ```
/// use std::io::{Read, Seek, SeekFrom};
/// use smtp_transport::OneShot;
///
/// let mut body = OneShot(&b"Subject: hi\r\n\r\nHello\r\n"[..]);
/// assert!(body.stream_position().is_err());
/// let mut text = String::new();
/// body.read_to_string(&mut text).unwrap();
/// assert!(text.ends_with("Hello\r\n"));
/// ```
#[derive(Debug)]
pub struct OneShot<R>(pub R);

impl<R: Read> Read for OneShot<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.read(buf)
    }
}

fn cannot_seek() -> io::Error {
    io::Error::new(io::ErrorKind::Unsupported, "a one-shot body cannot be read again")
}

impl<R> Seek for OneShot<R> {
    fn seek(&mut self, _: SeekFrom) -> io::Result<u64> {
        Err(cannot_seek())
    }
}

#[cfg(feature = "futures-io")]
impl<R: futures_io::AsyncRead + Unpin> futures_io::AsyncRead for OneShot<R> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().0).poll_read(cx, buf)
    }
}

#[cfg(feature = "futures-io")]
impl<R: Unpin> futures_io::AsyncSeek for OneShot<R> {
    fn poll_seek(self: Pin<&mut Self>, _: &mut Context<'_>, _: SeekFrom) -> Poll<io::Result<u64>> {
        Poll::Ready(Err(cannot_seek()))
    }
}

#[cfg(feature = "tokio")]
impl<R: tokio::io::AsyncRead + Unpin> tokio::io::AsyncRead for OneShot<R> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_read(cx, buf)
    }
}

#[cfg(feature = "tokio")]
impl<R: Unpin> tokio::io::AsyncSeek for OneShot<R> {
    fn start_seek(self: Pin<&mut Self>, _: SeekFrom) -> io::Result<()> {
        Err(cannot_seek())
    }
    fn poll_complete(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<u64>> {
        Poll::Ready(Err(cannot_seek()))
    }
}
