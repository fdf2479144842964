//! Session transcripts: `S:` server bytes, `C:` client bytes, then the events. Every script also runs with
//! the server bytes split at every offset, byte by byte and in random chunks (see `common::check`).

mod common;

use common::{Step::*, check, config, ehlo, env};
use smtp_proto::reply::{ParseError, Reply};
use smtp_proto::{Error, Event, Failure, Outcome, ProtocolViolation, RecipientStatus};

// No 8BITMIME: a body the envelope does not declare then goes as 7-bit, with no BODY parameter (see
// `undeclared_body_is_8bitmime_where_offered` for the other case).
const PIPE_CAPS: &[u8] = b"250-mx.example.com\r\n250-PIPELINING\r\n250 ENHANCEDSTATUSCODES\r\n";
const PLAIN_CAPS: &[u8] = b"250-mx.example.com\r\n250 ENHANCEDSTATUSCODES\r\n";

/// TV-01: a multi-line greeting; nothing is sent until it is complete.
#[test]
fn tv01_greeting_in_several_lines() {
    let run = check(
        &config(),
        &[
            S(b"220-mx.example.com ESMTP\r\n"),
            Nothing,
            S(b"220 ready\r\n"),
            C(b"EHLO client.example.org\r\n"),
            S(b"250 mx.example.com\r\n"),
            Nothing,
        ],
    );
    assert!(run.has(|e| *e == Event::Ready));
    assert_eq!(run.closed(), None);
}

/// TV-16: not pipelined, one recipient refused; the other gets the message.
#[test]
fn tv16_lockstep_one_recipient_refused() {
    let mut script = ehlo(PLAIN_CAPS).to_vec();
    script.extend([
        Send {
            env: env("a@example.org", &["b@example.net", "c@example.net"]),
            body: b"Hi\r\n".to_vec(),
            chunk: 64,
        },
        C(b"MAIL FROM:<a@example.org>\r\n"),
        S(b"250 2.1.0 ok\r\n"),
        C(b"RCPT TO:<b@example.net>\r\n"),
        S(b"250 2.1.5 ok\r\n"),
        C(b"RCPT TO:<c@example.net>\r\n"),
        S(b"550 5.1.1 no such user\r\n"),
        C(b"DATA\r\n"),
        S(b"354 go\r\n"),
        C(b"Hi\r\n.\r\n"),
        S(b"250 2.0.0 queued\r\n"),
        Nothing,
    ]);
    let run = check(&config(), &script);
    let r = run.report();
    assert_eq!(r.outcome, Outcome::Sent);
    assert_eq!(r.recipients[0].status, RecipientStatus::Delivered);
    assert_eq!(r.recipients[1].status, RecipientStatus::PermanentFailure);
    assert_eq!(r.recipients[1].rcpt_reply.as_ref().unwrap().code(), 550);
    assert_eq!(r.final_reply.as_ref().unwrap().enhanced().unwrap().to_string(), "2.0.0");
    assert!(run.has(|e| matches!(e, Event::RecipientRejected { index: 1, .. })));
}

/// TV-19: pipelined happy path, MAIL + RCPTs + DATA in one write.
#[test]
fn tv19_pipelined_happy_path() {
    let mut script = ehlo(PIPE_CAPS).to_vec();
    script.extend([
        Send {
            env: env("a@example.org", &["b@example.net", "c@example.net"]),
            body: b".x\r\n".to_vec(),
            chunk: 1,
        },
        C(b"MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.net>\r\nRCPT TO:<c@example.net>\r\nDATA\r\n"),
        S(b"250 ok\r\n250 ok\r\n250 ok\r\n354 go\r\n"),
        C(b"..x\r\n.\r\n"),
        S(b"250 queued\r\n"),
        Quit,
        C(b"QUIT\r\n"),
        S(b"221 bye\r\n"),
    ]);
    let run = check(&config(), &script);
    let r = run.report();
    assert_eq!(r.outcome, Outcome::Sent);
    assert!(r.all_delivered());
    assert_eq!(run.closed(), Some(None));
}

/// Feeds one packet to a client driven by hand, then writes out (and drops) what it has to send, as a driver
/// does before it reads again.
fn packet(client: &mut smtp_proto::Client, now: std::time::Duration, bytes: &[u8]) {
    client.handle_input(now, bytes);
    let mut out = Vec::new();
    while client.poll_transmit(now, &mut out) > 0 {
        out.clear();
    }
}

fn closed_with(run: &common::Run) -> Error {
    run.closed().expect("closed").expect("with an error")
}

/// TV-12: a 554 greeting: QUIT, never EHLO.
#[test]
fn tv12_greeting_554() {
    let run = check(
        &config(),
        &[S(b"554 mx.example.com no SMTP service here\r\n"), C(b"QUIT\r\n"), S(b"221 bye\r\n")],
    );
    assert!(matches!(closed_with(&run), Error::ServiceUnavailable(r) if r.code() == 554));
}

/// TV-12 variant: the server closes instead of answering QUIT.
#[test]
fn tv12_greeting_554_then_eof() {
    let run = check(&config(), &[S(b"554 no\r\n"), C(b"QUIT\r\n"), Eof]);
    assert!(matches!(closed_with(&run), Error::ServiceUnavailable(_)));
}

/// TV-13: a 421 greeting: close at once, no EHLO; a queued message is rejected as temporary.
#[test]
fn tv13_greeting_421() {
    let run = check(
        &config(),
        &[
            Send { env: env("a@example.org", &["b@example.net"]), body: b"x".to_vec(), chunk: 8 },
            Nothing,
            S(b"421 4.3.2 too busy\r\n"),
            Nothing,
        ],
    );
    assert!(matches!(closed_with(&run), Error::ServiceUnavailable(r) if r.code() == 421));
    let r = run.report();
    assert_eq!(r.outcome, Outcome::Rejected);
    assert!(r.is_temporary());
}

/// TV-14: EHLO refused with 502: HELO, then MAIL without parameters or pipelining.
#[test]
fn tv14_helo_fallback() {
    let e = env("a@example.org", &["b@example.net"]).size(10);
    let run = check(
        &config(),
        &[
            S(b"220 old.example.com\r\n"),
            C(b"EHLO client.example.org\r\n"),
            S(b"502 5.5.1 not implemented\r\n"),
            C(b"HELO client.example.org\r\n"),
            S(b"250 old.example.com\r\n"),
            Send { env: e, body: b"x\r\n".to_vec(), chunk: 8 },
            C(b"MAIL FROM:<a@example.org>\r\n"),
            S(b"250 ok\r\n"),
            C(b"RCPT TO:<b@example.net>\r\n"),
            S(b"250 ok\r\n"),
            C(b"DATA\r\n"),
            S(b"354 go\r\n"),
            C(b"x\r\n.\r\n"),
            S(b"250 ok\r\n"),
        ],
    );
    assert_eq!(run.report().outcome, Outcome::Sent);
}

/// TV-15: 421 to EHLO: no HELO, close. 451: QUIT, temporary. 550: QUIT, permanent.
#[test]
fn tv15_ehlo_refused_without_fallback() {
    let run = check(
        &config(),
        &[S(b"220 mx\r\n"), C(b"EHLO client.example.org\r\n"), S(b"421 4.3.2 down\r\n"), Nothing],
    );
    assert!(matches!(closed_with(&run), Error::ServiceUnavailable(_)));
    for code in [&b"451 try later\r\n"[..], b"550 go away\r\n"] {
        let script = [
            S(b"220 mx\r\n"),
            C(b"EHLO client.example.org\r\n"),
            S(if code[0] == b'4' { b"451 try later\r\n" } else { b"550 go away\r\n" }),
            C(b"QUIT\r\n"),
            S(b"221 bye\r\n"),
        ];
        let run = check(&config(), &script);
        assert!(
            matches!(closed_with(&run), Error::HelloRejected(r) if r.code() == u16::from(code[0] - b'0') * 100 + if code[0] == b'4' { 51 } else { 50 })
        );
    }
}

/// HELO fallback never happens when TLS is required (SESS-04): STARTTLS cannot exist without EHLO.
#[test]
fn no_helo_fallback_when_tls_required() {
    let mut c = config();
    c.tls = smtp_proto::TlsMode::Required;
    let run = check(
        &c,
        &[S(b"220 mx\r\n"), C(b"EHLO client.example.org\r\n"), S(b"502 no\r\n"), C(b"QUIT\r\n"), Eof],
    );
    assert!(matches!(closed_with(&run), Error::HelloRejected(_)));
}

/// TV-17: single-line EHLO = no extensions: no SIZE, no BODY, no DSN parameters, lock-step.
#[test]
fn tv17_no_extensions_no_parameters() {
    let e = env("a@example.org", &["b@example.net"]).size(999).ret(smtp_proto::command::Ret::Full);
    let mut script = ehlo(b"250 mx.example.com\r\n").to_vec();
    script.extend([
        Send { env: e, body: b"x\r\n".to_vec(), chunk: 8 },
        C(b"MAIL FROM:<a@example.org>\r\n"),
        S(b"250 ok\r\n"),
        C(b"RCPT TO:<b@example.net>\r\n"),
        S(b"250 ok\r\n"),
        C(b"DATA\r\n"),
        S(b"354 go\r\n"),
        C(b"x\r\n.\r\n"),
        S(b"250 ok\r\n"),
    ]);
    let run = check(&config(), &script);
    let r = run.report();
    assert_eq!(r.outcome, Outcome::Sent);
    assert_eq!(r.warnings, vec![smtp_proto::Warning::NoDsnSupport]);
}

/// TV-18: lock-step, every recipient refused: RSET, no DATA.
#[test]
fn tv18_lockstep_all_refused() {
    let mut script = ehlo(PLAIN_CAPS).to_vec();
    script.extend([
        Send { env: env("a@example.org", &["b@example.net"]), body: b"x".to_vec(), chunk: 8 },
        C(b"MAIL FROM:<a@example.org>\r\n"),
        S(b"250 ok\r\n"),
        C(b"RCPT TO:<b@example.net>\r\n"),
        S(b"550 no\r\n"),
        C(b"RSET\r\n"),
        S(b"250 ok\r\n"),
        Nothing,
    ]);
    let run = check(&config(), &script);
    let r = run.report();
    assert_eq!(r.outcome, Outcome::Rejected);
    assert_eq!(r.failure, Some(Failure::NoRecipientAccepted));
    assert_eq!(r.recipients[0].status, RecipientStatus::PermanentFailure);
    assert!(!run.has(|e| matches!(e, Event::BodyRequested { .. })));
}

/// TV-20: pipelined, every RCPT refused, DATA refused: RSET, no body bytes.
#[test]
fn tv20_pipelined_all_refused_data_refused() {
    let mut script = ehlo(PIPE_CAPS).to_vec();
    script.extend([
        Send { env: env("a@example.org", &["b@x.test", "c@x.test"]), body: b"x".to_vec(), chunk: 8 },
        C(b"MAIL FROM:<a@example.org>\r\nRCPT TO:<b@x.test>\r\nRCPT TO:<c@x.test>\r\nDATA\r\n"),
        S(b"250 ok\r\n550 no\r\n550 no\r\n554 no valid recipients\r\n"),
        C(b"RSET\r\n"),
        S(b"250 ok\r\n"),
    ]);
    let run = check(&config(), &script);
    let r = run.report();
    assert_eq!(r.outcome, Outcome::Rejected);
    assert_eq!(r.failure, Some(Failure::NoRecipientAccepted));
    assert!(r.recipients.iter().all(|x| x.status == RecipientStatus::PermanentFailure));
}

/// TV-21: pipelined, every RCPT refused, yet DATA gets 354: a lone dot, never a body.
#[test]
fn tv21_pipelined_all_refused_data_354() {
    let mut script = ehlo(PIPE_CAPS).to_vec();
    script.extend([
        Send {
            env: env("a@example.org", &["b@x.test", "c@x.test"]),
            body: b"secret body".to_vec(),
            chunk: 8,
        },
        C(b"MAIL FROM:<a@example.org>\r\nRCPT TO:<b@x.test>\r\nRCPT TO:<c@x.test>\r\nDATA\r\n"),
        S(b"250 ok\r\n550 no\r\n550 no\r\n354 go\r\n"),
        C(b".\r\n"),
        S(b"554 5.5.1 no valid recipients\r\n"),
        Nothing,
    ]);
    let run = check(&config(), &script);
    let r = run.report();
    assert_eq!(r.outcome, Outcome::Rejected);
    assert_eq!(r.failure, Some(Failure::NoRecipientAccepted));
    assert!(r.recipients.iter().all(|x| x.status == RecipientStatus::PermanentFailure));
}

