//! End-to-end tests of the `smtp-send` binary: the exit statuses, the JSON shape, refusals before any
//! connection, the built-in sink, and (ignored unless real servers are installed) smtp-sink and aiosmtpd.

use std::io::Write;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

fn hello() -> String {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples/hello.eml");
    p.to_str().unwrap().to_owned()
}

fn run(args: &[&str]) -> Output {
    run_env(args, &[])
}

fn run_env(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_smtp-send"));
    c.args(args);
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().expect("run smtp-send")
}

fn run_stdin(args: &[&str], stdin: &[u8]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_smtp-send"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    child.wait_with_output().unwrap()
}

fn json(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)))
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A listener that counts connections, to prove nothing was sent.
fn counting_listener() -> (u16, Arc<AtomicUsize>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let n = Arc::new(AtomicUsize::new(0));
    let n2 = Arc::clone(&n);
    std::thread::spawn(move || {
        for s in l.incoming() {
            if s.is_ok() {
                n2.fetch_add(1, Ordering::SeqCst);
            }
        }
    });
    (port, n)
}

#[test]
fn builtin_sink_prints_what_it_received() {
    let out = run(&["--to", "bob@example.org", &hello()]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("received by the built-in sink"), "{stdout}");
    assert!(stdout.contains("MAIL FROM:<alice@example.org>") && stdout.contains("RCPT TO:<bob@example.org>"));
    assert!(stdout.contains("Subject: Hello from smtp-send"));
}

#[test]
fn json_shape() {
    let out = run(&["--to", "bob@example.org", "--to", "carol@example.org", "--json", &hello()]);
    assert_eq!(out.status.code(), Some(0));
    let v = json(&out);
    assert_eq!(v["status"], "sent");
    assert_eq!(v["reply"]["code"], 250);
    assert_eq!(v["reply"]["enhanced"], "2.0.0");
    assert!(v["reply"]["text"].as_str().unwrap().starts_with("Ok"));
    assert_eq!(v["recipients"].as_array().unwrap().len(), 2);
    assert_eq!(v["recipients"][1]["address"], "carol@example.org");
    assert_eq!(v["recipients"][1]["accepted"], true);
    assert_eq!(v["recipients"][1]["reply"]["code"], 250);
    assert_eq!(v["warnings"], serde_json::json!([]));
    assert_eq!(v["error"], serde_json::Value::Null);
    assert!(v.get("messages").is_none(), "totals only with --count/--connections");
}

#[test]
fn stdin_null_reverse_path_and_data() {
    let out = run_stdin(
        &["--to", "bob@example.org", "--from", "", "--chunking", "never", "-"],
        b"Subject: x\n\n.dot\n",
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("MAIL FROM:<>"), "{stdout}");
    assert!(stdout.contains("\n.dot\r\n") && !stdout.contains("BDAT"), "{stdout}");
}

#[test]
fn injection_in_any_field_is_65_and_nothing_is_sent() {
    let (port, connections) = counting_listener();
    let server = format!("127.0.0.1:{port}");
    // (A NUL cannot reach a program through its arguments; the core refuses it too: tests/commands.rs.)
    for bad in ["bob@example.org\r\nRSET", "bob@example.org>\nDATA", "a@b\x01c"] {
        let out = run(&["--server", &server, "--to", bad, "--json", &hello()]);
        assert_eq!(out.status.code(), Some(65), "{bad:?}");
        assert_eq!(json(&out)["error"]["kind"], "invalid_input");
    }
    for (flag, bad) in [("--from", "a@x.test\r\n"), ("--ehlo", "me\r\nRSET"), ("--dsn-envid", "a\r\nb")] {
        let out = run(&["--server", &server, "--to", "b@x.test", flag, bad, &hello()]);
        assert_eq!(out.status.code(), Some(65), "{flag} {bad:?}");
    }
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(connections.load(Ordering::SeqCst), 0, "a connection was made");
}

