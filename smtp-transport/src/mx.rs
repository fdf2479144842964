//! Direct delivery's decisions, sans-IO: which host gets a domain's mail and what happens after each kind
//! of failure. The IO (DNS lookups, connections) is `smtp-mx`'s; everything it decides is here, so plain
//! unit tests cover it.
//!
//! ```text
//! envelope ──group()──▶ one DomainGroup a domain (A-labels, RFC 5890)
//!   DNS MX answer ──exchangers(answer, seed)──▶ Exchangers: hosts in preference order, or null MX / no domain / DNS failure
//!   Delivery::new ─▶ loop { poll() → Resolve(host) | Connect(target) | Done;
//!                           resolved(host, addresses) / attempt_done(result) }
//!   Delivery::finish per domain ──MxReport::merge──▶ one report, each recipient with the host that decided it
//! ```
//!
//! The rules, after RFC 5321 §5.1 and Postfix's SMTP client:
//! - MX hosts by preference, the lowest first; among equal preferences in random order (RFC 5321 §5.1),
//!   from a seed the caller gives, so tests can pin it.
//! - No MX record (the domain exists): the domain itself is the only host (the implicit MX, RFC 5321 §5.1).
//!   A single MX record whose exchange is `.` is a null MX (RFC 7505): the domain takes no mail, every
//!   recipient there fails permanently and nothing is connected. The domain does not exist (NXDOMAIN): the
//!   recipients fail permanently. DNS failed (SERVFAIL, a timeout): they fail temporarily.
//! - Each host's addresses, IPv6 then IPv4; at most [`MAX_ADDRESSES`] addresses tried in all (Postfix's
//!   `smtp_mx_address_limit`).
//! - The next address after a failed connect, a greeting or EHLO that refuses service (421 or any 4yz; a
//!   5yz greeting too, as Postfix's `smtp_skip_5xx_greeting`), a session that ends before it is ready for
//!   mail, or a message this server cannot carry. After a transaction, recipients with a 4yz outcome (every
//!   recipient, when the whole transaction got a 4yz) go to the next address too; delivered, permanently
//!   refused and unknown ones (the connection died after the final dot: a retry could deliver twice) are
//!   decided. When no address is left, each recipient keeps its latest outcome.
//! - TLS ([`TlsPolicy`], after RFC 7435 and Postfix's security levels): under `may`, a failed handshake
//!   is followed by a new plaintext connection to the same address (RFC 7435 §4: fall back to cleartext
//!   rather than not deliver); under `encrypt` and `verify` it counts as a failed address.

use std::collections::VecDeque;
use std::fmt;
use std::net::IpAddr;

use smtp_proto::address::ForwardPath;
use smtp_proto::{
    Envelope, Failure, MessageId, MessageReport, Outcome, RecipientResult, RecipientStatus, Reply, TlsMode,
};

use crate::{CertificateCheck, Options};

/// How many addresses a domain's delivery tries at most, over all its MX hosts: Postfix's
/// `smtp_mx_address_limit` default.
pub const MAX_ADDRESSES: usize = 5;

/// TLS for MX delivery, after RFC 7435 (opportunistic security) and Postfix's `smtp_tls_security_level`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum TlsPolicy {
    /// STARTTLS when offered, any certificate (whether it verified is in the report); after a failed
    /// handshake, the same address again in plaintext. Postfix's `may`, and the default: most MX hosts
    /// have certificates no client can verify against the MX name, and plaintext delivery beats none.
    #[default]
    May,
    /// TLS required (no STARTTLS, or a failed handshake, and the next address is tried), any certificate.
    Encrypt,
    /// TLS required, and the certificate must be valid for the MX host's name under the trusted roots
    /// (webpki's plus [`Options::ca_file`]).
    Verify,
}

impl TlsPolicy {
    /// Sets `options` for a connection to an MX host: STARTTLS as the policy says (`starttls` false for the
    /// plaintext retry after a failed handshake) and the certificate check. The name checked is
    /// [`Options::tls_name`]: the MX host's name, since `host` is one of its addresses.
    pub fn apply(self, options: &mut Options, starttls: bool) {
        options.session.tls = match (self, starttls) {
            (_, false) => TlsMode::None,
            (TlsPolicy::May, true) => TlsMode::Opportunistic,
            (TlsPolicy::Encrypt | TlsPolicy::Verify, true) => TlsMode::Required,
        };
        options.certificate = match self {
            TlsPolicy::Verify => CertificateCheck::Required,
            TlsPolicy::May | TlsPolicy::Encrypt => CertificateCheck::Recorded,
        };
    }

    /// Postfix's name for the level: `may`, `encrypt`, `verify`.
    pub fn name(self) -> &'static str {
        match self {
            TlsPolicy::May => "may",
            TlsPolicy::Encrypt => "encrypt",
            TlsPolicy::Verify => "verify",
        }
    }
}

/// How a domain's delivery goes.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct MxConfig {
    /// TLS for every connection.
    pub tls: TlsPolicy,
    /// Addresses tried at most, over all of a domain's hosts ([`MAX_ADDRESSES`]).
    pub max_addresses: usize,
    /// The port MX hosts listen on: 25 (RFC 5321 §4.5.4.2); another one for tests.
    pub port: u16,
}

impl Default for MxConfig {
    fn default() -> Self {
        MxConfig { tls: TlsPolicy::May, max_addresses: MAX_ADDRESSES, port: crate::SMTP_PORT }
    }
}

/// One MX record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MxRecord {
    /// Lower is preferred.
    pub preference: u16,
    /// The host's name (`.` for a null MX, RFC 7505).
    pub exchange: String,
}

