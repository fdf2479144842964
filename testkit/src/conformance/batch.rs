//! `send_all` (each next message riding with the previous final dot), `noop`, and messages whose
//! recipients need several transactions or connections (issue 10: RCPTMAX, a 452 on the way, MAILMAX).

use smtp_proto::address::ForwardPath;
use smtp_proto::{Envelope, Failure, MessageReport, Outcome, RecipientStatus, SendError, Unsendable};
use smtp_transport::Error;

use super::{Adapter, Body, GREETING, Stream, code, envelope, options, shared};
use crate::scripted::{Script, ScriptedServer};

const EHLO_PIPELINING: &str = "250-mx.test\r\n250 PIPELINING\r\n";

fn bob() -> Envelope {
    envelope(&["bob@example.org"])
}

/// Three messages, each next MAIL/RCPT/DATA written before the previous final dot is answered.
fn three_in_a_row() -> Script {
    // The server answers a final dot only after it has read the next MAIL: a client that waited for the
    // 250 before sending MAIL would stall until the script's patience runs out.
    Script::new()
        .send(GREETING)
        .on("EHLO", EHLO_PIPELINING)
        .expect_line("MAIL")
        .expect_line("RCPT")
        .on("DATA", "250 ok\r\n250 ok\r\n354 go\r\n")
        .expect_data_end()
        .expect_line("MAIL")
        .expect_line("RCPT")
        .expect_line("DATA")
        .send("250 queued 1\r\n250 ok\r\n250 ok\r\n354 go\r\n")
        .expect_data_end()
        .expect_line("MAIL")
        .expect_line("RCPT")
        .expect_line("DATA")
        .send("250 queued 2\r\n250 ok\r\n250 ok\r\n354 go\r\n")
        .expect_data_end()
        .send("250 queued 3\r\n")
        .on("QUIT", "221 bye\r\n")
}

fn send_three<A: Adapter>(server: &ScriptedServer) -> Vec<MessageReport> {
    let mut client = A::connect(&options(server)).expect("connect");
    let messages = ["one\r\n", "two\r\n", "three\r\n"].into_iter().map(|b| (bob(), Body::bytes(b))).collect();
    let mut reports = Vec::new();
    client.send_all(messages, &mut |r| reports.push(r)).expect("send_all");
    client.quit().expect("quit");
    reports
}

/// `send_all` with PIPELINING: one round trip a message, the next transaction's commands riding with the
/// previous final dot; each report in order.
pub fn next_transaction_rides_with_the_final_dot<A: Adapter>() {
    let _serial = shared();
    let server = ScriptedServer::start(three_in_a_row());
    let reports = send_three::<A>(&server);
    let texts: Vec<String> = reports
        .iter()
        .map(|r| r.final_reply.as_ref().expect("a final reply").text_lossy().into_owned())
        .collect();
    assert_eq!(texts, ["queued 1", "queued 2", "queued 3"]);
    assert!(reports.iter().all(|r| r.outcome == Outcome::Sent), "{reports:?}");
    assert_eq!(server.finish().data.len(), 3);
}

/// `send_all` with PIPELINING puts each next MAIL in the same write as the previous final dot: they
/// arrive in one read.
pub fn send_all_writes_each_next_mail_with_the_previous_final_dot<A: Adapter>() {
    let _serial = shared();
    let server = ScriptedServer::start(three_in_a_row());
    send_three::<A>(&server);
    let rec = server.finish();
    // The body's last line may come in an earlier write: the dot is what matters.
    let dot_then_mail = b".\r\nMAIL FROM:<alice@example.org>";
    let together =
        rec.reads().iter().filter(|r| r.windows(dot_then_mail.len()).any(|w| w == dot_then_mail)).count();
    assert_eq!(together, 2, "reads: {:?}", rec.reads().iter().map(|r| super::text(r)).collect::<Vec<_>>());
}

