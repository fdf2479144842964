//! The driver against a scripted server on 127.0.0.1: sessions with and without pipelining, several
//! messages, refusals, a 421, EOF and silence at the worst moments, a large streamed body, BDAT, LMTP.

mod common;

use std::io::{self, ErrorKind, Read};
use std::time::Duration;

use common::{PATIENCE, Peer, options, serve, tricky_body};
use smtp_blocking::{Error, SmtpClient};
use smtp_proto::body::{normalize_line_endings, unstuff};
use smtp_proto::command::BodyType;
use smtp_proto::{Envelope, Failure, Outcome, Protocol, RecipientStatus, SendError, Timer, Unsendable};

const EHLO_PIPELINING: &str = "250-mx.test\r\n250-PIPELINING\r\n250-8BITMIME\r\n250 SIZE 10000000\r\n";
const EHLO_PLAIN: &str = "250-mx.test\r\n250 8BITMIME\r\n";

fn envelope(to: &[&str]) -> Envelope {
    Envelope::parse("alice@example.org", to).expect("valid addresses")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn pipelined_session_sends_mail_rcpt_data_in_one_go() {
    let (port, server) = serve(|p: &mut Peer| {
        p.send("220 mx.test ESMTP\r\n");
        p.expect("EHLO client.test");
        p.send(EHLO_PIPELINING);
        // All three commands arrive before any reply: the client pipelined them.
        p.expect("MAIL FROM:<alice@example.org>");
        p.expect("RCPT TO:<bob@example.org>");
        p.expect("DATA");
        p.send("250 2.1.0 ok\r\n250 2.1.5 ok\r\n354 go ahead\r\n");
        let wire = p.data();
        p.send("250 2.0.0 queued as 1\r\n");
        p.expect("QUIT");
        p.send("221 2.0.0 bye\r\n");
        wire
    });
    let mut client = SmtpClient::connect(&options(port)).expect("connect");
    assert!(!client.is_tls());
    assert!(client.capabilities().expect("capabilities").pipelining());
    let body = b"Subject: hi\r\n\r\n.hidden\r\nbye\r\n";
    let report = client.send(envelope(&["bob@example.org"]), std::io::Cursor::new(&body[..])).expect("send");
    assert_eq!(report.outcome, Outcome::Sent);
    assert!(report.all_delivered());
    assert_eq!(report.final_reply.expect("final reply").code(), 250);
    client.quit().expect("quit");
    let (wire, received) = server.join().expect("server");
    assert_eq!(unstuff(&wire).expect("well-formed DATA"), body);
    assert!(text(&received).ends_with("\r\n.\r\nQUIT\r\n"), "{}", text(&received));
}

#[test]
fn lock_step_session_waits_for_each_reply() {
    let (port, server) = serve(|p: &mut Peer| {
        p.send("220 mx.test ESMTP\r\n");
        p.expect("EHLO client.test");
        p.send(EHLO_PLAIN);
        for (cmd, reply) in [
            ("MAIL FROM:<alice@example.org>", "250 ok\r\n"),
            ("RCPT TO:<bob@example.org>", "250 ok\r\n"),
            ("RCPT TO:<carol@example.org>", "250 ok\r\n"),
            ("DATA", "354 go\r\n"),
        ] {
            p.expect(cmd);
            // Nothing beyond this command may have arrived: the client waits for the reply.
            assert_eq!(p.buffered(), 0, "the client did not wait after {cmd}");
            p.send(reply);
        }
        let wire = p.data();
        p.send("250 queued\r\n");
        p.expect("QUIT");
        p.send("221 bye\r\n");
        wire
    });
    let mut client = SmtpClient::connect(&options(port)).expect("connect");
    let report = client
        .send(envelope(&["bob@example.org", "carol@example.org"]), std::io::Cursor::new(&b"hello\n"[..]))
        .expect("send");
    assert_eq!(report.outcome, Outcome::Sent);
    assert_eq!(report.recipients.len(), 2);
    client.quit().expect("quit");
    let (wire, _) = server.join().expect("server");
    assert_eq!(wire, b"hello\r\n.\r\n");
}

#[test]
fn pipelining_offered_but_disabled_in_options_runs_lock_step() {
    let (port, server) = serve(|p: &mut Peer| {
        p.send("220 mx.test\r\n");
        p.expect("EHLO");
        p.send(EHLO_PIPELINING);
        p.expect("MAIL");
        assert_eq!(p.buffered(), 0, "pipelined although disabled");
        p.send("250 ok\r\n");
        p.expect("RCPT");
        assert_eq!(p.buffered(), 0, "pipelined although disabled");
        p.send("250 ok\r\n");
        p.expect("DATA");
        p.send("354 go\r\n");
        p.data();
        p.send("250 ok\r\n");
        p.expect("QUIT");
        p.send("221 bye\r\n");
    });
    let mut o = options(port);
    o.session.pipelining = smtp_proto::ExtensionUse::Never;
    let mut client = SmtpClient::connect(&o).expect("connect");
    let report =
        client.send(envelope(&["bob@example.org"]), std::io::Cursor::new(&b"x\r\n"[..])).expect("send");
    assert_eq!(report.outcome, Outcome::Sent);
    client.quit().expect("quit");
    server.join().expect("server");
}

#[test]
fn several_messages_on_one_connection() {
    let (port, server) = serve(|p: &mut Peer| {
        p.send("220 mx.test\r\n");
        p.auto(EHLO_PIPELINING)
    });
    let mut client = SmtpClient::connect(&options(port)).expect("connect");
    let bodies: Vec<Vec<u8>> =
        (0..4).map(|i| format!("Subject: message {i}\r\n\r\nbody {i}\r\n").into_bytes()).collect();
    for (i, body) in bodies.iter().enumerate() {
        let to = format!("user{i}@example.org");
        let report = client.send(envelope(&[&to]), std::io::Cursor::new(&body[..])).expect("send");
        assert_eq!(report.outcome, Outcome::Sent, "message {i}");
        assert_eq!(report.id.get(), i as u64 + 1);
    }
    client.quit().expect("quit");
    let (messages, _) = server.join().expect("server");
    assert_eq!(messages.len(), bodies.len());
    for (i, (m, body)) in messages.iter().zip(&bodies).enumerate() {
        assert_eq!(m.commands[1], format!("RCPT TO:<user{i}@example.org>"));
        assert_eq!(&unstuff(&m.wire).expect("well-formed"), body);
    }
}

#[test]
fn refused_recipient_gives_a_partial_report() {
    let (port, server) = serve(|p: &mut Peer| {
        p.send("220 mx.test\r\n");
        p.auto(EHLO_PIPELINING)
    });
    let mut client = SmtpClient::connect(&options(port)).expect("connect");
    let report = client
        .send(
            envelope(&["bob@example.org", "reject@example.org", "carol@example.org"]),
            std::io::Cursor::new(&b"hi\r\n"[..]),
        )
        .expect("send");
    assert_eq!(report.outcome, Outcome::Sent);
    let statuses: Vec<_> = report.recipients.iter().map(|r| r.status).collect();
    assert_eq!(
        statuses,
        [RecipientStatus::Delivered, RecipientStatus::PermanentFailure, RecipientStatus::Delivered]
    );
    let refused = report.recipients[1].rcpt_reply.as_ref().expect("the 550");
    assert_eq!(refused.code(), 550);
    assert!(!report.all_delivered());
    // The session goes on.
    let report =
        client.send(envelope(&["dave@example.org"]), std::io::Cursor::new(&b"again\r\n"[..])).expect("send");
    assert_eq!(report.outcome, Outcome::Sent);
    client.quit().expect("quit");
    let (messages, _) = server.join().expect("server");
    assert_eq!(messages.len(), 2);
}

#[test]
fn every_recipient_refused_rejects_the_message_and_keeps_the_session() {
    let (port, server) = serve(|p: &mut Peer| {
        p.send("220 mx.test\r\n");
        p.expect("EHLO");
        p.send(EHLO_PIPELINING);
        p.expect("MAIL");
        p.expect("RCPT");
        p.expect("DATA");
        p.send("250 ok\r\n550 5.1.1 unknown\r\n554 5.5.1 no valid recipients\r\n");
        p.expect("RSET");
        p.send("250 ok\r\n");
        p.auto(EHLO_PIPELINING)
    });
    let mut client = SmtpClient::connect(&options(port)).expect("connect");
    let report =
        client.send(envelope(&["nobody@example.org"]), std::io::Cursor::new(&b"x\r\n"[..])).expect("send");
    assert_eq!(report.outcome, Outcome::Rejected);
    assert_eq!(report.failure, Some(Failure::NoRecipientAccepted));
    assert!(client.close_reason().is_none());
    let report =
        client.send(envelope(&["bob@example.org"]), std::io::Cursor::new(&b"y\r\n"[..])).expect("send");
    assert_eq!(report.outcome, Outcome::Sent);
    client.quit().expect("quit");
    let (messages, _) = server.join().expect("server");
    assert_eq!(messages.len(), 1);
}

#[test]
fn service_closing_mid_session_rejects_and_closes() {
    let (port, server) = serve(|p: &mut Peer| {
        p.send("220 mx.test\r\n");
        p.expect("EHLO");
        p.send(EHLO_PLAIN);
        p.expect("MAIL");
        p.send("421 4.3.2 shutting down\r\n");
        p.wait_close();
    });
    let mut client = SmtpClient::connect(&options(port)).expect("connect");
    let report =
        client.send(envelope(&["bob@example.org"]), std::io::Cursor::new(&b"x\r\n"[..])).expect("send");
    assert_eq!(report.outcome, Outcome::Rejected);
    assert!(report.is_temporary());
    match client.close_reason() {
        Some(Error::Session(smtp_proto::Error::ServiceUnavailable(reply))) => {
            assert_eq!(reply.code(), 421)
        }
        other => panic!("close reason {other:?}"),
    }
    match client.send(envelope(&["bob@example.org"]), std::io::Cursor::new(&b"x\r\n"[..])) {
        Err(Error::Closed(cause)) => assert_eq!(cause.reply().map(|r| r.code()), Some(421)),
        other => panic!("{other:?}"),
    }
    client.quit().expect("quit after the session ended is a no-op");
    server.join().expect("server");
}

#[test]
fn eof_after_the_final_dot_is_unknown() {
    let (port, server) = serve(|p: &mut Peer| {
        p.send("220 mx.test\r\n");
        p.expect("EHLO");
        p.send(EHLO_PIPELINING);
        p.expect("MAIL");
        p.expect("RCPT");
        p.expect("DATA");
        p.send("250 ok\r\n250 ok\r\n354 go\r\n");
        p.data();
        // Close without a reply: the message may or may not have been delivered.
    });
    let mut client = SmtpClient::connect(&options(port)).expect("connect");
    let report =
        client.send(envelope(&["bob@example.org"]), std::io::Cursor::new(&b"x\r\n"[..])).expect("send");
    assert_eq!(report.outcome, Outcome::Unknown);
    assert_eq!(report.recipients[0].status, RecipientStatus::Unknown);
    assert!(
        matches!(client.close_reason(), Some(Error::Session(smtp_proto::Error::UnexpectedEof))),
        "{:?}",
        client.close_reason()
    );
    assert!(matches!(
        client.send(envelope(&["bob@example.org"]), std::io::Cursor::new(&b"x\r\n"[..])),
        Err(Error::Closed(_))
    ));
    server.join().expect("server");
}

#[test]
fn eof_before_the_final_dot_is_rejected() {
    let (port, server) = serve(|p: &mut Peer| {
        p.send("220 mx.test\r\n");
        p.expect("EHLO");
        p.send(EHLO_PIPELINING);
        p.expect("MAIL");
        p.expect("RCPT");
        p.expect("DATA");
        p.send("250 ok\r\n250 ok\r\n");
        // Close before the 354.
    });
    let mut client = SmtpClient::connect(&options(port)).expect("connect");
    let report =
        client.send(envelope(&["bob@example.org"]), std::io::Cursor::new(&b"x\r\n"[..])).expect("send");
    assert_eq!(report.outcome, Outcome::Rejected);
    assert!(client.close_reason().is_some());
    server.join().expect("server");
}

#[test]
fn silent_server_times_out_at_the_greeting() {
    let (port, server) = serve(|p: &mut Peer| p.wait_close());
    let mut o = options(port);
    o.session.timeouts.greeting = Duration::from_millis(200);
    match SmtpClient::connect(&o) {
        Err(Error::Session(smtp_proto::Error::Timeout(Timer::Greeting))) => {}
        other => panic!("{other:?}"),
    }
    server.join().expect("server");
}

#[test]
fn silence_after_the_final_dot_times_out_as_unknown() {
    let (port, server) = serve(|p: &mut Peer| {
        p.send("220 mx.test\r\n");
        p.expect("EHLO");
        p.send(EHLO_PIPELINING);
        p.expect("MAIL");
        p.expect("RCPT");
        p.expect("DATA");
        p.send("250 ok\r\n250 ok\r\n354 go\r\n");
        p.data();
        p.wait_close();
    });
    let mut o = options(port);
    o.session.timeouts.data_termination = Duration::from_millis(200);
    let mut client = SmtpClient::connect(&o).expect("connect");
    let report =
        client.send(envelope(&["bob@example.org"]), std::io::Cursor::new(&b"x\r\n"[..])).expect("send");
    assert_eq!(report.outcome, Outcome::Unknown);
    assert_eq!(report.failure, Some(Failure::Session(smtp_proto::Error::Timeout(Timer::DataTermination))));
    assert!(matches!(
        client.close_reason(),
        Some(Error::Session(smtp_proto::Error::Timeout(Timer::DataTermination)))
    ));
    server.join().expect("server");
}

#[test]
fn large_tricky_body_streams_and_unstuffs_to_the_original() {
    let body = tricky_body(1536 * 1024);
    let (port, server) = serve(|p: &mut Peer| {
        p.send("220 mx.test\r\n");
        p.auto(EHLO_PIPELINING)
    });
    let mut client = SmtpClient::connect(&options(port)).expect("connect");
    let env = envelope(&["bob@example.org"]).body_type(BodyType::EightBitMime).size(body.len() as u64);
    let mut seen = Vec::new();
    let report = client
        .send_with_progress(env, std::io::Cursor::new(&body[..]), |sent, total| seen.push((sent, total)))
        .expect("send");
    assert_eq!(report.outcome, Outcome::Sent);
    client.quit().expect("quit");
    let (messages, _) = server.join().expect("server");
    assert_eq!(messages.len(), 1);
    assert!(messages[0].commands[0].contains("BODY=8BITMIME"));
    let got = unstuff(&messages[0].wire).expect("well-formed DATA");
    assert!(got == normalize_line_endings(&body), "the body changed on the way");
    // Progress: several steps, increasing, ending at the whole body, with the declared total.
    assert!(seen.len() > 1, "{seen:?}");
    assert!(seen.windows(2).all(|w| w[0].0 < w[1].0));
    assert_eq!(seen.last(), Some(&(body.len() as u64, Some(body.len() as u64))));
}

#[test]
fn bdat_in_lock_step_sends_every_chunk() {
    let body = tricky_body(200 * 1024);
    let (port, server) = serve(|p: &mut Peer| {
        p.send("220 mx.test\r\n");
        p.expect("EHLO");
        p.send("250-mx.test\r\n250-CHUNKING\r\n250 8BITMIME\r\n");
        p.expect("MAIL");
        p.send("250 ok\r\n");
        p.expect("RCPT");
        p.send("250 ok\r\n");
        let mut got = Vec::new();
        let mut chunks = 0;
        loop {
            let line = p.expect("BDAT ");
            let mut words = line.split(' ').skip(1);
            let n: usize = words.next().expect("size").parse().expect("a number");
            let last = words.next() == Some("LAST");
            got.extend(p.raw(n));
            chunks += 1;
            p.send("250 ok\r\n");
            if last {
                break;
            }
        }
        p.expect("QUIT");
        p.send("221 bye\r\n");
        (got, chunks)
    });
    let mut client = SmtpClient::connect(&options(port)).expect("connect");
    let env = envelope(&["bob@example.org"]).body_type(BodyType::EightBitMime);
    let report = client.send(env, std::io::Cursor::new(&body[..])).expect("send");
    assert_eq!(report.outcome, Outcome::Sent);
    client.quit().expect("quit");
    let ((got, chunks), _) = server.join().expect("server");
    assert!(chunks > 2, "{chunks} chunks");
    assert!(got == normalize_line_endings(&body));
}

#[test]
fn lmtp_reports_each_recipient_after_the_body() {
    let (port, server) = serve(|p: &mut Peer| {
        p.send("220 lmtp.test LMTP\r\n");
        p.expect("LHLO client.test");
        p.send("250-lmtp.test\r\n250 PIPELINING\r\n");
        p.expect("MAIL");
        p.expect("RCPT TO:<bob@example.org>");
        p.expect("RCPT TO:<carol@example.org>");
        p.expect("DATA");
        p.send("250 ok\r\n250 ok\r\n250 ok\r\n354 go\r\n");
        p.data();
        p.send("250 2.0.0 bob ok\r\n452 4.2.2 carol over quota\r\n");
        p.expect("QUIT");
        p.send("221 bye\r\n");
    });
    let mut o = options(port);
    o.session.protocol = Protocol::Lmtp;
    let mut client = SmtpClient::connect(&o).expect("connect");
    let report = client
        .send(envelope(&["bob@example.org", "carol@example.org"]), std::io::Cursor::new(&b"x\r\n"[..]))
        .expect("send");
    assert_eq!(report.outcome, Outcome::Sent);
    assert_eq!(report.recipients[0].status, RecipientStatus::Delivered);
    assert_eq!(report.recipients[1].status, RecipientStatus::TemporaryFailure);
    assert_eq!(report.recipients[1].lmtp_reply.as_ref().map(|r| r.code()), Some(452));
    client.quit().expect("quit");
    server.join().expect("server");
}

#[test]
fn too_big_for_the_server_is_refused_before_any_byte() {
    let (port, server) = serve(|p: &mut Peer| {
        p.send("220 mx.test\r\n");
        p.auto("250-mx.test\r\n250-PIPELINING\r\n250 SIZE 1000\r\n")
    });
    let mut client = SmtpClient::connect(&options(port)).expect("connect");
    match client.send(envelope(&["bob@example.org"]).size(5000), std::io::Cursor::new(&b"x\r\n"[..])) {
        Err(Error::Send(SendError::Unsendable(Unsendable::TooBig { size: 5000, limit: 1000 }))) => {}
        other => panic!("{other:?}"),
    }
    // Nothing was written for it; the session is still good.
    let report =
        client.send(envelope(&["bob@example.org"]), std::io::Cursor::new(&b"small\r\n"[..])).expect("send");
    assert_eq!(report.outcome, Outcome::Sent);
    client.quit().expect("quit");
    let (messages, received) = server.join().expect("server");
    assert_eq!(messages.len(), 1);
    assert_eq!(text(&received).matches("MAIL FROM").count(), 1);
}

/// A body that fails after `ok` bytes.
struct FailingBody {
    ok: usize,
}

impl Read for FailingBody {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.ok == 0 {
            return Err(io::Error::other("disk on fire"));
        }
        let n = buf.len().min(self.ok);
        buf[..n].fill(b'a');
        self.ok -= n;
        Ok(n)
    }
}

