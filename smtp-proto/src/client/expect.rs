//! What each outstanding reply answers. Replies come in the order of the commands (RFC 5321 §4.1, RFC 2920
//! §3.1), so a FIFO of expectations, one per command handed to the driver, matches pipelined groups and
//! lock-step sessions alike: a lock-step session never has more than one entry.

use core::time::Duration;

use crate::config::Protocol;
use crate::event::MessageId;
use crate::timer::Timer;

/// What a reply will answer: a command of the session, or one of a message's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Kind {
    Greeting,
    Hello,
    Helo,
    StartTls,
    Auth,
    Rset,
    /// NOOP or RSET asked for by the application to check the session: `Event::Alive` follows a 250.
    Probe {
        rset: bool,
    },
    Quit,
    Txn(MessageId, Step),
}

/// A message's command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Step {
    Mail,
    /// The RCPT of the recipient at this index.
    Rcpt(usize),
    Data,
    /// The final dot (SMTP), or the lone dot that closes a DATA that no recipient can use.
    DataEnd,
    /// LMTP: the reply for the accepted recipient at this index, after the body.
    LmtpRcpt(usize),
    Bdat {
        last: bool,
    },
}

impl Kind {
    pub(super) fn timer(self) -> Timer {
        match self {
            Kind::Greeting => Timer::Greeting,
            Kind::Hello | Kind::Helo => Timer::Hello,
            Kind::StartTls => Timer::StartTls,
            Kind::Auth => Timer::Auth,
            Kind::Rset | Kind::Probe { .. } => Timer::Reset,
            Kind::Quit => Timer::Quit,
            Kind::Txn(_, Step::Mail) => Timer::Mail,
            Kind::Txn(_, Step::Rcpt(_)) => Timer::Rcpt,
            Kind::Txn(_, Step::Data) => Timer::DataInit,
            Kind::Txn(_, Step::Bdat { last: false }) => Timer::DataBlock,
            Kind::Txn(_, Step::DataEnd | Step::LmtpRcpt(_) | Step::Bdat { last: true }) => {
                Timer::DataTermination
            }
        }
    }

    /// The message whose command this is.
    pub(super) fn message(self) -> Option<MessageId> {
        match self {
            Kind::Txn(id, _) => Some(id),
            _ => None,
        }
    }

    /// An end of data that may deliver, whose reply decides the message (or an LMTP recipient).
    pub(super) fn ends_data(self) -> Option<MessageId> {
        match self {
            Kind::Txn(id, Step::DataEnd | Step::LmtpRcpt(_) | Step::Bdat { last: true }) => Some(id),
            _ => None,
        }
    }

    /// The command a reply of this kind answers, for error messages.
    pub(super) fn command(self, protocol: Protocol) -> &'static str {
        match self {
            Kind::Greeting => "the greeting",
            Kind::Hello if protocol == Protocol::Lmtp => "LHLO",
            Kind::Hello => "EHLO",
            Kind::Helo => "HELO",
            Kind::StartTls => "STARTTLS",
            Kind::Auth => "AUTH",
            Kind::Rset | Kind::Probe { rset: true } => "RSET",
            Kind::Probe { rset: false } => "NOOP",
            Kind::Quit => "QUIT",
            Kind::Txn(_, Step::Mail) => "MAIL",
            Kind::Txn(_, Step::Rcpt(_)) => "RCPT",
            Kind::Txn(_, Step::Data) => "DATA",
            Kind::Txn(_, Step::DataEnd | Step::LmtpRcpt(_)) => "the end of data",
            Kind::Txn(_, Step::Bdat { .. }) => "BDAT",
        }
    }

    /// Commands after which a new transaction may be pipelined (RFC 2920 §3.1).
    pub(super) fn allows_pipelined_mail(self) -> bool {
        matches!(self, Kind::Txn(_, Step::DataEnd | Step::LmtpRcpt(_)) | Kind::Rset)
    }
}

/// One reply the client waits for.
#[derive(Clone, Copy, Debug)]
pub(super) struct Expect {
    pub(super) kind: Kind,
    /// Set when the command is handed to the driver; `None` while it sits in the transmit buffer. A reply can
    /// only answer a command that has left.
    pub(super) deadline: Option<Duration>,
}
