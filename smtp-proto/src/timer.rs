//! Which reply a deadline was waiting for.

use core::fmt;

/// The phase whose deadline passed, as in RFC 5321 §4.5.3.2.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Timer {
    /// The 220 greeting.
    Greeting,
    /// The reply to EHLO, HELO or LHLO.
    Hello,
    /// The reply to STARTTLS.
    StartTls,
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
