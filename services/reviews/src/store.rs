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

/// How a song's reviews are listed. Every order ends in `id DESC`, so equal keys still have one
/// order and pages neither overlap nor skip.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sort {
    /// Date, newest first.
    Newest,
    /// Helpfulness, most helpful first.
    Helpful,
    /// Helpfulness and recency mixed: the score is `helpfulness + days since 1970 / 30`, so one
    /// "helpful" vote weighs as much as a month of recency. Deterministic (it does not depend on
    /// the time of the request), so pages stay stable between requests.
    Relevant,
}

impl Sort {
    pub const ALL: [Sort; 3] = [Sort::Newest, Sort::Helpful, Sort::Relevant];

    pub fn name(self) -> &'static str {
        match self {
            Sort::Newest => "newest",
            Sort::Helpful => "helpful",
            Sort::Relevant => "relevant",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.name() == s)
    }
}

/// The columns of one review as the API shows it (`r` is a row of `reviews`, `p` its photos as two
/// parallel arrays, see [`photos_join!`]); [`review_json`] writes such a row as JSON.
macro_rules! review_columns {
    () => {
        "r.id, r.rating, r.summary, r.recommend, r.response, r.body, r.created_at, \
         r.reviewer_name, r.helpfulness, p.ids, p.urls"
    };
}

/// The photos of review `r`, in id order.
macro_rules! photos_join {
    () => {
        " LEFT JOIN LATERAL (SELECT array_agg(id ORDER BY id) AS ids, \
         array_agg(url ORDER BY id) AS urls FROM review_photos WHERE review_id = r.id) p ON true"
    };
}

/// A page of a song's visible reviews, one row per review: `$1` song, `$2` count, `$3` offset.
/// The inner query walks the matching partial index (`reviews_newest` / `reviews_helpful`) and
/// stops after the page; `relevant` sorts the song's visible reviews.
macro_rules! page_sql {
    ($order:literal) => {
        concat!(
            "SELECT ",
            review_columns!(),
            " FROM (SELECT * FROM reviews r WHERE r.song_id = $1 AND NOT r.reported ORDER BY ",
            $order,
            " LIMIT $2 OFFSET $3) r",
            photos_join!(),
            " ORDER BY ",
            $order
        )
    };
}

const PAGE_NEWEST: &str = page_sql!("r.created_at DESC, r.id DESC");
const PAGE_HELPFUL: &str = page_sql!("r.helpfulness DESC, r.id DESC");
const PAGE_RELEVANT: &str =
    page_sql!("r.helpfulness + extract(epoch FROM r.created_at) / 2592000 DESC, r.id DESC");

/// One review as the API shows it.
#[derive(serde::Serialize)]
struct ReviewOut<'a> {
    review_id: i64,
    rating: i16,
    summary: &'a str,
    recommend: bool,
    response: Option<&'a str>,
    body: &'a str,
    date: String,
    reviewer_name: &'a str,
    helpfulness: i32,
    photos: Vec<PhotoOut<'a>>,
}

#[derive(serde::Serialize)]
struct PhotoOut<'a> {
    id: i64,
    url: &'a str,
}

/// `2019-01-06T00:00:00.000Z`: UTC, milliseconds truncated (as PostgreSQL's `to_char` has them).
fn api_date(t: time::OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.millisecond()
    )
}

/// Appends the JSON of a row selected with [`review_columns!`] to `out`.
fn review_json(row: &tokio_postgres::Row, out: &mut Vec<u8>) -> Result<(), StoreError> {
    let created: time::OffsetDateTime = row.try_get(6)?;
    let ids: Option<Vec<i64>> = row.try_get(9)?;
    let urls: Option<Vec<&str>> = row.try_get(10)?;
    let photos = ids
        .unwrap_or_default()
        .into_iter()
        .zip(urls.unwrap_or_default())
        .map(|(id, url)| PhotoOut { id, url })
        .collect();
    let review = ReviewOut {
        review_id: row.try_get(0)?,
        rating: row.try_get(1)?,
        summary: row.try_get(2)?,
        recommend: row.try_get(3)?,
        response: row.try_get(4)?,
        body: row.try_get(5)?,
        date: api_date(created),
        reviewer_name: row.try_get(7)?,
        helpfulness: row.try_get(8)?,
        photos,
    };
    serde_json::to_writer(out, &review).map_err(|e| StoreError::Format(e.to_string()))
}

