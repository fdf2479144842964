//! A connection pool's policy, sans-IO: which connection a message goes on, when one opens or closes, how fast
//! messages leave, and when a failing destination is left alone. Time is an input (a `Duration` since an
//! origin of the adapter's choosing); the adapters' `Pool` handles do the IO.
//!
//! What it learns from the failures of other pools: a connection the server closed while it sat idle is never
//! handed out (the adapter looks for EOF or a 421 without a round trip, and one idle for long is checked with
//! RSET); reuse is bounded by time and count, like Postfix's connection cache; a destination that keeps
//! failing is left alone for a while (exponential backoff with jitter) instead of being reconnected to in a
//! loop; and the rate limit is taken before a message is sent, so no one-second window holds more than the
//! rate.

mod handles;

pub use handles::{AsyncCheckout, AsyncPool, AsyncPooled, BlockingPool, Checkout, Pooled};

use std::time::Duration;

use smtp_proto::{Failure, MessageReport, Outcome};

/// How a pool behaves.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct PoolConfig {
    /// At most this many connections at once (at least 1).
    pub max_connections: usize,
    /// A connection carries at most this many transactions, and the server's `LIMITS MAILMAX` (RFC 9422)
    /// too: the pool sets [`ClientConfig::mail_max`](smtp_proto::ClientConfig::mail_max).
    pub max_messages_per_connection: Option<u32>,
    /// A connection older than this is not reused: it is closed (with QUIT) once idle.
    pub max_age: Duration,
    /// A connection idle for this long is closed (with QUIT).
    pub idle_timeout: Duration,
    /// A connection idle for longer than this is checked with RSET before it carries a message.
    pub check_after: Duration,
    /// At most this many transactions a second, for the whole pool: the pool sets [`Options::rate`](crate::Options::rate) (unless
    /// the options already have one).
    pub rate: Option<f64>,
    /// The first wait after a failed connect or a refused greeting; it doubles with each failure in a row.
    pub backoff_first: Duration,
    /// The longest wait.
    pub backoff_max: Duration,
}

impl Default for PoolConfig {
    /// 4 connections, each reused for at most 5 minutes and closed after 30 s idle, checked after 2 s idle; no
    /// rate limit; backoff from 1 s up to 5 minutes.
    fn default() -> Self {
        PoolConfig {
            max_connections: 4,
            max_messages_per_connection: None,
            max_age: Duration::from_secs(300),
            idle_timeout: Duration::from_secs(30),
            check_after: Duration::from_secs(2),
            rate: None,
            backoff_first: Duration::from_secs(1),
            backoff_max: Duration::from_secs(300),
        }
    }
}

/// A connection of the pool, named by the policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId(u64);

/// What a message waiting for a connection gets from [`Policy::checkout`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Grant {
    /// Send on this idle connection; `check`: it sat idle for long, RSET it first.
    Reuse {
        /// The connection.
        conn: ConnId,
        /// Check it with RSET before use.
        check: bool,
    },
    /// Open a new connection (then [`Policy::opened`] or [`Policy::open_failed`]).
    Open {
        /// Its name.
        conn: ConnId,
    },
    /// Every connection is busy: ask again when one is checked in.
    Wait,
    /// The destination failed and is left alone until `until`: fail the message fast.
    Backoff {
        /// When a connection may be tried again.
        until: Duration,
    },
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum State {
    Opening,
    Busy,
    Idle { since: Duration },
}

#[derive(Clone, Debug)]
struct Conn {
    id: ConnId,
    state: State,
    opened: Duration,
}

/// The policy of one pool (one destination). See the [module docs](self).
#[derive(Clone, Debug)]
pub struct Policy {
    config: PoolConfig,
    conns: Vec<Conn>,
    next_id: u64,
    /// Connect failures in a row.
    failures: u32,
    backoff_until: Option<Duration>,
    /// For the backoff's jitter (xorshift).
    rng: u64,
}

impl Policy {
    /// A pool with nothing open; `seed` feeds the backoff's jitter.
    pub fn new(config: PoolConfig, seed: u64) -> Policy {
        Policy { config, conns: Vec::new(), next_id: 1, failures: 0, backoff_until: None, rng: seed | 1 }
    }