/// What DNS said to a domain's MX query.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MxAnswer {
    /// The MX records.
    Records(Vec<MxRecord>),
    /// The domain exists and has no MX record (NODATA).
    NoRecords,
    /// The domain does not exist (NXDOMAIN).
    NoDomain,
    /// No answer: SERVFAIL, a timeout, no server reachable. Why, as a sentence.
    Failed(String),
}

/// Where a domain's mail goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Exchangers {
    /// These hosts, in the order to try them (an implicit MX is the domain itself).
    Hosts(Vec<String>),
    /// A domain given as an address literal (`bob@[192.0.2.1]`, RFC 5321 §4.1.3): that address, no DNS.
    Address(IpAddr),
    /// A null MX (RFC 7505): the domain takes no mail.
    NullMx,
    /// The domain does not exist.
    NoDomain,
    /// DNS did not answer: why.
    DnsFailed(String),
}

/// Where the MX answer for a domain sends its mail; `seed` orders equal preferences (a random number in
/// use, a fixed one in tests).
pub fn exchangers(domain: &str, answer: MxAnswer, seed: u64) -> Exchangers {
    let records = match answer {
        MxAnswer::Records(r) if !r.is_empty() => r,
        // RFC 5321 §5.1: no MX, then the domain itself, "treated as if it was associated with an implicit
        // MX RR, with a preference of 0".
        MxAnswer::Records(_) | MxAnswer::NoRecords => return Exchangers::Hosts(vec![domain.to_owned()]),
        MxAnswer::NoDomain => return Exchangers::NoDomain,
        MxAnswer::Failed(why) => return Exchangers::DnsFailed(why),
    };
    let name = |r: &MxRecord| r.exchange.trim_end_matches('.').to_ascii_lowercase();
    // RFC 7505 §3: a null MX is the domain's only MX record. A `.` among real hosts is not one: that host
    // cannot be connected to and is skipped.
    if records.iter().all(|r| name(r).is_empty()) {
        return Exchangers::NullMx;
    }
    let mut records: Vec<(u16, String)> =
        records.iter().map(|r| (r.preference, name(r))).filter(|(_, n)| !n.is_empty()).collect();
    let mut rng = SplitMix(seed);
    // Shuffle all, then a stable sort by preference: random order among equals (RFC 5321 §5.1).
    for i in (1..records.len()).rev() {
        let j = (rng.next() % (i as u64 + 1)) as usize;
        records.swap(i, j);
    }
    records.sort_by_key(|(preference, _)| *preference);
    let mut hosts: Vec<String> = Vec::with_capacity(records.len());
    for (_, host) in records {
        if !hosts.contains(&host) {
            hosts.push(host);
        }
    }
    Exchangers::Hosts(hosts)
}

/// splitmix64: a few lines of well-mixed randomness from a seed, enough to shuffle a handful of hosts.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

/// The recipients of one domain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DomainGroup {
    /// The domain as looked up: A-labels (RFC 5890), lower case; an address literal as written.
    pub domain: String,
    /// Where to look: the domain's MX, an address literal's address, or why it cannot be delivered.
    pub destination: Destination,
    /// The recipients (indices into the envelope's list), in envelope order.
    pub recipients: Vec<usize>,
}

/// What a recipient's domain part asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Destination {
    /// Look up the domain's MX.
    Lookup,
    /// An address literal: that address.
    Address(IpAddr),
    /// No domain to deliver to (`<Postmaster>` alone, an invalid IDN): why.
    Invalid(String),
}

/// The envelope's recipients by domain, in order of first appearance. Domains with non-ASCII names are
/// grouped (and looked up) by their A-labels (IDNA, RFC 5891 §5, via the `idna` crate), and case does not
/// matter (RFC 4343).
pub fn group(envelope: &Envelope) -> Vec<DomainGroup> {
    let mut groups: Vec<DomainGroup> = Vec::new();
    for (i, recipient) in envelope.recipients().iter().enumerate() {
        let (domain, destination) = domain_of(recipient.path());
        match groups.iter_mut().find(|g| g.domain == domain) {
            Some(g) => g.recipients.push(i),
            None => groups.push(DomainGroup { domain, destination, recipients: vec![i] }),
        }
    }
    groups
}

fn domain_of(path: &ForwardPath) -> (String, Destination) {
    let Some(mailbox) = path.as_mailbox() else {
        return (String::new(), Destination::Invalid("<Postmaster> names no domain".into()));
    };
    let domain = mailbox.domain();
    if let Some(literal) = domain.strip_prefix('[').and_then(|d| d.strip_suffix(']')) {
        let ip = literal.strip_prefix("IPv6:").unwrap_or(literal).parse::<IpAddr>();
        return match ip {
            Ok(ip) => (domain.to_owned(), Destination::Address(ip)),
            Err(_) => (domain.to_owned(), Destination::Invalid(format!("{domain} is no usable address"))),
        };
    }
    match idna::domain_to_ascii(domain) {
        Ok(ascii) => (ascii.trim_end_matches('.').to_owned(), Destination::Lookup),
        Err(_) => (domain.to_owned(), Destination::Invalid(format!("{domain:?} is not a valid domain name"))),
    }
}

/// Where a connection goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    /// The MX host's name (the name its certificate is checked against), or the address literal.
    pub host: String,
    /// One of its addresses.
    pub address: IpAddr,
    /// Whether STARTTLS is tried (false on the plaintext retry after a failed handshake).
    pub starttls: bool,
}

