//! The body, by DATA (dot-stuffed, RFC 5321 §4.5.2) or BDAT (RFC 3030), and the replies that end a message.

use super::Client;
use super::expect::{Expect, Kind, Step};
use super::transaction::Phase;
use crate::body::{CrlfNormalizer, DotStuffer, bdat_header};
use crate::command::BodyType;
use crate::config::Protocol;
use crate::error::ApiMisuse;
use crate::event::{Event, Failure, MessageId};
use crate::reply::Reply;

/// A body being written.
#[derive(Debug)]
pub(super) struct Body {
    encoder: Encoder,
    /// Octets accepted so far.
    sent: u64,
    /// `write_body` took less than it was given: announce `BodyWritable` when there is room again.
    blocked: bool,
}

#[derive(Debug)]
enum Encoder {
    Data(DotStuffer),
    /// BDAT: bytes go into `Client::chunk` (CRLF-normalised unless the body is binary) until a chunk is full.
    Bdat(Option<CrlfNormalizer>),
}

impl Client {
    /// Gives the client body octets for message `id` after its [`Event::BodyRequested`]. Returns how many
    /// were accepted: fewer than given when the client's buffer is full, or, with BDAT, when as many chunks
    /// as [`bdat_window`](crate::ClientConfig::bdat_window) await their replies (then
    /// [`Event::BodyWritable`] follows once there is room), and 0 before the body was requested.
    ///
    /// Line endings may be anything: bare CR and bare LF become CRLF, dots at line starts are doubled (DATA),
    /// so the server sees exactly one end of data, at the end.
    pub fn write_body(&mut self, id: MessageId, chunk: &[u8]) -> Result<usize, ApiMisuse> {
        let idx = self.txn_index(id).ok_or(ApiMisuse::UnknownMessage)?;
        let room = self.body_room(idx);
        let t = &mut self.txns[idx];
        let seven_bit = t.plan.body == BodyType::SevenBit;
        let body = match &mut t.phase {
            Phase::Queued | Phase::Envelope { .. } => return Ok(0),
            Phase::Body(body) => body,
            Phase::Ending { .. } => return Err(ApiMisuse::BodyFinished),
            Phase::Decided { .. } => return Err(ApiMisuse::UnknownMessage),
        };
        if seven_bit && !chunk.is_ascii() {
            return Err(ApiMisuse::UndeclaredEightBit);
        }
        let n = chunk.len().min(room);
        body.blocked |= n < chunk.len();
        if n == 0 {
            return Ok(0);
        }
        let limit = self.config.body_buffer;
        let mut chunk_out = None;
        match &mut body.encoder {
            Encoder::Data(stuffer) => stuffer.encode(&chunk[..n], &mut self.tx),
            Encoder::Bdat(normalizer) => {
                match normalizer {
                    Some(norm) => norm.encode(&chunk[..n], &mut self.chunk),
                    None => self.chunk.extend_from_slice(&chunk[..n]),
                }
                if self.chunk.len() >= limit {
                    chunk_out = Some(self.tx.len());
                    bdat_header(self.chunk.len() as u64, false, &mut self.tx);
                    self.tx.extend_from_slice(&self.chunk);
                    t.outstanding += 1;
                }
            }
        }
        body.sent += n as u64;
        let (sent, total) = (body.sent, t.env.declared_size());
        if let Some(start) = chunk_out {
            let size = self.chunk.len();
            self.chunk.clear();
            self.log_chunk(start, size);
            self.push_expect(Kind::Txn(id, Step::Bdat { last: false }));
        }
        self.events.push_back(Event::Progress { id, sent, total });
        Ok(n)
    }

    /// Ends message `id`'s body: sends the end of data (`CRLF . CRLF`, or the last `BDAT … LAST`).
    /// Another message may be handed over right after: with PIPELINING its MAIL goes out with this dot.
    pub fn finish_body(&mut self, id: MessageId) -> Result<(), ApiMisuse> {
        let idx = self.txn_index(id).ok_or(ApiMisuse::UnknownMessage)?;
        let t = &mut self.txns[idx];
        let ending = Phase::Ending { handed_out: false };
        let body = match core::mem::replace(&mut t.phase, ending) {
            Phase::Body(body) => body,
            other => {
                let misuse = match other {
                    Phase::Queued | Phase::Envelope { .. } => ApiMisuse::BodyNotRequested,
                    Phase::Ending { .. } => ApiMisuse::BodyFinished,
                    Phase::Body(_) | Phase::Decided { .. } => ApiMisuse::UnknownMessage,
                };
                t.phase = other;
                return Err(misuse);
            }
        };
        let start = self.tx.len();
        let last_chunk = match body.encoder {
            Encoder::Data(mut stuffer) => {
                stuffer.finish(&mut self.tx);
                None
            }
            Encoder::Bdat(normalizer) => {
                if let Some(mut norm) = normalizer {
                    norm.finish(&mut self.chunk);
                }
                bdat_header(self.chunk.len() as u64, true, &mut self.tx);
                self.tx.extend_from_slice(&self.chunk);
                Some(self.chunk.len())
            }
        };
        self.chunk.clear();
        self.block_deadline = None;
        let before = self.expects.len();
        let ends = |kind| Expect { kind, deadline: None };
        if self.config.protocol == Protocol::Lmtp {
            // One reply per accepted recipient (RFC 2033 §4.2).
            t.replies.lmtp.resize(t.replies.rcpt.len(), None);
            for (i, r) in t.replies.rcpt.iter().enumerate() {
                if r.as_ref().is_some_and(Reply::is_positive) {
                    self.expects.push_back(ends(Kind::Txn(id, Step::LmtpRcpt(i))));
                }
            }
        } else if t.plan.bdat {
            self.expects.push_back(ends(Kind::Txn(id, Step::Bdat { last: true })));
        } else {
            self.expects.push_back(ends(Kind::Txn(id, Step::DataEnd)));
        }
        t.outstanding += self.expects.len() - before;
        self.log_end(start, last_chunk, body.sent);
        self.try_progress();
        Ok(())
    }