/// TV-22: pipelined, MAIL refused: all three replies read, then RSET.
#[test]
fn tv22_pipelined_mail_refused() {
    let mut script = ehlo(PIPE_CAPS).to_vec();
    script.extend([
        Send { env: env("a@example.org", &["b@x.test"]), body: b"x".to_vec(), chunk: 8 },
        C(b"MAIL FROM:<a@example.org>\r\nRCPT TO:<b@x.test>\r\nDATA\r\n"),
        S(b"553 5.1.8 sender rejected\r\n503 5.5.1 need MAIL\r\n"),
        Nothing,
        S(b"503 5.5.1 need MAIL\r\n"),
        C(b"RSET\r\n"),
        S(b"250 ok\r\n"),
    ]);
    let run = check(&config(), &script);
    let r = run.report();
    assert_eq!(r.outcome, Outcome::Rejected);
    assert_eq!(r.failure, Some(Failure::MailRejected));
    assert_eq!(r.mail_reply.as_ref().unwrap().code(), 553);
}

/// TV-23: a multi-line reply counts once in a pipelined group.
#[test]
fn tv23_multiline_reply_counts_once() {
    let mut script = ehlo(PIPE_CAPS).to_vec();
    script.extend([
        Send { env: env("a@example.org", &["b@x.test", "c@x.test"]), body: b"x\r\n".to_vec(), chunk: 8 },
        C(b"MAIL FROM:<a@example.org>\r\nRCPT TO:<b@x.test>\r\nRCPT TO:<c@x.test>\r\nDATA\r\n"),
        S(b"250 ok\r\n550-5.1.1 user unknown\r\n550 5.1.1 see https://x\r\n250 ok\r\n354 go\r\n"),
        C(b"x\r\n.\r\n"),
        S(b"250 ok\r\n"),
    ]);
    let run = check(&config(), &script);
    let r = run.report();
    assert_eq!(r.recipients[0].status, RecipientStatus::PermanentFailure);
    assert_eq!(r.recipients[0].rcpt_reply.as_ref().unwrap().line_count(), 2);
    assert_eq!(r.recipients[1].status, RecipientStatus::Delivered);
}

/// TV-24 and several messages per session: the next transaction rides with the final dot, and QUIT with
/// the last one.
#[test]
fn tv24_next_message_pipelined_after_dot() {
    let mut script = ehlo(PIPE_CAPS).to_vec();
    script.extend([
        Send { env: env("a@example.org", &["b@x.test"]), body: b"one\r\n".to_vec(), chunk: 64 },
        C(b"MAIL FROM:<a@example.org>\r\nRCPT TO:<b@x.test>\r\nDATA\r\n"),
        S(b"250 ok\r\n250 ok\r\n354 go\r\n"),
        C(b"one\r\n.\r\n"),
        Send { env: env("a@example.org", &["c@x.test"]), body: b"two\r\n".to_vec(), chunk: 64 },
        C(b"MAIL FROM:<a@example.org>\r\nRCPT TO:<c@x.test>\r\nDATA\r\n"),
        S(b"250 queued 1\r\n250 ok\r\n250 ok\r\n354 go\r\n"),
        C(b"two\r\n.\r\n"),
        Quit,
        C(b"QUIT\r\n"),
        S(b"250 queued 2\r\n221 bye\r\n"),
    ]);
    let run = check(&config(), &script);
    let reports = run.reports();
    assert_eq!(reports.len(), 2);
    assert!(reports.iter().all(|r| r.outcome == Outcome::Sent));
    assert_eq!(reports[1].final_reply.as_ref().unwrap().text(), b"queued 2");
    assert_eq!(run.closed(), Some(None));
}

/// TV-25: 421 inside a pipelined group: b gets the 421, c a synthesized temporary failure; nothing more sent.
#[test]
fn tv25_421_inside_pipelined_group() {
    let mut script = ehlo(PIPE_CAPS).to_vec();
    script.extend([
        Send { env: env("a@example.org", &["b@x.test", "c@x.test"]), body: b"x".to_vec(), chunk: 8 },
        C(b"MAIL FROM:<a@example.org>\r\nRCPT TO:<b@x.test>\r\nRCPT TO:<c@x.test>\r\nDATA\r\n"),
        S(b"250 ok\r\n421 4.3.2 closing\r\n"),
        Nothing,
        Eof,
        Nothing,
    ]);
    let run = check(&config(), &script);
    let r = run.report();
    assert_eq!(r.outcome, Outcome::Rejected);
    assert!(r.is_temporary());
    assert_eq!(r.recipients[0].rcpt_reply.as_ref().unwrap().code(), 421);
    assert_eq!(r.recipients[1].rcpt_reply, None);
    assert!(matches!(closed_with(&run), Error::ServiceUnavailable(_)));
}

/// TV-26: the connection drops after the final dot: Unknown, never Sent or Rejected.
#[test]
fn tv26_eof_after_final_dot_is_unknown() {
    let mut script = ehlo(PIPE_CAPS).to_vec();
    script.extend([
        Send { env: env("a@example.org", &["b@x.test"]), body: b"x\r\n".to_vec(), chunk: 8 },
        C(b"MAIL FROM:<a@example.org>\r\nRCPT TO:<b@x.test>\r\nDATA\r\n"),
        S(b"250 ok\r\n250 ok\r\n354 go\r\n"),
        C(b"x\r\n.\r\n"),
        Eof,
    ]);
    let run = check(&config(), &script);
    let r = run.report();
    assert_eq!(r.outcome, Outcome::Unknown);
    assert_eq!(r.recipients[0].status, RecipientStatus::Unknown);
    assert!(matches!(closed_with(&run), Error::UnexpectedEof));
}

/// The same drop before the dot was written: Rejected (temporary), not Unknown.
#[test]
fn eof_during_envelope_is_rejected_temporary() {
    let mut script = ehlo(PIPE_CAPS).to_vec();
    script.extend([
        Send { env: env("a@example.org", &["b@x.test"]), body: b"x\r\n".to_vec(), chunk: 8 },
        C(b"MAIL FROM:<a@example.org>\r\nRCPT TO:<b@x.test>\r\nDATA\r\n"),
        S(b"250 ok\r\n"),
        Eof,
    ]);
    let run = check(&config(), &script);
    let r = run.report();
    assert_eq!(r.outcome, Outcome::Rejected);
    assert!(r.is_temporary());
    assert!(matches!(r.failure, Some(Failure::Session(Error::UnexpectedEof))));
}

/// TV-27: a reply with nothing outstanding is a protocol error; an idle 421 closes cleanly, and a
/// completed message keeps its outcome.
#[test]
fn tv27_unsolicited_replies() {
    let mut script = ehlo(PIPE_CAPS).to_vec();
    script.extend([S(b"250 surprise\r\n"), C(b"QUIT\r\n")]);
    let run = check(&config(), &script);
    assert_eq!(
        closed_with(&run),
        Error::Protocol(smtp_proto::ProtocolViolation::UnsolicitedReply {
            reply: Reply::new(250, "surprise"),
            before: None
        })
    );

    let mut script = ehlo(PIPE_CAPS).to_vec();
    script.extend([
        Send { env: env("a@example.org", &["b@x.test"]), body: b"x\r\n".to_vec(), chunk: 8 },
        C(b"MAIL FROM:<a@example.org>\r\nRCPT TO:<b@x.test>\r\nDATA\r\n"),
        S(b"250 ok\r\n250 ok\r\n354 go\r\n"),
        C(b"x\r\n.\r\n"),
        S(b"250 queued\r\n"),
        S(b"421 4.4.2 idle timeout\r\n"),
        Nothing,
    ]);
    let run = check(&config(), &script);
    assert_eq!(run.report().outcome, Outcome::Sent);
    assert!(matches!(closed_with(&run), Error::ServiceUnavailable(r) if r.code() == 421));
}

/// TV-28: 250 to DATA: no body, QUIT, protocol error.
#[test]
fn tv28_data_answered_250() {
    let mut script = ehlo(PIPE_CAPS).to_vec();
    script.extend([
        Send { env: env("a@example.org", &["b@x.test"]), body: b"x\r\n".to_vec(), chunk: 8 },
        C(b"MAIL FROM:<a@example.org>\r\nRCPT TO:<b@x.test>\r\nDATA\r\n"),
        S(b"250 ok\r\n250 ok\r\n250 ok\r\n"),
        C(b"QUIT\r\n"),
        S(b"221 bye\r\n"),
    ]);
    let run = check(&config(), &script);
    assert_eq!(run.report().outcome, Outcome::Rejected);
    assert!(matches!(
        closed_with(&run),
        Error::Protocol(smtp_proto::ProtocolViolation::UnexpectedReply {
            command: "DATA",
            reply
        }) if reply.code() == 250
    ));
}

/// TV-29 (first half): 452 "too many recipients" marks those recipients temporary; the accepted ones get
/// the message. A new transaction for the rest is the caller's (the body was streamed and is gone).
#[test]
fn tv29_452_too_many_recipients() {
    let mut script = ehlo(PIPE_CAPS).to_vec();
    script.extend([
        Send { env: env("a@example.org", &["b@x.test", "c@x.test"]), body: b"x\r\n".to_vec(), chunk: 8 },
        C(b"MAIL FROM:<a@example.org>\r\nRCPT TO:<b@x.test>\r\nRCPT TO:<c@x.test>\r\nDATA\r\n"),
        S(b"250 ok\r\n250 ok\r\n452 4.5.3 too many recipients\r\n354 go\r\n"),
        C(b"x\r\n.\r\n"),
        S(b"250 ok\r\n"),
    ]);
    let run = check(&config(), &script);
    let r = run.report();
    assert_eq!(r.outcome, Outcome::Sent);
    assert_eq!(r.recipients[0].status, RecipientStatus::Delivered);
    assert_eq!(r.recipients[1].status, RecipientStatus::TemporaryFailure);
    assert!(!r.all_delivered());
}

/// TV-30: 451 to the final dot: every accepted recipient temporary; the next message starts with MAIL
/// (no RSET after a completed end of data).
#[test]
fn tv30_final_dot_451() {
    let mut script = ehlo(PIPE_CAPS).to_vec();
    script.extend([
        Send { env: env("a@example.org", &["b@x.test"]), body: b"x\r\n".to_vec(), chunk: 8 },
        C(b"MAIL FROM:<a@example.org>\r\nRCPT TO:<b@x.test>\r\nDATA\r\n"),
        S(b"250 ok\r\n250 ok\r\n354 go\r\n"),
        C(b"x\r\n.\r\n"),
        S(b"451 4.3.0 try later\r\n"),
        Send { env: env("a@example.org", &["b@x.test"]), body: b"y\r\n".to_vec(), chunk: 8 },
        C(b"MAIL FROM:<a@example.org>\r\nRCPT TO:<b@x.test>\r\nDATA\r\n"),
    ]);
    let run = check(&config(), &script);
    let r = run.report();
    assert_eq!(r.outcome, Outcome::Rejected);
    assert_eq!(r.failure, Some(Failure::BodyRejected));
    assert!(r.is_temporary());
}

