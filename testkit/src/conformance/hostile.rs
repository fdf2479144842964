//! Hostile servers and faults (issue 7; `seed-and-security.md` Part 2): STARTTLS injection and stripping,
//! SMTP smuggling, command injection, resource exhaustion with the peak RSS measured, a disconnect or a 421
//! at every step, odd but legal servers. Each test checks the typed outcome and what the client sent (or
//! did not).

use std::time::{Duration, Instant};

use smtp_proto::address::{ForwardPath, HeloName, ReversePath};
use smtp_proto::command::{EnvId, OrigRecipient};
use smtp_proto::internal::unstuff;
use smtp_proto::reply::ParseError;
use smtp_proto::sasl::{Credentials, Mechanism};
use smtp_proto::{
    Envelope, Error as Core, Failure, Outcome, RecipientStatus, SendError, Timeouts, Timer, Unsendable,
};
use smtp_transport::{Error, Options};

use super::{
    AUTH_ALICE, Adapter, Body, EHLO_AUTH, EHLO_LOCKSTEP, EHLO_PIPELINING, EHLO_STARTTLS, GREETING, MIB,
    SHORT, assert_closed, client_form, code, envelope, exclusive, is_eof, options, peak_rss, reset_peak_rss,
    shared, tls_options,
};
use crate::scripted::{Recording, Script, ScriptedServer};

// ------------------------------------------------------------------------------------------------
// STARTTLS: injection, stripping, refusal

/// Replies smuggled into the packet of the 220 to STARTTLS (CVE-2011-0411 class; STLS-3). The client must
/// hang up without a handshake: nothing after `STARTTLS`, no credentials, no mail.
pub fn starttls_response_injection_aborts_before_tls_and_auth<A: Adapter>() {
    let _serial = shared();
    for injected in [
        "250 injected\r\n",
        "250-mx.evil\r\n250 AUTH PLAIN LOGIN\r\n",
        "535 5.7.8 fake\r\n",
        "2",    // the start of a reply
        "\r\n", // a stray line end
    ] {
        let server = ScriptedServer::start(
            Script::new()
                .send(GREETING)
                .on("EHLO client.test", EHLO_STARTTLS)
                .expect_line("STARTTLS")
                .send_then_starttls(format!("220 2.0.0 go ahead\r\n{injected}")),
        );
        let err = A::connect(&tls_options(&server)).expect_err("injection accepted");
        assert!(matches!(err, Error::Session(Core::StartTlsInjection)), "{injected:?}: {err:?}");
        let rec = server.join();
        assert!(!rec.tls_established, "{injected:?}: handshake done");
        assert!(rec.client_closed, "{injected:?}");
        assert_eq!(rec.plaintext, b"EHLO client.test\r\nSTARTTLS\r\n", "{injected:?}: {rec}");
        assert!(rec.tls.is_empty());
        assert!(!rec.sent_command("AUTH") && !rec.sent_command("MAIL"));
    }
}

/// The same attack split over two packets is not an injection the client can see before the handshake:
/// the stray bytes then break the handshake itself. Either way, no credentials and no mail.
pub fn starttls_stray_bytes_after_the_220_break_the_handshake<A: Adapter>() {
    let _serial = shared();
    let server = ScriptedServer::start(
        Script::new()
            .send(GREETING)
            .on("EHLO", EHLO_STARTTLS)
            .expect_line("STARTTLS")
            .send("220 2.0.0 go ahead\r\n")
            .sleep(Duration::from_millis(200))
            .send_then_starttls("250 injected\r\n"),
    );
    let err = A::connect(&tls_options(&server)).expect_err("accepted");
    assert!(matches!(err, Error::Tls(_) | Error::Session(Core::StartTlsInjection)), "{err:?}");
    let rec = server.join();
    assert!(!rec.tls_established);
    assert!(!rec.sent_command("AUTH") && !rec.sent_command("MAIL"), "{rec}");
}

/// STARTTLS stripped from the EHLO reply while TLS is required (STLS-1): QUIT, no AUTH although AUTH is
/// offered, no mail.
pub fn starttls_stripping_ends_the_session_without_auth<A: Adapter>() {
    let _serial = shared();
    let server = ScriptedServer::start(
        Script::new()
            .send(GREETING)
            .on("EHLO", "250-mx.test\r\n250-AUTH PLAIN LOGIN\r\n250 8BITMIME\r\n")
            .on("QUIT", "221 bye\r\n")
            .read_to_eof(),
    );
    let err = A::connect(&tls_options(&server)).expect_err("stripped session accepted");
    assert!(matches!(err, Error::Session(Core::TlsUnavailable(None))), "{err:?}");
    let rec = server.finish();
    assert_eq!(rec.plaintext, b"EHLO client.test\r\nQUIT\r\n");
    assert!(!rec.tls_established);
}

