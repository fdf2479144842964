//! Direct delivery: each recipient of a message to its own domain's mail exchangers, as an MTA does (RFC 5321
//! §5.1), without a smarthost.
//!
//! [`MxClient::send`] groups the recipients by domain and, for each domain in turn, looks up its MX records
//! with `hickory-resolver` (the system's DNS configuration, or a nameserver you name), then tries the MX
//! hosts in preference order (random among equals), each host's IPv6 then IPv4 addresses, until the
//! domain's recipients are decided or five addresses were tried; one `smtp-tokio` session a connection. A
//! null MX (RFC 7505) fails its recipients permanently without connecting; a domain without MX gets its
//! own A/AAAA (the implicit MX); a DNS failure fails them temporarily. TLS follows [`TlsPolicy`]:
//! opportunistic by default (`may`), any certificate accepted and whether it verified reported.
//!
//! Every decision (host order, what to try after which failure, the TLS fallback, the merged report) is
//! made sans-IO in [`smtp_transport::mx`]; this crate only does the lookups and the connections.
//!
//! ```no_run
//! use smtp_mx::{Envelope, MxClient, MxConfig, Options};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), smtp_mx::Error> {
//! let mut options = Options::new("unused", 25);
//! options.helo_name = Some("mail.example.org".parse().expect("valid name"));
//! let mx = MxClient::new(options, MxConfig::default())?; // the system's resolver
//! let envelope =
//!     Envelope::parse("alice@example.org", &["bob@example.net", "carol@example.com"]).expect("valid addresses");
//! let report = mx.send(envelope, std::io::Cursor::new(b"Subject: hi\r\n\r\nHello.\r\n")).await?;
//! for (recipient, route) in report.recipients() {
//!     println!("{} {}: {:?} via {:?}", recipient.status, recipient.path, recipient.reply, route.host);
//! }
//! # Ok(())
//! # }
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs, unreachable_pub)]

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::io::SeekFrom;
use std::net::{IpAddr, SocketAddr};

use hickory_resolver::config::{
    LookupIpStrategy, NameServerConfig, ResolveHosts, ResolverConfig, ResolverOpts,
};
use hickory_resolver::name_server::TokioConnectionProvider;
use hickory_resolver::proto::ProtoErrorKind;
use hickory_resolver::proto::op::ResponseCode;
use hickory_resolver::proto::xfer::Protocol;
use hickory_resolver::{ResolveError, TokioResolver};
use smtp_proto::SendError;
use smtp_tokio::SmtpClient;
use smtp_transport::mx::{
    self, AttemptResult, Delivery, Destination, DnsError, DomainGroup, DomainOutcome, MxAnswer, MxRecord,
    Next,
};
use tokio::io::AsyncSeekExt as _;
use tracing::debug;

pub use smtp_proto::{Envelope, MessageReport, Outcome, RecipientResult, RecipientStatus};
pub use smtp_tokio::Body;
pub use smtp_transport::mx::{
    Attempt, DomainReport, Exchangers, MAX_ADDRESSES, MxConfig, MxReport, Route, Security, Target, TlsPolicy,
};
pub use smtp_transport::{Error, Options};

/// Sends messages straight to their recipients' MX hosts. Cheap to share: one resolver (with its cache)
/// for every message.
#[derive(Clone, Debug)]
pub struct MxClient {
    resolver: TokioResolver,
    options: Options,
    config: MxConfig,
}

impl MxClient {
    /// With the system's DNS configuration (`/etc/resolv.conf`). `options` is the template for every
    /// connection: EHLO name (set it: MX hosts expect the sender's real name), timeouts, the session's
    /// configuration, [`Options::ca_file`] for `verify`; its host, port and TLS settings are each
    /// connection's own.
    pub fn new(options: Options, config: MxConfig) -> Result<MxClient, Error> {
        let builder = TokioResolver::builder_tokio().map_err(|e| Error::Connect(std::io::Error::other(e)))?;
        let resolver = builder.with_options(resolver_options(ResolveHosts::Auto)).build();
        Ok(MxClient { resolver, options, config })
    }

