//! One conformance suite for every adapter (`smtp-blocking`, `smtp-smol`, `smtp-tokio`), written once.
//!
//! An adapter crate implements [`Adapter`], a blocking facade over its client (the async ones run each
//! future to completion inside the call), then instantiates the suite in its `tests/conformance.rs`:
//!
//! ```ignore
//! struct Blocking(smtp_blocking::SmtpClient);
//! impl smtp_testkit::conformance::Adapter for Blocking { /* one line a method */ }
//! smtp_testkit::conformance_tests!(Blocking);
//! ```
//!
//! [`conformance_tests!`](crate::conformance_tests) expands to one `#[test]` per suite test, each calling
//! the function of the same name here with the adapter as its type parameter. The suite holds:
//!
//! - `hostile`: STARTTLS injection and stripping, SMTP smuggling, command injection, endless and dripped
//!   replies with bounded memory, a disconnect or a 421 at every step, odd but legal servers;
//! - `session`: pipelining and lock-step, refusals, EOF and silence at the worst moments, large bodies,
//!   BDAT, LMTP, body errors, connect errors, `from_stream`;
//! - `tls`: STARTTLS, implicit TLS, certificate failures, AUTH inside TLS;
//! - `faults`: the same error for the same fault in every adapter;
//! - `batch`: `send_all`, `noop`, recipients split over transactions and connections (RCPTMAX, 452,
//!   MAILMAX);
//! - `interop`: smtp-sink, aiosmtpd and a private Postfix (`#[ignore]`d: they need the real servers).
//!
//! Every test plays its server with [`scripted`](crate::scripted) (or starts a real one), so each one
//! checks both the typed outcome and the bytes the client sent.

mod batch;
mod body;
mod capture;
mod faults;
mod hostile;
mod interop;
mod pool;
mod session;
mod tls;

pub use batch::*;
pub use body::Body;
pub use capture::capture;
pub use faults::*;
pub use hostile::*;
pub use interop::*;
pub use pool::*;
pub use session::*;
pub use tls::*;

use std::os::unix::net::UnixStream;
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Duration;

use smtp_proto::ehlo::Capabilities;
use smtp_proto::internal::normalize_line_endings;
use smtp_proto::sasl::Credentials;
use smtp_proto::{Envelope, MessageReport, Reply, Timeouts, TlsMode};
use smtp_transport::pool::PoolConfig;
use smtp_transport::{Error, Options};

use crate::scripted::{Script, ScriptedServer};

/// A blocking facade over one adapter's `SmtpClient`: each method is the client's method of the same
/// name, run to completion (on `smol::block_on`, a tokio current-thread runtime, or directly).
pub trait Adapter: Sized + std::fmt::Debug {
    /// `SmtpClient::connect`.
    fn connect(options: &Options) -> Result<Self, Error>;
    /// `SmtpClient::from_stream` on this connection, converted to the adapter's stream type.
    fn from_stream(stream: Stream, options: &Options) -> Result<Self, Error>;
    /// `SmtpClient::send`.
    fn send<B: TestBody>(&mut self, envelope: Envelope, body: B) -> Result<MessageReport, Error>;
    /// `SmtpClient::send_with_progress`.
    fn send_with_progress<B: TestBody>(
        &mut self,
        envelope: Envelope,
        body: B,
        progress: &mut dyn FnMut(u64, Option<u64>),
    ) -> Result<MessageReport, Error>;
    /// `SmtpClient::send_all`.
    fn send_all<B: TestBody>(
        &mut self,
        messages: Vec<(Envelope, B)>,
        on_report: &mut dyn FnMut(MessageReport),
    ) -> Result<(), Error>;
    /// `SmtpClient::noop`.
    fn noop(&mut self) -> Result<(), Error>;
    /// `SmtpClient::quit`.
    fn quit(self) -> Result<(), Error>;
    /// `SmtpClient::capabilities`.
    fn capabilities(&self) -> Option<&Capabilities>;
    /// `SmtpClient::is_tls`.
    fn is_tls(&self) -> bool;
    /// `SmtpClient::close_reason`.
    fn close_reason(&self) -> Option<&Error>;