/// A 454 to STARTTLS when TLS is required (STLS-2): no plaintext fallback.
pub fn starttls_454_ends_the_session_without_auth<A: Adapter>() {
    let _serial = shared();
    let server = ScriptedServer::start(
        Script::new()
            .send(GREETING)
            .on("EHLO", EHLO_STARTTLS)
            .on("STARTTLS", "454 4.7.0 TLS not available\r\n")
            .on("QUIT", "221 bye\r\n")
            .read_to_eof(),
    );
    let err = A::connect(&tls_options(&server)).expect_err("accepted");
    match err {
        Error::Session(Core::TlsUnavailable(Some(reply))) => assert_eq!(reply.code(), 454),
        other => panic!("{other:?}"),
    }
    let rec = server.finish();
    assert_eq!(rec.plaintext, b"EHLO client.test\r\nSTARTTLS\r\nQUIT\r\n");
}

/// The good path, for contrast: credentials only inside TLS, after a fresh EHLO.
pub fn starttls_then_auth_inside_tls_only<A: Adapter>() {
    let _serial = shared();
    let server = ScriptedServer::start(
        Script::new()
            .send(GREETING)
            .on("EHLO", EHLO_STARTTLS)
            .on("STARTTLS", "220 2.0.0 go ahead\r\n")
            .starttls()
            .on("EHLO client.test", EHLO_AUTH)
            .on(AUTH_ALICE, "235 2.7.0 ok\r\n")
            .on("QUIT", "221 bye\r\n")
            .read_to_eof(),
    );
    let client = A::connect(&tls_options(&server)).expect("connect");
    assert!(client.is_tls());
    client.quit().expect("quit");
    let rec = server.finish();
    assert_eq!(rec.plaintext, b"EHLO client.test\r\nSTARTTLS\r\n");
    assert!(rec.tls.starts_with(b"EHLO client.test\r\nAUTH PLAIN "));
}

// ------------------------------------------------------------------------------------------------
// SMTP smuggling

/// Bodies that try to end DATA early on a lenient server (SEC Consult 2023, lettre RUSTSEC-2021-0069).
const SMUGGLING_BODIES: &[&[u8]] = &[
    b"a\n.\nMAIL FROM:<evil@example.org>\nRCPT TO:<victim@example.org>\nDATA\nspoofed\n.\n",
    b"a\r.\rMAIL FROM:<evil@example.org>\r",
    b"a\n.\r\nMAIL FROM:<evil@example.org>\r\n",
    b"a\r\n.\nMAIL FROM:<evil@example.org>\n",
    b"a\r\n.\r\nMAIL FROM:<evil@example.org>\r\n\r\n.\r\n",
    b".\r\n.\r\n.\r\n",
    b".\n.\r.\r\n..\r\n...\n",
    b"\r\n.\r\n",
    b".",
    b"no line end at the end.",
    b"ends with a lone dot\r\n.",
    b"ends with a bare CR\r",
    b"ends with CR and dot\r.",
    b"",
];

#[track_caller]
fn assert_one_end_of_data(wire: &[u8], body: &[u8]) {
    // The DATA stream starts a line: count terminators as a server scanning from the 354 would.
    let stream = [b"\r\n", wire].concat();
    let ends = stream.windows(5).filter(|w| w == b"\r\n.\r\n").count();
    assert_eq!(ends, 1, "body {body:?} went out as {wire:?}");
    assert!(stream.ends_with(b"\r\n.\r\n"), "{wire:?}");
    for (i, &b) in wire.iter().enumerate() {
        match b {
            b'\r' => assert_eq!(wire.get(i + 1), Some(&b'\n'), "bare CR in {wire:?}"),
            b'\n' => assert!(i > 0 && wire[i - 1] == b'\r', "bare LF in {wire:?}"),
            _ => {}
        }
    }
    assert_eq!(unstuff(wire).expect("strictly dot-stuffed"), client_form(body), "body {body:?}");
}

fn smuggling_session<A: Adapter>(trickle: bool) {
    let mut script = Script::new().send(GREETING).on("EHLO", EHLO_LOCKSTEP);
    for _ in SMUGGLING_BODIES {
        script = script
            .on("MAIL FROM:<alice@example.org>", "250 ok\r\n")
            .on("RCPT TO:<bob@example.org>", "250 ok\r\n")
            .on("DATA", "354 go ahead\r\n")
            .expect_data_end()
            .send("250 queued\r\n");
    }
    let server = ScriptedServer::start(script.on("QUIT", "221 bye\r\n").read_to_eof());
    let mut client = A::connect(&options(&server)).expect("connect");
    for body in SMUGGLING_BODIES {
        let report = if trickle {
            client.send(envelope(&["bob@example.org"]), Body::bytes(body).trickled().one_shot())
        } else {
            client.send(envelope(&["bob@example.org"]), Body::bytes(body))
        }
        .expect("send");
        assert_eq!(report.outcome, Outcome::Sent, "{body:?}: {report:?}");
    }
    client.quit().expect("quit");
    let rec = server.finish();
    assert_eq!(rec.data.len(), SMUGGLING_BODIES.len());
    for (wire, body) in rec.data.iter().zip(SMUGGLING_BODIES) {
        assert_one_end_of_data(wire, body);
    }
    // Nothing outside DATA but our own commands: every MAIL line is ours.
    let mails = rec.commands.iter().filter(|c| c.starts_with("MAIL")).count();
    assert_eq!(mails, SMUGGLING_BODIES.len());
}