#[test]
fn unreadable_message_is_65_usage_is_64() {
    let out = run(&["--to", "b@x.test", "/nonexistent/message.eml"]);
    assert_eq!(out.status.code(), Some(65));
    let out = run(&["--to", "b@x.test", "--tls", "sometimes", &hello()]);
    assert_eq!(out.status.code(), Some(64));
    let out = run(&[&hello()]);
    assert_eq!(out.status.code(), Some(64));
    let out = run(&["--to", "b@x.test", "--server", "mx", "--url", "smtp://mx", &hello()]);
    assert_eq!(out.status.code(), Some(64));
    let out = run(&["--help"]);
    assert_eq!(out.status.code(), Some(0));
}

#[test]
fn connection_refused_is_2_with_an_error() {
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let out = run(&["--server", &format!("127.0.0.1:{port}"), "--to", "b@x.test", "--json", &hello()]);
    assert_eq!(out.status.code(), Some(2));
    let v = json(&out);
    assert_eq!(v["status"], "error");
    assert_eq!(v["error"]["kind"], "connect");
}

#[test]
fn count_1000_on_one_connection() {
    let out = run(&["--to", "bob@example.org", "--count", "1000", "--json", &hello()]);
    assert_eq!(out.status.code(), Some(0));
    let v = json(&out);
    assert_eq!(v["messages"], 1000);
    let size = std::fs::read(hello()).unwrap().len() as u64;
    // CRLF-canonical size: the file has LF line endings.
    let lines = std::fs::read(hello()).unwrap().iter().filter(|&&b| b == b'\n').count() as u64;
    assert_eq!(v["bytes"].as_u64().unwrap(), 1000 * (size + lines));
    assert!(v["seconds"].as_f64().unwrap() > 0.0);
    assert!(v["messages_per_second"].as_f64().unwrap() > 0.0);
}

