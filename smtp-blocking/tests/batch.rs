//! `send_all`: several messages over one connection, the next message's MAIL/RCPT/DATA pipelined with the
//! previous final dot (one round trip a message).

use std::time::Duration;

use smtp_blocking::{Error, SmtpClient};
use smtp_proto::{Envelope, Outcome, SendError, Timeouts, TlsMode, Unsendable};
use smtp_testkit::scripted::{Script, ScriptedServer};
use smtp_transport::Options;

fn options(server: &ScriptedServer) -> Options {
    let mut o = Options::new("127.0.0.1", server.port());
    o.session.tls = TlsMode::None;
    o.helo_name = Some("client.test".parse().unwrap());
    o.session.timeouts = Timeouts::uniform(Duration::from_secs(10));
    o
}

fn envelope() -> Envelope {
    Envelope::parse("alice@example.org", &["bob@example.org"]).unwrap()
}

#[test]
fn next_transaction_rides_with_the_final_dot() {
    // The server answers a final dot only after it has read the next MAIL: a client that waited for the
    // 250 before sending MAIL would stall until the script's patience runs out.
    let server = ScriptedServer::start(
        Script::new()
            .send("220 mx.test ESMTP\r\n")
            .on("EHLO", "250-mx.test\r\n250 PIPELINING\r\n")
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
            .on("QUIT", "221 bye\r\n"),
    );
    let mut client = SmtpClient::connect(&options(&server)).unwrap();
    let bodies = ["one\r\n", "two\r\n", "three\r\n"];
    let mut reports = Vec::new();
    client
        .send_all(bodies.iter().map(|b| (envelope(), std::io::Cursor::new(b.as_bytes()))), |r| {
            reports.push(r)
        })
        .unwrap();
    client.quit().unwrap();
    let texts: Vec<String> =
        reports.iter().map(|r| r.final_reply.as_ref().unwrap().text_lossy().into_owned()).collect();
    assert_eq!(texts, ["queued 1", "queued 2", "queued 3"]);
    assert!(reports.iter().all(|r| r.outcome == Outcome::Sent));
    let rec = server.finish();
    assert_eq!(rec.data.len(), 3);
}

#[test]
fn a_refusal_ends_the_batch_after_the_reports_in_flight() {
    let server = ScriptedServer::start(
        Script::new()
            .send("220 mx.test ESMTP\r\n")
            .on("EHLO", "250-mx.test\r\n250-PIPELINING\r\n250 SIZE 100\r\n")
            .expect_line("MAIL")
            .expect_line("RCPT")
            .on("DATA", "250 ok\r\n250 ok\r\n354 go\r\n")
            .expect_data_end()
            .send("250 queued\r\n")
            .on("QUIT", "221 bye\r\n"),
    );
    let mut client = SmtpClient::connect(&options(&server)).unwrap();
    let messages = [
        (envelope().size(10), std::io::Cursor::new(&b"small\r\n"[..])),
        (envelope().size(1000), std::io::Cursor::new(&b"big"[..])),
    ];
    let mut reports = Vec::new();
    let err = client.send_all(messages, |r| reports.push(r)).unwrap_err();
    assert!(matches!(err, Error::Send(SendError::Unsendable(Unsendable::TooBig { .. }))), "{err:?}");
    assert_eq!(reports.len(), 1);
    assert_eq!(reports[0].outcome, Outcome::Sent);
    client.quit().unwrap();
    server.finish();
}
