//! Real SMTP servers on `127.0.0.1` for interop tests.
//!
//! Three servers, each started on its own free port in its own temporary folder, so tests may run
//! them side by side (cargo runs tests in threads):
//!
//! | type | what it is | good for |
//! | --- | --- | --- |
//! | [`SmtpSink`] | Postfix's `smtp-sink` test server | fast, scriptable faults (reject or drop after a command, no ESMTP, LMTP, slow DATA reply) |
//! | [`Aiosmtpd`] | Python's `aiosmtpd` with our handler | byte-exact message capture, STARTTLS, implicit TLS, AUTH PLAIN/LOGIN, per-recipient refusals |
//! | [`Postfix`] | a private Postfix 3.7 `smtpd` delivering to Maildirs | a real MTA: PIPELINING, SIZE, 8BITMIME, DSN, SMTPUTF8, CHUNKING, ENHANCEDSTATUSCODES |
//!
//! Besides these, [`ScriptedServer`] (module [`scripted`]) is a hostile or broken server in Rust:
//! it plays a fixed [`Script`] of replies, delays, disconnects and TLS upgrades and records every
//! byte the client sent. It needs nothing installed.
//!
//! ```no_run
//! use std::time::Duration;
//! use smtp_testkit::{SinkOptions, SmtpSink};
//!
//! let sink = SmtpSink::start(SinkOptions::default()).expect("smtp-sink");
//! // ... connect your client to sink.addr() and send one message ...
//! let got = sink.wait_for(1, Duration::from_secs(5));
//! assert_eq!(got[0].recipients, ["bob@example.org"]);
//! assert_eq!(got[0].body, b"Subject: hi\n\nhello\n");
//! ```
//!
//! # Installing the servers
//!
//! Run `scripts/install-test-servers` as root (Debian: `postfix` without configuration and
//! `smtp-sink`; PyPI: `aiosmtpd`). A missing program makes `start` return
//! [`StartError::Missing`]; tests should fail on it rather than skip, since CI installs them.
//! Tests that need a server are marked `#[ignore = "..."]` across the workspace; run them with
//! `cargo test -- --include-ignored`.
//!
//! # Privileges
//!
//! [`Postfix`] needs root (it fails with [`StartError::Failed`] otherwise). [`SmtpSink`] works as
//! any user; as root it runs as `nobody` (`-u nobody`). [`Aiosmtpd`] runs as the caller.
//!
//! # Bodies: what each server changes
//!
//! Every server un-stuffs dots, so the bodies below are compared with the message *before* your
//! client dot-stuffed it (for BDAT, with the chunk contents).
//!
//! - [`Aiosmtpd`]: byte-exact. `body` is aiosmtpd's `envelope.original_content`: the DATA bytes
//!   up to and including the CRLF before the final `.`, with one leading `.` removed from every
//!   line that starts with one (lines are split on CRLF only). CRLF stays CRLF; bare CR and bare LF
//!   are kept as sent.
//! - [`SmtpSink`]: every CR byte is deleted (so CRLF becomes LF and a bare CR vanishes: `a\rb`
//!   is stored as `ab`), a `.` is un-stuffed only after CRLF (or at the start of the body).
//!   `body` is everything up to and including the LF of the line before the final `.`.
//! - [`Postfix`]: CRLF becomes LF, a bare CR becomes a space, a bare LF stays a line break, a
//!   missing final line ending is added, and an empty line is inserted before a message that
//!   does not start with a header. `body` is the stored file after the headers Postfix
//!   prepends.
//!
//! # Processes never outlive the test process
//!
//! Each server is stopped when its value is dropped. If the test process dies without dropping it
//! (panic with `panic = "abort"`, SIGKILL, Ctrl-C), a watcher notices: the watcher holds the read
//! end of a pipe whose only write end is in the test process, so it sees end-of-file exactly when
//! the test process is gone, then kills the server and deletes its folder. For `aiosmtpd` the watcher
//! is a thread inside the Python server (reading its stdin); for `smtp-sink` and Postfix it is a
//! small `sh` in its own process group (so Ctrl-C on the terminal does not kill it first). We did
//! not use `PR_SET_PDEATHSIG`: it fires when the *thread* that spawned the child exits, which
//! would kill a server shared between tests, and it is cleared when smtp-sink changes its user.

