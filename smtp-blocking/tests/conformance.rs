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

smtp_testkit::conformance_tests!(Blocking);
