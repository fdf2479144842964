//! The driver against a scripted server on 127.0.0.1, under smol.

mod common;

use std::io;
use std::time::Duration;

use common::{Action, GeneratedBody, Script, Server, esmtp, options, reply};
use smtp_smol::smtp_proto::body::{normalize_line_endings, unstuff};
use smtp_smol::smtp_proto::{
    ApiMisuse, Error as ProtoError, Failure, Protocol, RecipientStatus, Timeouts, Timer,
};
use smtp_smol::{Envelope, Error, Outcome, SendError, SmtpClient};

fn envelope(to: &[&str]) -> Envelope {
    Envelope::parse("alice@example.org", to).unwrap()
}

fn assert_not_connected(result: Result<smtp_smol::MessageReport, Error>) {
    match result {
        Err(Error::Send(SendError::Misuse(ApiMisuse::NotConnected))) => {}
        other => panic!("expected NotConnected, got {other:?}"),
    }
}

const BODY: &[u8] = b"Subject: hi\r\n\r\nHello, Bob.\n.hidden dot\r\n..two dots\rbare CR\r\n.\r\nend";

#[test]
fn pipelined_session() {
    // MAIL and RCPT are answered only with DATA's 354: a client that waited for each reply would time out.
    let mut std = esmtp(&["PIPELINING", "8BITMIME", "ENHANCEDSTATUSCODES"]);
    let server = Server::start(Script::new(move |cmd, tls| match std(cmd, tls) {
        Action::Reply(r) if cmd.starts_with("MAIL") || cmd.starts_with("RCPT") => Action::Defer(r),
        other => other,
    }));
    let mut opts = options(server.port);
    opts.session.timeouts = Timeouts::uniform(Duration::from_secs(2));
    smol::block_on(async {
        let mut client = SmtpClient::connect(&opts).await.unwrap();
        assert!(!client.is_tls());
        assert!(client.capabilities().unwrap().pipelining());
        let report = client.send(envelope(&["bob@example.org", "carol@example.org"]), BODY).await.unwrap();
        assert_eq!(report.outcome, Outcome::Sent, "{report:?}");
        assert!(report.all_delivered());
        assert_eq!(report.final_reply.as_ref().map(|r| r.code()), Some(250));
        client.quit().await.unwrap();
    });
    let rec = server.finish();
    assert_eq!(
        rec.commands,
        [
            "EHLO client.test",
            "MAIL FROM:<alice@example.org> BODY=8BITMIME",
            "RCPT TO:<bob@example.org>",
            "RCPT TO:<carol@example.org>",
            "DATA",
            ".",
            "QUIT"
        ]
    );
    assert_eq!(unstuff(&rec.bodies[0]).unwrap(), normalize_line_endings(&[BODY, b"\r\n"].concat()));
}

#[test]
fn lock_step_without_pipelining() {
    let server = Server::start(Script::new(esmtp(&["8BITMIME"])));
    smol::block_on(async {
        let mut client = SmtpClient::connect(&options(server.port)).await.unwrap();
        let report = client.send(envelope(&["bob@example.org", "carol@example.org"]), BODY).await.unwrap();
        assert_eq!(report.outcome, Outcome::Sent, "{report:?}");
        client.quit().await.unwrap();
    });
    let rec = server.finish();
    assert_eq!(rec.count("RCPT"), 2);
    // Each command was alone on the wire when the server read it: the client waited for every reply.
    for (cmd, followed) in rec.commands.iter().zip(&rec.followed) {
        assert!(!followed, "{cmd} arrived with more bytes behind it");
    }
    assert_eq!(unstuff(&rec.bodies[0]).unwrap(), normalize_line_endings(&[BODY, b"\r\n"].concat()));
}

#[test]
fn several_messages_on_one_connection() {
    let server = Server::start(Script::new(esmtp(&["PIPELINING"])));
    smol::block_on(async {
        let mut client = SmtpClient::connect(&options(server.port)).await.unwrap();
        for i in 0..3 {
            let body = format!("Subject: {i}\r\n\r\nmessage {i}\r\n");
            let to = format!("rcpt{i}@example.org");
            let report = client.send(envelope(&[&to]), body.as_bytes()).await.unwrap();
            assert_eq!(report.outcome, Outcome::Sent, "{report:?}");
            assert_eq!(report.id.get(), i + 1);
        }
        client.quit().await.unwrap();
    });
    let rec = server.finish();
    assert_eq!(rec.count("MAIL"), 3);
    assert_eq!(rec.count("QUIT"), 1);
    for (i, wire) in rec.bodies.iter().enumerate() {
        assert_eq!(unstuff(wire).unwrap(), format!("Subject: {i}\r\n\r\nmessage {i}\r\n").as_bytes());
    }
}

