//! Test support shared by every service: a PostgreSQL database of its own per test (dropped
//! afterwards) and a Redis key prefix of its own, so tests run in parallel.
//!
//! Test code: a failure to set up panics with a message, as a test should.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use crate::postgres::PostgresSettings;

/// A freshly created, uniquely named database, dropped (with any open connections) on drop.
pub struct TestDatabase {
    pub settings: PostgresSettings,
    admin: PostgresSettings,
}

impl TestDatabase {
    /// Creates `test_<uuid>` on the server `base` points at (connecting to its `postgres` database).
    pub async fn create(base: &PostgresSettings) -> Self {
        let name = format!("test_{}", uuid::Uuid::new_v4().simple());
        let admin = base.with_database("postgres");
        connect(&admin)
            .await
            .expect("connect to PostgreSQL for a test database (is it running?)")
            .simple_query(&format!("CREATE DATABASE {name}"))
            .await
            .expect("create the test database");
        Self {
            settings: base.with_database(&name),
            admin,
        }
    }

    /// A direct connection to this database, for a test to look at or change what the app wrote.
    pub async fn client(&self) -> tokio_postgres::Client {
        connect(&self.settings)
            .await
            .expect("connect to the test database")
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        // Drop runs outside any async context we can rely on: use a thread with its own runtime.
        let admin = self.admin.clone();
        let name = self.settings.database.clone();
        let done = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async move {
                if let Ok(client) = connect(&admin).await {
                    let _ = client
                        .simple_query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                        .await;
                }
            });
        });
        let _ = done.join();
    }
}

/// A connection to the database `settings` name, driven on the current runtime.
async fn connect(
    settings: &PostgresSettings,
) -> Result<tokio_postgres::Client, tokio_postgres::Error> {
    let (client, conn) = settings.pg_config().connect(tokio_postgres::NoTls).await?;
    tokio::spawn(conn);
    Ok(client)
}

/// A key prefix no other test uses.
pub fn redis_prefix() -> String {
    format!("test:{}:", uuid::Uuid::new_v4().simple())
}

/// A token issuer for services that verify access tokens: an Ed25519 key of its own, its JWKS
/// served over HTTP on port 0, and tokens signed like the user service signs them.
pub struct TestIssuer {
    pub jwks_url: String,
    encoding: jsonwebtoken::EncodingKey,
    kid: String,
    _server: actix_web::dev::ServerHandle,
}

impl TestIssuer {
    pub async fn start() -> Self {
        use base64::Engine;
        use base64::engine::general_purpose::URL_SAFE_NO_PAD;
        use ed25519_dalek::pkcs8::EncodePrivateKey;
        use ed25519_dalek::pkcs8::spki::der::pem::LineEnding;

        let seed: [u8; 32] = *uuid::Uuid::new_v4()
            .as_bytes()
            .repeat(2)
            .first_chunk()
            .expect("32 bytes");
        let key = ed25519_dalek::SigningKey::from_bytes(&seed);
        let pem = key.to_pkcs8_pem(LineEnding::LF).expect("pem");
        let kid = format!("test-{}", uuid::Uuid::new_v4().simple());
        let jwks = serde_json::json!({"keys": [{
            "kty": "OKP", "crv": "Ed25519", "alg": "EdDSA", "use": "sig", "kid": kid,
            "x": URL_SAFE_NO_PAD.encode(key.verifying_key().to_bytes()),
        }]});
        let server = actix_web::HttpServer::new(move || {
            let jwks = jwks.clone();
            actix_web::App::new().route(
                "/.well-known/jwks.json",
                actix_web::web::get().to(move || {
                    let jwks = jwks.clone();
                    async move { actix_web::HttpResponse::Ok().json(jwks) }
                }),
            )
        })
        .workers(1)
        .bind(("127.0.0.1", 0))
        .expect("bind the JWKS server");
        let port = server.addrs()[0].port();
        let server = server.run();
        let handle = server.handle();
        tokio::spawn(server);
        Self {
            jwks_url: format!("http://127.0.0.1:{port}/.well-known/jwks.json"),
            encoding: jsonwebtoken::EncodingKey::from_ed_pem(pem.as_bytes()).expect("key"),
            kid,
            _server: handle,
        }
    }

    /// An access token for this user, valid for ten minutes.
    pub fn token(&self, user_id: i64, username: &str) -> String {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0);
        let claims = crate::auth::Claims {
            sub: user_id.to_string(),
            username: username.to_owned(),
            iss: crate::auth::ISSUER.to_owned(),
            aud: crate::auth::AUDIENCE.to_owned(),
            iat: now,
            exp: now + 600,
        };
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::EdDSA);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, &claims, &self.encoding).expect("sign")
    }
}

/// A Redis server of this test's own, on a free port, to stop mid-test.
pub struct OwnRedis {
    pub port: u16,
    child: std::process::Child,
}

impl OwnRedis {
    pub fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        Self {
            port,
            child: Self::spawn(port),
        }
    }

    fn spawn(port: u16) -> std::process::Child {
        let child = std::process::Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("redis-server is installed");
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        child
    }

    /// Starts a new, empty server on the same port after [`OwnRedis::stop`].
    pub fn restart(&mut self) {
        self.stop();
        self.child = Self::spawn(self.port);
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        self.stop();
    }
}