/// A message refused before any byte (over SIZE) ends the batch: the message already handed over still
/// gets its report, then the refusal is returned.
pub fn a_refusal_ends_the_batch_after_the_reports_in_flight<A: Adapter>() {
    let _serial = shared();
    let server = ScriptedServer::start(
        Script::new()
            .send(GREETING)
            .on("EHLO", "250-mx.test\r\n250-PIPELINING\r\n250 SIZE 100\r\n")
            .expect_line("MAIL")
            .expect_line("RCPT")
            .on("DATA", "250 ok\r\n250 ok\r\n354 go\r\n")
            .expect_data_end()
            .send("250 queued\r\n")
            .on("QUIT", "221 bye\r\n"),
    );
    let mut client = A::connect(&options(&server)).expect("connect");
    let messages = vec![(bob().size(10), Body::bytes("small\r\n")), (bob().size(1000), Body::bytes("big"))];
    let mut reports = Vec::new();
    let err = client.send_all(messages, &mut |r| reports.push(r)).expect_err("refused");
    assert!(matches!(err, Error::Send(SendError::Unsendable(Unsendable::TooBig { .. }))), "{err:?}");
    assert_eq!(reports.len(), 1);
    assert_eq!(reports[0].outcome, Outcome::Sent);
    client.quit().expect("quit");
    server.finish();
}

/// `noop`: a 250 is `Ok`; a 421 is an error naming the 421, which also ends the session.
pub fn noop_answered_250_is_ok_and_421_is_an_error<A: Adapter>() {
    let _serial = shared();
    let server = ScriptedServer::start(
        Script::new()
            .send(GREETING)
            .on("EHLO", EHLO_PIPELINING)
            .on("NOOP", "250 2.0.0 ok\r\n")
            .on("NOOP", "421 4.3.2 shutting down\r\n")
            .read_to_eof(),
    );
    let mut client = A::connect(&options(&server)).expect("connect");
    client.noop().expect("NOOP answered 250");
    let err = client.noop().expect_err("NOOP answered 421");
    assert_eq!(err.reply().map(|r| r.code()), Some(421), "{err:?}");
    assert_eq!(client.close_reason().and_then(|e| e.reply()).map(|r| r.code()), Some(421));
    assert!(matches!(client.noop(), Err(Error::Closed(_))));
    client.quit().expect("quit after the end is a no-op");
    server.finish();
}

/// The recipients `r0@example.org` … in order.
fn recipients(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("r{i}@example.org")).collect()
}

/// One pipelined transaction for `rcpts` (each accepted, or given the reply next to it), then the body.
fn transaction(mut s: Script, rcpts: &[(&str, &str)], queued: &str) -> Script {
    s = s.expect_line("MAIL FROM:<alice@example.org>");
    let mut replies = String::from("250 2.1.0 ok\r\n");
    for (to, reply) in rcpts {
        s = s.expect_line(&format!("RCPT TO:<{to}>"));
        replies.push_str(reply);
    }
    replies.push_str("354 go\r\n");
    s.expect_line("DATA").send(replies).expect_data_end().send(format!("250 2.0.0 {queued}\r\n"))
}

#[track_caller]
fn assert_every_recipient_delivered(report: &MessageReport, to: &[String]) {
    assert_eq!(report.outcome, Outcome::Sent, "{report:?}");
    let paths: Vec<String> = report.recipients.iter().map(|r| r.path.to_string()).collect();
    assert_eq!(paths, to);
    assert!(report.recipients.iter().all(|r| r.status == RecipientStatus::Delivered), "{report:?}");
}

const BODY: &str = "Subject: to many\r\n\r\nthe same body in every transaction\r\n";

