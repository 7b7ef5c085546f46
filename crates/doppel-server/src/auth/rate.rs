//! Per-client request rate limits: a token bucket per principal (API
//! token, or JWT user) and, for requests without a credential, per remote
//! address.
//!
//! A bucket holds up to `burst` requests and refills at `per_second`; a
//! request takes one, and a client whose bucket is empty is answered 429
//! with the seconds until the next one (`Retry-After`). The buckets live in
//! one map with a bounded size, so a flood of distinct addresses cannot
//! grow memory without end.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use doppel_auth::{TokenId, UserName};

/// Default sustained requests per second per client: far above what an
/// app, a Telegraf agent or a dashboard sends, and above what `doppel bench`
/// sends with one token, so only a runaway or hostile client meets it.
pub const DEFAULT_RATE_LIMIT_PER_S: f64 = 1_000.0;
/// Default burst per client: two seconds' worth, so a client catching up
/// after a network outage is not cut off at once.
pub const DEFAULT_RATE_LIMIT_BURST: u32 = 2_000;
/// Most clients tracked at once. Past it, buckets that have refilled (idle
/// clients) are dropped, and if every one is busy the map starts over:
/// forgetting is safer than growing.
const MAX_TRACKED_CLIENTS: usize = 65_536;

/// How fast one client may send requests.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RateLimit {
    /// Sustained requests per second (positive and finite).
    per_second: f64,
    /// Requests that may arrive at once after a quiet spell (at least 1).
    burst: u32,
}

impl RateLimit {
    /// A limit of `per_second` sustained and `burst` at once; `None` unless
    /// `per_second` is positive and finite and `burst` at least 1.
    pub fn new(per_second: f64, burst: u32) -> Option<Self> {
        (per_second.is_finite() && per_second > 0.0 && burst >= 1).then_some(RateLimit { per_second, burst })
    }

    /// Sustained requests per second.
    pub fn per_second(&self) -> f64 {
        self.per_second
    }

    /// Requests at once.
    pub fn burst(&self) -> u32 {
        self.burst
    }
}

impl Default for RateLimit {
    fn default() -> Self {
        RateLimit { per_second: DEFAULT_RATE_LIMIT_PER_S, burst: DEFAULT_RATE_LIMIT_BURST }
    }
}

/// Whom a bucket belongs to.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub(crate) enum Client {
    /// Requests made with one API token.
    Token(TokenId),
    /// Requests made with JWTs of one user.
    User(UserName),
    /// Requests without a usable credential, from one address.
    Peer(IpAddr),
}

#[derive(Clone, Copy, Debug)]
struct Bucket {
    requests: f64,
    updated: Instant,
}

/// Every client's bucket.
#[derive(Debug)]
pub(crate) struct RateLimiter {
    limit: RateLimit,
    buckets: Mutex<HashMap<Client, Bucket>>,
}

impl RateLimiter {
    pub(crate) fn new(limit: RateLimit) -> Self {
        RateLimiter { limit, buckets: Mutex::new(HashMap::new()) }
    }

    pub(crate) fn limit(&self) -> RateLimit {
        self.limit
    }

    /// Takes one request from `client`'s bucket at `now`, or answers how
    /// long until one is available.
    pub(crate) fn take(&self, client: Client, now: Instant) -> Result<(), Duration> {
        let burst = f64::from(self.limit.burst);
        let mut buckets = self.buckets.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if buckets.len() >= MAX_TRACKED_CLIENTS && !buckets.contains_key(&client) {
            let limit = self.limit;
            buckets.retain(|_, bucket| refilled(limit, *bucket, now) < burst);
            if buckets.len() >= MAX_TRACKED_CLIENTS {
                buckets.clear();
            }
        }
        let bucket = buckets.entry(client).or_insert(Bucket { requests: burst, updated: now });
        bucket.requests = refilled(self.limit, *bucket, now);
        bucket.updated = now;
        if bucket.requests >= 1.0 {
            bucket.requests -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - bucket.requests) / self.limit.per_second))
        }
    }
}

fn refilled(limit: RateLimit, bucket: Bucket, now: Instant) -> f64 {
    let elapsed = now.saturating_duration_since(bucket.updated).as_secs_f64();
    (bucket.requests + elapsed * limit.per_second).min(f64::from(limit.burst))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(last: u8) -> Client {
        Client::Peer(IpAddr::from([192, 0, 2, last]))
    }

    #[test]
    fn a_burst_passes_then_requests_wait_for_the_refill() {
        let limiter = RateLimiter::new(RateLimit::new(2.0, 3).unwrap());
        let start = Instant::now();
        for _ in 0..3 {
            assert!(limiter.take(peer(1), start).is_ok());
        }
        let wait = limiter.take(peer(1), start).unwrap_err();
        assert_eq!(wait, Duration::from_millis(500));
        assert!(limiter.take(peer(1), start + Duration::from_millis(500)).is_ok());
        assert!(limiter.take(peer(1), start + Duration::from_millis(500)).is_err());
    }

    #[test]
    fn clients_have_separate_buckets() {
        let limiter = RateLimiter::new(RateLimit::new(1.0, 1).unwrap());
        let now = Instant::now();
        assert!(limiter.take(peer(1), now).is_ok());
        assert!(limiter.take(peer(1), now).is_err());
        assert!(limiter.take(peer(2), now).is_ok());
        assert!(limiter.take(Client::User(UserName::new("carol").unwrap()), now).is_ok());
    }

    #[test]
    fn a_bucket_never_holds_more_than_the_burst() {
        let limiter = RateLimiter::new(RateLimit::new(100.0, 2).unwrap());
        let start = Instant::now();
        assert!(limiter.take(peer(1), start).is_ok());
        let later = start + Duration::from_secs(3600);
        assert!(limiter.take(peer(1), later).is_ok());
        assert!(limiter.take(peer(1), later).is_ok());
        assert!(limiter.take(peer(1), later).is_err());
    }

    #[test]
    fn the_tracked_clients_stay_bounded() {
        let limiter = RateLimiter::new(RateLimit::new(1.0, 1).unwrap());
        let now = Instant::now();
        for i in 0..(MAX_TRACKED_CLIENTS + 10) {
            let address = u32::try_from(i).unwrap().to_be_bytes();
            let _ = limiter.take(Client::Peer(IpAddr::from(address)), now);
        }
        assert!(limiter.buckets.lock().unwrap().len() <= MAX_TRACKED_CLIENTS);
    }

    #[test]
    fn limits_must_be_positive() {
        assert!(RateLimit::new(0.0, 10).is_none());
        assert!(RateLimit::new(f64::NAN, 10).is_none());
        assert!(RateLimit::new(1.0, 0).is_none());
    }
}
