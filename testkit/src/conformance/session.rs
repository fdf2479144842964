//! Sessions against a scripted server: with and without pipelining, several messages, refusals, a 421, EOF
//! and silence at the worst moments, a large streamed body, BDAT, LMTP, what cannot be sent, connect
//! errors, `from_stream`, a server that answers in the middle of the body.

use std::io::ErrorKind;
use std::time::Duration;

use smtp_proto::command::BodyType;
use smtp_proto::internal::{normalize_line_endings, unstuff};
use smtp_proto::{
    Error as Core, ExtensionUse, Failure, Outcome, Protocol, RecipientStatus, SendError, Timer, Unsendable,
};
use smtp_transport::Error;

use super::{
    Adapter, Body, EHLO_LOCKSTEP, EHLO_PIPELINING, GREETING, MIB, SHORT, Stream, assert_closed, client_form,
    code, envelope, options, options_for, shared, text, to_the_body, tricky_body,
};
use crate::scripted::{Gate, Script, ScriptedServer};

/// MAIL, both RCPTs and DATA go out together, before any reply: the server answers them only with the
/// 354, so a client that waited for each reply would stall. The dialogue is exactly the expected one; an
/// envelope that declares no body type goes as `BODY=8BITMIME` to a server that offers it.
pub fn pipelined_session_sends_mail_rcpt_data_in_one_go<A: Adapter>() {
    let _serial = shared();
    let server = ScriptedServer::start(
        Script::new()
            .send(GREETING)
            .on("EHLO client.test", EHLO_PIPELINING)
            .expect_line("MAIL FROM:<alice@example.org>")
            .expect_line("RCPT TO:<bob@example.org>")
            .expect_line("RCPT TO:<carol@example.org>")
            .expect_line("DATA")
            .send("250 2.1.0 ok\r\n250 2.1.5 ok\r\n250 2.1.5 ok\r\n354 go ahead\r\n")
            .expect_data_end()
            .send("250 2.0.0 queued as 1\r\n")
            .on("QUIT", "221 2.0.0 bye\r\n")
            .read_to_eof(),
    );
    let mut client = A::connect(&options(&server)).expect("connect");
    assert!(!client.is_tls());
    assert!(client.capabilities().expect("capabilities").pipelining());
    let body = b"Subject: hi\r\n\r\nHello, Bob.\n.hidden dot\r\n..two dots\rbare CR\r\n.\r\nend";
    let to = envelope(&["bob@example.org", "carol@example.org"]);
    let report = client.send(to, Body::bytes(body)).expect("send");
    assert_eq!(report.outcome, Outcome::Sent, "{report:?}");
    assert!(report.all_delivered());
    assert_eq!(code(&report.final_reply), Some(250));
    client.quit().expect("quit");
    let rec = server.finish();
    assert_eq!(
        rec.commands,
        [
            "EHLO client.test",
            "MAIL FROM:<alice@example.org> BODY=8BITMIME",
            "RCPT TO:<bob@example.org>",
            "RCPT TO:<carol@example.org>",
            "DATA",
            "QUIT"
        ]
    );
    assert_eq!(unstuff(&rec.data[0]).expect("well-formed DATA"), client_form(body));
    assert!(rec.plaintext.ends_with(b"\r\n.\r\nQUIT\r\n"), "{rec}");
}

/// Without PIPELINING each command waits for its reply: nothing more has arrived when the server reads it.
pub fn lock_step_session_waits_for_each_reply<A: Adapter>() {
    let _serial = shared();
    let server = ScriptedServer::start(
        Script::new()
            .send(GREETING)
            .on("EHLO client.test", EHLO_LOCKSTEP)
            .on("MAIL FROM:<alice@example.org>", "250 ok\r\n")
            .on("RCPT TO:<bob@example.org>", "250 ok\r\n")
            .on("RCPT TO:<carol@example.org>", "250 ok\r\n")
            .on("DATA", "354 go\r\n")
            .expect_data_end()
            .send("250 queued\r\n")
            .on("QUIT", "221 bye\r\n")
            .read_to_eof(),
    );
    let mut client = A::connect(&options(&server)).expect("connect");
    let to = envelope(&["bob@example.org", "carol@example.org"]);
    let report = client.send(to, Body::bytes("hello\n")).expect("send");
    assert_eq!(report.outcome, Outcome::Sent, "{report:?}");
    assert_eq!(report.recipients.len(), 2);
    client.quit().expect("quit");
    let rec = server.finish();
    for (command, followed) in rec.commands.iter().zip(&rec.followed) {
        assert!(!followed, "the client did not wait after {command}");
    }
    assert_eq!(rec.data, [b"hello\r\n.\r\n".to_vec()]);
}

