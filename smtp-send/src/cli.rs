//! Command-line arguments and what they mean: the contract scripts rely on.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, ValueEnum};
use smtp_proto::address::{ForwardPath, HeloName, ReversePath};
use smtp_proto::command::{EnvId, Notify, OrigRecipient, Ret};
use smtp_proto::sasl::Credentials;
use smtp_proto::{DsnPolicy, Envelope, ExtensionUse, Protocol, Recipient, Timeouts, TlsMode};
use smtp_transport::mx::{MxConfig, TlsPolicy};
use smtp_transport::{Options, SMTP_PORT};

use crate::message::Message;

/// Exit statuses (sysexits-style for usage and input errors).
pub mod exit {
    /// Every recipient accepted.
    pub const SENT: i32 = 0;
    /// Accepted for some recipients only.
    pub const PARTIAL: i32 = 1;
    /// Rejected or failed: nothing delivered.
    pub const FAILED: i32 = 2;
    /// Some recipient's outcome is unknown: the connection ended after the final dot, before the reply (in
    /// LMTP, before that recipient's reply). A retry may deliver twice.
    pub const UNKNOWN: i32 = 3;
    /// Bad usage (EX_USAGE).
    pub const USAGE: i32 = 64;
    /// Invalid input: an address, a control character in an envelope field, an unreadable message, a From:
    /// that names no single sender, a message that needs BINARYMIME where it cannot have it (EX_DATAERR).
    pub const DATAERR: i32 = 65;
}

/// TLS choice on the command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum TlsArg {
    /// Never upgrade.
    None,
    /// STARTTLS when the server offers it.
    Starttls,
    /// STARTTLS, or fail.
    StarttlsRequired,
    /// TLS from the first byte (port 465).
    Implicit,
}

/// auto or never.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum AutoNever {
    /// Use it when the server offers it.
    Auto,
    /// Never use it.
    Never,
}

/// TLS for `--mx`, after Postfix's security levels (RFC 7435).
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum MxTlsArg {
    /// STARTTLS when offered, any certificate (the report says whether it verified); plaintext again
    /// after a failed handshake.
    May,
    /// TLS required, any certificate.
    Encrypt,
    /// TLS required, a certificate valid for the MX host's name.
    Verify,
}

/// DSN RET values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum RetArg {
    /// Return the full message in a DSN.
    Full,
    /// Headers only.
    Hdrs,
}

