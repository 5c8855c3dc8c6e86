//! Verification of AudioStorm access tokens (EdDSA JWTs signed by the user service).
//!
//! Any service verifies a request locally: the user service's public keys are fetched from its JWKS
//! endpoint, cached, and fetched again only when a token names a key id not yet known (key
//! rotation), at most once per [`MIN_REFRESH_INTERVAL`] so that garbage key ids cannot make us
//! hammer the user service.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest, web};
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::{Deserialize, Serialize};

use crate::error::HttpError;

/// The issuer every access token carries.
pub const ISSUER: &str = "audiostorm-user";
/// The audience every access token carries.
pub const AUDIENCE: &str = "audiostorm";
/// Unknown key ids trigger a JWKS fetch at most this often (by default).
pub const MIN_REFRESH_INTERVAL: Duration = Duration::from_secs(5);

/// What an access token says.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Claims {
    /// The user's id, as a decimal string (JWT convention).
    pub sub: String,
    pub username: String,
    pub iss: String,
    pub aud: String,
    pub iat: i64,
    pub exp: i64,
}

impl Claims {
    /// The user id; tokens we sign always carry a numeric `sub`.
    pub fn user_id(&self) -> Result<i64, HttpError> {
        self.sub
            .parse()
            .map_err(|_| HttpError::unauthorized("the access token names no valid user"))
    }
}

/// Why a token was refused.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("the access token is malformed")]
    Malformed,
    #[error("the access token is signed with an unknown key")]
    UnknownKey,
    #[error("the access token is invalid: {0}")]
    Invalid(String),
    #[error("the access token has expired")]
    Expired,
    #[error("the signing keys could not be fetched: {0}")]
    KeysUnavailable(String),
}

impl From<AuthError> for HttpError {
    fn from(e: AuthError) -> Self {
        match e {
            AuthError::KeysUnavailable(_) => {
                tracing::error!(error = %e, "cannot verify tokens");
                HttpError::unavailable("authentication is temporarily unavailable")
            }
            AuthError::Expired => HttpError::new(
                actix_web::http::StatusCode::UNAUTHORIZED,
                "token_expired",
                e.to_string(),
            ),
            other => HttpError::unauthorized(other.to_string()),
        }
    }
}

enum KeySource {
    /// Keys given up front (the user service verifies its own tokens).
    Static,
    /// Keys fetched from a JWKS endpoint.
    Jwks {
        url: String,
        client: reqwest::Client,
    },
}

struct Inner {
    keys: RwLock<HashMap<String, Arc<DecodingKey>>>,
    source: KeySource,
    validation: Validation,
    /// Serialises fetches and remembers when the last one happened.
    last_fetch: tokio::sync::Mutex<Option<Instant>>,
    min_refresh_interval: Duration,
}

/// Verifies access tokens. Cheap to clone; share one per process.
#[derive(Clone)]
pub struct Verifier {
    inner: Arc<Inner>,
}

fn validation() -> Validation {
    let mut v = Validation::new(Algorithm::EdDSA);
    v.set_issuer(&[ISSUER]);
    v.set_audience(&[AUDIENCE]);
    v.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
    v.leeway = 5;
    v
}

impl Verifier {
    /// A verifier that fetches keys from `url` (the user service's `/.well-known/jwks.json`).
    pub fn from_jwks_url(url: impl Into<String>) -> Self {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()
            .unwrap_or_default();
        Self::new(
            KeySource::Jwks {
                url: url.into(),
                client,
            },
            HashMap::new(),
        )
    }

    /// A verifier over a fixed key set.
    pub fn from_jwks(set: &JwkSet) -> Result<Self, AuthError> {
        Ok(Self::new(KeySource::Static, keys_of(set)?))
    }

    fn new(source: KeySource, keys: HashMap<String, Arc<DecodingKey>>) -> Self {
        Self {
            inner: Arc::new(Inner {
                keys: RwLock::new(keys),
                source,
                validation: validation(),
                last_fetch: tokio::sync::Mutex::new(None),
                min_refresh_interval: MIN_REFRESH_INTERVAL,
            }),
        }
    }

    /// Changes how often an unknown key id may trigger a fetch (before first use).
    pub fn with_min_refresh_interval(mut self, interval: Duration) -> Self {
        if let Some(inner) = Arc::get_mut(&mut self.inner) {
            inner.min_refresh_interval = interval;
        }
        self
    }

