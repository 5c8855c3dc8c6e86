//! Every SQL statement of the reviews service. Statements are prepared once per pooled connection
//! (`prepare_cached`).

use deadpool_postgres::Object;

/// Applies the schema migrations (idempotent; several replicas may start at once).
pub async fn migrate(client: &mut Object) -> Result<(), anyhow::Error> {
    mod embedded {
        refinery::embed_migrations!("migrations");
    }
    // Serialise concurrent start-ups: refinery itself takes no lock.
    client
        .simple_query("SELECT pg_advisory_lock(727275)")
        .await?;
    let result = embedded::migrations::runner()
        .run_async(&mut ***client)
        .await;
    client
        .simple_query("SELECT pg_advisory_unlock(727275)")
        .await?;
    result?;
    Ok(())
}
