//! What the loopback bench clients share: argument parsing, the message file and the JSON report
//! (the same keys as `smtp-send --json`: `messages`, `seconds`, `messages_per_second`, `bytes`).

use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;

/// The command line of both binaries.
#[derive(Debug)]
pub struct Args {
    pub server: SocketAddr,
    pub count: u64,
    pub file: Option<PathBuf>,
    pub from: String,
    pub to: String,
    /// Flags without a value that the binary accepted (e.g. `--no-nodelay`).
    pub flags: Vec<String>,
    /// `--mode NAME` (raw_send only).
    pub mode: Option<String>,
    /// `--ca-file PEM`: the trust root for `--starttls` (raw_send only).
    pub ca_file: Option<PathBuf>,
}

impl Args {
    /// Parses `std::env::args`; `flags` lists the value-less switches the binary knows.
    pub fn parse(usage: &str, flags: &[&str]) -> Args {
        let fail = |msg: &str| -> ! {
            eprintln!("{msg}\nusage: {usage}");
            std::process::exit(64)
        };
        let mut server = None;
        let mut args = Args {
            server: SocketAddr::from(([127, 0, 0, 1], 25)),
            count: 1,
            file: None,
            from: "alice@example.org".into(),
            to: "bob@example.org".into(),
            flags: Vec::new(),
            mode: None,
            ca_file: None,
        };
        let mut it = std::env::args().skip(1);
        while let Some(a) = it.next() {
            let mut value = || {
                it.next()
                    .unwrap_or_else(|| fail(&format!("{a} needs a value")))
            };
            match a.as_str() {
                "--server" => server = Some(value()),
                "--count" => {
                    args.count = value()
                        .parse()
                        .unwrap_or_else(|_| fail("--count: a number"))
                }
                "--file" => args.file = Some(value().into()),
                "--from" => args.from = value(),
                "--to" => args.to = value(),
                "--mode" => args.mode = Some(value()),
                "--ca-file" => args.ca_file = Some(value().into()),
                f if flags.contains(&f) => args.flags.push(f.to_owned()),
                "-h" | "--help" => {
                    println!("usage: {usage}");
                    std::process::exit(0)
                }
                other => fail(&format!("unknown argument {other}")),
            }
        }
        let server = server.unwrap_or_else(|| fail("--server HOST:PORT is required"));
        args.server = server
            .to_socket_addrs()
            .ok()
            .and_then(|mut a| a.next())
            .unwrap_or_else(|| fail(&format!("cannot resolve {server}")));
        args
    }

    pub fn has(&self, flag: &str) -> bool {
        self.flags.iter().any(|f| f == flag)
    }

    /// The message: the file if given (read whole, as both clients send from memory), else `fallback()`.
    pub fn message(&self, fallback: impl FnOnce() -> Vec<u8>) -> Vec<u8> {
        match &self.file {
            Some(p) => std::fs::read(p).unwrap_or_else(|e| {
                eprintln!("cannot read {}: {e}", p.display());
                std::process::exit(65)
            }),
            None => fallback(),
        }
    }
}

/// Prints the report as one JSON line on stdout.
pub fn report(messages: u64, seconds: f64, bytes: u64, extra: &[(&str, String)]) {
    let mut line = format!(
        "{{\"messages\":{messages},\"seconds\":{seconds},\"messages_per_second\":{},\"bytes\":{bytes}",
        messages as f64 / seconds.max(1e-9)
    );
    for (k, v) in extra {
        line.push_str(&format!(",\"{k}\":{v}"));
    }
    line.push('}');
    println!("{line}");
}

/// A plain ~1 KiB message with CRLF line endings (used when no `--file` is given).
pub fn kib_message(from: &str, to: &str) -> Vec<u8> {
    let mut m = format!(
        "From: <{from}>\r\nTo: <{to}>\r\nSubject: loopback bench\r\nMessage-ID: <bench@example.org>\r\n\r\n"
    )
    .into_bytes();
    while m.len() + 78 <= 1024 {
        m.extend_from_slice(&[b'x'; 76]);
        m.extend_from_slice(b"\r\n");
    }
    m.resize(1022, b'y');
    m.extend_from_slice(b"\r\n");
    m
}
