//! The run loop of `examples/core_loop.rs` (the one the core's crate docs point to) over a real socket,
//! against a server that offers STARTTLS: the loop must handle `Event::StartTls`, or it would wait for ever.

#[path = "../core_loop.rs"]
#[allow(dead_code)]
mod core_loop;

use std::net::TcpStream;

use smtp_proto::{Envelope, Outcome};
use smtp_testkit::scripted::{Script, ScriptedServer};

#[test]
fn the_documented_loop_sends_over_starttls() {
    let server = ScriptedServer::start(
        Script::new()
            .send("220 mx.test ESMTP\r\n")
            .on("EHLO", "250-mx.test\r\n250-PIPELINING\r\n250 STARTTLS\r\n")
            .expect_line("STARTTLS")
            .send_then_starttls("220 2.0.0 go ahead\r\n")
            .on("EHLO", "250-mx.test\r\n250 PIPELINING\r\n")
            .expect_line("MAIL")
            .expect_line("RCPT")
            .on("DATA", "250 2.1.0 ok\r\n250 2.1.5 ok\r\n354 go ahead\r\n")
            .expect_data_end()
            .send("250 2.0.0 queued\r\n")
            .on("QUIT", "221 bye\r\n"),
    );
    let mut options = smtp_transport::Options::new("localhost", server.port());
    options.ca_file = Some(server.ca_pem_path().to_owned());
    let tls = Some((options.tls_config().unwrap(), options.server_name().unwrap()));
    let stream = TcpStream::connect(server.addr()).unwrap();
    let envelope = Envelope::parse("alice@example.org", &["bob@example.org"]).unwrap();
    let report = core_loop::deliver(stream, tls, envelope, b"Subject: hi\r\n\r\nover TLS\r\n").unwrap();
    assert_eq!(report.outcome, Outcome::Sent, "{report}");
    let recording = server.finish();
    recording.assert_complete();
    assert!(recording.tls_established);
    assert!(recording.sent_command("MAIL"));
}