    /// A message wants a connection: the most recently used idle one, else a new one while under the limit.
    pub fn checkout(&mut self, now: Duration) -> Grant {
        let reusable =
            self.conns.iter_mut().filter(|c| matches!(c.state, State::Idle { .. })).max_by_key(|c| {
                match c.state {
                    State::Idle { since } => since,
                    _ => Duration::ZERO,
                }
            });
        if let Some(c) = reusable {
            let State::Idle { since } = c.state else { unreachable!("filtered on Idle") };
            c.state = State::Busy;
            Grant::Reuse { conn: c.id, check: now.saturating_sub(since) > self.config.check_after }
        } else if self.conns.len() >= self.config.max_connections.max(1) {
            Grant::Wait
        } else if let Some(until) = self.backoff_until.filter(|&until| now < until) {
            Grant::Backoff { until }
        } else {
            let id = ConnId(self.next_id);
            self.next_id += 1;
            self.conns.push(Conn { id, state: State::Opening, opened: now });
            Grant::Open { conn: id }
        }
    }

    /// The connection of a [`Grant::Open`] is ready: the destination works again.
    pub fn opened(&mut self, conn: ConnId) {
        self.failures = 0;
        self.backoff_until = None;
        if let Some(c) = self.find(conn) {
            c.state = State::Busy;
        }
    }

    /// The connection of a [`Grant::Open`] could not be opened, or its greeting refused service (421, 4yz):
    /// the destination waits, twice as long as last time (from `backoff_first` up to `backoff_max`), less a
    /// random part of up to half, so that many clients do not come back at once.
    pub fn open_failed(&mut self, conn: ConnId, now: Duration) {
        self.conns.retain(|c| c.id != conn);
        self.failures = self.failures.saturating_add(1);
        let doubled = self.config.backoff_first.saturating_mul(1 << (self.failures - 1).min(20));
        let delay = doubled.min(self.config.backoff_max);
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        let jitter = delay.mul_f64((self.rng % 1000) as f64 / 2000.0);
        self.backoff_until = Some(now + delay - jitter);
    }

    /// The messages are done with `conn`. `usable`: the session is still open and under its transaction limit
    /// ([`smtp_proto::Client::is_spent`]). Returns whether to keep it (it becomes idle), or to close it (with
    /// QUIT when still open): spent, too old, or ended.
    pub fn checkin(&mut self, conn: ConnId, now: Duration, usable: bool) -> bool {
        let max_age = self.config.max_age;
        let Some(c) = self.find(conn) else { return false };
        let keep = usable && now.saturating_sub(c.opened) < max_age;
        if keep {
            c.state = State::Idle { since: now };
        } else {
            self.conns.retain(|c| c.id != conn);
        }
        keep
    }

    /// An idle connection to close now (with QUIT): idle too long, or too old. Call until `None`.
    pub fn expired(&mut self, now: Duration) -> Option<ConnId> {
        let (idle, age) = (self.config.idle_timeout, self.config.max_age);
        let pos = self.conns.iter().position(|c| match c.state {
            State::Idle { since } => now.saturating_sub(since) >= idle || now.saturating_sub(c.opened) >= age,
            _ => false,
        })?;
        Some(self.conns.remove(pos).id)
    }

    /// When the next idle connection expires.
    pub fn next_expiry(&self) -> Option<Duration> {
        let (idle, age) = (self.config.idle_timeout, self.config.max_age);
        self.conns
            .iter()
            .filter_map(|c| match c.state {
                State::Idle { since } => Some((since + idle).min(c.opened + age)),
                _ => None,
            })
            .min()
    }

    /// The idle connections, to close them all (the pool is closing).
    pub fn drain_idle(&mut self) -> Vec<ConnId> {
        let idle: Vec<ConnId> =
            self.conns.iter().filter(|c| matches!(c.state, State::Idle { .. })).map(|c| c.id).collect();
        self.conns.retain(|c| !idle.contains(&c.id));
        idle
    }

    /// Connections open or opening.
    pub fn len(&self) -> usize {
        self.conns.len()
    }

    /// No connection open or opening.
    pub fn is_empty(&self) -> bool {
        self.conns.is_empty()
    }

    fn find(&mut self, conn: ConnId) -> Option<&mut Conn> {
        self.conns.iter_mut().find(|c| c.id == conn)
    }
}