/// What the IO does next for a domain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Next {
    /// Look up this host's addresses (AAAA and A), then [`Delivery::resolved`].
    Resolve(String),
    /// Connect, start the session and send the message to [`Delivery::in_flight`] recipients, then
    /// [`Delivery::attempt_done`].
    Connect(Target),
    /// Every recipient of the domain is decided: [`Delivery::finish`].
    Done,
}

/// A DNS failure for a host's addresses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DnsError {
    /// SERVFAIL or a timeout (a later try may work), not NXDOMAIN or no address.
    pub temporary: bool,
    /// What happened, as a sentence.
    pub text: String,
}

/// How the connection was protected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Security {
    /// No TLS.
    Plaintext,
    /// STARTTLS; `verified`: the certificate was valid for the MX host's name under the trusted roots.
    Tls {
        /// Whether the certificate verified.
        verified: bool,
    },
}

/// What came of one connection.
#[derive(Clone, Debug)]
// One a connection: boxing the report would only add an allocation.
#[allow(clippy::large_enum_variant)]
pub enum AttemptResult {
    /// No connection: refused, unreachable, timed out.
    ConnectFailed(String),
    /// The TLS handshake failed (or the server hung up during it).
    TlsFailed(String),
    /// The session ended before it was ready for mail: a 4yz or 5yz greeting, EHLO refused, STARTTLS
    /// missing under a policy that needs it, a timeout. The reply, if one said so.
    Refused {
        /// The server's reply.
        reply: Option<Reply>,
        /// What happened, as a sentence.
        error: String,
    },
    /// The server cannot carry the message (SIZE, SMTPUTF8, …): refused before any of its bytes.
    Unsendable(String),
    /// The transaction's report, its recipients in [`Delivery::in_flight`] order.
    Sent {
        /// The session's report.
        report: MessageReport,
        /// How the session was protected.
        security: Security,
    },
}

/// Where a recipient's outcome was decided.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Route {
    /// The recipient's domain, as looked up.
    pub domain: String,
    /// The MX host whose session (or failed connection) decided it; `None` when no host was involved (a
    /// null MX, a DNS failure).
    pub host: Option<String>,
    /// The address connected to.
    pub address: Option<IpAddr>,
    /// How that session was protected; `None` without a session.
    pub security: Option<Security>,
    /// What decided it when no server reply did: the DNS answer, the failed connect, the null MX.
    pub error: Option<String>,
}

/// One connection of a domain's delivery, for the report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attempt {
    /// Where.
    pub target: Target,
    /// How the session was protected, when it got that far.
    pub security: Option<Security>,
    /// What came of it, as a phrase: `delivered to 2 of 2`, `421 4.3.2 …`, `connect failed: …`.
    pub outcome: String,
}

/// One domain's delivery, for the report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DomainReport {
    /// The domain, as looked up.
    pub domain: String,
    /// What DNS said.
    pub exchangers: Exchangers,
    /// Every connection, in order.
    pub attempts: Vec<Attempt>,
}

/// A recipient's outcome so far.
#[derive(Clone, Debug)]
struct Decision {
    result: RecipientResult,
    route: Route,
    /// False while another address may still change it (a 4yz, a failed connection).
    settled: bool,
}

/// One domain's delivery: its recipients, the hosts and addresses left, each recipient's outcome so far.
/// See the [module docs](self) for the loop and the rules.
#[derive(Debug)]
pub struct Delivery {
    domain: String,
    exchangers: Exchangers,
    config: MxConfig,
    /// The recipients (envelope indices), and each one's outcome so far.
    recipients: Vec<usize>,
    decisions: Vec<Decision>,
    /// Hosts whose addresses are not yet known.
    hosts: VecDeque<String>,
    /// Addresses not yet tried.
    targets: VecDeque<Target>,
    /// Addresses tried (the plaintext retry of one does not count again).
    tried: usize,
    /// The plaintext retry after a failed handshake, first in line.
    retry_plain: Option<Target>,
    /// The connection being made: its target and its recipients (positions in `recipients`).
    current: Option<(Target, Vec<usize>)>,
    attempts: Vec<Attempt>,
}

impl Delivery {
    /// The delivery of `group` (recipients of `envelope`) to `exchangers`.
    pub fn new(
        envelope: &Envelope,
        group: &DomainGroup,
        exchangers: Exchangers,
        config: MxConfig,
    ) -> Delivery {
        let route =
            Route { domain: group.domain.clone(), host: None, address: None, security: None, error: None };
        let decisions = group
            .recipients
            .iter()
            .map(|&i| Decision {
                result: RecipientResult {
                    path: envelope.recipients()[i].path().clone(),
                    rcpt_reply: None,
                    lmtp_reply: None,
                    status: RecipientStatus::TemporaryFailure,
                    reply: None,
                },
                route: route.clone(),
                settled: false,
            })
            .collect();
        let mut delivery = Delivery {
            domain: group.domain.clone(),
            exchangers: exchangers.clone(),
            config,
            recipients: group.recipients.clone(),
            decisions,
            hosts: VecDeque::new(),
            targets: VecDeque::new(),
            tried: 0,
            retry_plain: None,
            current: None,
            attempts: Vec::new(),
        };
        let domain = &group.domain;
        match (&group.destination, exchangers) {
            (Destination::Invalid(why), _) => delivery.decide_all(true, why.clone()),
            (_, Exchangers::Hosts(hosts)) => delivery.hosts = hosts.into(),
            (_, Exchangers::Address(address)) => {
                delivery.targets.push_back(Target { host: domain.clone(), address, starttls: true })
            }
            (_, Exchangers::NullMx) => delivery
                .decide_all(true, format!("{domain} has a null MX (RFC 7505): the domain accepts no mail")),
            (_, Exchangers::NoDomain) => {
                delivery.decide_all(true, format!("{domain} does not exist (NXDOMAIN)"))
            }
            (_, Exchangers::DnsFailed(why)) => {
                delivery.decide_all(false, format!("the MX lookup of {domain} failed: {why}"))
            }
        }
        delivery
    }

