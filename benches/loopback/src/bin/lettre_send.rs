//! lettre 0.11's synchronous SMTP client on one connection: `--count N` copies of one message.
//!
//! ```text
//! lettre_send --server 127.0.0.1:PORT [--count N] [--file MESSAGE] [--from A] [--to B] [--no-nodelay]
//! ```
//!
//! Without `--file` the message is ~1 KiB built with lettre's own builder; with it (how the loopback script
//! runs it, so that every client sends the same bytes, also the 50 MiB single message) the file is read
//! into memory, as lettre's `send` takes the whole message as `&[u8]`.
//!
//! # TCP_NODELAY
//!
//! lettre's synchronous transport offers no way to set TCP_NODELAY: `SmtpConnection::connect` creates the
//! socket itself (socket2, inside the private `NetworkStream`), there is no constructor from a caller's
//! `TcpStream` (only the tokio/async-std `AsyncSmtpConnection::connect_with_transport` takes one) and no
//! accessor to the socket. Without it every message stalls: lettre writes the dot-stuffed body and then
//! `\r\n.\r\n` in a second `write`, Nagle's algorithm holds that small segment until the body is ACKed,
//! and the server delays its ACK (~40 ms on Linux), so about 23 messages a second.
//!
//! The cleanest way that still measures lettre's own code path unchanged is to find the socket lettre
//! opened and set the option on it: this program opens no other connection, so it is the one file
//! descriptor in `/proc/self/fd` that the kernel calls a socket and whose peer is the server (exactly one
//! is required); then `setsockopt(TCP_NODELAY)` through socket2's `SockRef` (socket2 is already in
//! lettre's tree), read back to confirm. It is set after the greeting and EHLO, before any message.
//! `--no-nodelay` skips this: lettre as shipped.

use std::os::fd::{BorrowedFd, RawFd};
use std::time::{Duration, Instant};

use lettre::address::{Address, Envelope};
use lettre::transport::smtp::client::SmtpConnection;
use lettre::transport::smtp::extension::ClientId;
use smtp_loopback_bench::{Args, report};

const USAGE: &str = "lettre_send --server HOST:PORT [--count N] [--file MESSAGE] [--from ADDR] [--to ADDR] [--no-nodelay]";

fn open_fds() -> Vec<RawFd> {
    std::fs::read_dir("/proc/self/fd")
        .map(|d| {
            d.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// Sets TCP_NODELAY on the one open socket connected to `server` (lettre's); returns its fd.
fn set_nodelay_on_lettres_socket(server: std::net::SocketAddr) -> Result<RawFd, String> {
    let mut found = None;
    for fd in open_fds() {
        let is_socket = std::fs::read_link(format!("/proc/self/fd/{fd}"))
            .map(|l| l.to_string_lossy().starts_with("socket:"))
            .unwrap_or(false);
        if !is_socket {
            continue;
        }
        // SAFETY: `fd` is open (listed just now; this program is single-threaded and closes nothing
        // meanwhile; the directory's own fd, closed by now, fails the socket test), and it is a socket, as
        // SockRef requires.
        // The borrow does not outlive this iteration.
        let fd_ref = unsafe { BorrowedFd::borrow_raw(fd) };
        let sock = socket2::SockRef::from(&fd_ref);
        let peer = sock.peer_addr().ok().and_then(|a| a.as_socket());
        if peer == Some(server) {
            if found.is_some() {
                return Err("more than one socket connected to the server".into());
            }
            sock.set_tcp_nodelay(true).map_err(|e| e.to_string())?;
            if !sock.tcp_nodelay().map_err(|e| e.to_string())? {
                return Err("TCP_NODELAY did not stick".into());
            }
            found = Some(fd);
        }
    }
    found.ok_or_else(|| "no socket connected to the server".into())
}

fn main() {
    let args = Args::parse(USAGE, &["--no-nodelay"]);
    let nodelay = !args.has("--no-nodelay");
    let from: Address = args.from.parse().expect("--from: an address");
    let to: Address = args.to.parse().expect("--to: an address");
    let message = args.message(|| {
        lettre::Message::builder()
            .from(from.clone().into())
            .to(to.clone().into())
            .subject("loopback bench")
            .body("x".repeat(76 * 10))
            .expect("a valid message")
            .formatted()
    });
    let envelope = Envelope::new(Some(from), vec![to]).expect("a valid envelope");
    let hello = ClientId::Domain("bench.example.org".into());

    let started = Instant::now();
    let mut conn = match SmtpConnection::connect(
        args.server,
        Some(Duration::from_secs(60)),
        &hello,
        None,
        None,
    ) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("lettre_send: connect: {e}");
            std::process::exit(2)
        }
    };
    if nodelay {
        if let Err(e) = set_nodelay_on_lettres_socket(args.server) {
            eprintln!("lettre_send: cannot set TCP_NODELAY: {e}");
            std::process::exit(2)
        }
    }
    let mut sent = 0u64;
    for _ in 0..args.count {
        match conn.send(&envelope, &message) {
            Ok(_) => sent += 1,
            Err(e) => {
                eprintln!("lettre_send: message {}: {e}", sent + 1);
                break;
            }
        }
    }
    let _ = conn.quit();
    let seconds = started.elapsed().as_secs_f64();
    report(
        sent,
        seconds,
        sent * message.len() as u64,
        &[("nodelay", nodelay.to_string())],
    );
    if sent != args.count {
        std::process::exit(2)
    }
}