    /// The adapter's `Pool`, with whatever runtime its connections live on.
    type Pool: Sync;
    /// `Pool::new`.
    fn pool(options: Options, config: PoolConfig) -> Self::Pool;
    /// Several callers at once (threads, or tasks on the pool's runtime), one a list of `messages`: each
    /// sends its messages in turn, `pool.get()` then `send` for every one (after sleeping the `Duration` that
    /// comes with it). The results in the same shape.
    fn pool_send(pool: &Self::Pool, callers: Vec<Vec<PoolMessage>>)
    -> Vec<Vec<Result<MessageReport, Error>>>;
    /// `pool.expire()`.
    fn pool_expire(pool: &Self::Pool) -> Option<Duration>;
    /// `pool.close(timeout)`.
    fn pool_close(pool: &Self::Pool, timeout: Duration);
}

/// Runs `futures` together on the calling task, for an async adapter's [`Adapter::pool_send`]: their outputs
/// in order.
pub async fn join_all<F: std::future::Future>(futures: Vec<F>) -> Vec<F::Output> {
    let mut futures: Vec<_> = futures.into_iter().map(Box::pin).collect();
    let mut outputs: Vec<Option<F::Output>> = futures.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (future, output) in futures.iter_mut().zip(outputs.iter_mut()) {
            if output.is_none() {
                match future.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => *output = Some(v),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending { std::task::Poll::Pending } else { std::task::Poll::Ready(()) }
    })
    .await;
    outputs.into_iter().map(|o| o.expect("every future finished")).collect()
}

/// A message for [`Adapter::pool_send`]: sent after a pause.
#[derive(Debug)]
pub struct PoolMessage {
    /// How long the caller waits before asking the pool for a connection.
    pub pause: Duration,
    /// The envelope.
    pub envelope: Envelope,
    /// The body.
    pub body: Body,
}

/// A body every adapter can take: [`Body`], or `OneShot<Body>` for one that cannot seek.
pub trait TestBody:
    std::io::Read
    + std::io::Seek
    + futures_io::AsyncRead
    + futures_io::AsyncSeek
    + tokio::io::AsyncRead
    + tokio::io::AsyncSeek
    + Unpin
    + Send
    + 'static
{
}

impl<T> TestBody for T where
    T: std::io::Read
        + std::io::Seek
        + futures_io::AsyncRead
        + futures_io::AsyncSeek
        + tokio::io::AsyncRead
        + tokio::io::AsyncSeek
        + Unpin
        + Send
        + 'static
{
}

/// A connection opened by the test, for [`Adapter::from_stream`].
#[derive(Debug)]
pub enum Stream {
    /// A TCP connection (blocking mode; the adapter converts it).
    Tcp(std::net::TcpStream),
    /// One end of a Unix socket pair: no local IP address.
    Unix(UnixStream),
}

/// Instantiates the conformance suite for an [`Adapter`]: one `#[test]` per suite test.
///
/// ```ignore
/// smtp_testkit::conformance_tests!(Blocking);
/// // A test that fails for this adapter because of a bug, ignored with the reason:
/// smtp_testkit::conformance_tests!(Blocking, bugs {
///     a_reply_in_the_middle_of_the_body_is_heard: "BUG: …",
/// });
/// ```
///
/// The interop tests are `#[ignore]`d (they need `scripts/install-test-servers`); run them with
/// `cargo test -- --include-ignored`.
#[macro_export]
macro_rules! conformance_tests {
    ($adapter:ty $(,)?) => {
        $crate::conformance_tests!($adapter, bugs {});
    };
    ($adapter:ty, bugs { $($bug:ident : $why:literal),* $(,)? }) => {
        $crate::__conformance_suite!(($) $adapter; $($bug $why)*);
    };
}

