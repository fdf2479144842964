//! What only smtp-tokio has to show: a send from a task spawned on a multi-thread runtime, which needs
//! the client's futures to be `Send`.

use smtp_testkit::conformance::Body;
use smtp_testkit::scripted::{Script, ScriptedServer};
use smtp_tokio::smtp_proto::internal::{normalize_line_endings, unstuff};
use smtp_tokio::smtp_proto::{Timeouts, TlsMode};
use smtp_tokio::{Envelope, Options, Outcome, SmtpClient};

const LEN: u64 = 200 * 1024;

#[test]
fn send_from_a_task_spawned_on_a_multi_thread_runtime() {
    let server = ScriptedServer::start(
        Script::new()
            .send("220 mx.test ESMTP\r\n")
            .on("EHLO client.test", "250-mx.test\r\n250 PIPELINING\r\n")
            .expect_line("MAIL")
            .expect_line("RCPT")
            .expect_line("DATA")
            .send("250 ok\r\n250 ok\r\n354 go\r\n")
            .expect_data_end()
            .send("250 queued\r\n")
            .on("QUIT", "221 bye\r\n")
            .read_to_eof(),
    );
    let mut o = Options::new("127.0.0.1", server.port());
    o.session.tls = TlsMode::None;
    o.helo_name = Some("client.test".parse().expect("valid EHLO name"));
    o.session.timeouts = Timeouts::uniform(std::time::Duration::from_secs(10));
    let runtime =
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    let report = runtime.block_on(async move {
        let task = tokio::spawn(async move {
            let mut client = SmtpClient::connect(&o).await.expect("connect");
            let envelope =
                Envelope::parse("alice@example.org", &["bob@example.org"]).expect("valid addresses");
            let report = client.send(envelope, Body::generated(LEN)).await.expect("send");
            client.quit().await.expect("quit");
            report
        });
        task.await.expect("the task")
    });
    assert_eq!(report.outcome, Outcome::Sent, "{report:?}");
    let rec = server.finish();
    let mut want = normalize_line_endings(&Body::generated_content(LEN));
    if !want.ends_with(b"\r\n") {
        want.extend_from_slice(b"\r\n");
    }
    assert!(unstuff(&rec.data[0]).expect("well-formed DATA") == want, "the body changed on the way");
}
