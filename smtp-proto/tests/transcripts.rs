//! Session transcripts: `S:` server bytes, `C:` client bytes, then the events. Every script also runs with
//! the server bytes split at every offset, byte by byte and in random chunks (see `common::check`).

mod common;

use common::{Step::*, check, config, ehlo, env};
use smtp_proto::{Error, Event, Failure, Outcome, RecipientStatus};

const PIPE_CAPS: &[u8] = b"250-mx.example.com\r\n250-PIPELINING\r\n250 8BITMIME\r\n";
const PLAIN_CAPS: &[u8] = b"250-mx.example.com\r\n250 8BITMIME\r\n";

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
        Send { env: env("a@example.org", &["b@example.net", "c@example.net"]), body: b"Hi\r\n".to_vec(), chunk: 64 },
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
        Send { env: env("a@example.org", &["b@example.net", "c@example.net"]), body: b".x\r\n".to_vec(), chunk: 1 },
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

fn closed_with(run: &common::Run) -> Error {
    run.closed().expect("closed").expect("with an error")
}

/// TV-12: a 554 greeting: QUIT, never EHLO.
#[test]
fn tv12_greeting_554() {
    let run = check(
        &config(),
        &[
            S(b"554 mx.example.com no SMTP service here\r\n"),
            C(b"QUIT\r\n"),
            S(b"221 bye\r\n"),
        ],
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
    let run = check(&config(), &[S(b"220 mx\r\n"), C(b"EHLO client.example.org\r\n"), S(b"421 4.3.2 down\r\n"), Nothing]);
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
        assert!(matches!(closed_with(&run), Error::HelloRejected(r) if r.code() == u16::from(code[0] - b'0') * 100 + if code[0] == b'4' { 51 } else { 50 }));
    }
}

/// HELO fallback never happens when TLS is required (SESS-04): STARTTLS cannot exist without EHLO.
#[test]
fn no_helo_fallback_when_tls_required() {
    let mut c = config();
    c.tls = smtp_proto::TlsMode::Required;
    let run = check(&c, &[S(b"220 mx\r\n"), C(b"EHLO client.example.org\r\n"), S(b"502 no\r\n"), C(b"QUIT\r\n"), Eof]);
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
        Send { env: env("a@example.org", &["b@x.test", "c@x.test"]), body: b"secret body".to_vec(), chunk: 8 },
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
