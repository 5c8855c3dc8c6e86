//! Access tokens (Ed25519-signed JWTs), the public key set, and opaque refresh tokens.

use std::path::Path;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::SigningKey;
use ed25519_dalek::pkcs8::{DecodePrivateKey, EncodePrivateKey, spki::der::pem::LineEnding};
use jsonwebtoken::jwk::{
    AlgorithmParameters, CommonParameters, EllipticCurve, Jwk, JwkSet, KeyAlgorithm,
    OctetKeyPairParameters, OctetKeyPairType, PublicKeyUse,
};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use rand::RngCore;
use secrecy::ExposeSecret;
use sha2::{Digest, Sha256};
use shared::auth::{AUDIENCE, Claims, ISSUER};

use crate::config::AuthSettings;

/// Signs access tokens and publishes the matching public key.
pub struct TokenSigner {
    encoding: EncodingKey,
    kid: String,
    jwks: JwkSet,
    access_ttl: i64,
}

impl TokenSigner {
    /// From the configured PEM, or else the development key on disk (created on first start).
    pub fn from_settings(settings: &AuthSettings) -> Result<Self, String> {
        let pem = settings.signing_key_pem.expose_secret();
        let pem = if pem.trim().is_empty() {
            dev_key(Path::new(&settings.dev_key_path))?
        } else {
            pem.to_owned()
        };
        Self::from_pem(&pem, settings.access_token_ttl_secs)
    }

    pub fn from_pem(pem: &str, access_ttl: i64) -> Result<Self, String> {
        let key = SigningKey::from_pkcs8_pem(pem)
            .map_err(|e| format!("auth.signing_key_pem is not an Ed25519 PKCS#8 PEM key: {e}"))?;
        let public = key.verifying_key().to_bytes();
        let kid = URL_SAFE_NO_PAD.encode(Sha256::digest(public))[..16].to_owned();
        let encoding = EncodingKey::from_ed_pem(pem.as_bytes()).map_err(|e| e.to_string())?;
        let jwk = Jwk {
            common: CommonParameters {
                public_key_use: Some(PublicKeyUse::Signature),
                key_algorithm: Some(KeyAlgorithm::EdDSA),
                key_id: Some(kid.clone()),
                ..CommonParameters::default()
            },
            algorithm: AlgorithmParameters::OctetKeyPair(OctetKeyPairParameters {
                key_type: OctetKeyPairType::OctetKeyPair,
                curve: EllipticCurve::Ed25519,
                x: URL_SAFE_NO_PAD.encode(public),
            }),
        };
        Ok(Self {
            encoding,
            kid,
            jwks: JwkSet { keys: vec![jwk] },
            access_ttl,
        })
    }

    /// The public keys, as served at `/.well-known/jwks.json`.
    pub fn jwks(&self) -> &JwkSet {
        &self.jwks
    }

    /// Seconds an access token lives.
    pub fn access_ttl(&self) -> i64 {
        self.access_ttl
    }

    /// A signed access token for this user.
    pub fn access_token(
        &self,
        user_id: i64,
        username: &str,
    ) -> Result<String, jsonwebtoken::errors::Error> {
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let claims = Claims {
            sub: user_id.to_string(),
            username: username.to_owned(),
            iss: ISSUER.to_owned(),
            aud: AUDIENCE.to_owned(),
            iat: now,
            exp: now + self.access_ttl,
        };
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, &claims, &self.encoding)
    }
}

/// Reads the development key, creating it if absent. Several replicas may start at once: the file
/// is created exclusively, and a loser of that race reads the winner's key.
fn dev_key(path: &Path) -> Result<String, String> {
    use std::io::Write;
    let fail = |e: std::io::Error| format!("auth.dev_key_path {}: {e}", path.display());
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(fail)?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(path) {
        Ok(mut file) => {
            let mut seed = [0u8; 32];
            rand::rngs::OsRng.fill_bytes(&mut seed);
            let pem = SigningKey::from_bytes(&seed)
                .to_pkcs8_pem(LineEnding::LF)
                .map_err(|e| e.to_string())?;
            file.write_all(pem.as_bytes()).map_err(fail)?;
            file.sync_all().map_err(fail)?;
            tracing::warn!(path = %path.display(), "generated a development signing key; configure auth.signing_key_pem in production");
            Ok(pem.to_string())
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            // Another process may still be writing it.
            for _ in 0..50 {
                let pem = std::fs::read_to_string(path).map_err(fail)?;
                if SigningKey::from_pkcs8_pem(&pem).is_ok() {
                    return Ok(pem);
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(format!(
                "auth.dev_key_path {} holds no valid key",
                path.display()
            ))
        }
        Err(e) => Err(fail(e)),
    }
}

/// A new refresh token: 256 random bits, URL-safe.
pub fn new_refresh_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// What is stored of a refresh token.
pub fn hash_refresh_token(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_dev_key_is_created_once_and_reused() {
        let dir = std::env::temp_dir().join(format!("devkey-{}", uuid::Uuid::new_v4()));
        let path = dir.join("k.pem");
        let a = dev_key(&path).unwrap();
        let b = dev_key(&path).unwrap();
        assert_eq!(a, b);
        let signer = TokenSigner::from_pem(&a, 60).unwrap();
        assert_eq!(signer.jwks().keys.len(), 1);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[tokio::test]
    async fn a_token_verifies_against_the_published_keys() {
        let mut seed = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut seed);
        let pem = SigningKey::from_bytes(&seed)
            .to_pkcs8_pem(LineEnding::LF)
            .unwrap();
        let signer = TokenSigner::from_pem(&pem, 60).unwrap();
        let token = signer.access_token(42, "ann").unwrap();
        let verifier = shared::auth::Verifier::from_jwks(signer.jwks()).unwrap();
        let claims = verifier.verify(&token).await.unwrap();
        assert_eq!(
            (claims.user_id().unwrap(), claims.username.as_str()),
            (42, "ann")
        );
    }

    #[test]
    fn refresh_tokens_are_random_and_hashed() {
        let a = new_refresh_token();
        assert_ne!(a, new_refresh_token());
        assert_eq!(hash_refresh_token(&a).len(), 32);
    }
}
