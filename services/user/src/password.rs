//! Argon2id password hashing off the async executor, bounded in concurrency.

use std::sync::Arc;

use argon2::password_hash::{
    PasswordHash, PasswordHasher, PasswordVerifier, SaltString, rand_core::OsRng,
};
use argon2::{Algorithm, Argon2, Params, Version};
use tokio::sync::Semaphore;

use crate::config::AuthSettings;
use crate::error::UserError;

/// Hashes and verifies passwords. Cheap to clone.
#[derive(Clone)]
pub struct Hasher {
    params: Params,
    permits: Arc<Semaphore>,
    /// A hash of a random password, verified against when the account does not exist so that
    /// an unknown user costs the same time as a wrong password.
    dummy: Arc<str>,
}

impl Hasher {
    pub fn new(settings: &AuthSettings) -> Result<Self, String> {
        let params = Params::new(
            settings.argon2_memory_kib,
            settings.argon2_iterations,
            settings.argon2_parallelism,
            None,
        )
        .map_err(|e| format!("auth.argon2_*: {e}"))?;
        let dummy = hash_with(&params, &uuid::Uuid::new_v4().to_string())
            .map_err(|e| format!("argon2: {e}"))?;
        Ok(Self {
            params,
            permits: Arc::new(Semaphore::new(settings.max_concurrent_hashes.max(1))),
            dummy: dummy.into(),
        })
    }

    /// A PHC-format argon2id hash of `password`.
    pub async fn hash(&self, password: &str) -> Result<String, UserError> {
        let params = self.params.clone();
        let password = password.to_owned();
        self.blocking(move || hash_with(&params, &password).map_err(UserError::internal))
            .await
    }

    /// Whether `password` matches `hash`; with `None` (no such account) it burns the same time
    /// against the dummy hash and answers `false`.
    pub async fn verify(&self, password: &str, hash: Option<String>) -> Result<bool, UserError> {
        let known = hash.is_some();
        let hash = hash.unwrap_or_else(|| self.dummy.to_string());
        let password = password.to_owned();
        let ok = self
            .blocking(move || {
                let parsed = PasswordHash::new(&hash).map_err(UserError::internal)?;
                Ok(Argon2::default()
                    .verify_password(password.as_bytes(), &parsed)
                    .is_ok())
            })
            .await?;
        Ok(ok && known)
    }

    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> Result<T, UserError> + Send + 'static,
    ) -> Result<T, UserError> {
        let _permit = self.permits.acquire().await.map_err(UserError::internal)?;
        tokio::task::spawn_blocking(f)
            .await
            .map_err(UserError::internal)?
    }
}

fn hash_with(params: &Params, password: &str) -> Result<String, argon2::password_hash::Error> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone())
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
}