/// PIPELINING offered but turned off in the options: lock-step.
pub fn pipelining_offered_but_disabled_in_options_runs_lock_step<A: Adapter>() {
    let _serial = shared();
    let server = ScriptedServer::start(
        Script::new()
            .send(GREETING)
            .on("EHLO", EHLO_PIPELINING)
            .on("MAIL", "250 ok\r\n")
            .on("RCPT", "250 ok\r\n")
            .on("DATA", "354 go\r\n")
            .expect_data_end()
            .send("250 ok\r\n")
            .on("QUIT", "221 bye\r\n")
            .read_to_eof(),
    );
    let mut o = options(&server);
    o.session.pipelining = ExtensionUse::Never;
    let mut client = A::connect(&o).expect("connect");
    let report = client.send(envelope(&["bob@example.org"]), Body::bytes("x\r\n")).expect("send");
    assert_eq!(report.outcome, Outcome::Sent, "{report:?}");
    client.quit().expect("quit");
    let rec = server.finish();
    assert_eq!(rec.followed[1..4], [false, false, false], "pipelined although disabled: {:?}", rec.commands);
}

/// Four messages, one after the other, on one pipelined connection: each its own transaction, ids counting
/// up, one QUIT.
pub fn several_messages_on_one_connection<A: Adapter>() {
    let _serial = shared();
    let mut script = Script::new().send(GREETING).on("EHLO", EHLO_PIPELINING);
    for i in 0..4 {
        script = script
            .expect_line("MAIL FROM:<alice@example.org>")
            .expect_line(&format!("RCPT TO:<user{i}@example.org>"))
            .expect_line("DATA")
            .send("250 2.1.0 ok\r\n250 2.1.5 ok\r\n354 go\r\n")
            .expect_data_end()
            .send("250 2.0.0 queued\r\n");
    }
    let server = ScriptedServer::start(script.on("QUIT", "221 bye\r\n").read_to_eof());
    let mut client = A::connect(&options(&server)).expect("connect");
    let bodies: Vec<Vec<u8>> =
        (0..4).map(|i| format!("Subject: message {i}\r\n\r\nbody {i}\r\n").into_bytes()).collect();
    for (i, body) in bodies.iter().enumerate() {
        let to = format!("user{i}@example.org");
        let report = client.send(envelope(&[&to]), Body::bytes(body)).expect("send");
        assert_eq!(report.outcome, Outcome::Sent, "message {i}: {report:?}");
        assert_eq!(report.id.get(), i as u64 + 1);
    }
    client.quit().expect("quit");
    let rec = server.finish();
    assert_eq!(rec.data.len(), bodies.len());
    for (wire, body) in rec.data.iter().zip(&bodies) {
        assert_eq!(&unstuff(wire).expect("well-formed"), body);
    }
    assert_eq!(rec.commands.iter().filter(|c| *c == "QUIT").count(), 1);
}

