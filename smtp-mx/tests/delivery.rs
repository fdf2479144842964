//! Direct delivery against real servers on loopback addresses: a hickory DNS server on 127.0.0.1 serving the
//! test zone, `smtp-sink` instances (or the testkit's STARTTLS MX) on 127.0.0.2, 127.0.0.3, …, all on one
//! port, since an MX record names a host and never a port. Tests that need `smtp-sink` are `#[ignore]`d
//! like every interop test in the workspace (`scripts/test` runs them).

use std::io::{Cursor, ErrorKind};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener};
use std::time::Duration;

use smtp_mx::{
    Envelope, MxClient, MxConfig, MxReport, Options, Outcome, RecipientStatus, Security, TlsPolicy,
};
use smtp_testkit::dns::{DnsServer, Zone};
use smtp_testkit::tls_mx::{TlsMx, TlsMxMode};
use smtp_testkit::{SinkOptions, SmtpSink};

const BODY: &[u8] = b"Subject: direct\r\n\r\nStraight to the MX.\r\n";

fn ip(last: u8) -> Ipv4Addr {
    Ipv4Addr::new(127, 0, 0, last)
}

/// A port free on every one of `hosts` (127.0.0.x) a moment ago.
fn common_port(hosts: &[u8]) -> u16 {
    for _ in 0..20 {
        let first = TcpListener::bind((ip(hosts[0]), 0)).expect("bind a loopback address");
        let port = first.local_addr().unwrap().port();
        let free = hosts[1..].iter().all(|&h| TcpListener::bind((ip(h), port)).is_ok());
        if free {
            return port;
        }
    }
    panic!("no port free on all of {hosts:?}");
}

fn sink_at(host: u8, port: u16, opts: SinkOptions) -> SmtpSink {
    let listen = SocketAddr::new(IpAddr::V4(ip(host)), port);
    SmtpSink::start(SinkOptions { listen: Some(listen), ..opts }).expect("smtp-sink")
}

fn client(dns: &DnsServer, port: u16, tls: TlsPolicy) -> MxClient {
    let mut options = Options::new("unused", port);
    options.helo_name = Some("client.test".parse().unwrap());
    options.connect_timeout = Duration::from_secs(5);
    let mut config = MxConfig::default();
    config.port = port;
    config.tls = tls;
    MxClient::with_nameserver(options, config, dns.addr())
}

async fn send(mx: &MxClient, to: &[&str]) -> MxReport {
    let envelope = Envelope::parse("alice@sender.test", to).unwrap();
    mx.send(envelope, Cursor::new(BODY)).await.expect("the body is readable")
}

/// The (address, outcome) of each attempt of the report's only domain.
fn attempts(report: &MxReport) -> Vec<(IpAddr, bool, String)> {
    report.domains[0]
        .attempts
        .iter()
        .map(|a| (a.target.address, a.target.starttls, a.outcome.clone()))
        .collect()
}

#[tokio::test]
#[ignore = "needs smtp-sink (scripts/install-test-servers)"]
async fn preferred_mx_refusing_connections_passes_to_the_next() {
    let port = common_port(&[2, 3]);
    // Nothing listens on 127.0.0.2: its connections are refused.
    let next = sink_at(3, port, SinkOptions::default());
    let zone = Zone::new("test")
        .mx("refusing.test", 10, "mx1.refusing.test")
        .mx("refusing.test", 20, "mx2.refusing.test")
        .a("mx1.refusing.test", ip(2))
        .a("mx2.refusing.test", ip(3));
    let dns = DnsServer::start(zone).unwrap();
    let report = send(&client(&dns, port, TlsPolicy::May), &["bob@refusing.test"]).await;

    assert_eq!(report.message.outcome, Outcome::Sent, "{report}");
    let (result, route) = report.recipients().next().unwrap();
    assert_eq!(result.status, RecipientStatus::Delivered);
    assert_eq!(result.reply.as_ref().map(|r| r.code()), Some(250));
    assert_eq!(route.host.as_deref(), Some("mx2.refusing.test"));
    assert_eq!(route.address, Some(IpAddr::V4(ip(3))));
    let tried = attempts(&report);
    assert_eq!(tried.len(), 2, "{tried:?}");
    assert_eq!(tried[0].0, IpAddr::V4(ip(2)));
    assert!(tried[0].2.starts_with("connect failed"), "{tried:?}");
    let got = next.wait_for(1, Duration::from_secs(5));
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].recipients, ["bob@refusing.test"]);
    assert_eq!(got[0].body, b"Subject: direct\n\nStraight to the MX.\n");
}

