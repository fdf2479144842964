//! A small SMTP server for MX tests of TLS: it listens where it is told (127.0.0.2:PORT, …), offers
//! STARTTLS, and either completes the handshake with a **self-signed** certificate for its MX name or
//! breaks it (bytes that are not TLS, then a hangup). Every message is stored with whether it came over
//! TLS. Neither `smtp-sink` nor the other test servers can do this on an address of our choosing.
//!
//! It speaks just enough SMTP for a client: EHLO/HELO, STARTTLS, MAIL, RCPT, DATA (dot-unstuffed),
//! RSET, NOOP, QUIT; one thread a connection, each bounded by a 10 s read timeout.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::{ServerConfig, ServerConnection, StreamOwned};

use crate::{StartError, failed};

/// What the server does with STARTTLS.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TlsMxMode {
    /// `220`, then a TLS handshake with a self-signed certificate for the MX name (no CA vouches for it).
    SelfSigned,
    /// `220`, then, to the client's hello, bytes that are not TLS and a hangup: the client's handshake fails. A new session works
    /// in plaintext (STARTTLS is still offered; a client that falls back does not use it).
    BrokenHandshake,
}

/// One message as [`TlsMx`] stored it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsMxMessage {
    /// Whether the session was under TLS when the message came.
    pub tls: bool,
    /// MAIL FROM, without angle brackets.
    pub from: String,
    /// RCPT TOs, without angle brackets.
    pub recipients: Vec<String>,
    /// The DATA content, dot-unstuffed, CRLF kept, up to the final dot.
    pub body: Vec<u8>,
}

