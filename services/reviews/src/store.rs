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

/// One review as the API shows it, built by PostgreSQL as JSON (`r` is a row of `reviews`).
macro_rules! review_json {
    () => {
        "json_build_object('review_id', r.id, 'rating', r.rating, 'summary', r.summary, \
         'recommend', r.recommend, 'response', r.response, 'body', r.body, \
         'date', to_char(r.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'), \
         'reviewer_name', r.reviewer_name, 'helpfulness', r.helpfulness, \
         'photos', coalesce((SELECT json_agg(json_build_object('id', p.id, 'url', p.url) ORDER BY p.id) \
                             FROM review_photos p WHERE p.review_id = r.id), '[]'::json))"
    };
}

/// A page of a song's visible reviews as a JSON array, in one round trip: `$1` song, `$2` count,
/// `$3` offset. The inner query walks the matching partial index (`reviews_newest` /
/// `reviews_helpful`) and stops after the page; `relevant` sorts the song's visible reviews.
macro_rules! page_sql {
    ($order:literal) => {
        concat!(
            "SELECT coalesce(json_agg(",
            review_json!(),
            " ORDER BY ",
            $order,
            "), '[]'::json)::text FROM (SELECT * FROM reviews r \
             WHERE r.song_id = $1 AND NOT r.reported ORDER BY ",
            $order,
            " LIMIT $2 OFFSET $3) r"
        )
    };
}

const PAGE_NEWEST: &str = page_sql!("r.created_at DESC, r.id DESC");
const PAGE_HELPFUL: &str = page_sql!("r.helpfulness DESC, r.id DESC");
const PAGE_RELEVANT: &str =
    page_sql!("r.helpfulness + extract(epoch FROM r.created_at) / 2592000 DESC, r.id DESC");

/// A song's ratings summary (`/reviews/meta`) as JSON, in one round trip. Counts are strings and
/// averages PostgreSQL's `numeric` text (16 decimals), as the Atelier API has them; reported
/// reviews count nowhere, like everywhere else.
const META: &str = "\
WITH visible AS (SELECT id, rating, recommend FROM reviews WHERE song_id = $1 AND NOT reported)
SELECT json_build_object(
  'product_id', $1::text,
  'ratings', coalesce((SELECT json_object_agg(rating, n ORDER BY rating)
                       FROM (SELECT rating, count(*)::text AS n FROM visible GROUP BY rating) x),
                      '{}'::json),
  'recommended', coalesce((SELECT json_object_agg(recommend, n ORDER BY recommend)
                           FROM (SELECT recommend, count(*)::text AS n FROM visible GROUP BY recommend) x),
                          '{}'::json),
  'characteristics', coalesce((
      SELECT json_object_agg(c.name, json_build_object('id', c.id, 'value', a.value) ORDER BY c.id)
      FROM characteristics c
      LEFT JOIN (SELECT cr.characteristic_id, avg(cr.value)::text AS value
                 FROM visible v JOIN characteristic_reviews cr ON cr.review_id = v.id
                 GROUP BY cr.characteristic_id) a ON a.characteristic_id = c.id
      WHERE c.song_id = $1), '{}'::json))::text";

/// `json` without the whitespace outside strings (PostgreSQL's `json_build_object` writes
/// `{"a" : 1, "b" : 2}`); the text is otherwise kept as it is.
pub fn compact(json: &str) -> String {
    let mut out = String::with_capacity(json.len());
    let (mut in_string, mut escaped) = (false, false);
    for c in json.chars() {
        if in_string {
            out.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
        } else if c == '"' {
            in_string = true;
            out.push(c);
        } else if !c.is_ascii_whitespace() {
            out.push(c);
        }
    }
    out
}

/// The JSON array of one page of a song's reviews.
pub async fn page(
    client: &Object,
    song_id: i64,
    sort: Sort,
    count: i64,
    offset: i64,
) -> Result<String, tokio_postgres::Error> {
    let sql = match sort {
        Sort::Newest => PAGE_NEWEST,
        Sort::Helpful => PAGE_HELPFUL,
        Sort::Relevant => PAGE_RELEVANT,
    };
    let stmt = client.prepare_cached(sql).await?;
    let row = client
        .query_one(&stmt, &[&song_id, &count, &offset])
        .await?;
    row.try_get(0)
}

/// The JSON of a song's ratings summary.
pub async fn meta(client: &Object, song_id: i64) -> Result<String, tokio_postgres::Error> {
    let stmt = client.prepare_cached(META).await?;
    Ok(compact(
        client.query_one(&stmt, &[&song_id]).await?.try_get(0)?,
    ))
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
    Db(#[from] tokio_postgres::Error),
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
            review_json!(),
            "::text FROM reviews r WHERE r.id = $1"
        ))
        .await?;
    let row = tx.query_one(&stmt, &[&id]).await?;
    let json = compact(row.try_get(0)?);
    tx.commit().await?;
    Ok(json)
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

#[cfg(test)]
mod tests {
    use super::compact;

    #[test]
    fn compacting_removes_padding_but_never_touches_strings() {
        let padded = "{\"a\" : [1, 2], \"b\" : \"x : y, \\\" z\"}";
        assert_eq!(compact(padded), "{\"a\":[1,2],\"b\":\"x : y, \\\" z\"}");
        let text = "{\"body\" : \"line one\\nline two  spaced\"}";
        assert_eq!(compact(text), "{\"body\":\"line one\\nline two  spaced\"}");
    }
}
