//! Incremental line framer: finds the end of the next complete line, bounded and without rescanning.
//!
//! Bytes of a line that is still incomplete are copied into one reused buffer; every byte in that buffer has
//! already been scanned, so a later call only looks at the buffer's last byte (a pending CR) and at the new
//! data. Complete lines that lie wholly inside the caller's data are handed out in place, without a copy.
//!
//! CR and LF only ever appear together, as the line's end (RFC 5321 §2.3.8): a line handed out holds
//! neither. A CR followed by anything but LF is [`ParseError::BareCr`]; a bare LF is
//! [`ParseError::BareLf`], or, in the lenient mode, the line's end. Either error is raised as soon as the
//! offending octet arrives, so a reply can never swallow the next one.

use alloc::vec::Vec;

use super::ParseError;

/// Finds complete lines in a byte stream fed in arbitrary pieces.
#[derive(Debug)]
pub(crate) struct Framer {
    /// The partial line carried over from earlier calls (never holds a terminator, except transiently while a
    /// line completed in it is handed out: see `taken`). Only its last octet may be a CR.
    buf: Vec<u8>,
    /// `buf` holds a line that was handed out by the previous call: clear it before going on.
    taken: bool,
    max_line_len: usize,
    allow_bare_lf: bool,
}

impl Framer {
    pub(crate) fn new(max_line_len: usize, allow_bare_lf: bool) -> Self {
        Framer { buf: Vec::new(), taken: false, max_line_len, allow_bare_lf }
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
        if pending_cr && data[0] != b'\n' {
            return Err(ParseError::BareCr);
        }
        // An error at `data[pos]`, unless the line was already certain to pass the cap before that octet
        // (as it would have been found had the data come in smaller pieces).
        let fail = |pos: usize, e: ParseError| {
            if self.buf.len() + pos + 2 > self.max_line_len { Err(ParseError::LineTooLong) } else { Err(e) }
        };
        // The line's end: the index of its LF in `data`, and the terminator's length.
        let end = match memchr::memchr2(b'\r', b'\n', data) {
            None => None,
            Some(0) if pending_cr => Some((0, 2)),
            Some(pos) if data[pos] == b'\r' => match data.get(pos + 1) {
                Some(b'\n') => Some((pos + 1, 2)),
                Some(_) => return fail(pos, ParseError::BareCr),
                // A CR ends the data: its LF may come with the next call.
                None => None,
            },
            Some(lf) if self.allow_bare_lf => Some((lf, 1)),
            Some(lf) => return fail(lf, ParseError::BareLf),
        };
        if let Some((lf, term)) = end {
            let consumed = lf + 1;
            if self.buf.len() + consumed > self.max_line_len {
                return Err(ParseError::LineTooLong);
            }
            if self.buf.is_empty() {
                return Ok((consumed, Some(&data[..consumed - term])));
            }
            // The line started in an earlier call: finish it in the buffer (bounded by the check above).
            self.buf.extend_from_slice(&data[..consumed]);
            self.taken = true;
            let end = self.buf.len() - term;
            return Ok((consumed, Some(&self.buf[..end])));
        }
        // No terminator: the whole of data joins the partial line. Refuse it as soon as the line's final
        // length (at least one more octet after a CR, two otherwise) is certain to pass the cap.
        let partial = self.buf.len() + data.len();
        let ends_cr = data.last() == Some(&b'\r');
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
        type Case = (&'static [&'static [u8]], Result<&'static [&'static [u8]], ParseError>, bool);
        let cases: &[Case] = &[
            (&[b"a\r\nb\r\n"], Ok(&[b"a", b"b"]), false),
            (&[b"a\r", b"\nb\r\n"], Ok(&[b"a", b"b"]), false),
            (&[b"a", b"\r", b"\n"], Ok(&[b"a"]), false),
            (&[b"\r\n"], Ok(&[b""]), false),
            (&[b"a\r"], Ok(&[]), true),
            // CR and LF only as a pair: anything else fails at once, never joining two lines.
            (&[b"a\nb\r\n"], Err(ParseError::BareLf), false),
            (&[b"a\n"], Err(ParseError::BareLf), false),
            (&[b"\n\r\n"], Err(ParseError::BareLf), false),
            (&[b"a\rb\r\n"], Err(ParseError::BareCr), false),
            (&[b"a\r", b"x\r\n"], Err(ParseError::BareCr), true),
            (&[b"a\r\r\n"], Err(ParseError::BareCr), false),
            (&[b"a\r\n", b"b\n"], Err(ParseError::BareLf), false),
        ];
        for (pieces, want, partial) in cases {
            let mut f = Framer::new(64, false);
            let got = lines(&mut f, pieces);
            let want: Result<Vec<Vec<u8>>, _> = want.map(|w| w.iter().map(|l| l.to_vec()).collect());
            assert_eq!(got, want, "{pieces:?}");
            assert_eq!(f.has_partial(), *partial, "{pieces:?}");
        }
    }

    #[test]
    fn bare_lf_table() {
        type Case = (&'static [&'static [u8]], Result<&'static [&'static [u8]], ParseError>);
        let cases: &[Case] = &[
            (&[b"a\nb\r\n"], Ok(&[b"a", b"b"])),
            (&[b"a\r", b"\n"], Ok(&[b"a"])),
            (&[b"\n"], Ok(&[b""])),
            (&[b"a\n\nb\n"], Ok(&[b"a", b"", b"b"])),
            // A bare CR is never a line end, in either mode.
            (&[b"a\rb\n"], Err(ParseError::BareCr)),
        ];
        for (pieces, want) in cases {
            let mut f = Framer::new(64, true);
            let want: Result<Vec<Vec<u8>>, _> = want.map(|w| w.iter().map(|l| l.to_vec()).collect());
            assert_eq!(lines(&mut f, pieces), want, "{pieces:?}");
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
                assert_eq!(lines(&mut f, &[&ok[..split], &ok[split..]]), Ok(vec![b"abcd".to_vec()]));
            }
            let mut f = Framer::new(6, false);
            assert_eq!(lines(&mut f, &[&bad[..split], &bad[split..]]), Err(ParseError::LineTooLong));
        }
        // The partial line is refused before it is buffered past the cap.
        let mut f = Framer::new(6, false);
        assert_eq!(f.next_line(b"abcde"), Err(ParseError::LineTooLong));
        let mut f = Framer::new(6, false);
        assert_eq!(f.next_line(b"abcd\r"), Ok((5, None)));
        assert_eq!(f.next_line(b"\n"), Ok((1, Some(&b"abcd"[..]))));
        let mut f = Framer::new(5, false);
        assert_eq!(f.next_line(b"abcd\r"), Err(ParseError::LineTooLong));
    }
}
