//! Postfix's `smtp-sink`.

use std::collections::HashSet;
use std::fs::{self, File};
use std::io::Read;
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use crate::{
    POLL, ReceivedMessage, START_TIMEOUT, StartError, Watchdog, angle_address, exited, failed, find_program,
    is_root, localhost, poll_messages, split_line, temp_dir, user_ids, with_free_port,
};

/// The start of the line that begins every dump; a random token follows.
const MARKER: &str = "X-Testkit-Dump: ";

/// How [`SmtpSink`] behaves; `SinkOptions::default()` is smtp-sink's default server.
///
/// By default smtp-sink answers EHLO with `PIPELINING`, `8BITMIME`, `AUTH PLAIN LOGIN`,
/// `XCLIENT`, `XFORWARD`, `ENHANCEDSTATUSCODES` and `DSN`, ending with a `250 ` line with empty
/// text. It has no SIZE, CHUNKING, SMTPUTF8 or STARTTLS (BDAT and STARTTLS get `500 5.5.1`),
/// accepts any MAIL/RCPT parameters unchecked, and treats all recipients alike.
///
/// Command names (`CMD`) are smtp-sink's: `CONNECT`, `HELO`, `EHLO`, `LHLO`, `MAIL`, `RCPT`,
/// `DATA`, `.`, `RSET`, `NOOP`, `VRFY`, `QUIT`; several may be given separated by commas, e.g.
/// `"RCPT,DATA"`.
#[derive(Debug, Default, Clone)]
pub struct SinkOptions {
    /// `-p`: do not announce PIPELINING.
    pub no_pipelining: bool,
    /// `-L`: speak LMTP (LHLO, one reply per recipient after the final dot).
    pub lmtp: bool,
    /// `-8`: do not announce 8BITMIME.
    pub no_8bitmime: bool,
    /// `-e`: no ESMTP: EHLO gets `500` (for HELO fallback tests).
    pub no_esmtp: bool,
    /// `-q CMD`: close the connection without a reply when CMD arrives.
    pub disconnect_after: Option<&'static str>,
    /// `-Q CMD`: reply `421` and close the connection when CMD arrives.
    pub close_421_after: Option<&'static str>,
    /// `-r CMD`: soft-reject CMD (`450 4.3.0 Error: command failed`); turns PIPELINING off.
    pub soft_reject: Option<&'static str>,
    /// `-f CMD`: hard-reject CMD (`500 5.3.0 Error: command failed`); turns PIPELINING off.
    pub hard_reject: Option<&'static str>,
    /// `-w S`: wait S seconds before answering DATA.
    pub delay_data_reply_secs: Option<u32>,
    /// The listen backlog (smtp-sink's last argument); 128 if `None`.
    pub backlog: Option<u32>,
    /// Listen here instead of on a free port of 127.0.0.1: MX tests put several sinks on one port of
    /// 127.0.0.2, 127.0.0.3, … (an MX record names a host, never a port).
    pub listen: Option<SocketAddr>,
    /// Any other smtp-sink arguments, passed before the listen address, e.g. `["-N"]` (no DSN),
    /// `["-E"]` (no ENHANCEDSTATUSCODES), `["-a"]` (no AUTH), `["-W", "RCPT:2"]`.
    pub extra_args: Vec<String>,
}

impl SinkOptions {
    fn args(&self) -> Vec<String> {
        let mut args = Vec::new();
        for (on, flag) in
            [(self.no_pipelining, "-p"), (self.lmtp, "-L"), (self.no_8bitmime, "-8"), (self.no_esmtp, "-e")]
        {
            if on {
                args.push(flag.to_string());
            }
        }
        for (value, flag) in [
            (self.disconnect_after, "-q"),
            (self.close_421_after, "-Q"),
            (self.soft_reject, "-r"),
            (self.hard_reject, "-f"),
        ] {
            if let Some(value) = value {
                args.extend([flag.to_string(), value.to_string()]);
            }
        }
        if let Some(secs) = self.delay_data_reply_secs {
            args.extend(["-w".to_string(), secs.to_string()]);
        }
        args.extend(self.extra_args.iter().cloned());
        args
    }
}

/// Postfix's `smtp-sink` on 127.0.0.1, dumping every transaction to a private folder.
///
/// Killed on drop (and by a watchdog if the test process dies). See [`SinkOptions`] for what it
/// offers.
pub struct SmtpSink {
    // `drop` kills the server; then the fields go in this order: watchdog, then folder.
    _watchdog: Watchdog,
    child: Child,
    addr: SocketAddr,
    /// The shared dump file (`-D`).
    all: PathBuf,
    /// The line that starts every dump (`-S`), unique to this instance.
    marker: Vec<u8>,
    _dir: tempfile::TempDir,
}

