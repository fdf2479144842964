//! Issue 10, the CLI's reports: per-recipient outcomes and exit statuses (item 6), the reply that decided
//! a message (7), errors that name their first cause (8), `--count` across lost connections (9), JSON on
//! every exit path (10) and QUIT after a refusal of smtp-send's own (16). Each runs the binary against
//! `smtp_testkit::scripted` or [`common::MultiServer`] and checks what the server received.

mod common;

use std::time::Duration;

use common::{Fault, MESSAGE, MultiServer, both, json, run, run_stdin, stderr, stdout};
use smtp_testkit::{Script, ScriptedServer};

fn addr(server: &ScriptedServer) -> String {
    format!("127.0.0.1:{}", server.port())
}

/// The greeting and an EHLO reply announcing `caps`.
fn greet(caps: &str) -> Script {
    let mut ehlo = String::from("250-mx.test\r\n");
    for c in caps.split(',').filter(|c| !c.is_empty()) {
        ehlo.push_str(&format!("250-{c}\r\n"));
    }
    ehlo.push_str("250 ENHANCEDSTATUSCODES\r\n");
    Script::new().send(b"220 mx.test ESMTP\r\n").on("EHLO", ehlo)
}

fn send(server: &str, extra: &[&str]) -> std::process::Output {
    let mut args = vec!["--server", server, "--tls", "none", "--json"];
    args.extend_from_slice(extra);
    args.push("-");
    run_stdin(&args, MESSAGE)
}

// ---- item 6: each recipient has its own outcome ----

#[test]
fn lmtp_eof_after_the_first_recipient_reply_is_unknown_exit_3() {
    let server = ScriptedServer::start(
        Script::new()
            .send(b"220 lmtp.test LMTP\r\n")
            .on("LHLO", b"250-lmtp.test\r\n250 PIPELINING\r\n")
            .on("MAIL", b"250 2.1.0 ok\r\n")
            .on("RCPT", b"250 2.1.5 ok\r\n")
            .on("RCPT", b"250 2.1.5 ok\r\n")
            .on("DATA", b"354 go ahead\r\n")
            .expect_data_end()
            .send(b"250 2.0.0 <bob@example.org> delivered\r\n")
            .close(),
    );
    let out = send(&addr(&server), &["--lmtp", "--to", "bob@example.org", "--to", "carol@example.org"]);
    server.finish();
    assert_eq!(out.status.code(), Some(3), "{}", both(&out));
    let v = json(&out);
    assert_eq!(v["status"], "unknown");
    let r = &v["recipients"];
    assert_eq!(r[0]["outcome"], "delivered");
    assert_eq!(r[0]["reply"]["code"], 250);
    assert_eq!(r[1]["outcome"], "unknown");
    assert_eq!(r[1]["accepted"], false);
    assert_eq!(r[1]["reply"], serde_json::Value::Null);
}

#[test]
fn recipients_rejected_temporarily_and_permanently() {
    let server = ScriptedServer::start(
        greet("PIPELINING")
            .on("MAIL", b"250 2.1.0 ok\r\n")
            .on("RCPT", b"250 2.1.5 ok\r\n")
            .on("RCPT", b"450 4.2.1 mailbox busy\r\n")
            .on("RCPT", b"550 5.1.1 no such user\r\n")
            .on("DATA", b"354 go ahead\r\n")
            .expect_data_end()
            .send(b"250 2.0.0 queued\r\n")
            .on("QUIT", b"221 2.0.0 bye\r\n"),
    );
    let out =
        send(&addr(&server), &["--to", "a@example.org", "--to", "b@example.org", "--to", "c@example.org"]);
    server.finish();
    assert_eq!(out.status.code(), Some(1), "{}", both(&out));
    let r = &json(&out)["recipients"];
    assert_eq!((&r[0]["outcome"], &r[0]["temporary"]), (&"delivered".into(), &false.into()));
    assert_eq!((&r[1]["outcome"], &r[1]["temporary"]), (&"rejected".into(), &true.into()));
    assert_eq!(r[1]["reply"]["code"], 450);
    assert_eq!((&r[2]["outcome"], &r[2]["temporary"]), (&"rejected".into(), &false.into()));
    assert_eq!(r[2]["reply"]["enhanced"], "5.1.1");
}

// ---- item 7: the reply that caused the failure ----

