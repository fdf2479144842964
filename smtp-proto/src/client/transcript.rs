//! The dialogue as [`Event::Transcript`] lines, when the configuration asks for it: commands as written
//! (AUTH payloads redacted, a body summarised as its size) and replies as read.

use alloc::format;
use alloc::string::String;

use super::Client;
use super::expect::Kind;
use crate::event::Event;
use crate::reply::Reply;

impl Client {
    /// The command lines written to `tx` since `start`; `auth` hides SASL payloads.
    pub(super) fn log_tx(&mut self, start: usize, auth: bool) {
        if !self.config.transcript {
            return;
        }
        let written = &self.tx[start..];
        for line in written.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            let line = if auth { redact_auth(line) } else { String::from_utf8_lossy(line).into_owned() };
            let from_server = false;
            self.events.push_back(Event::Transcript { from_server, line });
        }
    }

    /// A BDAT header written at `start` (not the chunk's octets).
    pub(super) fn log_chunk(&mut self, start: usize, size: usize) {
        if self.config.transcript {
            let header = &self.tx[start..];
            let end = header.iter().position(|&b| b == b'\r').unwrap_or(header.len());
            let line = format!("{} ({size} octets)", String::from_utf8_lossy(&header[..end]));
            self.log_text(false, line);
        }
    }

    /// The end of a body written at `start`: the last BDAT header (`last_chunk` octets), or the body's size
    /// and the dot. Built only when asked for: no allocation per message otherwise.
    pub(super) fn log_end(&mut self, start: usize, last_chunk: Option<usize>, sent: u64) {
        match last_chunk {
            Some(size) => self.log_chunk(start, size),
            None if self.config.transcript => {
                self.log_text(false, format!("({sent} octets of body)"));
                self.log_text(false, ".".into());
            }
            None => {}
        }
    }

    /// A reply as read; an AUTH challenge is hidden.
    pub(super) fn log_reply(&mut self, reply: &Reply) {
        if self.config.transcript {
            let auth = self.expects.front().is_some_and(|e| e.kind == Kind::Auth);
            let line = if auth && reply.code() == 334 { "334 <redacted>".into() } else { format!("{reply}") };
            self.log_text(true, line);
        }
    }

    pub(super) fn log_text(&mut self, from_server: bool, line: String) {
        if self.config.transcript {
            self.events.push_back(Event::Transcript { from_server, line });
        }
    }
}

/// An AUTH line for the transcript: the verb and mechanism stay, any payload is hidden.
fn redact_auth(line: &[u8]) -> String {
    let text = String::from_utf8_lossy(line);
    let mut words = text.splitn(3, ' ');
    match (words.next(), words.next(), words.next()) {
        (Some(verb), Some(mech), rest) if verb.eq_ignore_ascii_case("AUTH") => match rest {
            Some(_) => format!("{verb} {mech} <redacted>"),
            None => format!("{verb} {mech}"),
        },
        _ if line == b"*" => "*".into(),
        _ => "<redacted>".into(),
    }
}
