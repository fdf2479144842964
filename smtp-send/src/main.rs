//! `smtp-send`: send one RFC 5322 message over SMTP or LMTP, or many as a load generator.
//!
//! See `smtp-send --help` and the README for the contract (arguments, exit statuses, JSON).

use std::cell::{Cell, RefCell};
use std::ffi::OsString;
use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Parser;
use serde_json::{Value, json};
use smtp_proto::ehlo::Capabilities;
use smtp_proto::{
    Failure, MessageReport, Outcome, RecipientResult, RecipientStatus, Reply, SendError, Unsendable, Warning,
};
use smtp_send::cli::{Cli, MxPlan, Plan, exit};
use smtp_send::message::Message;
use smtp_send::sink::Sink;
use smtp_transport::pool::PoolConfig;
use smtp_transport::{Error, Options};

fn main() -> ExitCode {
    let args: Vec<OsString> = std::env::args_os().collect();
    let cli = match Cli::try_parse_from(&args) {
        Ok(c) => c,
        Err(e) => return ExitCode::from(parse_error(&e, &args) as u8),
    };
    ExitCode::from(run(&cli) as u8)
}

/// An invocation clap refused (or `--help`/`--version`, which are not errors). With `--json` the JSON object
/// goes to stdout too: every exit path prints it.
fn parse_error(e: &clap::Error, args: &[OsString]) -> i32 {
    let _ = e.print();
    if !e.use_stderr() {
        return exit::SENT;
    }
    // An argument that is not UTF-8 (an address in Latin-1, say) is invalid input, not bad usage.
    let status = if e.kind() == clap::error::ErrorKind::InvalidUtf8 { exit::DATAERR } else { exit::USAGE };
    // clap stopped before it knew the flags: look for --json among the options (before any `--`).
    let json = args.iter().skip(1).take_while(|a| *a != "--").any(|a| a == "--json");
    if json {
        let text = e.render().to_string();
        let first = text.lines().next().unwrap_or_default();
        let message = first.strip_prefix("error: ").unwrap_or(first);
        println!("{}", error_json(kind_of_status(status), message, None));
    }
    status
}

/// What went wrong, once, for the error output: whose fault and at which step in `message` (a sentence),
/// the server's reply when one was the cause, and the exit status when it is not the usual one.
#[derive(Clone, Debug)]
struct Problem {
    kind: &'static str,
    message: String,
    reply: Option<Reply>,
    status: Option<i32>,
}

/// What one connection (and the ones that replaced it) did. Counts, not reports: a load run of a million
/// messages keeps one report (the last), not a million.
#[derive(Default)]
struct Tally {
    last: Option<MessageReport>,
    /// The host that decided each recipient of `last` (`--mx`); otherwise the server named.
    hosts: Option<Vec<Option<String>>>,
    /// Messages this tally was to send.
    requested: u64,
    /// Outcome Sent (delivered to at least one recipient).
    sent: u64,
    /// Sent to every recipient.
    complete: u64,
    /// Rejected by the server, or refused by smtp-send before sending.
    rejected: u64,
    /// Outcome Unknown.
    unknown: u64,
    /// Messages with at least one recipient whose outcome is unknown (Unknown ones, and LMTP's).
    unknown_recipients: u64,
    /// Size of the messages sent.
    bytes: u64,
    /// The first cause of trouble.
    problem: Option<Problem>,
}

impl Tally {
    fn new(requested: u64) -> Tally {
        Tally { requested, ..Tally::default() }
    }

    fn record(&mut self, report: MessageReport, size: u64) {
        match report.outcome {
            Outcome::Sent => {
                self.sent += 1;
                self.bytes += size;
                if report.all_delivered() {
                    self.complete += 1;
                }
            }
            Outcome::Rejected => self.rejected += 1,
            Outcome::Unknown => self.unknown += 1,
        }
        if report.recipients.iter().any(|r| r.status == RecipientStatus::Unknown) {
            self.unknown_recipients += 1;
        }
        for w in &report.warnings {
            if let Warning::SentAgain { failure, reply } = w {
                let reply_text = reply.as_ref().map(|r| format!(": {r}")).unwrap_or_default();
                self.note(Problem {
                    kind: failure_kind(failure),
                    message: format!(
                        "a connection ended before the end of data ({failure}{reply_text}); the message went \
                         again on a new connection"
                    ),
                    reply: reply.clone(),
                    status: None,
                });
            }
        }
        if let Some(f) = &report.failure {
            self.note(Problem {
                kind: failure_kind(f),
                message: failure_sentence(&report),
                reply: report.reply().cloned(),
                status: None,
            });
        }
        self.last = Some(report);
    }