#[tokio::test]
#[ignore = "needs smtp-sink (scripts/install-test-servers)"]
async fn preferred_mx_answering_421_at_the_greeting_passes_to_the_next() {
    let port = common_port(&[2, 3]);
    // smtp-sink -Q connect: 421 instead of the greeting.
    let busy = sink_at(2, port, SinkOptions { close_421_after: Some("connect"), ..SinkOptions::default() });
    let next = sink_at(3, port, SinkOptions::default());
    let zone = Zone::new("test")
        .mx("busy.test", 10, "mx1.busy.test")
        .mx("busy.test", 20, "mx2.busy.test")
        .a("mx1.busy.test", ip(2))
        .a("mx2.busy.test", ip(3));
    let dns = DnsServer::start(zone).unwrap();
    let report = send(&client(&dns, port, TlsPolicy::May), &["bob@busy.test"]).await;

    assert_eq!(report.message.outcome, Outcome::Sent, "{report}");
    let (_, route) = report.recipients().next().unwrap();
    assert_eq!(route.host.as_deref(), Some("mx2.busy.test"));
    let tried = attempts(&report);
    assert_eq!(tried[0].0, IpAddr::V4(ip(2)));
    assert!(tried[0].2.contains("421"), "{tried:?}");
    assert_eq!(next.wait_for(1, Duration::from_secs(5)).len(), 1);
    assert!(busy.messages().is_empty());
}

#[tokio::test]
#[ignore = "needs smtp-sink (scripts/install-test-servers)"]
async fn equal_preference_mx_hosts_both_get_mail_over_200_messages() {
    let port = common_port(&[2, 3]);
    let a = sink_at(2, port, SinkOptions::default());
    let b = sink_at(3, port, SinkOptions::default());
    let zone = Zone::new("test")
        .mx("equal.test", 10, "a.equal.test")
        .mx("equal.test", 10, "b.equal.test")
        .a("a.equal.test", ip(2))
        .a("b.equal.test", ip(3));
    let dns = DnsServer::start(zone).unwrap();
    let mx = client(&dns, port, TlsPolicy::May);
    let (mut via_a, mut via_b) = (0, 0);
    for _ in 0..200 {
        let report = send(&mx, &["bob@equal.test"]).await;
        assert_eq!(report.message.outcome, Outcome::Sent, "{report}");
        match report.routes[0].host.as_deref() {
            Some("a.equal.test") => via_a += 1,
            Some("b.equal.test") => via_b += 1,
            other => panic!("{other:?}"),
        }
    }
    let (got_a, got_b) =
        (a.wait_for(via_a, Duration::from_secs(10)).len(), b.wait_for(via_b, Duration::from_secs(10)).len());
    assert_eq!((got_a, got_b), (via_a, via_b), "each sink has what the reports say it got");
    eprintln!("equal preferences, 200 messages: {via_a} via a.equal.test, {via_b} via b.equal.test");
    // Random among equals (RFC 5321 §5.1): for a fair choice, fewer than 50 of 200 on one side has a
    // probability below 1e-12.
    assert!(via_a >= 50 && via_b >= 50, "a: {via_a}, b: {via_b}");
}

/// A listener that only counts the connections made to it.
struct CountingListener(TcpListener);

impl CountingListener {
    fn bind(addr: SocketAddr) -> CountingListener {
        let listener = TcpListener::bind(addr).expect("bind the counting listener");
        listener.set_nonblocking(true).unwrap();
        CountingListener(listener)
    }