/// Each smuggling body, read whole: one end of data, at the end of the DATA stream.
pub fn smuggling_bodies_have_one_end_of_data<A: Adapter>() {
    let _serial = shared();
    smuggling_session::<A>(false);
}

/// Each smuggling body read 1–3 octets at a time (a body that cannot seek): the stuffer keeps its state
/// across reads.
pub fn smuggling_bodies_split_into_1_to_3_byte_reads_have_one_end_of_data<A: Adapter>() {
    let _serial = shared();
    smuggling_session::<A>(true);
}

// ------------------------------------------------------------------------------------------------
// Command injection

const HOSTILE_ADDRESSES: &[&str] = &[
    "a@b.example\rc",
    "a@b.example\nc",
    "a@b.example\0c",
    "a@b.example\r\nRSET",
    "r@example.net>\r\nDATA\r\nFrom: spoof\r\n.\r\nMAIL FROM:<x@y.z>",
    "\"a\r\nb\"@c.example",
    "\"a\0b\"@c.example",
    "a@b.example> NOTIFY=NEVER",
    "a@b.example>\tSIZE=1",
];

/// CR, LF or NUL in any field that reaches a command line: nothing can be built, so nothing connects
/// (INJ-1, INJ-2, INJ-3, INJ-5). A listener counts connections.
pub fn injection_in_any_field_is_refused_before_connecting<A: Adapter>() {
    let _serial = shared();
    let server = ScriptedServer::start(Script::new().patience(Duration::from_secs(1)));
    let port = server.port();
    for bad in HOSTILE_ADDRESSES {
        assert!(ReversePath::parse(bad).is_err(), "reverse-path {bad:?}");
        assert!(ForwardPath::parse(bad).is_err(), "forward-path {bad:?}");
        assert!(Envelope::parse(bad, &["bob@example.org"]).is_err(), "{bad:?}");
        assert!(Envelope::parse("alice@example.org", &["bob@example.org", bad]).is_err(), "{bad:?}");
    }
    for bad in ["client.test\r\nMAIL FROM:<x@y.z>", "client\r", "client\n", "client\0", "[127.0.0.1]\r\n"] {
        assert!(HeloName::parse(bad).is_err(), "EHLO name {bad:?}");
    }
    for bad in ["a\r\nRSET", "a\rb", "a\nb", "a\0b"] {
        assert!(EnvId::new(bad).is_err(), "ENVID {bad:?}");
        assert!(OrigRecipient::rfc822(bad).is_err(), "ORCPT {bad:?}");
        assert!(OrigRecipient::new("rfc822\r\n", "a@b.c").is_err());
        assert!(
            Credentials::password(bad.replace(['\r', '\n'], "\0"), "pw").validate().is_err(),
            "AUTH user {bad:?}"
        );
    }
    // The URL form refuses them too, so a configuration cannot smuggle them in.
    for url in [
        format!("smtp://127.0.0.1:{port}?ehlo=client%0D%0AMAIL%20FROM:%3Cx@y.z%3E"),
        format!("smtp://127.0.0.1:{port}?ehlo=client%00"),
        format!("smtp://al%00ice:pw@127.0.0.1:{port}"),
        format!("smtp://alice:p%00w@127.0.0.1:{port}"),
    ] {
        assert!(Options::from_url(&url).is_err(), "{url}");
    }
    assert_eq!(server.connections(), 0);
}

/// A NUL in the AUTH user name set directly in [`Options`] (not through the URL): `connect` refuses the
/// credentials (`Error::Credentials`) before connecting, so not a byte reaches the wire.
pub fn nul_in_auth_user_name_never_reaches_the_wire<A: Adapter>() {
    // Refused before connecting: nobody ever knocks on the listener.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let mut o = Options::new("127.0.0.1", listener.local_addr().unwrap().port());
    o.session.tls = smtp_proto::TlsMode::None;
    o.session.credentials = Some(Credentials::password("alice\0admin", "s3cret"));
    o.session.allow_plaintext_auth = true;
    let err = A::connect(&o).expect_err("NUL user name accepted");
    assert!(matches!(err, Error::Credentials(_)), "{err:?}");
    assert_eq!(listener.accept().map(|_| ()).unwrap_err().kind(), std::io::ErrorKind::WouldBlock);
}

/// CR and LF are legal in a SASL user name (RFC 4616) and harmless: AUTH payloads are base64.
pub fn crlf_in_auth_user_name_stays_inside_base64<A: Adapter>() {
    let _serial = shared();
    let server = ScriptedServer::start(
        Script::new()
            .send(GREETING)
            .on("EHLO", EHLO_AUTH)
            .on("AUTH PLAIN ", "235 2.7.0 ok\r\n")
            .on("QUIT", "221 bye\r\n")
            .read_to_eof(),
    );
    let mut o = options(&server);
    let user = "alice\r\nMAIL FROM:<evil@example.org>";
    o.session.credentials = Some(Credentials::password(user, "s3cret"));
    o.session.allow_plaintext_auth = true;
    o.session.auth_mechanisms = vec![Mechanism::Plain];
    A::connect(&o).expect("connect").quit().expect("quit");
    let rec = server.finish();
    assert_eq!(rec.commands.len(), 3, "{:?}", rec.commands);
    let payload = rec.commands[1].strip_prefix("AUTH PLAIN ").expect("AUTH");
    assert_eq!(base64_decode(payload), format!("\0{user}\0s3cret").into_bytes());
    assert!(!rec.sent_command("MAIL"));
}