    /// A message smtp-send refused itself: it counts as rejected.
    fn refuse(&mut self, problem: Problem) {
        self.rejected += 1;
        self.note(problem);
    }

    /// Keeps the first cause only: later errors are usually its consequences.
    fn note(&mut self, problem: Problem) {
        if self.problem.is_none() {
            self.problem = Some(problem);
        }
    }
}

/// Everything a sender needs.
struct Job<'a> {
    cli: &'a Cli,
    plan: &'a Plan,
    options: &'a Options,
    message: &'a Message,
}

fn run(cli: &Cli) -> i32 {
    let message = match Message::load(cli.file.as_deref()) {
        Ok(m) => m,
        Err(e) => return fail_early(cli, exit::DATAERR, "invalid_input", &e.to_string()),
    };
    let plan = match cli.plan(&message) {
        Ok(p) => p,
        Err(e) => return fail_early(cli, e.status, kind_of_status(e.status), &e.message),
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
        let only_transcript =
            tracing_subscriber::filter::Targets::new().with_target("smtp_transcript", tracing::Level::DEBUG);
        tracing_subscriber::registry().with(layer).with(only_transcript).init();
    }
    if let (Some(mx), Some(options)) = (&plan.mx, &plan.options) {
        return run_mx(cli, &plan, mx, options, &message);
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
                    "sink",
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
                return fail_early(cli, e.status, kind_of_status(e.status), &e.message);
            }
            o
        }
        (None, None) => unreachable!("the sink starts when no server is named"),
    };
    let job = Job { cli, plan: &plan, options: &options, message: &message };
    let started = Instant::now();
    let tallies = vec![match (load, plan.connections) {
        (false, _) => send_one(&job),
        (true, 1) => load_blocking(&job),
        (true, _) => load_async(&job),
    }];
    let seconds = started.elapsed().as_secs_f64();
    let status = exit_status(&tallies);
    if cli.json {
        println!("{}", json_report(&tallies, status, load.then_some(seconds), Some(&options.host)));
    } else if !cli.quiet {
        human_report(&tallies, load.then_some(seconds));
    } else if let Some(p) = first_problem(&tallies) {
        // --quiet prints nothing but errors.
        eprintln!("smtp-send: {}", p.message);
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

/// `--mx`: each recipient to its domain's MX hosts, one session a domain (smtp-mx, on a tokio runtime of
/// one thread); the report names the host per recipient.
fn run_mx(cli: &Cli, plan: &Plan, mx: &MxPlan, options: &Options, message: &Message) -> i32 {
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => return fail_early(cli, exit::FAILED, "io", &format!("cannot start a tokio runtime: {e}")),
    };
    let mut tally = Tally::new(1);
    let result = runtime.block_on(async {
        let client = match mx.dns {
            Some(dns) => smtp_mx::MxClient::with_nameserver(options.clone(), mx.config.clone(), dns),
            None => smtp_mx::MxClient::new(options.clone(), mx.config.clone())?,
        };
        let body = message.bytes().map_err(Error::Body)?;
        client.send(plan.envelope.clone(), std::io::Cursor::new(body)).await
    });
    let report = match result {
        Ok(report) => Some(report),
        Err(Error::Body(e)) => {
            tally.note(body_problem(&e));
            None
        }
        Err(e) => {
            tally.note(session_problem(&e));
            None
        }
    };
    if let Some(report) = &report {
        if let Some(problem) = mx_problem(report) {
            tally.note(problem);
        }
        tally.hosts = Some(report.routes.iter().map(|r| r.host.clone()).collect());
        tally.record(report.message.clone(), message.size());
    }
    let tallies = [tally];
    let status = exit_status(&tallies);
    if cli.json {
        println!("{}", json_report(&tallies, status, None, None));
    } else {
        if let Some(p) = first_problem(&tallies) {
            eprintln!("smtp-send: {}", p.message);
        }
        if let (Some(report), false) = (&report, cli.quiet) {
            println!("{report}");
        }
    }
    status
}

