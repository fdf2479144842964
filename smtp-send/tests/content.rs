//! Issue 10, the message: the envelope sender read from From:/Sender: by an RFC 5322 parser (item 11),
//! invalid UTF-8 in an address (12), UTF-8 headers and SMTPUTF8 (13), NUL octets and long lines and
//! BINARYMIME (14), and the declared SIZE (15). Each runs the binary against the built-in sink or
//! `smtp_testkit::scripted` and checks what the server received.

mod common;

use std::process::Output;

use common::{both, json, run_stdin, stdout};
use smtp_testkit::{Script, ScriptedServer};

/// Sends `message` to the built-in sink; the sink's report is on stdout.
fn to_sink(message: &[u8], extra: &[&str]) -> Output {
    let mut args = vec!["--to", "bob@example.org"];
    args.extend_from_slice(extra);
    args.push("-");
    run_stdin(&args, message)
}

/// Sends `message` to a server that must never be connected to; asserts it was not.
fn refused_before_connecting(message: &[u8], extra: &[&str]) -> Output {
    let server = ScriptedServer::start(Script::new().patience(std::time::Duration::from_millis(300)));
    let addr = format!("127.0.0.1:{}", server.port());
    let mut args = vec!["--server", &addr, "--tls", "none", "--to", "bob@example.org", "--json"];
    args.extend_from_slice(extra);
    args.push("-");
    let out = run_stdin(&args, message);
    assert_eq!(server.connections(), 0, "it connected: {}", both(&out));
    assert_eq!(out.status.code(), Some(65), "{}", both(&out));
    assert_eq!(json(&out)["error"]["kind"], "invalid_input");
    out
}

fn error_message(out: &Output) -> String {
    json(out)["error"]["message"].as_str().unwrap_or_default().to_owned()
}

// ---- item 11: From:/Sender: read by an RFC 5322 parser ----

#[test]
fn envelope_sender_is_never_taken_from_a_comment() {
    let out =
        to_sink(b"From: <alice@example.org> (on behalf of <ceo@bank.example>)\nSubject: x\n\nhi\n", &[]);
    assert_eq!(out.status.code(), Some(0), "{}", both(&out));
    let text = stdout(&out);
    assert!(text.contains("MAIL FROM:<alice@example.org>"), "{text}");
    assert!(!text.contains("MAIL FROM:<ceo@"), "{text}");
}

#[test]
fn address_followed_by_a_comment_is_valid() {
    let out = to_sink(b"From: a@b (Alice)\n\nhi\n", &[]);
    assert_eq!(out.status.code(), Some(0), "{}", both(&out));
    assert!(stdout(&out).contains("MAIL FROM:<a@b>"), "{}", both(&out));
}

#[test]
fn several_from_mailboxes_use_the_sender_field() {
    let out = to_sink(
        b"From: Alice <alice@example.org>, Bob <bob@example.org>\n\
          Sender: \"Carol (secretary)\" <carol@example.org>\n\nhi\n",
        &[],
    );
    assert_eq!(out.status.code(), Some(0), "{}", both(&out));
    assert!(stdout(&out).contains("MAIL FROM:<carol@example.org>"), "{}", both(&out));
}

#[test]
fn ambiguous_senders_exit_65_asking_for_from() {
    for message in [
        &b"From: alice@example.org, bob@example.org\n\nhi\n"[..],
        b"From: alice@example.org\nFrom: mallory@example.org\n\nhi\n",
        b"From: undisclosed:;\n\nhi\n",
        b"Subject: no sender\n\nhi\n",
    ] {
        let out = refused_before_connecting(message, &[]);
        assert!(error_message(&out).contains("--from"), "{}", both(&out));
    }
    // --from settles it.
    let out = to_sink(b"From: alice@example.org, bob@example.org\n\nhi\n", &["--from", "alice@example.org"]);
    assert_eq!(out.status.code(), Some(0), "{}", both(&out));
}

// ---- item 12: invalid UTF-8 in an address ----

