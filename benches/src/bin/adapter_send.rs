//! One adapter on loopback, for `benches/loopback.sh`: `--count` copies of `--file` over `--connections`
//! connections, with `smtp-blocking`, `smtp-smol` or `smtp-tokio`. One connection: `connect`, the batch send,
//! `quit`. Several: the adapter's pool, one worker (thread or task) a connection, each carrying copies with
//! the batch send while any are left. Prints `{"messages", "bytes", "seconds"}` (connect to the last QUIT),
//! as `smtp-send --json` does, and exits 1 unless every copy was sent.
//!
//! adapter_send --adapter blocking|smol|tokio --server HOST:PORT --count N [--connections C] --file MESSAGE
//!              [--from ADDR] [--to ADDR]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use smtp_proto::{Envelope, Outcome, TlsMode};
use smtp_transport::Options;
use smtp_transport::pool::PoolConfig;

const USAGE: &str = "adapter_send --adapter blocking|smol|tokio --server HOST:PORT --count N [--connections C] \
                     --file MESSAGE [--from ADDR] [--to ADDR]";

struct Args {
    adapter: String,
    options: Options,
    count: u64,
    connections: u64,
    body: Arc<[u8]>,
    envelope: Envelope,
}

fn fail(message: &str) -> ! {
    eprintln!("adapter_send: {message}\nusage: {USAGE}");
    std::process::exit(64)
}

fn args() -> Args {
    let (mut adapter, mut server, mut file) = (None, None, None);
    let (mut count, mut connections) = (1, 1);
    let (mut from, mut to) = ("alice@example.org".to_owned(), "bob@example.org".to_owned());
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().unwrap_or_else(|| fail(&format!("{flag} needs a value")));
        match flag.as_str() {
            "--adapter" => adapter = Some(value()),
            "--server" => server = Some(value()),
            "--file" => file = Some(value()),
            "--count" => count = value().parse().unwrap_or_else(|_| fail("--count: a number")),
            "--connections" => {
                connections = value().parse().unwrap_or_else(|_| fail("--connections: a number"))
            }
            "--from" => from = value(),
            "--to" => to = value(),
            other => fail(&format!("unknown argument {other}")),
        }
    }
    let server = server.unwrap_or_else(|| fail("--server is required"));
    let mut options = Options::from_server(&server).unwrap_or_else(|e| fail(&e.to_string()));
    options.session.tls = TlsMode::None;
    let file = file.unwrap_or_else(|| fail("--file is required"));
    let body: Arc<[u8]> = std::fs::read(&file).unwrap_or_else(|e| fail(&format!("{file}: {e}"))).into();
    let envelope = Envelope::parse(&from, &[to.as_str()]).unwrap_or_else(|e| fail(&e.to_string()));
    let adapter = adapter.unwrap_or_else(|| fail("--adapter is required"));
    Args { adapter, options, count, connections: connections.max(1), body, envelope }
}

/// The copies left to claim, shared by the workers; and the ones sent.
struct Work {
    left: AtomicU64,
    sent: AtomicU64,
}

impl Work {
    fn claim(&self) -> bool {
        self.left.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1)).is_ok()
    }
    fn report(&self, outcome: Outcome) {
        if outcome == Outcome::Sent {
            self.sent.fetch_add(1, Ordering::Relaxed);
        }
    }
}

fn pool_config(connections: u64) -> PoolConfig {
    let mut config = PoolConfig::default();
    config.max_connections = connections as usize;
    config
}

fn blocking(a: &Args, work: &Work) -> Result<(), smtp_transport::Error> {
    use smtp_blocking::{Pool, SmtpClient};
    let copies = || {
        std::iter::from_fn(|| {
            work.claim().then(|| (a.envelope.clone(), std::io::Cursor::new(a.body.clone())))
        })
    };
    if a.connections == 1 {
        let mut client = SmtpClient::connect(&a.options)?;
        client.send_all(copies(), |r| work.report(r.outcome))?;
        return client.quit();
    }
    let pool = Pool::new(a.options.clone(), pool_config(a.connections));
    std::thread::scope(|s| {
        let workers: Vec<_> = (0..a.connections)
            .map(|_| {
                s.spawn(|| {
                    while work.left.load(Ordering::Relaxed) > 0 {
                        pool.get()?.send_all(copies(), |r| work.report(r.outcome))?;
                    }
                    Ok::<(), smtp_transport::Error>(())
                })
            })
            .collect();
        workers.into_iter().try_for_each(|w| w.join().expect("no panic"))
    })?;
    pool.close(Duration::from_secs(10));
    Ok(())
}