#[test]
fn connections_run_concurrently() {
    // --count is the total, shared by the connections.
    let out = run(&["--to", "bob@example.org", "--count", "80", "--connections", "4", "--json", &hello()]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(json(&out)["messages"], 80);
    assert_eq!(json(&out)["requested"], 80);
}

#[test]
fn transcript_goes_to_stderr() {
    let out = run(&["--to", "bob@example.org", "--transcript", "--quiet", &hello()]);
    assert_eq!(out.status.code(), Some(0));
    let err = stderr(&out);
    assert!(err.contains("C: EHLO") && err.contains("S: 250") && err.contains("C: QUIT"), "{err}");
    assert!(out.stdout.is_empty(), "--quiet");
}

// ---- against real servers (scripts/install-test-servers; cargo test -- --include-ignored) ----

#[test]
#[ignore = "needs real servers: scripts/install-test-servers, then cargo test -- --include-ignored"]
fn smtp_sink_outcomes() {
    use smtp_testkit::{SinkOptions, SmtpSink};
    let ok = SmtpSink::start(SinkOptions::default()).unwrap();
    let server = format!("127.0.0.1:{}", ok.port());
    let out = run(&["--server", &server, "--tls", "none", "--to", "bob@example.org", &hello()]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(ok.wait_for(1, Duration::from_secs(5)).len(), 1);

    // Dropped after the final dot, before the reply: unknown, 3.
    let drop =
        SmtpSink::start(SinkOptions { disconnect_after: Some("."), ..SinkOptions::default() }).unwrap();
    let server = format!("127.0.0.1:{}", drop.port());
    let out = run(&["--server", &server, "--to", "b@example.org", "--json", &hello()]);
    assert_eq!(out.status.code(), Some(3), "{}", String::from_utf8_lossy(&out.stdout));
    assert_eq!(json(&out)["status"], "unknown");

    // Every RCPT refused: rejected, 2.
    let refuse =
        SmtpSink::start(SinkOptions { hard_reject: Some("RCPT"), ..SinkOptions::default() }).unwrap();
    let server = format!("127.0.0.1:{}", refuse.port());
    let out = run(&["--server", &server, "--to", "b@example.org", "--json", &hello()]);
    assert_eq!(out.status.code(), Some(2));
    let v = json(&out);
    assert_eq!(v["status"], "rejected");
    assert_eq!(v["recipients"][0]["accepted"], false);

    // 421 after MAIL: 2.
    let busy =
        SmtpSink::start(SinkOptions { close_421_after: Some("MAIL"), ..SinkOptions::default() }).unwrap();
    let server = format!("127.0.0.1:{}", busy.port());
    let out = run(&["--server", &server, "--to", "b@example.org", &hello()]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
#[ignore = "needs real servers: scripts/install-test-servers, then cargo test -- --include-ignored"]
fn smtp_sink_load_1000_messages_one_connection() {
    use smtp_testkit::{SinkOptions, SmtpSink};
    let sink = SmtpSink::start(SinkOptions::default()).unwrap();
    let server = format!("127.0.0.1:{}", sink.port());
    let out = run(&["--server", &server, "--to", "bob@example.org", "--count", "1000", "--json", &hello()]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(json(&out)["messages"], 1000);
    assert_eq!(sink.wait_for(1000, Duration::from_secs(30)).len(), 1000);
}

#[test]
#[ignore = "needs real servers: scripts/install-test-servers, then cargo test -- --include-ignored"]
fn aiosmtpd_partial_auth_and_implicit_tls() {
    use smtp_testkit::{AioOptions, Aiosmtpd};
    let aio = Aiosmtpd::start(AioOptions {
        starttls: true,
        auth: Some(("alice".into(), "s3cret".into())),
        ..AioOptions::default()
    })
    .unwrap();
    let ca = aio.ca_pem_path().to_str().unwrap().to_owned();
    let server = format!("localhost:{}", aio.port());
    let auth = ["--server", &server, "--ca-file", &ca, "--user", "alice", "--password-env", "PW"];

    // STARTTLS (required by --user) + AUTH; a refused recipient: partial, 1, with its reply.
    let mut args = auth.to_vec();
    args.extend(["--to", "bob@example.org", "--to", "reject-me@example.org", "--json", "--transcript"]);
    let msg = hello();
    args.push(&msg);
    let out = run_env(&args, &[("PW", "s3cret")]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    // The dialogue is on stderr with the AUTH exchange redacted: neither the password nor its base64.
    let err = stderr(&out);
    assert!(err.contains("C: STARTTLS") && err.contains("C: AUTH PLAIN"), "{err}");
    assert!(!err.contains("s3cret") && !err.contains("AGFsaWNlAHMzY3JldA"), "{err}");
    let v = json(&out);
    assert_eq!(v["status"], "partial");
    assert_eq!(v["recipients"][0]["accepted"], true);
    assert_eq!(v["recipients"][1]["accepted"], false);
    assert_eq!(v["recipients"][1]["reply"]["code"], 550);
    assert_eq!(aio.wait_for(1, Duration::from_secs(5)).len(), 1);

    // A wrong password: 2, error kind auth.
    let mut args = auth.to_vec();
    args.extend(["--to", "bob@example.org", "--json", &msg]);
    let out = run_env(&args, &[("PW", "wrong")]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(json(&out)["error"]["kind"], "auth");

    // Implicit TLS from an smtps:// URL.
    let tls = Aiosmtpd::start(AioOptions { implicit_tls: true, ..AioOptions::default() }).unwrap();
    let url = format!("smtps://localhost:{}", tls.port());
    let out = run(&[
        "--url",
        &url,
        "--ca-file",
        tls.ca_pem_path().to_str().unwrap(),
        "--to",
        "bob@example.org",
        &msg,
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(tls.wait_for(1, Duration::from_secs(5)).len(), 1);
}