/// A refused recipient among others: a partial report with each recipient's reply. Every recipient
/// refused (DATA pipelined gets its 554, then RSET): rejected. Neither ends the session.
pub fn refused_recipients_give_a_partial_report_and_keep_the_session<A: Adapter>() {
    let _serial = shared();
    let server = ScriptedServer::start(
        Script::new()
            .send(GREETING)
            .on("EHLO", EHLO_PIPELINING)
            .expect_line("MAIL")
            .expect_line("RCPT TO:<bob@example.org>")
            .expect_line("RCPT TO:<reject@example.org>")
            .expect_line("RCPT TO:<carol@example.org>")
            .expect_line("DATA")
            .send("250 ok\r\n250 ok\r\n550 5.1.1 no such user\r\n250 ok\r\n354 go\r\n")
            .expect_data_end()
            .send("250 queued\r\n")
            .expect_line("MAIL")
            .expect_line("RCPT TO:<nobody@example.org>")
            .expect_line("DATA")
            .send("250 ok\r\n550 5.1.1 unknown\r\n554 5.5.1 no valid recipients\r\n")
            .on("RSET", "250 ok\r\n")
            .expect_line("MAIL")
            .expect_line("RCPT TO:<dave@example.org>")
            .expect_line("DATA")
            .send("250 ok\r\n250 ok\r\n354 go\r\n")
            .expect_data_end()
            .send("250 queued\r\n")
            .on("QUIT", "221 bye\r\n")
            .read_to_eof(),
    );
    let mut client = A::connect(&options(&server)).expect("connect");
    let to = envelope(&["bob@example.org", "reject@example.org", "carol@example.org"]);
    let report = client.send(to, Body::bytes("hi\r\n")).expect("send");
    assert_eq!(report.outcome, Outcome::Sent, "{report:?}");
    let statuses: Vec<_> = report.recipients.iter().map(|r| r.status).collect();
    assert_eq!(
        statuses,
        [RecipientStatus::Delivered, RecipientStatus::PermanentFailure, RecipientStatus::Delivered]
    );
    assert_eq!(code(&report.recipients[1].rcpt_reply), Some(550));
    assert!(!report.all_delivered());

    let report = client.send(envelope(&["nobody@example.org"]), Body::bytes("x\r\n")).expect("send");
    assert_eq!(report.outcome, Outcome::Rejected, "{report:?}");
    assert_eq!(report.failure, Some(Failure::NoRecipientAccepted));
    assert!(client.close_reason().is_none());

    let report = client.send(envelope(&["dave@example.org"]), Body::bytes("again\r\n")).expect("send");
    assert_eq!(report.outcome, Outcome::Sent, "{report:?}");
    client.quit().expect("quit");
    assert_eq!(server.finish().data.len(), 2);
}

/// A 421 to MAIL: the message is rejected (temporary), the session ends with the 421 as its reason, a
/// later send is refused naming it, and QUIT afterwards is a no-op.
pub fn service_closing_mid_session_rejects_and_closes<A: Adapter>() {
    let _serial = shared();
    let server = ScriptedServer::start(
        Script::new()
            .send(GREETING)
            .on("EHLO", EHLO_LOCKSTEP)
            .on("MAIL", "421 4.3.2 shutting down\r\n")
            .read_to_eof(),
    );
    let mut client = A::connect(&options(&server)).expect("connect");
    let report = client.send(envelope(&["bob@example.org"]), Body::bytes("x\r\n")).expect("send");
    assert_eq!(report.outcome, Outcome::Rejected, "{report:?}");
    assert!(report.is_temporary());
    match client.close_reason() {
        Some(Error::Session(Core::ServiceUnavailable(reply))) => assert_eq!(reply.code(), 421),
        other => panic!("close reason {other:?}"),
    }
    match client.send(envelope(&["bob@example.org"]), Body::bytes("x\r\n")) {
        Err(Error::Closed(cause)) => assert_eq!(cause.reply().map(|r| r.code()), Some(421)),
        other => panic!("{other:?}"),
    }
    client.quit().expect("quit after the session ended is a no-op");
    let rec = server.finish();
    assert!(rec.data.is_empty());
}

/// The connection closes after the final dot, without a reply: the message may have been delivered.
pub fn eof_after_the_final_dot_is_unknown<A: Adapter>() {
    let _serial = shared();
    let server = ScriptedServer::start(to_the_body(EHLO_PIPELINING).expect_data_end().close());
    let mut client = A::connect(&options(&server)).expect("connect");
    let report = client.send(envelope(&["bob@example.org"]), Body::bytes("x\r\n")).expect("send");
    assert_eq!(report.outcome, Outcome::Unknown, "{report:?}");
    assert_eq!(report.recipients[0].status, RecipientStatus::Unknown);
    assert!(
        matches!(client.close_reason(), Some(Error::Session(Core::UnexpectedEof))),
        "{:?}",
        client.close_reason()
    );
    assert_closed(client.send(envelope(&["bob@example.org"]), Body::bytes("x\r\n")));
    assert_eq!(server.finish().data.len(), 1);
}