#![warn(missing_docs)]

mod aio;
pub mod conformance;
#[cfg(feature = "dns")]
pub mod dns;
pub mod multi;
mod postfix;
pub mod scripted;
mod sink;
pub mod tls_mx;

use std::fmt;
use std::fs;
use std::io;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

pub use aio::{AioOptions, Aiosmtpd};
pub use multi::MultiServer;
pub use postfix::Postfix;
pub use scripted::{Gate, Recording, Script, ScriptedServer};
pub use sink::{SinkOptions, SmtpSink};

/// Why a server could not start: the binary is missing (tests should report this as a failure in
/// CI, since CI installs them), or it failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartError {
    /// The named program or Python module is not installed (run `scripts/install-test-servers`).
    Missing(&'static str),
    /// The server was found but did not start; the text includes what it printed, if anything.
    Failed(String),
}

impl fmt::Display for StartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StartError::Missing(what) => {
                write!(f, "{what} is not installed (run scripts/install-test-servers as root)")
            }
            StartError::Failed(why) => write!(f, "test server failed to start: {why}"),
        }
    }
}

impl std::error::Error for StartError {}

/// A port on 127.0.0.1 that was free a moment ago: binds `127.0.0.1:0`, reads the port, and
/// closes the socket.
///
/// Another process may take the port before you bind it; the servers here retry with a new port
/// when that happens.
pub fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind 127.0.0.1:0")
}

/// One message as a server stored it.
///
/// How `body` relates to the bytes your client sent depends on the server: see the crate
/// documentation ("Bodies: what each server changes") and each server's `messages` method.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedMessage {
    /// The envelope sender (MAIL FROM) without angle brackets or parameters; empty for `<>`.
    pub from: String,
    /// The envelope recipients the server accepted, without angle brackets or parameters.
    pub recipients: Vec<String>,
    /// The message content, normalised as the server does it (see the crate documentation).
    pub body: Vec<u8>,
    /// The whole stored file, including the server's own envelope lines or headers (useful for
    /// checking MAIL/RCPT parameters such as `BODY=8BITMIME` or `NOTIFY=`).
    pub raw: Vec<u8>,
}

/// How long `start` waits for a server to accept connections.
const START_TIMEOUT: Duration = Duration::from_secs(10);
/// How often `start` and the `wait_for` methods look again.
const POLL: Duration = Duration::from_millis(20);
/// How many fresh ports `start` tries when the port was taken between choosing and binding it.
const PORT_ATTEMPTS: usize = 3;

fn localhost(port: u16) -> SocketAddr {
    SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, port))
}

/// Runs `attempt` with fresh ports until it does not fail with "Address already in use".
fn with_free_port<T>(mut attempt: impl FnMut(u16) -> Result<T, StartError>) -> Result<T, StartError> {
    let mut tries = 0;
    loop {
        tries += 1;
        match attempt(free_port()) {
            Err(StartError::Failed(why)) if tries < PORT_ATTEMPTS && why.contains("in use") => {}
            other => return other,
        }
    }
}

/// Polls until `port` accepts a connection. `dead` reports why the server is gone, if it is.
fn wait_for_port(port: u16, mut dead: impl FnMut() -> Option<String>) -> Result<(), StartError> {
    let deadline = Instant::now() + START_TIMEOUT;
    let addr = localhost(port);
    loop {
        if let Some(why) = dead() {
            return Err(StartError::Failed(why));
        }
        if TcpStream::connect_timeout(&addr, Duration::from_millis(500)).is_ok() {
            // Someone else may own the port if our server failed to bind it.
            return match dead() {
                Some(why) => Err(StartError::Failed(why)),
                None => Ok(()),
            };
        }
        if Instant::now() > deadline {
            return Err(StartError::Failed(format!(
                "nothing accepted connections on {addr} within {START_TIMEOUT:?}"
            )));
        }
        sleep(POLL);
    }
}