/// TV-31: the server speaks during the body: stop, never send the dot, temporary failure.
#[test]
fn tv31_server_speaks_during_body() {
    let mut c = config();
    c.body_buffer = 4;
    let mut script = ehlo(PIPE_CAPS).to_vec();
    script.extend([
        Send { env: env("a@example.org", &["b@x.test"]), body: b"abcdefgh\r\n".to_vec(), chunk: 100 },
        C(b"MAIL FROM:<a@example.org>\r\nRCPT TO:<b@x.test>\r\nDATA\r\n"),
        S(b"250 ok\r\n250 ok\r\n354 go\r\n"),
        C(b"abcdefgh\r\n.\r\n"),
    ]);
    // With a tiny buffer the harness still writes the whole body synchronously; the interruption case is
    // exercised by driving the client by hand below.
    check(&c, &script);

    let mut client = smtp_proto::Client::new(common::helo(), config(), std::time::Duration::ZERO);
    let now = std::time::Duration::from_secs(1);
    let mut out = Vec::new();
    packet(&mut client, now, b"220 mx\r\n");
    packet(&mut client, now, PIPE_CAPS);
    let id = client.send_message(env("a@example.org", &["b@x.test"])).unwrap();
    let _ = client.poll_transmit(now, &mut out);
    assert_eq!(out, b"MAIL FROM:<a@example.org>\r\nRCPT TO:<b@x.test>\r\nDATA\r\n");
    client.handle_input(now, b"250 ok\r\n250 ok\r\n354 go\r\n");
    client.write_body(id, b"first part\r\n").unwrap();
    out.clear();
    let _ = client.poll_transmit(now, &mut out);
    assert_eq!(out, b"first part\r\n");
    client.handle_input(now, b"421 4.4.2 timeout\r\n");
    assert_eq!(client.write_body(id, b"more"), Err(smtp_proto::ApiMisuse::UnknownMessage));
    out.clear();
    assert_eq!(client.poll_transmit(now, &mut out), 0, "no dot after the server spoke");
    let events: Vec<Event> = std::iter::from_fn(|| client.poll_event()).collect();
    let report =
        events.iter().find_map(|e| if let Event::MessageDone(r) = e { Some(r) } else { None }).unwrap();
    assert_eq!(report.outcome, Outcome::Rejected);
    assert_eq!(report.failure, Some(Failure::Interrupted));
    assert_eq!(report.final_reply.as_ref().unwrap().code(), 421);
    assert!(report.is_temporary());
    assert!(client.is_closed());
}

const SIZE_CAPS: &[u8] = b"250-mx.example.com\r\n250-PIPELINING\r\n250 SIZE 1000000\r\n";

/// TV-36: SIZE declared on MAIL; a message over the limit is refused before MAIL.
#[test]
fn tv36_size() {
    let mut script = ehlo(SIZE_CAPS).to_vec();
    script.extend([
        SendFails { env: env("a@example.org", &["b@x.test"]).size(1_000_001), contains: "TooBig" },
        Nothing,
        Send { env: env("a@example.org", &["b@x.test"]).size(999), body: b"x\r\n".to_vec(), chunk: 8 },
        C(b"MAIL FROM:<a@example.org> SIZE=999\r\nRCPT TO:<b@x.test>\r\nDATA\r\n"),
    ]);
    check(&config(), &script);
    // "SIZE" alone or "SIZE 0": no limit, SIZE= still sent.
    for caps in
        [&b"250-mx\r\n250-PIPELINING\r\n250 SIZE\r\n"[..], b"250-mx\r\n250-PIPELINING\r\n250 SIZE 0\r\n"]
    {
        let caps: &'static [u8] = Box::leak(caps.to_vec().into_boxed_slice());
        let mut script = ehlo(caps).to_vec();
        script.extend([
            Send { env: env("a@example.org", &["b@x.test"]).size(5_000_000_000), body: vec![], chunk: 8 },
            C(b"MAIL FROM:<a@example.org> SIZE=5000000000\r\nRCPT TO:<b@x.test>\r\nDATA\r\n"),
        ]);
        check(&config(), &script);
    }
}

const CHUNK_CAPS: &[u8] =
    b"250-mx.example.com\r\n250-PIPELINING\r\n250-CHUNKING\r\n250 ENHANCEDSTATUSCODES\r\n";

/// TV-37: BDAT, whose content may look like a terminator: no stuffing, no dot. Replies to MAIL/RCPT come
/// first (BDAT-05).
#[test]
fn tv37_bdat_single_chunk() {
    let mut script = ehlo(CHUNK_CAPS).to_vec();
    script.extend([
        Send { env: env("a@example.org", &["b@x.test"]), body: b"abc\r\n.\r\n".to_vec(), chunk: 3 },
        C(b"MAIL FROM:<a@example.org>\r\nRCPT TO:<b@x.test>\r\n"),
        S(b"250 ok\r\n250 ok\r\n"),
        C(b"BDAT 8 LAST\r\nabc\r\n.\r\n"),
        S(b"250 2.0.0 8 octets\r\n"),
    ]);
    let run = check(&config(), &script);
    assert_eq!(run.report().outcome, Outcome::Sent);
    // Every RCPT refused: no BDAT at all, RSET.
    let mut script = ehlo(CHUNK_CAPS).to_vec();
    script.extend([
        Send { env: env("a@example.org", &["b@x.test"]), body: b"abc".to_vec(), chunk: 3 },
        C(b"MAIL FROM:<a@example.org>\r\nRCPT TO:<b@x.test>\r\n"),
        S(b"250 ok\r\n550 no\r\n"),
        C(b"RSET\r\n"),
        S(b"250 ok\r\n"),
    ]);
    let run = check(&config(), &script);
    assert_eq!(run.report().failure, Some(Failure::NoRecipientAccepted));
}

/// BDAT with several chunks, bare LFs normalised (BDAT-07) and counted exactly.
#[test]
fn bdat_several_chunks() {
    let mut c = config();
    c.body_buffer = 4;
    let mut script = ehlo(CHUNK_CAPS).to_vec();
    script.extend([
        Send { env: env("a@example.org", &["b@x.test"]), body: b"ab\ncd\nef".to_vec(), chunk: 100 },
        C(b"MAIL FROM:<a@example.org>\r\nRCPT TO:<b@x.test>\r\n"),
        S(b"250 ok\r\n250 ok\r\n"),
        // A chunk goes out once the buffer holds 4 octets or more; counts are after normalisation.
        C(b"BDAT 5\r\nab\r\ncBDAT 5\r\nd\r\nefBDAT 0 LAST\r\n"),
        S(b"250 ok\r\n250 ok\r\n250 ok\r\n"),
    ]);
    let run = check(&c, &script);
    assert_eq!(run.report().outcome, Outcome::Sent);
}

/// TV-38: a BDAT chunk refused with chunks in flight: read every reply, no further BDAT, RSET.
#[test]
fn tv38_bdat_failure_with_chunks_in_flight() {
    let mut c = config();
    c.body_buffer = 4;
    let mut script = ehlo(CHUNK_CAPS).to_vec();
    script.extend([
        Send { env: env("a@example.org", &["b@x.test"]), body: b"abcdefgh".to_vec(), chunk: 100 },
        C(b"MAIL FROM:<a@example.org>\r\nRCPT TO:<b@x.test>\r\n"),
        S(b"250 ok\r\n250 ok\r\n"),
        C(b"BDAT 4\r\nabcdBDAT 4\r\nefghBDAT 0 LAST\r\n"),
        S(b"552 5.3.4 message too big\r\n"),
        Nothing,
        S(b"554 discarded\r\n"),
        Nothing,
        S(b"554 discarded\r\n"),
        C(b"RSET\r\n"),
        S(b"250 ok\r\n"),
    ]);
    let run = check(&c, &script);
    let r = run.report();
    assert_eq!(r.outcome, Outcome::Rejected);
    assert_eq!(r.final_reply.as_ref().unwrap().code(), 552);
    assert_eq!(r.recipients[0].status, RecipientStatus::PermanentFailure);
}

const DSN_CAPS: &[u8] = b"250-Ivory.EDU\r\n250-PIPELINING\r\n250 DSN\r\n";

/// TV-39: DSN parameters as in RFC 3461 §10.1.
#[test]
fn tv39_dsn_parameters() {
    use smtp_proto::command::{EnvId, Notify, OrigRecipient, Ret};
    use smtp_proto::{Envelope, Recipient};
    let e = Envelope::new(
        "Alice@Example.ORG".parse().unwrap(),
        [
            Recipient::new("Dana@Ivory.EDU".parse().unwrap())
                .notify(Notify::parse("SUCCESS,FAILURE").unwrap())
                .orcpt(OrigRecipient::rfc822("Dana@Ivory.EDU").unwrap()),
            Recipient::new("Fred@Bombs.AF.MIL".parse().unwrap()).notify(Notify::never()),
        ],
    )
    .unwrap()
    .ret(Ret::Hdrs)
    .envid(EnvId::new("QQ314159").unwrap());
    let mut script = ehlo(DSN_CAPS).to_vec();
    script.extend([
        Send { env: e, body: b"x\r\n".to_vec(), chunk: 8 },
        C(b"MAIL FROM:<Alice@Example.ORG> RET=HDRS ENVID=QQ314159\r\n\
RCPT TO:<Dana@Ivory.EDU> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;Dana@Ivory.EDU\r\n\
RCPT TO:<Fred@Bombs.AF.MIL> NOTIFY=NEVER\r\nDATA\r\n"),
        S(b"250 ok\r\n250 ok\r\n250 ok\r\n354 go\r\n"),
        C(b"x\r\n.\r\n"),
        S(b"250 ok\r\n"),
    ]);
    let run = check(&config(), &script);
    assert!(run.report().warnings.is_empty());
    assert!(Notify::parse("NEVER,SUCCESS").is_err());
}

/// TV-41: DSN asked for, server lacks it: best effort sends without and warns; strict refuses before MAIL.
#[test]
fn tv41_dsn_not_offered() {
    use smtp_proto::command::{Notify, Ret};
    use smtp_proto::{Envelope, Recipient};
    let e = || {
        Envelope::new(
            "a@example.org".parse().unwrap(),
            [Recipient::new("b@x.test".parse().unwrap()).notify(Notify::on(true, false, false).unwrap())],
        )
        .unwrap()
        .ret(Ret::Full)
    };
    let mut script = ehlo(PIPE_CAPS).to_vec();
    script.extend([
        Send { env: e(), body: b"x\r\n".to_vec(), chunk: 8 },
        C(b"MAIL FROM:<a@example.org>\r\nRCPT TO:<b@x.test>\r\nDATA\r\n"),
        S(b"250 ok\r\n250 ok\r\n354 go\r\n"),
        C(b"x\r\n.\r\n"),
        S(b"250 ok\r\n"),
    ]);
    let run = check(&config(), &script);
    assert_eq!(run.report().warnings, vec![smtp_proto::Warning::NoDsnSupport]);

    let mut strict = config();
    strict.dsn_policy = smtp_proto::DsnPolicy::Require;
    let mut script = ehlo(PIPE_CAPS).to_vec();
    script.extend([SendFails { env: e(), contains: "DsnNotSupported" }, Nothing]);
    check(&strict, &script);
}

const TLS_CAPS: &[u8] = b"250-mx\r\n250-STARTTLS\r\n250-SIZE 10\r\n250 AUTH PLAIN\r\n";

fn tls_required() -> smtp_proto::ClientConfig {
    let mut c = config();
    c.tls = smtp_proto::TlsMode::Required;
    c
}

/// TV-42 happy path and STLS-5: StartTls event, capabilities from before TLS forgotten, EHLO again,
/// STARTTLS never sent twice, post-TLS values only (no SIZE limit any more).
#[test]
fn tv42_starttls_happy_path() {
    let script = [
        S(b"220 mx ESMTP\r\n"),
        C(b"EHLO client.example.org\r\n"),
        S(TLS_CAPS),
        C(b"STARTTLS\r\n"),
        S(b"220 2.0.0 Ready to start TLS\r\n"),
        Nothing,
        TlsUp,
        C(b"EHLO client.example.org\r\n"),
        S(b"250-mx\r\n250-STARTTLS\r\n250 PIPELINING\r\n"),
        Send { env: env("a@example.org", &["b@x.test"]).size(1000), body: b"x\r\n".to_vec(), chunk: 8 },
        C(b"MAIL FROM:<a@example.org>\r\nRCPT TO:<b@x.test>\r\nDATA\r\n"),
    ];
    let run = check(&tls_required(), &script);
    let pos = |f: &dyn Fn(&Event) -> bool| run.events.iter().position(f).unwrap();
    assert!(pos(&|e| *e == Event::StartTls) < pos(&|e| *e == Event::Ready));
}

