//! The pool handles: checkout and checkin around the [`Policy`], for blocking and for async adapters.

use std::future::Future;
use std::ops::{Deref, DerefMut};
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use super::{ConnId, Grant, Policy, PoolConfig};
use crate::driver::Driver;
use crate::{Error, Options};

/// What a blocking pool needs from an adapter's client (`smtp_blocking::SmtpClient` implements it).
pub trait Pooled: Sized {
    /// Connects and runs the session until mail can be sent.
    fn open(options: &Options) -> Result<Self, Error>;
    /// Whether an idle session still works: runs [`Driver::check`].
    fn check(&mut self, rset: bool) -> bool;
    /// The session's driver: whether the session is open, and its capabilities.
    fn driver(&self) -> &Driver;
    /// QUIT, then close.
    fn close(self);
}

/// What an async pool needs from an adapter's client (`smtp_smol` and `smtp_tokio` implement it).
pub trait AsyncPooled: Sized + Send {
    /// Connects and runs the session until mail can be sent.
    fn open(options: Options) -> impl Future<Output = Result<Self, Error>> + Send;
    /// As [`Pooled::check`].
    fn check(&mut self, rset: bool) -> impl Future<Output = bool> + Send;
    /// The session's driver: whether the session is open, and its capabilities.
    fn driver(&self) -> &Driver;
    /// QUIT, then close.
    fn close(self) -> impl Future<Output = ()> + Send;
    /// The runtime's timer.
    fn sleep(duration: Duration) -> impl Future<Output = ()> + Send;
}

/// What every connection of a pool shares: a message that was not sent goes again, once; the rate limit; the
/// transaction limit.
fn pool_options(mut options: Options, config: &PoolConfig) -> Options {
    options.retry_unsent = true;
    if options.rate.is_none() {
        options.rate = config.rate.map(crate::rate::Rate::new);
    }
    let ours = &mut options.session.mail_max;
    *ours = match (*ours, config.max_messages_per_connection) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    options
}

/// Still open, and under its transaction limit.
fn usable(driver: &Driver) -> bool {
    !driver.client().is_closed() && !driver.client().is_spent()
}

/// What both handles share: the policy, the idle connections, and the ones to close.
struct Shared<C> {
    policy: Policy,
    idle: Vec<(ConnId, C)>,
    /// Connections to QUIT, left by checkins and expiries (an async checkin cannot QUIT in `drop`).
    to_close: Vec<C>,
    closing: bool,
}

impl<C> Shared<C> {
    fn new(config: PoolConfig, origin: Instant) -> Mutex<Shared<C>> {
        // The jitter needs no secret, only a seed that differs between pools and processes.
        let seed = origin.elapsed().as_nanos() as u64 ^ u64::from(std::process::id()) << 32;
        Mutex::new(Shared {
            policy: Policy::new(config, seed),
            idle: Vec::new(),
            to_close: Vec::new(),
            closing: false,
        })
    }

    /// Moves expired idle connections to `to_close`, then grants.
    fn grant(&mut self, now: Duration) -> Result<(Grant, Option<C>), Error> {
        if self.closing {
            return Err(Error::Send(smtp_proto::SendError::Misuse(smtp_proto::ApiMisuse::NotConnected)));
        }
        self.expire(now);
        let grant = self.policy.checkout(now);
        let client = match grant {
            Grant::Reuse { conn, .. } => self.take_idle(conn),
            Grant::Backoff { until } => return Err(Error::Backoff(until.saturating_sub(now))),
            Grant::Open { .. } | Grant::Wait => None,
        };
        Ok((grant, client))
    }

    /// Moves idle connections past their idle timeout or age to `to_close`; says when the next one expires.
    fn expire(&mut self, now: Duration) -> Option<Duration> {
        while let Some(conn) = self.policy.expired(now) {
            if let Some(client) = self.take_idle(conn) {
                self.to_close.push(client);
            }
        }
        self.policy.next_expiry()
    }