/// The first recipient that was not delivered, as the run's problem: its domain, host and why.
fn mx_problem(report: &smtp_mx::MxReport) -> Option<Problem> {
    let (r, route) = report.recipients().find(|(r, _)| r.status != RecipientStatus::Delivered)?;
    let why = match (&route.error, &r.reply) {
        (Some(error), Some(reply)) => format!("{error}: {reply}"),
        (Some(error), None) => error.clone(),
        (None, Some(reply)) => reply.to_string(),
        (None, None) => r.status.to_string(),
    };
    let kind = match (&route.host, route.error.as_deref()) {
        // Decided by DNS alone: a null MX, NXDOMAIN, SERVFAIL.
        (None, _) => "dns",
        (_, Some(e)) if e.starts_with("connect failed") => "connect",
        (_, Some(e)) if e.starts_with("TLS handshake failed") => "tls",
        (_, Some(e)) if e.contains("has no address") || e.contains("NXDOMAIN") => "dns",
        _ if r.reply.is_some() => "rejected",
        _ => "server",
    };
    let at = route.host.as_ref().map(|h| format!(" at {h}")).unwrap_or_default();
    Some(Problem { kind, message: format!("{}{at}: {why}", r.path), reply: r.reply.clone(), status: None })
}

fn kind_of_status(status: i32) -> &'static str {
    if status == exit::USAGE { "usage" } else { "invalid_input" }
}

fn error_json(kind: &str, message: &str, reply: Option<&Reply>) -> Value {
    json!({"status": "error", "reply": reply_json(reply), "recipients": [], "warnings": [],
           "error": {"kind": kind, "message": message}})
}

fn fail_early(cli: &Cli, status: i32, kind: &str, message: &str) -> i32 {
    eprintln!("smtp-send: {message}");
    if cli.json {
        println!("{}", error_json(kind, message, None));
    }
    status
}

/// How many connects or sessions in a row may fail, without a message counted in between, before a load
/// run gives up. The pool spaces the connects (its backoff, from [`BACKOFF_FIRST`], doubling).
const ATTEMPTS: u32 = 3;
/// The pool's first wait after a failed connect.
const BACKOFF_FIRST: Duration = Duration::from_millis(100);
/// How long closing the pool waits for its connections' QUITs.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);

/// Whether a new connection may fare better than this failed one: network trouble, a timeout, a 4yz
/// greeting or EHLO. Never after a refused AUTH (a retry could lock the account) or a TLS failure.
fn is_transient(e: &Error) -> bool {
    use smtp_proto::Error as S;
    match e {
        Error::Connect(_) | Error::Io(_) => true,
        Error::Session(S::UnexpectedEof | S::Timeout(_)) => true,
        Error::Session(S::ServiceUnavailable(r) | S::HelloRejected(r)) => r.is_transient(),
        _ => false,
    }
}

/// A load run: `--count` copies over a pool of `--connections` connections (with `--rate` and
/// `--max-per-connection`), each connection carrying copies with the batch send (each next message's
/// commands riding with the previous final dot) for as long as copies are left. The pool sends again, once,
/// a copy whose connection died before its end of data (a 421, a lost connection); every copy ends counted:
/// sent, rejected, unknown, or not attempted when the run gives up.
fn pool_config(plan: &Plan) -> PoolConfig {
    let mut config = PoolConfig::default();
    config.max_connections = usize::try_from(plan.connections).unwrap_or(usize::MAX);
    config.max_messages_per_connection = plan.max_per_connection;
    config.rate = plan.rate;
    config.backoff_first = BACKOFF_FIRST;
    config.backoff_max = Duration::from_secs(5);
    config
}

/// What the connections of a load run share (they run on one thread).
struct Load<'a> {
    job: &'a Job<'a>,
    /// Copies no connection has taken yet (or given back: its session ended before the driver took them).
    left: Cell<u64>,
    /// The run gave up: no connection takes another copy.
    stopped: Cell<bool>,
    /// Connects or sessions that failed since the last message was counted.
    failures: Cell<u32>,
    tally: RefCell<Tally>,
}

/// What [`stop_of`] needs to know of a client: why its session ended, and what its server offers.
type Client<'c> = (Option<&'c Error>, Option<&'c Capabilities>);

/// What a connection of a load run does next.
enum Next {
    Go,
    Wait(Duration),
    Stop,
}