    /// What to do next.
    pub fn poll(&mut self) -> Next {
        if self.decisions.iter().all(|d| d.settled) {
            return Next::Done;
        }
        let target = match self.retry_plain.take() {
            Some(target) => Some(target),
            None if self.tried >= self.config.max_addresses => None,
            None => match self.targets.pop_front() {
                Some(target) => {
                    self.tried += 1;
                    Some(target)
                }
                None => match self.hosts.pop_front() {
                    Some(host) => return Next::Resolve(host),
                    None => None,
                },
            },
        };
        let Some(target) = target else {
            // Nothing left to try: each recipient keeps its latest outcome.
            for d in &mut self.decisions {
                d.settled = true;
            }
            return Next::Done;
        };
        let pending = (0..self.decisions.len()).filter(|&p| !self.decisions[p].settled).collect();
        self.current = Some((target.clone(), pending));
        Next::Connect(target)
    }

    /// The addresses of `host` ([`Next::Resolve`]): IPv6 first, then IPv4.
    pub fn resolved(&mut self, host: &str, addresses: Result<Vec<IpAddr>, DnsError>) {
        let addresses = match addresses {
            Ok(a) if !a.is_empty() => a,
            Ok(_) => return self.host_failed(host, true, format!("{host} has no address")),
            Err(e) => return self.host_failed(host, !e.temporary, format!("{host}: {}", e.text)),
        };
        let (v6, v4): (Vec<IpAddr>, Vec<IpAddr>) = addresses.into_iter().partition(IpAddr::is_ipv6);
        for address in v6.into_iter().chain(v4) {
            if !self.targets.iter().any(|t| t.address == address) {
                self.targets.push_back(Target { host: host.to_owned(), address, starttls: true });
            }
        }
    }

    /// A host without addresses: its recipients' latest outcome says so.
    fn host_failed(&mut self, host: &str, permanent: bool, error: String) {
        for d in self.decisions.iter_mut().filter(|d| !d.settled) {
            d.result.status =
                if permanent { RecipientStatus::PermanentFailure } else { RecipientStatus::TemporaryFailure };
            d.result.reply = None;
            d.route.host = Some(host.to_owned());
            d.route.address = None;
            d.route.security = None;
            d.route.error = Some(error.clone());
        }
    }

    /// The recipients of the connection [`Next::Connect`] asked for: envelope indices, in envelope order.
    /// The envelope sent holds these, in this order.
    pub fn in_flight(&self) -> Vec<usize> {
        match &self.current {
            Some((_, positions)) => positions.iter().map(|&p| self.recipients[p]).collect(),
            None => Vec::new(),
        }
    }

    /// What came of the connection [`Next::Connect`] asked for.
    pub fn attempt_done(&mut self, result: AttemptResult) {
        let Some((target, positions)) = self.current.take() else { return };
        let (security, outcome) = match result {
            AttemptResult::Sent { report, security } => {
                let delivered = report.recipients.iter().filter(|r| r.status == RecipientStatus::Delivered);
                let outcome = format!("delivered to {} of {}", delivered.count(), positions.len());
                for (&p, result) in positions.iter().zip(report.recipients) {
                    let d = &mut self.decisions[p];
                    // A 4yz is the next host's to try; anything else is decided (RFC 5321 §5.1; an unknown
                    // outcome never goes again, or it may be delivered twice).
                    d.settled = result.status != RecipientStatus::TemporaryFailure;
                    d.result = result;
                    d.route = Route {
                        domain: self.domain.clone(),
                        host: Some(target.host.clone()),
                        address: Some(target.address),
                        security: Some(security),
                        error: None,
                    };
                }
                (Some(security), outcome)
            }
            AttemptResult::ConnectFailed(e) => {
                self.failed(&positions, &target, None, false, format!("connect failed: {e}"))
            }
            AttemptResult::TlsFailed(e) => {
                if target.starttls && self.config.tls == TlsPolicy::May {
                    // RFC 7435 §4: opportunistic security falls back to cleartext rather than not deliver.
                    self.retry_plain = Some(Target { starttls: false, ..target.clone() });
                }
                self.failed(&positions, &target, None, false, format!("TLS handshake failed: {e}"))
            }
            AttemptResult::Refused { reply, error } => self.failed(&positions, &target, reply, false, error),
            AttemptResult::Unsendable(e) => self.failed(&positions, &target, None, true, e),
        };
        self.attempts.push(Attempt { target, security, outcome });
    }

    /// A connection that carried no transaction: its recipients' latest outcome says why.
    fn failed(
        &mut self,
        positions: &[usize],
        target: &Target,
        reply: Option<Reply>,
        permanent: bool,
        error: String,
    ) -> (Option<Security>, String) {
        let outcome = match &reply {
            Some(reply) => format!("{error}: {reply}"),
            None => error.clone(),
        };
        for &p in positions {
            let d = &mut self.decisions[p];
            d.result.status =
                if permanent { RecipientStatus::PermanentFailure } else { RecipientStatus::TemporaryFailure };
            d.result.rcpt_reply = None;
            d.result.lmtp_reply = None;
            d.result.reply = reply.clone();
            d.route = Route {
                domain: self.domain.clone(),
                host: Some(target.host.clone()),
                address: Some(target.address),
                security: None,
                error: Some(error.clone()),
            };
        }
        (None, outcome)
    }