/// The connection closes before the 354: rejected, and the session is over.
pub fn eof_before_the_final_dot_is_rejected<A: Adapter>() {
    let _serial = shared();
    let server = ScriptedServer::start(
        Script::new()
            .send(GREETING)
            .on("EHLO", EHLO_PIPELINING)
            .expect_line("MAIL")
            .expect_line("RCPT")
            .expect_line("DATA")
            .send("250 ok\r\n250 ok\r\n")
            .close(),
    );
    let mut client = A::connect(&options(&server)).expect("connect");
    let report = client.send(envelope(&["bob@example.org"]), Body::bytes("x\r\n")).expect("send");
    assert_eq!(report.outcome, Outcome::Rejected, "{report:?}");
    assert!(client.close_reason().is_some());
    server.finish();
}

/// A server that accepts and never greets: `Timeout(Greeting)`, which converts to `TimedOut`.
pub fn silent_server_times_out_at_the_greeting<A: Adapter>() {
    let _serial = shared();
    let server = ScriptedServer::start(Script::new().read_to_eof());
    let mut o = options(&server);
    o.session.timeouts.greeting = Duration::from_millis(200);
    let err = A::connect(&o).expect_err("connected to a silent server");
    assert!(matches!(err, Error::Session(Core::Timeout(Timer::Greeting))), "{err:?}");
    assert_eq!(std::io::Error::from(err).kind(), ErrorKind::TimedOut);
    let rec = server.finish();
    assert!(rec.commands.is_empty() && rec.plaintext.is_empty(), "{rec}");
}

/// No reply to the final dot within the deadline: Unknown, `Timeout(DataTermination)`.
pub fn silence_after_the_final_dot_times_out_as_unknown<A: Adapter>() {
    let _serial = shared();
    let server = ScriptedServer::start(to_the_body(EHLO_PIPELINING).expect_data_end().read_to_eof());
    let mut o = options(&server);
    o.session.timeouts.data_termination = Duration::from_millis(200);
    let mut client = A::connect(&o).expect("connect");
    let report = client.send(envelope(&["bob@example.org"]), Body::bytes("x\r\n")).expect("send");
    assert_eq!(report.outcome, Outcome::Unknown, "{report:?}");
    assert_eq!(report.failure, Some(Failure::Session(Core::Timeout(Timer::DataTermination))));
    assert!(
        matches!(client.close_reason(), Some(Error::Session(Core::Timeout(Timer::DataTermination)))),
        "{:?}",
        client.close_reason()
    );
    server.finish();
}

/// 1.5 MiB of dots, bare CRs and LFs, long lines and 8-bit text, declared 8BITMIME with its size: it
/// streams with progress reports (increasing, ending at the whole body with the declared total) and
/// un-stuffs to the CRLF-normalised original.
pub fn large_tricky_body_streams_with_progress_and_unstuffs_to_the_original<A: Adapter>() {
    let _serial = shared();
    let body = tricky_body(1536 * 1024);
    let server = ScriptedServer::start(
        to_the_body("250-mx.test\r\n250-PIPELINING\r\n250-8BITMIME\r\n250 SIZE 10000000\r\n")
            .expect_data_end()
            .send("250 queued\r\n")
            .on("QUIT", "221 bye\r\n")
            .read_to_eof(),
    );
    let mut client = A::connect(&options(&server)).expect("connect");
    let env = envelope(&["bob@example.org"]).body_type(BodyType::EightBitMime).size(body.len() as u64);
    let mut seen = Vec::new();
    let report = client
        .send_with_progress(env, Body::bytes(&body), &mut |sent, total| seen.push((sent, total)))
        .expect("send");
    assert_eq!(report.outcome, Outcome::Sent, "{report:?}");
    client.quit().expect("quit");
    let rec = server.finish();
    assert!(rec.commands[1].contains("BODY=8BITMIME"), "{}", rec.commands[1]);
    let got = unstuff(&rec.data[0]).expect("well-formed DATA");
    assert!(got == normalize_line_endings(&body), "the body changed on the way");
    assert!(seen.len() > 1, "{seen:?}");
    assert!(seen.windows(2).all(|w| w[0].0 < w[1].0), "{seen:?}");
    assert_eq!(seen.last(), Some(&(body.len() as u64, Some(body.len() as u64))));
}