/// The list of suite tests, for [`conformance_tests!`](crate::conformance_tests).
#[doc(hidden)]
#[macro_export]
macro_rules! __conformance_suite {
    (($d:tt) $adapter:ty; $($bug:ident $why:literal)*) => {
        // A bug named that is not a suite test does not compile.
        $(const _: fn() = $crate::conformance::$bug::<$adapter>;)*
        macro_rules! __conformance_test {
            $(
                ($bug $d(, $d kind:ident)?) => {
                    #[test]
                    #[ignore = $why]
                    fn $bug() {
                        $crate::conformance::$bug::<$adapter>();
                    }
                };
            )*
            ($d name:ident) => {
                #[test]
                fn $d name() {
                    $crate::conformance::$d name::<$adapter>();
                }
            };
            ($d name:ident, interop) => {
                #[test]
                #[ignore = "needs real servers: scripts/install-test-servers, then cargo test -- --include-ignored"]
                fn $d name() {
                    $crate::conformance::$d name::<$adapter>();
                }
            };
        }
        $crate::__conformance_list!(__conformance_test);
    };
}

/// Calls `$test!(name)` for every suite test, `$test!(name, interop)` for those that need real servers.
#[doc(hidden)]
#[macro_export]
macro_rules! __conformance_list {
    ($test:ident) => {
        // hostile
        $test!(starttls_response_injection_aborts_before_tls_and_auth);
        $test!(starttls_stray_bytes_after_the_220_break_the_handshake);
        $test!(starttls_stripping_ends_the_session_without_auth);
        $test!(starttls_454_ends_the_session_without_auth);
        $test!(starttls_then_auth_inside_tls_only);
        $test!(smuggling_bodies_have_one_end_of_data);
        $test!(smuggling_bodies_split_into_1_to_3_byte_reads_have_one_end_of_data);
        $test!(injection_in_any_field_is_refused_before_connecting);
        $test!(nul_in_auth_user_name_never_reaches_the_wire);
        $test!(crlf_in_auth_user_name_stays_inside_base64);
        $test!(endless_reply_line_fails_with_bounded_memory);
        $test!(endless_multiline_reply_fails_with_bounded_memory);
        $test!(endless_reply_to_the_final_dot_is_unknown);
        $test!(dripped_greeting_times_out_at_the_greeting_deadline);
        $test!(dripped_final_reply_times_out_as_unknown);
        $test!(disconnect_at_every_step);
        $test!(reply_421_at_every_step);
        $test!(some_recipients_refused_451_550_552);
        $test!(all_recipients_refused_with_data_pipelined);
        $test!(all_recipients_refused_and_354_gets_an_empty_data);
        $test!(code_only_replies);
        $test!(lowercase_and_old_style_ehlo_keywords);
        $test!(greeting_in_several_lines);
        $test!(ehlo_refused_falls_back_to_helo);
        $test!(replies_split_into_single_bytes);
        $test!(several_replies_in_one_packet);
        // session
        $test!(pipelined_session_sends_mail_rcpt_data_in_one_go);
        $test!(lock_step_session_waits_for_each_reply);
        $test!(pipelining_offered_but_disabled_in_options_runs_lock_step);
        $test!(several_messages_on_one_connection);
        $test!(refused_recipients_give_a_partial_report_and_keep_the_session);
        $test!(service_closing_mid_session_rejects_and_closes);
        $test!(eof_after_the_final_dot_is_unknown);
        $test!(eof_before_the_final_dot_is_rejected);
        $test!(silent_server_times_out_at_the_greeting);
        $test!(silence_after_the_final_dot_times_out_as_unknown);
        $test!(large_tricky_body_streams_with_progress_and_unstuffs_to_the_original);
        $test!(bdat_in_lock_step_sends_every_chunk);
        $test!(lmtp_reports_each_recipient_after_the_body);
        $test!(too_big_for_the_server_is_refused_before_any_byte);
        $test!(eight_bit_body_under_a_seven_bit_declaration_is_a_body_error);
        $test!(eight_bit_body_to_a_server_without_8bitmime_is_a_body_error);
        $test!(utf8_body_with_the_default_envelope_is_declared_8bitmime);
        $test!(connection_refused_is_a_connect_error);
        $test!(greeting_554_is_a_session_error);
        $test!(greeting_554_then_a_reset_keeps_the_554);
        $test!(from_stream_runs_over_a_unix_socket);
        $test!(from_stream_runs_over_tcp);
        $test!(a_reply_in_the_middle_of_the_body_is_heard);
        $test!(a_server_giving_up_mid_body_is_heard);
        $test!(a_message_after_an_idle_longer_than_the_reply_timeouts_is_sent);
        // tls
        $test!(starttls_then_ehlo_again_then_auth_plain_then_mail);
        $test!(implicit_tls_with_auth_and_close_notify_on_quit);
        $test!(implicit_tls_checks_the_name_given_by_tls_name);
        $test!(implicit_tls_with_an_unknown_ca_fails_at_connect);
        $test!(starttls_with_an_unknown_ca_fails_at_connect);
        $test!(a_certificate_for_another_name_fails);
        $test!(opportunistic_tls_goes_on_in_plaintext_when_not_offered);
        $test!(wrong_password_is_auth_failed_with_the_reply);
        $test!(unreadable_ca_file_is_a_setup_error);
        $test!(auth_login_when_it_is_all_the_server_offers);
        $test!(a_silent_implicit_tls_server_times_out_in_the_handshake);
        // faults
        $test!(a_stalled_body_write_times_out_as_a_data_block);
        $test!(a_stalled_bdat_chunk_times_out_as_a_data_block);
        $test!(a_failed_starttls_handshake_is_a_tls_error);
        $test!(a_failed_implicit_tls_handshake_is_a_tls_error);
        $test!(a_body_reader_error_aborts_the_session_without_a_final_dot);
        $test!(a_peer_vanishing_mid_body_rejects_the_message);
        $test!(errors_convert_for_question_mark_in_io_code);
        // batch
        $test!(next_transaction_rides_with_the_final_dot);
        $test!(send_all_writes_each_next_mail_with_the_previous_final_dot);
        $test!(a_refusal_ends_the_batch_after_the_reports_in_flight);
        $test!(noop_answered_250_is_ok_and_421_is_an_error);
        $test!(rcptmax_splits_the_recipients_over_transactions);
        $test!(recipients_refused_as_too_many_go_in_a_later_transaction);
        $test!(recipients_refused_as_too_many_with_a_one_shot_body_are_reported);
        $test!(mailmax_continues_on_a_new_connection);
        $test!(mailmax_on_a_stream_reports_the_rest);
        // pool
        $test!(pool_reuses_connections_and_quits_them_on_close);
        $test!(pool_never_hands_out_a_connection_the_server_closed_while_idle);
        $test!(pool_never_hands_out_a_connection_the_server_sent_421_on_while_idle);
        $test!(pool_checks_a_long_idle_connection_with_rset);
        $test!(pool_sends_again_a_message_whose_connection_died_before_the_dot);
        $test!(pool_sends_again_a_message_interrupted_by_a_421_mid_body);
        $test!(pool_never_sends_again_after_the_dot);
        $test!(pool_follows_its_limit_of_messages_per_connection);
        $test!(pool_closes_idle_connections_when_they_expire);
        $test!(pool_backs_off_after_failed_connects);
        $test!(pool_backs_off_after_a_421_greeting);
        $test!(pool_rate_holds_in_every_second);
        $test!(pool_report_is_the_single_connection_report);
        // interop
        $test!(sink_pipelined_bodies, interop);
        $test!(sink_without_pipelining_bodies, interop);
        $test!(sink_lmtp_two_recipients, interop);
        $test!(sink_50_mib_streamed_in_constant_memory, interop);
        $test!(sink_disconnect_without_reply, interop);
        $test!(sink_421_and_disconnect, interop);
        $test!(sink_soft_reject, interop);
        $test!(sink_load_200_sessions_of_50_messages, interop);
        $test!(aiosmtpd_starttls_auth_plain_byte_exact_bodies, interop);
        $test!(aiosmtpd_auth_login, interop);
        $test!(aiosmtpd_wrong_password_is_auth_failed_535, interop);
        $test!(aiosmtpd_implicit_tls_with_auth, interop);
        $test!(aiosmtpd_refused_recipients_give_a_partial_report, interop);
        $test!(postfix_bdat_delivers_to_the_maildir, interop);
        $test!(postfix_dsn_request_gets_a_success_report, interop);
        $test!(postfix_utf8_address, interop);
        $test!(postfix_2000_recipients_over_a_limit_of_100_all_delivered, interop);
        $test!(postfix_idle_timeout_then_the_pool_delivers_on_a_new_connection, interop);
    };
}