    fn take_idle(&mut self, conn: ConnId) -> Option<C> {
        let pos = self.idle.iter().position(|(id, _)| *id == conn)?;
        Some(self.idle.swap_remove(pos).1)
    }

    /// A client back from a message (or from a failed check): idle, or to close (a session already ended
    /// closes at once).
    fn checkin(&mut self, conn: ConnId, client: C, now: Duration, usable: bool) {
        if self.policy.checkin(conn, now, usable) && !self.closing {
            self.idle.push((conn, client));
        } else {
            self.to_close.push(client);
        }
    }
}

/// A pool of blocking connections to one server: [`BlockingPool::get`] a connection, send on it (one message
/// or a batch), drop it to give it back. A message that lost its connection before its end of data goes again,
/// once, on a fresh one; the report is the same as on a single connection.
pub struct BlockingPool<C: Pooled> {
    options: Options,
    origin: Instant,
    shared: Mutex<Shared<C>>,
    freed: Condvar,
}

impl<C: Pooled> BlockingPool<C> {
    /// A pool for the server `options` names, nothing open yet.
    pub fn new(options: Options, config: PoolConfig) -> Self {
        let options = pool_options(options, &config);
        let origin = Instant::now();
        BlockingPool { options, origin, shared: Shared::new(config, origin), freed: Condvar::new() }
    }

    /// A connection ready for mail: an idle one (checked when it sat idle), or a new one. Waits while the
    /// pool is full or the rate limit says so; fails fast with [`Error::Backoff`] while the server is left
    /// alone after failures.
    pub fn get(&self) -> Result<Checkout<'_, C>, Error> {
        loop {
            let now = self.origin.elapsed();
            let mut shared = self.lock();
            let granted = shared.grant(now);
            let to_close = std::mem::take(&mut shared.to_close);
            let (grant, client) = match granted {
                Ok(granted) => granted,
                Err(e) => {
                    drop(shared);
                    to_close.into_iter().for_each(C::close);
                    return Err(e);
                }
            };
            if grant == Grant::Wait && to_close.is_empty() {
                // Woken by a checkin; the timeout lets idle connections expire meanwhile.
                drop(self.freed.wait_timeout(shared, Duration::from_secs(1)));
                continue;
            }
            drop(shared);
            to_close.into_iter().for_each(C::close);
            match (grant, client) {
                (Grant::Reuse { conn, check }, Some(mut client)) => {
                    if client.check(check) {
                        return Ok(Checkout { pool: self, conn, client: Some(client) });
                    }
                    self.lock().checkin(conn, client, self.origin.elapsed(), false);
                }
                (Grant::Open { conn }, _) => match C::open(&self.options) {
                    Ok(client) => {
                        self.lock().policy.opened(conn);
                        return Ok(Checkout { pool: self, conn, client: Some(client) });
                    }
                    Err(e) => {
                        self.lock().policy.open_failed(conn, self.origin.elapsed());
                        self.freed.notify_one();
                        return Err(e);
                    }
                },
                _ => {}
            }
        }
    }

    /// Closes the pool: QUIT on every idle connection, then waits for the busy ones (at most `timeout`) and
    /// closes them as they come back. Later `get`s fail.
    pub fn close(&self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        let mut shared = self.lock();
        shared.closing = true;
        // Wakes `maintain`, and callers waiting in `get` (they fail now).
        self.freed.notify_all();
        loop {
            let idle = shared.policy.drain_idle();
            let mut closing: Vec<C> = std::mem::take(&mut shared.to_close);
            closing.extend(idle.into_iter().filter_map(|conn| shared.take_idle(conn)));
            let busy = !shared.policy.is_empty();
            drop(shared);
            closing.into_iter().for_each(C::close);
            let left = deadline.saturating_duration_since(Instant::now());
            if !busy || left.is_zero() {
                return;
            }
            shared = self.lock();
            shared = self.freed.wait_timeout(shared, left).unwrap_or_else(PoisonError::into_inner).0;
        }
    }

    /// Closes (with QUIT) the idle connections past their idle timeout or age, as `get` does on its way;
    /// says when the next one expires (from now).
    pub fn expire(&self) -> Option<Duration> {
        let now = self.origin.elapsed();
        let mut shared = self.lock();
        let next = shared.expire(now);
        let to_close = std::mem::take(&mut shared.to_close);
        drop(shared);
        to_close.into_iter().for_each(C::close);
        next.map(|at| at.saturating_sub(now))
    }

    /// Closes idle connections as they expire, until the pool closes: for a thread of its own, so that a
    /// pool left unused still ends its idle sessions on time (otherwise the next `get` does).
    pub fn maintain(&self) {
        loop {
            let wait = self.expire().unwrap_or(Duration::from_secs(1)).min(Duration::from_secs(1));
            let shared = self.lock();
            if shared.closing {
                return;
            }
            drop(self.freed.wait_timeout(shared, wait.max(Duration::from_millis(10))));
        }
    }

    fn lock(&self) -> MutexGuard<'_, Shared<C>> {
        self.shared.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl<C: Pooled> Drop for BlockingPool<C> {
    /// QUIT on every idle connection (a busy one borrows the pool: none is left when it drops).
    fn drop(&mut self) {
        let shared = self.shared.get_mut().unwrap_or_else(PoisonError::into_inner);
        shared.closing = true;
        let idle = shared.idle.drain(..).map(|(_, c)| c);
        let all: Vec<C> = idle.chain(shared.to_close.drain(..)).collect();
        all.into_iter().for_each(C::close);
    }
}