#[test]
fn body_read_error_aborts_the_session_without_a_final_dot() {
    let (port, server) = serve(|p: &mut Peer| {
        p.send("220 mx.test\r\n");
        p.expect("EHLO");
        p.send(EHLO_PIPELINING);
        p.expect("MAIL");
        p.expect("RCPT");
        p.expect("DATA");
        p.send("250 ok\r\n250 ok\r\n354 go\r\n");
        p.wait_close();
    });
    let mut client = SmtpClient::connect(&options(port)).expect("connect");
    match client.send(envelope(&["bob@example.org"]), smtp_blocking::OneShot(FailingBody { ok: 100_000 })) {
        Err(Error::Body(e)) => assert_eq!(e.to_string(), "disk on fire"),
        other => panic!("{other:?}"),
    }
    assert!(matches!(client.close_reason(), Some(Error::Session(smtp_proto::Error::Aborted))));
    assert!(matches!(
        client.send(envelope(&["bob@example.org"]), std::io::Cursor::new(&b"x"[..])),
        Err(Error::Closed(_))
    ));
    drop(client);
    let ((), received) = server.join().expect("server");
    let received = text(&received);
    assert!(!received.contains("\r\n.\r\n"), "an end of data was sent");
}

#[test]
fn eight_bit_body_under_a_seven_bit_declaration_is_a_body_error() {
    let (port, server) = serve(|p: &mut Peer| {
        p.send("220 mx.test\r\n");
        p.expect("EHLO");
        p.send(EHLO_PIPELINING);
        p.expect("MAIL");
        p.expect("RCPT");
        p.expect("DATA");
        p.send("250 ok\r\n250 ok\r\n354 go\r\n");
        p.wait_close();
    });
    let mut client = SmtpClient::connect(&options(port)).expect("connect");
    match client.send(
        envelope(&["bob@example.org"]).body_type(smtp_proto::command::BodyType::SevenBit),
        std::io::Cursor::new(&b"caf\xc3\xa9\r\n"[..]),
    ) {
        Err(Error::Body(e)) => assert_eq!(e.kind(), ErrorKind::InvalidData),
        other => panic!("{other:?}"),
    }
    drop(client);
    server.join().expect("server");
}

