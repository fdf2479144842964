//! `smtp-send`: send one RFC 5322 message over SMTP or LMTP, or many as a load generator.
//!
//! See `smtp-send --help` and the README for the contract (arguments, exit statuses, JSON).

use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::time::Instant;

use clap::Parser;
use serde_json::{Value, json};
use smtp_proto::{MessageReport, Outcome, RecipientStatus, Reply, Warning};
use smtp_send::cli::{Cli, Plan, exit};
use smtp_send::message::Message;
use smtp_send::sink::Sink;
use smtp_transport::Options;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { exit::USAGE as u8 } else { 0 });
        }
    };
    ExitCode::from(run(&cli) as u8)
}

/// What one connection did. Counts, not reports: a load run of a million messages keeps one report (the last), not a million.
#[derive(Default)]
struct Tally {
    last: Option<MessageReport>,
    /// Messages with an outcome.
    messages: usize,
    /// Outcome Sent.
    sent: usize,
    /// Sent to every recipient.
    complete: usize,
    /// Delivered to at least one recipient.
    delivered: usize,
    unknown: usize,
    bytes: u64,
    error: Option<(String, String)>,
}

impl Tally {
    fn record(&mut self, report: MessageReport, size: u64) {
        self.messages += 1;
        if report.outcome == Outcome::Sent {
            self.sent += 1;
            self.bytes += size;
            if report.all_delivered() {
                self.complete += 1;
            }
        }
        if report.recipients.iter().any(|x| x.status == RecipientStatus::Delivered) {
            self.delivered += 1;
        }
        if report.outcome == Outcome::Unknown {
            self.unknown += 1;
        }
        self.last = Some(report);
    }
}

fn run(cli: &Cli) -> i32 {
    let message = match Message::load(cli.file.as_deref()) {
        Ok(m) => m,
        Err(e) => return fail_early(cli, exit::DATAERR, &e.to_string()),
    };
    let plan = match cli.plan(&message) {
        Ok(p) => p,
        Err(e) => return fail_early(cli, e.status, &e.message),
    };
    if cli.transcript {
        // The drivers log each dialogue line (AUTH redacted by the core) at DEBUG under this target.
        use tracing_subscriber::layer::SubscriberExt;
        use tracing_subscriber::util::SubscriberInitExt;
        let layer = tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .with_target(false)
            .without_time()
            .with_level(false);
        let only_transcript = tracing_subscriber::filter::Targets::new()
            .with_target("smtp_transcript", tracing::Level::DEBUG);
        tracing_subscriber::registry().with(layer).with(only_transcript).init();
    }
    let load = plan.count > 1 || plan.connections > 1;
    let sink = match plan.options {
        Some(_) => None,
        // Under load the sink only counts, so memory stays flat however many messages go through.
        None => match Sink::start_with(!load) {
            Ok(s) => Some(s),
            Err(e) => {
                return fail_early(
                    cli,
                    exit::FAILED,
                    &format!("cannot start the built-in sink: {e}"),
                );
            }
        },
    };
    let options = match (&plan.options, &sink) {
        (Some(o), _) => o.clone(),
        (None, Some(sink)) => {
            let mut o = Options::new(sink.addr().ip().to_string(), sink.addr().port());
            o.session.tls = smtp_proto::TlsMode::None;
            if let Err(e) = cli.apply(&mut o, &|var| std::env::var(var).ok()) {
                return fail_early(cli, e.status, &e.message);
            }
            o
        }
        (None, None) => unreachable!("the sink starts when no server is named"),
    };
    let started = Instant::now();
    let tallies = if plan.connections == 1 {
        vec![send_blocking(&options, &plan, &message, cli)]
    } else {
        send_concurrently(&options, &plan, &message)
    };
    let seconds = started.elapsed().as_secs_f64();
    let status = exit_status(&tallies);
    if cli.json {
        println!("{}", json_report(&tallies, status, load.then_some(seconds)));
    } else if !cli.quiet {
        human_report(&tallies, load.then_some(seconds));
    }
    if let Some(sink) = sink {
        if !cli.quiet && !cli.json {
            if load {
                println!("the built-in sink received {} messages", sink.count());
            } else {
                print_sink(&sink);
            }
        }
    }
    status
}

