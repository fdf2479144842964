//! The same client on other runtimes: async-std's executor and TcpStream, and tokio through
//! `tokio_util::compat`.

mod common;

use common::{GeneratedBody, Script, Server, esmtp, options};
use smtp_smol::smtp_proto::body::unstuff;
use smtp_smol::{Envelope, Options, Outcome, SmtpClient};
use tokio_util::compat::TokioAsyncReadCompatExt as _;

const LEN: usize = 200 * 1024;

fn envelope() -> Envelope {
    Envelope::parse("alice@example.org", &["bob@example.org"]).unwrap()
}

/// One message and QUIT on a stream the runtime connected.
async fn session<S>(stream: S, opts: &Options)
where
    S: futures_lite::AsyncRead + futures_lite::AsyncWrite + Unpin,
{
    let mut client = SmtpClient::from_stream(stream, opts).await.unwrap();
    let report = client.send(envelope(), GeneratedBody::new(LEN)).await.unwrap();
    assert_eq!(report.outcome, Outcome::Sent, "{report:?}");
    client.quit().await.unwrap();
}

fn check(server: Server) {
    let rec = server.finish();
    assert_eq!(rec.commands.last().map(String::as_str), Some("QUIT"));
    assert!(unstuff(&rec.bodies[0]).unwrap() == GeneratedBody::expected(LEN));
}

#[test]
fn under_async_std() {
    let server = Server::start(Script::new(esmtp(&["PIPELINING"])));
    let opts = options(server.port);
    async_std::task::block_on(async {
        let stream = async_std::net::TcpStream::connect(("127.0.0.1", server.port)).await.unwrap();
        stream.set_nodelay(true).unwrap();
        session(stream, &opts).await;
    });
    check(server);
}

#[test]
fn under_tokio_through_compat() {
    let server = Server::start(Script::new(esmtp(&["PIPELINING"])));
    let opts = options(server.port);
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let stream = tokio::net::TcpStream::connect(("127.0.0.1", server.port)).await.unwrap();
        stream.set_nodelay(true).unwrap();
        session(stream.compat(), &opts).await;
    });
    check(server);
}