/// CHUNKING without PIPELINING: several BDAT chunks, each waiting for its reply, the last one `LAST`, and
/// together the normalised body.
pub fn bdat_in_lock_step_sends_every_chunk<A: Adapter>() {
    let _serial = shared();
    let body = tricky_body(200 * 1024);
    let server = ScriptedServer::start(
        Script::new()
            .send(GREETING)
            .on("EHLO", "250-mx.test\r\n250-CHUNKING\r\n250 8BITMIME\r\n")
            .on("MAIL", "250 ok\r\n")
            .on("RCPT", "250 ok\r\n")
            .expect_bdat("250 ok\r\n")
            .on("QUIT", "221 bye\r\n")
            .read_to_eof(),
    );
    let mut client = A::connect(&options(&server)).expect("connect");
    let env = envelope(&["bob@example.org"]).body_type(BodyType::EightBitMime);
    let report = client.send(env, Body::bytes(&body)).expect("send");
    assert_eq!(report.outcome, Outcome::Sent, "{report:?}");
    client.quit().expect("quit");
    let rec = server.finish();
    assert!(rec.chunks.len() > 2, "{} chunks", rec.chunks.len());
    assert!(rec.chunks.concat() == normalize_line_endings(&body), "the body changed on the way");
    let bdat: Vec<_> =
        rec.commands.iter().zip(&rec.followed).filter(|(c, _)| c.starts_with("BDAT")).collect();
    assert!(bdat.last().is_some_and(|(c, _)| c.ends_with(" LAST")), "{bdat:?}");
    assert!(bdat.iter().all(|(_, followed)| !**followed), "BDAT chunks were pipelined: {bdat:?}");
}

/// LMTP: LHLO, and one reply per recipient after the final dot.
pub fn lmtp_reports_each_recipient_after_the_body<A: Adapter>() {
    let _serial = shared();
    let server = ScriptedServer::start(
        Script::new()
            .send("220 lmtp.test LMTP\r\n")
            .on("LHLO client.test", "250-lmtp.test\r\n250 PIPELINING\r\n")
            .expect_line("MAIL")
            .expect_line("RCPT TO:<bob@example.org>")
            .expect_line("RCPT TO:<carol@example.org>")
            .expect_line("DATA")
            .send("250 ok\r\n250 ok\r\n250 ok\r\n354 go\r\n")
            .expect_data_end()
            .send("250 2.0.0 bob ok\r\n452 4.2.2 carol over quota\r\n")
            .on("QUIT", "221 bye\r\n")
            .read_to_eof(),
    );
    let mut o = options(&server);
    o.session.protocol = Protocol::Lmtp;
    let mut client = A::connect(&o).expect("connect");
    let to = envelope(&["bob@example.org", "carol@example.org"]);
    let report = client.send(to, Body::bytes("x\r\n")).expect("send");
    assert_eq!(report.outcome, Outcome::Sent, "{report:?}");
    assert_eq!(report.recipients[0].status, RecipientStatus::Delivered);
    assert_eq!(report.recipients[1].status, RecipientStatus::TemporaryFailure);
    assert_eq!(code(&report.recipients[1].lmtp_reply), Some(452));
    client.quit().expect("quit");
    assert_eq!(server.finish().commands[0], "LHLO client.test");
}