#[test]
fn refused_recipient_gives_a_partial_report() {
    let mut std = esmtp(&["PIPELINING", "ENHANCEDSTATUSCODES"]);
    let mut accepted = 0;
    let server = Server::start(Script::new(move |cmd, tls| {
        if cmd.starts_with("MAIL") {
            accepted = 0;
        }
        if cmd.starts_with("RCPT TO:<nobody") {
            reply("550 5.1.1 no such user")
        } else if cmd == "DATA" && accepted == 0 {
            reply("554 5.5.1 no valid recipients")
        } else {
            accepted += usize::from(cmd.starts_with("RCPT"));
            std(cmd, tls)
        }
    }));
    smol::block_on(async {
        let mut client = SmtpClient::connect(&options(server.port)).await.unwrap();
        let report = client.send(envelope(&["bob@example.org", "nobody@example.org"]), BODY).await.unwrap();
        assert_eq!(report.outcome, Outcome::Sent, "{report:?}");
        assert_eq!(report.recipients[0].status, RecipientStatus::Delivered);
        assert_eq!(report.recipients[1].status, RecipientStatus::PermanentFailure);
        let refusal = report.recipients[1].rcpt_reply.as_ref().unwrap();
        assert_eq!(refusal.code(), 550);

        // Nobody accepted: rejected, and the session goes on.
        let report = client.send(envelope(&["nobody@example.org"]), BODY).await.unwrap();
        assert_eq!(report.outcome, Outcome::Rejected, "{report:?}");
        assert_eq!(report.failure, Some(Failure::NoRecipientAccepted));
        let report = client.send(envelope(&["bob@example.org"]), BODY).await.unwrap();
        assert_eq!(report.outcome, Outcome::Sent, "{report:?}");
        client.quit().await.unwrap();
    });
    assert_eq!(server.finish().bodies.len(), 2);
}

#[test]
fn reply_421_ends_the_session() {
    let mut std = esmtp(&["PIPELINING"]);
    let server = Server::start(Script::new(move |cmd, tls| {
        if cmd.starts_with("MAIL") {
            Action::ReplyAndClose("421 4.3.2 shutting down\r\n".into())
        } else {
            std(cmd, tls)
        }
    }));
    smol::block_on(async {
        let mut client = SmtpClient::connect(&options(server.port)).await.unwrap();
        let report = client.send(envelope(&["bob@example.org"]), BODY).await.unwrap();
        assert_eq!(report.outcome, Outcome::Rejected, "{report:?}");
        assert!(report.is_temporary());
        match client.close_reason() {
            Some(Error::Session(ProtoError::ServiceUnavailable(r))) => assert_eq!(r.code(), 421),
            other => panic!("{other:?}"),
        }
        assert_not_connected(client.send(envelope(&["bob@example.org"]), BODY).await);
        client.quit().await.unwrap();
    });
    assert!(server.finish().bodies.is_empty());
}

#[test]
fn eof_after_the_final_dot_is_unknown() {
    let mut std = esmtp(&["PIPELINING"]);
    let server =
        Server::start(Script::new(move |cmd, tls| if cmd == "." { Action::Close } else { std(cmd, tls) }));
    smol::block_on(async {
        let mut client = SmtpClient::connect(&options(server.port)).await.unwrap();
        let report = client.send(envelope(&["bob@example.org"]), BODY).await.unwrap();
        assert_eq!(report.outcome, Outcome::Unknown, "{report:?}");
        assert_eq!(report.recipients[0].status, RecipientStatus::Unknown);
        assert!(matches!(client.close_reason(), Some(Error::Session(ProtoError::UnexpectedEof))));
        assert_not_connected(client.send(envelope(&["bob@example.org"]), BODY).await);
    });
    assert_eq!(server.finish().bodies.len(), 1);
}

#[test]
fn a_silent_server_times_out() {
    let mut script = Script::new(esmtp(&[]));
    script.greeting = None;
    let server = Server::start(script);
    let mut opts = options(server.port);
    opts.session.timeouts = Timeouts::uniform(Duration::from_millis(200));
    let err = smol::block_on(SmtpClient::connect(&opts)).unwrap_err();
    assert!(matches!(err, Error::Session(ProtoError::Timeout(Timer::Greeting))), "{err:?}");
    assert_eq!(io::Error::from(err).kind(), io::ErrorKind::TimedOut);
    assert!(server.finish().commands.is_empty());
}