fn base64_decode(text: &str) -> Vec<u8> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = Vec::new();
    let (mut acc, mut bits) = (0u32, 0);
    for c in text.bytes().filter(|&c| c != b'=') {
        let v = ALPHABET.iter().position(|&a| a == c).expect("base64") as u32;
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    out
}

// ------------------------------------------------------------------------------------------------
// Resource exhaustion

/// Runs `script` (a hostile greeting) alone in the process and checks that connecting fails as `check`
/// says, with the peak RSS growing by less than 32 MiB.
fn exhaust<A: Adapter>(script: Script, check: impl FnOnce(&Error)) -> Recording {
    let _alone = exclusive();
    let server = ScriptedServer::start(script);
    reset_peak_rss();
    let before = peak_rss();
    let err = A::connect(&options(&server)).expect_err("hostile greeting accepted");
    let after = peak_rss();
    check(&err);
    let rec = server.finish();
    eprintln!(
        "peak RSS {:.1} MiB before, {:.1} MiB after; the server wrote {} bytes before the client hung up",
        before as f64 / MIB as f64,
        after as f64 / MIB as f64,
        rec.flooded
    );
    // Saturating: the kernel's RSS counters are per-CPU and synced lazily, so VmHWM may read a few KiB
    // lower on the second read.
    let growth = after.saturating_sub(before);
    assert!(growth < 32 * MIB, "peak RSS grew by {growth} bytes");
    rec
}

/// A reply line that never ends (100 MiB offered, streamed, never allocated): `LineTooLong` after the cap.
pub fn endless_reply_line_fails_with_bounded_memory<A: Adapter>() {
    let rec = exhaust::<A>(Script::new().send("220 ").flood("x", 100 * MIB).read_to_eof(), |err| {
        assert!(matches!(err, Error::Session(Core::Parse(ParseError::LineTooLong))), "{err:?}")
    });
    assert!(rec.client_closed && rec.flooded < 100 * MIB);
}

/// An endless multi-line reply (`220-x` forever): `TooManyLines` after the cap.
pub fn endless_multiline_reply_fails_with_bounded_memory<A: Adapter>() {
    let rec = exhaust::<A>(Script::new().flood("220-x\r\n", 100 * MIB).read_to_eof(), |err| {
        assert!(matches!(err, Error::Session(Core::Parse(ParseError::TooManyLines))), "{err:?}")
    });
    assert!(rec.client_closed && rec.flooded < 100 * MIB);
}

/// An endless reply to the final dot: the message may have been taken, so it is Unknown, never Sent.
pub fn endless_reply_to_the_final_dot_is_unknown<A: Adapter>() {
    let _serial = shared();
    let server = ScriptedServer::start(
        Script::new()
            .send(GREETING)
            .on("EHLO", EHLO_LOCKSTEP)
            .on("MAIL", "250 ok\r\n")
            .on("RCPT", "250 ok\r\n")
            .on("DATA", "354 go\r\n")
            .expect_data_end()
            .send("250-")
            .flood("y", 100 * MIB),
    );
    let mut client = A::connect(&options(&server)).expect("connect");
    let report = client.send(envelope(&["bob@example.org"]), Body::bytes(b"hi\r\n")).expect("report");
    assert_eq!(report.outcome, Outcome::Unknown, "{report:?}");
    assert_eq!(report.failure, Some(Failure::Session(Core::Parse(ParseError::LineTooLong))));
    assert_closed(client.send(envelope(&["bob@example.org"]), Body::bytes(b"x")));
    let rec = server.finish();
    assert!(rec.flooded < 100 * MIB);
}

/// A server that drips its greeting one byte every 50 ms: the 1 s greeting deadline counts from the
/// connection, not from the last byte (DOS-6).
pub fn dripped_greeting_times_out_at_the_greeting_deadline<A: Adapter>() {
    let _serial = shared();
    let greeting = "220-mx.test ".repeat(40) + "\r\n220 ready\r\n";
    let server =
        ScriptedServer::start(Script::new().drip(&greeting, Duration::from_millis(50)).read_to_eof());
    let mut o = options(&server);
    o.session.timeouts = Timeouts::uniform(SHORT);
    let start = Instant::now();
    let err = A::connect(&o).expect_err("dripped greeting accepted");
    let took = start.elapsed();
    assert!(matches!(err, Error::Session(Core::Timeout(Timer::Greeting))), "{err:?}");
    // The whole greeting takes 25 s to drip; a timer reset by each byte would never fire.
    assert!(took < Duration::from_secs(15), "took {took:?}");
    let rec = server.finish();
    assert!(rec.dripped < greeting.len() as u64);
}