    /// Asks the nameserver at `nameserver` (UDP, then TCP) and nothing else, without the hosts file: for
    /// tests and split-horizon setups.
    pub fn with_nameserver(options: Options, config: MxConfig, nameserver: SocketAddr) -> MxClient {
        let mut dns = ResolverConfig::new();
        dns.add_name_server(NameServerConfig::new(nameserver, Protocol::Udp));
        dns.add_name_server(NameServerConfig::new(nameserver, Protocol::Tcp));
        let resolver = TokioResolver::builder_with_config(dns, TokioConnectionProvider::default())
            .with_options(resolver_options(ResolveHosts::Never))
            .build();
        MxClient { resolver, options, config }
    }

    /// Delivers one message: each domain's recipients in a session of their own with that domain's MX,
    /// one domain after the other, `body` read again from where it is now for each session (a `Cursor`, a
    /// file; a stream that cannot seek goes in a [`smtp_transport::OneShot`] and serves one session).
    ///
    /// `Ok` with every recipient's outcome, the host and the reply that decided it, whatever the servers
    /// said; `Err` only when the body cannot be read ([`Error::Body`]) or the TLS configuration is unusable
    /// ([`Error::TlsSetup`], a bad [`Options::ca_file`]).
    pub async fn send<B: Body>(&self, envelope: Envelope, mut body: B) -> Result<MxReport, Error> {
        let start = body.stream_position().await.map_err(Error::Body)?;
        let (mut outcomes, mut sessions) = (Vec::new(), Vec::new());
        for group in mx::group(&envelope) {
            let outcome = self.deliver(&envelope, &group, &mut body, start, &mut sessions).await?;
            outcomes.push(outcome);
        }
        Ok(MxReport::merge(&envelope, outcomes, sessions))
    }

    /// One domain's recipients.
    async fn deliver<B: Body>(
        &self,
        envelope: &Envelope,
        group: &DomainGroup,
        body: &mut B,
        start: u64,
        sessions: &mut Vec<MessageReport>,
    ) -> Result<DomainOutcome, Error> {
        let exchangers = match &group.destination {
            Destination::Lookup => {
                let answer = self.lookup_mx(&group.domain).await;
                debug!(domain = %group.domain, ?answer, "MX lookup");
                mx::exchangers(&group.domain, answer, RandomState::new().hash_one(&group.domain))
            }
            Destination::Address(address) => Exchangers::Address(*address),
            // The delivery decides these recipients itself.
            Destination::Invalid(why) => Exchangers::DnsFailed(why.clone()),
        };
        let mut delivery = Delivery::new(envelope, group, exchangers, self.config.clone());
        loop {
            match delivery.poll() {
                Next::Resolve(host) => {
                    let addresses = self.lookup_ip(&host).await;
                    delivery.resolved(&host, addresses);
                }
                Next::Connect(target) => {
                    let recipients =
                        delivery.in_flight().into_iter().map(|i| envelope.recipients()[i].clone());
                    let part = envelope.with_recipients(recipients).expect("a connection has recipients");
                    let result = self.attempt(&target, part, &mut *body, start).await?;
                    debug!(?target, ?result, "attempt");
                    if let AttemptResult::Sent { report, .. } = &result {
                        sessions.push(report.clone());
                    }
                    delivery.attempt_done(result);
                }
                Next::Done => return Ok(delivery.finish()),
            }
        }
    }

