//! `smtp-send --mx` end to end: a hickory DNS server on 127.0.0.1 (the testkit's) serving the test zone, and
//! MX hosts on 127.0.0.x, all on one port given with --mx-port. The JSON names the host per recipient; the
//! exit status follows the contract (0 all delivered, 1 some, 2 none, 3 unknown).

mod common;

use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener};
use std::time::Duration;

use common::{MESSAGE, both, json, run_stdin};
use smtp_testkit::dns::{DnsServer, Zone};
use smtp_testkit::tls_mx::{TlsMx, TlsMxMode};
use smtp_testkit::{SinkOptions, SmtpSink};

fn ip(last: u8) -> Ipv4Addr {
    Ipv4Addr::new(127, 0, 0, last)
}

/// A port free on every one of `hosts` (127.0.0.x) a moment ago.
fn common_port(hosts: &[u8]) -> u16 {
    for _ in 0..20 {
        let first = TcpListener::bind((ip(hosts[0]), 0)).expect("bind a loopback address");
        let port = first.local_addr().unwrap().port();
        if hosts[1..].iter().all(|&h| TcpListener::bind((ip(h), port)).is_ok()) {
            return port;
        }
    }
    panic!("no port free on all of {hosts:?}");
}

fn send_mx(dns: &DnsServer, port: u16, extra: &[&str]) -> std::process::Output {
    let (dns, port) = (dns.addr().to_string(), port.to_string());
    let mut args = vec!["--mx", "--dns", &dns, "--mx-port", &port, "--ehlo", "client.test", "--json"];
    args.extend_from_slice(extra);
    args.push("-");
    run_stdin(&args, MESSAGE)
}

#[test]
#[ignore = "needs real servers: scripts/install-test-servers, then cargo test -- --include-ignored"]
fn mx_delivers_each_domain_to_its_host_and_names_it_in_the_json() {
    let port = common_port(&[2, 3]);
    let sink = |h| {
        let listen = SocketAddr::new(IpAddr::V4(ip(h)), port);
        SmtpSink::start(SinkOptions { listen: Some(listen), ..SinkOptions::default() }).expect("smtp-sink")
    };
    let (one, two) = (sink(2), sink(3));
    let zone = Zone::new("test")
        .mx("one.test", 10, "mx.one.test")
        .a("mx.one.test", ip(2))
        // two.test has no MX: its A record is the implicit MX.
        .a("two.test", ip(3));
    let dns = DnsServer::start(zone).unwrap();
    let out = send_mx(&dns, port, &["--to", "a@one.test", "--to", "b@two.test"]);
    assert_eq!(out.status.code(), Some(0), "{}", both(&out));
    let v = json(&out);
    assert_eq!(v["status"], "sent");
    let recipients = v["recipients"].as_array().unwrap();
    assert_eq!(recipients[0]["host"], "mx.one.test");
    assert_eq!(recipients[1]["host"], "two.test");
    for r in recipients {
        assert_eq!(
            (r["outcome"].as_str(), r["reply"]["code"].as_u64()),
            (Some("delivered"), Some(250)),
            "{v}"
        );
    }
    assert_eq!(one.wait_for(1, Duration::from_secs(5))[0].recipients, ["a@one.test"]);
    assert_eq!(two.wait_for(1, Duration::from_secs(5))[0].recipients, ["b@two.test"]);
}

#[test]
fn servfail_is_a_temporary_failure_and_exit_status_2() {
    let dns = DnsServer::start(Zone::new("test").servfail("broken.test")).unwrap();
    let out = send_mx(&dns, 2525, &["--to", "bob@broken.test"]);
    assert_eq!(out.status.code(), Some(2), "{}", both(&out));
    let v = json(&out);
    assert_eq!(v["status"], "rejected");
    let r = &v["recipients"][0];
    assert_eq!((r["outcome"].as_str(), r["temporary"].as_bool()), (Some("rejected"), Some(true)), "{v}");
    assert_eq!(r["host"], serde_json::Value::Null);
    assert_eq!(v["error"]["kind"], "dns");
    assert!(v["error"]["message"].as_str().unwrap().contains("SERVFAIL"), "{v}");
}

#[test]
fn servfail_beside_a_delivered_domain_is_exit_status_1() {
    let port = common_port(&[5]);
    let server =
        TlsMx::start(SocketAddr::new(IpAddr::V4(ip(5)), port), "mx.good.test", TlsMxMode::SelfSigned)
            .unwrap();
    let zone = Zone::new("test")
        .mx("good.test", 10, "mx.good.test")
        .a("mx.good.test", ip(5))
        .servfail("broken.test");
    let dns = DnsServer::start(zone).unwrap();
    let out = send_mx(&dns, port, &["--to", "bob@good.test", "--to", "carol@broken.test"]);
    assert_eq!(out.status.code(), Some(1), "{}", both(&out));
    let v = json(&out);
    assert_eq!(v["status"], "partial");
    assert_eq!(v["recipients"][0]["host"], "mx.good.test");
    assert_eq!(v["recipients"][1]["temporary"], true);
    // The self-signed certificate did not stop the default policy: delivered over TLS.
    assert!(server.messages()[0].tls);
}

#[test]
fn verify_refuses_a_self_signed_mx() {
    let port = common_port(&[6]);
    let server =
        TlsMx::start(SocketAddr::new(IpAddr::V4(ip(6)), port), "mx.good.test", TlsMxMode::SelfSigned)
            .unwrap();
    let zone = Zone::new("test").mx("good.test", 10, "mx.good.test").a("mx.good.test", ip(6));
    let dns = DnsServer::start(zone).unwrap();
    let out = send_mx(&dns, port, &["--mx-tls", "verify", "--to", "bob@good.test"]);
    assert_eq!(out.status.code(), Some(2), "{}", both(&out));
    let v = json(&out);
    assert_eq!(v["error"]["kind"], "tls", "{v}");
    assert_eq!(v["recipients"][0]["host"], "mx.good.test");
    assert!(server.messages().is_empty());
}

#[test]
fn null_mx_is_a_permanent_failure_without_a_connection() {
    let port = common_port(&[9]);
    let trap = TcpListener::bind((ip(9), port)).unwrap();
    trap.set_nonblocking(true).unwrap();
    let dns = DnsServer::start(Zone::new("test").mx("nomail.test", 0, ".").a("nomail.test", ip(9))).unwrap();
    let out = send_mx(&dns, port, &["--to", "bob@nomail.test"]);
    assert_eq!(out.status.code(), Some(2), "{}", both(&out));
    let v = json(&out);
    assert_eq!(
        (v["recipients"][0]["temporary"].as_bool(), v["error"]["kind"].as_str()),
        (Some(false), Some("dns"))
    );
    assert!(v["error"]["message"].as_str().unwrap().contains("null MX"), "{v}");
    assert!(trap.accept().is_err(), "nothing connects to a null-MX domain");
}