    pub(super) fn start_body(&mut self, idx: usize) {
        // The application must start feeding the body within a data block's time.
        self.block_deadline = Some(self.now + self.config.timeouts.data_block);
        let t = &mut self.txns[idx];
        let encoder = match (t.plan.bdat, t.plan.body) {
            (false, _) => Encoder::Data(DotStuffer::new()),
            (true, BodyType::BinaryMime) => Encoder::Bdat(None),
            (true, _) => Encoder::Bdat(Some(CrlfNormalizer::new())),
        };
        t.phase = Phase::Body(Body { encoder, sent: 0, blocked: false });
        let id = t.id;
        self.events.push_back(Event::BodyRequested { id });
    }

    /// How many body octets `write_body` may take now for the message at `idx`: none while as many BDAT
    /// chunks as the window allows await their replies (one at a time without PIPELINING, RFC 3030 §2),
    /// else what is left of the buffer.
    fn body_room(&self, idx: usize) -> usize {
        let t = &self.txns[idx];
        if t.plan.bdat {
            let window = if t.plan.pipelined { self.config.bdat_window.max(1) } else { 1 };
            if t.outstanding >= window {
                return 0;
            }
        }
        self.config.body_buffer.saturating_sub(self.tx.len())
    }

    /// Announces `BodyWritable` for a body that was pushed back, once there is room for it again.
    pub(super) fn wake_body(&mut self) {
        let Some(idx) = self.txns.iter().position(|t| t.in_body()) else {
            return;
        };
        let room = self.body_room(idx);
        let t = &mut self.txns[idx];
        if let Phase::Body(body) = &mut t.phase {
            if body.blocked && room > 0 {
                body.blocked = false;
                self.events.push_back(Event::BodyWritable { id: t.id });
            }
        }
    }

    /// The reply to the final dot (or to the lone dot after a 354 no recipient could use).
    pub(super) fn on_data_end(&mut self, idx: usize, reply: Reply) {
        let t = &mut self.txns[idx];
        if !t.decided() {
            let failure = (!reply.is_positive()).then_some(Failure::BodyRejected);
            t.phase = Phase::Decided { failure, rset: false };
        }
        t.replies.end.get_or_insert(reply);
        self.maybe_conclude(idx);
    }

    /// LMTP: one accepted recipient's reply after the body.
    pub(super) fn on_lmtp(&mut self, idx: usize, i: usize, reply: Reply) {
        let t = &mut self.txns[idx];
        t.replies.lmtp[i] = Some(reply);
        if t.outstanding == 0 {
            let delivered = t.replies.lmtp.iter().flatten().any(Reply::is_positive);
            let failure = (!delivered).then_some(Failure::BodyRejected);
            t.phase = Phase::Decided { failure, rset: false };
            self.maybe_conclude(idx);
        }
    }

    pub(super) fn on_bdat(&mut self, idx: usize, last: bool, reply: Reply) {
        let t = &mut self.txns[idx];
        let id = t.id;
        if reply.is_positive() && !last {
            return self.wake_body();
        }
        if reply.is_positive() {
            t.replies.end.get_or_insert(reply);
            if !t.decided() {
                t.phase = Phase::Decided { failure: None, rset: false };
            }
            return self.maybe_conclude(idx);
        }
        // A refused chunk fails the transaction: no further chunk (those not yet handed out are dropped),
        // read the replies of those in flight, then RSET (RFC 3030 §2).
        let before = self.expects.len();
        self.expects.retain(|e| {
            e.deadline.is_some() || !matches!(e.kind, Kind::Txn(x, Step::Bdat { .. }) if x == id)
        });
        let dropped = before - self.expects.len();
        if dropped > 0 || t.in_body() {
            // Since the last transmit only this body was written: nothing else is in `tx`.
            self.tx.clear();
            self.chunk.clear();
            self.block_deadline = None;
        }
        t.outstanding -= dropped;
        if !t.decided() {
            t.replies.end = Some(reply);
        }
        t.fail(Failure::BodyRejected, true);
        self.maybe_conclude(idx);
    }
}