fn fail_early(cli: &Cli, status: i32, message: &str) -> i32 {
    eprintln!("smtp-send: {message}");
    if cli.json {
        let kind = if status == exit::USAGE { "usage" } else { "invalid_input" };
        println!(
            "{}",
            json!({"status": "error", "reply": null, "recipients": [], "warnings": [],
            "error": {"kind": kind, "message": message}})
        );
    }
    status
}

/// One connection, `plan.count` messages, with the blocking driver.
fn send_blocking(options: &Options, plan: &Plan, message: &Message, cli: &Cli) -> Tally {
    let mut tally = Tally::default();
    let mut client = match smtp_blocking::SmtpClient::connect(options) {
        Ok(c) => c,
        Err(e) => {
            tally.error = Some(error_of(&e));
            return tally;
        }
    };
    let size = message.size();
    let result = if plan.count == 1 {
        // One message: with a progress bar when it is large and stderr is a terminal.
        let bar = progress_bar(cli, size);
        let result =
            message.open().map_err(|e| ("body".to_owned(), e.to_string())).and_then(|body| {
                client
                    .send_with_progress(plan.envelope.clone(), body, |sent, _| {
                        if let Some(b) = &bar {
                            b.set_position(sent);
                        }
                    })
                    .map(|report| tally.record(report, size))
                    .map_err(|e| error_of(&e))
            });
        if let Some(b) = bar {
            b.finish_and_clear();
        }
        result
    } else {
        // Many: each next message's commands ride with the previous final dot (one round trip each).
        let mut open_error = None;
        let copies = (0..plan.count).map_while(|_| match message.open() {
            Ok(body) => Some((plan.envelope.clone(), body)),
            Err(e) => {
                open_error = Some(("body".to_owned(), e.to_string()));
                None
            }
        });
        let sent =
            client.send_all(copies, |report| tally.record(report, size)).map_err(|e| error_of(&e));
        match open_error {
            Some(e) => Err(e),
            None => sent,
        }
    };
    match result {
        Err(e) => tally.error = Some(e),
        Ok(()) => {
            if let Some(e) = client.close_reason() {
                tally.error = Some(error_of(e));
            } else if let Err(e) = client.quit() {
                // The messages already have their outcomes; a failed QUIT changes none of them.
                tracing::debug!("QUIT failed: {e}");
            }
        }
    }
    tally
}

fn report_is_session_end(report: &MessageReport) -> bool {
    matches!(report.failure, Some(smtp_proto::Failure::Session(_)))
}

/// `plan.connections` connections at once, `plan.count` messages each, with the smol driver.
fn send_concurrently(options: &Options, plan: &Plan, message: &Message) -> Vec<Tally> {
    // One copy shared by every connection. (A message larger than smtp-send keeps in memory is read whole
    // here: concurrent sends do not stream from the file.)
    let bytes: std::sync::Arc<[u8]> = match message.bytes() {
        Ok(b) => b.into(),
        Err(e) => {
            return vec![Tally { error: Some(("body".into(), e.to_string())), ..Tally::default() }];
        }
    };
    let size = message.size();
    smol::block_on(async {
        let tasks: Vec<_> = (0..plan.connections)
            .map(|_| {
                let (options, envelope, bytes) =
                    (options.clone(), plan.envelope.clone(), std::sync::Arc::clone(&bytes));
                let count = plan.count;
                smol::spawn(async move {
                    let mut tally = Tally::default();
                    let mut client = match smtp_smol::SmtpClient::connect(&options).await {
                        Ok(c) => c,
                        Err(e) => {
                            tally.error = Some(error_of(&e));
                            return tally;
                        }
                    };
                    for _ in 0..count {
                        match client.send(envelope.clone(), &bytes[..]).await {
                            Ok(report) => {
                                let end = report_is_session_end(&report);
                                tally.record(report, size);
                                if end {
                                    break;
                                }
                            }
                            Err(e) => {
                                tally.error = Some(error_of(&e));
                                break;
                            }
                        }
                    }
                    if tally.error.is_none() {
                        if let Some(e) = client.close_reason() {
                            tally.error = Some(error_of(e));
                        } else {
                            let _ = client.quit().await;
                        }
                    }
                    tally
                })
            })
            .collect();
        let mut out = Vec::with_capacity(tasks.len());
        for t in tasks {
            out.push(t.await);
        }
        out
    })
}