#[test]
fn no_reply_to_the_final_dot_is_unknown() {
    let mut std = esmtp(&["PIPELINING"]);
    let server =
        Server::start(Script::new(move |cmd, tls| if cmd == "." { Action::Hang } else { std(cmd, tls) }));
    let mut opts = options(server.port);
    opts.session.timeouts.data_termination = Duration::from_millis(200);
    smol::block_on(async {
        let mut client = SmtpClient::connect(&opts).await.unwrap();
        let report = client.send(envelope(&["bob@example.org"]), BODY).await.unwrap();
        assert_eq!(report.outcome, Outcome::Unknown, "{report:?}");
        assert!(matches!(
            client.close_reason(),
            Some(Error::Session(ProtoError::Timeout(Timer::DataTermination)))
        ));
    });
    server.finish();
}

#[test]
fn a_large_body_is_streamed() {
    const LEN: usize = 3 * 1024 * 1024 + 17;
    let server = Server::start(Script::new(esmtp(&["PIPELINING", "SIZE 10000000"])));
    smol::block_on(async {
        let mut client = SmtpClient::connect(&options(server.port)).await.unwrap();
        let mut seen = Vec::new();
        let report = client
            .send_with_progress(
                envelope(&["bob@example.org"]).size(LEN as u64),
                GeneratedBody::new(LEN),
                |sent, total| seen.push((sent, total)),
            )
            .await
            .unwrap();
        assert_eq!(report.outcome, Outcome::Sent, "{report:?}");
        assert!(seen.len() > 1, "{seen:?}");
        assert!(seen.windows(2).all(|w| w[0].0 < w[1].0), "{seen:?}");
        assert_eq!(seen.last(), Some(&(LEN as u64, Some(LEN as u64))));
        client.quit().await.unwrap();
    });
    let rec = server.finish();
    let body = unstuff(&rec.bodies[0]).expect("a well-formed DATA body");
    // The body does not end with CRLF: the client adds one before the dot.
    let mut expected = GeneratedBody::expected(LEN);
    expected.extend_from_slice(b"\r\n");
    assert!(body == expected, "the body differs from what was sent");
}

#[test]
fn bdat_in_lock_step() {
    const LEN: usize = 200 * 1024;
    let server = Server::start(Script::new(esmtp(&["CHUNKING", "8BITMIME"])));
    smol::block_on(async {
        let mut client = SmtpClient::connect(&options(server.port)).await.unwrap();
        let report = client.send(envelope(&["bob@example.org"]), GeneratedBody::new(LEN)).await.unwrap();
        assert_eq!(report.outcome, Outcome::Sent, "{report:?}");
        client.quit().await.unwrap();
    });
    let rec = server.finish();
    let bdat: Vec<_> = rec.commands.iter().filter(|c| c.starts_with("BDAT")).collect();
    assert!(bdat.len() > 1, "{bdat:?}");
    assert!(bdat.last().unwrap().ends_with(" LAST"), "{bdat:?}");
    assert!(rec.followed.iter().all(|f| !f), "BDAT chunks were pipelined");
    assert!(rec.bodies[0] == GeneratedBody::expected(LEN));
}

#[test]
fn lmtp_reports_each_recipient() {
    let mut std = esmtp(&["PIPELINING", "ENHANCEDSTATUSCODES"]);
    let server = Server::start(Script::new(move |cmd, tls| {
        if cmd == "." {
            Action::Reply("250 2.0.0 bob ok\r\n452 4.2.2 carol over quota\r\n".into())
        } else {
            std(cmd, tls)
        }
    }));
    let mut opts = options(server.port);
    opts.session.protocol = Protocol::Lmtp;
    smol::block_on(async {
        let mut client = SmtpClient::connect(&opts).await.unwrap();
        let report = client.send(envelope(&["bob@example.org", "carol@example.org"]), BODY).await.unwrap();
        assert_eq!(report.outcome, Outcome::Sent, "{report:?}");
        assert_eq!(report.recipients[0].status, RecipientStatus::Delivered);
        assert_eq!(report.recipients[1].status, RecipientStatus::TemporaryFailure);
        let lmtp = report.recipients[1].lmtp_reply.as_ref().unwrap();
        assert_eq!(lmtp.code(), 452);
        client.quit().await.unwrap();
    });
    assert_eq!(server.finish().commands[0], "LHLO client.test");
}

