//! Redis through `fred`: settings, a client that never blocks start-up, key prefixes, and a
//! read-through JSON cache with stampede protection that degrades to "no cache" when Redis is down.
//!
//! # Stampede protection
//! When a hot key is missing, only one task per process loads it: the others wait for that load and
//! share its value. Across replicas at most one load per replica
//! happens, bounded by the replica count, which is what protects the database.
//!
//! # Near cache
//! With `redis.near_cache_mb` above zero, entries read from Redis are also kept in this process and
//! dropped when Redis reports a change (see [`near`]): a hot read costs no round trip.
//!
//! # Redis down
//! The client connects in the background and keeps reconnecting. While it is not connected, cache
//! reads and writes are skipped at once (no command is queued behind a dead connection), and a
//! command that hangs is cut off by the configured command timeout. Callers fall back to their
//! database.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use fred::prelude::*;
use serde::{Deserialize, Serialize};
use tokio::sync::OnceCell;

mod near;
use near::NearCache;

/// `[redis]` settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedisSettings {
    /// e.g. `redis://127.0.0.1:6379/0`
    pub url: String,
    /// Prepended to every key this service writes (tests use a unique one each).
    pub key_prefix: String,
    /// Any single command is abandoned after this long.
    pub command_timeout_ms: u64,
    /// Memory for the near cache (entries kept in-process, invalidated by Redis); 0 turns it off.
    pub near_cache_mb: u64,
}

/// A connected-in-the-background client and this service's key prefix.
#[derive(Clone)]
pub struct Redis {
    client: Client,
    prefix: Arc<str>,
    near_cache_bytes: u64,
}

impl Redis {
    /// Starts connecting; returns at once even when Redis is down.
    pub fn connect(settings: &RedisSettings) -> Result<Self, String> {
        let config = Config::from_url(&settings.url)
            .map_err(|e| format!("redis.url `{}`: {e}", settings.url))?;
        let timeout = Duration::from_millis(settings.command_timeout_ms);
        let near_cache_bytes = settings.near_cache_mb.saturating_mul(1 << 20);
        let client = Builder::from_config(Config {
            fail_fast: true,
            // Client tracking (the near cache's invalidations) needs RESP3.
            version: if near_cache_bytes > 0 {
                fred::types::RespVersion::RESP3
            } else {
                config.version
            },
            ..config
        })
        .with_performance_config(|p| p.default_command_timeout = timeout)
        .with_connection_config(|c| {
            c.connection_timeout = Duration::from_secs(2);
            c.internal_command_timeout = timeout;
            c.max_command_attempts = 1;
        })
        .set_policy(ReconnectPolicy::new_exponential(0, 100, 2_000, 2))
        .build()
        .map_err(|e| format!("redis: {e}"))?;
        client.connect();
        Ok(Self {
            client,
            prefix: settings.key_prefix.clone().into(),
            near_cache_bytes,
        })
    }

    /// [`Redis::connect`], then waits up to a second for the connection, only to say at start-up
    /// that Redis is away (the service runs without its cache until it is back).
    pub async fn connect_at_startup(settings: &RedisSettings) -> Result<Self, String> {
        let redis = Self::connect(settings)?;
        if !redis.wait_connected(Duration::from_secs(1)).await {
            tracing::warn!("Redis is not reachable; running without cache until it is");
        }
        Ok(redis)
    }

    /// The underlying client, for commands beyond the cache.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// `prefix + key`.
    pub fn key(&self, key: &str) -> String {
        let mut k = String::with_capacity(self.prefix.len() + key.len());
        k.push_str(&self.prefix);
        k.push_str(key);
        k
    }

    /// Whether a connection is up right now.
    pub fn is_up(&self) -> bool {
        self.client.is_connected()
    }

    /// Waits up to `within` for the connection (start-up nicety; never required).
    pub async fn wait_connected(&self, within: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + within;
        while !self.is_up() {
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        true
    }
}

/// A cached value: `Found(json)` or `Missing` (a remembered "not found").
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cached {
    Found(String),
    Missing,
}

const MISSING_MARK: &str = "\u{0}missing";
/// Written in place of an entry on invalidation; while it lives, loads do not fill the entry.
const TOMBSTONE: &str = "\u{0}invalidated";
/// Longer than any load takes, so a load that read the database before a write cannot put the
/// old value back after the write's invalidation.
const TOMBSTONE_TTL_MS: i64 = 2_000;

/// A read-through cache of JSON documents in Redis.
#[derive(Clone)]
pub struct JsonCache {
    redis: Redis,
    ttl: Duration,
    missing_ttl: Duration,
    loading: Arc<Mutex<HashMap<String, Arc<OnceCell<Cached>>>>>,
    near: Option<Arc<NearCache>>,
}

impl JsonCache {
    /// Values live `ttl`; remembered misses live `missing_ttl`. With a near cache configured, call
    /// from within the Tokio runtime (it starts the task that keeps tracking on).
    pub fn new(redis: Redis, ttl: Duration, missing_ttl: Duration) -> Self {
        let near = (redis.near_cache_bytes > 0).then(|| {
            let near = NearCache::new(redis.near_cache_bytes, ttl, missing_ttl);
            NearCache::supervise(&near, redis.client.clone());
            near
        });
        Self {
            redis,
            ttl,
            missing_ttl,
            loading: Arc::default(),
            near,
        }
    }