/// TV-42 injection / STLS-3: bytes after the 220, in the same read or later, abort the session.
#[test]
fn tv42_starttls_injection() {
    for injected in [
        &[S(b"220 Ready\r\n250-AUTH PLAIN\r\n")][..],
        &[S(b"220 Ready\r\n"), S(b"250 fake\r\n")],
        &[S(b"220 Ready\r\n2")],
    ] {
        let mut script =
            vec![S(b"220 mx\r\n"), C(b"EHLO client.example.org\r\n"), S(TLS_CAPS), C(b"STARTTLS\r\n")];
        script.extend_from_slice(injected);
        script.push(Nothing);
        let run = check(&tls_required(), &script);
        assert_eq!(closed_with(&run), Error::StartTlsInjection);
        assert!(!run.has(|e| *e == Event::Ready));
    }
}

/// STLS-1 / TV-42: TLS required, not offered: QUIT and nothing else; no AUTH, no MAIL.
#[test]
fn tv42_tls_required_not_offered() {
    let script = [
        Send { env: env("a@example.org", &["b@x.test"]), body: b"x".to_vec(), chunk: 8 },
        S(b"220 mx\r\n"),
        C(b"EHLO client.example.org\r\n"),
        S(b"250-mx\r\n250 AUTH PLAIN\r\n"),
        C(b"QUIT\r\n"),
        S(b"221 bye\r\n"),
    ];
    let run = check(&tls_required(), &script);
    assert_eq!(closed_with(&run), Error::TlsUnavailable(None));
    assert!(run.report().is_temporary());
}

/// STLS-2: any reply but 220 to STARTTLS fails a required session; opportunistic goes on in plaintext.
#[test]
fn starttls_refused() {
    for reply in [&b"454 4.7.0 TLS not available\r\n"[..], b"501 syntax\r\n", b"500 what\r\n"] {
        let reply: &'static [u8] = Box::leak(reply.to_vec().into_boxed_slice());
        let script = [
            S(b"220 mx\r\n"),
            C(b"EHLO client.example.org\r\n"),
            S(TLS_CAPS),
            C(b"STARTTLS\r\n"),
            S(reply),
            C(b"QUIT\r\n"),
            Eof,
        ];
        let run = check(&tls_required(), &script);
        assert!(matches!(closed_with(&run), Error::TlsUnavailable(Some(_))));
    }
    let script = [
        S(b"220 mx\r\n"),
        C(b"EHLO client.example.org\r\n"),
        S(TLS_CAPS),
        C(b"STARTTLS\r\n"),
        S(b"454 4.7.0 TLS not available\r\n"),
        Nothing,
    ];
    let run = check(&config(), &script);
    assert!(run.has(|e| *e == Event::Ready));
}

/// TLS mode None never upgrades, even when offered.
#[test]
fn tls_none_never_upgrades() {
    let mut c = config();
    c.tls = smtp_proto::TlsMode::None;
    let run = check(&c, &[S(b"220 mx\r\n"), C(b"EHLO client.example.org\r\n"), S(TLS_CAPS), Nothing]);
    assert!(run.has(|e| *e == Event::Ready));
}

fn with_password(mut c: smtp_proto::ClientConfig, user: &str, pass: &str) -> smtp_proto::ClientConfig {
    c.credentials = Some(smtp_proto::sasl::Credentials::password(user, pass));
    c
}

fn implicit(c: smtp_proto::ClientConfig) -> smtp_proto::ClientConfig {
    let mut c = c;
    c.tls = smtp_proto::TlsMode::Implicit;
    c
}

/// TV-43: AUTH PLAIN with an initial response, over (implicit) TLS.
#[test]
fn tv43_auth_plain() {
    let c = implicit(with_password(config(), "tim", "tanstaaftanstaaf"));
    let script = [
        S(b"220 mx\r\n"),
        C(b"EHLO client.example.org\r\n"),
        S(b"250-mx\r\n250 AUTH PLAIN LOGIN\r\n"),
        C(b"AUTH PLAIN AHRpbQB0YW5zdGFhZnRhbnN0YWFm\r\n"),
        S(b"235 2.7.0 Authentication successful\r\n"),
        Nothing,
    ];
    let run = check(&c, &script);
    assert!(run.has(|e| *e == Event::Authenticated(smtp_proto::sasl::Mechanism::Plain)));
    assert!(run.has(|e| *e == Event::Ready));
}

/// TV-44: CRAM-MD5 (RFC 2195 example), preferred over PLAIN.
#[test]
fn tv44_auth_cram_md5() {
    let c = implicit(with_password(config(), "tim", "tanstaaftanstaaf"));
    let script = [
        S(b"220 mx\r\n"),
        C(b"EHLO client.example.org\r\n"),
        S(b"250-mx\r\n250 AUTH PLAIN CRAM-MD5\r\n"),
        C(b"AUTH CRAM-MD5\r\n"),
        S(b"334 PDE4OTYuNjk3MTcwOTUyQHBvc3RvZmZpY2UucmVzdG9uLm1jaS5uZXQ+\r\n"),
        C(b"dGltIGI5MTNhNjAyYzdlZGE3YTQ5NWI0ZTZlNzMzNGQzODkw\r\n"),
        S(b"235 ok\r\n"),
        Nothing,
    ];
    check(&c, &script);
    // An undecodable challenge: cancel, then the typed failure.
    let script = [
        S(b"220 mx\r\n"),
        C(b"EHLO client.example.org\r\n"),
        S(b"250-mx\r\n250 AUTH CRAM-MD5\r\n"),
        C(b"AUTH CRAM-MD5\r\n"),
        S(b"334 !!!\r\n"),
        C(b"*\r\n"),
        S(b"501 cancelled\r\n"),
        C(b"QUIT\r\n"),
        S(b"221 bye\r\n"),
    ];
    let run = check(&c, &script);
    match closed_with(&run) {
        Error::AuthFailed { reply: Some(r), sasl: Some(f) } => {
            assert_eq!(r.code(), 501);
            assert_eq!(f.reason, smtp_proto::sasl::SaslFailureReason::BadChallenge);
        }
        e => panic!("{e:?}"),
    }
}

/// TV-45: LOGIN by position, and a wrong password gives the typed failure with the 535.
#[test]
fn tv45_auth_login_and_failure() {
    let c = implicit(with_password(config(), "tim", "secret"));
    let script = [
        S(b"220 mx\r\n"),
        C(b"EHLO client.example.org\r\n"),
        S(b"250-mx\r\n250 AUTH LOGIN\r\n"),
        C(b"AUTH LOGIN\r\n"),
        S(b"334 VXNlcm5hbWU6\r\n"),
        C(b"dGlt\r\n"),
        S(b"334 UGFzc3dvcmQ6\r\n"),
        C(b"c2VjcmV0\r\n"),
        S(b"535 5.7.8 bad credentials\r\n"),
        C(b"QUIT\r\n"),
        S(b"221 bye\r\n"),
    ];
    let run = check(&c, &script);
    assert!(matches!(closed_with(&run), Error::AuthFailed { reply: Some(r), .. } if r.code() == 535));
}

/// TV-45/46: XOAUTH2 and OAUTHBEARER initial responses; the OAuth error document is kept.
#[test]
fn tv45_tv46_oauth() {
    use smtp_proto::sasl::Credentials;
    let mut c = implicit(config());
    c.credentials =
        Some(Credentials::oauth2("someuser@example.com", "ya29.vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg"));
    let script = [
        S(b"220 mx\r\n"),
        C(b"EHLO client.example.org\r\n"),
        S(b"250-mx\r\n250 AUTH XOAUTH2\r\n"),
        C(b"AUTH XOAUTH2 dXNlcj1zb21ldXNlckBleGFtcGxlLmNvbQFhdXRoPUJlYXJlciB5YTI5LnZGOWRmdDRxbVRjMk52YjNSbGNrQmhkSFJoZG1semRHRXVZMjl0Q2cBAQ==\r\n"),
        S(b"334 eyJzdGF0dXMiOiI0MDEifQ==\r\n"),
        C(b"\r\n"),
        S(b"535 5.7.8 token expired\r\n"),
        C(b"QUIT\r\n"),
        Eof,
    ];
    let run = check(&c, &script);
    match closed_with(&run) {
        Error::AuthFailed { sasl: Some(f), .. } => {
            assert!(f.detail.as_deref().unwrap().contains("401"))
        }
        e => panic!("{e:?}"),
    }
    c.credentials = Some(Credentials::OAuth2 {
        username: "user@example.com".into(),
        token: "vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg==".into(),
        host: Some("server.example.com".into()),
        port: Some(587),
    });
    let script = [
        S(b"220 mx\r\n"),
        C(b"EHLO client.example.org\r\n"),
        S(b"250-mx\r\n250 AUTH OAUTHBEARER XOAUTH2\r\n"),
        C(b"AUTH OAUTHBEARER bixhPXVzZXJAZXhhbXBsZS5jb20sAWhvc3Q9c2VydmVyLmV4YW1wbGUuY29tAXBvcnQ9NTg3AWF1dGg9QmVhcmVyIHZGOWRmdDRxbVRjMk52YjNSbGNrQmhiSFJoZG1semRHRXVZMjl0Q2c9PQEB\r\n"),
        S(b"235 Authentication successful.\r\n"),
        Nothing,
    ];
    check(&c, &script);
}

/// STLS-6 / AUTH-13: credentials over plaintext are never sent; with STARTTLS required they wait for TLS.
#[test]
fn no_auth_in_plaintext() {
    let mut c = with_password(config(), "tim", "secret");
    c.tls = smtp_proto::TlsMode::None;
    let script = [
        S(b"220 mx\r\n"),
        C(b"EHLO client.example.org\r\n"),
        S(b"250-mx\r\n250 AUTH PLAIN\r\n"),
        C(b"QUIT\r\n"),
        S(b"221 bye\r\n"),
    ];
    let run = check(&c, &script);
    assert_eq!(closed_with(&run), Error::AuthRequiresTls);
    // Explicitly allowed (loopback tests): it goes ahead.
    c.allow_plaintext_auth = true;
    let script = [
        S(b"220 mx\r\n"),
        C(b"EHLO client.example.org\r\n"),
        S(b"250-mx\r\n250 AUTH PLAIN\r\n"),
        C(b"AUTH PLAIN AHRpbQBzZWNyZXQ=\r\n"),
        S(b"235 ok\r\n"),
    ];
    check(&c, &script);
    // with_credentials makes STARTTLS required; AUTH goes after the upgrade and the new EHLO.
    let c = config().with_credentials(smtp_proto::sasl::Credentials::password("tim", "secret"));
    let script = [
        S(b"220 mx\r\n"),
        C(b"EHLO client.example.org\r\n"),
        S(b"250-mx\r\n250-STARTTLS\r\n250 AUTH PLAIN\r\n"),
        C(b"STARTTLS\r\n"),
        S(b"220 go\r\n"),
        TlsUp,
        C(b"EHLO client.example.org\r\n"),
        S(b"250-mx\r\n250 AUTH PLAIN\r\n"),
        C(b"AUTH PLAIN AHRpbQBzZWNyZXQ=\r\n"),
        S(b"235 ok\r\n"),
    ];
    check(&c, &script);
}

/// Credentials but no common mechanism (or no AUTH at all): fail rather than send unauthenticated.
#[test]
fn no_usable_auth_mechanism() {
    let c = implicit(with_password(config(), "tim", "secret"));
    for caps in [&b"250-mx\r\n250 AUTH SCRAM-SHA-256\r\n"[..], b"250 mx\r\n"] {
        let caps: &'static [u8] = Box::leak(caps.to_vec().into_boxed_slice());
        let run =
            check(&c, &[S(b"220 mx\r\n"), C(b"EHLO client.example.org\r\n"), S(caps), C(b"QUIT\r\n"), Eof]);
        assert_eq!(closed_with(&run), Error::NoAuthMechanism);
    }
}

fn lmtp() -> smtp_proto::ClientConfig {
    let mut c = config();
    c.protocol = smtp_proto::Protocol::Lmtp;
    c
}

