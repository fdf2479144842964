//! The same error for the same fault, whatever the adapter (issue 11): a stalled write, a failed TLS
//! upgrade, a body reader error, a peer that vanishes in the middle of the body.

use std::io::ErrorKind;
use std::time::Duration;

use smtp_proto::{Error as Core, Failure, Outcome, Timer, TlsMode};
use smtp_transport::Error;

use super::{
    Adapter, Body, EHLO_PIPELINING, EHLO_STARTTLS, GREETING, MIB, assert_closed, envelope, options, other_ca,
    shared, tls_options, to_the_body,
};
use crate::scripted::{Gate, Script, ScriptedServer};

/// Far more than the socket buffers on both sides hold.
const BIG: u64 = 16 * MIB;
/// The data-block timeout in the stall tests.
const DATA_BLOCK: Duration = Duration::from_secs(1);

/// What every stalled write must come to: the message rejected, the session ended, both by
/// `Timeout(DataBlock)`.
#[track_caller]
fn assert_stalled_as_a_data_block<A: Adapter>(client: &mut A, report: smtp_proto::MessageReport) {
    let stalled = Core::Timeout(Timer::DataBlock);
    assert_eq!(report.outcome, Outcome::Rejected, "{report:?}");
    assert_eq!(report.failure, Some(Failure::Session(stalled.clone())), "{report:?}");
    assert!(report.is_temporary(), "{report:?}");
    match client.close_reason() {
        Some(Error::Session(e)) => assert_eq!(*e, stalled),
        other => panic!("close reason {other:?}"),
    }
    assert_closed(client.send(envelope(&["bob@example.org"]), Body::bytes("x\r\n")));
}

/// The server stops reading in the middle of the body, and says nothing (until the client has given up):
/// the write stalls, and the data-block deadline (1 s here, every other one 10 s) ends the session as
/// `Timeout(DataBlock)`.
pub fn a_stalled_body_write_times_out_as_a_data_block<A: Adapter>() {
    let _serial = shared();
    let gate = Gate::new();
    let server =
        ScriptedServer::start(to_the_body(EHLO_PIPELINING).read_at_least(64 * 1024).hold_until(&gate));
    let mut o = options(&server);
    o.session.timeouts.data_block = DATA_BLOCK;
    let mut client = A::connect(&o).expect("connect");
    let report =
        client.send(envelope(&["bob@example.org"]), Body::generated(BIG).one_shot()).expect("report");
    gate.open();
    assert_stalled_as_a_data_block(&mut client, report);
    drop(client);
    server.finish();
}

/// The same with BDAT: the server stops reading in the middle of a chunk.
pub fn a_stalled_bdat_chunk_times_out_as_a_data_block<A: Adapter>() {
    let _serial = shared();
    let gate = Gate::new();
    let server = ScriptedServer::start(
        Script::new()
            .send(GREETING)
            .on("EHLO", "250-mx.test\r\n250-CHUNKING\r\n250 8BITMIME\r\n")
            .on("MAIL", "250 ok\r\n")
            .on("RCPT", "250 ok\r\n")
            .read_at_least(64 * 1024)
            .hold_until(&gate),
    );
    let mut o = options(&server);
    o.session.timeouts.data_block = DATA_BLOCK;
    let mut client = A::connect(&o).expect("connect");
    let report =
        client.send(envelope(&["bob@example.org"]), Body::generated(BIG).one_shot()).expect("report");
    gate.open();
    assert_stalled_as_a_data_block(&mut client, report);
    drop(client);
    server.finish();
}

/// The STARTTLS handshake fails, because the server answers the ClientHello with plaintext or presents a
/// certificate the client does not trust: `Error::Tls` either way, and no AUTH or mail.
pub fn a_failed_starttls_handshake_is_a_tls_error<A: Adapter>() {
    let _serial = shared();
    let upgrade =
        || Script::new().send(GREETING).on("EHLO", EHLO_STARTTLS).on("STARTTLS", "220 go ahead\r\n");
    let junk = upgrade().read_at_least(5).send("HTTP/1.1 400 Bad Request\r\n\r\n").read_to_eof();
    let server = ScriptedServer::start(junk);
    let err = A::connect(&tls_options(&server)).expect_err("a session over junk");
    assert!(matches!(err, Error::Tls(_)), "{err:?}");
    let rec = server.finish();
    assert!(!rec.sent_command("AUTH") && !rec.sent_command("MAIL"), "{rec}");

    let server = ScriptedServer::start(upgrade().starttls());
    let (_dir, untrusted) = other_ca();
    let mut o = tls_options(&server);
    o.ca_file = Some(untrusted);
    let err = A::connect(&o).expect_err("a session with an untrusted certificate");
    assert!(matches!(err, Error::Tls(_)), "{err:?}");
    let rec = server.join();
    assert!(!rec.tls_established && !rec.sent_command("AUTH"), "{rec}");
}

