//! Issue 13, the CLI on the pool: `--count` over `--connections` survives a server that closes every few
//! messages, `--rate` holds at the server in every one-second window, `--max-per-connection` opens new
//! connections. Each runs the binary against [`common::MultiServer`] and checks what the server saw.

mod common;

use std::time::{Duration, Instant};

use common::{Fault, MESSAGE, MultiServer, both, json, run_stdin};

fn load(server: &MultiServer, extra: &[&str]) -> std::process::Output {
    let server = server.server();
    let mut args = vec!["--server", &server, "--tls", "none", "--to", "bob@example.org", "--json"];
    args.extend_from_slice(extra);
    args.push("-");
    run_stdin(&args, MESSAGE)
}

fn totals(v: &serde_json::Value) -> [u64; 5] {
    ["requested", "sent", "rejected", "unknown", "not_attempted"]
        .map(|k| v[k].as_u64().unwrap_or_else(|| panic!("no {k}: {v}")))
}

#[test]
fn a_server_that_sends_421_after_every_10th_message_gets_all_100() {
    let server = MultiServer::every(&["PIPELINING"], Fault::Close421After(10));
    let out = load(&server, &["--count", "100", "--connections", "4"]);
    let v = json(&out);
    assert_eq!(totals(&v), [100, 100, 0, 0, 0], "{v}");
    assert_eq!(out.status.code(), Some(0), "{}", both(&out));
    let conns = server.connections();
    // Every message reached its end of data exactly once: none lost, none sent twice.
    assert_eq!(conns.iter().map(|c| c.data_ends).sum::<usize>(), 100, "{conns:?}");
    assert!(conns.iter().all(|c| c.data_ends <= 10), "{conns:?}");
    assert!(conns.len() >= 10, "{} connections", conns.len());
}

#[test]
fn a_server_that_answers_the_11th_mail_with_421_gets_all_100() {
    let server = MultiServer::every(&["PIPELINING"], Fault::Reply421AtMail(11));
    let out = load(&server, &["--count", "100", "--connections", "4"]);
    let v = json(&out);
    assert_eq!(totals(&v), [100, 100, 0, 0, 0], "{v}");
    assert_eq!(out.status.code(), Some(0), "{}", both(&out));
    // The copies refused with the 421 went again on new connections, and the report says so.
    assert_eq!(v["error"]["kind"], "rejected", "{v}");
    assert!(v["error"]["message"].as_str().unwrap().contains("421 4.3.2"), "{v}");
    let conns = server.connections();
    assert_eq!(conns.iter().map(|c| c.data_ends).sum::<usize>(), 100, "{conns:?}");
}

#[test]
fn the_rate_holds_at_the_server_in_every_second() {
    let server = MultiServer::every(&["PIPELINING"], Fault::None);
    let started = Instant::now();
    let out = load(&server, &["--count", "200", "--connections", "4", "--rate", "100"]);
    let took = started.elapsed();
    let v = json(&out);
    assert_eq!(totals(&v), [200, 200, 0, 0, 0], "{v}");
    let mut mails: Vec<Instant> = server.connections().iter().flat_map(|c| c.mail_times.clone()).collect();
    mails.sort();
    assert_eq!(mails.len(), 200);
    // 200 at 100 a second: the last starts at least 1.99 s after the first.
    assert!(mails[199] - mails[0] >= Duration::from_millis(1990), "{:?}", mails[199] - mails[0]);
    assert!(took >= Duration::from_millis(1900), "{took:?}");
    // No one-second window at the server holds more than 100 MAIL commands.
    for (i, &start) in mails.iter().enumerate() {
        let held = mails[i..].iter().take_while(|&&t| t < start + Duration::from_secs(1)).count();
        assert!(held <= 100, "{held} MAIL commands in the second from message {i}");
    }
    assert!(server.connections().len() <= 4);
}

#[test]
fn max_per_connection_opens_new_connections() {
    let server = MultiServer::every(&["PIPELINING"], Fault::None);
    let out = load(&server, &["--count", "20", "--connections", "2", "--max-per-connection", "5"]);
    let v = json(&out);
    assert_eq!(totals(&v), [20, 20, 0, 0, 0], "{v}");
    assert_eq!(out.status.code(), Some(0), "{}", both(&out));
    let conns = server.connections();
    assert!(conns.len() >= 4, "{} connections", conns.len());
    for c in &conns {
        let mails = c.commands.iter().filter(|l| l.starts_with("MAIL")).count();
        assert!(mails <= 5, "{mails} MAIL on one connection: {:?}", c.commands);
        // Each connection ends with QUIT: at the limit, or when the pool closes.
        assert!(c.quit, "{:?}", c.commands);
    }
}

#[test]
fn the_servers_mailmax_is_followed_too() {
    let server = MultiServer::every(&["PIPELINING", "LIMITS MAILMAX=3"], Fault::None);
    let out = load(&server, &["--count", "10", "--connections", "1"]);
    let v = json(&out);
    assert_eq!(totals(&v), [10, 10, 0, 0, 0], "{v}");
    let conns = server.connections();
    assert_eq!(conns.len(), 4, "3 + 3 + 3 + 1");
    assert!(conns.iter().all(|c| c.commands.iter().filter(|l| l.starts_with("MAIL")).count() <= 3));
}