impl<'a> Load<'a> {
    fn new(job: &'a Job<'a>) -> Load<'a> {
        Load {
            job,
            left: Cell::new(job.plan.count),
            stopped: Cell::new(false),
            failures: Cell::new(0),
            tally: RefCell::new(Tally::new(job.plan.count)),
        }
    }

    fn more(&self) -> bool {
        !self.stopped.get() && self.left.get() > 0
    }

    /// Takes a copy for a connection's batch.
    fn claim(&self, claimed: &mut u64) -> bool {
        let more = self.more();
        if more {
            self.left.set(self.left.get() - 1);
            *claimed += 1;
        }
        more
    }

    /// A copy's report. One the session's end decided (a 421, a lost connection: even after the pool's
    /// retry) is a failure in a row; any other is progress.
    fn record(&self, report: MessageReport, reported: &mut u64) {
        *reported += 1;
        let trouble = smtp_transport::pool::worth_retrying(&report);
        self.tally.borrow_mut().record(report, self.job.message.size());
        if !trouble {
            self.failures.set(0);
        } else if self.failures.replace(self.failures.get() + 1) + 1 >= ATTEMPTS {
            self.stopped.set(true);
        }
    }

    fn stop(&self, problem: Problem) -> Next {
        self.tally.borrow_mut().note(problem);
        self.stopped.set(true);
        Next::Stop
    }

    /// Counts a failure; gives up after [`ATTEMPTS`] in a row.
    fn failed(&self, problem: Problem) -> Next {
        self.failures.set(self.failures.get() + 1);
        if self.failures.get() >= ATTEMPTS {
            return self.stop(problem);
        }
        self.tally.borrow_mut().note(problem);
        Next::Go
    }

    /// The pool gave no connection: wait out its backoff, try again, or give up.
    fn no_connection(&self, e: &Error) -> Next {
        match e {
            Error::Backoff(wait) => Next::Wait(*wait),
            e if is_transient(e) => self.failed(connect_problem(e, self.job.options)),
            e => self.stop(connect_problem(e, self.job.options)),
        }
    }

    /// A connection's batch ended: the copies it claimed and did not report go back for the others. A
    /// session that ended is a failure in a row unless its reports already counted one.
    fn batch_done(&self, result: Result<(), Error>, counts: (u64, u64), client: &Client) -> Next {
        let (claimed, reported) = counts;
        let refused = matches!(result, Err(Error::Send(SendError::Unsendable(_))));
        let back = claimed.saturating_sub(reported + u64::from(refused));
        self.left.set(self.left.get() + back);
        let Err(e) = result else { return Next::Go };
        match stop_of(&e, client.0, client.1, self.job.message) {
            Stop::Refused(p) => {
                // Every copy is the same message: the others would be refused alike.
                self.tally.borrow_mut().refuse(p.clone());
                self.stop(p)
            }
            Stop::Session(p) if reported == 0 => self.failed(p),
            Stop::Session(p) => {
                self.tally.borrow_mut().note(p);
                Next::Go
            }
        }
    }
}

/// A load run on one connection, with the blocking driver (the fewest system calls a message).
fn load_blocking(job: &Job<'_>) -> Tally {
    let pool = smtp_blocking::Pool::new(job.options.clone(), pool_config(job.plan));
    let load = Load::new(job);
    while load.more() {
        let mut client = match pool.get() {
            Ok(c) => c,
            Err(e) => match load.no_connection(&e) {
                Next::Go => continue,
                Next::Wait(wait) => {
                    std::thread::sleep(wait);
                    continue;
                }
                Next::Stop => break,
            },
        };
        let (mut claimed, mut reported, mut open_error) = (0, 0, None);
        let copies = std::iter::from_fn(|| load.claim(&mut claimed).then(|| job.message.open()))
            .map_while(|body| body.map_err(|e| open_error = Some(e)).ok())
            .map(|body| (job.plan.envelope.clone(), body));
        let result = client.send_all(copies, |report| load.record(report, &mut reported));
        let next =
            load.batch_done(result, (claimed, reported), &(client.close_reason(), client.capabilities()));
        if let Some(e) = open_error {
            load.stop(body_problem(&e));
        } else if let Next::Stop = next {
            break;
        }
    }
    pool.close(CLOSE_TIMEOUT);
    load.tally.into_inner()
}