    /// Connections made so far (a connect that completed is in the queue, accepted or not).
    fn count(&self) -> usize {
        let mut n = 0;
        loop {
            match self.0.accept() {
                Ok(_) => n += 1,
                Err(e) if e.kind() == ErrorKind::WouldBlock => return n,
                Err(e) => panic!("{e}"),
            }
        }
    }
}

#[tokio::test]
#[ignore = "needs smtp-sink (scripts/install-test-servers)"]
async fn null_mx_fails_permanently_without_connecting() {
    let port = common_port(&[2, 9]);
    let other = sink_at(2, port, SinkOptions::default());
    // The null-MX domain also has an A record: a client that took it for an implicit MX would connect here.
    let trap = CountingListener::bind(SocketAddr::new(IpAddr::V4(ip(9)), port));
    let zone = Zone::new("test")
        .mx("nomail.test", 0, ".")
        .a("nomail.test", ip(9))
        .mx("mail.test", 10, "mx.mail.test")
        .a("mx.mail.test", ip(2));
    let dns = DnsServer::start(zone).unwrap();
    let report = send(&client(&dns, port, TlsPolicy::May), &["bob@nomail.test", "carol@mail.test"]).await;

    let outcomes: Vec<_> = report.recipients().map(|(r, route)| (r.status, route.host.clone())).collect();
    assert_eq!(
        outcomes,
        [
            (RecipientStatus::PermanentFailure, None),
            (RecipientStatus::Delivered, Some("mx.mail.test".into()))
        ],
        "{report}"
    );
    let null = &report.routes[0];
    assert!(null.error.as_deref().unwrap().contains("null MX"), "{null:?}");
    assert!(report.domains[0].attempts.is_empty());
    assert_eq!(trap.count(), 0, "nothing may connect to a null-MX domain");
    assert_eq!(other.wait_for(1, Duration::from_secs(5))[0].recipients, ["carol@mail.test"]);
}

#[tokio::test]
#[ignore = "needs smtp-sink (scripts/install-test-servers)"]
async fn no_mx_record_delivers_to_the_domains_a_record() {
    let port = common_port(&[4]);
    let sink = sink_at(4, port, SinkOptions::default());
    let dns = DnsServer::start(Zone::new("test").a("implicit.test", ip(4))).unwrap();
    let report = send(&client(&dns, port, TlsPolicy::May), &["bob@implicit.test"]).await;

    assert_eq!(report.message.outcome, Outcome::Sent, "{report}");
    let (_, route) = report.recipients().next().unwrap();
    assert_eq!((route.host.as_deref(), route.address), (Some("implicit.test"), Some(IpAddr::V4(ip(4)))));
    assert_eq!(sink.wait_for(1, Duration::from_secs(5))[0].recipients, ["bob@implicit.test"]);
}

#[tokio::test]
#[ignore = "needs smtp-sink (scripts/install-test-servers)"]
async fn recipients_at_two_domains_get_two_sessions_each_with_its_host_and_reply() {
    let port = common_port(&[2, 3]);
    let one = sink_at(2, port, SinkOptions::default());
    // The second domain's MX refuses one recipient: smtp-sink -f RCPT refuses every RCPT.
    let two = sink_at(3, port, SinkOptions { hard_reject: Some("RCPT"), ..SinkOptions::default() });
    let zone = Zone::new("test")
        .mx("one.test", 10, "mx.one.test")
        .a("mx.one.test", ip(2))
        .mx("two.test", 10, "mx.two.test")
        .a("mx.two.test", ip(3));
    let dns = DnsServer::start(zone).unwrap();
    let report = send(&client(&dns, port, TlsPolicy::May), &["a@one.test", "b@two.test", "c@ONE.test"]).await;

    let summary: Vec<_> = report
        .recipients()
        .map(|(r, route)| {
            (
                r.path.as_str().to_owned(),
                r.status,
                route.host.clone().unwrap(),
                r.reply.as_ref().unwrap().code(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("a@one.test".to_owned(), RecipientStatus::Delivered, "mx.one.test".to_owned(), 250),
            ("b@two.test".to_owned(), RecipientStatus::PermanentFailure, "mx.two.test".to_owned(), 500),
            ("c@ONE.test".to_owned(), RecipientStatus::Delivered, "mx.one.test".to_owned(), 250),
        ],
        "{report}"
    );
    assert_eq!(report.message.outcome, Outcome::Sent);
    assert_eq!(report.domains.len(), 2);
    // One session a domain: one.test's two recipients in one transaction.
    let got = one.wait_for(1, Duration::from_secs(5));
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].recipients, ["a@one.test", "c@ONE.test"]);
    assert!(two.messages().is_empty());
}

