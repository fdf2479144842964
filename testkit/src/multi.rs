//! [`MultiServer`]: a small SMTP server in Rust for any number of connections, each with its own fault (a 421,
//! a close after the final dot, …), recording what each connection saw and when each MAIL came. For
//! reconnection, pool and rate tests; [`scripted`](crate::scripted) plays one connection byte by byte.

use std::io::{BufRead, BufReader, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// What a [`MultiServer`] connection does besides accepting every message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Accepts everything.
    None,
    /// Answers the n-th MAIL (1-based) of the connection with 421 and closes.
    Reply421AtMail(usize),
    /// Reads the n-th message up to its final dot, then closes without a reply.
    EofAfterDot(usize),
    /// After the 250 to the n-th message, sends an unsolicited 421 and closes.
    Close421After(usize),
    /// After the 250 to the n-th message, closes without a word (an idle timeout, a restart).
    CloseAfter(usize),
    /// Greets with 421 and closes: the server is not taking mail now.
    Greet421,
    /// In the n-th message's body, after its first line, answers 421 and stops reading (a server shutting
    /// down mid-body); closes three seconds later. The client, still writing a large body, never sends its end.
    Reply421MidBody(usize),
}

/// What one connection to a [`MultiServer`] saw.
#[derive(Clone, Debug, Default)]
pub struct Conn {
    /// Every command line, without CRLF (body lines excluded).
    pub commands: Vec<String>,
    /// When each MAIL command arrived.
    pub mail_times: Vec<Instant>,
    /// Messages read up to their final dot (accepted, or dropped by [`Fault::EofAfterDot`]).
    pub data_ends: usize,
    /// The client sent QUIT.
    pub quit: bool,
}

struct Shared {
    conns: Mutex<Vec<Conn>>,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

/// An SMTP server on 127.0.0.1 for any number of connections: the i-th connection gets `faults[i]` (later
/// ones `then`) and announces `capabilities` after EHLO/LHLO. DATA only (no CHUNKING).
pub struct MultiServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
}

impl MultiServer {
    /// The i-th connection gets `faults[i]`, later ones none.
    pub fn start(capabilities: &[&str], faults: Vec<Fault>) -> MultiServer {
        MultiServer::start_then(capabilities, faults, Fault::None)
    }

    /// Every connection gets `fault` (a server that closes after every n-th message, say).
    pub fn every(capabilities: &[&str], fault: Fault) -> MultiServer {
        MultiServer::start_then(capabilities, Vec::new(), fault)
    }

    /// The i-th connection gets `faults[i]`, later ones `then`.
    pub fn start_then(capabilities: &[&str], faults: Vec<Fault>, then: Fault) -> MultiServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("address");
        let shared = Arc::new(Shared { conns: Mutex::new(Vec::new()), threads: Mutex::new(Vec::new()) });
        let mut ehlo = String::from("250-mx.test\r\n");
        for c in capabilities {
            ehlo.push_str(&format!("250-{c}\r\n"));
        }
        ehlo.push_str("250 ENHANCEDSTATUSCODES\r\n");
        // Ready before the acceptor runs: a client may connect as soon as `start` returns.
        let s = Arc::clone(&shared);
        // The acceptor lives as long as the test process: tests end, it does not need to.
        thread::spawn(move || {
            for (i, stream) in listener.incoming().enumerate() {
                let Ok(stream) = stream else { continue };
                let fault = faults.get(i).copied().unwrap_or(then);
                let index = {
                    let mut conns = s.conns.lock().unwrap();
                    conns.push(Conn::default());
                    conns.len() - 1
                };
                let (s2, ehlo) = (Arc::clone(&s), ehlo.clone());
                let t = thread::spawn(move || serve(stream, &ehlo, fault, &s2, index));
                s.threads.lock().unwrap().push(t);
            }
        });
        MultiServer { addr, shared }
    }

    /// `127.0.0.1:PORT`, for `--server`.
    pub fn server(&self) -> String {
        format!("127.0.0.1:{}", self.addr.port())
    }

    /// The server's address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Every connection so far, once each has ended (call it after the client closed them).
    pub fn connections(&self) -> Vec<Conn> {
        let threads = std::mem::take(&mut *self.shared.threads.lock().unwrap());
        for t in threads {
            t.join().expect("connection thread");
        }
        self.shared.conns.lock().unwrap().clone()
    }
}

fn serve(stream: TcpStream, ehlo: &str, fault: Fault, shared: &Shared, index: usize) {
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    // One reply per write: without this, Nagle and delayed ACKs cost ~40 ms a message.
    stream.set_nodelay(true).unwrap();
    let mut out = stream.try_clone().unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let record = |f: &dyn Fn(&mut Conn)| f(&mut shared.conns.lock().unwrap()[index]);
    if fault == Fault::Greet421 {
        let _ = out.write_all(b"421 4.3.2 not now\r\n");
        let _ = out.shutdown(Shutdown::Both);
        return;
    }
    let _ = out.write_all(b"220 mx.test ESMTP\r\n");
    let (mut mails, mut messages) = (0, 0);
    let mut line = String::new();
    loop {
        line.clear();
        match reader.read_line(&mut line) {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        let command = line.trim_end().to_owned();
        record(&|c| c.commands.push(command.clone()));
        let verb = command.split(' ').next().unwrap_or("").to_ascii_uppercase();
        let reply: &[u8] = match verb.as_str() {
            "EHLO" | "LHLO" => ehlo.as_bytes(),
            "MAIL" => {
                mails += 1;
                record(&|c| c.mail_times.push(Instant::now()));
                if fault == Fault::Reply421AtMail(mails) {
                    let _ = out.write_all(b"421 4.3.2 shutting down\r\n");
                    break;
                }
                b"250 2.1.0 ok\r\n"
            }
            "RCPT" => b"250 2.1.5 ok\r\n",
            "DATA" => {
                if out.write_all(b"354 go ahead\r\n").is_err() {
                    break;
                }
                let mut body = String::new();
                if fault == Fault::Reply421MidBody(messages + 1) {
                    let _ = reader.read_line(&mut body);
                    let _ = out.write_all(b"421 4.3.2 shutting down\r\n");
                    // Well after a stalled blocking write has looked for a reply (it does every second).
                    std::thread::sleep(Duration::from_secs(3));
                    break;
                }
                loop {
                    body.clear();
                    match reader.read_line(&mut body) {
                        Ok(0) | Err(_) => return,
                        Ok(_) if body == ".\r\n" => break,
                        Ok(_) => {}
                    }
                }
                messages += 1;
                record(&|c| c.data_ends += 1);
                if fault == Fault::EofAfterDot(messages) {
                    break;
                }
                if fault == Fault::Close421After(messages) {
                    let _ = out.write_all(b"250 2.0.0 queued\r\n421 4.4.2 closing now\r\n");
                    break;
                }
                if fault == Fault::CloseAfter(messages) {
                    let _ = out.write_all(b"250 2.0.0 queued\r\n");
                    break;
                }
                b"250 2.0.0 queued\r\n"
            }
            "RSET" | "NOOP" => b"250 2.0.0 ok\r\n",
            "QUIT" => {
                record(&|c| c.quit = true);
                let _ = out.write_all(b"221 2.0.0 bye\r\n");
                break;
            }
            _ => b"500 5.5.2 what?\r\n",
        };
        if out.write_all(reply).is_err() {
            break;
        }
    }
    let _ = out.shutdown(Shutdown::Both);
}