/// TV-47: LMTP, one reply per accepted recipient after the body (RFC 2033 §4.2 example).
#[test]
fn tv47_lmtp_per_recipient_replies() {
    let script = [
        S(b"220 foo.edu LMTP server ready\r\n"),
        C(b"LHLO client.example.org\r\n"),
        S(b"250-foo.edu\r\n250-PIPELINING\r\n250 SIZE\r\n"),
        Send { env: env("chris@bar.com", &["pat@foo.edu", "jones@foo.edu", "green@foo.edu"]), body: b"Hi\r\n".to_vec(), chunk: 8 },
        C(b"MAIL FROM:<chris@bar.com>\r\nRCPT TO:<pat@foo.edu>\r\nRCPT TO:<jones@foo.edu>\r\nRCPT TO:<green@foo.edu>\r\nDATA\r\n"),
        S(b"250 OK\r\n250 OK\r\n550 No such user here\r\n250 OK\r\n354 Start mail input\r\n"),
        C(b"Hi\r\n.\r\n"),
        S(b"250 OK\r\n452 <green@foo.edu> is temporarily over quota\r\n"),
        Nothing,
    ];
    let run = check(&lmtp(), &script);
    let r = run.report();
    assert_eq!(r.outcome, Outcome::Sent);
    let st = run.statuses();
    assert_eq!(
        st,
        [RecipientStatus::Delivered, RecipientStatus::PermanentFailure, RecipientStatus::TemporaryFailure]
    );
    assert_eq!(r.recipients[2].lmtp_reply.as_ref().unwrap().code(), 452);
}

/// LMTP: pat and green accepted, the body sent; then `after` (the replies to the body, and what follows).
fn lmtp_two_accepted_then<const N: usize>(after: [common::Step; N]) -> Vec<common::Step> {
    let mut script = vec![
        S(b"220 foo.edu LMTP\r\n"),
        C(b"LHLO client.example.org\r\n"),
        S(b"250-foo.edu\r\n250 PIPELINING\r\n"),
        Send {
            env: env("chris@bar.com", &["pat@foo.edu", "green@foo.edu"]),
            body: b"Hi\r\n".to_vec(),
            chunk: 8,
        },
        C(b"MAIL FROM:<chris@bar.com>\r\nRCPT TO:<pat@foo.edu>\r\nRCPT TO:<green@foo.edu>\r\nDATA\r\n"),
        S(b"250 OK\r\n250 OK\r\n250 OK\r\n354 go\r\n"),
        C(b"Hi\r\n.\r\n"),
    ];
    script.extend(after);
    script
}

/// TV-48: LMTP, the connection drops between the per-recipient replies: the replies received count, the
/// rest is unknown (the server may have delivered).
#[test]
fn tv48_lmtp_drop_between_replies() {
    let run = check(&lmtp(), &lmtp_two_accepted_then([S(b"250 OK\r\n"), Eof]));
    let r = run.report();
    assert_eq!(r.outcome, Outcome::Sent);
    assert_eq!(r.recipients[0].status, RecipientStatus::Delivered);
    assert_eq!(r.recipients[1].status, RecipientStatus::Unknown);
}

/// LMTP-01: no HELO fallback in LMTP.
#[test]
fn lmtp_no_helo_fallback() {
    let run = check(
        &lmtp(),
        &[S(b"220 x\r\n"), C(b"LHLO client.example.org\r\n"), S(b"500 what\r\n"), C(b"QUIT\r\n"), Eof],
    );
    assert!(matches!(closed_with(&run), Error::HelloRejected(_)));
}

/// LMTP-03: BDAT LAST gets one reply per accepted recipient.
#[test]
fn lmtp_bdat() {
    let script = [
        S(b"220 x\r\n"),
        C(b"LHLO client.example.org\r\n"),
        S(b"250-x\r\n250-PIPELINING\r\n250 CHUNKING\r\n"),
        Send { env: env("a@x.test", &["b@x.test", "c@x.test"]), body: b"Hi\r\n".to_vec(), chunk: 8 },
        C(b"MAIL FROM:<a@x.test>\r\nRCPT TO:<b@x.test>\r\nRCPT TO:<c@x.test>\r\n"),
        S(b"250 OK\r\n250 OK\r\n250 OK\r\n"),
        C(b"BDAT 4 LAST\r\nHi\r\n"),
        S(b"250 b ok\r\n"),
        Nothing,
        S(b"550 c failed\r\n"),
        Nothing,
    ];
    let run = check(&lmtp(), &script);
    let r = run.report();
    assert_eq!(r.recipients[0].status, RecipientStatus::Delivered);
    assert_eq!(r.recipients[1].status, RecipientStatus::PermanentFailure);
}

const UTF8_CAPS: &[u8] = b"250-mx\r\n250-PIPELINING\r\n250-8BITMIME\r\n250 SMTPUTF8\r\n";

/// TV-49: a UTF-8 address: SMTPUTF8 and BODY=8BITMIME on MAIL; refused before MAIL without SMTPUTF8.
#[test]
fn tv49_smtputf8() {
    let mut script = ehlo(UTF8_CAPS).to_vec();
    script.extend([
        Send { env: env("ålice@example.org", &["café@example.com"]), body: b"x\r\n".to_vec(), chunk: 8 },
        C("MAIL FROM:<ålice@example.org> BODY=8BITMIME SMTPUTF8\r\nRCPT TO:<café@example.com>\r\nDATA\r\n"
            .as_bytes()),
    ]);
    check(&config(), &script);
    let mut script = ehlo(PIPE_CAPS).to_vec();
    script.extend([
        SendFails { env: env("a@example.org", &["café@example.com"]), contains: "Utf8Unsupported" },
        Nothing,
    ]);
    check(&config(), &script);
    // ASCII addresses, UTF-8 in the header (RFC 6532): asked for by the envelope.
    let mut script = ehlo(UTF8_CAPS).to_vec();
    script.extend([
        Send {
            env: env("a@example.org", &["b@example.com"]).smtputf8(true),
            body: "Subject: café\r\n\r\nx\r\n".into(),
            chunk: 8,
        },
        C(b"MAIL FROM:<a@example.org> BODY=8BITMIME SMTPUTF8\r\nRCPT TO:<b@example.com>\r\nDATA\r\n"),
    ]);
    check(&config(), &script);
    let mut script = ehlo(PIPE_CAPS).to_vec();
    script.extend([
        SendFails {
            env: env("a@example.org", &["b@example.com"]).smtputf8(true),
            contains: "Utf8Unsupported",
        },
        Nothing,
    ]);
    check(&config(), &script);
}

/// Refusals before any byte: 8-bit body without 8BITMIME, binary without BINARYMIME+CHUNKING, REQUIRETLS
/// outside TLS, a closed session, a busy one.
#[test]
fn refusals_before_any_byte() {
    use smtp_proto::command::BodyType;
    let caps: &[u8] = b"250-mx\r\n250 PIPELINING\r\n";
    let mut script = ehlo(caps).to_vec();
    script.extend([
        SendFails {
            env: env("a@x.test", &["b@x.test"]).body_type(BodyType::EightBitMime),
            contains: "EightBitUnsupported",
        },
        SendFails {
            env: env("a@x.test", &["b@x.test"]).body_type(BodyType::BinaryMime),
            contains: "BinaryUnsupported",
        },
        SendFails { env: env("a@x.test", &["b@x.test"]).requiretls(true), contains: "RequireTlsUnavailable" },
        Nothing,
        Send { env: env("a@x.test", &["b@x.test"]), body: vec![], chunk: 8 },
        C(b"MAIL FROM:<a@x.test>\r\nRCPT TO:<b@x.test>\r\nDATA\r\n"),
        SendFails { env: env("a@x.test", &["b@x.test"]), contains: "Busy" },
        S(b"250 ok\r\n250 ok\r\n354 go\r\n"),
        C(b".\r\n"),
        S(b"250 ok\r\n"),
        Quit,
        C(b"QUIT\r\n"),
        SendFails { env: env("a@x.test", &["b@x.test"]), contains: "NotConnected" },
        S(b"221 bye\r\n"),
        SendFails { env: env("a@x.test", &["b@x.test"]), contains: "NotConnected" },
    ]);
    let run = check(&config(), &script);
    assert_eq!(run.report().outcome, Outcome::Sent);
    // A message queued before the capabilities are known gets the refusal as its outcome, with no byte sent.
    let script = [
        Send {
            env: env("a@x.test", &["b@x.test"]).body_type(BodyType::EightBitMime),
            body: vec![],
            chunk: 8,
        },
        S(b"220 mx\r\n"),
        C(b"EHLO client.example.org\r\n"),
        S(b"250 mx\r\n"),
        Nothing,
    ];
    let run = check(&config(), &script);
    let r = run.report();
    assert_eq!(r.failure, Some(Failure::Unsendable(smtp_proto::Unsendable::EightBitUnsupported)));
    assert!(r.recipients.iter().all(|x| x.status == RecipientStatus::PermanentFailure));
}

/// 8-bit data under a 7-bit declaration is refused by write_body; a declared 8-bit body gets BODY=8BITMIME.
#[test]
fn eight_bit_body() {
    use smtp_proto::command::BodyType;
    let mut script = ehlo(UTF8_CAPS).to_vec();
    script.extend([
        Send {
            env: env("a@x.test", &["b@x.test"]).body_type(BodyType::EightBitMime),
            body: "é\r\n".into(),
            chunk: 8,
        },
        C(b"MAIL FROM:<a@x.test> BODY=8BITMIME\r\nRCPT TO:<b@x.test>\r\nDATA\r\n"),
        S(b"250 ok\r\n250 ok\r\n354 go\r\n"),
        C("é\r\n.\r\n".as_bytes()),
    ]);
    check(&config(), &script);

    // Declared 7-bit: 8-bit octets are refused as they stream.
    let mut client = smtp_proto::Client::new(common::helo(), config(), std::time::Duration::ZERO);
    let now = std::time::Duration::ZERO;
    packet(&mut client, now, b"220 mx\r\n");
    packet(&mut client, now, UTF8_CAPS);
    let seven = env("a@x.test", &["b@x.test"]).body_type(BodyType::SevenBit);
    let id = client.send_message(seven).unwrap();
    packet(&mut client, now, b"");
    packet(&mut client, now, b"250 ok\r\n250 ok\r\n354 go\r\n");
    assert_eq!(client.write_body(id, "é".as_bytes()), Err(smtp_proto::ApiMisuse::UndeclaredEightBit));
    assert_eq!(client.write_body(id, b"ascii"), Ok(5));
}

/// A body the envelope does not declare is declared 8BITMIME to a server that offers it (RFC 6152), so an
/// accented character never ends the session; to a server without 8BITMIME it goes as 7-bit, checked.
#[test]
fn undeclared_body_is_8bitmime_where_offered() {
    let mut script = ehlo(UTF8_CAPS).to_vec();
    script.extend([
        Send { env: env("a@x.test", &["b@x.test"]), body: "café\r\n".into(), chunk: 8 },
        C(b"MAIL FROM:<a@x.test> BODY=8BITMIME\r\nRCPT TO:<b@x.test>\r\nDATA\r\n"),
        S(b"250 ok\r\n250 ok\r\n354 go\r\n"),
        C("café\r\n.\r\n".as_bytes()),
        S(b"250 queued\r\n"),
    ]);
    assert_eq!(check(&config(), &script).report().outcome, Outcome::Sent);
    let mut script = ehlo(PIPE_CAPS).to_vec();
    script.extend([
        Send { env: env("a@x.test", &["b@x.test"]), body: b"plain\r\n".to_vec(), chunk: 8 },
        C(b"MAIL FROM:<a@x.test>\r\nRCPT TO:<b@x.test>\r\nDATA\r\n"),
        S(b"250 ok\r\n250 ok\r\n354 go\r\n"),
        C(b"plain\r\n.\r\n"),
    ]);
    check(&config(), &script);
}

