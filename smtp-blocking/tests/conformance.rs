//! The conformance suite of `smtp-testkit`, against smtp-blocking: every hostile, TLS, fault, batch and
//! interop test, from the one source all adapters share.

use std::net::TcpStream;
use std::os::unix::net::UnixStream;

use smtp_blocking::smtp_proto::ehlo::Capabilities;
use smtp_blocking::{Envelope, Error, MessageReport, Options, SmtpClient};
use std::time::Duration;

use smtp_blocking::PoolConfig;
use smtp_testkit::conformance::{Adapter, PoolMessage, Stream, TestBody};

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

    type Pool = smtp_blocking::Pool;

    fn pool(options: Options, config: PoolConfig) -> Self::Pool {
        smtp_blocking::Pool::new(options, config)
    }

    /// One thread a caller.
    fn pool_send(
        pool: &Self::Pool,
        callers: Vec<Vec<PoolMessage>>,
    ) -> Vec<Vec<Result<MessageReport, Error>>> {
        std::thread::scope(|s| {
            let callers: Vec<_> = callers
                .into_iter()
                .map(|messages| {
                    s.spawn(move || {
                        let send = |m: PoolMessage| {
                            std::thread::sleep(m.pause);
                            pool.get()?.send(m.envelope, m.body)
                        };
                        messages.into_iter().map(send).collect()
                    })
                })
                .collect();
            callers.into_iter().map(|c| c.join().expect("no panic")).collect()
        })
    }

    fn pool_expire(pool: &Self::Pool) -> Option<Duration> {
        pool.expire()
    }

    fn pool_close(pool: &Self::Pool, timeout: Duration) {
        pool.close(timeout)
    }
}

smtp_testkit::conformance_tests!(Blocking);