/// Calls `read` every [`POLL`] until it returns at least `n` messages or `timeout` passes; returns
/// the last result either way.
fn poll_messages(
    n: usize,
    timeout: Duration,
    mut read: impl FnMut() -> Vec<ReceivedMessage>,
) -> Vec<ReceivedMessage> {
    let deadline = Instant::now() + timeout;
    loop {
        let got = read();
        if got.len() >= n || Instant::now() >= deadline {
            return got;
        }
        sleep(POLL);
    }
}

/// Looks for a program in `PATH`, then in the sbin folders a non-root `PATH` often lacks.
fn find_program(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/usr/local/sbin", "/sbin"].map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// The uid and gid of a user from `/etc/passwd`.
fn user_ids(user: &str) -> Option<(u32, u32)> {
    let passwd = fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|line| {
        let mut fields = line.split(':');
        (fields.next()? == user).then_some(())?;
        let _password = fields.next()?;
        Some((fields.next()?.parse().ok()?, fields.next()?.parse().ok()?))
    })
}

/// A temporary folder (removed on drop) that other users can traverse.
fn temp_dir(kind: &str) -> Result<tempfile::TempDir, StartError> {
    let dir = tempfile::Builder::new()
        .prefix(&format!("smtp-testkit-{kind}-"))
        .tempdir()
        .map_err(|e| failed("create a temporary folder", e))?;
    set_mode(dir.path(), 0o755)?;
    Ok(dir)
}

fn set_mode(path: &Path, mode: u32) -> Result<(), StartError> {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .map_err(|e| failed(&format!("chmod {}", path.display()), e))
}

fn failed(what: &str, e: io::Error) -> StartError {
    StartError::Failed(format!("{what}: {e}"))
}

/// Reads a file for an error message, with a note if there is nothing to show.
fn read_log(path: &Path) -> String {
    match fs::read(path) {
        Ok(text) if !text.is_empty() => String::from_utf8_lossy(&text).trim_end().to_string(),
        _ => "(no output)".to_string(),
    }
}

/// Why `child` has exited, if it has.
fn exited(child: &mut Child, log: &Path) -> Option<String> {
    match child.try_wait() {
        Ok(None) => None,
        Ok(Some(status)) => Some(format!("exited with {status}: {}", read_log(log))),
        Err(e) => Some(format!("cannot wait for it: {e}")),
    }
}

/// A shell that runs `script` once its stdin reaches end-of-file, i.e. once the test process
/// has closed the pipe or died. Dropping it kills the shell without running the script.
struct Watchdog(Child);

impl Watchdog {
    /// `script` runs under `sh -c` with `args` as `$1`, `$2`, ...
    fn spawn(script: &str, args: &[&std::ffi::OsStr]) -> Result<Self, StartError> {
        use std::os::unix::process::CommandExt;
        Command::new("sh")
            .arg("-c")
            .arg(format!("read -r _; {script}"))
            .arg("smtp-testkit-watchdog")
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .map(Watchdog)
            .map_err(|e| failed("spawn the watchdog shell", e))
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The regular files in `dir` (none if it does not exist).
fn files_in(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .map(|e| e.path())
        .collect()
}

/// The address inside `<...>` at the start of a MAIL/RCPT argument, or its first word.
fn angle_address(args: &str) -> String {
    let args = args.trim_start();
    match args.strip_prefix('<') {
        Some(rest) => rest.split('>').next().unwrap_or_default().to_string(),
        None => args.split(' ').next().unwrap_or_default().to_string(),
    }
}

/// Splits off the first line (without its LF); `None` when there is no LF left.
fn split_line(data: &[u8]) -> Option<(&[u8], &[u8])> {
    let end = data.iter().position(|&b| b == b'\n')?;
    Some((&data[..end], &data[end + 1..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn angle_addresses() {
        assert_eq!(angle_address("<a@b.c> BODY=8BITMIME"), "a@b.c");
        assert_eq!(angle_address("<>"), "");
        assert_eq!(angle_address("a@b.c SIZE=1"), "a@b.c");
    }

    #[test]
    fn free_ports_are_bindable() {
        let port = free_port();
        assert_ne!(port, 0);
        TcpListener::bind((Ipv4Addr::LOCALHOST, port)).expect("port was free");
    }

    #[test]
    fn passwd_lookup() {
        assert_eq!(user_ids("root"), Some((0, 0)));
        assert_eq!(user_ids("no such user here"), None);
    }
}