/// `LIMITS RCPTMAX=3` (RFC 9422) and 7 recipients: three transactions of at most 3 on the one connection,
/// the body byte-identical in each, one report with every recipient.
pub fn rcptmax_splits_the_recipients_over_transactions<A: Adapter>() {
    let _serial = shared();
    let to = recipients(7);
    let ok = "250 2.1.5 ok\r\n";
    let mut script =
        Script::new().send(GREETING).on("EHLO", "250-mx.test\r\n250-PIPELINING\r\n250 LIMITS RCPTMAX=3\r\n");
    for (i, part) in to.chunks(3).enumerate() {
        let rcpts: Vec<(&str, &str)> = part.iter().map(|t| (t.as_str(), ok)).collect();
        script = transaction(script, &rcpts, &format!("queued {i}"));
    }
    let server = ScriptedServer::start(script.on("QUIT", "221 bye\r\n").read_to_eof());
    let mut client = A::connect(&options(&server)).expect("connect");
    let all: Vec<&str> = to.iter().map(String::as_str).collect();
    let report = client.send(envelope(&all), Body::bytes(BODY)).expect("send");
    assert_every_recipient_delivered(&report, &to);
    client.quit().expect("quit");
    assert_eq!(server.connections(), 1);
    let rec = server.finish();
    assert_eq!(rec.data.len(), 3);
    assert!(rec.data.iter().all(|d| *d == rec.data[0]), "the body differs between transactions");
    assert_eq!(rec.commands.iter().filter(|c| c.starts_with("MAIL")).count(), 3);
}

const TOO_MANY: &str = "452 4.5.3 too many recipients\r\n";

/// The first transaction of five recipients when the server takes two: `452 4.5.3` from the third on.
fn two_then_too_many(s: Script, to: &[String]) -> Script {
    let ok = "250 2.1.5 ok\r\n";
    let rcpts: Vec<(&str, &str)> =
        to.iter().enumerate().map(|(i, t)| (t.as_str(), if i < 2 { ok } else { TOO_MANY })).collect();
    transaction(s.send(GREETING).on("EHLO", "250-mx.test\r\n250 PIPELINING\r\n"), &rcpts, "queued 1")
}

/// Issue 10: `452 4.5.3` from the third recipient on. The body can be read again, so the other three go in
/// a second transaction on the same connection, with the same body; one report, every recipient
/// delivered.
pub fn recipients_refused_as_too_many_go_in_a_later_transaction<A: Adapter>() {
    let _serial = shared();
    let to = recipients(5);
    let ok = "250 2.1.5 ok\r\n";
    let rest: Vec<(&str, &str)> = to[2..].iter().map(|t| (t.as_str(), ok)).collect();
    let script = transaction(two_then_too_many(Script::new(), &to), &rest, "queued 2");
    let server = ScriptedServer::start(script.on("QUIT", "221 bye\r\n").read_to_eof());
    let mut client = A::connect(&options(&server)).expect("connect");
    let all: Vec<&str> = to.iter().map(String::as_str).collect();
    let report = client.send(envelope(&all), Body::bytes(BODY)).expect("send");
    assert_every_recipient_delivered(&report, &to);
    assert!(report.retry_recipients().next().is_none(), "{report:?}");
    client.quit().expect("quit");
    let rec = server.finish();
    assert_eq!(rec.data.len(), 2);
    assert_eq!(rec.data[0], rec.data[1], "the body differs between transactions");
}

/// The same with a body that cannot seek: one transaction, and the recipients turned away are reported
/// (temporary, in `retry_recipients`) instead of sent again.
pub fn recipients_refused_as_too_many_with_a_one_shot_body_are_reported<A: Adapter>() {
    let _serial = shared();
    let to = recipients(5);
    let server =
        ScriptedServer::start(two_then_too_many(Script::new(), &to).on("QUIT", "221 bye\r\n").read_to_eof());
    let mut client = A::connect(&options(&server)).expect("connect");
    let all: Vec<&str> = to.iter().map(String::as_str).collect();
    let report = client.send(envelope(&all), Body::bytes(BODY).one_shot()).expect("send");
    assert_eq!(report.outcome, Outcome::Sent, "{report:?}");
    let statuses: Vec<RecipientStatus> = report.recipients.iter().map(|r| r.status).collect();
    use RecipientStatus::{Delivered, TemporaryFailure};
    assert_eq!(statuses, [Delivered, Delivered, TemporaryFailure, TemporaryFailure, TemporaryFailure]);
    assert!(report.recipients[2..].iter().all(|r| code(&r.rcpt_reply) == Some(452)), "{report:?}");
    let retry: Vec<&ForwardPath> = report.retry_recipients().collect();
    let want: Vec<ForwardPath> = to[2..].iter().map(|t| ForwardPath::parse(t).expect("address")).collect();
    assert_eq!(retry, want.iter().collect::<Vec<_>>());
    client.quit().expect("quit");
    let rec = server.finish();
    assert_eq!(rec.data.len(), 1);
}

