//! Sign-in attempt limits, per account and per client address, counted in Redis.
//!
//! Every attempt is counted *before* the password is checked (INCR is atomic, so a burst of
//! parallel guesses cannot slip past the limit); a successful sign-in clears the account's count
//! and gives the address its attempt back. Windows are fixed: they start at the first attempt and
//! last `window_secs`.
//!
//! # Redis down: degrade to per-replica limits (neither open nor closed)
//! Failing open would let an attacker who can knock Redis over guess passwords unthrottled;
//! failing closed would let the same attacker lock every user out of sign-in. So while Redis is
//! unreachable each replica enforces the same limits itself, in memory (`governor`): a guesser gets
//! at most `replicas ×` the normal rate, legitimate users keep signing in, and the Redis counts
//! take over again as soon as it is back.

use std::num::NonZeroU32;
use std::time::Duration;

use fred::prelude::*;
use fred::types::ExpireOptions;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use shared::redis::Redis;

use crate::config::SigninLimits;
use crate::error::UserError;

pub struct SigninLimiter {
    redis: Redis,
    limits: SigninLimits,
    local_accounts: DefaultKeyedRateLimiter<String>,
    local_addresses: DefaultKeyedRateLimiter<String>,
}

fn quota(per_window: u32, window: Duration) -> Quota {
    let burst = NonZeroU32::new(per_window.max(1)).unwrap_or(NonZeroU32::MIN);
    let period = window / burst.get();
    Quota::with_period(period.max(Duration::from_millis(1)))
        .unwrap_or_else(|| Quota::per_second(burst))
        .allow_burst(burst)
}

impl SigninLimiter {
    pub fn new(redis: Redis, limits: SigninLimits) -> Self {
        let window = Duration::from_secs(limits.window_secs.max(1));
        Self {
            local_accounts: RateLimiter::keyed(quota(limits.per_account, window)),
            local_addresses: RateLimiter::keyed(quota(limits.per_address, window)),
            redis,
            limits,
        }
    }

    /// Whether the client address should come from `X-Forwarded-For`.
    pub fn trust_forwarded_for(&self) -> bool {
        self.limits.trust_forwarded_for
    }

    fn keys(&self, account: &str, address: &str) -> (String, String) {
        (
            self.redis.key(&format!("signin:acct:{account}")),
            self.redis.key(&format!("signin:addr:{address}")),
        )
    }

    /// Counts an attempt; refuses it when either limit is exceeded.
    pub async fn attempt(&self, account: &str, address: &str) -> Result<(), UserError> {
        if self.redis.is_up() {
            match self.count_in_redis(account, address).await {
                Ok(result) => return result,
                Err(e) => {
                    tracing::warn!(error = %e, "sign-in limiter: Redis failed, using local limits")
                }
            }
        }
        self.count_locally(account, address)
    }

    async fn count_in_redis(
        &self,
        account: &str,
        address: &str,
    ) -> Result<Result<(), UserError>, Error> {
        let (acct, addr) = self.keys(account, address);
        let window = i64::try_from(self.limits.window_secs.max(1)).unwrap_or(i64::MAX);
        let p = self.redis.client().pipeline();
        let () = p.incr(&acct).await?;
        let () = p.expire(&acct, window, Some(ExpireOptions::NX)).await?;
        let () = p.incr(&addr).await?;
        let () = p.expire(&addr, window, Some(ExpireOptions::NX)).await?;
        let () = p.ttl(&acct).await?;
        let () = p.ttl(&addr).await?;
        let r: Vec<i64> = p.all().await?;
        let [acct_n, _, addr_n, _, acct_ttl, addr_ttl] = r[..] else {
            return Err(Error::new(ErrorKind::Protocol, "unexpected pipeline reply"));
        };
        let over_acct = acct_n > i64::from(self.limits.per_account);
        let over_addr = addr_n > i64::from(self.limits.per_address);
        if over_acct || over_addr {
            let ttl = if over_acct { acct_ttl } else { addr_ttl };
            return Ok(Err(UserError::TooManyAttempts {
                retry_after_secs: u64::try_from(ttl.max(1)).unwrap_or(1),
            }));
        }
        Ok(Ok(()))
    }

    fn count_locally(&self, account: &str, address: &str) -> Result<(), UserError> {
        let acct = self.local_accounts.check_key(&account.to_owned());
        let addr = self.local_addresses.check_key(&address.to_owned());
        match (acct, addr) {
            (Ok(()), Ok(())) => Ok(()),
            (Err(n), _) | (_, Err(n)) => {
                let wait = n.wait_time_from(governor::clock::Clock::now(
                    &governor::clock::DefaultClock::default(),
                ));
                Err(UserError::TooManyAttempts {
                    retry_after_secs: wait.as_secs().max(1),
                })
            }
        }
    }

    /// After a successful sign-in: the account starts afresh and the address gets its attempt back.
    pub async fn succeeded(&self, account: &str, address: &str) {
        if !self.redis.is_up() {
            return;
        }
        let (acct, addr) = self.keys(account, address);
        let p = self.redis.client().pipeline();
        let queued: Result<(), Error> = async {
            let () = p.del(&acct).await?;
            let () = p.decr(&addr).await?;
            Ok(())
        }
        .await;
        if let Err(e) = queued {
            tracing::warn!(error = %e, "sign-in limiter reset failed");
            return;
        }
        if let Err(e) = p.all::<Vec<i64>>().await {
            tracing::warn!(error = %e, "sign-in limiter reset failed");
        }
    }

    /// Drops idle local entries (called periodically).
    pub fn shrink(&self) {
        self.local_accounts.retain_recent();
        self.local_addresses.retain_recent();
    }
}