/// A song's ratings summary (`/reviews/meta`): its counts from `song_review_stats` (repeated on
/// every row), then one row per characteristic with its average as PostgreSQL's `numeric` text
/// (16 decimals, exactly what `avg()` gives), NULL when no visible review rated it. Triggers keep
/// both summaries (migration V2), so this reads a few rows by key however many reviews there are.
const META: &str = "\
SELECT s.rating_1, s.rating_2, s.rating_3, s.rating_4, s.rating_5,
       s.recommended_false, s.recommended_true, c.id, c.name,
       CASE WHEN cs.value_count > 0 THEN (cs.value_sum::numeric / cs.value_count)::text END
FROM (SELECT $1::bigint AS song_id) k
LEFT JOIN song_review_stats s ON s.song_id = k.song_id
LEFT JOIN characteristics c ON c.song_id = k.song_id
LEFT JOIN characteristic_stats cs ON cs.characteristic_id = c.id
ORDER BY c.id";

/// A read or write of the reviews tables failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(transparent)]
    Db(#[from] tokio_postgres::Error),
    /// A value could not be written as JSON (not expected: every column has a JSON form).
    #[error("cannot write a review as JSON: {0}")]
    Format(String),
}

/// The JSON array of one page of a song's reviews.
pub async fn page(
    client: &Object,
    song_id: i64,
    sort: Sort,
    count: i64,
    offset: i64,
) -> Result<String, StoreError> {
    let sql = match sort {
        Sort::Newest => PAGE_NEWEST,
        Sort::Helpful => PAGE_HELPFUL,
        Sort::Relevant => PAGE_RELEVANT,
    };
    let stmt = client.prepare_cached(sql).await?;
    let rows = client.query(&stmt, &[&song_id, &count, &offset]).await?;
    let mut out = Vec::with_capacity(64 + rows.len() * 768);
    out.push(b'[');
    for (i, row) in rows.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        review_json(row, &mut out)?;
    }
    out.push(b']');
    String::from_utf8(out).map_err(|e| StoreError::Format(e.to_string()))
}