/// The server; stops accepting when dropped.
pub struct TlsMx {
    addr: SocketAddr,
    certificate: String,
    messages: Arc<Mutex<Vec<TlsMxMessage>>>,
    connections: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl TlsMx {
    /// Listens on `listen` as the MX host `name` (the name in its self-signed certificate).
    pub fn start(listen: SocketAddr, name: &str, mode: TlsMxMode) -> Result<TlsMx, StartError> {
        let generated = rcgen::generate_simple_self_signed(vec![name.to_owned()])
            .map_err(|e| StartError::Failed(format!("generate a certificate: {e}")))?;
        let certificate = generated.cert.pem();
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(generated.signing_key.serialize_der()));
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .and_then(|b| {
                b.with_no_client_auth()
                    .with_single_cert(vec![CertificateDer::from(generated.cert.der().to_vec())], key)
            })
            .map_err(|e| StartError::Failed(format!("TLS server configuration: {e}")))?;
        let config = Arc::new(config);
        let listener = TcpListener::bind(listen).map_err(|e| failed(&format!("bind {listen}"), e))?;
        listener.set_nonblocking(true).map_err(|e| failed("non-blocking listener", e))?;
        let addr = listener.local_addr().map_err(|e| failed("read the address", e))?;
        let messages = Arc::new(Mutex::new(Vec::new()));
        let connections = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (messages, connections, stop) = (messages.clone(), connections.clone(), stop.clone());
            let name = name.to_owned();
            thread::Builder::new()
                .name(format!("tls-mx-{addr}"))
                .spawn(move || {
                    while !stop.load(Ordering::SeqCst) {
                        match listener.accept() {
                            Ok((stream, _)) => {
                                connections.fetch_add(1, Ordering::SeqCst);
                                let session = Session { name: name.clone(), mode, config: config.clone() };
                                let messages = messages.clone();
                                thread::spawn(move || {
                                    let _ = session.run(stream, &messages);
                                });
                            }
                            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                                thread::sleep(Duration::from_millis(2))
                            }
                            Err(_) => return,
                        }
                    }
                })
                .map_err(|e| failed("spawn the server thread", e))?
        };
        Ok(TlsMx { addr, certificate, messages, connections, stop, thread: Some(thread) })
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Its self-signed certificate (PEM).
    pub fn certificate_pem(&self) -> &str {
        &self.certificate
    }

    /// The messages so far.
    pub fn messages(&self) -> Vec<TlsMxMessage> {
        self.messages.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

impl Drop for TlsMx {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

struct Session {
    name: String,
    mode: TlsMxMode,
    config: Arc<ServerConfig>,
}

/// What a plaintext dialogue ended with.
#[derive(PartialEq, Eq)]
enum End {
    Quit,
    StartTls,
}

impl Session {
    fn run(&self, stream: TcpStream, messages: &Mutex<Vec<TlsMxMessage>>) -> io::Result<()> {
        stream.set_nonblocking(false)?;
        stream.set_read_timeout(Some(Duration::from_secs(10)))?;
        let mut plain = BufReader::new(stream);
        plain.get_mut().write_all(format!("220 {} ESMTP test MX\r\n", self.name).as_bytes())?;
        if self.dialogue(&mut plain, false, messages)? != End::StartTls {
            return Ok(());
        }
        // The client waits for the 220 before its handshake: nothing is left in the buffer.
        let mut stream = plain.into_inner();
        if self.mode == TlsMxMode::BrokenHandshake {
            // After the client's hello (bytes before it would be a STARTTLS injection, which clients
            // refuse as such): an answer that is not TLS.
            let _ = stream.read(&mut [0; 512])?;
            stream.write_all(b"this is not TLS\r\n")?;
            return Ok(());
        }
        let conn = ServerConnection::new(self.config.clone()).map_err(io::Error::other)?;
        let mut tls = BufReader::new(StreamOwned::new(conn, stream));
        self.dialogue(&mut tls, true, messages)?;
        Ok(())
    }

    /// Answers commands until QUIT, EOF, or (in plaintext) STARTTLS.
    fn dialogue<S: Read + Write>(
        &self,
        stream: &mut BufReader<S>,
        tls: bool,
        messages: &Mutex<Vec<TlsMxMessage>>,
    ) -> io::Result<End> {
        let (mut from, mut recipients) = (String::new(), Vec::new());
        loop {
            let mut line = String::new();
            if stream.read_line(&mut line)? == 0 {
                return Ok(End::Quit);
            }
            let verb = line.get(..4).unwrap_or("").to_ascii_uppercase();
            let reply = match verb.as_str() {
                "EHLO" if tls => format!("250-{}\r\n250 8BITMIME\r\n", self.name),
                "EHLO" => format!("250-{}\r\n250-STARTTLS\r\n250 8BITMIME\r\n", self.name),
                "HELO" => format!("250 {}\r\n", self.name),
                "STAR" if !tls => {
                    stream.get_mut().write_all(b"220 2.0.0 ready to start TLS\r\n")?;
                    return Ok(End::StartTls);
                }
                "MAIL" => {
                    from = angle(&line);
                    "250 2.1.0 ok\r\n".into()
                }
                "RCPT" => {
                    recipients.push(angle(&line));
                    "250 2.1.5 ok\r\n".into()
                }
                "DATA" => {
                    stream.get_mut().write_all(b"354 go ahead\r\n")?;
                    let body = read_data(stream)?;
                    let message =
                        TlsMxMessage { tls, from: from.clone(), recipients: recipients.clone(), body };
                    messages.lock().unwrap_or_else(|e| e.into_inner()).push(message);
                    recipients.clear();
                    "250 2.0.0 queued\r\n".into()
                }
                "RSET" => {
                    recipients.clear();
                    "250 2.0.0 ok\r\n".into()
                }
                "NOOP" => "250 2.0.0 ok\r\n".into(),
                "QUIT" => {
                    stream.get_mut().write_all(b"221 2.0.0 bye\r\n")?;
                    return Ok(End::Quit);
                }
                _ => "502 5.5.2 not implemented\r\n".into(),
            };
            stream.get_mut().write_all(reply.as_bytes())?;
        }
    }
}

/// The lines up to the final dot, dot-unstuffed (RFC 5321 §4.5.2).
fn read_data<S: Read>(stream: &mut BufReader<S>) -> io::Result<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let mut line = Vec::new();
        if stream.read_until(b'\n', &mut line)? == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        if line == b".\r\n" {
            return Ok(body);
        }
        body.extend_from_slice(line.strip_prefix(b".").unwrap_or(&line));
    }
}

/// The address inside `<…>` of a MAIL or RCPT line.
fn angle(line: &str) -> String {
    line.split_once('<')
        .and_then(|(_, rest)| rest.split_once('>'))
        .map(|(a, _)| a.to_owned())
        .unwrap_or_default()
}