fn smol(a: &Args, work: &Work) -> Result<(), smtp_transport::Error> {
    use smtp_smol::{Pool, SmtpClient};
    let copies = || {
        std::iter::from_fn(|| {
            work.claim().then(|| (a.envelope.clone(), futures_lite::io::Cursor::new(a.body.clone())))
        })
    };
    smol::block_on(async {
        if a.connections == 1 {
            let mut client = SmtpClient::connect(&a.options).await?;
            client.send_all(copies(), |r| work.report(r.outcome)).await?;
            return client.quit().await;
        }
        let pool = Pool::new(a.options.clone(), pool_config(a.connections));
        let executor = smol::LocalExecutor::new();
        let workers: Vec<_> = (0..a.connections)
            .map(|_| {
                executor.spawn(async {
                    while work.left.load(Ordering::Relaxed) > 0 {
                        pool.get().await?.send_all(copies(), |r| work.report(r.outcome)).await?;
                    }
                    Ok::<(), smtp_transport::Error>(())
                })
            })
            .collect();
        executor
            .run(async {
                for w in workers {
                    w.await?;
                }
                Ok::<(), smtp_transport::Error>(())
            })
            .await?;
        pool.close(Duration::from_secs(10)).await;
        Ok(())
    })
}

fn tokio(a: &Args, work: &Work) -> Result<(), smtp_transport::Error> {
    use smtp_tokio::{Pool, SmtpClient};
    let copies = || {
        std::iter::from_fn(|| {
            work.claim().then(|| (a.envelope.clone(), std::io::Cursor::new(a.body.clone())))
        })
    };
    // One thread, as smtp-send's smol run: the comparison is the adapter, not the scheduler.
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
    runtime.block_on(async {
        if a.connections == 1 {
            let mut client = SmtpClient::connect(&a.options).await?;
            client.send_all(copies(), |r| work.report(r.outcome)).await?;
            return client.quit().await;
        }
        let pool = Pool::new(a.options.clone(), pool_config(a.connections));
        let workers: Vec<_> = (0..a.connections)
            .map(|_| {
                let (pool, copies) = (&pool, &copies);
                async move {
                    while work.left.load(Ordering::Relaxed) > 0 {
                        pool.get().await?.send_all(copies(), |r| work.report(r.outcome)).await?;
                    }
                    Ok::<(), smtp_transport::Error>(())
                }
            })
            .collect();
        join_all(workers).await?;
        pool.close(Duration::from_secs(10)).await;
        Ok(())
    })
}

/// Runs the futures together on this task, the first error winning.
async fn join_all<F: std::future::Future<Output = Result<(), smtp_transport::Error>>>(
    futures: Vec<F>,
) -> Result<(), smtp_transport::Error> {
    let mut futures: Vec<_> = futures.into_iter().map(Box::pin).collect();
    std::future::poll_fn(|cx| {
        let mut i = 0;
        while i < futures.len() {
            match futures[i].as_mut().poll(cx) {
                std::task::Poll::Ready(Err(e)) => return std::task::Poll::Ready(Err(e)),
                std::task::Poll::Ready(Ok(())) => {
                    drop(futures.swap_remove(i));
                }
                std::task::Poll::Pending => i += 1,
            }
        }
        if futures.is_empty() { std::task::Poll::Ready(Ok(())) } else { std::task::Poll::Pending }
    })
    .await
}

fn main() {
    let a = args();
    let work = Work { left: AtomicU64::new(a.count), sent: AtomicU64::new(0) };
    let started = Instant::now();
    let result = match a.adapter.as_str() {
        "blocking" => blocking(&a, &work),
        "smol" => smol(&a, &work),
        "tokio" => tokio(&a, &work),
        other => fail(&format!("unknown adapter {other}")),
    };
    let seconds = started.elapsed().as_secs_f64();
    let sent = work.sent.load(Ordering::Relaxed);
    println!("{{\"messages\":{sent},\"bytes\":{},\"seconds\":{seconds}}}", sent * a.body.len() as u64);
    if let Err(e) = result {
        eprintln!("adapter_send: {e}");
        std::process::exit(1);
    }
    if sent != a.count {
        eprintln!("adapter_send: {sent} of {} sent", a.count);
        std::process::exit(1);
    }
}