    /// Checks the signature, issuer, audience and expiry of `token`.
    pub async fn verify(&self, token: &str) -> Result<Claims, AuthError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| AuthError::Malformed)?;
        if header.alg != Algorithm::EdDSA {
            return Err(AuthError::Invalid("unexpected algorithm".into()));
        }
        let kid = header.kid.ok_or(AuthError::Malformed)?;
        let key = match self.key(&kid) {
            Some(k) => k,
            None => {
                self.refresh().await?;
                self.key(&kid).ok_or(AuthError::UnknownKey)?
            }
        };
        jsonwebtoken::decode::<Claims>(token, &key, &self.inner.validation)
            .map(|data| data.claims)
            .map_err(|e| match e.kind() {
                jsonwebtoken::errors::ErrorKind::ExpiredSignature => AuthError::Expired,
                _ => AuthError::Invalid(e.to_string()),
            })
    }

    fn key(&self, kid: &str) -> Option<Arc<DecodingKey>> {
        let keys = self.inner.keys.read().unwrap_or_else(|p| p.into_inner());
        keys.get(kid).cloned()
    }

    /// Fetches the JWKS again unless another caller just did.
    async fn refresh(&self) -> Result<(), AuthError> {
        let KeySource::Jwks { url, client } = &self.inner.source else {
            return Err(AuthError::UnknownKey);
        };
        let mut last = self.inner.last_fetch.lock().await;
        if last.is_some_and(|t| t.elapsed() < self.inner.min_refresh_interval) {
            return Ok(());
        }
        let mut headers = reqwest::header::HeaderMap::new();
        crate::telemetry::inject_trace_context(&mut headers);
        let fetched = async {
            let res = client
                .get(url)
                .headers(headers)
                .send()
                .await?
                .error_for_status()?;
            res.json::<JwkSet>().await
        }
        .await;
        *last = Some(Instant::now());
        let set = fetched.map_err(|e| AuthError::KeysUnavailable(e.to_string()))?;
        let keys = keys_of(&set)?;
        tracing::info!(keys = keys.len(), "fetched signing keys");
        *self.inner.keys.write().unwrap_or_else(|p| p.into_inner()) = keys;
        Ok(())
    }
}

fn keys_of(set: &JwkSet) -> Result<HashMap<String, Arc<DecodingKey>>, AuthError> {
    let mut keys = HashMap::new();
    for jwk in &set.keys {
        let Some(kid) = jwk.common.key_id.clone() else {
            continue;
        };
        let key = DecodingKey::from_jwk(jwk)
            .map_err(|e| AuthError::KeysUnavailable(format!("bad key {kid}: {e}")))?;
        keys.insert(kid, Arc::new(key));
    }
    Ok(keys)
}

/// The signed-in user of a request: extracting it answers 401 unless the request carries a valid
/// `Authorization: Bearer <access token>`. Needs a `web::Data<Verifier>` in the app.
#[derive(Debug, Clone)]
pub struct Authenticated(pub Claims);

/// Like [`Authenticated`], but a request without an `Authorization` header is anonymous (`None`);
/// a bad token is still a 401.
#[derive(Debug, Clone)]
pub struct MaybeAuthenticated(pub Option<Claims>);

fn bearer(req: &HttpRequest) -> Result<Option<String>, HttpError> {
    let Some(value) = req.headers().get(actix_web::http::header::AUTHORIZATION) else {
        return Ok(None);
    };
    let value = value
        .to_str()
        .map_err(|_| HttpError::unauthorized("the Authorization header is not valid text"))?;
    match value.split_once(' ') {
        Some((scheme, token))
            if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() =>
        {
            Ok(Some(token.trim().to_owned()))
        }
        _ => Err(HttpError::unauthorized(
            "expected `Authorization: Bearer <token>`",
        )),
    }
}

async fn verify_request(
    verifier: Option<web::Data<Verifier>>,
    token: String,
) -> Result<Claims, HttpError> {
    let verifier = verifier.ok_or_else(|| {
        tracing::error!("no Verifier registered in the app");
        HttpError::internal()
    })?;
    Ok(verifier.verify(&token).await?)
}

impl FromRequest for Authenticated {
    type Error = HttpError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, HttpError>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let token = bearer(req);
        let verifier = req.app_data::<web::Data<Verifier>>().cloned();
        Box::pin(async move {
            let token = token?.ok_or_else(|| HttpError::unauthorized("sign in first"))?;
            verify_request(verifier, token).await.map(Authenticated)
        })
    }
}

impl FromRequest for MaybeAuthenticated {
    type Error = HttpError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, HttpError>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let token = bearer(req);
        let verifier = req.app_data::<web::Data<Verifier>>().cloned();
        Box::pin(async move {
            match token? {
                None => Ok(MaybeAuthenticated(None)),
                Some(t) => verify_request(verifier, t)
                    .await
                    .map(|c| MaybeAuthenticated(Some(c))),
            }
        })
    }
}