#[test]
fn latin1_in_the_from_address_exits_65_before_connecting() {
    let out = refused_before_connecting(b"From: j\xf6rg@example.org\nSubject: x\n\nhi\n", &[]);
    let message = error_message(&out);
    assert!(message.contains("UTF-8") && message.contains("--from"), "{message}");
    assert!(!message.contains('\u{fffd}'), "{message}");
}

#[test]
fn latin1_in_an_address_argument_exits_65() {
    use std::os::unix::ffi::OsStrExt;
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_smtp-send"))
        .arg("--to")
        .arg(std::ffi::OsStr::from_bytes(b"j\xf6rg@example.org"))
        .args(["--json", "--from", "", "/dev/null"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(65), "{}", both(&out));
    assert_eq!(json(&out)["error"]["kind"], "invalid_input");
}

// ---- item 13: UTF-8 header fields need SMTPUTF8 ----

const UTF8_SUBJECT: &[u8] = b"From: alice@example.org\nSubject: caf\xc3\xa9\n\nhi\n";

#[test]
fn utf8_header_asks_for_smtputf8() {
    let out = to_sink(UTF8_SUBJECT, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", both(&out));
    let text = stdout(&out);
    let mail = text.lines().find(|l| l.starts_with("MAIL FROM:")).unwrap();
    assert!(mail.contains("SMTPUTF8"), "{mail}");
}

#[test]
fn utf8_header_to_a_server_without_smtputf8_is_refused_before_mail() {
    let server = ScriptedServer::start(
        Script::new()
            .send(b"220 mx.test ESMTP\r\n")
            .on("EHLO", b"250-mx.test\r\n250-8BITMIME\r\n250 PIPELINING\r\n")
            .on("QUIT", b"221 2.0.0 bye\r\n"),
    );
    let addr = format!("127.0.0.1:{}", server.port());
    let out = run_stdin(
        &["--server", &addr, "--tls", "none", "--to", "bob@example.org", "--json", "-"],
        UTF8_SUBJECT,
    );
    let rec = server.finish();
    assert!(!rec.sent_command("MAIL"), "{rec}");
    assert_eq!(out.status.code(), Some(2), "{}", both(&out));
    let message = error_message(&out);
    assert!(message.contains("SMTPUTF8") && message.contains("Subject"), "{message}");
}

// ---- item 14: NUL octets and long lines need BINARYMIME ----

fn binary_server(caps: &str, body_len: usize) -> ScriptedServer {
    let ehlo = format!("250-mx.test\r\n250-{caps}\r\n250 8BITMIME\r\n");
    ScriptedServer::start(
        Script::new()
            .send(b"220 mx.test ESMTP\r\n")
            .on("EHLO", ehlo)
            .on("MAIL", b"250 2.1.0 ok\r\n")
            .on("RCPT", b"250 2.1.5 ok\r\n")
            .expect_line("BDAT")
            .read_at_least(body_len)
            .send(b"250 2.0.0 queued\r\n")
            .on("QUIT", b"221 2.0.0 bye\r\n"),
    )
}

#[test]
fn nul_octets_go_as_binarymime_over_bdat() {
    let message = b"From: alice@example.org\nSubject: x\n\na\0b\nc\n";
    let server = binary_server("CHUNKING\r\n250-BINARYMIME", message.len());
    let addr = format!("127.0.0.1:{}", server.port());
    let out =
        run_stdin(&["--server", &addr, "--tls", "none", "--to", "bob@example.org", "--json", "-"], message);
    let rec = server.finish();
    assert_eq!(out.status.code(), Some(0), "{}\n{rec}", both(&out));
    assert!(rec.commands[1].contains("BODY=BINARYMIME"), "{:?}", rec.commands);
    assert_eq!(rec.commands[3], format!("BDAT {} LAST", message.len()));
    // The octets unchanged: the NUL and the bare LFs.
    assert!(rec.contains(&message[..]), "{rec}");
}

#[test]
fn a_line_over_998_octets_goes_as_binarymime() {
    let mut message = b"From: alice@example.org\n\n".to_vec();
    message.extend(std::iter::repeat_n(b'x', 1500));
    message.push(b'\n');
    let server = binary_server("BINARYMIME\r\n250-CHUNKING", message.len());
    let addr = format!("127.0.0.1:{}", server.port());
    let out =
        run_stdin(&["--server", &addr, "--tls", "none", "--to", "bob@example.org", "--json", "-"], &message);
    let rec = server.finish();
    assert_eq!(out.status.code(), Some(0), "{}\n{rec}", both(&out));
    assert!(rec.commands[1].contains("BODY=BINARYMIME"), "{:?}", rec.commands);
}

#[test]
fn binary_without_binarymime_is_refused_naming_both_sides() {
    for (caps, lacks) in
        [("CHUNKING", "BINARYMIME"), ("BINARYMIME", "CHUNKING"), ("PIPELINING", "BINARYMIME and CHUNKING")]
    {
        let server = ScriptedServer::start(
            Script::new()
                .send(b"220 mx.test ESMTP\r\n")
                .on("EHLO", format!("250-mx.test\r\n250 {caps}\r\n"))
                .on("QUIT", b"221 2.0.0 bye\r\n"),
        );
        let addr = format!("127.0.0.1:{}", server.port());
        let out = run_stdin(
            &["--server", &addr, "--tls", "none", "--to", "bob@example.org", "--json", "-"],
            b"From: alice@example.org\n\na\0b\n",
        );
        let rec = server.finish();
        assert!(!rec.sent_command("MAIL") && !rec.sent_command("DATA"), "{rec}");
        assert_eq!(out.status.code(), Some(65), "{caps}: {}", both(&out));
        let message = error_message(&out);
        assert!(message.contains("NUL"), "{message}");
        assert!(message.contains(&format!("does not offer {lacks}")), "{message}");
    }
}

#[test]
fn binary_with_chunking_never_is_refused_before_connecting() {
    let out = refused_before_connecting(b"From: alice@example.org\n\na\0b\n", &["--chunking", "never"]);
    let message = error_message(&out);
    assert!(message.contains("BINARYMIME") && message.contains("--chunking never"), "{message}");
}

#[test]
fn the_builtin_sink_takes_binarymime() {
    let out = to_sink(b"From: alice@example.org\n\na\0b\n", &[]);
    assert_eq!(out.status.code(), Some(0), "{}", both(&out));
    let text = stdout(&out);
    assert!(text.contains("BODY=BINARYMIME") && text.contains(", BDAT)"), "{text}");
}

// ---- item 15: SIZE is never below what is sent ----

#[test]
fn size_counts_the_crlf_data_appends() {
    // 84 octets, CRLF line ends, no line end at the end: DATA sends 86.
    let mut message = b"From: a@example.org\r\nSubject: size\r\n\r\n".to_vec();
    message.extend(std::iter::repeat_n(b'x', 84 - message.len()));
    assert_eq!(message.len(), 84);
    let server = ScriptedServer::start(
        Script::new()
            .send(b"220 mx.test ESMTP\r\n")
            .on("EHLO", b"250-mx.test\r\n250 SIZE 1000000\r\n")
            .on("MAIL", b"250 2.1.0 ok\r\n")
            .on("RCPT", b"250 2.1.5 ok\r\n")
            .on("DATA", b"354 go ahead\r\n")
            .expect_data_end()
            .send(b"250 2.0.0 queued\r\n")
            .on("QUIT", b"221 2.0.0 bye\r\n"),
    );
    let addr = format!("127.0.0.1:{}", server.port());
    let out = run_stdin(&["--server", &addr, "--tls", "none", "--to", "bob@example.org", "-"], &message);
    let rec = server.finish();
    assert_eq!(out.status.code(), Some(0), "{}", both(&out));
    let content = smtp_proto::internal::unstuff(&rec.data[0]).expect("a DATA stream");
    assert_eq!(content.len(), 86);
    assert!(rec.commands[1].ends_with(" SIZE=86"), "{:?}", rec.commands);
}