/// Sends one RFC 5322 message to an SMTP or LMTP server, or N copies over C connections as a load
/// generator. Without --server or --url it delivers to a built-in sink on 127.0.0.1 and prints what the
/// sink received.
///
/// Exit status: 0 every recipient delivered, 1 some only, 2 nothing delivered, 3 some recipient's outcome
/// unknown, 64 bad usage, 65 invalid input (reported before connecting, or a message that needs
/// BINARYMIME the server lacks).
#[derive(Debug, Parser)]
#[command(name = "smtp-send", version)]
pub struct Cli {
    /// Server as `HOST[:PORT]` (port 25 by default; 465 means implicit TLS).
    #[arg(
        long,
        conflicts_with = "url",
        help = "Server as HOST[:PORT] (port 25 by default; 465 means implicit TLS)"
    )]
    pub server: Option<String>,
    /// Server as a URL: smtp://, smtp+starttls://, smtps://, lmtp://, with user:password@ if needed.
    #[arg(long)]
    pub url: Option<String>,
    /// Direct delivery: each recipient to its own domain's MX hosts (RFC 5321 §5.1), one session a domain;
    /// the report names the host per recipient.
    #[arg(long, conflicts_with_all = ["server", "url", "tls", "lmtp", "user", "count", "connections"])]
    pub mx: bool,
    /// With --mx: ask this DNS server (`IP[:PORT]`, port 53 by default) instead of the system's.
    #[arg(
        long,
        value_name = "IP[:PORT]",
        requires = "mx",
        help = "With --mx: ask this DNS server (IP[:PORT], port 53 by default) instead of the system's"
    )]
    pub dns: Option<String>,
    /// With --mx: the port MX hosts listen on (25; another one for tests).
    #[arg(long, value_name = "PORT", requires = "mx", value_parser = clap::value_parser!(u16).range(1..))]
    pub mx_port: Option<u16>,
    /// With --mx: TLS policy (default may).
    #[arg(long, value_enum, requires = "mx")]
    pub mx_tls: Option<MxTlsArg>,
    /// TLS mode. Default: starttls without credentials, starttls-required with --user, implicit for port
    /// 465 or smtps://.
    #[arg(long, value_enum)]
    pub tls: Option<TlsArg>,
    /// Extra trusted CA certificates (PEM).
    #[arg(long, value_name = "PEM")]
    pub ca_file: Option<PathBuf>,
    /// EHLO name (default: the local address as a literal, e.g. [192.0.2.1]).
    #[arg(long, value_name = "NAME")]
    pub ehlo: Option<String>,
    /// Speak LMTP (LHLO; one reply per recipient).
    #[arg(long)]
    pub lmtp: bool,
    /// User name for AUTH.
    #[arg(long, value_name = "NAME", requires = "password_env")]
    pub user: Option<String>,
    /// Name of the environment variable holding the password.
    #[arg(long, value_name = "VAR", requires = "user")]
    pub password_env: Option<String>,
    /// Reverse-path (default: the message's From: address, or its Sender: when From: names several; ''
    /// for the null path <>).
    #[arg(long, value_name = "ADDR")]
    pub from: Option<String>,
    /// A recipient (repeatable).
    #[arg(long, value_name = "ADDR", required = true)]
    pub to: Vec<String>,
    /// DSN NOTIFY for every recipient: never, or a comma list of success, failure, delay.
    #[arg(long, value_name = "LIST")]
    pub dsn_notify: Option<String>,
    /// DSN RET.
    #[arg(long, value_enum)]
    pub dsn_ret: Option<RetArg>,
    /// DSN ENVID.
    #[arg(long, value_name = "ID")]
    pub dsn_envid: Option<String>,
    /// Refuse to send when DSN is asked for and the server lacks it (default: send without, warn).
    #[arg(long)]
    pub dsn_strict: bool,
    /// BDAT when the server offers CHUNKING.
    #[arg(long, value_enum, default_value = "auto")]
    pub chunking: AutoNever,
    /// PIPELINING when the server offers it.
    #[arg(long, value_enum, default_value = "auto")]
    pub pipelining: AutoNever,
    /// Bound on the wait for each reply, counted from the command (default: RFC 5321 per-phase timeouts).
    #[arg(long, value_name = "SECONDS")]
    pub timeout: Option<f64>,
    /// Send the message N times in all, pipelined over a pool of `--connections` connections. A copy whose
    /// connection ended before its end of data (a 421, a lost connection) goes again, once, on a new one; a
    /// failed connect is tried again after a backoff (100 ms, doubling; 3 failures in a row end the run).
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..))]
    pub count: u64,
    /// Run up to C connections at once (the copies of `--count` are shared among them).
    #[arg(long, value_name = "C", default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=10_000))]
    pub connections: u64,
    /// At most this many messages a second, over all connections (spaced evenly, taken before each MAIL).
    #[arg(long, value_name = "MSGS_PER_SECOND", value_parser = parse_rate)]
    pub rate: Option<f64>,
    /// At most N messages on a connection (besides the server's LIMITS MAILMAX): then QUIT and a new one.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub max_per_connection: Option<u32>,
    /// Print one JSON object on stdout, on every exit path (usage errors included).
    #[arg(long)]
    pub json: bool,
    /// Print the SMTP dialogue on stderr (AUTH redacted).
    #[arg(long)]
    pub transcript: bool,
    /// Print nothing but errors (the exit status tells).
    #[arg(long)]
    pub quiet: bool,
    /// The message (RFC 5322), or - for stdin.
    #[arg(value_name = "FILE")]
    pub file: Option<PathBuf>,
}