    /// The cached JSON for `key`, or what `load` returns (stored for next time). Concurrent misses
    /// of one key in this process share a single `load`.
    pub async fn get_or_load<T, E, F, Fut>(&self, key: &str, load: F) -> Result<Cached, E>
    where
        T: Serialize,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Option<T>, E>>,
    {
        let key = self.redis.key(key);
        if let Some(hit) = self.get(&key).await {
            return Ok(hit);
        }
        let cell = {
            let mut loading = self.loading.lock().unwrap_or_else(|p| p.into_inner());
            loading.entry(key.clone()).or_default().clone()
        };
        // The first caller runs `load`; the others wait for its value. If it fails, the next
        // waiter tries in its place.
        let result = cell
            .get_or_try_init(|| async {
                let value = load().await?;
                Ok(self.store(&key, value).await)
            })
            .await
            .cloned();
        if result.is_ok() {
            self.forget_load(&key, &cell);
        }
        result
    }

    /// Several keys in one round trip: `Some` for each key cached, `None` for a miss, a
    /// tombstone, or Redis being away. Callers load the misses through [`Self::get_or_load`].
    pub async fn get_many(&self, keys: &[String]) -> Vec<Option<Cached>> {
        if !self.redis.is_up() || keys.is_empty() {
            return vec![None; keys.len()];
        }
        let full: Vec<String> = keys.iter().map(|k| self.redis.key(k)).collect();
        let mut epochs = Vec::new();
        if let Some(near) = &self.near {
            let hits: Vec<Option<Cached>> = full.iter().map(|k| near.get(k)).collect();
            if hits.iter().all(Option::is_some) {
                return hits;
            }
            epochs = full.iter().map(|k| near.epoch(k)).collect();
        }
        match self
            .redis
            .client
            .mget::<Vec<Option<String>>, _>(full.clone())
            .await
        {
            Ok(values) if values.len() == keys.len() => values
                .into_iter()
                .enumerate()
                .map(|(i, v)| {
                    let cached = decode(v)?;
                    if let (Some(near), Some(epoch)) = (&self.near, epochs.get(i)) {
                        near.keep(&full[i], &cached, *epoch);
                    }
                    Some(cached)
                })
                .collect(),
            Ok(_) => vec![None; keys.len()],
            Err(e) => {
                tracing::warn!(error = %e, "cache read failed");
                vec![None; keys.len()]
            }
        }
    }

    /// Drops the in-flight entry for `key` if it is still `cell`, so the next miss loads afresh.
    fn forget_load(&self, key: &str, cell: &Arc<OnceCell<Cached>>) {
        let mut loading = self.loading.lock().unwrap_or_else(|p| p.into_inner());
        if loading.get(key).is_some_and(|c| Arc::ptr_eq(c, cell)) {
            loading.remove(key);
        }
    }

    /// Forgets `keys` after a write. Each is replaced by a short-lived tombstone rather than
    /// deleted: fills are `SET NX`, so a load that started before the write and finishes after it
    /// cannot store what it read. Failures are logged; entries expire by TTL regardless.
    pub async fn invalidate(&self, keys: &[String]) {
        {
            let mut loading = self.loading.lock().unwrap_or_else(|p| p.into_inner());
            for k in keys {
                let key = self.redis.key(k);
                if let Some(near) = &self.near {
                    near.invalidate(&key);
                }
                loading.remove(&key);
            }
        }
        if !self.redis.is_up() {
            return;
        }
        let expiry = Some(Expiration::PX(TOMBSTONE_TTL_MS));
        let sets = keys.iter().map(|k| {
            self.redis.client.set::<(), _, _>(
                self.redis.key(k),
                TOMBSTONE,
                expiry.clone(),
                None,
                false,
            )
        });
        for result in futures::future::join_all(sets).await {
            if let Err(e) = result {
                tracing::warn!(error = %e, "cache invalidation failed");
            }
        }
    }

    async fn get(&self, key: &str) -> Option<Cached> {
        if !self.redis.is_up() {
            return None;
        }
        let epoch = match &self.near {
            Some(near) => match near.get(key) {
                Some(hit) => return Some(hit),
                None => Some(near.epoch(key)),
            },
            None => None,
        };
        match self.redis.client.get::<Option<String>, _>(key).await {
            Ok(value) => {
                let cached = decode(value)?;
                if let (Some(near), Some(epoch)) = (&self.near, epoch) {
                    near.keep(key, &cached, epoch);
                }
                Some(cached)
            }
            Err(e) => {
                tracing::warn!(error = %e, "cache read failed");
                None
            }
        }
    }

    async fn store<T: Serialize>(&self, key: &str, value: Option<T>) -> Cached {
        let (cached, text, ttl) = match value {
            Some(v) => match serde_json::to_string(&v) {
                Ok(json) => (Cached::Found(json.clone()), json, self.ttl),
                Err(e) => {
                    tracing::error!(error = %e, "cannot serialise a cache value");
                    return Cached::Missing;
                }
            },
            None => (Cached::Missing, MISSING_MARK.to_owned(), self.missing_ttl),
        };
        if self.redis.is_up() {
            let expiry = Expiration::PX(ttl.as_millis().try_into().unwrap_or(i64::MAX));
            if let Err(e) = self
                .redis
                .client
                .set::<(), _, _>(key, text, Some(expiry), Some(SetOptions::NX), false)
                .await
            {
                tracing::warn!(error = %e, "cache write failed");
            }
        }
        cached
    }
}

/// What a stored string means: a value, a remembered miss, or nothing usable (absent, tombstone).
fn decode(value: Option<String>) -> Option<Cached> {
    match value {
        Some(v) if v == TOMBSTONE => None,
        Some(v) if v == MISSING_MARK => Some(Cached::Missing),
        Some(v) => Some(Cached::Found(v)),
        None => None,
    }
}
