//! Time, in one place: which reply a deadline waits for, and how long each may take (RFC 5321 §4.5.3.2).

use core::fmt;
use core::time::Duration;

/// What a deadline waits for, as in RFC 5321 §4.5.3.2. [`Timeouts::of`] gives each one's duration.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Timer {
    /// The 220 greeting.
    Greeting,
    /// The reply to EHLO, HELO or LHLO.
    Hello,
    /// The reply to STARTTLS.
    StartTls,
    /// The driver's TLS handshake, after the 220 to STARTTLS.
    TlsHandshake,
    /// A reply during AUTH.
    Auth,
    /// The reply to MAIL.
    Mail,
    /// The reply to a RCPT.
    Rcpt,
    /// The 354 to DATA.
    DataInit,
    /// A block of body (or the reply to a non-final BDAT).
    DataBlock,
    /// The reply after the final dot or `BDAT … LAST`: the outcome is unknown.
    DataTermination,
    /// The reply to RSET or NOOP.
    Reset,
    /// The 221 to QUIT.
    Quit,
}

impl fmt::Display for Timer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Timer::Greeting => "the greeting",
            Timer::Hello => "the EHLO/HELO reply",
            Timer::StartTls => "the STARTTLS reply",
            Timer::TlsHandshake => "the TLS handshake",
            Timer::Auth => "an AUTH reply",
            Timer::Mail => "the MAIL reply",
            Timer::Rcpt => "a RCPT reply",
            Timer::DataInit => "the DATA reply",
            Timer::DataBlock => "a data block",
            Timer::DataTermination => "the reply to the end of data",
            Timer::Reset => "the RSET/NOOP reply",
            Timer::Quit => "the QUIT reply",
        })
    }
}

/// Per-command timeouts (RFC 5321 §4.5.3.2). Each bounds the wait for one reply, counted from the moment the
/// command was handed to the driver: a server that drips bytes cannot stretch it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timeouts {
    /// The 220 greeting (RFC: 5 minutes).
    pub greeting: Duration,
    /// EHLO, HELO, LHLO, STARTTLS and the TLS handshake, AUTH steps, RSET (no RFC value; 5 minutes).
    pub command: Duration,
    /// MAIL (RFC: 5 minutes).
    pub mail: Duration,
    /// Each RCPT (RFC: 5 minutes).
    pub rcpt: Duration,
    /// DATA until 354 (RFC: 2 minutes).
    pub data_init: Duration,
    /// Each block of body handed to the driver, and each non-final BDAT reply (RFC: 3 minutes).
    pub data_block: Duration,
    /// The reply after the final dot or `BDAT … LAST` (RFC: 10 minutes). A timeout here leaves the
    /// outcome unknown.
    pub data_termination: Duration,
    /// QUIT's 221 (no RFC value; 1 minute: nothing is lost by giving up).
    pub quit: Duration,
}

impl Timeouts {
    /// The RFC 5321 §4.5.3.2 minimums.
    pub const RFC5321: Timeouts = Timeouts {
        greeting: Duration::from_secs(300),
        command: Duration::from_secs(300),
        mail: Duration::from_secs(300),
        rcpt: Duration::from_secs(300),
        data_init: Duration::from_secs(120),
        data_block: Duration::from_secs(180),
        data_termination: Duration::from_secs(600),
        quit: Duration::from_secs(60),
    };

    /// The same timeout for every reply (what `smtp-send --timeout` sets).
    pub const fn uniform(each: Duration) -> Timeouts {
        Timeouts {
            greeting: each,
            command: each,
            mail: each,
            rcpt: each,
            data_init: each,
            data_block: each,
            data_termination: each,
            quit: each,
        }
    }

    /// How long `timer` may run.
    pub const fn of(&self, timer: Timer) -> Duration {
        match timer {
            Timer::Greeting => self.greeting,
            Timer::Hello | Timer::StartTls | Timer::TlsHandshake | Timer::Auth | Timer::Reset => self.command,
            Timer::Mail => self.mail,
            Timer::Rcpt => self.rcpt,
            Timer::DataInit => self.data_init,
            Timer::DataBlock => self.data_block,
            Timer::DataTermination => self.data_termination,
            Timer::Quit => self.quit,
        }
    }
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts::RFC5321
    }
}