/// A connection borrowed from a [`BlockingPool`]: use it as the client; dropping it gives it back.
pub struct Checkout<'a, C: Pooled> {
    pool: &'a BlockingPool<C>,
    conn: ConnId,
    client: Option<C>,
}

impl<C: Pooled> Deref for Checkout<'_, C> {
    type Target = C;
    fn deref(&self) -> &C {
        self.client.as_ref().expect("held until dropped")
    }
}

impl<C: Pooled> DerefMut for Checkout<'_, C> {
    fn deref_mut(&mut self) -> &mut C {
        self.client.as_mut().expect("held until dropped")
    }
}

impl<C: Pooled> Drop for Checkout<'_, C> {
    fn drop(&mut self) {
        let Some(client) = self.client.take() else { return };
        let usable = usable(client.driver());
        let now = self.pool.origin.elapsed();
        let mut shared = self.pool.lock();
        shared.checkin(self.conn, client, now, usable);
        let to_close = std::mem::take(&mut shared.to_close);
        drop(shared);
        self.pool.freed.notify_one();
        to_close.into_iter().for_each(C::close);
    }
}

/// A pool of async connections to one server: as [`BlockingPool`], with `get().await`. Call
/// [`AsyncPool::close`] before dropping it, so that idle connections get their QUIT.
pub struct AsyncPool<C> {
    options: Options,
    origin: Instant,
    shared: Mutex<Shared<C>>,
    freed: event_listener::Event,
}

impl<C: AsyncPooled> AsyncPool<C> {
    /// A pool for the server `options` names, nothing open yet.
    pub fn new(options: Options, config: PoolConfig) -> Self {
        let options = pool_options(options, &config);
        let origin = Instant::now();
        AsyncPool {
            options,
            origin,
            shared: Shared::new(config, origin),
            freed: event_listener::Event::new(),
        }
    }

