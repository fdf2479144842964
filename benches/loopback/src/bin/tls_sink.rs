//! A STARTTLS-capable SMTP sink on loopback for the TLS benchmarks: it accepts every message and keeps
//! nothing (Postfix's `smtp-sink` has no TLS).
//!
//! ```text
//! tls_sink --listen 127.0.0.1:PORT --ca-out CA.pem
//! ```
//!
//! At start it makes a test CA and a leaf certificate for `localhost` and `127.0.0.1` signed by it (rcgen,
//! ECDSA P-256: webpki refuses a self-signed CA used directly as a server certificate) and writes the CA
//! to `--ca-out` before it listens, so clients can trust it with `--ca-file`. Each connection gets a
//! thread. It offers PIPELINING, 8BITMIME and STARTTLS (before TLS), answers MAIL/RCPT/RSET/NOOP with
//! 250, DATA with 354 and the end of data (CRLF . CRLF) with 250, QUIT with 221. Like smtp-sink it answers
//! a whole batch of pipelined commands in one write: it replies after handling everything one read gave.
//! No CHUNKING, so every client sends DATA, the same bytes as the raw reference.

use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;

use memchr::memmem;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::{ServerConfig, ServerConnection, StreamOwned};

const USAGE: &str = "tls_sink --listen HOST:PORT --ca-out CA.pem";

fn main() {
    let (mut listen, mut ca_out) = (None, None);
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--listen" => listen = args.next(),
            "--ca-out" => ca_out = args.next(),
            "-h" | "--help" => {
                println!("usage: {USAGE}");
                return;
            }
            other => fail(&format!("unknown argument {other}\nusage: {USAGE}")),
        }
    }
    let (Some(listen), Some(ca_out)) = (listen, ca_out) else {
        fail(&format!(
            "--listen and --ca-out are required\nusage: {USAGE}"
        ))
    };
    let (ca_pem, config) = tls_config().unwrap_or_else(|e| fail(&format!("certificates: {e}")));
    std::fs::write(&ca_out, ca_pem)
        .unwrap_or_else(|e| fail(&format!("cannot write {ca_out}: {e}")));
    let listener = TcpListener::bind(&listen)
        .unwrap_or_else(|e| fail(&format!("cannot listen on {listen}: {e}")));
    for stream in listener.incoming() {
        let Ok(stream) = stream else { continue };
        let config = config.clone();
        std::thread::spawn(move || {
            // A client that hangs up or fails its handshake only ends its own session.
            let _ = session(stream, config);
        });
    }
}

fn fail(msg: &str) -> ! {
    eprintln!("tls_sink: {msg}");
    std::process::exit(64)
}

/// A CA (PEM, for the clients) and the server configuration with a leaf certificate signed by it.
fn tls_config() -> Result<(String, Arc<ServerConfig>), Box<dyn std::error::Error>> {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer,
        KeyPair, KeyUsagePurpose,
    };
    let mut ca_params = CertificateParams::new(Vec::new())?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "loopback bench test CA");
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_key = KeyPair::generate()?;
    let ca_cert = ca_params.self_signed(&ca_key)?;
    let issuer = Issuer::new(ca_params, ca_key);

    let mut params =
        CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])?;
    params
        .distinguished_name
        .push(DnType::CommonName, "localhost");
    params.use_authority_key_identifier_extension = true;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let key = KeyPair::generate()?;
    let cert = params.signed_by(&key, &issuer)?;

    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(
            vec![CertificateDer::from(cert.der().to_vec())],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
        )?;
    Ok((ca_cert.pem(), Arc::new(config)))
}

/// The connection, before or after STARTTLS.
enum Conn {
    Plain(TcpStream),
    Tls(Box<StreamOwned<ServerConnection, TcpStream>>),
}

impl Conn {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Conn::Plain(s) => s.read(buf),
            Conn::Tls(s) => s.read(buf),
        }
    }

    fn write_all(&mut self, data: &[u8]) -> io::Result<()> {
        match self {
            Conn::Plain(s) => s.write_all(data),
            Conn::Tls(s) => {
                s.write_all(data)?;
                s.flush()
            }
        }
    }
}

/// What the next input bytes are.
enum Mode {
    Commands,
    /// Message content; `tail` holds the last bytes seen (at most 4), starting as CRLF so that a body that
    /// is only `.` CRLF ends at once.
    Data {
        tail: Vec<u8>,
    },
}

const END: &[u8] = b"\r\n.\r\n";