/// The reply to the final dot dripped past the data-termination deadline: Unknown, Timeout(DataTermination).
pub fn dripped_final_reply_times_out_as_unknown<A: Adapter>() {
    let _serial = shared();
    let server = ScriptedServer::start(
        Script::new()
            .send(GREETING)
            .on("EHLO", EHLO_LOCKSTEP)
            .on("MAIL", "250 ok\r\n")
            .on("RCPT", "250 ok\r\n")
            .on("DATA", "354 go\r\n")
            .expect_data_end()
            .drip("250 2.0.0 queued as 12345 ".repeat(20) + "\r\n", Duration::from_millis(50))
            .read_to_eof(),
    );
    let mut o = options(&server);
    o.session.timeouts = Timeouts::uniform(SHORT);
    let mut client = A::connect(&o).expect("connect");
    let report = client.send(envelope(&["bob@example.org"]), Body::bytes(b"hi\r\n")).expect("report");
    assert_eq!(report.outcome, Outcome::Unknown, "{report:?}");
    assert_eq!(report.failure, Some(Failure::Session(Core::Timeout(Timer::DataTermination))));
    assert_eq!(report.recipients[0].status, RecipientStatus::Unknown);
    assert_closed(client.send(envelope(&["bob@example.org"]), Body::bytes(b"x")));
    server.finish();
}

// ------------------------------------------------------------------------------------------------
// Faults at every step

/// Where the fault strikes: instead of the reply to this step.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum At {
    Greeting,
    Ehlo,
    StartTls,
    Auth,
    Mail,
    Rcpt1,
    Rcpt2,
    Data,
    MidBody,
    FinalDot,
    AfterReply,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fault {
    /// The server closes the connection (no reply, no TLS close_notify).
    Disconnect,
    /// The server says `421` and waits for the client to hang up.
    Closing421,
}

const ALL_STEPS: [At; 11] = [
    At::Greeting,
    At::Ehlo,
    At::StartTls,
    At::Auth,
    At::Mail,
    At::Rcpt1,
    At::Rcpt2,
    At::Data,
    At::MidBody,
    At::FinalDot,
    At::AfterReply,
];

/// Body for the mid-body fault: far more than the socket buffers hold, generated as it is read.
const BIG_BODY: u64 = 16 * MIB;

/// The whole dialogue (STARTTLS, AUTH, a lock-step transaction for two recipients) with `fault` in place of
/// the reply at `at`.
fn fault_script(at: At, fault: Fault) -> Script {
    let strike = |s: Script| match fault {
        Fault::Disconnect => s.close(),
        Fault::Closing421 => s.send("421 4.3.2 shutting down\r\n").read_to_eof(),
    };
    let mut s = Script::new();
    if at == At::Greeting {
        return strike(s);
    }
    s = s.send(GREETING);
    // (the step whose reply the fault replaces, the command, the reply); `None`: never faulted here.
    let steps: [(Option<At>, &str, &str); 7] = [
        (Some(At::Ehlo), "EHLO client.test", EHLO_STARTTLS),
        (Some(At::StartTls), "STARTTLS", "220 2.0.0 go ahead\r\n"),
        (None, "EHLO client.test", EHLO_AUTH),
        (Some(At::Auth), AUTH_ALICE, "235 2.7.0 ok\r\n"),
        (Some(At::Mail), "MAIL FROM:<alice@example.org>", "250 ok\r\n"),
        (Some(At::Rcpt1), "RCPT TO:<bob@example.org>", "250 ok\r\n"),
        (Some(At::Rcpt2), "RCPT TO:<carol@example.org>", "250 ok\r\n"),
    ];
    for (step, expect, reply) in steps {
        s = s.expect_line(expect);
        if step == Some(at) {
            return strike(s);
        }
        s = s.send(reply);
        if step == Some(At::StartTls) {
            s = s.starttls();
        }
    }
    s = s.expect_line("DATA");
    if at == At::Data {
        return strike(s);
    }
    s = s.send("354 go ahead\r\n");
    if at == At::MidBody {
        return strike(s.read_at_least(64 * 1024));
    }
    s = s.expect_data_end();
    if at == At::FinalDot {
        return strike(s);
    }
    // A pause, so that the client has taken the 250 and gone idle when the fault comes.
    strike(s.send("250 2.0.0 queued\r\n").sleep(Duration::from_millis(200)))
}