/// TV-50: limits from the EHLO before TLS do not survive the upgrade (RFC 9422 §3.6, RFC 3207 §4.2).
#[test]
fn tv50_limits_reset_after_tls() {
    let mut client = smtp_proto::Client::new(common::helo(), tls_required(), std::time::Duration::ZERO);
    let now = std::time::Duration::ZERO;
    packet(&mut client, now, b"220 mx\r\n");
    packet(&mut client, now, b"250-mx\r\n250-STARTTLS\r\n250 LIMITS RCPTMAX=2\r\n");
    assert_eq!(client.capabilities().unwrap().rcpt_max(), Some(2));
    packet(&mut client, now, b"220 go\r\n");
    client.tls_established(now).unwrap();
    assert!(client.capabilities().is_none());
    packet(&mut client, now, b"");
    packet(&mut client, now, b"250 mx\r\n");
    assert_eq!(client.capabilities().unwrap().rcpt_max(), None);
    assert!(client.is_tls());
}

/// Progress events count body octets accepted, with the declared total.
#[test]
fn progress_events() {
    let mut script = ehlo(PIPE_CAPS).to_vec();
    script.extend([
        Send { env: env("a@x.test", &["b@x.test"]).size(6), body: b"abcdef".to_vec(), chunk: 4 },
        C(b"MAIL FROM:<a@x.test>\r\nRCPT TO:<b@x.test>\r\nDATA\r\n"),
        S(b"250 ok\r\n250 ok\r\n354 go\r\n"),
        C(b"abcdef\r\n.\r\n"),
    ]);
    let run = check(&config(), &script);
    let progress: Vec<_> =
        run.events
            .iter()
            .filter_map(|e| {
                if let Event::Progress { sent, total, .. } = e { Some((*sent, *total)) } else { None }
            })
            .collect();
    assert_eq!(progress, [(4, Some(6)), (6, Some(6))]);
}

/// TV-08: malformed or out-of-range codes end the session after a QUIT; unknown well-formed codes follow
/// their first digit (299 accepted, 459 temporary, 599 permanent).
#[test]
fn tv08_reply_codes() {
    for bad in [&b"25O ok\r\n"[..], b"250Xok\r\n", b"2500 ok\r\n", b"199 hmm\r\n"] {
        let bad: &'static [u8] = Box::leak(bad.to_vec().into_boxed_slice());
        let mut script = ehlo(PIPE_CAPS).to_vec();
        script.extend([
            Send { env: env("a@example.org", &["b@x.test"]), body: b"x".to_vec(), chunk: 8 },
            C(b"MAIL FROM:<a@example.org>\r\nRCPT TO:<b@x.test>\r\nDATA\r\n"),
            S(bad),
            C(b"QUIT\r\n"),
        ]);
        let run = check(&config(), &script);
        assert!(matches!(closed_with(&run), Error::Parse(_)), "{}", String::from_utf8_lossy(bad));
        assert!(run.report().is_temporary());
    }
    let mut script = ehlo(PIPE_CAPS).to_vec();
    script.extend([
        Send { env: env("a@example.org", &["b@x.test", "c@x.test", "d@x.test"]), body: b"x\r\n".to_vec(), chunk: 8 },
        C(b"MAIL FROM:<a@example.org>\r\nRCPT TO:<b@x.test>\r\nRCPT TO:<c@x.test>\r\nRCPT TO:<d@x.test>\r\nDATA\r\n"),
        S(b"250 ok\r\n299 fine\r\n459 later\r\n599 never\r\n354 go\r\n"),
        C(b"x\r\n.\r\n"),
        S(b"250 ok\r\n"),
    ]);
    let run = check(&config(), &script);
    let st = run.statuses();
    assert_eq!(
        st,
        [RecipientStatus::Delivered, RecipientStatus::TemporaryFailure, RecipientStatus::PermanentFailure]
    );
}

/// TV-09/TV-10 at session level: a bare LF never ends a reply, and an endless line is cut at the cap.
#[test]
fn tv09_tv10_session_limits() {
    // A bare LF is refused at once (RFC 5321 §2.3.8): no waiting for a CRLF that never comes.
    let run = check(&config(), &[S(b"220 mx\n"), C(b"QUIT\r\n")]);
    assert_eq!(closed_with(&run), Error::Parse(smtp_proto::reply::ParseError::BareLf));

    let mut lenient = config();
    lenient.reply.allow_bare_lf = true;
    let run = check(&lenient, &[S(b"220 mx\n"), C(b"EHLO client.example.org\r\n")]);
    assert_eq!(run.closed(), None);

    let mut c = config();
    c.reply.max_line_len = 64;
    let long: &'static [u8] = Box::leak([b"220 ".as_slice(), &[b'a'; 100]].concat().into_boxed_slice());
    let run = check(&c, &[S(long), C(b"QUIT\r\n")]);
    assert_eq!(closed_with(&run), Error::Parse(smtp_proto::reply::ParseError::LineTooLong));
}

/// RFC 4954 §4 / LIM-04: an initial response that would make the AUTH line longer than 512 octets waits
/// for the server's empty 334.
#[test]
fn long_initial_response_waits_for_334() {
    use smtp_proto::sasl::Credentials;
    let token = "t".repeat(600);
    let mut c = implicit(config());
    c.credentials = Some(Credentials::oauth2("u@x.test", token.as_str()));
    let ir = format!("user=u@x.test\x01auth=Bearer {token}\x01\x01");
    let b64 = base64_encode(ir.as_bytes());
    let line: &'static [u8] = Box::leak(format!("{b64}\r\n").into_bytes().into_boxed_slice());
    let script = [
        S(b"220 mx\r\n"),
        C(b"EHLO client.example.org\r\n"),
        S(b"250-mx\r\n250 AUTH XOAUTH2\r\n"),
        C(b"AUTH XOAUTH2\r\n"),
        S(b"334 \r\n"),
        C(line),
        S(b"235 ok\r\n"),
    ];
    check(&c, &script);
}

