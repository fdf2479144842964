//! A rate limit on transactions, shared by every connection made with the same [`Options`](crate::Options):
//! taken **before** a MAIL command is queued, so that the server never sees more than the rate in any
//! one-second window (a limit checked after sending overshoots). Starts are spaced evenly, with no burst
//! (the generic cell rate algorithm with a tolerance of zero).

use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// The spacing is this much wider than `1 / rate`: a start that the network delays (a MAIL behind a body)
/// then cannot put `rate + 1` starts in one second at the server, up to 10 ms of delay.
const MARGIN: f64 = 1.01;

/// The rate limit's arithmetic, sans-IO: time is an input, a `Duration` since any fixed origin.
#[derive(Clone, Debug, PartialEq)]
pub struct Pacer {
    interval: Duration,
    /// The earliest time the next start may take place.
    next: Duration,
}

impl Pacer {
    /// At most `per_second` starts a second (a rate that is not positive and finite: no limit).
    pub fn new(per_second: f64) -> Pacer {
        let interval = if per_second.is_finite() && per_second > 0.0 {
            Duration::from_secs_f64(MARGIN / per_second)
        } else {
            Duration::ZERO
        };
        Pacer { interval, next: Duration::ZERO }
    }

    /// Takes a start at `now`, or says when the next one is allowed.
    pub fn take(&mut self, now: Duration) -> Result<(), Duration> {
        if now < self.next {
            return Err(self.next);
        }
        self.next = now + self.interval;
        Ok(())
    }
}

/// A [`Pacer`] shared by connections (behind an [`Arc`]), over real time.
pub struct Rate {
    origin: Instant,
    pacer: Mutex<Pacer>,
    per_second: f64,
}

impl Rate {
    /// At most `per_second` transactions a second, for everyone holding the returned handle.
    pub fn new(per_second: f64) -> Arc<Rate> {
        Arc::new(Rate { origin: Instant::now(), pacer: Mutex::new(Pacer::new(per_second)), per_second })
    }

    /// Takes a start at `now`, or says when the next one is allowed.
    pub fn take(&self, now: Instant) -> Result<(), Instant> {
        let since = now.saturating_duration_since(self.origin);
        let mut pacer = self.pacer.lock().unwrap_or_else(PoisonError::into_inner);
        pacer.take(since).map_err(|at| self.origin + at)
    }

    /// The rate it was made with.
    pub fn per_second(&self) -> f64 {
        self.per_second
    }
}

impl fmt::Debug for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Rate({}/s)", self.per_second)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_second_holds_more_than_the_rate() {
        let mut pacer = Pacer::new(100.0);
        let (mut starts, mut t) = (Vec::new(), Duration::ZERO);
        // 200 starts, each asking as soon as allowed (and some asking late).
        while starts.len() < 200 {
            match pacer.take(t) {
                Ok(()) => starts.push(t),
                Err(at) => {
                    assert!(at > t);
                    t = at;
                }
            }
            if starts.len() % 7 == 3 {
                t += Duration::from_millis(3);
            }
        }
        assert!(starts[199] >= Duration::from_secs_f64(1.99), "{:?}", starts[199]);
        // Even when each start reaches the server up to 10 ms late and the next one on time.
        for (i, &start) in starts.iter().enumerate() {
            let window = start + Duration::from_secs(1) + Duration::from_millis(10);
            let held = starts[i..].iter().take_while(|&&s| s < window).count();
            assert!(held <= 100, "{held} starts in the second from {start:?}");
        }
    }

    #[test]
    fn no_rate_is_no_limit() {
        for rate in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            let mut pacer = Pacer::new(rate);
            assert!((0..1000).all(|_| pacer.take(Duration::ZERO).is_ok()), "{rate}");
        }
    }

    #[test]
    fn the_shared_rate_spaces_starts_from_every_holder() {
        let rate = Rate::new(10.0);
        let other = Arc::clone(&rate);
        let now = Instant::now();
        assert!(rate.take(now).is_ok());
        let next = other.take(now).unwrap_err();
        assert!(next >= now + Duration::from_millis(100), "{:?}", next - now);
        assert!(rate.take(next).is_ok());
    }
}