#[test]
fn connection_refused_is_a_connect_error() {
    // Bind, learn the port, close: nothing listens there any more.
    let port = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("bind").port();
    match SmtpClient::connect(&options(port)) {
        Err(Error::Connect(e)) => assert_eq!(e.kind(), ErrorKind::ConnectionRefused),
        other => panic!("{other:?}"),
    }
}

#[test]
fn greeting_554_is_a_session_error() {
    let (port, server) = serve(|p: &mut Peer| {
        p.send("554 5.7.1 go away\r\n");
        // RFC 5321 §3.1: the client says QUIT and waits for the reply.
        p.expect("QUIT");
        p.send("221 bye\r\n");
    });
    match SmtpClient::connect(&options(port)) {
        Err(Error::Session(smtp_proto::Error::ServiceUnavailable(r))) => assert_eq!(r.code(), 554),
        other => panic!("{other:?}"),
    }
    server.join().expect("server");
}

#[cfg(unix)]
#[test]
fn from_stream_runs_over_a_unix_socket() {
    use std::os::unix::net::UnixStream;
    let (client_end, server_end) = UnixStream::pair().expect("socket pair");
    server_end.set_read_timeout(Some(PATIENCE)).expect("timeout");
    let server = std::thread::spawn(move || {
        let mut p = Peer::new(Box::new(server_end));
        p.send("220 local.test\r\n");
        let messages = p.auto(EHLO_PIPELINING);
        (messages, p.received)
    });
    let mut o = options(0);
    o.helo_name = None;
    let mut client = SmtpClient::from_stream(client_end, &o).expect("session");
    let report = client
        .send(envelope(&["bob@example.org"]), std::io::Cursor::new(&b"over unix\r\n"[..]))
        .expect("send");
    assert_eq!(report.outcome, Outcome::Sent);
    client.quit().expect("quit");
    let (messages, received) = server.join().expect("server");
    assert_eq!(messages.len(), 1);
    // No local IP address: the default EHLO name is the loopback literal.
    assert!(text(&received).starts_with("EHLO [127.0.0.1]\r\n"));
}

