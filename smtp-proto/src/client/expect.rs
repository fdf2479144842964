//! What each outstanding reply answers. Replies come in the order of the commands (RFC 5321 §4.1, RFC 2920
//! §3.1), so a FIFO of expectations, one per command handed to the driver, matches pipelined groups and
//! lock-step sessions alike: a lock-step session never has more than one entry.

use core::time::Duration;

use crate::config::Protocol;
use crate::event::MessageId;
use crate::timer::Timer;

/// What a reply will answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Kind {
    Greeting,
    Hello,
    Helo,
    StartTls,
    Auth,
    Mail(MessageId),
    Rcpt(MessageId, usize),
    Data(MessageId),
    /// The final dot (SMTP), or the lone dot that closes a DATA that no recipient can use.
    DataEnd(MessageId),
    /// LMTP: the reply for the accepted recipient at this index, after the body.
    LmtpRcpt(MessageId, usize),
    Bdat {
        id: MessageId,
        last: bool,
    },
    Rset,
    /// NOOP or RSET asked for by the application to check the session: `Event::Alive` follows a 250.
    Probe {
        rset: bool,
    },
    Quit,
}

impl Kind {
    pub(super) fn timer(self) -> Timer {
        match self {
            Kind::Greeting => Timer::Greeting,
            Kind::Hello | Kind::Helo => Timer::Hello,
            Kind::StartTls => Timer::StartTls,
            Kind::Auth => Timer::Auth,
            Kind::Mail(_) => Timer::Mail,
            Kind::Rcpt(..) => Timer::Rcpt,
            Kind::Data(_) => Timer::DataInit,
            Kind::DataEnd(_) | Kind::LmtpRcpt(..) | Kind::Bdat { last: true, .. } => Timer::DataTermination,
            Kind::Bdat { last: false, .. } => Timer::DataBlock,
            Kind::Rset | Kind::Probe { .. } => Timer::Reset,
            Kind::Quit => Timer::Quit,
        }
    }

    /// The message whose command this is.
    pub(super) fn message(self) -> Option<MessageId> {
        match self {
            Kind::Mail(id)
            | Kind::Rcpt(id, _)
            | Kind::Data(id)
            | Kind::DataEnd(id)
            | Kind::LmtpRcpt(id, _)
            | Kind::Bdat { id, .. } => Some(id),
            Kind::Greeting
            | Kind::Hello
            | Kind::Helo
            | Kind::StartTls
            | Kind::Auth
            | Kind::Rset
            | Kind::Probe { .. }
            | Kind::Quit => None,
        }
    }

    /// An end of data that may deliver, whose reply decides the message (or an LMTP recipient).
    pub(super) fn ends_data(self) -> Option<MessageId> {
        match self {
            Kind::DataEnd(id) | Kind::LmtpRcpt(id, _) | Kind::Bdat { id, last: true } => Some(id),
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
            Kind::Mail(_) => "MAIL",
            Kind::Rcpt(..) => "RCPT",
            Kind::Data(_) => "DATA",
            Kind::DataEnd(_) | Kind::LmtpRcpt(..) => "the end of data",
            Kind::Bdat { .. } => "BDAT",
            Kind::Rset | Kind::Probe { rset: true } => "RSET",
            Kind::Probe { rset: false } => "NOOP",
            Kind::Quit => "QUIT",
        }
    }

    /// Commands after which a new transaction may be pipelined (RFC 2920 §3.1).
    pub(super) fn allows_pipelined_mail(self) -> bool {
        matches!(self, Kind::DataEnd(_) | Kind::LmtpRcpt(..) | Kind::Rset)
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