/// A reader that gives `ok` octets of text, then fails.
struct FailingBody {
    ok: usize,
}

impl futures_lite::AsyncRead for FailingBody {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
        buf: &mut [u8],
    ) -> std::task::Poll<io::Result<usize>> {
        if self.ok == 0 {
            return std::task::Poll::Ready(Err(io::Error::other("disk on fire")));
        }
        let n = buf.len().min(self.ok);
        buf[..n].fill(b'x');
        self.ok -= n;
        std::task::Poll::Ready(Ok(n))
    }
}

#[test]
fn a_failing_body_aborts_the_session() {
    let server = Server::start(Script::new(esmtp(&["PIPELINING"])));
    smol::block_on(async {
        let mut client = SmtpClient::connect(&options(server.port)).await.unwrap();
        let err = client.send(envelope(&["bob@example.org"]), FailingBody { ok: 100_000 }).await.unwrap_err();
        match &err {
            Error::Body(e) => assert_eq!(e.to_string(), "disk on fire"),
            other => panic!("{other:?}"),
        }
        assert!(matches!(client.close_reason(), Some(Error::Session(ProtoError::Aborted))));
        assert_not_connected(client.send(envelope(&["bob@example.org"]), BODY).await);
    });
    let rec = server.finish();
    assert!(rec.bodies.is_empty(), "a body was terminated");
}

#[test]
fn undeclared_eight_bit_body_is_a_body_error() {
    // Without 8BITMIME an undeclared body goes as 7-bit: 8-bit octets in it cannot be sent.
    let server = Server::start(Script::new(esmtp(&["PIPELINING"])));
    smol::block_on(async {
        let mut client = SmtpClient::connect(&options(server.port)).await.unwrap();
        let body = "Subject: caf\u{e9}\r\n\r\nd\u{e9}j\u{e0} vu\r\n";
        let err = client.send(envelope(&["bob@example.org"]), body.as_bytes()).await.unwrap_err();
        match &err {
            Error::Body(e) => assert_eq!(e.kind(), io::ErrorKind::InvalidData),
            other => panic!("{other:?}"),
        }
    });
    assert!(server.finish().bodies.is_empty());
}

#[test]
fn a_reply_in_the_middle_of_the_body_is_heard() {
    // The server answers 421 after 64 KiB of a 32 MiB body and stops reading. A driver that only wrote
    // would block on a full socket until the data-block timeout (10 s here); this one reads while writing.
    const LEN: usize = 32 * 1024 * 1024;
    let mut std = esmtp(&["PIPELINING"]);
    let server = Server::start(Script::new(move |cmd, tls| {
        if cmd == "DATA" {
            Action::Interrupt { after: 64 * 1024, reply: "421 4.3.2 going down now\r\n".into() }
        } else {
            std(cmd, tls)
        }
    }));
    smol::block_on(async {
        let mut client = SmtpClient::connect(&options(server.port)).await.unwrap();
        let report = client.send(envelope(&["bob@example.org"]), GeneratedBody::new(LEN)).await.unwrap();
        assert_eq!(report.outcome, Outcome::Rejected, "{report:?}");
        assert_eq!(report.failure, Some(Failure::Interrupted));
        assert_eq!(report.final_reply.as_ref().map(|r| r.code()), Some(421));
        match client.close_reason() {
            Some(Error::Session(ProtoError::ServiceUnavailable(r))) => assert_eq!(r.code(), 421),
            other => panic!("{other:?}"),
        }
    });
    server.finish();
}

#[test]
fn connection_refused_is_a_connect_error() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let err = smol::block_on(SmtpClient::connect(&options(port))).unwrap_err();
    match err {
        Error::Connect(e) => assert_eq!(e.kind(), io::ErrorKind::ConnectionRefused),
        other => panic!("{other:?}"),
    }
}

#[test]
fn futures_are_send() {
    fn is_send<T: Send>(_: &T) {}
    let opts = options(1);
    is_send(&SmtpClient::connect(&opts));
    let mut client: Option<SmtpClient> = None;
    if let Some(c) = client.as_mut() {
        is_send(&c.send(envelope(&["bob@example.org"]), BODY));
    }
    if let Some(c) = client {
        is_send(&c.quit());
    }
}