/// A declared size over the server's SIZE: refused before any byte, and the session goes on.
pub fn too_big_for_the_server_is_refused_before_any_byte<A: Adapter>() {
    let _serial = shared();
    let server = ScriptedServer::start(
        to_the_body("250-mx.test\r\n250-PIPELINING\r\n250 SIZE 1000\r\n")
            .expect_data_end()
            .send("250 queued\r\n")
            .on("QUIT", "221 bye\r\n")
            .read_to_eof(),
    );
    let mut client = A::connect(&options(&server)).expect("connect");
    match client.send(envelope(&["bob@example.org"]).size(5000), Body::bytes("x\r\n")) {
        Err(Error::Send(SendError::Unsendable(Unsendable::TooBig { size: 5000, limit: 1000 }))) => {}
        other => panic!("{other:?}"),
    }
    let report = client.send(envelope(&["bob@example.org"]), Body::bytes("small\r\n")).expect("send");
    assert_eq!(report.outcome, Outcome::Sent, "{report:?}");
    client.quit().expect("quit");
    let rec = server.finish();
    assert_eq!(rec.data.len(), 1);
    assert_eq!(text(&rec.plaintext).matches("MAIL FROM").count(), 1);
}

/// 8-bit octets in a body declared 7BIT: `Error::Body` (`InvalidData`); the session is aborted.
pub fn eight_bit_body_under_a_seven_bit_declaration_is_a_body_error<A: Adapter>() {
    let _serial = shared();
    let server = ScriptedServer::start(to_the_body(EHLO_PIPELINING).read_to_eof());
    let mut client = A::connect(&options(&server)).expect("connect");
    let env = envelope(&["bob@example.org"]).body_type(BodyType::SevenBit);
    match client.send(env, Body::bytes(b"caf\xc3\xa9\r\n")) {
        Err(Error::Body(e)) => assert_eq!(e.kind(), ErrorKind::InvalidData),
        other => panic!("{other:?}"),
    }
    drop(client);
    let rec = server.finish();
    assert!(!rec.contains(b"\r\n.\r\n"), "an end of data was sent: {rec}");
}

/// Without 8BITMIME an undeclared body goes as 7-bit: 8-bit octets in it cannot be sent (`Error::Body`).
pub fn eight_bit_body_to_a_server_without_8bitmime_is_a_body_error<A: Adapter>() {
    let _serial = shared();
    let server = ScriptedServer::start(to_the_body("250-mx.test\r\n250 PIPELINING\r\n").read_to_eof());
    let mut client = A::connect(&options(&server)).expect("connect");
    let body = "Subject: caf\u{e9}\r\n\r\nd\u{e9}j\u{e0} vu\r\n";
    match client.send(envelope(&["bob@example.org"]), Body::bytes(body)) {
        Err(Error::Body(e)) => assert_eq!(e.kind(), ErrorKind::InvalidData),
        other => panic!("{other:?}"),
    }
    drop(client);
    let rec = server.finish();
    assert!(!rec.contains(b"\r\n.\r\n"), "an end of data was sent: {rec}");
}

/// Issue 16 item 2: a UTF-8 body with the default envelope (no body type declared) to a server offering
/// 8BITMIME is sent, declared `BODY=8BITMIME`; the session goes on.
pub fn utf8_body_with_the_default_envelope_is_declared_8bitmime<A: Adapter>() {
    let _serial = shared();
    let server = ScriptedServer::start(
        Script::new()
            .send(GREETING)
            .on("EHLO", EHLO_LOCKSTEP)
            .on("MAIL FROM:<alice@example.org>", "250 ok\r\n")
            .on("RCPT TO:<bob@example.org>", "250 ok\r\n")
            .on("DATA", "354 go\r\n")
            .expect_data_end()
            .send("250 queued\r\n")
            .on("NOOP", "250 ok\r\n")
            .on("QUIT", "221 bye\r\n")
            .read_to_eof(),
    );
    let mut client = A::connect(&options(&server)).expect("connect");
    let body = "Subject: caf\u{e9}\r\n\r\nd\u{e9}j\u{e0} vu, \u{fc}ber alles\r\n";
    let report = client.send(envelope(&["bob@example.org"]), Body::bytes(body)).expect("sent");
    assert_eq!(report.outcome, Outcome::Sent, "{report:?}");
    client.noop().expect("the session goes on");
    client.quit().expect("quit");
    let rec = server.finish();
    assert_eq!(rec.commands[1], "MAIL FROM:<alice@example.org> BODY=8BITMIME");
    assert_eq!(unstuff(&rec.data[0]).expect("well-formed"), body.as_bytes());
}

