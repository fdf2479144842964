//! The conformance suite of `smtp-testkit`, against smtp-smol (each call run with `smol::block_on`): every
//! hostile, TLS, fault, batch and interop test, from the one source all adapters share.

use std::time::Duration;

use smol::net::unix::UnixStream;
use smtp_smol::PoolConfig;
use smtp_smol::smtp_proto::ehlo::Capabilities;
use smtp_smol::{Envelope, Error, MessageReport, Options, SmtpClient, TcpStream};
use smtp_testkit::conformance::{Adapter, PoolMessage, Stream, TestBody, join_all};

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

    type Pool = smtp_smol::Pool;

    fn pool(options: Options, config: PoolConfig) -> Self::Pool {
        smtp_smol::Pool::new(options, config)
    }

    /// One task a caller, all on this thread.
    fn pool_send(
        pool: &Self::Pool,
        callers: Vec<Vec<PoolMessage>>,
    ) -> Vec<Vec<Result<MessageReport, Error>>> {
        let callers = callers.into_iter().map(|messages| async move {
            let mut results = Vec::new();
            for m in messages {
                smol::Timer::after(m.pause).await;
                let sent = match pool.get().await {
                    Ok(mut c) => c.send(m.envelope, m.body).await,
                    Err(e) => Err(e),
                };
                results.push(sent);
            }
            results
        });
        smol::block_on(join_all(callers.collect()))
    }

    fn pool_expire(pool: &Self::Pool) -> Option<Duration> {
        smol::block_on(pool.expire())
    }

    fn pool_close(pool: &Self::Pool, timeout: Duration) {
        smol::block_on(pool.close(timeout))
    }
}

smtp_testkit::conformance_tests!(Smol);
