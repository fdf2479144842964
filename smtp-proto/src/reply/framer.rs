//! Incremental line framer: finds the end of the next complete line, bounded and without rescanning.
//!
//! Bytes of a line that is still incomplete are copied into one reused buffer; every byte in that buffer has
//! already been scanned, so a later call only looks at the buffer's last byte (a pending CR) and at the new
//! data. Complete lines that lie wholly inside the caller's data are handed out in place, without a copy.

use alloc::vec::Vec;

use super::ParseError;

/// Finds complete lines in a byte stream fed in arbitrary pieces.
#[derive(Debug)]
pub(crate) struct Framer {
    /// The partial line carried over from earlier calls (never holds a terminator, except transiently while a
    /// line completed in it is handed out: see `taken`).
    buf: Vec<u8>,
    /// `buf` holds a line that was handed out by the previous call: clear it before going on.
    taken: bool,
    max_line_len: usize,
    allow_bare_lf: bool,
}

impl Framer {
    pub(crate) fn new(max_line_len: usize, allow_bare_lf: bool) -> Self {
        Framer {
            buf: Vec::new(),
            taken: false,
            max_line_len,
            allow_bare_lf,
        }
    }

    /// True when bytes of an incomplete line are buffered.
    pub(crate) fn has_partial(&self) -> bool {
        !self.taken && !self.buf.is_empty()
    }

    /// Looks for the end of the next line.
    ///
    /// Returns `(consumed, Some(line))` with the line's content (terminator removed) when a line completes
    /// within `data[..consumed]`, or `(data.len(), None)` after buffering all of `data` as a partial line.
    /// A line whose length, terminator included, exceeds `max_line_len` is [`ParseError::LineTooLong`], raised
    /// as soon as the buffered part makes that certain.
    pub(crate) fn next_line<'a>(
        &'a mut self,
        data: &'a [u8],
    ) -> Result<(usize, Option<&'a [u8]>), ParseError> {
        if self.taken {
            self.buf.clear();
            self.taken = false;
        }
        if data.is_empty() {
            // Nothing new: every buffered byte was checked against the cap by the call that buffered it.
            return Ok((0, None));
        }
        let pending_cr = self.buf.last() == Some(&b'\r');
        let mut from = 0;
        while let Some(rel) = memchr::memchr(b'\n', &data[from..]) {
            let pos = from + rel;
            let crlf = if pos == 0 {
                pending_cr
            } else {
                data[pos - 1] == b'\r'
            };
            if crlf || self.allow_bare_lf {
                let full_len = self.buf.len() + pos + 1;
                if full_len > self.max_line_len {
                    return Err(ParseError::LineTooLong);
                }
                let term = if crlf { 2 } else { 1 };
                let consumed = pos + 1;
                if self.buf.is_empty() {
                    return Ok((consumed, Some(&data[..consumed - term])));
                }
                // The line started in an earlier call: finish it in the buffer (bounded by the check above).
                self.buf.extend_from_slice(&data[..consumed]);
                self.taken = true;
                let end = self.buf.len() - term;
                return Ok((consumed, Some(&self.buf[..end])));
            }
            // A bare LF is text (REPLY-07): keep scanning after it.
            from = pos + 1;
        }
        // No terminator: the whole of data joins the partial line. Refuse it as soon as the line's final
        // length (at least one more octet after a CR, two otherwise) is certain to pass the cap.
        let partial = self.buf.len() + data.len();
        let ends_cr = match data.last() {
            Some(&b) => b == b'\r',
            None => pending_cr,
        };
        let min_rest = if ends_cr || self.allow_bare_lf { 1 } else { 2 };
        if partial.saturating_add(min_rest) > self.max_line_len {
            return Err(ParseError::LineTooLong);
        }
        self.buf.extend_from_slice(data);
        Ok((data.len(), None))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    /// Feeds pieces, collecting every complete line (owned) until the pieces run out.
    fn lines(framer: &mut Framer, pieces: &[&[u8]]) -> Result<Vec<Vec<u8>>, ParseError> {
        let mut out = Vec::new();
        for piece in pieces {
            let mut off = 0;
            loop {
                let (n, line) = framer.next_line(&piece[off..])?;
                off += n;
                match line {
                    Some(l) => out.push(l.to_vec()),
                    None => break,
                }
                if off == piece.len() {
                    break;
                }
            }
        }
        Ok(out)
    }

    #[test]
    fn strict_table() {
        type Case = (
            &'static [&'static [u8]],
            Result<&'static [&'static [u8]], ParseError>,
            bool,
        );
        let cases: &[Case] = &[
            (&[b"a\r\nb\r\n"], Ok(&[b"a", b"b"]), false),
            (&[b"a\r", b"\nb\r\n"], Ok(&[b"a", b"b"]), false),
            (&[b"a", b"\r", b"\n"], Ok(&[b"a"]), false),
            (&[b"a\nb\r\n"], Ok(&[b"a\nb"]), false),
            (&[b"a\rb\r\n"], Ok(&[b"a\rb"]), false),
            (&[b"\n\r\n"], Ok(&[b"\n"]), false),
            (&[b"a\r", b"x\r\n"], Ok(&[b"a\rx"]), false),
            (&[b"a\n"], Ok(&[]), true),
            (&[b"\r\n"], Ok(&[b""]), false),
        ];
        for (pieces, want, partial) in cases {
            let mut f = Framer::new(64, false);
            let got = lines(&mut f, pieces);
            let want: Result<Vec<Vec<u8>>, _> =
                want.map(|w| w.iter().map(|l| l.to_vec()).collect());
            assert_eq!(got, want, "{pieces:?}");
            assert_eq!(f.has_partial(), *partial, "{pieces:?}");
        }
    }

    #[test]
    fn bare_lf_table() {
        type Case = (&'static [&'static [u8]], &'static [&'static [u8]]);
        let cases: &[Case] = &[
            (&[b"a\nb\r\n"], &[b"a", b"b"]),
            (&[b"a\r", b"\n"], &[b"a"]),
            (&[b"a\rb\n"], &[b"a\rb"]),
            (&[b"\n"], &[b""]),
        ];
        for (pieces, want) in cases {
            let mut f = Framer::new(64, true);
            let want: Vec<Vec<u8>> = want.iter().map(|l| l.to_vec()).collect();
            assert_eq!(lines(&mut f, pieces), Ok(want), "{pieces:?}");
        }
    }

    #[test]
    fn cap_counts_the_crlf() {
        // max 6: "abcd\r\n" fits, "abcde\r\n" does not, whichever way it is split.
        for split in 0..=7 {
            let ok = b"abcd\r\n";
            let bad = b"abcde\r\n";
            if split <= ok.len() {
                let mut f = Framer::new(6, false);
                assert_eq!(
                    lines(&mut f, &[&ok[..split], &ok[split..]]),
                    Ok(vec![b"abcd".to_vec()])
                );
            }
            let mut f = Framer::new(6, false);
            assert_eq!(
                lines(&mut f, &[&bad[..split], &bad[split..]]),
                Err(ParseError::LineTooLong)
            );
        }
        // The partial line is refused before it is buffered past the cap.
        let mut f = Framer::new(6, false);
        assert_eq!(f.next_line(b"abcde"), Err(ParseError::LineTooLong));
        let mut f = Framer::new(6, false);
        assert_eq!(f.next_line(b"abcd\r"), Ok((5, None)));
        assert_eq!(f.next_line(b"x"), Err(ParseError::LineTooLong));
    }
}