/// Nothing listens on the port: `Error::Connect` with `ConnectionRefused`.
pub fn connection_refused_is_a_connect_error<A: Adapter>() {
    // Bind, learn the port, close: nothing listens there any more.
    let port = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("bind").port();
    match A::connect(&options_for(port)) {
        Err(Error::Connect(e)) => assert_eq!(e.kind(), ErrorKind::ConnectionRefused),
        Err(other) => panic!("{other:?}"),
        Ok(_) => panic!("connected to nothing"),
    }
}

/// A 554 greeting: the client says QUIT (RFC 5321 §3.1) and fails with the 554.
pub fn greeting_554_is_a_session_error<A: Adapter>() {
    let _serial = shared();
    let server = ScriptedServer::start(
        Script::new().send("554 5.7.1 go away\r\n").on("QUIT", "221 bye\r\n").read_to_eof(),
    );
    match A::connect(&options(&server)) {
        Err(Error::Session(Core::ServiceUnavailable(r))) => assert_eq!(r.code(), 554),
        Err(other) => panic!("{other:?}"),
        Ok(_) => panic!("connected"),
    }
    server.finish();
}

/// Issue 16 item 3: a 554 greeting and then a TCP reset (instead of the 221 to QUIT, or a moment later with
/// the QUIT unread): the error is the 554, not the reset that followed it.
pub fn greeting_554_then_a_reset_keeps_the_554<A: Adapter>() {
    let _serial = shared();
    let scripts = [
        Script::new().send("554 5.7.1 go away\r\n").expect_line("QUIT").reset(),
        Script::new().send("554 5.7.1 go away\r\n").sleep(Duration::from_millis(50)).reset(),
    ];
    for script in scripts {
        let server = ScriptedServer::start(script.clone());
        match A::connect(&options(&server)) {
            Err(Error::Session(Core::ServiceUnavailable(r))) => assert_eq!(r.code(), 554, "{script:?}"),
            Err(other) => panic!("{script:?}: {other:?}"),
            Ok(_) => panic!("{script:?}: connected"),
        }
        server.finish();
    }
}

/// The transaction every `from_stream` test runs: one message to bob, then QUIT.
fn one_message(ehlo_name: &str) -> Script {
    Script::new()
        .send(GREETING)
        .on(&format!("EHLO {ehlo_name}"), EHLO_PIPELINING)
        .expect_line("MAIL")
        .expect_line("RCPT")
        .expect_line("DATA")
        .send("250 ok\r\n250 ok\r\n354 go\r\n")
        .expect_data_end()
        .send("250 queued\r\n")
        .on("QUIT", "221 bye\r\n")
        .read_to_eof()
}

/// `from_stream` over a Unix socket, which has no local IP address: the default EHLO name is the
/// loopback literal.
pub fn from_stream_runs_over_a_unix_socket<A: Adapter>() {
    let _serial = shared();
    let (server, stream) = ScriptedServer::start_unix(one_message("[127.0.0.1]"));
    let mut o = options_for(0);
    o.helo_name = None;
    let mut client = A::from_stream(Stream::Unix(stream), &o).expect("session");
    let report = client.send(envelope(&["bob@example.org"]), Body::bytes("over unix\r\n")).expect("send");
    assert_eq!(report.outcome, Outcome::Sent, "{report:?}");
    client.quit().expect("quit");
    let rec = server.finish();
    assert_eq!(unstuff(&rec.data[0]).expect("well-formed"), b"over unix\r\n");
}

