//! The conformance suite of `smtp-testkit`, against smtp-blocking: every hostile, TLS, fault, batch and
//! interop test, from the one source all adapters share.

use std::net::TcpStream;
use std::os::unix::net::UnixStream;

use smtp_blocking::smtp_proto::ehlo::Capabilities;
use smtp_blocking::{Envelope, Error, MessageReport, Options, SmtpClient};
use smtp_testkit::conformance::{Adapter, Stream, TestBody};

/// The client over either stream the suite opens.
#[derive(Debug)]
enum Blocking {
    Tcp(SmtpClient<TcpStream>),
    Unix(SmtpClient<UnixStream>),
}

/// `$body` with `$c` bound to the client, whichever stream it runs on.
macro_rules! on {
    ($client:expr, $c:ident => $body:expr) => {
        match $client {
            Blocking::Tcp($c) => $body,
            Blocking::Unix($c) => $body,
        }
    };
}

impl Adapter for Blocking {
    fn connect(options: &Options) -> Result<Self, Error> {
        SmtpClient::connect(options).map(Blocking::Tcp)
    }

    fn from_stream(stream: Stream, options: &Options) -> Result<Self, Error> {
        match stream {
            Stream::Tcp(s) => SmtpClient::from_stream(s, options).map(Blocking::Tcp),
            Stream::Unix(s) => SmtpClient::from_stream(s, options).map(Blocking::Unix),
        }
    }

    fn send<B: TestBody>(&mut self, envelope: Envelope, body: B) -> Result<MessageReport, Error> {
        on!(self, c => c.send(envelope, body))
    }

    fn send_with_progress<B: TestBody>(
        &mut self,
        envelope: Envelope,
        body: B,
        progress: &mut dyn FnMut(u64, Option<u64>),
    ) -> Result<MessageReport, Error> {
        on!(self, c => c.send_with_progress(envelope, body, progress))
    }

    fn send_all<B: TestBody>(
        &mut self,
        messages: Vec<(Envelope, B)>,
        on_report: &mut dyn FnMut(MessageReport),
    ) -> Result<(), Error> {
        on!(self, c => c.send_all(messages, on_report))
    }

    fn noop(&mut self) -> Result<(), Error> {
        on!(self, c => c.noop())
    }

    fn quit(self) -> Result<(), Error> {
        on!(self, c => c.quit())
    }

    fn capabilities(&self) -> Option<&Capabilities> {
        on!(self, c => c.capabilities())
    }

    fn is_tls(&self) -> bool {
        on!(self, c => c.is_tls())
    }

    fn close_reason(&self) -> Option<&Error> {
        on!(self, c => c.close_reason())
    }
}

smtp_testkit::conformance_tests!(
    Blocking,
    bugs {
        a_reply_in_the_middle_of_the_body_is_heard: "BUG: smtp-blocking does not read while it writes: a 421 in mid-body goes unheard, the write stalls (until the server gives up: Session(UnexpectedEof))",
        a_server_giving_up_mid_body_is_heard: "BUG: smtp-blocking does not read while it writes: a 421 then a reset in mid-body ends as Io(BrokenPipe), not the 421",
        a_silent_implicit_tls_server_times_out_in_the_handshake: "BUG: connect_timeout does not bound the implicit-TLS handshake (as Options::connect_timeout says): a silent server gets the greeting timeout, Session(Timeout(Greeting)) after 10 s",
        mailmax_on_a_stream_reports_the_rest: "BUG: send_all on a stream past MAILMAX reports only the first message it cannot send; the later ones get no report (3 reports of 5, then Err(Closed))",
        postfix_2000_recipients_over_a_limit_of_100_all_delivered: "BUG: all 2,000 RCPTs go out in one pipelined transaction; Postfix counts those past its overshoot limit as errors and ends the session (421 4.7.0 too many errors): nothing delivered",
    }
);