    /// As [`BlockingPool::get`].
    pub async fn get(&self) -> Result<AsyncCheckout<'_, C>, Error> {
        loop {
            let now = self.origin.elapsed();
            let listener = self.freed.listen();
            let (granted, to_close) = {
                let mut shared = self.lock();
                (shared.grant(now), std::mem::take(&mut shared.to_close))
            };
            for client in to_close {
                client.close().await;
            }
            match granted? {
                (Grant::Wait, _) => {
                    futures_lite::future::or(listener, C::sleep(Duration::from_secs(1))).await;
                }
                (Grant::Reuse { conn, check }, Some(mut client)) => {
                    if client.check(check).await {
                        return Ok(AsyncCheckout { pool: self, conn, client: Some(client) });
                    }
                    self.lock().checkin(conn, client, self.origin.elapsed(), false);
                }
                (Grant::Open { conn }, _) => match C::open(self.options.clone()).await {
                    Ok(client) => {
                        self.lock().policy.opened(conn);
                        return Ok(AsyncCheckout { pool: self, conn, client: Some(client) });
                    }
                    Err(e) => {
                        self.lock().policy.open_failed(conn, self.origin.elapsed());
                        self.freed.notify(1);
                        return Err(e);
                    }
                },
                _ => {}
            }
        }
    }

    /// As [`BlockingPool::expire`].
    pub async fn expire(&self) -> Option<Duration> {
        let now = self.origin.elapsed();
        let (next, to_close) = {
            let mut shared = self.lock();
            (shared.expire(now), std::mem::take(&mut shared.to_close))
        };
        for client in to_close {
            client.close().await;
        }
        next.map(|at| at.saturating_sub(now))
    }

    /// As [`BlockingPool::maintain`]: a future to spawn next to the pool (on the runtime the adapter uses);
    /// it ends when the pool closes.
    pub async fn maintain(&self) {
        loop {
            let listener = self.freed.listen();
            let wait = self.expire().await.unwrap_or(Duration::from_secs(1)).min(Duration::from_secs(1));
            if self.lock().closing {
                return;
            }
            futures_lite::future::or(listener, C::sleep(wait.max(Duration::from_millis(10)))).await;
        }
    }

    /// As [`BlockingPool::close`].
    pub async fn close(&self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        self.lock().closing = true;
        // Wakes `maintain`, and callers waiting in `get` (they fail now).
        self.freed.notify(usize::MAX);
        loop {
            let listener = self.freed.listen();
            let (closing, busy) = {
                let mut shared = self.lock();
                let idle = shared.policy.drain_idle();
                let mut closing: Vec<C> = std::mem::take(&mut shared.to_close);
                closing.extend(idle.into_iter().filter_map(|conn| shared.take_idle(conn)));
                (closing, !shared.policy.is_empty())
            };
            for client in closing {
                client.close().await;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if !busy || left.is_zero() {
                return;
            }
            futures_lite::future::or(listener, C::sleep(left)).await;
        }
    }

    fn lock(&self) -> MutexGuard<'_, Shared<C>> {
        self.shared.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A connection borrowed from an [`AsyncPool`]: use it as the client; dropping it gives it back.
pub struct AsyncCheckout<'a, C: AsyncPooled> {
    pool: &'a AsyncPool<C>,
    conn: ConnId,
    client: Option<C>,
}

impl<C: AsyncPooled> Deref for AsyncCheckout<'_, C> {
    type Target = C;
    fn deref(&self) -> &C {
        self.client.as_ref().expect("held until dropped")
    }
}

impl<C: AsyncPooled> DerefMut for AsyncCheckout<'_, C> {
    fn deref_mut(&mut self) -> &mut C {
        self.client.as_mut().expect("held until dropped")
    }
}

impl<C: AsyncPooled> Drop for AsyncCheckout<'_, C> {
    fn drop(&mut self) {
        let Some(client) = self.client.take() else { return };
        let usable = usable(client.driver());
        let now = self.pool.origin.elapsed();
        // A connection to close waits in `to_close` for the next `get` or `close`: `drop` cannot QUIT.
        self.pool.lock().checkin(self.conn, client, now, usable);
        self.pool.freed.notify(1);
    }
}
