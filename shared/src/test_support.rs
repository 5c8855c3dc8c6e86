//! Test support shared by every service: a PostgreSQL database of its own per test (dropped
//! afterwards) and a Redis key prefix of its own, so tests run in parallel.
//!
//! Test code: a failure to set up panics with a message, as a test should.
#![allow(clippy::expect_used)]

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
        let (client, conn) = admin
            .pg_config()
            .connect(tokio_postgres::NoTls)
            .await
            .expect("connect to PostgreSQL for a test database (is it running?)");
        tokio::spawn(conn);
        client
            .simple_query(&format!("CREATE DATABASE {name}"))
            .await
            .expect("create the test database");
        Self {
            settings: base.with_database(&name),
            admin,
        }
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
                if let Ok((client, conn)) = admin.pg_config().connect(tokio_postgres::NoTls).await {
                    tokio::spawn(conn);
                    let _ = client
                        .simple_query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                        .await;
                }
            });
        });
        let _ = done.join();
    }
}

/// A key prefix no other test uses.
pub fn redis_prefix() -> String {
    format!("test:{}:", uuid::Uuid::new_v4().simple())
}