fn base64_encode(data: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for c in data.chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= c.len() {
                out.push(T[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// RFC 9422 LIMITS: more recipients than RCPTMAX, or more transactions than MAILMAX, are refused up front.
#[test]
fn limits_rcptmax_mailmax() {
    let caps: &[u8] = b"250-mx\r\n250-PIPELINING\r\n250 LIMITS RCPTMAX=2 MAILMAX=1\r\n";
    let mut script = ehlo(caps).to_vec();
    script.extend([
        SendFails {
            env: env("a@x.test", &["b@x.test", "c@x.test", "d@x.test"]),
            contains: "TooManyRecipients",
        },
        Send { env: env("a@x.test", &["b@x.test", "c@x.test"]), body: b"x\r\n".to_vec(), chunk: 8 },
        C(b"MAIL FROM:<a@x.test>\r\nRCPT TO:<b@x.test>\r\nRCPT TO:<c@x.test>\r\nDATA\r\n"),
        S(b"250 ok\r\n250 ok\r\n250 ok\r\n354 go\r\n"),
        C(b"x\r\n.\r\n"),
        S(b"250 ok\r\n"),
        SendFails { env: env("a@x.test", &["b@x.test"]), contains: "SessionLimit" },
    ]);
    check(&config(), &script);
}

/// TV-29 / TXN-09: the report names the recipients to retry in a new transaction.
#[test]
fn retry_recipients_after_452_or_552_x53() {
    let mut script = ehlo(PIPE_CAPS).to_vec();
    script.extend([
        Send { env: env("a@x.test", &["b@x.test", "c@x.test", "d@x.test", "e@x.test"]), body: b"x\r\n".to_vec(), chunk: 8 },
        C(b"MAIL FROM:<a@x.test>\r\nRCPT TO:<b@x.test>\r\nRCPT TO:<c@x.test>\r\nRCPT TO:<d@x.test>\r\nRCPT TO:<e@x.test>\r\nDATA\r\n"),
        S(b"250 ok\r\n250 ok\r\n452 4.5.3 too many\r\n552 5.5.3 too many\r\n552 5.3.4 too big\r\n354 go\r\n"),
        C(b"x\r\n.\r\n"),
        S(b"250 ok\r\n"),
    ]);
    let run = check(&config(), &script);
    let retry: Vec<_> = run.report().retry_recipients().map(|p| p.as_str().to_owned()).collect();
    assert_eq!(retry, ["c@x.test", "d@x.test"]);
}

/// No recipients and invalid addresses are typed errors that
/// name the address, before anything reaches the client.
#[test]
fn envelope_refusals() {
    use smtp_proto::{Envelope, EnvelopeError};
    assert_eq!(Envelope::parse("a@x.test", &[]), Err(EnvelopeError::NoRecipients));
    match Envelope::parse("a@x.test", &["ok@x.test", "bad@x.test>\r\nRCPT TO:<evil@y.test"]) {
        Err(EnvelopeError::InvalidAddress(e)) => assert!(e.input().contains("bad@x.test")),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        Envelope::parse("a@x.test>\r\nDATA", &["b@x.test"]),
        Err(EnvelopeError::InvalidAddress(_))
    ));
}

/// After QUIT, replies to session commands still in flight are read and dropped: one QUIT only.
#[test]
fn one_quit_only() {
    let mut script = ehlo(PIPE_CAPS).to_vec();
    script.extend([
        Send { env: env("a@x.test", &["b@x.test"]), body: b"x".to_vec(), chunk: 8 },
        C(b"MAIL FROM:<a@x.test>\r\nRCPT TO:<b@x.test>\r\nDATA\r\n"),
        S(b"550 no\r\n503 no\r\n503 no\r\n"),
        C(b"RSET\r\n"),
        Quit,
        C(b"QUIT\r\n"),
        S(b"500 what RSET\r\n"),
        Nothing,
        S(b"221 bye\r\n"),
    ]);
    let run = check(&config(), &script);
    assert_eq!(run.closed(), Some(None));
    assert_eq!(run.report().failure, Some(Failure::MailRejected));
}

/// The transcript events: commands and replies in order, AUTH payloads and 334 challenges redacted, the
/// body summarised by its size.
#[test]
fn transcript_redacts_auth() {
    let mut c = implicit(with_password(config(), "tim", "tanstaaftanstaaf"));
    c.transcript = true;
    let script = [
        S(b"220 mx\r\n"),
        C(b"EHLO client.example.org\r\n"),
        S(b"250-mx\r\n250-PIPELINING\r\n250 AUTH LOGIN\r\n"),
        C(b"AUTH LOGIN\r\n"),
        S(b"334 VXNlcm5hbWU6\r\n"),
        C(b"dGlt\r\n"),
        S(b"334 UGFzc3dvcmQ6\r\n"),
        C(b"dGFuc3RhYWZ0YW5zdGFhZg==\r\n"),
        S(b"235 ok\r\n"),
        Send { env: env("a@x.test", &["b@x.test"]), body: b"hello\r\n".to_vec(), chunk: 64 },
        C(b"MAIL FROM:<a@x.test>\r\nRCPT TO:<b@x.test>\r\nDATA\r\n"),
        S(b"250 ok\r\n250 ok\r\n354 go\r\n"),
        C(b"hello\r\n.\r\n"),
        S(b"250 2.0.0 queued\r\n"),
    ];
    let run = check(&c, &script);
    let lines: Vec<String> = run
        .events
        .iter()
        .filter_map(|e| match e {
            Event::Transcript { from_server, line } => {
                Some(format!("{} {line}", if *from_server { "S:" } else { "C:" }))
            }
            _ => None,
        })
        .collect();
    let all = lines.join("\n");
    assert!(
        !all.contains("dGFuc3RhYWZ0YW5zdGFhZg") && !all.contains("tanstaaf") && !all.contains("dGlt"),
        "{all}"
    );
    assert_eq!(
        lines,
        [
            "S: 220 mx",
            "C: EHLO client.example.org",
            "S: 250 mx / PIPELINING / AUTH LOGIN",
            "C: AUTH LOGIN",
            "S: 334 <redacted>",
            "C: <redacted>",
            "S: 334 <redacted>",
            "C: <redacted>",
            "S: 235 ok",
            "C: MAIL FROM:<a@x.test>",
            "C: RCPT TO:<b@x.test>",
            "C: DATA",
            "S: 250 ok",
            "S: 250 ok",
            "S: 354 go",
            "C: (7 octets of body)",
            "C: .",
            "S: 250 2.0.0 queued",
        ]
    );
}

/// LIM-01 in lock-step mode too: a RCPT line that would be too long refuses the message before MAIL.
#[test]
fn long_rcpt_refused_before_mail_in_lockstep() {
    use smtp_proto::command::OrigRecipient;
    use smtp_proto::{Envelope, Recipient};
    // An ASCII recipient whose original address was non-ASCII (e.g. after alias expansion). Without
    // SMTPUTF8, ORCPT goes in the 7-bit utf-8-addr-xtext form: 93 letters become 558 characters, over
    // ORCPT's 500 limit.
    let label = "é".repeat(31);
    let orcpt = OrigRecipient::new("utf-8", &format!("a@{label}.{label}.{label}.com")).unwrap();
    let e = Envelope::new(
        "a@x.test".parse().unwrap(),
        [
            Recipient::new("ok@x.test".parse().unwrap()),
            Recipient::new("b@x.test".parse().unwrap()).orcpt(orcpt),
        ],
    )
    .unwrap();
    let caps: &[u8] = b"250-mx\r\n250 DSN\r\n";
    let mut script = ehlo(caps).to_vec();
    script.extend([SendFails { env: e, contains: "Command" }, Nothing]);
    check(&config(), &script);
}

/// The caller may restrict or reorder the SASL mechanisms: LOGIN is used although PLAIN is offered.
#[test]
fn auth_mechanisms_follow_the_configuration() {
    let mut c = implicit(with_password(config(), "tim", "secret"));
    c.auth_mechanisms = vec![smtp_proto::sasl::Mechanism::Login];
    let script = [
        S(b"220 mx\r\n"),
        C(b"EHLO client.example.org\r\n"),
        S(b"250-mx\r\n250 AUTH PLAIN LOGIN\r\n"),
        C(b"AUTH LOGIN\r\n"),
        S(b"334 VXNlcm5hbWU6\r\n"),
        C(b"dGlt\r\n"),
        S(b"334 UGFzc3dvcmQ6\r\n"),
        C(b"c2VjcmV0\r\n"),
        S(b"235 ok\r\n"),
    ];
    check(&c, &script);
}

/// No StartTls event survives a session failed by an injection (the 220 and the injected bytes in one
/// read): a driver acting on it would start a handshake on a dead session.
#[test]
fn no_start_tls_event_after_injection() {
    let script = [
        S(b"220 mx\r\n"),
        C(b"EHLO client.example.org\r\n"),
        S(TLS_CAPS),
        C(b"STARTTLS\r\n"),
        S(b"220 go\r\n250 injected\r\n"),
        Nothing,
    ];
    let run = check(&tls_required(), &script);
    assert!(!run.has(|e| *e == Event::StartTls));
    assert_eq!(closed_with(&run), Error::StartTlsInjection);
}

// ---------------------------------------------------------------------------------------------------------
// The outcome contract against broken and hostile servers (issue 10).

fn unsolicited(reply: Reply, before: Option<&'static str>) -> Error {
    Error::Protocol(ProtocolViolation::UnsolicitedReply { reply, before })
}

/// A reply can only answer a command already handed out: one that comes in the greeting's packet, before
/// EHLO left, answers nothing and ends the session, naming it. (Had it come in a later packet, after
/// EHLO, it would be EHLO's reply.)
#[test]
fn reply_in_the_greetings_packet_answers_nothing() {
    let run = check(&config(), &[S(b"220 hi\r\n250 extra\r\n"), C(b"QUIT\r\n")]);
    assert_eq!(closed_with(&run), unsolicited(Reply::new(250, "extra"), Some("EHLO")));
    assert!(!run.has(|e| *e == Event::Ready));
    // The same for LHLO.
    let run = check(&lmtp(), &[S(b"220 hi\r\n250 extra\r\n"), C(b"QUIT\r\n")]);
    assert_eq!(closed_with(&run), unsolicited(Reply::new(250, "extra"), Some("LHLO")));
    // With a message waiting: no MAIL ever goes out, and the message is not sent.
    let run = check(
        &config(),
        &[
            Send { env: env("a@example.org", &["b@x.test"]), body: b"x\r\n".to_vec(), chunk: 8 },
            S(b"220 hi\r\n250-extra\r\n250 PIPELINING\r\n250 2.1.0 ok\r\n"),
            C(b"QUIT\r\n"),
        ],
    );
    assert_eq!(run.report().outcome, Outcome::Rejected);
}

/// The same after STARTTLS (the reply lands before the EHLO inside TLS left) and during AUTH (a 235 in the
/// packet of the 334, before the client's response left).
#[test]
fn reply_before_its_command_left_after_starttls_and_auth() {
    let run = check(
        &tls_required(),
        &[
            S(b"220 mx\r\n"),
            C(b"EHLO client.example.org\r\n"),
            S(b"250-mx\r\n250 STARTTLS\r\n"),
            C(b"STARTTLS\r\n"),
            S(b"220 go\r\n"),
            Nothing,
            TlsUpWith(b"250 early\r\n"),
            C(b"QUIT\r\n"),
        ],
    );
    assert_eq!(closed_with(&run), unsolicited(Reply::new(250, "early"), Some("EHLO")));

    let mut config = implicit(with_password(config(), "tim", "secret"));
    config.auth_mechanisms = vec![smtp_proto::sasl::Mechanism::Login];
    let run = check(
        &config,
        &[
            S(b"220 mx\r\n"),
            C(b"EHLO client.example.org\r\n"),
            S(b"250-mx\r\n250 AUTH LOGIN\r\n"),
            C(b"AUTH LOGIN\r\n"),
            S(b"334 VXNlcm5hbWU6\r\n235 2.7.0 too early\r\n"),
            C(b"QUIT\r\n"),
        ],
    );
    assert_eq!(closed_with(&run), unsolicited(Reply::new(235, "2.7.0 too early"), Some("AUTH")));
    assert!(!run.has(|e| matches!(e, Event::Authenticated(_))));
}

/// A bare LF never merges two replies: strict mode fails at once (no 2-minute wait for a DATA reply that
/// was swallowed), the lenient mode reads two lines.
#[test]
fn bare_lf_in_a_reply_never_swallows_the_next() {
    let mut script = ehlo(PIPE_CAPS).to_vec();
    script.extend([
        Send { env: env("a@example.org", &["b@x.test"]), body: b"x\r\n".to_vec(), chunk: 8 },
        C(b"MAIL FROM:<a@example.org>\r\nRCPT TO:<b@x.test>\r\nDATA\r\n"),
        S(b"250 2.1.0 ok\r\n250 ok\n354 go ahead\r\n"),
        C(b"QUIT\r\n"),
    ]);
    let run = check(&config(), &script);
    assert_eq!(closed_with(&run), Error::Parse(ParseError::BareLf));
    let r = run.report();
    assert_eq!(r.outcome, Outcome::Rejected);
    assert!(r.is_temporary());

    let mut lenient = config();
    lenient.reply.allow_bare_lf = true;
    let mut script = ehlo(PIPE_CAPS).to_vec();
    script.extend([
        Send { env: env("a@example.org", &["b@x.test"]), body: b"x\r\n".to_vec(), chunk: 8 },
        C(b"MAIL FROM:<a@example.org>\r\nRCPT TO:<b@x.test>\r\nDATA\r\n"),
        S(b"250 2.1.0 ok\r\n250 ok\n354 go ahead\r\n"),
        C(b"x\r\n.\r\n"),
        S(b"250 queued\n"),
        Nothing,
    ]);
    let run = check(&lenient, &script);
    let r = run.report();
    assert_eq!(r.outcome, Outcome::Sent);
    assert_eq!(r.recipients[0].rcpt_reply, Some(Reply::new(250, "ok")));
}

/// A 3yz reply to the final dot, to `BDAT … LAST` or to an LMTP recipient is no end-of-data reply (RFC 5321
/// §4.3.2): the outcome is unknown, never rejected.
#[test]
fn intermediate_reply_to_the_end_of_data_is_unknown() {
    let mut script = ehlo(PIPE_CAPS).to_vec();
    script.extend([
        Send { env: env("a@example.org", &["b@x.test"]), body: b"x\r\n".to_vec(), chunk: 8 },
        C(b"MAIL FROM:<a@example.org>\r\nRCPT TO:<b@x.test>\r\nDATA\r\n"),
        S(b"250 ok\r\n250 ok\r\n354 go\r\n"),
        C(b"x\r\n.\r\n"),
        S(b"354 again?\r\n"),
        C(b"QUIT\r\n"),
        S(b"221 bye\r\n"),
    ]);
    let run = check(&config(), &script);
    let r = run.report();
    assert_eq!(r.outcome, Outcome::Unknown);
    assert_eq!(r.recipients[0].status, RecipientStatus::Unknown);
    assert!(matches!(
        closed_with(&run),
        Error::Protocol(ProtocolViolation::UnexpectedReply { command: "the end of data", reply })
            if reply.code() == 354
    ));

    let mut script = ehlo(CHUNK_CAPS).to_vec();
    script.extend([
        Send { env: env("a@example.org", &["b@x.test"]), body: b"x\r\n".to_vec(), chunk: 8 },
        C(b"MAIL FROM:<a@example.org>\r\nRCPT TO:<b@x.test>\r\n"),
        S(b"250 ok\r\n250 ok\r\n"),
        C(b"BDAT 3 LAST\r\nx\r\n"),
        S(b"334 what\r\n"),
        C(b"QUIT\r\n"),
    ]);
    assert_eq!(check(&config(), &script).report().outcome, Outcome::Unknown);

    let script = [
        S(b"220 foo.edu LMTP\r\n"),
        C(b"LHLO client.example.org\r\n"),
        S(b"250-foo.edu\r\n250 PIPELINING\r\n"),
        Send {
            env: env("chris@bar.com", &["pat@foo.edu", "green@foo.edu"]),
            body: b"Hi\r\n".to_vec(),
            chunk: 8,
        },
        C(b"MAIL FROM:<chris@bar.com>\r\nRCPT TO:<pat@foo.edu>\r\nRCPT TO:<green@foo.edu>\r\nDATA\r\n"),
        S(b"250 OK\r\n250 OK\r\n250 OK\r\n354 go\r\n"),
        C(b"Hi\r\n.\r\n"),
        S(b"250 OK\r\n354 more?\r\n"),
        C(b"QUIT\r\n"),
    ];
    let r = check(&lmtp(), &script).report().clone();
    assert_eq!(r.outcome, Outcome::Sent);
    assert_eq!(r.recipients[0].status, RecipientStatus::Delivered);
    assert_eq!(r.recipients[1].status, RecipientStatus::Unknown);
}

/// After a refused BDAT chunk no further chunk of the message goes out (RFC 3030 §2): what was in flight is
/// bounded by the window (2 chunks by default), then RSET.
#[test]
fn no_bdat_chunk_after_a_refused_one() {
    let mut c = config();
    c.body_buffer = 4;
    let mut script = ehlo(CHUNK_CAPS).to_vec();
    script.extend([
        Send {
            env: env("a@example.org", &["b@x.test"]),
            body: b"abcdefghijklmnopqrstuvwxyz".to_vec(),
            chunk: 100,
        },
        C(b"MAIL FROM:<a@example.org>\r\nRCPT TO:<b@x.test>\r\n"),
        S(b"250 ok\r\n250 ok\r\n"),
        // Two chunks in flight, then the window is full: the client waits for a reply.
        C(b"BDAT 4\r\nabcdBDAT 4\r\nefgh"),
        S(b"552 5.3.4 message too big\r\n"),
        Nothing,
        S(b"554 5.5.0 discarded\r\n"),
        C(b"RSET\r\n"),
        S(b"250 ok\r\n"),
    ]);
    let run = check(&c, &script);
    let r = run.report();
    assert_eq!(r.outcome, Outcome::Rejected);
    assert_eq!(r.reply().map(Reply::code), Some(552));

    // A window of one chunk: the 552 to the first chunk stops the body at once.
    c.bdat_window = 1;
    let mut script = ehlo(CHUNK_CAPS).to_vec();
    script.extend([
        Send {
            env: env("a@example.org", &["b@x.test"]),
            body: b"abcdefghijklmnopqrstuvwxyz".to_vec(),
            chunk: 100,
        },
        C(b"MAIL FROM:<a@example.org>\r\nRCPT TO:<b@x.test>\r\n"),
        S(b"250 ok\r\n250 ok\r\n"),
        C(b"BDAT 4\r\nabcd"),
        S(b"250 ok\r\n"),
        C(b"BDAT 4\r\nefgh"),
        S(b"552 5.3.4 message too big\r\n"),
        C(b"RSET\r\n"),
        S(b"250 ok\r\n"),
    ]);
    assert_eq!(check(&c, &script).report().outcome, Outcome::Rejected);
}

/// LMTP: a connection lost after some recipients' replies leaves the others unknown (RFC 2033 §4.2): a
/// retry could deliver to them twice.
#[test]
fn lmtp_eof_after_some_replies_leaves_the_rest_unknown() {
    let script = [
        S(b"220 foo.edu LMTP\r\n"),
        C(b"LHLO client.example.org\r\n"),
        S(b"250-foo.edu\r\n250 PIPELINING\r\n"),
        Send { env: env("chris@bar.com", &["pat@foo.edu", "green@foo.edu", "jo@foo.edu"]), body: b"Hi\r\n".to_vec(), chunk: 8 },
        C(b"MAIL FROM:<chris@bar.com>\r\nRCPT TO:<pat@foo.edu>\r\nRCPT TO:<green@foo.edu>\r\nRCPT TO:<jo@foo.edu>\r\nDATA\r\n"),
        S(b"250 OK\r\n250 OK\r\n550 5.1.1 no\r\n250 OK\r\n354 go\r\n"),
        C(b"Hi\r\n.\r\n"),
        S(b"452 4.2.2 full\r\n"),
        Eof,
    ];
    let run = check(&lmtp(), &script);
    let r = run.report();
    let statuses = run.statuses();
    // green was refused at RCPT; the replies after the dot are pat's (452), then jo's (never came).
    assert_eq!(
        statuses,
        [RecipientStatus::TemporaryFailure, RecipientStatus::PermanentFailure, RecipientStatus::Unknown]
    );
    assert_eq!(r.recipients[0].reply.as_ref().map(Reply::code), Some(452));
    assert_eq!(r.recipients[1].reply.as_ref().map(Reply::code), Some(550));
    assert_eq!(r.recipients[2].reply, None);
}

/// LMTP: a 421 as the last recipient's reply after the body (a server shutting down) answers that recipient
/// and ends the session; every accepted recipient has its reply, so nothing is unknown and the message is
/// Rejected (temporary), not Unknown.
#[test]
fn lmtp_421_as_the_last_recipients_reply_leaves_nothing_unknown() {
    let after = [S(b"452 4.2.2 full\r\n421 4.3.2 shutting down\r\n"), Nothing, Eof, Nothing];
    let run = check(&lmtp(), &lmtp_two_accepted_then(after));
    let r = run.report();
    let statuses = run.statuses();
    assert_eq!(statuses, [RecipientStatus::TemporaryFailure, RecipientStatus::TemporaryFailure]);
    assert_eq!(r.outcome, Outcome::Rejected);
    assert!(r.is_temporary());
    assert_eq!(r.recipients[1].reply.as_ref().map(Reply::code), Some(421));
    assert!(matches!(closed_with(&run), Error::ServiceUnavailable(_)));
}

/// The same with the first recipient delivered: Sent, the second a temporary failure.
#[test]
fn lmtp_421_after_a_delivered_recipient_is_sent() {
    let after = [S(b"250 2.1.5 delivered\r\n421 4.3.2 shutting down\r\n"), Nothing, Eof, Nothing];
    let run = check(&lmtp(), &lmtp_two_accepted_then(after));
    let r = run.report();
    let statuses = run.statuses();
    assert_eq!(statuses, [RecipientStatus::Delivered, RecipientStatus::TemporaryFailure]);
    assert_eq!(r.outcome, Outcome::Sent);
}

/// SMTP: a 421 in answer to the end of data is that message's answer: not delivered (temporary), not
/// unknown.
#[test]
fn smtp_421_to_the_end_of_data_is_a_temporary_rejection() {
    let mut script = ehlo(PIPE_CAPS).to_vec();
    script.extend([
        Send { env: env("a@example.org", &["b@x.test"]), body: b"x\r\n".to_vec(), chunk: 8 },
        C(b"MAIL FROM:<a@example.org>\r\nRCPT TO:<b@x.test>\r\nDATA\r\n"),
        S(b"250 ok\r\n250 ok\r\n354 go\r\n"),
        C(b"x\r\n.\r\n"),
        S(b"421 4.3.2 shutting down\r\n"),
        Nothing,
        Eof,
        Nothing,
    ]);
    let run = check(&config(), &script);
    let r = run.report();
    assert_eq!(r.recipients[0].status, RecipientStatus::TemporaryFailure);
    assert_eq!(r.outcome, Outcome::Rejected);
    assert!(r.is_temporary());
}

/// A pipelined MAIL refusal decides the message and every recipient: the 503s after it only echo it.
#[test]
fn pipelined_mail_refusal_is_the_messages_reply() {
    let mut script = ehlo(PIPE_CAPS).to_vec();
    script.extend([
        Send { env: env("a@example.org", &["b@x.test", "c@x.test"]), body: b"x".to_vec(), chunk: 8 },
        C(b"MAIL FROM:<a@example.org>\r\nRCPT TO:<b@x.test>\r\nRCPT TO:<c@x.test>\r\nDATA\r\n"),
        S(b"451 4.3.0 try later\r\n503 5.5.1 need MAIL\r\n503 5.5.1 need MAIL\r\n503 5.5.1 need RCPT\r\n"),
        C(b"RSET\r\n"),
        S(b"250 ok\r\n"),
    ]);
    let run = check(&config(), &script);
    let r = run.report();
    assert_eq!(r.reply().map(Reply::code), Some(451));
    for x in &r.recipients {
        assert_eq!(x.status, RecipientStatus::TemporaryFailure);
        assert_eq!(x.reply.as_ref().map(Reply::code), Some(451));
    }
    assert!(r.is_temporary());
}

/// Each misuse has its own `ApiMisuse`, refused with no effect; each session error says whose fault it is.
#[test]
fn misuse_is_typed_and_errors_carry_blame() {
    use smtp_proto::{ApiMisuse, Blame, Timer};
    let now = std::time::Duration::ZERO;
    let mut c = smtp_proto::Client::new(common::helo(), config(), now);
    assert_eq!(c.tls_established(now), Err(ApiMisuse::NoTlsUpgradePending));
    packet(&mut c, now, b"220 mx\r\n");
    packet(&mut c, now, PIPE_CAPS);
    let id = c.send_message(env("a@x.test", &["b@x.test"])).unwrap();
    assert_eq!(c.finish_body(id), Err(ApiMisuse::BodyNotRequested));
    assert_eq!(c.write_body(id, b"early"), Ok(0));
    let busy = c.send_message(env("a@x.test", &["b@x.test"]));
    assert_eq!(busy, Err(smtp_proto::SendError::Misuse(ApiMisuse::Busy)));
    packet(&mut c, now, b"");
    packet(&mut c, now, b"250 ok\r\n250 ok\r\n354 go\r\n");
    assert_eq!(c.write_body(id, b"x\r\n"), Ok(3));
    assert_eq!(c.finish_body(id), Ok(()));
    assert_eq!(c.finish_body(id), Err(ApiMisuse::BodyFinished));
    assert_eq!(c.write_body(id, b"late"), Err(ApiMisuse::BodyFinished));
    packet(&mut c, now, b"250 queued\r\n");
    assert_eq!(c.write_body(id, b"late"), Err(ApiMisuse::UnknownMessage));

    let reply = Reply::new(421, "bye");
    for (error, blame) in [
        (Error::Parse(ParseError::BareLf), Blame::Remote),
        (Error::ServiceUnavailable(reply.clone()), Blame::Remote),
        (Error::StartTlsInjection, Blame::Remote),
        (Error::TlsUnavailable(None), Blame::Local),
        (Error::AuthRequiresTls, Blame::Local),
        (Error::NoAuthMechanism, Blame::Local),
        (Error::Aborted, Blame::Misuse),
        (Error::Timeout(Timer::Mail), Blame::Transport),
        (Error::UnexpectedEof, Blame::Transport),
    ] {
        assert_eq!(error.blame(), blame, "{error}");
    }
    assert_eq!(Error::ServiceUnavailable(reply.clone()).reply(), Some(&reply));
    assert_eq!(Error::UnexpectedEof.reply(), None);
}

/// NOOP between messages: `Alive` after its 250; refused, the session ends; not while a message is in flight.
#[test]
fn noop_checks_the_session() {
    let now = std::time::Duration::ZERO;
    let mut c = smtp_proto::Client::new(common::helo(), config(), now);
    assert_eq!(c.noop(), Err(smtp_proto::ApiMisuse::NotConnected));
    packet(&mut c, now, b"220 mx\r\n");
    packet(&mut c, now, PIPE_CAPS);
    while c.poll_event().is_some() {}
    c.noop().unwrap();
    let mut out = Vec::new();
    assert!(c.poll_transmit(now, &mut out) > 0);
    assert_eq!(out, b"NOOP\r\n");
    c.handle_input(now, b"250 2.0.0 ok\r\n");
    assert_eq!(c.poll_event(), Some(Event::Alive));
    // RSET checks too (and clears the server's transaction state).
    c.rset().unwrap();
    out.clear();
    assert!(c.poll_transmit(now, &mut out) > 0);
    assert_eq!(out, b"RSET\r\n");
    c.handle_input(now, b"250 2.0.0 ok\r\n");
    assert_eq!(c.poll_event(), Some(Event::Alive));
    c.send_message(env("a@x.test", &["b@x.test"])).unwrap();
    assert_eq!(c.noop(), Err(smtp_proto::ApiMisuse::Busy));

    let mut c = smtp_proto::Client::new(common::helo(), config(), now);
    packet(&mut c, now, b"220 mx\r\n");
    packet(&mut c, now, PIPE_CAPS);
    c.noop().unwrap();
    packet(&mut c, now, b"");
    packet(&mut c, now, b"421 4.4.2 gone\r\n");
    assert!(c.is_closed());
}

/// A report prints as a user wants to read it: the outcome and the deciding reply, then one line a recipient
/// with the reply as the server wrote it.
#[test]
fn reports_print_one_line_a_recipient() {
    let mut script = ehlo(PIPE_CAPS).to_vec();
    script.extend([
        Send { env: env("a@example.org", &["b@x.test", "c@x.test"]), body: b"x\r\n".to_vec(), chunk: 8 },
        C(b"MAIL FROM:<a@example.org>\r\nRCPT TO:<b@x.test>\r\nRCPT TO:<c@x.test>\r\nDATA\r\n"),
        S(b"250 ok\r\n250 2.1.5 ok\r\n550 5.1.1 no such user\r\n354 go\r\n"),
        C(b"x\r\n.\r\n"),
        S(b"250 2.0.0 queued as 4F2A\r\n"),
    ]);
    let run = check(&config(), &script);
    assert_eq!(
        run.report().to_string(),
        "sent: 250 2.0.0 queued as 4F2A\n  delivered b@x.test: 250 2.0.0 queued as 4F2A\n  \
         rejected (permanent) c@x.test: 550 5.1.1 no such user"
    );
    let mut script = ehlo(PIPE_CAPS).to_vec();
    script.extend([
        Send { env: env("a@example.org", &["b@x.test"]), body: b"x\r\n".to_vec(), chunk: 8 },
        C(b"MAIL FROM:<a@example.org>\r\nRCPT TO:<b@x.test>\r\nDATA\r\n"),
        S(b"451 4.3.0 try later\r\n503 need MAIL\r\n503 need MAIL\r\n"),
        C(b"RSET\r\n"),
    ]);
    assert_eq!(
        check(&config(), &script).report().to_string(),
        "rejected: the server refused the sender (MAIL): 451 4.3.0 try later\n  \
         rejected (temporary) b@x.test: 451 4.3.0 try later"
    );
}