/// A problem with the invocation: the message to print and the exit status.
#[derive(Debug)]
pub struct Invalid {
    /// [`exit::USAGE`] or [`exit::DATAERR`].
    pub status: i32,
    /// What is wrong.
    pub message: String,
}

/// A rate: a positive, finite number of messages a second.
fn parse_rate(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(rate) if rate.is_finite() && rate > 0.0 => Ok(rate),
        _ => Err(format!("{text:?} is not a positive number of messages a second")),
    }
}

/// `IP[:PORT]` or `[IPv6][:PORT]`, port 53 by default: a nameserver is named by its address (naming it by
/// a host name would need DNS to find DNS).
fn parse_dns(text: &str) -> Result<SocketAddr, Invalid> {
    if let Ok(addr) = text.parse::<SocketAddr>() {
        return Ok(addr);
    }
    let ip = text.strip_prefix('[').and_then(|t| t.strip_suffix(']')).unwrap_or(text);
    match ip.parse::<IpAddr>() {
        Ok(ip) => Ok(SocketAddr::new(ip, 53)),
        Err(_) => Err(usage(format!("--dns: {text:?} is not IP[:PORT] or [IPv6][:PORT]"))),
    }
}

fn usage(message: impl Into<String>) -> Invalid {
    Invalid { status: exit::USAGE, message: message.into() }
}

fn data(message: impl Into<String>) -> Invalid {
    Invalid { status: exit::DATAERR, message: message.into() }
}

/// How `--mx` delivers.
#[derive(Debug)]
pub struct MxPlan {
    /// The DNS server to ask; `None`: the system's configuration.
    pub dns: Option<SocketAddr>,
    /// The port, the TLS policy, the address bound.
    pub config: MxConfig,
}

/// Everything needed to send, validated before any connection is made.
#[derive(Debug)]
pub struct Plan {
    /// Where to connect; `None`: the built-in sink. With `--mx`, the template of every connection.
    pub options: Option<Options>,
    /// Direct delivery (`--mx`).
    pub mx: Option<MxPlan>,
    /// The envelope for every copy.
    pub envelope: Envelope,
    /// How many copies in all.
    pub count: u64,
    /// How many connections at most.
    pub connections: u64,
    /// Messages a second, over all connections.
    pub rate: Option<f64>,
    /// Messages a connection carries at most.
    pub max_per_connection: Option<u32>,
}

impl Cli {
    /// Checks every argument and the message's envelope-relevant parts; reads the password from the
    /// environment.
    pub fn plan(&self, message: &Message) -> Result<Plan, Invalid> {
        self.plan_with_env(message, |var| std::env::var(var).ok())
    }

