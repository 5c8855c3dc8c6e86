//! What both test crates of the reviews service check the same way.

/// Rows in which the review summaries differ from a recount of the visible reviews (0: exact).
pub async fn summaries_mismatch(db: &tokio_postgres::Client) -> i64 {
    db.query_one(include_str!("summaries_mismatch.sql"), &[])
        .await
        .expect("the summaries recount runs")
        .get(0)
}
