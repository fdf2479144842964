//! What only smtp-smol has to show: the same client on other runtimes (async-std's executor and
//! `TcpStream`, and tokio's through `tokio_util::compat`), and futures that are `Send`.

use smtp_smol::smtp_proto::internal::{normalize_line_endings, unstuff};
use smtp_smol::smtp_proto::{Timeouts, TlsMode};
use smtp_smol::{Envelope, Options, Outcome, SmtpClient};
use smtp_testkit::conformance::Body;
use smtp_testkit::scripted::{Script, ScriptedServer};
use tokio_util::compat::TokioAsyncReadCompatExt as _;

const LEN: u64 = 200 * 1024;

fn envelope() -> Envelope {
    Envelope::parse("alice@example.org", &["bob@example.org"]).expect("valid addresses")
}

/// One pipelined message, then QUIT.
fn server() -> ScriptedServer {
    ScriptedServer::start(
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
    )
}

fn options(server: &ScriptedServer) -> Options {
    let mut o = Options::new("127.0.0.1", server.port());
    o.session.tls = TlsMode::None;
    o.helo_name = Some("client.test".parse().expect("valid EHLO name"));
    o.session.timeouts = Timeouts::uniform(std::time::Duration::from_secs(10));
    o
}

/// One message and QUIT on a stream the runtime connected.
async fn session<S>(stream: S, opts: &Options)
where
    S: futures_lite::AsyncRead + futures_lite::AsyncWrite + Unpin,
{
    let mut client = SmtpClient::from_stream(stream, opts).await.expect("session");
    let report = client.send(envelope(), Body::generated(LEN)).await.expect("send");
    assert_eq!(report.outcome, Outcome::Sent, "{report:?}");
    client.quit().await.expect("quit");
}

fn check(server: ScriptedServer) {
    let rec = server.finish();
    assert_eq!(rec.commands.last().map(String::as_str), Some("QUIT"));
    let mut want = normalize_line_endings(&Body::generated_content(LEN));
    if !want.ends_with(b"\r\n") {
        want.extend_from_slice(b"\r\n");
    }
    assert!(unstuff(&rec.data[0]).expect("well-formed DATA") == want, "the body changed on the way");
}

#[test]
fn under_async_std() {
    let server = server();
    let opts = options(&server);
    async_std::task::block_on(async {
        let stream = async_std::net::TcpStream::connect(server.addr()).await.expect("connect");
        stream.set_nodelay(true).expect("nodelay");
        session(stream, &opts).await;
    });
    check(server);
}

#[test]
fn under_tokio_through_compat() {
    let server = server();
    let opts = options(&server);
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    runtime.block_on(async {
        let stream = tokio::net::TcpStream::connect(server.addr()).await.expect("connect");
        stream.set_nodelay(true).expect("nodelay");
        session(stream.compat(), &opts).await;
    });
    check(server);
}

#[test]
fn futures_are_send() {
    fn is_send<T: Send>(_: &T) {}
    let opts = Options::new("127.0.0.1", 1);
    is_send(&SmtpClient::connect(&opts));
    let mut client: Option<SmtpClient> = None;
    if let Some(c) = client.as_mut() {
        is_send(&c.send(envelope(), Body::bytes("x")));
        is_send(&c.send_all(vec![(envelope(), Body::bytes("x"))], |_| {}));
        is_send(&c.noop());
    }
    if let Some(c) = client {
        is_send(&c.quit());
    }
}