impl SmtpSink {
    /// Starts smtp-sink on a free port and waits until it accepts connections.
    ///
    /// Completed transactions are dumped (`-D`) to one file in a private temporary folder. As
    /// root, smtp-sink runs as `nobody`. Fails with [`StartError::Missing`]`("smtp-sink")` if it is not installed.
    pub fn start(opts: SinkOptions) -> Result<SmtpSink, StartError> {
        let program = find_program("smtp-sink").ok_or(StartError::Missing("smtp-sink"))?;
        match opts.listen {
            Some(addr) => Self::start_on(&program, &opts, addr),
            None => with_free_port(|port| Self::start_on(&program, &opts, localhost(port))),
        }
    }

    fn start_on(program: &Path, opts: &SinkOptions, addr: SocketAddr) -> Result<SmtpSink, StartError> {
        let dir = temp_dir("sink")?;
        let dumps = dir.path().join("dumps");
        fs::create_dir(&dumps).map_err(|e| failed("create the dump folder", e))?;
        let log = dir.path().join("stderr");
        let stderr = File::create(&log).map_err(|e| failed("create the log file", e))?;

        let mut cmd = Command::new(program);
        if is_root() {
            let (uid, gid) = user_ids("nobody")
                .ok_or_else(|| StartError::Failed("smtp-sink as root needs the user nobody".into()))?;
            std::os::unix::fs::chown(&dumps, Some(uid), Some(gid))
                .map_err(|e| failed("chown the dump folder", e))?;
            cmd.args(["-u", "nobody"]);
        }
        let marker = format!("{MARKER}{}\n", random_hex()?);
        let all = dumps.join("all");
        // -D: each transaction goes to a temporary file (unlinked at once, so an unfinished
        // one is never seen) and is appended to `all` when its final dot arrives, before the
        // 250. -S starts each dump with our marker line (smtp-sink unescapes the `\n`).
        cmd.arg("-D")
            .arg(&all)
            .arg("-S")
            .arg(marker.replace('\n', "\\n"))
            .args(opts.args())
            .arg(addr.to_string())
            .arg(opts.backlog.unwrap_or(128).to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr);
        let mut child = cmd.spawn().map_err(|e| failed("spawn smtp-sink", e))?;
        let watchdog = Watchdog::spawn(
            r#"kill -9 "$1"; rm -rf "$2""#,
            &[child.id().to_string().as_ref(), dir.path().as_os_str()],
        );
        let watchdog = match watchdog {
            Ok(w) => w,
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(e);
            }
        };
        let mut sink =
            SmtpSink { _watchdog: watchdog, child, addr, all, marker: marker.into_bytes(), _dir: dir };
        wait_for_addr(addr, || exited(&mut sink.child, &log).map(|why| format!("smtp-sink {why}")))?;
        Ok(sink)
    }

    /// The port smtp-sink listens on.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Where smtp-sink listens: `127.0.0.1:port`, or [`SinkOptions::listen`].
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The completed transactions so far, in the order their final dot arrived.
    ///
    /// smtp-sink stores a transaction when its final `.` arrives, before it replies 250, so a
    /// message is here as soon as your client has seen the 250. Transactions aborted by RSET,
    /// a new EHLO or a lost connection, and those still open, are not.
    ///
    /// - `from` and `recipients` come from the dump's `X-Mail-Args` and `X-Rcpt-Args` lines
    ///   (smtp-sink accepts every recipient unless `soft_reject`/`hard_reject` say RCPT); the
    ///   full argument lines, with parameters, are in `raw`.
    /// - `body` is the DATA content with **every CR byte deleted** and one `.` removed at the
    ///   start of each line after CRLF (also at the start of the body), ending with the LF of the
    ///   last line before the final `.`. For a client that sends CRLF line endings it equals the
    ///   message before dot-stuffing with CRLF replaced by LF. A bare CR disappears (`a\rb` →
    ///   `ab`); a bare LF stays, and a `.` after a bare LF is not un-stuffed.
    /// - `raw` is the dump: our `X-Testkit-Dump: <token>` line, smtp-sink's `X-Client-Addr`,
    ///   `X-Client-Proto`, `X-Helo-Args`, `X-Mail-Args`, `X-Rcpt-Args` (one per recipient)
    ///   lines and a three-line `Received` header, then `body`, then one more `\n`.
    pub fn messages(&self) -> Vec<ReceivedMessage> {
        split_dumps(&self.read_dumps(), &self.marker)
            .into_iter()
            .map(|dump| parse_dump(dump.to_vec()))
            .collect()
    }

    /// The shared dump file, read when smtp-sink is not appending to it.
    fn read_dumps(&self) -> Vec<u8> {
        let deadline = Instant::now() + Duration::from_secs(2);
        loop {
            let data = fs::read(&self.all).unwrap_or_default();
            // smtp-sink opens the file only to append one whole dump. Not open now and no
            // bigger than what we read: nothing was half-written when we read it.
            let settled = !open_files(self.child.id()).contains(&self.all)
                && fs::metadata(&self.all).map_or(0, |m| m.len()) == data.len() as u64;
            if settled || Instant::now() > deadline {
                return data;
            }
            sleep(Duration::from_millis(2));
        }
    }

    /// Waits up to `timeout` until at least `n` messages are complete, then returns
    /// [`messages`](Self::messages) (which may hold fewer than `n` on timeout).
    pub fn wait_for(&self, n: usize, timeout: Duration) -> Vec<ReceivedMessage> {
        poll_messages(n, timeout, || self.messages())
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Polls until `addr` accepts a connection. `dead` reports why the server is gone, if it is.
fn wait_for_addr(addr: SocketAddr, mut dead: impl FnMut() -> Option<String>) -> Result<(), StartError> {
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        if let Some(why) = dead() {
            return Err(StartError::Failed(why));
        }
        if TcpStream::connect_timeout(&addr, Duration::from_millis(500)).is_ok() {
            // Someone else may own the address if our server failed to bind it.
            return dead().map_or(Ok(()), |why| Err(StartError::Failed(why)));
        }
        if Instant::now() > deadline {
            return Err(StartError::Failed(format!(
                "nothing accepted connections on {addr} within {START_TIMEOUT:?}"
            )));
        }
        sleep(POLL);
    }
}