/// A load run over several connections at once, with the smol driver on this thread.
fn load_async(job: &Job<'_>) -> Tally {
    // One copy shared by every connection. (A message larger than smtp-send keeps in memory is read whole
    // here: concurrent sends do not stream from the file.)
    let bytes: std::sync::Arc<[u8]> = match job.message.bytes() {
        Ok(b) => b.into(),
        Err(e) => {
            let mut t = Tally::new(job.plan.count);
            t.note(body_problem(&e));
            return t;
        }
    };
    let pool = smtp_smol::Pool::new(job.options.clone(), pool_config(job.plan));
    let load = Load::new(job);
    let executor = smol::LocalExecutor::new();
    let workers: Vec<_> =
        (0..job.plan.connections).map(|_| executor.spawn(load_worker(&load, &pool, &bytes))).collect();
    smol::block_on(executor.run(async {
        for worker in workers {
            worker.await;
        }
        pool.close(CLOSE_TIMEOUT).await;
    }));
    drop(executor);
    load.tally.into_inner()
}

/// One connection's share of [`load_async`].
async fn load_worker(load: &Load<'_>, pool: &smtp_smol::Pool, bytes: &std::sync::Arc<[u8]>) {
    while load.more() {
        let mut client = match pool.get().await {
            Ok(c) => c,
            Err(e) => match load.no_connection(&e) {
                Next::Go => continue,
                Next::Wait(wait) => {
                    smol::Timer::after(wait).await;
                    continue;
                }
                Next::Stop => return,
            },
        };
        let (mut claimed, mut reported) = (0, 0);
        let copies = std::iter::from_fn(|| load.claim(&mut claimed).then_some(()))
            .map(|()| (load.job.plan.envelope.clone(), futures_lite::io::Cursor::new(bytes.clone())));
        let result = client.send_all(copies, |report| load.record(report, &mut reported)).await;
        let client = (client.close_reason(), client.capabilities());
        if let Next::Stop = load.batch_done(result, (claimed, reported), &client) {
            return;
        }
    }
}

/// One message on one connection (no retries: the caller sees exactly what happened).
fn send_one(job: &Job<'_>) -> Tally {
    let mut tally = Tally::new(1);
    send_one_into(job, &mut tally);
    tally
}

fn send_one_into(job: &Job<'_>, tally: &mut Tally) {
    let mut client = match smtp_blocking::SmtpClient::connect(job.options) {
        Ok(c) => c,
        Err(e) => return tally.note(connect_problem(&e, job.options)),
    };
    let size = job.message.size();
    let body = match job.message.open() {
        Ok(b) => b,
        Err(e) => {
            tally.note(body_problem(&e));
            return finish(client);
        }
    };
    // With a progress bar when the message is large and stderr is a terminal.
    let bar = progress_bar(job.cli, size);
    let result = client.send_with_progress(job.plan.envelope.clone(), body, |sent, _| {
        if let Some(b) = &bar {
            b.set_position(sent);
        }
    });
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    match result {
        Ok(report) => tally.record(report, size),
        Err(e) => match send_problem(&e, &client, job.message) {
            Stop::Refused(p) => tally.refuse(p),
            Stop::Session(p) => tally.note(p),
        },
    }
    finish(client);
}

/// Ends a blocking session: QUIT when it is still open (also after smtp-send refused a message itself, RFC
/// 5321 §4.1.1.10); a session that already ended has its reason reported elsewhere.
fn finish(client: smtp_blocking::SmtpClient) {
    if client.close_reason().is_none() {
        if let Err(e) = client.quit() {
            // The messages already have their outcomes; a failed QUIT changes none of them.
            tracing::debug!("QUIT failed: {e}");
        }
    }
}

/// How a send that returned no report ended.
enum Stop {
    /// smtp-send refused the message itself (the session is still open): counted as rejected.
    Refused(Problem),
    /// The session ended, or could not carry the message.
    Session(Problem),
}

fn send_problem(e: &Error, client: &smtp_blocking::SmtpClient, message: &Message) -> Stop {
    stop_of(e, client.close_reason(), client.capabilities(), message)
}