fn session(stream: TcpStream, config: Arc<ServerConfig>) -> io::Result<()> {
    stream.set_nodelay(true)?;
    let mut conn = Conn::Plain(stream);
    conn.write_all(b"220 tls-sink ESMTP\r\n")?;
    let finder = memmem::Finder::new(END);
    let mut buf = vec![0u8; 256 * 1024];
    // Bytes read but not handled yet (an incomplete command line) are kept at buf[..have].
    let mut have = 0;
    let mut mode = Mode::Commands;
    let mut replies = Vec::new();
    loop {
        if have == buf.len() {
            return Err(io::Error::other("command line too long"));
        }
        let n = conn.read(&mut buf[have..])?;
        if n == 0 {
            return Ok(());
        }
        have += n;
        let mut at = 0;
        let mut starttls = false;
        let mut quit = false;
        while at < have {
            match &mut mode {
                Mode::Data { tail } => {
                    let data = &buf[at..have];
                    // The end of data may straddle reads: look at the kept tail plus the first bytes first.
                    let head = &data[..data.len().min(END.len() - 1)];
                    let mut joined = std::mem::take(tail);
                    let kept = joined.len();
                    joined.extend_from_slice(head);
                    let end = match finder.find(&joined) {
                        Some(i) => Some(i + END.len() - kept),
                        None => finder.find(data).map(|i| i + END.len()),
                    };
                    match end {
                        Some(used) => {
                            at += used;
                            replies.extend_from_slice(b"250 2.0.0 Ok: queued\r\n");
                            mode = Mode::Commands;
                        }
                        None => {
                            // Keep the last four bytes seen.
                            let keep = END.len() - 1;
                            *tail = if data.len() >= keep {
                                data[data.len() - keep..].to_vec()
                            } else {
                                joined[joined.len().saturating_sub(keep)..].to_vec()
                            };
                            at = have;
                        }
                    }
                }
                Mode::Commands => {
                    let Some(nl) = memchr::memchr(b'\n', &buf[at..have]) else {
                        break;
                    };
                    let line = &buf[at..at + nl + 1];
                    at += nl + 1;
                    let mut verb = [0u8; 4];
                    if let Some(v) = line.get(..4) {
                        verb.copy_from_slice(v);
                        verb.make_ascii_uppercase();
                    }
                    match &verb {
                        b"EHLO" => {
                            replies.extend_from_slice(
                                b"250-tls-sink\r\n250-PIPELINING\r\n250-8BITMIME\r\n",
                            );
                            if matches!(conn, Conn::Plain(_)) {
                                replies.extend_from_slice(b"250-STARTTLS\r\n");
                            }
                            replies.extend_from_slice(b"250 SIZE 2147483648\r\n");
                        }
                        b"HELO" => replies.extend_from_slice(b"250 tls-sink\r\n"),
                        b"MAIL" | b"RCPT" | b"RSET" | b"NOOP" => {
                            replies.extend_from_slice(b"250 2.0.0 Ok\r\n")
                        }
                        b"DATA" => {
                            replies.extend_from_slice(b"354 End data with <CR><LF>.<CR><LF>\r\n");
                            mode = Mode::Data {
                                tail: b"\r\n".to_vec(),
                            };
                        }
                        b"STAR" if matches!(conn, Conn::Plain(_)) => {
                            replies.extend_from_slice(b"220 2.0.0 Ready to start TLS\r\n");
                            starttls = true;
                            break;
                        }
                        b"QUIT" => {
                            replies.extend_from_slice(b"221 2.0.0 Bye\r\n");
                            quit = true;
                            break;
                        }
                        _ => replies
                            .extend_from_slice(b"500 5.5.2 Error: command not recognized\r\n"),
                    }
                }
            }
        }
        if !replies.is_empty() {
            conn.write_all(&replies)?;
            replies.clear();
        }
        if quit {
            return Ok(());
        }
        if starttls {
            if at != have {
                // Bytes pipelined after STARTTLS would be a client bug (or an injection): refuse.
                return Err(io::Error::other("data after STARTTLS"));
            }
            let Conn::Plain(stream) = conn else {
                unreachable!("STARTTLS is only taken in plaintext")
            };
            let tls = ServerConnection::new(config.clone()).map_err(io::Error::other)?;
            conn = Conn::Tls(Box::new(StreamOwned::new(tls, stream)));
            have = 0;
            continue;
        }
        buf.copy_within(at..have, 0);
        have -= at;
    }
}