#[test]
fn pipelined_mail_refusal_is_the_reply_not_the_503s_after_it() {
    let script = || {
        greet("PIPELINING")
            .on("MAIL", b"550 5.7.1 sender refused\r\n")
            .on("RCPT", b"503 5.5.1 need MAIL\r\n")
            .on("DATA", b"503 5.5.1 need RCPT\r\n")
            .on("RSET", b"250 2.0.0 ok\r\n")
            .on("QUIT", b"221 2.0.0 bye\r\n")
    };
    let server = ScriptedServer::start(script());
    let out = send(&addr(&server), &["--to", "bob@example.org"]);
    server.finish();
    assert_eq!(out.status.code(), Some(2), "{}", both(&out));
    let v = json(&out);
    assert_eq!(v["reply"]["code"], 550, "{v}");
    assert_eq!(v["recipients"][0]["reply"]["code"], 550, "{v}");
    assert!(v["error"]["message"].as_str().unwrap().contains("550 5.7.1 sender refused"), "{v}");

    // The human output too.
    let server = ScriptedServer::start(script());
    let out =
        run_stdin(&["--server", &addr(&server), "--tls", "none", "--to", "bob@example.org", "-"], MESSAGE);
    server.finish();
    let text = stdout(&out);
    assert!(text.starts_with("rejected: 550 5.7.1 sender refused"), "{}", both(&out));
    assert!(!text.contains("503"), "{}", both(&out));
}

// ---- item 8: errors name their first cause, as sentences ----

fn assert_sentence(text: &str) {
    for debug in ["Session(", "Protocol(", "Some(", "{ ", "Refused(", "Misuse("] {
        assert!(!text.contains(debug), "a Debug string: {text}");
    }
}

#[test]
fn unsolicited_reply_names_itself_in_the_error_json_and_transcript() {
    let server =
        ScriptedServer::start(Script::new().send(b"220 mx.test ESMTP\r\n250 2.0.0 extra\r\n").read_to_eof());
    let out = send(&addr(&server), &["--transcript", "--to", "bob@example.org"]);
    server.finish();
    assert_eq!(out.status.code(), Some(2), "{}", both(&out));
    let v = json(&out);
    assert_eq!(v["status"], "error");
    assert_eq!(v["error"]["kind"], "protocol");
    let message = v["error"]["message"].as_str().unwrap();
    assert!(message.contains("250 2.0.0 extra") && message.contains("EHLO"), "{message}");
    assert!(!message.contains("session is closed"), "{message}");
    assert_sentence(message);
    assert_eq!(v["reply"]["code"], 250);
    assert!(stderr(&out).contains("S: 250 2.0.0 extra"), "{}", stderr(&out));
}

#[test]
fn reply_out_of_place_is_a_sentence_in_json_and_human_output() {
    let script = || {
        greet("")
            .on("MAIL", b"250 2.1.0 ok\r\n")
            .on("RCPT", b"250 2.1.5 ok\r\n")
            .on("DATA", b"250 2.0.0 what body?\r\n")
            .on("QUIT", b"221 2.0.0 bye\r\n")
    };
    let server = ScriptedServer::start(script());
    let out = send(&addr(&server), &["--to", "bob@example.org"]);
    server.finish();
    assert_eq!(out.status.code(), Some(2), "{}", both(&out));
    let v = json(&out);
    let message = v["error"]["message"].as_str().unwrap();
    assert!(message.contains("DATA") && message.contains("250 2.0.0 what body?"), "{message}");
    assert_sentence(message);
    assert_eq!(v["reply"]["code"], 250);

    let server = ScriptedServer::start(script());
    let out =
        run_stdin(&["--server", &addr(&server), "--tls", "none", "--to", "bob@example.org", "-"], MESSAGE);
    server.finish();
    assert_sentence(&both(&out));
    assert!(stderr(&out).contains("what body?"), "{}", both(&out));
}

#[test]
fn auth_refusal_puts_the_535_in_json_reply() {
    let server = ScriptedServer::start(
        greet("STARTTLS")
            .on("STARTTLS", b"220 2.0.0 go ahead\r\n")
            .starttls()
            .on("EHLO", b"250-mx.test\r\n250 AUTH PLAIN\r\n")
            .on("AUTH", b"535 5.7.8 authentication credentials invalid\r\n")
            .on("QUIT", b"221 2.0.0 bye\r\n"),
    );
    let ca = server.ca_pem_path().to_str().unwrap().to_owned();
    let out = common::run_env(
        &[
            "--server",
            &addr(&server),
            "--ca-file",
            &ca,
            "--user",
            "alice",
            "--password-env",
            "PW",
            "--to",
            "bob@example.org",
            "--json",
            "-",
        ],
        &[("PW", "wrong")],
        MESSAGE,
    );
    server.finish();
    assert_eq!(out.status.code(), Some(2), "{}", both(&out));
    let v = json(&out);
    assert_eq!(v["error"]["kind"], "auth");
    assert_eq!(v["reply"]["code"], 535, "{v}");
    assert_eq!(v["reply"]["enhanced"], "5.7.8");
    assert_sentence(v["error"]["message"].as_str().unwrap());
}