    /// [`Cli::plan`], with `env` standing for the environment.
    pub fn plan_with_env(
        &self,
        message: &Message,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Plan, Invalid> {
        let options = match (&self.server, &self.url) {
            // The template of every MX connection: each one sets its host, port and TLS.
            (None, None) if self.mx => Some(Options::new("mx", SMTP_PORT)),
            (None, None) => None,
            (Some(server), None) => {
                Some(Options::from_server(server).map_err(|e| usage(format!("--server: {e}")))?)
            }
            (None, Some(url)) => Some(Options::from_url(url).map_err(|e| usage(e.to_string()))?),
            (Some(_), Some(_)) => return Err(usage("--server and --url are exclusive")),
        };
        let options = match options {
            Some(mut o) => {
                self.apply(&mut o, &env)?;
                Some(o)
            }
            None => {
                if self.user.is_some() || self.tls.is_some_and(|t| t != TlsArg::None) {
                    return Err(usage(
                        "the built-in sink has no TLS or AUTH: name a server with --server or --url",
                    ));
                }
                None
            }
        };
        let mx = match self.mx {
            false => None,
            true => {
                let mut config = MxConfig::default();
                config.port = self.mx_port.unwrap_or(SMTP_PORT);
                config.tls = match self.mx_tls.unwrap_or(MxTlsArg::May) {
                    MxTlsArg::May => TlsPolicy::May,
                    MxTlsArg::Encrypt => TlsPolicy::Encrypt,
                    MxTlsArg::Verify => TlsPolicy::Verify,
                };
                let dns = match &self.dns {
                    None => None,
                    Some(text) => Some(parse_dns(text)?),
                };
                Some(MxPlan { dns, config })
            }
        };
        Ok(Plan {
            options,
            mx,
            envelope: self.envelope(message)?,
            count: self.count,
            connections: self.connections,
            rate: self.rate,
            max_per_connection: self.max_per_connection,
        })
    }

    /// Applies the connection arguments (TLS, AUTH, EHLO name, LMTP, timeouts, chunking, pipelining, DSN
    /// policy, transcript) to `o`; the built-in sink's options go through here too.
    pub fn apply(&self, o: &mut Options, env: &impl Fn(&str) -> Option<String>) -> Result<(), Invalid> {
        if let (Some(user), Some(var)) = (&self.user, &self.password_env) {
            let password = env(var).ok_or_else(|| usage(format!("--password-env: ${var} is not set")))?;
            let creds = Credentials::password(user.clone(), password);
            creds.validate().map_err(|e| data(format!("invalid credentials: {e}")))?;
            *o = o.clone().with_credentials(creds);
        }
        if let Some(tls) = self.tls {
            o.session.tls = match tls {
                TlsArg::None => TlsMode::None,
                TlsArg::Starttls => TlsMode::Opportunistic,
                TlsArg::StarttlsRequired => TlsMode::Required,
                TlsArg::Implicit => TlsMode::Implicit,
            };
        }
        if let Some(ehlo) = &self.ehlo {
            o.helo_name = Some(HeloName::parse(ehlo).map_err(|e| data(format!("--ehlo: {e}")))?);
        }
        if self.lmtp {
            o.session.protocol = Protocol::Lmtp;
        }
        o.ca_file = self.ca_file.clone().or(o.ca_file.take());
        // `never` wins over the URL's choice; the default (`auto`) leaves it.
        if self.chunking == AutoNever::Never {
            o.session.chunking = ExtensionUse::Never;
        }
        if self.pipelining == AutoNever::Never {
            o.session.pipelining = ExtensionUse::Never;
        }
        if self.dsn_strict {
            o.session.dsn_policy = DsnPolicy::Require;
        }
        if let Some(secs) = self.timeout {
            if !(secs.is_finite() && secs > 0.0 && secs < 1e9) {
                return Err(usage("--timeout takes a positive number of seconds"));
            }
            o.session.timeouts = Timeouts::uniform(Duration::from_secs_f64(secs));
            o.connect_timeout = Duration::from_secs_f64(secs);
        }
        o.session.transcript = self.transcript;
        Ok(())
    }

    fn envelope(&self, message: &Message) -> Result<Envelope, Invalid> {
        let from = match &self.from {
            Some(f) => ReversePath::parse(f).map_err(|e| data(format!("--from: {e}")))?,
            None => match message.header_sender() {
                Ok(s) => ReversePath::parse(&s.address).map_err(|e| {
                    data(format!(
                        "the message's {} address {:?} is not usable as the envelope sender ({e}): \
                         give it with --from ('' for <>)",
                        s.field, s.address
                    ))
                })?,
                Err(why) => {
                    return Err(data(format!("{why}: give the envelope sender with --from ('' for <>)")));
                }
            },
        };
        if let (Some(why), AutoNever::Never) = (message.binary_reason(), self.chunking) {
            // BINARYMIME only travels over BDAT (RFC 3030 §3): certain before connecting.
            return Err(data(format!(
                "the message needs BODY=BINARYMIME over BDAT (RFC 3030): {why}; --chunking never \
                 rules out BDAT"
            )));
        }
        let notify = match &self.dsn_notify {
            Some(n) => Some(Notify::parse(n).map_err(|e| data(format!("--dsn-notify: {e}")))?),
            None => None,
        };
        let mut recipients = Vec::with_capacity(self.to.len());
        for to in &self.to {
            let path = ForwardPath::parse(to).map_err(|e| data(format!("--to: {e}")))?;
            let mut r = Recipient::new(path.clone());
            if let Some(n) = &notify {
                r = r.notify(*n).orcpt(OrigRecipient::from_forward_path(&path));
            }
            recipients.push(r);
        }
        let mut env = Envelope::new(from, recipients).map_err(|e| data(e.to_string()))?;
        if let Some(ret) = self.dsn_ret {
            env = env.ret(match ret {
                RetArg::Full => Ret::Full,
                RetArg::Hdrs => Ret::Hdrs,
            });
        }
        if let Some(id) = &self.dsn_envid {
            env = env.envid(EnvId::new(id).map_err(|e| data(format!("--dsn-envid: {e}")))?);
        }
        // UTF-8 in the header needs SMTPUTF8 (RFC 6532 §3, RFC 6531 §3.4); the core refuses the message
        // before MAIL when the server lacks it.
        Ok(env
            .body_type(message.body_type())
            .size(message.size())
            .smtputf8(message.eight_bit_header_field().is_some()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cli(args: &[&str]) -> Cli {
        Cli::try_parse_from(std::iter::once("smtp-send").chain(args.iter().copied())).unwrap()
    }

    fn msg() -> Message {
        Message::from_bytes(b"From: Alice <alice@example.org>\r\nSubject: hi\r\n\r\nhello\r\n".to_vec())
    }

    #[test]
    fn defaults_and_from_header() {
        let plan = cli(&["--to", "bob@example.org"]).plan(&msg()).unwrap();
        assert!(plan.options.is_none());
        assert_eq!(plan.envelope.from().as_mailbox().unwrap().as_str(), "alice@example.org");
        assert_eq!(plan.envelope.declared_size(), Some(55));
        let plan =
            cli(&["--to", "b@x.test", "--from", "", "--server", "mx.example.org"]).plan(&msg()).unwrap();
        assert!(plan.envelope.from().is_null());
        let o = plan.options.unwrap();
        assert_eq!((o.host.as_str(), o.port, o.session.tls), ("mx.example.org", 25, TlsMode::Opportunistic));
    }

    #[test]
    fn tls_defaults_follow_port_and_credentials() {
        let o = cli(&["--to", "b@x.test", "--server", "mx:465"]).plan(&msg()).unwrap().options.unwrap();
        assert_eq!(o.session.tls, TlsMode::Implicit);
        let o = cli(&["--to", "b@x.test", "--server", "mx:587", "--user", "u", "--password-env", "PW"])
            .plan_with_env(&msg(), |v| (v == "PW").then(|| "pw".to_owned()))
            .unwrap()
            .options
            .unwrap();
        assert_eq!(o.session.tls, TlsMode::Required);
        let o = cli(&["--to", "b@x.test", "--server", "mx", "--tls", "none"])
            .plan(&msg())
            .unwrap()
            .options
            .unwrap();
        assert_eq!(o.session.tls, TlsMode::None);
    }

    #[test]
    fn invalid_input_is_65_usage_is_64() {
        let e = cli(&["--to", "b@x.test\r\nRSET"]).plan(&msg()).unwrap_err();
        assert_eq!(e.status, exit::DATAERR);
        let e = cli(&["--to", "b@x.test", "--from", "a@x\0"]).plan(&msg()).unwrap_err();
        assert_eq!(e.status, exit::DATAERR);
        let e = cli(&["--to", "b@x.test", "--dsn-envid", "a\nb"]).plan(&msg()).unwrap_err();
        assert_eq!(e.status, exit::DATAERR);
        let e = cli(&["--to", "b@x.test"]).plan(&Message::from_bytes(b"no header\r\n".to_vec())).unwrap_err();
        assert_eq!(e.status, exit::DATAERR);
        let e = cli(&["--to", "b@x.test", "--url", "http://x"]).plan(&msg()).unwrap_err();
        assert_eq!(e.status, exit::USAGE);
        let e = cli(&["--to", "b@x.test", "--server", "mx", "--timeout=-1"]).plan(&msg()).unwrap_err();
        assert_eq!(e.status, exit::USAGE);
        assert!(Cli::try_parse_from(["smtp-send"]).is_err(), "--to is required");
    }

    #[test]
    fn missing_password_variable_is_usage() {
        let e = cli(&["--to", "b@x.test", "--server", "mx", "--user", "u", "--password-env", "NOPE"])
            .plan_with_env(&msg(), |_| None)
            .unwrap_err();
        assert_eq!(e.status, exit::USAGE);
    }

    #[test]
    fn dsn_options() {
        let plan = cli(&[
            "--to",
            "b@x.test",
            "--dsn-notify",
            "success,failure",
            "--dsn-ret",
            "hdrs",
            "--dsn-envid",
            "id1",
        ])
        .plan(&msg())
        .unwrap();
        let r = &plan.envelope.recipients()[0];
        assert!(r.notify_request().is_some() && r.orcpt_value().is_some());
        assert_eq!(plan.envelope.ret_request(), Some(Ret::Hdrs));
        assert!(cli(&["--to", "b@x.test", "--dsn-notify", "never,success"]).plan(&msg()).is_err());
    }

    #[test]
    fn mx_options() {
        let plan = cli(&["--mx", "--to", "bob@example.org", "--dns", "127.0.0.1:5353", "--mx-port", "2525"])
            .plan(&msg())
            .unwrap();
        let mx = plan.mx.unwrap();
        assert_eq!(mx.dns, Some("127.0.0.1:5353".parse().unwrap()));
        assert_eq!((mx.config.port, mx.config.tls), (2525, TlsPolicy::May));
        assert!(plan.options.is_some(), "no built-in sink with --mx");
        let plan =
            cli(&["--mx", "--to", "b@e.org", "--dns", "[::1]", "--mx-tls", "verify"]).plan(&msg()).unwrap();
        let mx = plan.mx.unwrap();
        assert_eq!(
            (mx.dns, mx.config.port, mx.config.tls),
            (Some("[::1]:53".parse().unwrap()), 25, TlsPolicy::Verify)
        );
        let bad = cli(&["--mx", "--to", "b@e.org", "--dns", "dns.example"]).plan(&msg()).unwrap_err();
        assert_eq!(bad.status, exit::USAGE);
        for args in [
            &["--mx", "--server", "mx.example", "--to", "b@e.org"][..],
            &["--dns", "127.0.0.1", "--to", "b@e.org"],
            &["--mx", "--count", "2", "--to", "b@e.org"],
        ] {
            let mut argv = vec!["smtp-send"];
            argv.extend_from_slice(args);
            assert!(Cli::try_parse_from(argv).is_err(), "{args:?}");
        }
    }

    #[test]
    fn server_forms() {
        let port = |s: &str| Options::from_server(s).map(|o| (o.host, o.port)).ok();
        assert_eq!(port("mx"), Some(("mx".into(), 25)));
        assert_eq!(port("mx:2525"), Some(("mx".into(), 2525)));
        assert_eq!(port("[::1]:2525"), Some(("::1".into(), 2525)));
        assert_eq!(port("::1"), None);
        assert_eq!(port("mx:0"), None);
        assert_eq!(port(""), None);
    }
}
