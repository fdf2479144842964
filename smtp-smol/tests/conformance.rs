//! The conformance suite of `smtp-testkit`, against smtp-smol (each call run with `smol::block_on`): every
//! hostile, TLS, fault, batch and interop test, from the one source all adapters share.

use smol::net::unix::UnixStream;
use smtp_smol::smtp_proto::ehlo::Capabilities;
use smtp_smol::{Envelope, Error, MessageReport, Options, SmtpClient, TcpStream};
use smtp_testkit::conformance::{Adapter, Stream, TestBody};

/// The client over either stream the suite opens.
#[derive(Debug)]
enum Smol {
    Tcp(SmtpClient<TcpStream>),
    Unix(SmtpClient<UnixStream>),
}

/// `$body` (a future) run to completion with `$c` bound to the client, whichever stream it runs on.
macro_rules! on {
    ($client:expr, $c:ident => $body:expr) => {
        smol::block_on(async {
            match $client {
                Smol::Tcp($c) => $body.await,
                Smol::Unix($c) => $body.await,
            }
        })
    };
}

impl Adapter for Smol {
    fn connect(options: &Options) -> Result<Self, Error> {
        smol::block_on(SmtpClient::connect(options)).map(Smol::Tcp)
    }

    fn from_stream(stream: Stream, options: &Options) -> Result<Self, Error> {
        smol::block_on(async {
            match stream {
                Stream::Tcp(s) => {
                    let s = TcpStream::try_from(s).map_err(Error::Connect)?;
                    SmtpClient::from_stream(s, options).await.map(Smol::Tcp)
                }
                Stream::Unix(s) => {
                    let s = UnixStream::try_from(s).map_err(Error::Connect)?;
                    SmtpClient::from_stream(s, options).await.map(Smol::Unix)
                }
            }
        })
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
        on!(self, c => c.send_with_progress(envelope, body, &mut *progress))
    }

    fn send_all<B: TestBody>(
        &mut self,
        messages: Vec<(Envelope, B)>,
        on_report: &mut dyn FnMut(MessageReport),
    ) -> Result<(), Error> {
        on!(self, c => c.send_all(messages, &mut *on_report))
    }

    fn noop(&mut self) -> Result<(), Error> {
        on!(self, c => c.noop())
    }

    fn quit(self) -> Result<(), Error> {
        on!(self, c => c.quit())
    }

    fn capabilities(&self) -> Option<&Capabilities> {
        match self {
            Smol::Tcp(c) => c.capabilities(),
            Smol::Unix(c) => c.capabilities(),
        }
    }

    fn is_tls(&self) -> bool {
        match self {
            Smol::Tcp(c) => c.is_tls(),
            Smol::Unix(c) => c.is_tls(),
        }
    }

    fn close_reason(&self) -> Option<&Error> {
        match self {
            Smol::Tcp(c) => c.close_reason(),
            Smol::Unix(c) => c.close_reason(),
        }
    }
}

smtp_testkit::conformance_tests!(
    Smol,
    bugs {
        a_silent_implicit_tls_server_times_out_in_the_handshake: "BUG: connect_timeout does not bound the implicit-TLS handshake (as Options::connect_timeout says): a silent server gets the greeting timeout, Session(Timeout(Greeting)) after 10 s",
        mailmax_on_a_stream_reports_the_rest: "BUG: send_all on a stream past MAILMAX reports only the first message it cannot send; the later ones get no report (3 reports of 5, then Err(Closed))",
        postfix_2000_recipients_over_a_limit_of_100_all_delivered: "BUG: all 2,000 RCPTs go out in one pipelined transaction; Postfix counts those past its overshoot limit as errors and ends the session (421 4.7.0 too many errors): nothing delivered",
    }
);
