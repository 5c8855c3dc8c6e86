//! Exclusive, expiring claims in Redis: two replicas never run the same job at once, and a
//! crashed replica's claim runs out so another takes the job over.

use std::time::Duration;

use fred::prelude::*;
use shared::redis::Redis;

/// Renews the lease only while it is still ours.
const RENEW: &str = "if redis.call('get', KEYS[1]) == ARGV[1] then \
                     return redis.call('pexpire', KEYS[1], ARGV[2]) else return 0 end";
/// Releases the lease only while it is still ours.
const RELEASE: &str = "if redis.call('get', KEYS[1]) == ARGV[1] then \
                       return redis.call('del', KEYS[1]) else return 0 end";

/// A claim held by this replica.
pub struct Lease {
    redis: Redis,
    key: String,
    token: String,
    ttl: Duration,
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

impl Lease {
    /// Claims `name` for `ttl`; `None` when another holder has it or Redis is unreachable.
    pub async fn acquire(redis: &Redis, name: &str, ttl: Duration) -> Option<Self> {
        if !redis.is_up() {
            return None;
        }
        let key = redis.key(&format!("lease:{name}"));
        let token = format!("{:032x}", rand::random::<u128>());
        let set: Result<Option<String>, _> = redis
            .client()
            .set(
                &key,
                &token,
                Some(Expiration::PX(ms(ttl))),
                Some(SetOptions::NX),
                false,
            )
            .await;
        match set {
            Ok(Some(_)) => Some(Self {
                redis: redis.clone(),
                key,
                token,
                ttl,
            }),
            Ok(None) => None,
            Err(e) => {
                tracing::warn!(error = %e, "cannot take a job lease");
                None
            }
        }
    }

    /// Extends the claim; `false` when it was lost (expired and taken, or Redis unreachable).
    pub async fn renew(&self) -> bool {
        let renewed: Result<i64, _> = self
            .redis
            .client()
            .eval(
                RENEW,
                vec![self.key.clone()],
                vec![self.token.clone(), ms(self.ttl).to_string()],
            )
            .await;
        matches!(renewed, Ok(1))
    }

    /// How often to renew.
    pub fn renew_every(&self) -> Duration {
        self.ttl / 3
    }

    /// Gives the claim up.
    pub async fn release(self) {
        let _: Result<i64, _> = self
            .redis
            .client()
            .eval(RELEASE, vec![self.key.clone()], vec![self.token.clone()])
            .await;
    }
}