fn stop_of(e: &Error, close_reason: Option<&Error>, caps: Option<&Capabilities>, message: &Message) -> Stop {
    match e {
        Error::Send(SendError::Unsendable(r)) => Stop::Refused(refusal_problem(r, caps, message)),
        // "The session is closed" says nothing: the reason it closed is the cause.
        Error::Closed(cause) => Stop::Session(session_problem(cause)),
        Error::Send(SendError::Misuse(_)) => Stop::Session(match close_reason {
            Some(reason) => session_problem(reason),
            None => Problem {
                kind: "connection_closed",
                message: format!("the session ended before the message could start ({e})"),
                reply: None,
                status: None,
            },
        }),
        Error::Body(io) => Stop::Session(body_problem(io)),
        other => Stop::Session(session_problem(other)),
    }
}

fn body_problem(e: &std::io::Error) -> Problem {
    Problem { kind: "body", message: format!("reading the message failed: {e}"), reply: None, status: None }
}

fn connect_problem(e: &Error, options: &Options) -> Problem {
    Problem {
        kind: error_kind(e),
        message: format!("opening the session with {}:{} failed: {e}", options.host, options.port),
        reply: error_reply(e),
        status: None,
    }
}

fn session_problem(e: &Error) -> Problem {
    Problem { kind: error_kind(e), message: e.to_string(), reply: error_reply(e), status: None }
}

fn error_reply(e: &Error) -> Option<Reply> {
    match e {
        Error::Session(s) => s.reply().cloned(),
        _ => None,
    }
}

/// A message smtp-send refused after EHLO: what the message needs and what the server lacks.
fn refusal_problem(r: &Unsendable, caps: Option<&Capabilities>, message: &Message) -> Problem {
    let mut status = None;
    let why = match r {
        Unsendable::TooBig { size, limit } => {
            format!("the message is {size} octets and the server takes at most {limit} (SIZE, RFC 1870)")
        }
        Unsendable::EightBitUnsupported => {
            "the message holds 8-bit octets and the server does not offer 8BITMIME (RFC 6152)".into()
        }
        Unsendable::BinaryUnsupported => {
            // The message's fault as much as the server's: invalid input for any server without it.
            status = Some(exit::DATAERR);
            let reason = message.binary_reason().unwrap_or_default();
            let missing: Vec<&str> = match caps {
                Some(c) => [("BINARYMIME", c.binary_mime()), ("CHUNKING", c.chunking())]
                    .into_iter()
                    .filter(|(_, has)| !has)
                    .map(|(name, _)| name)
                    .collect(),
                None => vec!["BINARYMIME", "CHUNKING"],
            };
            let lacks = if missing.is_empty() {
                "BDAT is turned off (--chunking never)".to_owned()
            } else {
                format!("the server does not offer {}", missing.join(" and "))
            };
            format!("the message needs BODY=BINARYMIME over BDAT (RFC 3030): {reason}; {lacks}")
        }
        Unsendable::Utf8Unsupported => match message.eight_bit_header_field() {
            Some(field) => format!(
                "the message needs SMTPUTF8 (RFC 6531): its {field}: header field holds 8-bit text \
                 (UTF-8 headers, RFC 6532), and the server does not offer SMTPUTF8"
            ),
            None => "the message needs SMTPUTF8 (RFC 6531): an address is not ASCII, and the server \
                     does not offer SMTPUTF8"
                .into(),
        },
        Unsendable::DsnNotSupported => {
            "DSN was asked for with --dsn-strict and the server does not offer DSN (RFC 3461)".into()
        }
        other => other.to_string(),
    };
    Problem {
        kind: "refused",
        message: format!("smtp-send did not send the message: {why}"),
        reply: None,
        status,
    }
}

/// The JSON `error.kind` of a driver error (both drivers share the type).
fn error_kind(e: &Error) -> &'static str {
    match e {
        Error::Url(_) | Error::TlsSetup(_) | Error::Credentials(_) => "config",
        Error::Connect(_) | Error::Backoff(_) => "connect",
        Error::Tls(_) => "tls",
        Error::Io(_) => "io",
        Error::Session(s) => session_kind(s),
        Error::Send(_) => "refused",
        Error::Body(_) => "body",
        Error::Closed(cause) => error_kind(cause),
        // Variants added later: by whose fault they are.
        other => blame_kind(other.blame()),
    }
}

fn session_kind(e: &smtp_proto::Error) -> &'static str {
    use smtp_proto::Error as E;
    match e {
        E::AuthFailed { .. } | E::NoAuthMechanism | E::AuthRequiresTls => "auth",
        E::TlsUnavailable(_) | E::StartTlsInjection => "tls",
        E::Timeout(_) => "timeout",
        E::ServiceUnavailable(_) | E::HelloRejected(_) | E::ResetFailed(_) => "server",
        E::UnexpectedEof => "connection_closed",
        E::Parse(_) | E::Protocol(_) => "protocol",
        other => blame_kind(other.blame()),
    }
}