/// Whether a message should go again, once, on a fresh connection: its connection died before the end of data
/// (a lost connection, a timeout, or a 421: the server closing the session, RFC 5321 §3.8, whether it came
/// on its own, as the reply to MAIL, to every RCPT or to DATA, or in the middle of the body), so it was not
/// sent. After the final dot, never: its outcome is unknown, or the server answered it (in LMTP, a 421 as a
/// recipient's reply too).
pub fn worth_retrying(report: &MessageReport) -> bool {
    use smtp_proto::Error as E;
    let closing = report.reply().is_some_and(|r| r.code() == 421);
    let before_the_dot = match &report.failure {
        Some(Failure::Session(E::UnexpectedEof | E::ServiceUnavailable(_) | E::Timeout(_))) => true,
        // A 421 in the middle of the body, before the end of data went out, is the server closing too.
        Some(
            Failure::MailRejected
            | Failure::NoRecipientAccepted
            | Failure::DataRejected
            | Failure::Interrupted,
        ) => closing,
        _ => false,
    };
    // Any reply to the end of data (in LMTP, a recipient's, a 421 included) means the dot went out.
    let interrupted = report.failure == Some(Failure::Interrupted);
    let answered_the_dot = (report.final_reply.is_some() && !interrupted)
        || report.recipients.iter().any(|r| r.lmtp_reply.is_some());
    report.outcome == Outcome::Rejected && before_the_dot && !answered_the_dot && report.is_temporary()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: f64) -> Duration {
        Duration::from_secs_f64(s)
    }

    #[test]
    fn reuse_the_most_recent_idle_connection_and_open_up_to_the_limit() {
        let mut p = Policy::new(PoolConfig { max_connections: 2, ..PoolConfig::default() }, 7);
        let Grant::Open { conn: a } = p.checkout(secs(0.0)) else { panic!() };
        p.opened(a);
        let Grant::Open { conn: b } = p.checkout(secs(0.0)) else { panic!() };
        p.opened(b);
        assert_eq!(p.checkout(secs(0.0)), Grant::Wait);
        assert!(p.checkin(a, secs(1.0), true));
        assert!(p.checkin(b, secs(1.5), true));
        assert_eq!(p.checkout(secs(1.6)), Grant::Reuse { conn: b, check: false });
        // Idle for longer than `check_after` (2 s): checked with RSET before use.
        assert_eq!(p.checkout(secs(3.5)), Grant::Reuse { conn: a, check: true });
    }

    #[test]
    fn limits_close_connections_by_age_and_idle_time() {
        let config = PoolConfig { max_age: secs(60.0), idle_timeout: secs(10.0), ..PoolConfig::default() };
        let mut p = Policy::new(config, 7);
        // Spent (its transaction limit reached): not kept.
        let Grant::Open { conn } = p.checkout(secs(0.0)) else { panic!() };
        p.opened(conn);
        assert!(!p.checkin(conn, secs(2.0), false));
        assert!(p.is_empty());
        // Idle timeout and age.
        let Grant::Open { conn } = p.checkout(secs(3.0)) else { panic!() };
        p.opened(conn);
        assert!(p.checkin(conn, secs(4.0), true));
        assert_eq!(p.next_expiry(), Some(secs(14.0)));
        assert_eq!(p.expired(secs(13.9)), None);
        assert_eq!(p.expired(secs(14.0)), Some(conn));
        let Grant::Open { conn } = p.checkout(secs(20.0)) else { panic!() };
        p.opened(conn);
        assert!(!p.checkin(conn, secs(80.0), true), "older than max_age");
        // A session that ended is never kept.
        let Grant::Open { conn } = p.checkout(secs(81.0)) else { panic!() };
        p.opened(conn);
        assert!(!p.checkin(conn, secs(82.0), false));
    }

    #[test]
    fn failing_destinations_back_off_exponentially_with_jitter() {
        let config = PoolConfig { backoff_first: secs(1.0), backoff_max: secs(8.0), ..PoolConfig::default() };
        let mut p = Policy::new(config, 42);
        // Every connect fails: count the attempts a caller asking every 10 ms makes in 20 s.
        let (mut attempts, mut waits, mut t) = (Vec::new(), Vec::new(), secs(0.0));
        while t < secs(20.0) {
            match p.checkout(t) {
                Grant::Open { conn } => {
                    attempts.push(t);
                    p.open_failed(conn, t);
                }
                Grant::Backoff { until } => waits.push(until),
                other => panic!("{other:?}"),
            }
            t += secs(0.01);
        }
        // Gaps of about 1, 2, 4, 8, 8 s, each less up to half of it: 5 or 6 attempts, never a tight loop.
        let gaps: Vec<f64> = attempts.windows(2).map(|w| (w[1] - w[0]).as_secs_f64()).collect();
        let nominal = [1.0, 2.0, 4.0, 8.0, 8.0, 8.0];
        for (gap, full) in gaps.iter().zip(nominal) {
            assert!(*gap >= full / 2.0 - 0.011 && *gap <= full + 0.011, "gaps {gaps:?}");
        }
        assert!((4..=7).contains(&attempts.len()), "{attempts:?}");
        assert!(!waits.is_empty());
        // A success ends the backoff.
        let t = waits.last().copied().unwrap() + secs(0.01);
        let Grant::Open { conn } = p.checkout(t) else { panic!() };
        p.opened(conn);
        assert!(p.checkin(conn, t, true));
        assert!(matches!(p.checkout(t), Grant::Reuse { .. }));
    }

    #[test]
    fn only_messages_the_connection_lost_before_the_dot_are_retried() {
        use smtp_proto::{Error as E, MessageId, RecipientResult, RecipientStatus, Reply};
        let report = |outcome, failure, status| MessageReport {
            id: MessageId::UNSENT,
            outcome,
            failure,
            recipients: vec![RecipientResult {
                path: "bob@example.org".parse().unwrap(),
                rcpt_reply: None,
                lmtp_reply: None,
                status,
                reply: None,
            }],
            mail_reply: None,
            data_reply: None,
            final_reply: None,
            warnings: Vec::new(),
        };
        let lost = Some(Failure::Session(E::UnexpectedEof));
        let closing = Some(Failure::Session(E::ServiceUnavailable(Reply::new(421, "bye"))));
        assert!(worth_retrying(&report(Outcome::Rejected, lost.clone(), RecipientStatus::TemporaryFailure)));
        assert!(worth_retrying(&report(Outcome::Rejected, closing, RecipientStatus::TemporaryFailure)));
        assert!(!worth_retrying(&report(Outcome::Unknown, lost.clone(), RecipientStatus::Unknown)));
        let refused = Some(Failure::MailRejected);
        assert!(!worth_retrying(&report(Outcome::Rejected, refused, RecipientStatus::TemporaryFailure)));
        assert!(!worth_retrying(&report(Outcome::Rejected, lost, RecipientStatus::PermanentFailure)));
        // A 421 answering MAIL: the server is closing, the message was not sent. At the final dot: never.
        let mut closing_at_mail =
            report(Outcome::Rejected, Some(Failure::MailRejected), RecipientStatus::TemporaryFailure);
        closing_at_mail.mail_reply = Some(Reply::new(421, "4.3.2 shutting down"));
        assert!(worth_retrying(&closing_at_mail));
        closing_at_mail.mail_reply = Some(Reply::new(451, "4.3.0 try later"));
        assert!(!worth_retrying(&closing_at_mail));
        let mut closing_at_dot =
            report(Outcome::Rejected, Some(Failure::BodyRejected), RecipientStatus::TemporaryFailure);
        closing_at_dot.final_reply = Some(Reply::new(421, "4.3.2 shutting down"));
        assert!(!worth_retrying(&closing_at_dot));
        // LMTP: a 421 as a recipient's reply after the body ends the session; the dot went out: never.
        let closing = Some(Failure::Session(E::ServiceUnavailable(Reply::new(421, "4.3.2 shutting down"))));
        let mut lmtp_closing = report(Outcome::Rejected, closing, RecipientStatus::TemporaryFailure);
        lmtp_closing.recipients[0].lmtp_reply = Some(Reply::new(421, "4.3.2 shutting down"));
        assert!(!worth_retrying(&lmtp_closing));
        // A 421 in the middle of the body: the end of data never went out.
        let mut closing_mid_body =
            report(Outcome::Rejected, Some(Failure::Interrupted), RecipientStatus::TemporaryFailure);
        closing_mid_body.final_reply = Some(Reply::new(421, "4.3.2 shutting down"));
        assert!(worth_retrying(&closing_mid_body));
        closing_mid_body.final_reply = Some(Reply::new(552, "5.3.4 too big"));
        assert!(!worth_retrying(&closing_mid_body));
    }
}