/// The JSON of a song's ratings summary, in the Atelier format: counts as strings, only the
/// ratings and recommendations that occur, characteristics by name in id order.
pub async fn meta(client: &Object, song_id: i64) -> Result<String, StoreError> {
    use std::fmt::Write as _;
    let stmt = client.prepare_cached(META).await?;
    let rows = client.query(&stmt, &[&song_id]).await?;
    // `write!` to a String cannot fail.
    let mut out = format!(r#"{{"product_id":"{song_id}","ratings":{{"#);
    let counts = |first: usize, keys: &[&str], out: &mut String| -> Result<(), StoreError> {
        let Some(row) = rows.first() else {
            return Ok(());
        };
        let mut sep = "";
        for (i, key) in keys.iter().enumerate() {
            let n: Option<i64> = row.try_get(first + i)?;
            if let Some(n) = n.filter(|n| *n > 0) {
                let _ = write!(out, r#"{sep}"{key}":"{n}""#);
                sep = ",";
            }
        }
        Ok(())
    };
    counts(0, &["1", "2", "3", "4", "5"], &mut out)?;
    out.push_str(r#"},"recommended":{"#);
    counts(5, &["false", "true"], &mut out)?;
    out.push_str(r#"},"characteristics":{"#);
    let mut sep = "";
    for row in &rows {
        let Some(id) = row.try_get::<_, Option<i64>>(7)? else {
            continue;
        };
        let name: &str = row.try_get(8)?;
        let name = serde_json::to_string(name).map_err(|e| StoreError::Format(e.to_string()))?;
        let value: Option<&str> = row.try_get(9)?;
        let _ = match value {
            Some(v) => write!(out, r#"{sep}{name}:{{"id":{id},"value":"{v}"}}"#),
            None => write!(out, r#"{sep}{name}:{{"id":{id},"value":null}}"#),
        };
        sep = ",";
    }
    out.push_str("}}");
    Ok(out)
}

/// A review to write: validated, with its photos and characteristic ratings.
#[derive(Debug, Clone)]
pub struct NewReview {
    pub song_id: i64,
    pub user_id: i64,
    pub rating: i16,
    pub summary: String,
    pub body: String,
    pub recommend: bool,
    pub name: String,
    pub email: String,
    pub photos: Vec<String>,
    /// `(characteristic id, value)`, ids distinct.
    pub characteristics: Vec<(i64, i16)>,
}

/// Why a review was not written.
#[derive(Debug, thiserror::Error)]
pub enum CreateError {
    /// These characteristic ids are not the song's.
    #[error("characteristics {0:?} do not belong to the song")]
    ForeignCharacteristics(Vec<i64>),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<tokio_postgres::Error> for CreateError {
    fn from(e: tokio_postgres::Error) -> Self {
        Self::Store(e.into())
    }
}

/// Writes a review, its photos and its characteristic ratings in one transaction; returns the
/// review as the API shows it. A second review of the same song by the same user fails with the
/// `reviews_one_per_user` unique violation.
pub async fn create(client: &mut Object, review: &NewReview) -> Result<String, CreateError> {
    let tx = client.transaction().await?;
    if !review.characteristics.is_empty() {
        let ids: Vec<i64> = review.characteristics.iter().map(|(id, _)| *id).collect();
        let stmt = tx
            .prepare_cached("SELECT id FROM characteristics WHERE song_id = $1 AND id = ANY($2)")
            .await?;
        let known: Vec<i64> = tx
            .query(&stmt, &[&review.song_id, &ids])
            .await?
            .iter()
            .map(|r| r.try_get(0))
            .collect::<Result<_, _>>()?;
        let foreign: Vec<i64> = ids.into_iter().filter(|id| !known.contains(id)).collect();
        if !foreign.is_empty() {
            return Err(CreateError::ForeignCharacteristics(foreign));
        }
    }
    let stmt = tx
        .prepare_cached(
            "INSERT INTO reviews (song_id, rating, summary, body, recommend, reviewer_name, \
             reviewer_email, reviewer_user_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
        )
        .await?;
    let id: i64 = tx
        .query_one(
            &stmt,
            &[
                &review.song_id,
                &review.rating,
                &review.summary,
                &review.body,
                &review.recommend,
                &review.name,
                &review.email,
                &review.user_id,
            ],
        )
        .await?
        .try_get(0)?;
    if !review.photos.is_empty() {
        let stmt = tx
            .prepare_cached(
                "INSERT INTO review_photos (review_id, url) \
                 SELECT $1, url FROM unnest($2::text[]) WITH ORDINALITY AS t(url, n) ORDER BY n",
            )
            .await?;
        tx.execute(&stmt, &[&id, &review.photos]).await?;
    }
    if !review.characteristics.is_empty() {
        let (ids, values): (Vec<i64>, Vec<i16>) = review.characteristics.iter().copied().unzip();
        let stmt = tx
            .prepare_cached(
                "INSERT INTO characteristic_reviews (characteristic_id, review_id, value) \
                 SELECT c, $1, v FROM unnest($2::bigint[], $3::smallint[]) AS t(c, v)",
            )
            .await?;
        tx.execute(&stmt, &[&id, &ids, &values]).await?;
    }
    let stmt = tx
        .prepare_cached(concat!(
            "SELECT ",
            review_columns!(),
            " FROM reviews r",
            photos_join!(),
            " WHERE r.id = $1"
        ))
        .await?;
    let row = tx.query_one(&stmt, &[&id]).await?;
    let mut json = Vec::with_capacity(1024);
    review_json(&row, &mut json)?;
    tx.commit().await?;
    String::from_utf8(json).map_err(|e| StoreError::Format(e.to_string()).into())
}

/// Counts `user_id`'s "helpful" vote once. `None` when the review does not exist; else its song
/// and whether the vote was new.
pub async fn mark_helpful(
    client: &Object,
    review_id: i64,
    user_id: i64,
) -> Result<Option<(i64, bool)>, tokio_postgres::Error> {
    let stmt = client
        .prepare_cached(
            "WITH r AS (SELECT id, song_id FROM reviews WHERE id = $1), \
             v AS (INSERT INTO review_helpful_votes (review_id, user_id) SELECT id, $2 FROM r \
                   ON CONFLICT DO NOTHING RETURNING review_id), \
             u AS (UPDATE reviews SET helpfulness = helpfulness + 1 \
                   WHERE id IN (SELECT review_id FROM v) RETURNING id) \
             SELECT r.song_id, EXISTS (SELECT 1 FROM u) FROM r",
        )
        .await?;
    let row = client.query_opt(&stmt, &[&review_id, &user_id]).await?;
    row.map(|r| Ok((r.try_get(0)?, r.try_get(1)?))).transpose()
}

/// Hides a review from every listing. `None` when it does not exist; else its song.
pub async fn report(client: &Object, review_id: i64) -> Result<Option<i64>, tokio_postgres::Error> {
    let stmt = client
        .prepare_cached("UPDATE reviews SET reported = true WHERE id = $1 RETURNING song_id")
        .await?;
    let row = client.query_opt(&stmt, &[&review_id]).await?;
    row.map(|r| r.try_get(0)).transpose()
}