// ------------------------------------------------------------------------------------------------
// What the tests share

/// Bound on every reply in tests that are not about time (the scripted server's own patience is 10 s).
const PATIENCE: Duration = Duration::from_secs(10);
/// The client's reply timeouts in the tests about time.
const SHORT: Duration = Duration::from_secs(1);

const GREETING: &str = "220 mx.test ESMTP\r\n";
const EHLO_LOCKSTEP: &str = "250-mx.test\r\n250 8BITMIME\r\n";
const EHLO_PIPELINING: &str = "250-mx.test\r\n250-PIPELINING\r\n250 8BITMIME\r\n";
const EHLO_STARTTLS: &str = "250-mx.test\r\n250-STARTTLS\r\n250 AUTH PLAIN\r\n";
const EHLO_AUTH: &str = "250-mx.test\r\n250 AUTH PLAIN\r\n";
/// `AUTH PLAIN` with base64("\0alice\0s3cret").
const AUTH_ALICE: &str = "AUTH PLAIN AGFsaWNlAHMzY3JldA==";

const MIB: u64 = 1024 * 1024;

/// The memory tests measure the whole process: they take this lock for writing, every other test for
/// reading.
static SERIAL: RwLock<()> = RwLock::new(());

fn shared() -> RwLockReadGuard<'static, ()> {
    SERIAL.read().unwrap_or_else(|e| e.into_inner())
}