#[test]
fn a_421_between_messages_with_connections_names_the_421() {
    let server = MultiServer::start(&["PIPELINING"], vec![Fault::Close421After(1), Fault::Close421After(1)]);
    let out = run_stdin(
        &[
            "--server",
            &server.server(),
            "--tls",
            "none",
            "--to",
            "bob@example.org",
            "--count",
            "6",
            "--connections",
            "2",
            "--json",
            "-",
        ],
        MESSAGE,
    );
    let v = json(&out);
    let message = v["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("421 4.4.2 closing now"), "{v}");
    assert!(!message.contains("session is closed"), "{v}");
    assert_sentence(message);
    // Nothing lost: the two connections' other messages went over new ones.
    assert_eq!(v["sent"], 6, "{v}");
    assert_eq!(out.status.code(), Some(0), "{}", both(&out));
    let received: usize = server.connections().iter().map(|c| c.data_ends).sum();
    assert_eq!(received, 6);
}

// ---- item 9: --count carries on after a lost connection, and counts every message ----

fn load(server: &MultiServer, count: &str, connections: &str) -> std::process::Output {
    run_stdin(
        &[
            "--server",
            &server.server(),
            "--tls",
            "none",
            "--to",
            "bob@example.org",
            "--count",
            count,
            "--connections",
            connections,
            "--json",
            "-",
        ],
        MESSAGE,
    )
}

fn totals(v: &serde_json::Value) -> [u64; 5] {
    ["requested", "sent", "rejected", "unknown", "not_attempted"]
        .map(|k| v[k].as_u64().unwrap_or_else(|| panic!("no {k}: {v}")))
}

#[test]
fn count_421_at_message_50_of_100_reconnects_and_counts_all() {
    let server = MultiServer::start(&["PIPELINING"], vec![Fault::Reply421AtMail(50)]);
    let out = load(&server, "100", "1");
    let v = json(&out);
    let conns = server.connections();
    assert!(conns.len() >= 2, "no new connection: {v}");
    // Message 50 was refused with the 421 before any of it was sent: the new connection carries it.
    let [requested, sent, rejected, unknown, not_attempted] = totals(&v);
    assert_eq!(requested, 100);
    assert_eq!(sent + rejected + unknown + not_attempted, 100, "{v}");
    assert_eq!((sent, unknown, not_attempted), (100, 0, 0), "{v}");
    assert_eq!(conns.iter().map(|c| c.data_ends).sum::<usize>(), 100);
    assert!(v["error"]["message"].as_str().unwrap().contains("421 4.3.2"), "{v}");
    assert_eq!(out.status.code(), Some(0), "{}", both(&out));
}

#[test]
fn count_eof_after_dot_50_of_100_never_resends_the_unknown_one() {
    let server = MultiServer::start(&["PIPELINING"], vec![Fault::EofAfterDot(50)]);
    let out = load(&server, "100", "1");
    let v = json(&out);
    let conns = server.connections();
    assert_eq!(conns[0].data_ends, 50);
    let [requested, sent, rejected, unknown, not_attempted] = totals(&v);
    assert_eq!((requested, sent, rejected, unknown, not_attempted), (100, 99, 0, 1, 0), "{v}");
    // 100 bodies in all: message 50, whose outcome is unknown, was not sent again.
    assert_eq!(conns.iter().map(|c| c.data_ends).sum::<usize>(), 100, "{conns:?}");
    assert_eq!(out.status.code(), Some(3), "{}", both(&out));
}

#[test]
fn connections_reconnect_after_eof_and_421() {
    let server = MultiServer::start(&["PIPELINING"], vec![Fault::EofAfterDot(5), Fault::Reply421AtMail(3)]);
    let out = load(&server, "10", "2");
    let v = json(&out);
    let [requested, sent, rejected, unknown, not_attempted] = totals(&v);
    assert_eq!((requested, sent, rejected, unknown, not_attempted), (10, 9, 0, 1, 0), "{v}");
    assert_eq!(server.connections().iter().map(|c| c.data_ends).sum::<usize>(), 10);
    assert_eq!(out.status.code(), Some(3), "{}", both(&out));
}

#[test]
fn retries_are_bounded_and_the_rest_is_not_attempted() {
    // Every connection answers its first MAIL with 421: each copy goes on two connections (the pool sends a
    // message the server did not take again, once), and three copies failing in a row end the run.
    let faults = vec![Fault::Reply421AtMail(1); 10];
    let server = MultiServer::start(&["PIPELINING"], faults);
    let started = std::time::Instant::now();
    let out = load(&server, "5", "1");
    let v = json(&out);
    let [requested, sent, rejected, unknown, not_attempted] = totals(&v);
    assert_eq!((requested, sent, unknown), (5, 0, 0), "{v}");
    assert_eq!(rejected + not_attempted, 5, "{v}");
    assert_eq!(rejected, 3, "three copies in a row rejected, then none tried: {v}");
    assert_eq!(server.connections().len(), 6, "two connections for each copy");
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(out.status.code(), Some(2), "{}", both(&out));
}

// ---- item 10: --json on every exit path ----

#[test]
fn usage_errors_caught_by_the_parser_print_json() {
    for args in [
        &["--to", "b@x.test", "--count", "0", "--json"][..],
        &["--to", "b@x.test", "--tls", "sometimes", "--json"],
        &["--json", "--count", "3"],
        &["--json", "--to", "b@x.test", "--no-such-flag"],
    ] {
        let out = run(args);
        assert_eq!(out.status.code(), Some(64), "{args:?}: {}", both(&out));
        let v = json(&out);
        assert_eq!(v["status"], "error", "{args:?}");
        assert_eq!(v["error"]["kind"], "usage", "{args:?}");
        assert!(!v["error"]["message"].as_str().unwrap().is_empty());
    }
    // Without --json, only the usage text on stderr.
    let out = run(&["--to", "b@x.test", "--count", "0"]);
    assert_eq!(out.status.code(), Some(64));
    assert!(out.stdout.is_empty());
}

// ---- item 16: QUIT after smtp-send refuses a message itself ----

#[test]
fn refusals_after_ehlo_end_with_quit() {
    let big = {
        let mut m = MESSAGE.to_vec();
        m.extend(std::iter::repeat_n(b'x', 200));
        m.push(b'\n');
        m
    };
    let eight_bit = b"From: a@example.org\n\ncaf\xc3\xa9\n".to_vec();
    let utf8_header = b"From: a@example.org\nSubject: caf\xc3\xa9\n\nbody\n".to_vec();
    let binary = b"From: a@example.org\n\na\0b\n".to_vec();
    for (caps, message, extra, says, status) in [
        ("SIZE 100", big, &[][..], "at most 100", 2),
        ("", eight_bit, &[], "8BITMIME", 2),
        ("8BITMIME", utf8_header, &[], "SMTPUTF8", 2),
        ("8BITMIME,CHUNKING", binary, &[], "BINARYMIME", 65),
        ("", MESSAGE.to_vec(), &["--dsn-strict", "--dsn-notify", "failure"][..], "DSN", 2),
    ] {
        let server = ScriptedServer::start(greet(caps).on("QUIT", b"221 2.0.0 bye\r\n"));
        let server_addr = addr(&server);
        let mut args = vec!["--server", &server_addr, "--tls", "none", "--to", "bob@example.org", "--json"];
        args.extend_from_slice(extra);
        args.push("-");
        let out = run_stdin(&args, &message);
        let rec = server.join();
        assert!(rec.sent_command("QUIT"), "{caps}: no QUIT: {rec}\n{}", both(&out));
        assert!(!rec.sent_command("MAIL"), "{caps}: {rec}");
        rec.assert_complete();
        assert_eq!(out.status.code(), Some(status), "{caps}: {}", both(&out));
        let v = json(&out);
        assert_eq!(v["error"]["kind"], "refused", "{v}");
        assert!(v["error"]["message"].as_str().unwrap().contains(says), "{caps}: {v}");
    }
}

#[test]
fn refusals_after_ehlo_end_with_quit_on_every_concurrent_connection() {
    let server = MultiServer::start(&["SIZE 100", "PIPELINING"], vec![]);
    let mut big = MESSAGE.to_vec();
    big.extend(std::iter::repeat_n(b'x', 200));
    let out = run_stdin(
        &[
            "--server",
            &server.server(),
            "--tls",
            "none",
            "--to",
            "bob@example.org",
            "--count",
            "6",
            "--connections",
            "3",
            "--json",
            "-",
        ],
        &big,
    );
    let conns = server.connections();
    // The connections open at once; the first refusal stops the others before they take a copy.
    assert!((1..=3).contains(&conns.len()), "{}", both(&out));
    for c in &conns {
        assert!(c.quit, "no QUIT: {:?}", c.commands);
        assert!(!c.commands.iter().any(|l| l.starts_with("MAIL")), "{:?}", c.commands);
    }
    assert_eq!(out.status.code(), Some(2), "{}", both(&out));
    let v = json(&out);
    let [requested, sent, rejected, unknown, not_attempted] = totals(&v);
    assert_eq!((requested, sent, unknown), (6, 0, 0), "{v}");
    assert_eq!(rejected + not_attempted, 6, "{v}");
}
