//! A hand-written SMTP client for checking the servers: raw bytes out, raw replies in.

#![allow(dead_code)] // each test file uses a different part

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

pub struct Raw {
    writer: TcpStream,
    reader: BufReader<TcpStream>,
}

impl Raw {
    /// Connects and returns the client with the greeting.
    pub fn connect(port: u16) -> (Raw, String) {
        let stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        stream.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
        let mut raw = Raw { writer: stream.try_clone().expect("clone"), reader: BufReader::new(stream) };
        let greeting = raw.reply();
        (raw, greeting)
    }

    /// One whole reply (all lines of a multi-line reply), CRLFs kept; empty at end-of-file.
    pub fn reply(&mut self) -> String {
        let mut all = String::new();
        loop {
            let mut line = String::new();
            if self.reader.read_line(&mut line).expect("read reply") == 0 {
                return all;
            }
            all.push_str(&line);
            if line.as_bytes().get(3) != Some(&b'-') {
                return all;
            }
        }
    }

    pub fn send(&mut self, bytes: &[u8]) {
        self.writer.write_all(bytes).expect("write");
    }

    /// Sends `line` plus CRLF and returns the reply.
    pub fn cmd(&mut self, line: &str) -> String {
        self.send(format!("{line}\r\n").as_bytes());
        self.reply()
    }

    /// The first bytes the server sends (for a server that does not speak SMTP first).
    pub fn first_bytes(port: u16, send: &[u8]) -> Vec<u8> {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        stream.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
        stream.write_all(send).expect("write");
        let mut buf = [0u8; 64];
        match stream.read(&mut buf) {
            Ok(n) => buf[..n].to_vec(),
            Err(_) => Vec::new(), // reset: not SMTP either
        }
    }
}

/// Asserts that `reply` starts with `code`, showing the reply if not.
#[track_caller]
pub fn expect(reply: &str, code: &str) {
    assert!(reply.starts_with(code), "expected {code}, got {reply:?}");
}

/// EHLO (or LHLO), MAIL, one RCPT per recipient (each must get 250), DATA, the body (already
/// dot-stuffed, ending in CRLF), the final dot; returns the reply to the dot.
pub fn send_mail(raw: &mut Raw, hello: &str, from: &str, to: &[&str], stuffed: &[u8]) -> String {
    expect(&raw.cmd(&format!("{hello} client.test")), "250");
    expect(&raw.cmd(&format!("MAIL FROM:<{from}>")), "250");
    for rcpt in to {
        expect(&raw.cmd(&format!("RCPT TO:<{rcpt}>")), "250");
    }
    expect(&raw.cmd("DATA"), "354");
    raw.send(stuffed);
    raw.send(b".\r\n");
    raw.reply()
}

/// A body with the awkward cases (a leading dot, a lone dot line, 8-bit text, a bare CR, a
/// bare LF), dot-stuffed as a client sends it.
pub const STUFFED: &[u8] = b"Subject: testkit\r\n\r\nline one\r\n..leading dot\r\n..\r\n\
    \xc3\xa9t\xc3\xa9 8-bit\r\nbare\rcr and bare\nlf\r\nlast\r\n";

/// [`STUFFED`] as the client's message was before dot-stuffing.
pub const UNSTUFFED: &[u8] = b"Subject: testkit\r\n\r\nline one\r\n.leading dot\r\n.\r\n\
    \xc3\xa9t\xc3\xa9 8-bit\r\nbare\rcr and bare\nlf\r\nlast\r\n";