/// The JSON kind of an error known only by whose fault it is.
fn blame_kind(blame: smtp_proto::Blame) -> &'static str {
    use smtp_proto::Blame;
    match blame {
        Blame::Remote => "server",
        Blame::Local => "config",
        Blame::Transport => "io",
        // smtp-send called the library wrongly: its own bug.
        Blame::Misuse => "internal",
    }
}

fn failure_kind(f: &Failure) -> &'static str {
    match f {
        Failure::Unsendable(_) => "refused",
        Failure::Session(e) => session_kind(e),
        _ => "rejected",
    }
}

/// Why a message failed, as a sentence: what happened, at which step, and the reply that decided it.
fn failure_sentence(r: &MessageReport) -> String {
    let with_reply = |what: &str| match r.reply() {
        Some(reply) => format!("{what}: {reply}"),
        None => what.to_owned(),
    };
    match &r.failure {
        None => "sent".into(),
        Some(Failure::Unsendable(x)) => format!("smtp-send did not send the message: {x}"),
        Some(Failure::MailRejected) => with_reply("the server refused the sender (MAIL FROM)"),
        Some(Failure::NoRecipientAccepted) => with_reply("the server accepted no recipient"),
        Some(Failure::DataRejected) => with_reply("the server refused DATA"),
        Some(Failure::BodyRejected) => with_reply("the server refused the message at its end of data"),
        Some(Failure::Interrupted) => {
            with_reply("the server interrupted the message while its body was being sent")
        }
        Some(Failure::Session(e)) => match r.outcome {
            Outcome::Unknown => format!(
                "the session ended after the end of data and before the server's reply, so the \
                 message may have been delivered: {e}"
            ),
            Outcome::Sent => format!(
                "the session ended before every recipient's reply, so some may have been delivered \
                 and some not: {e}"
            ),
            Outcome::Rejected => {
                format!("the session ended {}, so the message was not sent: {e}", session_step(r))
            }
        },
        Some(_) => with_reply("the message was not sent"),
    }
}

/// Where a session that ended before the end of data stopped, as far as the report tells.
fn session_step(r: &MessageReport) -> String {
    if r.mail_reply.is_none() {
        return "before the reply to MAIL FROM".into();
    }
    if let Some(x) = r.recipients.iter().find(|x| x.rcpt_reply.is_none()) {
        return format!("before the reply to RCPT TO:<{}>", x.path);
    }
    if r.data_reply.is_none() {
        return "after the recipients, before the end of data".into();
    }
    "while the body was being sent".into()
}

/// 0 all delivered; 3 any recipient's outcome unknown; 2 nothing delivered; 1 the rest. A refusal that is
/// the message's fault (65) overrides them.
fn exit_status(tallies: &[Tally]) -> i32 {
    if let Some(status) = tallies.iter().filter_map(|t| t.problem.as_ref()).find_map(|p| p.status) {
        return status;
    }
    let sum = |f: fn(&Tally) -> u64| tallies.iter().map(f).sum::<u64>();
    if sum(|t| t.unknown_recipients) > 0 {
        exit::UNKNOWN
    } else if sum(|t| t.sent) == 0 {
        exit::FAILED
    } else if sum(|t| t.complete) < sum(|t| t.requested) {
        exit::PARTIAL
    } else {
        exit::SENT
    }
}

fn last_report(tallies: &[Tally]) -> Option<&MessageReport> {
    tallies.iter().rev().find_map(|t| t.last.as_ref())
}

fn first_problem(tallies: &[Tally]) -> Option<&Problem> {
    tallies.iter().find_map(|t| t.problem.as_ref())
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

fn status_name(status: i32) -> &'static str {
    match status {
        exit::SENT => "sent",
        exit::PARTIAL => "partial",
        exit::UNKNOWN => "unknown",
        exit::FAILED => "rejected",
        _ => "error",
    }
}