    /// Decides every recipient without a connection.
    fn decide_all(&mut self, permanent: bool, error: String) {
        for d in &mut self.decisions {
            d.result.status =
                if permanent { RecipientStatus::PermanentFailure } else { RecipientStatus::TemporaryFailure };
            d.route.error = Some(error.clone());
            d.settled = true;
        }
    }

    /// The domain's outcome, once [`Next::Done`]: each recipient (envelope index, result, route), and the
    /// domain's report.
    pub fn finish(self) -> DomainOutcome {
        let recipients =
            self.recipients.into_iter().zip(self.decisions).map(|(i, d)| (i, d.result, d.route)).collect();
        let report =
            DomainReport { domain: self.domain, exchangers: self.exchangers, attempts: self.attempts };
        DomainOutcome { recipients, report }
    }
}

/// A domain's delivery, done: what [`MxReport::merge`] takes.
#[derive(Clone, Debug)]
pub struct DomainOutcome {
    /// Each recipient: its index in the envelope, its result, where it was decided.
    pub recipients: Vec<(usize, RecipientResult, Route)>,
    /// The domain's report.
    pub report: DomainReport,
}

/// The report of a message delivered to its recipients' MX hosts: one [`MessageReport`] for the whole
/// message, and where each recipient's outcome was decided.
///
/// Why a wrapper rather than a field in the core's report: the host is the transport's business (the core
/// speaks to one server and never knows its name), and `message` reads exactly like the report of a
/// message that went to one server (the outcome, each recipient's status and deciding reply, in envelope
/// order), so whatever consumes a [`MessageReport`] (exit statuses, JSON, `Display`) takes it unchanged;
/// `routes` adds the host per recipient beside it, index for index.
#[derive(Clone, Debug)]
pub struct MxReport {
    /// The whole message: Sent when any recipient was delivered, Unknown when none was and some outcome is
    /// unknown, Rejected otherwise; every recipient in envelope order with the reply that decided it. Its
    /// message-level replies are those of the first session that delivered (else the first session).
    pub message: MessageReport,
    /// Where each recipient was decided, in the order of `message.recipients`.
    pub routes: Vec<Route>,
    /// Each domain: what DNS said, and every connection.
    pub domains: Vec<DomainReport>,
}

impl MxReport {
    /// One report from each domain's outcome, the recipients in envelope order. `sessions` are the
    /// transactions' own reports, for the message-level replies and warnings.
    pub fn merge(envelope: &Envelope, domains: Vec<DomainOutcome>, sessions: Vec<MessageReport>) -> MxReport {
        let n = envelope.recipients().len();
        let mut slots: Vec<Option<(RecipientResult, Route)>> = vec![None; n];
        let mut reports = Vec::with_capacity(domains.len());
        for domain in domains {
            for (i, result, route) in domain.recipients {
                slots[i] = Some((result, route));
            }
            reports.push(domain.report);
        }
        let (recipients, routes): (Vec<RecipientResult>, Vec<Route>) =
            slots.into_iter().map(|s| s.expect("every recipient belongs to a domain")).unzip();
        let base =
            sessions.iter().position(|r| r.outcome == Outcome::Sent).or((!sessions.is_empty()).then_some(0));
        let mut warnings = Vec::new();
        for session in &sessions {
            for w in &session.warnings {
                if !warnings.contains(w) {
                    warnings.push(w.clone());
                }
            }
        }
        let mut message = match base {
            Some(i) => sessions.into_iter().nth(i).expect("in range"),
            None => MessageReport {
                id: MessageId::UNSENT,
                outcome: Outcome::Rejected,
                failure: None,
                recipients: Vec::new(),
                mail_reply: None,
                data_reply: None,
                final_reply: None,
                warnings: Vec::new(),
            },
        };
        let any = |s| recipients.iter().any(|r| r.status == s);
        message.outcome = if any(RecipientStatus::Delivered) {
            Outcome::Sent
        } else if any(RecipientStatus::Unknown) {
            Outcome::Unknown
        } else {
            Outcome::Rejected
        };
        if message.outcome == Outcome::Sent {
            message.failure = None;
        } else if message.failure.is_none() || base.is_none() {
            message.failure = Some(Failure::NoRecipientAccepted);
        }
        message.recipients = recipients;
        message.warnings = warnings;
        MxReport { message, routes, domains: reports }
    }

    /// Each recipient's result with where it was decided, in envelope order.
    pub fn recipients(&self) -> impl Iterator<Item = (&RecipientResult, &Route)> {
        self.message.recipients.iter().zip(&self.routes)
    }
}