/// `from_stream` over a TCP connection the caller opened, with the configured EHLO name.
pub fn from_stream_runs_over_tcp<A: Adapter>() {
    let _serial = shared();
    let server = ScriptedServer::start(one_message("client.test"));
    let stream = std::net::TcpStream::connect(server.addr()).expect("connect");
    let mut client = A::from_stream(Stream::Tcp(stream), &options(&server)).expect("session");
    let report = client.send(envelope(&["bob@example.org"]), Body::bytes("over tcp\r\n")).expect("send");
    assert_eq!(report.outcome, Outcome::Sent, "{report:?}");
    client.quit().expect("quit");
    assert_eq!(unstuff(&server.finish().data[0]).expect("well-formed"), b"over tcp\r\n");
}

/// The server answers 421 after 64 KiB of a 32 MiB body and stops reading. A client that only wrote would
/// block on a full socket until the data-block timeout (10 s here): the 421 must be heard while writing.
pub fn a_reply_in_the_middle_of_the_body_is_heard<A: Adapter>() {
    let _serial = shared();
    let gate = Gate::new();
    let server = ScriptedServer::start(
        to_the_body(EHLO_PIPELINING)
            .read_at_least(64 * 1024)
            .send("421 4.3.2 going down now\r\n")
            .hold_until(&gate),
    );
    let mut client = A::connect(&options(&server)).expect("connect");
    let body = Body::generated(32 * MIB).one_shot();
    let report = client.send(envelope(&["bob@example.org"]), body).expect("report");
    gate.open();
    assert_eq!(report.outcome, Outcome::Rejected, "{report:?}");
    assert_eq!(report.failure, Some(Failure::Interrupted), "{report:?}");
    assert_eq!(code(&report.final_reply), Some(421));
    match client.close_reason() {
        Some(Error::Session(Core::ServiceUnavailable(r))) => assert_eq!(r.code(), 421),
        other => panic!("{other:?}"),
    }
    drop(client);
    server.finish();
}

/// The server reads a line of the body, says 421 and closes with the rest unread (the kernel resets the
/// connection): the message is rejected, and the 421 is why the session ended.
pub fn a_server_giving_up_mid_body_is_heard<A: Adapter>() {
    let _serial = shared();
    let server = ScriptedServer::start(
        to_the_body(EHLO_PIPELINING).expect_line("").send("421 4.3.0 out of resources\r\n").close(),
    );
    let mut client = A::connect(&options(&server)).expect("connect");
    // Far more than the socket buffers hold: the end of data can never be handed out.
    let report =
        client.send(envelope(&["bob@example.org"]), Body::generated(64 * MIB).one_shot()).expect("send");
    assert_eq!(report.outcome, Outcome::Rejected, "{report:?}");
    assert!(report.is_temporary(), "{report:?}");
    match client.close_reason() {
        Some(Error::Session(Core::ServiceUnavailable(r))) => assert_eq!(r.code(), 421),
        other => panic!("{other:?}"),
    }
    server.finish();
}

/// A message sent after the session sat idle for longer than every reply timeout, to a server that takes
/// its time to answer: the message's deadlines count from when it is sent, not from the session's last reply.
pub fn a_message_after_an_idle_longer_than_the_reply_timeouts_is_sent<A: Adapter>() {
    let _serial = shared();
    let server = ScriptedServer::start(
        to_the_body(EHLO_PIPELINING)
            .expect_data_end()
            .send("250 queued\r\n")
            .expect_line("MAIL")
            .expect_line("RCPT")
            .expect_line("DATA")
            .sleep(SHORT / 4)
            .send("250 ok\r\n250 ok\r\n354 go\r\n")
            .expect_data_end()
            .send("250 queued\r\n")
            .on("QUIT", "221 bye\r\n"),
    );
    let mut o = options(&server);
    o.session.timeouts = smtp_proto::Timeouts::uniform(SHORT);
    let mut client = A::connect(&o).expect("connect");
    let first = client.send(envelope(&["bob@example.org"]), Body::bytes("one\r\n")).expect("report");
    std::thread::sleep(SHORT * 3 / 2);
    let second = client.send(envelope(&["bob@example.org"]), Body::bytes("two\r\n")).expect("report");
    assert_eq!((first.outcome, second.outcome), (Outcome::Sent, Outcome::Sent), "{second:?}");
    client.quit().expect("quit");
    assert_eq!(server.finish().data.len(), 2);
}
