//! Per-IP throttles (Auth0's "suspicious IP throttling"), on `governor`.
//!
//! Each limiter is a token bucket per client address: a full minute's worth
//! of burst, refilled evenly. Callers check *after* validating a request, so
//! malformed requests do not use up a client's budget, as in Auth0.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use governor::clock::{Clock, DefaultClock};
use governor::middleware::StateInformationMiddleware;
use governor::{DefaultKeyedRateLimiter, Quota};

/// What a client learns about its budget (the `X-RateLimit-*` headers).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimitInfo {
    /// Bucket size.
    pub limit: u32,
    /// Requests left right now.
    pub remaining: u32,
    /// Unix time (seconds) when the next request will be accepted / the bucket refills.
    pub reset_epoch: u64,
    /// Seconds to wait before retrying (0 when allowed).
    pub retry_after_secs: u64,
}

/// A keyed token bucket per client IP.
pub struct IpRateLimiter {
    limit: NonZeroU32,
    limiter: DefaultKeyedRateLimiter<IpAddr, StateInformationMiddleware>,
    clock: DefaultClock,
}

impl IpRateLimiter {
    /// `per_minute = 0` disables the limit (returns `None`).
    pub fn per_minute(per_minute: u32) -> Option<Self> {
        let limit = NonZeroU32::new(per_minute)?;
        let clock = DefaultClock::default();
        let limiter = DefaultKeyedRateLimiter::keyed(Quota::per_minute(limit))
            .with_middleware::<StateInformationMiddleware>();
        Some(Self {
            limit,
            limiter,
            clock,
        })
    }

    /// Takes one request from `ip`'s bucket: `Ok` with what is left, or `Err`
    /// with how long to wait.
    pub fn check(&self, ip: IpAddr) -> Result<RateLimitInfo, RateLimitInfo> {
        let now_epoch = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or(Duration::ZERO)
            .as_secs();
        let refill = Duration::from_secs(60) / self.limit.get();
        match self.limiter.check_key(&ip) {
            Ok(snapshot) => {
                let remaining = snapshot.remaining_burst_capacity();
                let missing = self.limit.get().saturating_sub(remaining);
                Ok(RateLimitInfo {
                    limit: self.limit.get(),
                    remaining,
                    reset_epoch: now_epoch + (refill * missing).as_secs().max(1),
                    retry_after_secs: 0,
                })
            }
            Err(not_until) => {
                let wait = not_until.wait_time_from(self.clock.now());
                // Round up: a client told "0 seconds" would retry too early.
                let wait_secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
                Err(RateLimitInfo {
                    limit: self.limit.get(),
                    remaining: 0,
                    reset_epoch: now_epoch + wait_secs,
                    retry_after_secs: wait_secs.max(1),
                })
            }
        }
    }

    /// Forgets clients whose buckets are full again, bounding memory.
    pub fn forget_idle(&self) {
        self.limiter.retain_recent();
        self.limiter.shrink_to_fit();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_disables() {
        assert!(IpRateLimiter::per_minute(0).is_none());
    }

    #[test]
    fn burst_then_refusal_per_ip() {
        let limiter = IpRateLimiter::per_minute(3).expect("enabled");
        let a: IpAddr = [10, 0, 0, 1].into();
        let b: IpAddr = [10, 0, 0, 2].into();
        let remaining: Vec<u32> = (0..3)
            .map(|_| limiter.check(a).expect("within burst").remaining)
            .collect();
        assert_eq!(remaining, [2, 1, 0]);
        let refused = limiter.check(a).expect_err("over the limit");
        assert_eq!(refused.limit, 3);
        assert!((1..=20).contains(&refused.retry_after_secs), "{refused:?}");
        assert!(
            limiter.check(b).is_ok(),
            "other addresses keep their own budget"
        );
    }
}