/// What the session promises for each fault, checked on the driver's typed results.
fn check_fault<A: Adapter>(at: At, fault: Fault) {
    let ctx = format!("{fault:?} at {at:?}");
    let server = ScriptedServer::start(fault_script(at, fault));
    let options = tls_options(&server);
    let connected = A::connect(&options);
    if at <= At::Auth {
        let err = connected.expect_err(&ctx);
        match fault {
            Fault::Disconnect => assert!(is_eof(&err), "{ctx}: {err:?}"),
            Fault::Closing421 => match &err {
                Error::Session(Core::ServiceUnavailable(r)) => assert_eq!(r.code(), 421, "{ctx}"),
                other => panic!("{ctx}: {other:?}"),
            },
        }
        let rec = server.finish();
        // Credentials only ever inside TLS.
        assert!(!rec.sent_command("AUTH") || rec.tls_established, "{ctx}");
        assert!(!rec.sent_command("MAIL"), "{ctx}");
        return;
    }
    let mut client = connected.unwrap_or_else(|e| panic!("{ctx}: connect: {e:?}"));
    assert!(client.is_tls());
    let body = if at == At::MidBody {
        Body::generated(BIG_BODY)
    } else {
        Body::bytes("Subject: fault\r\n\r\nhello\r\n")
    };
    let to = envelope(&["bob@example.org", "carol@example.org"]);
    let mut report = client.send(to.clone(), body.one_shot()).expect(&ctx);
    if at == At::AfterReply {
        assert_eq!(report.outcome, Outcome::Sent, "{ctx}: {report:?}");
        if client.close_reason().is_some() {
            // The client read the fault with the 250 (a slow test machine): the session is over.
            assert_closed(client.send(to, Body::bytes(b"second\r\n")));
            server.finish();
            return;
        }
        // The fault comes while the session is idle; the next message meets it.
        report = client.send(to, Body::bytes(b"second\r\n")).expect(&ctx);
    }
    let eof = Failure::Session(Core::UnexpectedEof);
    match (at, fault) {
        (At::FinalDot, Fault::Disconnect) => {
            // The only place where the outcome is unknown: the dot went out, no reply came.
            assert_eq!(report.outcome, Outcome::Unknown, "{ctx}: {report:?}");
            assert_eq!(report.failure, Some(eof), "{ctx}");
            assert!(
                report.recipients.iter().all(|r| r.status == RecipientStatus::Unknown),
                "{ctx}: {report:?}"
            );
        }
        (_, Fault::Disconnect) => {
            assert_eq!(report.outcome, Outcome::Rejected, "{ctx}: {report:?}");
            assert_eq!(report.failure, Some(eof), "{ctx}");
            assert!(report.is_temporary(), "{ctx}: {report:?}");
        }
        (_, Fault::Closing421) => {
            assert_eq!(report.outcome, Outcome::Rejected, "{ctx}: {report:?}");
            assert!(report.is_temporary(), "{ctx}: {report:?}");
            let where_421 = match at {
                At::Mail | At::AfterReply => code(&report.mail_reply),
                At::Rcpt1 => code(&report.recipients[0].rcpt_reply),
                At::Rcpt2 => code(&report.recipients[1].rcpt_reply),
                At::Data => code(&report.data_reply),
                _ => code(&report.final_reply),
            };
            assert_eq!(where_421, Some(421), "{ctx}: {report:?}");
        }
    }
    assert!(client.close_reason().is_some(), "{ctx}");
    assert_closed(client.send(envelope(&["bob@example.org"]), Body::bytes(b"x")));
    let rec = server.finish();
    assert!(!rec.sent_command("AUTH") || rec.tls_established, "{ctx}");
}

/// The server closes the connection instead of each reply in turn (greeting, EHLO, STARTTLS, AUTH, MAIL,
/// each RCPT, DATA, mid-body, the final dot, after the 250): connecting fails with the connection's end, or
/// the message is rejected (temporary), Unknown only after the final dot; a later send is refused.
pub fn disconnect_at_every_step<A: Adapter>() {
    let _serial = shared();
    for at in ALL_STEPS {
        check_fault::<A>(at, Fault::Disconnect);
    }
}

/// A 421 instead of each reply in turn: connecting fails with the 421, or the message is rejected
/// (temporary) with the 421 in its reply slot; a later send is refused.
pub fn reply_421_at_every_step<A: Adapter>() {
    let _serial = shared();
    for at in ALL_STEPS {
        check_fault::<A>(at, Fault::Closing421);
    }
}

// ------------------------------------------------------------------------------------------------
// Partial and odd servers

/// One lock-step transaction with the given replies to MAIL, each RCPT and DATA; returns the server.
fn one_transaction(greeting: &str, ehlo: &str, rcpts: &[(&str, &str)], data: bool) -> Script {
    let mut s =
        Script::new().send(greeting).on("EHLO", ehlo).on("MAIL FROM:<alice@example.org>", "250 2.1.0 ok\r\n");
    for (to, reply) in rcpts {
        s = s.on(&format!("RCPT TO:<{to}>"), reply);
    }
    if data {
        s = s.on("DATA", "354 go ahead\r\n").expect_data_end().send("250 2.0.0 queued\r\n");
    }
    s.on("QUIT", "221 bye\r\n").read_to_eof()
}

/// 451, 550 and 552 to three of four recipients: sent to the one, each refusal with its status and reply.
pub fn some_recipients_refused_451_550_552<A: Adapter>() {
    let _serial = shared();
    let rcpts = [
        ("ok@example.org", "250 2.1.5 ok\r\n"),
        ("later@example.org", "451 4.3.0 try later\r\n"),
        ("nobody@example.org", "550 5.1.1 no such user\r\n"),
        ("full@example.org", "552 5.2.2 mailbox full\r\n"),
    ];
    let server = ScriptedServer::start(one_transaction(GREETING, EHLO_LOCKSTEP, &rcpts, true));
    let mut client = A::connect(&options(&server)).expect("connect");
    let to: Vec<&str> = rcpts.iter().map(|r| r.0).collect();
    let report = client.send(envelope(&to), Body::bytes(b"hi\r\n")).expect("send");
    assert_eq!(report.outcome, Outcome::Sent, "{report:?}");
    let statuses: Vec<RecipientStatus> = report.recipients.iter().map(|r| r.status).collect();
    assert_eq!(
        statuses,
        [
            RecipientStatus::Delivered,
            RecipientStatus::TemporaryFailure,
            RecipientStatus::PermanentFailure,
            RecipientStatus::PermanentFailure,
        ]
    );
    let codes: Vec<Option<u16>> = report.recipients.iter().map(|r| code(&r.rcpt_reply)).collect();
    assert_eq!(codes, [Some(250), Some(451), Some(550), Some(552)]);
    client.quit().expect("quit");
    let rec = server.finish();
    assert_eq!(rec.data, [b"hi\r\n.\r\n".to_vec()]);
}