/// The files a process has open, from `/proc/PID/fd` (empty once it has exited).
fn open_files(pid: u32) -> HashSet<PathBuf> {
    let Ok(fds) = fs::read_dir(format!("/proc/{pid}/fd")) else {
        return HashSet::new();
    };
    fds.filter_map(|fd| fs::read_link(fd.ok()?.path()).ok()).collect()
}

/// Splits the shared dump file at the marker lines.
fn split_dumps<'a>(data: &'a [u8], marker: &[u8]) -> Vec<&'a [u8]> {
    let starts: Vec<usize> = (0..data.len())
        .filter(|&i| (i == 0 || data[i - 1] == b'\n') && data[i..].starts_with(marker))
        .collect();
    let ends = starts.iter().skip(1).copied().chain([data.len()]);
    starts.iter().zip(ends).map(|(&s, e)| &data[s..e]).collect()
}

/// 128 random bits in hex, for the marker.
fn random_hex() -> Result<String, StartError> {
    let mut bytes = [0u8; 16];
    File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .map_err(|e| failed("read /dev/urandom", e))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// Splits one dump into smtp-sink's envelope lines and the message.
fn parse_dump(raw: Vec<u8>) -> ReceivedMessage {
    let mut from = String::new();
    let mut recipients = Vec::new();
    let mut rest = &raw[..];
    let mut body_start = 0;
    while let Some((line, after)) = split_line(rest) {
        let text = String::from_utf8_lossy(line);
        if let Some(args) = text.strip_prefix("X-Mail-Args: ") {
            from = angle_address(args);
        } else if let Some(args) = text.strip_prefix("X-Rcpt-Args: ") {
            recipients.push(angle_address(args));
        } else if text.starts_with("Received: ") {
            // "Received: from ...", "\tby smtp-sink ...;", "\t<date>": always three lines.
            let mut after = after;
            for _ in 0..2 {
                match split_line(after) {
                    Some((_, next)) => after = next,
                    None => after = &after[after.len()..],
                }
            }
            body_start = raw.len() - after.len();
            break;
        } else if !text.starts_with("X-") {
            break;
        }
        rest = after;
    }
    let mut body = raw[body_start..].to_vec();
    // smtp-sink writes the LF of the final ".\r\n" as one extra line ending.
    if body.last() == Some(&b'\n') {
        body.pop();
    }
    ReceivedMessage { from, recipients, body, raw }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_dump() {
        let raw = b"X-Testkit-Dump: 0123\nX-Client-Addr: 127.0.0.1\nX-Client-Proto: ESMTP\nX-Helo-Args: x\n\
            X-Mail-Args: <a@b.c> BODY=8BITMIME\nX-Rcpt-Args: <x@y.z> NOTIFY=NEVER\n\
            X-Rcpt-Args: <w@y.z>\nReceived: from x ([127.0.0.1])\n\tby smtp-sink (smtp-sink) \
            with ESMTP id 76fa651a;\n\tWed, 25 Nov 2026 16:18:51 +0000 (UTC)\n\
            Subject: hi\n\nline1\n.dot\n\n"
            .to_vec();
        let m = parse_dump(raw.clone());
        assert_eq!(m.from, "a@b.c");
        assert_eq!(m.recipients, ["x@y.z", "w@y.z"]);
        assert_eq!(m.body, b"Subject: hi\n\nline1\n.dot\n");
        assert_eq!(m.raw, raw);
    }

    #[test]
    fn splits_at_markers_only() {
        let data = b"M: 1\nbody M: 1\nX\n\nM: 1\nY\n\n";
        assert_eq!(split_dumps(data, b"M: 1\n"), [&b"M: 1\nbody M: 1\nX\n\n"[..], b"M: 1\nY\n\n"]);
        assert!(split_dumps(b"", b"M: 1\n").is_empty());
    }

    #[test]
    fn option_flags() {
        let opts = SinkOptions {
            no_pipelining: true,
            hard_reject: Some("RCPT,DATA"),
            delay_data_reply_secs: Some(2),
            extra_args: vec!["-N".into()],
            ..SinkOptions::default()
        };
        assert_eq!(opts.args(), ["-p", "-f", "RCPT,DATA", "-w", "2", "-N"]);
    }
}