/// The JSON `error.kind` and message of a driver error (both drivers share the type).
fn error_of(e: &smtp_transport::Error) -> (String, String) {
    use smtp_transport::Error as E;
    let kind = match e {
        E::Url(_) | E::TlsSetup(_) | E::Credentials(_) => "config",
        E::Connect(_) => "connect",
        E::Tls(_) => "tls",
        E::Io(_) => "io",
        E::Session(s) => session_kind(s),
        E::Refused(_) => "refused",
        E::Body(_) => "body",
        _ => "other",
    };
    (kind.into(), e.to_string())
}

fn session_kind(e: &smtp_proto::Error) -> &'static str {
    use smtp_proto::Error as E;
    match e {
        E::AuthFailed { .. } | E::NoAuthMechanism | E::AuthRequiresTls => "auth",
        E::TlsUnavailable(_) | E::StartTlsInjection => "tls",
        E::Timeout(_) => "timeout",
        E::ServiceUnavailable(_) | E::HelloRejected(_) => "server",
        E::UnexpectedEof => "connection_closed",
        _ => "protocol",
    }
}

/// 0 all delivered; 3 any unknown; 1 some delivered; 2 nothing delivered.
fn exit_status(tallies: &[Tally]) -> i32 {
    let sum = |f: fn(&Tally) -> usize| tallies.iter().map(f).sum::<usize>();
    let (messages, complete, delivered) =
        (sum(|t| t.messages), sum(|t| t.complete), sum(|t| t.delivered));
    let failed_connections = tallies.iter().any(|t| t.error.is_some() && t.messages == 0);
    if sum(|t| t.unknown) > 0 {
        exit::UNKNOWN
    } else if delivered == 0 {
        exit::FAILED
    } else if failed_connections || complete < messages {
        exit::PARTIAL
    } else {
        exit::SENT
    }
}

fn last_report(tallies: &[Tally]) -> Option<&MessageReport> {
    tallies.iter().rev().find_map(|t| t.last.as_ref())
}

fn reply_json(r: Option<&Reply>) -> Value {
    match r {
        None => Value::Null,
        Some(r) => json!({
            "code": r.code(),
            "enhanced": r.enhanced().map(|e| e.to_string()),
            "text": r.text_lossy(),
        }),
    }
}

/// The reply that decided the message: the final one, else the one that refused it.
fn deciding_reply(r: &MessageReport) -> Option<&Reply> {
    r.final_reply
        .as_ref()
        .or(r.data_reply.as_ref().filter(|d| !d.is_intermediate()))
        .or(r.mail_reply.as_ref().filter(|m| !m.is_positive()))
}

fn status_name(status: i32) -> &'static str {
    match status {
        exit::SENT => "sent",
        exit::PARTIAL => "partial",
        exit::UNKNOWN => "unknown",
        _ => "rejected",
    }
}