/// All recipients refused while DATA was pipelined: the 554 to DATA ends the message, no body is sent.
pub fn all_recipients_refused_with_data_pipelined<A: Adapter>() {
    let _serial = shared();
    let server = ScriptedServer::start(
        Script::new()
            .send(GREETING)
            .on("EHLO", EHLO_PIPELINING)
            .expect_line("MAIL FROM:<alice@example.org>")
            .expect_line("RCPT TO:<bob@example.org>")
            .expect_line("RCPT TO:<carol@example.org>")
            .expect_line("DATA")
            .send("250 ok\r\n550 5.1.1 no\r\n550 5.1.1 no\r\n554 5.5.1 no valid recipients\r\n")
            .on("RSET", "250 ok\r\n")
            .on("QUIT", "221 bye\r\n")
            .read_to_eof(),
    );
    let mut client = A::connect(&options(&server)).expect("connect");
    let report = client
        .send(envelope(&["bob@example.org", "carol@example.org"]), Body::bytes(b"never sent\r\n"))
        .expect("report");
    assert_eq!(report.outcome, Outcome::Rejected, "{report:?}");
    assert_eq!(report.failure, Some(Failure::NoRecipientAccepted));
    assert_eq!(code(&report.data_reply), Some(554));
    client.quit().expect("quit");
    let rec = server.finish();
    assert!(!rec.contains(b"never sent"), "{rec}");
}

/// Same, but the server answers DATA with 354 anyway: the client ends DATA with a lone dot, no body.
pub fn all_recipients_refused_and_354_gets_an_empty_data<A: Adapter>() {
    let _serial = shared();
    let server = ScriptedServer::start(
        Script::new()
            .send(GREETING)
            .on("EHLO", EHLO_PIPELINING)
            .expect_line("MAIL")
            .expect_line("RCPT")
            .expect_line("DATA")
            .send("250 ok\r\n550 5.1.1 no\r\n354 go ahead\r\n")
            .expect_data_end()
            .send("554 5.5.1 no valid recipients\r\n")
            .on("QUIT", "221 bye\r\n")
            .read_to_eof(),
    );
    let mut client = A::connect(&options(&server)).expect("connect");
    let report = client.send(envelope(&["bob@example.org"]), Body::bytes(b"never sent\r\n")).expect("report");
    assert_eq!(report.outcome, Outcome::Rejected, "{report:?}");
    assert_eq!(report.failure, Some(Failure::NoRecipientAccepted));
    client.quit().expect("quit");
    let rec = server.finish();
    assert_eq!(rec.data, [b".\r\n".to_vec()]);
}

/// Replies that are only a code (`250` CRLF), legal and seen in the wild: a whole session works.
pub fn code_only_replies<A: Adapter>() {
    let _serial = shared();
    let server = ScriptedServer::start(
        Script::new()
            .send("220\r\n")
            .on("EHLO", "250\r\n")
            .on("MAIL", "250\r\n")
            .on("RCPT", "250\r\n")
            .on("DATA", "354\r\n")
            .expect_data_end()
            .send("250\r\n")
            .on("QUIT", "221\r\n")
            .read_to_eof(),
    );
    let mut client = A::connect(&options(&server)).expect("connect");
    let report = client.send(envelope(&["bob@example.org"]), Body::bytes(b"hi\r\n")).expect("send");
    assert_eq!(report.outcome, Outcome::Sent, "{report:?}");
    client.quit().expect("quit");
    server.finish();
}

/// Lowercase keywords and the old `AUTH=` form (pre-RFC 2554 servers): understood, so AUTH PLAIN is used,
/// SIZE is enforced and the transaction is pipelined.
pub fn lowercase_and_old_style_ehlo_keywords<A: Adapter>() {
    let _serial = shared();
    let server = ScriptedServer::start(
        Script::new()
            .send(GREETING)
            .on(
                "EHLO",
                "250-mx.test\r\n250-pipelining\r\n250-auth=login plain\r\n250-size 1000\r\n250 8bitmime\r\n",
            )
            .on(AUTH_ALICE, "235 ok\r\n")
            .expect_line("MAIL FROM:<alice@example.org>")
            .expect_line("RCPT TO:<bob@example.org>")
            .expect_line("DATA")
            .send("250 ok\r\n250 ok\r\n354 go\r\n")
            .expect_data_end()
            .send("250 queued\r\n")
            .on("QUIT", "221 bye\r\n")
            .read_to_eof(),
    );
    let mut o = options(&server);
    o.session.credentials = Some(Credentials::password("alice", "s3cret"));
    o.session.allow_plaintext_auth = true;
    o.session.auth_mechanisms = vec![Mechanism::Plain];
    let mut client = A::connect(&o).expect("connect");
    let caps = client.capabilities().expect("capabilities");
    assert!(caps.pipelining() && caps.eight_bit_mime());
    assert!(caps.auth(Mechanism::Login) && caps.auth(Mechanism::Plain));
    assert_eq!(caps.max_size(), Some(1000));
    let too_big = client.send(envelope(&["bob@example.org"]).size(5000), Body::bytes(b"x"));
    match too_big {
        Err(Error::Send(SendError::Unsendable(Unsendable::TooBig { size, limit }))) => {
            assert_eq!((size, limit), (5000, 1000))
        }
        other => panic!("{other:?}"),
    }
    let report = client.send(envelope(&["bob@example.org"]), Body::bytes(b"hi\r\n")).expect("send");
    assert_eq!(report.outcome, Outcome::Sent, "{report:?}");
    client.quit().expect("quit");
    server.finish();
}