const EHLO_MAILMAX: &str = "250-mx.test\r\n250-PIPELINING\r\n250 LIMITS MAILMAX=2\r\n";

/// A connection that takes `n` messages (numbered from `first`), then QUIT.
fn mailmax_connection(first: usize, n: usize) -> Script {
    let mut s = Script::new().send(GREETING).on("EHLO", EHLO_MAILMAX);
    for i in first..first + n {
        s = transaction(s, &[("bob@example.org", "250 2.1.5 ok\r\n")], &format!("queued {i}"));
    }
    s.on("QUIT", "221 bye\r\n").read_to_eof()
}

fn five_messages() -> Vec<(Envelope, Body)> {
    (1..=5).map(|i| (bob(), Body::bytes(format!("Subject: {i}\r\n\r\nmessage {i}\r\n")))).collect()
}

/// `LIMITS MAILMAX=2` and a `send_all` of five messages from `connect`: QUIT after two, and the rest goes on
/// new connections (2, 2, 1); every message sent, in order.
pub fn mailmax_continues_on_a_new_connection<A: Adapter>() {
    let _serial = shared();
    let server = ScriptedServer::start_each(vec![
        mailmax_connection(1, 2),
        mailmax_connection(3, 2),
        mailmax_connection(5, 1),
    ]);
    let mut client = A::connect(&options(&server)).expect("connect");
    let mut reports = Vec::new();
    client.send_all(five_messages(), &mut |r| reports.push(r)).expect("send_all");
    client.quit().expect("quit");
    let texts: Vec<String> = reports
        .iter()
        .map(|r| r.final_reply.as_ref().map(|r| r.text_lossy().into_owned()).unwrap_or_default())
        .collect();
    assert_eq!(texts, ["queued 1", "queued 2", "queued 3", "queued 4", "queued 5"]);
    assert!(reports.iter().all(|r| r.outcome == Outcome::Sent), "{reports:?}");
    assert_eq!(server.connections(), 3);
    let recs = server.finish_all();
    assert_eq!(recs.iter().map(|r| r.data.len()).collect::<Vec<_>>(), [2, 2, 1]);
}

/// `LIMITS MAILMAX=2` on a connection given to `from_stream`, which cannot be opened again: two messages
/// sent, and every other message of the batch reported, as refused for the server's limit.
pub fn mailmax_on_a_stream_reports_the_rest<A: Adapter>() {
    let _serial = shared();
    let server = ScriptedServer::start(mailmax_connection(1, 2));
    let stream = std::net::TcpStream::connect(server.addr()).expect("connect");
    let mut client = A::from_stream(Stream::Tcp(stream), &options(&server)).expect("session");
    let mut reports = Vec::new();
    let result = client.send_all(five_messages(), &mut |r| reports.push(r));
    // The session ended: the batch may say so, as long as every message has its report.
    assert!(matches!(result, Ok(()) | Err(Error::Closed(_))), "{result:?}");
    let outcomes: Vec<Outcome> = reports.iter().map(|r| r.outcome).collect();
    use Outcome::{Rejected, Sent};
    assert_eq!(outcomes, [Sent, Sent, Rejected, Rejected, Rejected], "{result:?}: {reports:?}");
    for report in &reports[2..] {
        assert_eq!(
            report.failure,
            Some(Failure::Unsendable(Unsendable::SessionLimit { max: 2 })),
            "{report:?}"
        );
    }
    assert!(client.close_reason().is_some());
    drop(client);
    assert_eq!(server.connections(), 1);
    server.finish();
}