#[tokio::test]
async fn servfail_fails_temporarily_and_connects_nowhere() {
    let zone = Zone::new("test").mx("broken.test", 10, "mx.broken.test").servfail("broken.test");
    let dns = DnsServer::start(zone).unwrap();
    let report = send(&client(&dns, 2525, TlsPolicy::May), &["bob@broken.test"]).await;

    assert_eq!(report.message.outcome, Outcome::Rejected);
    assert!(report.message.is_temporary(), "{report}");
    let (result, route) = report.recipients().next().unwrap();
    assert_eq!(result.status, RecipientStatus::TemporaryFailure);
    assert_eq!(route.host, None);
    assert!(route.error.as_deref().unwrap().contains("SERVFAIL"), "{route:?}");
    assert!(report.domains[0].attempts.is_empty());
    assert!(dns.queries() > 0);
}

#[tokio::test]
async fn nxdomain_fails_permanently() {
    let dns = DnsServer::start(Zone::new("test")).unwrap();
    let report = send(&client(&dns, 2525, TlsPolicy::May), &["bob@nowhere.test"]).await;
    let (result, route) = report.recipients().next().unwrap();
    assert_eq!(result.status, RecipientStatus::PermanentFailure, "{report}");
    assert!(route.error.as_deref().unwrap().contains("NXDOMAIN"), "{route:?}");
}

fn tls_zone(host: u8) -> Zone {
    Zone::new("test").mx("secure.test", 10, "mx.secure.test").a("mx.secure.test", ip(host))
}

#[tokio::test]
async fn self_signed_starttls_mx_gets_mail_over_tls_under_the_default_policy() {
    let port = common_port(&[5]);
    let server =
        TlsMx::start(SocketAddr::new(IpAddr::V4(ip(5)), port), "mx.secure.test", TlsMxMode::SelfSigned)
            .unwrap();
    let dns = DnsServer::start(tls_zone(5)).unwrap();
    let report = send(&client(&dns, port, TlsPolicy::default()), &["bob@secure.test"]).await;

    assert_eq!(report.message.outcome, Outcome::Sent, "{report}");
    let (_, route) = report.recipients().next().unwrap();
    // Encrypted, and the report says the certificate did not verify.
    assert_eq!(route.security, Some(Security::Tls { verified: false }));
    let got = server.messages();
    assert_eq!(got.len(), 1);
    assert!(got[0].tls, "the message came over TLS");
    assert_eq!(got[0].body, BODY);
    // `encrypt` takes any certificate too.
    let report = send(&client(&dns, port, TlsPolicy::Encrypt), &["bob@secure.test"]).await;
    assert_eq!(report.routes[0].security, Some(Security::Tls { verified: false }), "{report}");
}