/// A multi-line greeting.
pub fn greeting_in_several_lines<A: Adapter>() {
    let _serial = shared();
    let greeting = "220-mx.test ESMTP\r\n220-no unsolicited mail\r\n220 ready\r\n";
    let server = ScriptedServer::start(one_transaction(
        greeting,
        EHLO_LOCKSTEP,
        &[("bob@example.org", "250 ok\r\n")],
        true,
    ));
    let mut client = A::connect(&options(&server)).expect("connect");
    let report = client.send(envelope(&["bob@example.org"]), Body::bytes(b"hi\r\n")).expect("send");
    assert_eq!(report.outcome, Outcome::Sent);
    client.quit().expect("quit");
    server.finish();
}

/// EHLO refused (502): HELO, no extensions, a lock-step transaction.
pub fn ehlo_refused_falls_back_to_helo<A: Adapter>() {
    let _serial = shared();
    let server = ScriptedServer::start(
        Script::new()
            .send(GREETING)
            .on("EHLO client.test", "502 5.5.2 command not recognized\r\n")
            .on("HELO client.test", "250 mx.test\r\n")
            .on("MAIL FROM:<alice@example.org>", "250 ok\r\n")
            .on("RCPT TO:<bob@example.org>", "250 ok\r\n")
            .on("DATA", "354 go\r\n")
            .expect_data_end()
            .send("250 ok\r\n")
            .on("QUIT", "221 bye\r\n")
            .read_to_eof(),
    );
    let mut client = A::connect(&options(&server)).expect("connect");
    assert!(!client.capabilities().expect("capabilities").pipelining());
    let report = client.send(envelope(&["bob@example.org"]), Body::bytes(b"hi\r\n")).expect("send");
    assert_eq!(report.outcome, Outcome::Sent);
    client.quit().expect("quit");
    server.finish();
}

/// Every reply written one byte at a time, 1 ms apart.
pub fn replies_split_into_single_bytes<A: Adapter>() {
    let _serial = shared();
    let every = Duration::from_millis(1);
    let server = ScriptedServer::start(
        Script::new()
            .drip("220-mx.test\r\n220 ESMTP\r\n", every)
            .expect_line("EHLO")
            .drip(EHLO_PIPELINING, every)
            .expect_line("MAIL")
            .expect_line("RCPT")
            .expect_line("DATA")
            .drip("250 2.1.0 ok\r\n250 2.1.5 ok\r\n354 go\r\n", every)
            .expect_data_end()
            .drip("250 2.0.0 queued\r\n", every)
            .expect_line("QUIT")
            .drip("221 bye\r\n", every)
            .read_to_eof(),
    );
    let mut client = A::connect(&options(&server)).expect("connect");
    let report = client.send(envelope(&["bob@example.org"]), Body::bytes(b"hi\r\n")).expect("send");
    assert_eq!(report.outcome, Outcome::Sent, "{report:?}");
    client.quit().expect("quit");
    server.finish();
}

/// Several replies in one packet: the greeting's lines, then MAIL, both RCPTs and DATA answered at once.
pub fn several_replies_in_one_packet<A: Adapter>() {
    let _serial = shared();
    let server = ScriptedServer::start(
        Script::new()
            .send(GREETING)
            .on("EHLO", EHLO_PIPELINING)
            .expect_line("MAIL")
            .expect_line("RCPT TO:<bob@example.org>")
            .expect_line("RCPT TO:<carol@example.org>")
            .expect_line("DATA")
            .send("250 2.1.0 ok\r\n250 2.1.5 ok\r\n451 4.3.0 later\r\n354 go\r\n")
            .expect_data_end()
            .send("250 2.0.0 queued\r\n")
            .on("QUIT", "221 bye\r\n")
            .read_to_eof(),
    );
    let mut client = A::connect(&options(&server)).expect("connect");
    let report = client
        .send(envelope(&["bob@example.org", "carol@example.org"]), Body::bytes(b"hi\r\n"))
        .expect("send");
    assert_eq!(report.outcome, Outcome::Sent, "{report:?}");
    assert_eq!(report.recipients[0].status, RecipientStatus::Delivered);
    assert_eq!(report.recipients[1].status, RecipientStatus::TemporaryFailure);
    client.quit().expect("quit");
    server.finish();
}