/// The implicit-TLS handshake fails: the server speaks plaintext SMTP instead. `Error::Tls`.
pub fn a_failed_implicit_tls_handshake_is_a_tls_error<A: Adapter>() {
    let _serial = shared();
    let server = ScriptedServer::start(Script::new().send(GREETING).read_to_eof());
    let mut o = options(&server);
    o.session.tls = TlsMode::Implicit;
    o.ca_file = Some(server.ca_pem_path().to_owned());
    let err = A::connect(&o).expect_err("a session over plaintext");
    assert!(matches!(err, Error::Tls(_)), "{err:?}");
    server.finish();
}

/// Reading the body fails (at once, or after 100,000 octets; a body that can seek or one that cannot):
/// `Error::Body` with the reader's error, the session aborted (DATA cannot be cancelled), never a final
/// dot, and a later send refused.
pub fn a_body_reader_error_aborts_the_session_without_a_final_dot<A: Adapter>() {
    let _serial = shared();
    for (ok, seekable) in [(0, true), (100_000, true), (100_000, false)] {
        let ctx = format!("failing after {ok} octets, seekable: {seekable}");
        let server = ScriptedServer::start(to_the_body(EHLO_PIPELINING).read_to_eof());
        let mut client = A::connect(&options(&server)).expect("connect");
        let to = envelope(&["bob@example.org"]);
        let body = Body::failing_after(ok);
        let sent = if seekable { client.send(to, body) } else { client.send(to, body.one_shot()) };
        match sent {
            Err(Error::Body(e)) => assert_eq!(e.to_string(), "disk on fire", "{ctx}"),
            other => panic!("{ctx}: {other:?}"),
        }
        assert!(matches!(client.close_reason(), Some(Error::Session(Core::Aborted))), "{ctx}");
        assert_closed(client.send(envelope(&["bob@example.org"]), Body::bytes("x")));
        drop(client);
        let rec = server.finish();
        assert!(!rec.contains(b"\r\n.\r\n"), "{ctx}: an end of data was sent");
    }
}

/// The server resets the connection in the middle of the body: the message is rejected (temporary, the
/// connection's end as its failure), the session ends with the reset (`Io(ConnectionReset)`), a later
/// send is refused.
pub fn a_peer_vanishing_mid_body_rejects_the_message<A: Adapter>() {
    let _serial = shared();
    let server = ScriptedServer::start(to_the_body(EHLO_PIPELINING).read_at_least(64 * 1024).reset());
    let mut client = A::connect(&options(&server)).expect("connect");
    let report =
        client.send(envelope(&["bob@example.org"]), Body::generated(BIG).one_shot()).expect("report");
    assert_eq!(report.outcome, Outcome::Rejected, "{report:?}");
    assert_eq!(report.failure, Some(Failure::Session(Core::UnexpectedEof)), "{report:?}");
    assert!(report.is_temporary(), "{report:?}");
    let reason = client.close_reason().expect("a close reason");
    assert!(matches!(reason, Error::Io(e) if e.kind() == ErrorKind::ConnectionReset), "{reason:?}");
    assert_closed(client.send(envelope(&["bob@example.org"]), Body::bytes("x")));
    server.finish();
}

/// `?` in code returning `io::Result`: a session error keeps its meaning (`TimedOut` here).
pub fn errors_convert_for_question_mark_in_io_code<A: Adapter>() {
    fn io_context<A: Adapter>(o: &smtp_transport::Options) -> std::io::Result<()> {
        A::connect(o)?;
        Ok(())
    }
    let _serial = shared();
    let server = ScriptedServer::start(Script::new().read_to_eof());
    let mut o = options(&server);
    o.session.timeouts.greeting = Duration::from_millis(200);
    let e = io_context::<A>(&o).expect_err("times out");
    assert_eq!(e.kind(), ErrorKind::TimedOut);
    server.finish();
}