#[test]
fn errors_convert_for_question_mark_in_io_code() {
    fn io_context(port: u16) -> io::Result<()> {
        let mut o = options(port);
        o.session.timeouts.greeting = Duration::from_millis(200);
        SmtpClient::connect(&o)?;
        Ok(())
    }
    let (port, server) = serve(|p: &mut Peer| p.wait_close());
    let e = io_context(port).expect_err("times out");
    assert_eq!(e.kind(), ErrorKind::TimedOut);
    server.join().expect("server");
}

/// An endless body of ordinary lines, generated on the fly.
struct Lines {
    left: u64,
}

impl Read for Lines {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        const LINE: &[u8] = b"0123456789 the quick brown fox jumps over the lazy dog 0123456789\r\n";
        let n = (buf.len() as u64).min(self.left) as usize;
        for (i, b) in buf[..n].iter_mut().enumerate() {
            *b = LINE[i % LINE.len()];
        }
        self.left -= n as u64;
        Ok(n)
    }
}

#[test]
fn server_giving_up_mid_body_rejects_the_message() {
    let (port, server) = serve(|p: &mut Peer| {
        p.send("220 mx.test\r\n");
        p.expect("EHLO");
        p.send(EHLO_PIPELINING);
        p.expect("MAIL");
        p.expect("RCPT");
        p.expect("DATA");
        p.send("250 ok\r\n250 ok\r\n354 go\r\n");
        p.line();
        // Gives up and closes with the rest of the body unread (the kernel resets the connection).
        p.send("421 4.3.0 out of resources\r\n");
    });
    let mut client = SmtpClient::connect(&options(port)).expect("connect");
    // Far more than the socket buffers hold: the end of data can never be handed out.
    let report = client
        .send(envelope(&["bob@example.org"]), smtp_blocking::OneShot(Lines { left: 64 << 20 }))
        .expect("send");
    assert_eq!(report.outcome, Outcome::Rejected);
    // The driver does not read while it writes the body: the broken write ends the session.
    assert!(matches!(client.close_reason(), Some(Error::Io(_))), "{:?}", client.close_reason());
    server.join().expect("server");
}