#[tokio::test]
async fn self_signed_starttls_mx_is_refused_under_verify() {
    let port = common_port(&[6]);
    let server =
        TlsMx::start(SocketAddr::new(IpAddr::V4(ip(6)), port), "mx.secure.test", TlsMxMode::SelfSigned)
            .unwrap();
    let dns = DnsServer::start(tls_zone(6)).unwrap();
    let report = send(&client(&dns, port, TlsPolicy::Verify), &["bob@secure.test"]).await;

    assert_eq!(report.message.outcome, Outcome::Rejected, "{report}");
    let (result, route) = report.recipients().next().unwrap();
    assert_eq!(result.status, RecipientStatus::TemporaryFailure);
    let error = route.error.as_deref().unwrap();
    assert!(error.contains("TLS handshake failed") && error.contains("certificate"), "{error}");
    // No plaintext retry under verify: one connection, no message.
    assert_eq!(report.domains[0].attempts.len(), 1);
    assert!(server.messages().is_empty());

    // The same server verifies once its certificate is trusted (the name matches): `verify` is a real check.
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("mx.pem");
    std::fs::write(&ca, server.certificate_pem()).unwrap();
    let mut options = Options::new("unused", port);
    options.helo_name = Some("client.test".parse().unwrap());
    options.ca_file = Some(ca);
    let mut config = MxConfig::default();
    (config.port, config.tls) = (port, TlsPolicy::Verify);
    let mx = MxClient::with_nameserver(options, config, dns.addr());
    let report = send(&mx, &["bob@secure.test"]).await;
    assert_eq!(report.routes[0].security, Some(Security::Tls { verified: true }), "{report}");
    assert_eq!(server.messages().len(), 1);
}

#[tokio::test]
async fn failed_handshake_falls_back_to_plaintext_under_the_default_policy() {
    let port = common_port(&[7]);
    let server =
        TlsMx::start(SocketAddr::new(IpAddr::V4(ip(7)), port), "mx.secure.test", TlsMxMode::BrokenHandshake)
            .unwrap();
    let dns = DnsServer::start(tls_zone(7)).unwrap();
    let report = send(&client(&dns, port, TlsPolicy::May), &["bob@secure.test"]).await;

    assert_eq!(report.message.outcome, Outcome::Sent, "{report}");
    assert_eq!(report.routes[0].security, Some(Security::Plaintext));
    let tried = attempts(&report);
    assert_eq!(tried.len(), 2, "{tried:?}");
    // The same address twice: STARTTLS first, then plaintext.
    assert_eq!((tried[0].0, tried[0].1), (IpAddr::V4(ip(7)), true));
    assert!(tried[0].2.contains("TLS handshake failed"), "{tried:?}");
    assert_eq!((tried[1].0, tried[1].1), (IpAddr::V4(ip(7)), false));
    let got = server.messages();
    assert_eq!(got.len(), 1);
    assert!(!got[0].tls);
    assert_eq!(server.connections(), 2);

    // Under encrypt the broken handshake is a failed address, and there is no other.
    let report = send(&client(&dns, port, TlsPolicy::Encrypt), &["bob@secure.test"]).await;
    assert_eq!(report.recipients().next().unwrap().0.status, RecipientStatus::TemporaryFailure, "{report}");
    assert_eq!(server.messages().len(), 1);
}

#[tokio::test]
#[ignore = "needs smtp-sink (scripts/install-test-servers)"]
async fn non_ascii_domain_is_looked_up_by_its_a_labels() {
    let port = common_port(&[8]);
    let _sink = sink_at(8, port, SinkOptions::default());
    let zone = Zone::new("test")
        .mx("xn--bcher-kva.test", 10, "mx.xn--bcher-kva.test")
        .a("mx.xn--bcher-kva.test", ip(8));
    let dns = DnsServer::start(zone).unwrap();
    let report = send(&client(&dns, port, TlsPolicy::May), &["bob@bücher.test"]).await;
    let (result, route) = report.recipients().next().unwrap();
    // The MX was found through the A-label; smtp-sink lacks SMTPUTF8, which the address needs (RFC 6531),
    // so the message is refused before MAIL.
    assert_eq!(route.host.as_deref(), Some("mx.xn--bcher-kva.test"), "{report}");
    assert_eq!(route.address, Some(IpAddr::V4(ip(8))));
    assert_eq!(result.status, RecipientStatus::PermanentFailure);
    assert!(route.error.as_deref().unwrap().contains("SMTPUTF8"), "{route:?}");
}