/// The outcome, then one line a recipient: its status, the host (and whether TLS protected the session),
/// and the reply or error that decided it.
///
/// ```text
/// sent
///   delivered bob@example.org via mx1.example.org [192.0.2.1] (TLS, certificate not verified): 250 2.0.0 Ok
///   rejected (permanent) carol@example.net: example.net has a null MX (RFC 7505): the domain accepts no mail
/// ```
impl fmt::Display for MxReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.message.outcome)?;
        for (r, route) in self.recipients() {
            write!(f, "\n  {} {}", r.status, r.path)?;
            if let Some(host) = &route.host {
                write!(f, " via {host}")?;
            }
            if let Some(address) = route.address {
                write!(f, " [{address}]")?;
            }
            match route.security {
                Some(Security::Tls { verified: true }) => write!(f, " (TLS)")?,
                Some(Security::Tls { verified: false }) => write!(f, " (TLS, certificate not verified)")?,
                Some(Security::Plaintext) => write!(f, " (plaintext)")?,
                None => {}
            }
            match (&r.reply, &route.error) {
                (Some(reply), Some(error)) => write!(f, ": {error}: {reply}")?,
                (Some(reply), None) => write!(f, ": {reply}")?,
                (None, Some(error)) => write!(f, ": {error}")?,
                (None, None) => {}
            }
        }
        for w in &self.message.warnings {
            write!(f, "\n  warning: {w}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mx(records: &[(u16, &str)]) -> MxAnswer {
        MxAnswer::Records(
            records.iter().map(|&(preference, e)| MxRecord { preference, exchange: e.into() }).collect(),
        )
    }

    fn hosts(e: Exchangers) -> Vec<String> {
        match e {
            Exchangers::Hosts(h) => h,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn preference_order_with_random_order_among_equals() {
        let answer = mx(&[(20, "c.example."), (10, "a.example."), (10, "b.example."), (30, "D.example")]);
        let mut firsts = std::collections::HashSet::new();
        for seed in 0..64 {
            let h = hosts(exchangers("example", answer.clone(), seed));
            // The lower preference always comes first; c and d keep their places.
            assert_eq!(&h[2..], ["c.example", "d.example"], "seed {seed}");
            let mut first_two = h[..2].to_vec();
            firsts.insert(first_two[0].clone());
            first_two.sort();
            assert_eq!(first_two, ["a.example", "b.example"]);
        }
        // Both equal hosts come first for some seed.
        assert_eq!(firsts.len(), 2, "{firsts:?}");
        // The same seed, the same order.
        assert_eq!(exchangers("example", answer.clone(), 7), exchangers("example", answer, 7));
    }

    #[test]
    fn null_implicit_missing_and_failed() {
        assert_eq!(exchangers("example", mx(&[(0, ".")]), 1), Exchangers::NullMx);
        // A `.` among real hosts is skipped, not a null MX.
        assert_eq!(hosts(exchangers("example", mx(&[(0, "."), (10, "mx.example")]), 1)), ["mx.example"]);
        assert_eq!(hosts(exchangers("example.org", MxAnswer::NoRecords, 1)), ["example.org"]);
        assert_eq!(exchangers("example", MxAnswer::NoDomain, 1), Exchangers::NoDomain);
        assert_eq!(
            exchangers("example", MxAnswer::Failed("SERVFAIL".into()), 1),
            Exchangers::DnsFailed("SERVFAIL".into())
        );
        // Duplicate names (case, trailing dot) are tried once.
        assert_eq!(hosts(exchangers("e", mx(&[(10, "MX.e."), (20, "mx.e")]), 1)), ["mx.e"]);
    }

    #[test]
    fn recipients_grouped_by_a_label_domain() {
        let env = Envelope::parse(
            "a@example.org",
            &[
                "x@Example.ORG",
                "y@bücher.example",
                "z@example.net",
                "w@xn--bcher-kva.example",
                "v@[127.0.0.5]",
            ],
        )
        .unwrap();
        let groups = group(&env);
        let summary: Vec<(&str, &[usize])> =
            groups.iter().map(|g| (g.domain.as_str(), &g.recipients[..])).collect();
        assert_eq!(
            summary,
            [
                ("example.org", &[0][..]),
                ("xn--bcher-kva.example", &[1, 3][..]),
                ("example.net", &[2][..]),
                ("[127.0.0.5]", &[4][..])
            ]
        );
        assert_eq!(groups[3].destination, Destination::Address("127.0.0.5".parse().unwrap()));
        assert_eq!(groups[0].destination, Destination::Lookup);
    }

    fn envelope(to: &[&str]) -> Envelope {
        Envelope::parse("a@example.org", to).unwrap()
    }

    fn delivery(env: &Envelope, exchangers: Exchangers, config: MxConfig) -> Delivery {
        let g = group(env);
        assert_eq!(g.len(), 1);
        Delivery::new(env, &g[0], exchangers, config)
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn connect(d: &mut Delivery) -> Target {
        match d.poll() {
            Next::Connect(t) => t,
            other => panic!("{other:?}"),
        }
    }

    fn report(env: &Envelope, indices: &[usize], statuses: &[(RecipientStatus, u16)]) -> MessageReport {
        let recipients = indices
            .iter()
            .zip(statuses)
            .map(|(&i, &(status, code))| {
                let reply = Reply::new(code, "x");
                RecipientResult {
                    path: env.recipients()[i].path().clone(),
                    rcpt_reply: Some(reply.clone()),
                    lmtp_reply: None,
                    status,
                    reply: Some(reply),
                }
            })
            .collect::<Vec<_>>();
        let delivered = recipients.iter().any(|r| r.status == RecipientStatus::Delivered);
        MessageReport {
            id: MessageId::UNSENT,
            outcome: if delivered { Outcome::Sent } else { Outcome::Rejected },
            failure: (!delivered).then_some(Failure::NoRecipientAccepted),
            recipients,
            mail_reply: None,
            data_reply: None,
            final_reply: None,
            warnings: Vec::new(),
        }
    }

    #[test]
    fn next_address_after_connect_failure_and_4yz_greeting() {
        let env = envelope(&["x@example.org"]);
        let mut d = delivery(
            &env,
            Exchangers::Hosts(vec!["mx1.example.org".into(), "mx2.example.org".into()]),
            MxConfig::default(),
        );
        assert_eq!(d.poll(), Next::Resolve("mx1.example.org".into()));
        d.resolved("mx1.example.org", Ok(vec![ip("192.0.2.1"), ip("2001:db8::1")]));
        // IPv6 first.
        assert_eq!(connect(&mut d).address, ip("2001:db8::1"));
        assert_eq!(d.in_flight(), [0]);
        d.attempt_done(AttemptResult::ConnectFailed("refused".into()));
        assert_eq!(connect(&mut d).address, ip("192.0.2.1"));
        d.attempt_done(AttemptResult::Refused {
            reply: Some(Reply::new(421, "busy")),
            error: "greeting".into(),
        });
        assert_eq!(d.poll(), Next::Resolve("mx2.example.org".into()));
        d.resolved("mx2.example.org", Ok(vec![ip("192.0.2.2")]));
        let t = connect(&mut d);
        assert_eq!((t.host.as_str(), t.starttls), ("mx2.example.org", true));
        d.attempt_done(AttemptResult::Sent {
            report: report(&env, &[0], &[(RecipientStatus::Delivered, 250)]),
            security: Security::Plaintext,
        });
        assert_eq!(d.poll(), Next::Done);
        let out = d.finish();
        let (i, result, route) = &out.recipients[0];
        assert_eq!((*i, result.status), (0, RecipientStatus::Delivered));
        assert_eq!(route.host.as_deref(), Some("mx2.example.org"));
        assert_eq!(out.report.attempts.len(), 3);
    }

    #[test]
    fn only_temporary_recipients_go_to_the_next_host() {
        let env = envelope(&["a@example.org", "b@example.org", "c@example.org"]);
        let mut d = delivery(&env, Exchangers::Hosts(vec!["mx1".into(), "mx2".into()]), MxConfig::default());
        assert_eq!(d.poll(), Next::Resolve("mx1".into()));
        d.resolved("mx1", Ok(vec![ip("192.0.2.1")]));
        connect(&mut d);
        assert_eq!(d.in_flight(), [0, 1, 2]);
        use RecipientStatus::*;
        d.attempt_done(AttemptResult::Sent {
            report: report(
                &env,
                &[0, 1, 2],
                &[(Delivered, 250), (TemporaryFailure, 451), (PermanentFailure, 550)],
            ),
            security: Security::Tls { verified: false },
        });
        assert_eq!(d.poll(), Next::Resolve("mx2".into()));
        d.resolved("mx2", Ok(vec![ip("192.0.2.2")]));
        connect(&mut d);
        assert_eq!(d.in_flight(), [1]);
        d.attempt_done(AttemptResult::Sent {
            report: report(&env, &[1], &[(TemporaryFailure, 452)]),
            security: Security::Plaintext,
        });
        // Nothing left: b keeps the latest 4yz, from mx2.
        assert_eq!(d.poll(), Next::Done);
        let out = d.finish();
        let summary: Vec<_> = out
            .recipients
            .iter()
            .map(|(_, r, route)| (r.status, r.reply.as_ref().map(Reply::code), route.host.clone().unwrap()))
            .collect();
        assert_eq!(
            summary,
            [
                (Delivered, Some(250), "mx1".to_owned()),
                (TemporaryFailure, Some(452), "mx2".to_owned()),
                (PermanentFailure, Some(550), "mx1".to_owned())
            ]
        );
        assert_eq!(out.recipients[0].2.security, Some(Security::Tls { verified: false }));
    }

    #[test]
    fn unknown_outcomes_never_go_again() {
        let env = envelope(&["a@example.org"]);
        let mut d = delivery(&env, Exchangers::Hosts(vec!["mx1".into(), "mx2".into()]), MxConfig::default());
        let _ = d.poll();
        d.resolved("mx1", Ok(vec![ip("192.0.2.1")]));
        connect(&mut d);
        d.attempt_done(AttemptResult::Sent {
            report: report(&env, &[0], &[(RecipientStatus::Unknown, 250)]),
            security: Security::Plaintext,
        });
        assert_eq!(d.poll(), Next::Done);
    }

    #[test]
    fn failed_handshake_retries_in_plaintext_under_may_only() {
        let env = envelope(&["a@example.org"]);
        let hosts = Exchangers::Hosts(vec!["mx1".into(), "mx2".into()]);
        let mut d = delivery(&env, hosts.clone(), MxConfig::default());
        let _ = d.poll();
        d.resolved("mx1", Ok(vec![ip("192.0.2.1")]));
        let first = connect(&mut d);
        d.attempt_done(AttemptResult::TlsFailed("bad record".into()));
        let again = connect(&mut d);
        assert_eq!(again, Target { starttls: false, ..first });
        // A second failure of the plaintext session moves on.
        d.attempt_done(AttemptResult::ConnectFailed("refused".into()));
        assert_eq!(d.poll(), Next::Resolve("mx2".into()));

        for tls in [TlsPolicy::Encrypt, TlsPolicy::Verify] {
            let mut d = delivery(&env, hosts.clone(), MxConfig { tls, ..MxConfig::default() });
            let _ = d.poll();
            d.resolved("mx1", Ok(vec![ip("192.0.2.1")]));
            connect(&mut d);
            d.attempt_done(AttemptResult::TlsFailed("unknown issuer".into()));
            assert_eq!(d.poll(), Next::Resolve("mx2".into()), "{tls:?}");
        }
    }

    #[test]
    fn at_most_max_addresses_are_tried() {
        let env = envelope(&["a@example.org"]);
        let names: Vec<String> = (1..=4).map(|i| format!("mx{i}")).collect();
        let mut d = delivery(&env, Exchangers::Hosts(names.clone()), MxConfig::default());
        let mut connects = 0;
        loop {
            match d.poll() {
                Next::Resolve(host) => {
                    let n: u8 = host[2..].parse().unwrap();
                    d.resolved(&host, Ok(vec![ip(&format!("192.0.2.{n}")), ip(&format!("2001:db8::{n}"))]));
                }
                Next::Connect(_) => {
                    connects += 1;
                    d.attempt_done(AttemptResult::ConnectFailed("refused".into()));
                }
                Next::Done => break,
            }
        }
        assert_eq!(connects, MAX_ADDRESSES);
        let out = d.finish();
        let (_, r, route) = &out.recipients[0];
        assert_eq!(r.status, RecipientStatus::TemporaryFailure);
        assert!(route.error.as_deref().unwrap().starts_with("connect failed"), "{route:?}");
    }

    #[test]
    fn decided_without_a_connection() {
        let env = envelope(&["a@example.org"]);
        for (exchangers, status) in [
            (Exchangers::NullMx, RecipientStatus::PermanentFailure),
            (Exchangers::NoDomain, RecipientStatus::PermanentFailure),
            (Exchangers::DnsFailed("SERVFAIL".into()), RecipientStatus::TemporaryFailure),
        ] {
            let mut d = delivery(&env, exchangers.clone(), MxConfig::default());
            assert_eq!(d.poll(), Next::Done, "{exchangers:?}");
            let out = d.finish();
            assert_eq!(out.recipients[0].1.status, status);
            assert_eq!(out.recipients[0].2.host, None);
            assert!(out.report.attempts.is_empty());
        }
        // An implicit MX whose domain has no address: permanent; a SERVFAIL for it: temporary.
        for (answer, status) in [
            (Ok(vec![]), RecipientStatus::PermanentFailure),
            (Err(DnsError { temporary: true, text: "SERVFAIL".into() }), RecipientStatus::TemporaryFailure),
        ] {
            let mut d = delivery(&env, Exchangers::Hosts(vec!["example.org".into()]), MxConfig::default());
            assert_eq!(d.poll(), Next::Resolve("example.org".into()));
            d.resolved("example.org", answer);
            assert_eq!(d.poll(), Next::Done);
            assert_eq!(d.finish().recipients[0].1.status, status);
        }
    }

    #[test]
    fn merged_report_in_envelope_order_with_hosts() {
        let env = envelope(&["a@one.example", "b@two.example", "c@one.example"]);
        let groups = group(&env);
        let mut outcomes = Vec::new();
        let mut sessions = Vec::new();
        for (g, host) in groups.iter().zip(["mx.one.example", "mx.two.example"]) {
            let mut d = Delivery::new(&env, g, Exchangers::Hosts(vec![host.into()]), MxConfig::default());
            assert_eq!(d.poll(), Next::Resolve(host.into()));
            d.resolved(host, Ok(vec![ip("192.0.2.1")]));
            connect(&mut d);
            let statuses: Vec<_> = d
                .in_flight()
                .iter()
                .map(|&i| {
                    if i == 1 {
                        (RecipientStatus::PermanentFailure, 550)
                    } else {
                        (RecipientStatus::Delivered, 250)
                    }
                })
                .collect();
            let r = report(&env, &d.in_flight(), &statuses);
            sessions.push(r.clone());
            d.attempt_done(AttemptResult::Sent { report: r, security: Security::Plaintext });
            assert_eq!(d.poll(), Next::Done);
            outcomes.push(d.finish());
        }
        let merged = MxReport::merge(&env, outcomes, sessions);
        assert_eq!(merged.message.outcome, Outcome::Sent);
        assert!(merged.message.failure.is_none());
        let summary: Vec<_> = merged
            .recipients()
            .map(|(r, route)| (r.path.as_str().to_owned(), r.status, route.host.clone().unwrap()))
            .collect();
        assert_eq!(
            summary,
            [
                ("a@one.example".to_owned(), RecipientStatus::Delivered, "mx.one.example".to_owned()),
                ("b@two.example".to_owned(), RecipientStatus::PermanentFailure, "mx.two.example".to_owned()),
                ("c@one.example".to_owned(), RecipientStatus::Delivered, "mx.one.example".to_owned()),
            ]
        );
        let text = merged.to_string();
        assert!(
            text.contains("delivered a@one.example via mx.one.example [192.0.2.1] (plaintext): 250"),
            "{text}"
        );

        // Nothing delivered and no session: rejected, each recipient with its reason.
        let mut d = delivery(&envelope(&["a@example.org"]), Exchangers::NullMx, MxConfig::default());
        assert_eq!(d.poll(), Next::Done);
        let merged = MxReport::merge(&envelope(&["a@example.org"]), vec![d.finish()], Vec::new());
        assert_eq!(merged.message.outcome, Outcome::Rejected);
        assert!(!merged.message.is_temporary());
        assert!(merged.to_string().contains("null MX"), "{merged}");
    }

    #[test]
    fn tls_policy_sets_the_session_and_the_certificate_check() {
        let mut o = Options::new("192.0.2.1", 25);
        TlsPolicy::May.apply(&mut o, true);
        assert_eq!((o.session.tls, o.certificate), (TlsMode::Opportunistic, CertificateCheck::Recorded));
        TlsPolicy::May.apply(&mut o, false);
        assert_eq!(o.session.tls, TlsMode::None);
        TlsPolicy::Encrypt.apply(&mut o, true);
        assert_eq!((o.session.tls, o.certificate), (TlsMode::Required, CertificateCheck::Recorded));
        TlsPolicy::Verify.apply(&mut o, true);
        assert_eq!((o.session.tls, o.certificate), (TlsMode::Required, CertificateCheck::Required));
    }
}