/// `delivered`, `rejected` or `unknown`, and whether a rejection is temporary.
fn recipient_outcome(x: &RecipientResult) -> (&'static str, bool) {
    match x.status {
        RecipientStatus::Delivered => ("delivered", false),
        RecipientStatus::TemporaryFailure => ("rejected", true),
        RecipientStatus::PermanentFailure => ("rejected", false),
        RecipientStatus::Unknown => ("unknown", false),
    }
}

/// The JSON object; `server`: the host every recipient went to, unless the tally names one per recipient
/// (`--mx`).
fn json_report(tallies: &[Tally], status: i32, seconds: Option<f64>, server: Option<&str>) -> Value {
    let last = last_report(tallies);
    let hosts = tallies.iter().rev().find_map(|t| t.hosts.as_ref());
    let host = |i: usize| match hosts {
        Some(hosts) => hosts.get(i).cloned().flatten(),
        None => server.map(str::to_owned),
    };
    let problem = first_problem(tallies);
    let name = if last.is_none() && problem.is_some() { "error" } else { status_name(status) };
    let reply = match last {
        Some(r) => r.reply(),
        None => problem.and_then(|p| p.reply.as_ref()),
    };
    let mut v = json!({
        "status": name,
        "reply": reply_json(reply),
        "recipients": last.map(|r| r.recipients.iter().enumerate().map(|(i, x)| {
            let (outcome, temporary) = recipient_outcome(x);
            json!({
                "address": x.path.as_str(),
                "host": host(i),
                "outcome": outcome,
                "temporary": temporary,
                "accepted": x.status == RecipientStatus::Delivered,
                "reply": reply_json(x.reply.as_ref()),
            })
        }).collect::<Vec<_>>()).unwrap_or_default(),
        "warnings": last.map(|r| r.warnings.iter().map(|w| match w {
            Warning::NoDsnSupport => "no_dsn_support",
            Warning::SentAgain { .. } => "sent_again",
            _ => "other",
        }).collect::<Vec<_>>()).unwrap_or_default(),
        "error": match problem {
            Some(p) => json!({"kind": p.kind, "message": p.message}),
            None => Value::Null,
        },
    });
    if let Some(seconds) = seconds {
        let sum = |f: fn(&Tally) -> u64| tallies.iter().map(f).sum::<u64>();
        let (requested, sent) = (sum(|t| t.requested), sum(|t| t.sent));
        let (rejected, unknown) = (sum(|t| t.rejected), sum(|t| t.unknown));
        v["messages"] = json!(sent);
        v["requested"] = json!(requested);
        v["sent"] = json!(sent);
        v["rejected"] = json!(rejected);
        v["unknown"] = json!(unknown);
        v["not_attempted"] = json!(requested.saturating_sub(sent + rejected + unknown));
        v["seconds"] = json!(seconds);
        v["messages_per_second"] = json!(sent as f64 / seconds.max(1e-9));
        v["bytes"] = json!(sum(|t| t.bytes));
    }
    v
}

fn human_report(tallies: &[Tally], seconds: Option<f64>) {
    if let Some(p) = first_problem(tallies) {
        eprintln!("smtp-send: {}", p.message);
    }
    if let Some(seconds) = seconds {
        let sum = |f: fn(&Tally) -> u64| tallies.iter().map(f).sum::<u64>();
        let (requested, sent, bytes) = (sum(|t| t.requested), sum(|t| t.sent), sum(|t| t.bytes));
        let (rejected, unknown) = (sum(|t| t.rejected), sum(|t| t.unknown));
        println!(
            "{sent} of {requested} messages sent in {seconds:.3} s: {:.0} messages/s, {:.2} MB/s; \
             {rejected} rejected, {unknown} unknown, {} not attempted",
            sent as f64 / seconds.max(1e-9),
            bytes as f64 / 1e6 / seconds.max(1e-9),
            requested.saturating_sub(sent + rejected + unknown),
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
    match r.reply() {
        Some(reply) => println!("{outcome}: {reply}"),
        None => println!("{outcome}"),
    }
    let mut out = std::io::stdout().lock();
    for x in &r.recipients {
        let word = match recipient_outcome(x) {
            ("rejected", true) => "rejected (temporary)",
            (word, _) => word,
        };
        let _ = match x.reply.as_ref() {
            Some(reply) => writeln!(out, "  {word} {}: {reply}", x.path),
            None => writeln!(out, "  {word} {}", x.path),
        };
    }
    for w in &r.warnings {
        let _ = writeln!(out, "  warning: {w}");
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