    /// One connection: connect, the session's start (greeting, EHLO, STARTTLS), the transaction, QUIT.
    async fn attempt<B: Body>(
        &self,
        target: &Target,
        envelope: Envelope,
        body: &mut B,
        start: u64,
    ) -> Result<AttemptResult, Error> {
        let options = self.options_for(target);
        let mut client = match SmtpClient::connect(&options).await {
            Ok(client) => client,
            Err(e @ (Error::TlsSetup(_) | Error::Credentials(_) | Error::Url(_))) => return Err(e),
            Err(Error::Connect(e)) => return Ok(AttemptResult::ConnectFailed(e.to_string())),
            Err(Error::Tls(e)) => return Ok(AttemptResult::TlsFailed(e.to_string())),
            Err(e) => return Ok(AttemptResult::Refused { reply: e.reply().cloned(), error: e.to_string() }),
        };
        let security = match client.is_tls() {
            true => Security::Tls { verified: client.tls_verified() == Some(true) },
            false => Security::Plaintext,
        };
        body.seek(SeekFrom::Start(start)).await.map_err(Error::Body)?;
        let result = match client.send(envelope, &mut *body).await {
            Ok(report) => AttemptResult::Sent { report, security },
            Err(Error::Send(SendError::Unsendable(why))) => AttemptResult::Unsendable(why.to_string()),
            Err(e @ Error::Body(_)) => return Err(e),
            Err(e) => AttemptResult::Refused { reply: e.reply().cloned(), error: e.to_string() },
        };
        if client.close_reason().is_none() {
            // The messages have their outcomes; a failed QUIT changes none of them.
            let _ = client.quit().await;
        }
        Ok(result)
    }

    /// The template, pointed at one address of an MX host: the certificate is checked against the host's
    /// name (an address literal's against its address), TLS as the policy says.
    fn options_for(&self, target: &Target) -> Options {
        let mut options = self.options.clone();
        options.host = target.address.to_string();
        options.port = self.config.port;
        options.tls_name = Some(match target.host.starts_with('[') {
            true => target.address.to_string(),
            false => target.host.clone(),
        });
        options.session.credentials = None;
        self.config.tls.apply(&mut options, target.starttls);
        options
    }

    async fn lookup_mx(&self, domain: &str) -> MxAnswer {
        match self.resolver.mx_lookup(absolute(domain)).await {
            Ok(lookup) => MxAnswer::Records(
                lookup
                    .iter()
                    .map(|mx| MxRecord { preference: mx.preference(), exchange: mx.exchange().to_ascii() })
                    .collect(),
            ),
            Err(e) => match no_records(&e) {
                Some(ResponseCode::NXDomain) => MxAnswer::NoDomain,
                Some(ResponseCode::NoError) => MxAnswer::NoRecords,
                _ => MxAnswer::Failed(dns_failure(&e)),
            },
        }
    }

    async fn lookup_ip(&self, host: &str) -> Result<Vec<IpAddr>, DnsError> {
        match self.resolver.lookup_ip(absolute(host)).await {
            Ok(lookup) => Ok(lookup.iter().collect()),
            Err(e) => {
                // NXDOMAIN, or the name has no address: a fact, not a failure to ask.
                let temporary =
                    !matches!(no_records(&e), Some(ResponseCode::NXDomain | ResponseCode::NoError));
                Err(DnsError { temporary, text: dns_failure(&e) })
            }
        }
    }
}

fn resolver_options(hosts: ResolveHosts) -> ResolverOpts {
    let mut options = ResolverOpts::default();
    // Both families: the delivery orders them (IPv6 first).
    options.ip_strategy = LookupIpStrategy::Ipv4AndIpv6;
    options.use_hosts_file = hosts;
    options
}

/// The name with its final dot, so no search domain is ever appended (RFC 1035 §3.1).
fn absolute(name: &str) -> String {
    format!("{}.", name.trim_end_matches('.'))
}

/// The response code of an answer without records. hickory reports SERVFAIL and REFUSED this way too, so
/// the code is what tells a domain without MX from a server that could not say.
fn no_records(e: &ResolveError) -> Option<ResponseCode> {
    match e.proto().map(|p| p.kind()) {
        Some(ProtoErrorKind::NoRecordsFound { response_code, .. }) => Some(*response_code),
        _ => None,
    }
}

fn dns_failure(e: &ResolveError) -> String {
    match no_records(e) {
        Some(ResponseCode::NoError) => "no such record".into(),
        Some(ResponseCode::ServFail) => "the DNS server answered SERVFAIL".into(),
        Some(ResponseCode::Refused) => "the DNS server answered REFUSED".into(),
        Some(code) => format!("the DNS server answered {code}"),
        None => e.to_string(),
    }
}