fn exclusive() -> RwLockWriteGuard<'static, ()> {
    SERIAL.write().unwrap_or_else(|e| e.into_inner())
}

/// Client options for a server on 127.0.0.1:`port`: no TLS, a fixed EHLO name, every reply bounded by
/// [`PATIENCE`].
fn options_for(port: u16) -> Options {
    let mut o = Options::new("127.0.0.1", port);
    o.session.tls = TlsMode::None;
    o.helo_name = Some("client.test".parse().expect("valid EHLO name"));
    o.session.timeouts = Timeouts::uniform(PATIENCE);
    o.connect_timeout = PATIENCE;
    o
}

fn options(server: &ScriptedServer) -> Options {
    options_for(server.port())
}

/// A CA file of a CA that signed nothing the scripted server presents (dropping the folder removes it).
fn other_ca() -> (tempfile::TempDir, std::path::PathBuf) {
    let (ca, _, _) = crate::aio::certificates_from("another test CA").expect("test certificates");
    let dir = crate::temp_dir("other-ca").expect("temporary folder");
    let path = dir.path().join("ca.pem");
    std::fs::write(&path, ca).expect("write the CA file");
    (dir, path)
}

/// The greeting, EHLO answered with `ehlo` (which offers PIPELINING), then MAIL, RCPT and DATA arriving
/// together and answered together (250, 250, 354): what comes next is the body.
fn to_the_body(ehlo: &str) -> Script {
    Script::new()
        .send(GREETING)
        .on("EHLO", ehlo)
        .expect_line("MAIL")
        .expect_line("RCPT")
        .expect_line("DATA")
        .send("250 ok\r\n250 ok\r\n354 go\r\n")
}

/// STARTTLS required (credentials set), trusting the scripted server's test CA.
fn tls_options(server: &ScriptedServer) -> Options {
    let mut o = options(server).with_credentials(Credentials::password("alice", "s3cret"));
    assert_eq!(o.session.tls, TlsMode::Required);
    o.ca_file = Some(server.ca_pem_path().to_owned());
    o
}

fn envelope(to: &[&str]) -> Envelope {
    Envelope::parse("alice@example.org", to).expect("valid addresses")
}

/// A send after the session ended is refused, naming why the session ended.
#[track_caller]
fn assert_closed(result: Result<MessageReport, Error>) {
    match result {
        Err(Error::Closed(_)) => {}
        other => panic!("expected Closed(cause), got {other:?}"),
    }
}

