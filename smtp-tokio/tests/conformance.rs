//! The conformance suite of `smtp-testkit`, against smtp-tokio (each call run on a current-thread runtime
//! the client keeps): every hostile, TLS, fault, batch and interop test, from the one source all adapters
//! share.

use std::time::Duration;

use smtp_testkit::conformance::{Adapter, PoolMessage, Stream, TestBody, join_all};
use smtp_tokio::PoolConfig;
use smtp_tokio::smtp_proto::ehlo::Capabilities;
use smtp_tokio::{Envelope, Error, MessageReport, Options, SmtpClient, TcpStream};
use tokio::net::UnixStream;
use tokio::runtime::Runtime;

/// The client over either stream the suite opens, and the runtime its streams and timers belong to.
#[derive(Debug)]
struct Tokio {
    client: Client,
    runtime: Runtime,
}

#[derive(Debug)]
enum Client {
    Tcp(SmtpClient<TcpStream>),
    Unix(SmtpClient<UnixStream>),
}

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a tokio runtime")
}

/// `$body` (a future) run to completion with `$c` bound to the client, whichever stream it runs on.
macro_rules! on {
    ($tokio:expr, $c:ident => $body:expr) => {{
        let Tokio { client, runtime } = $tokio;
        runtime.block_on(async {
            match client {
                Client::Tcp($c) => $body.await,
                Client::Unix($c) => $body.await,
            }
        })
    }};
}

impl Adapter for Tokio {
    fn connect(options: &Options) -> Result<Self, Error> {
        let runtime = runtime();
        let client = runtime.block_on(SmtpClient::connect(options)).map(Client::Tcp)?;
        Ok(Tokio { client, runtime })
    }

    fn from_stream(stream: Stream, options: &Options) -> Result<Self, Error> {
        let runtime = runtime();
        let client = runtime.block_on(async {
            match stream {
                Stream::Tcp(s) => {
                    s.set_nonblocking(true).map_err(Error::Connect)?;
                    let s = TcpStream::from_std(s).map_err(Error::Connect)?;
                    SmtpClient::from_stream(s, options).await.map(Client::Tcp)
                }
                Stream::Unix(s) => {
                    s.set_nonblocking(true).map_err(Error::Connect)?;
                    let s = UnixStream::from_std(s).map_err(Error::Connect)?;
                    SmtpClient::from_stream(s, options).await.map(Client::Unix)
                }
            }
        })?;
        Ok(Tokio { client, runtime })
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
        match &self.client {
            Client::Tcp(c) => c.capabilities(),
            Client::Unix(c) => c.capabilities(),
        }
    }

    fn is_tls(&self) -> bool {
        match &self.client {
            Client::Tcp(c) => c.is_tls(),
            Client::Unix(c) => c.is_tls(),
        }
    }

    fn close_reason(&self) -> Option<&Error> {
        match &self.client {
            Client::Tcp(c) => c.close_reason(),
            Client::Unix(c) => c.close_reason(),
        }
    }

    /// The pool, and the runtime its connections and timers belong to.
    type Pool = (smtp_tokio::Pool, Runtime);

    fn pool(options: Options, config: PoolConfig) -> Self::Pool {
        (smtp_tokio::Pool::new(options, config), runtime())
    }

    /// One task a caller, all on the pool's runtime.
    fn pool_send(
        pool: &Self::Pool,
        callers: Vec<Vec<PoolMessage>>,
    ) -> Vec<Vec<Result<MessageReport, Error>>> {
        let (pool, runtime) = pool;
        let callers = callers.into_iter().map(|messages| async move {
            let mut results = Vec::new();
            for m in messages {
                tokio::time::sleep(m.pause).await;
                let sent = match pool.get().await {
                    Ok(mut c) => c.send(m.envelope, m.body).await,
                    Err(e) => Err(e),
                };
                results.push(sent);
            }
            results
        });
        runtime.block_on(join_all(callers.collect()))
    }

    fn pool_expire(pool: &Self::Pool) -> Option<Duration> {
        pool.1.block_on(pool.0.expire())
    }

    fn pool_close(pool: &Self::Pool, timeout: Duration) {
        pool.1.block_on(pool.0.close(timeout))
    }
}

smtp_testkit::conformance_tests!(Tokio);
