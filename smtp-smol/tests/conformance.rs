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

smtp_testkit::conformance_tests!(Smol);