/// The connection ended under the client: the core's `UnexpectedEof`, or the IO error that showed it.
fn is_eof(e: &Error) -> bool {
    use std::io::ErrorKind;
    match e {
        Error::Session(smtp_proto::Error::UnexpectedEof) => true,
        Error::Io(e) => matches!(
            e.kind(),
            ErrorKind::UnexpectedEof
                | ErrorKind::ConnectionReset
                | ErrorKind::ConnectionAborted
                | ErrorKind::BrokenPipe
        ),
        _ => false,
    }
}

fn code(reply: &Option<Reply>) -> Option<u16> {
    reply.as_ref().map(|r| r.code())
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The body as the client puts it on the wire, before dot-stuffing: every line ending CRLF, and a final
/// CRLF added to a body that does not end with a line ending.
fn client_form(body: &[u8]) -> Vec<u8> {
    let mut v = normalize_line_endings(body);
    if !v.is_empty() && !v.ends_with(b"\r\n") {
        v.extend_from_slice(b"\r\n");
    }
    v
}

/// Peak resident memory of this process (VmHWM), in bytes.
fn peak_rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).expect("VmHWM");
    let kib: u64 = line.split_whitespace().nth(1).and_then(|v| v.parse().ok()).expect("VmHWM value");
    kib * 1024
}

/// Resets the peak to the current resident size (Linux ≥ 4.0), so that [`peak_rss`] measures what comes
/// next and not what another test did before. Where that is refused, the peak only ever grows and a
/// later measurement is at worst too generous.
fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// A body of about `len` bytes with everything the stuffer must handle: lines starting with dots, a
/// lone-dot line, bare LF and bare CR line endings, long lines, 8-bit text. Ends with a line ending.
fn tricky_body(len: usize) -> Vec<u8> {
    let mut body = Vec::with_capacity(len + 100);
    let mut i: u64 = 0;
    while body.len() < len {
        i += 1;
        match i % 7 {
            0 => body.extend_from_slice(b".\r\n"),
            1 => body.extend_from_slice(b"..starts with two dots\n"),
            2 => body.extend_from_slice(b".one dot, bare CR\r"),
            3 => {
                body.extend_from_slice(format!("line {i} ").as_bytes());
                body.extend(std::iter::repeat_n(b'x', (i % 300) as usize));
                body.extend_from_slice(b"\r\n");
            }
            4 => body.extend_from_slice(b"\r\n"),
            5 => body.extend_from_slice(b"tab\tand 8-bit \xc3\xa9\n"),
            _ => body.extend_from_slice(b"plain line\r\n"),
        }
    }
    body.extend_from_slice(b"end\r\n");
    body
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    /// Every suite test (a `pub fn name<A: Adapter>()` here) is in the list `conformance_tests!` expands,
    /// and the list names nothing else: a test cannot be written and then forgotten.
    #[test]
    fn the_macro_lists_every_suite_test() {
        let sources = [
            include_str!("hostile.rs"),
            include_str!("session.rs"),
            include_str!("tls.rs"),
            include_str!("faults.rs"),
            include_str!("batch.rs"),
            include_str!("interop.rs"),
            include_str!("pool.rs"),
        ];
        let written: BTreeSet<&str> = sources
            .iter()
            .flat_map(|s| s.lines())
            .filter_map(|l| l.strip_prefix("pub fn ")?.split_once("<A: Adapter>()"))
            .map(|(name, _)| name)
            .collect();
        let source = include_str!("mod.rs");
        let list = &source[source.find("macro_rules! __conformance_list").expect("the list")..];
        let listed: BTreeSet<&str> = list[..list.find("\n}\n").expect("its end")]
            .split("$test!(")
            .skip(1)
            .filter_map(|call| {
                call.split(|c: char| !(c.is_alphanumeric() || c == '_')).find(|w| !w.is_empty())
            })
            .collect();
        assert_eq!(written, listed);
        assert!(written.len() > 90, "{} tests", written.len());
    }
}