fn json_report(tallies: &[Tally], status: i32, seconds: Option<f64>) -> Value {
    let last = last_report(tallies);
    let error = tallies.iter().find_map(|t| t.error.as_ref());
    let failure = last.and_then(|r| r.failure.as_ref()).map(|f| format!("{f:?}"));
    let name = if last.is_none() && error.is_some() { "error" } else { status_name(status) };
    let mut v = json!({
        "status": name,
        "reply": reply_json(last.and_then(deciding_reply)),
        "recipients": last.map(|r| r.recipients.iter().map(|x| json!({
            "address": x.path.as_str(),
            "accepted": x.status == RecipientStatus::Delivered,
            "reply": reply_json(x.lmtp_reply.as_ref().or(x.rcpt_reply.as_ref())),
        })).collect::<Vec<_>>()).unwrap_or_default(),
        "warnings": last.map(|r| r.warnings.iter().map(|w| match w {
            Warning::NoDsnSupport => "no_dsn_support",
            _ => "other",
        }).collect::<Vec<_>>()).unwrap_or_default(),
        "error": match (error, failure) {
            (Some((kind, message)), _) => json!({"kind": kind, "message": message}),
            (None, Some(f)) if status != exit::SENT => json!({"kind": "message", "message": f}),
            _ => Value::Null,
        },
    });
    if let Some(seconds) = seconds {
        let messages: usize = tallies.iter().map(|t| t.sent).sum();
        let bytes: u64 = tallies.iter().map(|t| t.bytes).sum();
        v["messages"] = json!(messages);
        v["seconds"] = json!(seconds);
        v["messages_per_second"] = json!(messages as f64 / seconds.max(1e-9));
        v["bytes"] = json!(bytes);
    }
    v
}

fn human_report(tallies: &[Tally], seconds: Option<f64>) {
    let mut err = std::io::stderr().lock();
    for t in tallies {
        if let Some((kind, message)) = &t.error {
            let _ = writeln!(err, "smtp-send: {kind}: {message}");
        }
    }
    if let Some(seconds) = seconds {
        let sent: usize = tallies.iter().map(|t| t.sent).sum();
        let total: usize = tallies.iter().map(|t| t.messages).sum();
        let bytes: u64 = tallies.iter().map(|t| t.bytes).sum();
        println!(
            "{sent} of {total} messages sent in {seconds:.3} s: {:.0} messages/s, {:.2} MB/s",
            sent as f64 / seconds.max(1e-9),
            bytes as f64 / 1e6 / seconds.max(1e-9)
        );
        return;
    }
    let Some(r) = last_report(tallies) else {
        return;
    };
    let outcome = match r.outcome {
        Outcome::Sent => "sent",
        Outcome::Rejected => "rejected",
        Outcome::Unknown => "outcome unknown (the connection ended after the final dot)",
    };
    match deciding_reply(r) {
        Some(reply) => println!("{outcome}: {reply}"),
        None => println!("{outcome}"),
    }
    for x in &r.recipients {
        let reply = x
            .lmtp_reply
            .as_ref()
            .or(x.rcpt_reply.as_ref())
            .map(|r| r.to_string())
            .unwrap_or_default();
        println!("  {:?} {}: {reply}", x.status, x.path);
    }
    for w in &r.warnings {
        if *w == Warning::NoDsnSupport {
            println!("  warning: the server does not support DSN; sent without DSN parameters");
        }
    }
    if let Some(f) = &r.failure {
        if r.outcome != Outcome::Sent {
            println!("  failure: {f:?}");
        }
    }
}

fn print_sink(sink: &Sink) {
    for m in sink.take() {
        println!(
            "--- received by the built-in sink ({} octets{})",
            m.size,
            if m.bdat { ", BDAT" } else { "" }
        );
        println!("MAIL FROM:{}", m.mail_from);
        for r in &m.rcpt_to {
            println!("RCPT TO:{r}");
        }
        println!();
        print!("{}", String::from_utf8_lossy(&m.data));
        if m.size > m.data.len() as u64 {
            println!("\n[… {} more octets]", m.size - m.data.len() as u64);
        }
    }
}

fn progress_bar(cli: &Cli, total: u64) -> Option<indicatif::ProgressBar> {
    // Only for a large body, only on a terminal, never with --quiet or --json.
    if cli.quiet || cli.json || total < 4 * 1024 * 1024 || !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = indicatif::ProgressBar::new(total);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{bar:40} {bytes}/{total_bytes} {bytes_per_sec}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    Some(bar)
}
