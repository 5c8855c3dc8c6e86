//! Every SQL statement of the user service. Statements are prepared once per pooled connection
//! (`prepare_cached`).

use deadpool_postgres::{GenericClient, Object, Transaction};
use serde::Serialize;
use time::OffsetDateTime;
use tokio_postgres::Row;
use tokio_postgres::error::SqlState;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::error::UserError;

/// What anyone may see of a user.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PublicProfile {
    pub id: i64,
    pub username: String,
    pub display_name: String,
    pub bio: String,
    pub avatar_url: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: OffsetDateTime,
    pub followers_count: i64,
    pub followings_count: i64,
}

/// What the user sees of their own account.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PrivateProfile {
    #[serde(flatten)]
    pub public: PublicProfile,
    pub email: String,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: OffsetDateTime,
}

const PUBLIC: &str = "u.id, u.username, u.display_name, u.bio, u.avatar_url, u.created_at, \
                      u.followers_count, u.followings_count";
const PRIVATE: &str = "u.id, u.username, u.display_name, u.bio, u.avatar_url, u.created_at, \
                       u.followers_count, u.followings_count, u.email, u.updated_at";

fn public(row: &Row) -> PublicProfile {
    PublicProfile {
        id: row.get(0),
        username: row.get(1),
        display_name: row.get(2),
        bio: row.get(3),
        avatar_url: row.get(4),
        created_at: row.get(5),
        followers_count: row.get(6),
        followings_count: row.get(7),
    }
}

fn private(row: &Row) -> PrivateProfile {
    PrivateProfile {
        public: public(row),
        email: row.get(8),
        updated_at: row.get(9),
    }
}

/// A user whose cached profile must be dropped after a write.
#[derive(Debug, Clone)]
pub struct Touched {
    pub id: i64,
    pub username: String,
}

/// Runs a transaction body again when PostgreSQL aborted it for a deadlock or serialization
/// conflict (concurrent follows of the same users); other errors pass through.
macro_rules! retrying {
    ($client:expr, |$tx:ident| $body:expr) => {{
        let mut attempt = 0;
        loop {
            attempt += 1;
            let $tx = $client.transaction().await?;
            let result: Result<_, tokio_postgres::Error> = async { $body }.await;
            match result {
                Ok(value) => break Ok::<_, UserError>(value),
                Err(e) if attempt < 5 && is_conflict(&e) => {
                    tracing::debug!(error = %e, attempt, "transaction conflict, retrying");
                    continue;
                }
                Err(e) => break Err(UserError::from(e)),
            }
        }
    }};
}

fn is_conflict(e: &tokio_postgres::Error) -> bool {
    matches!(
        e.code(),
        Some(c) if *c == SqlState::T_R_DEADLOCK_DETECTED || *c == SqlState::T_R_SERIALIZATION_FAILURE
    )
}

pub struct NewUser<'a> {
    pub username: &'a str,
    pub email: &'a str,
    pub password_hash: &'a str,
    pub display_name: &'a str,
}

pub async fn insert_user(client: &Object, new: &NewUser<'_>) -> Result<PrivateProfile, UserError> {
    let sql = format!(
        "INSERT INTO users AS u (username, email, password_hash, display_name) \
         VALUES ($1, $2, $3, $4) RETURNING {PRIVATE}"
    );
    let stmt = client.prepare_cached(&sql).await?;
    let row = client
        .query_one(
            &stmt,
            &[
                &new.username,
                &new.email,
                &new.password_hash,
                &new.display_name,
            ],
        )
        .await?;
    Ok(private(&row))
}

pub async fn profile_by_id(client: &Object, id: i64) -> Result<Option<PublicProfile>, UserError> {
    let stmt = client
        .prepare_cached(&format!("SELECT {PUBLIC} FROM users u WHERE u.id = $1"))
        .await?;
    Ok(client.query_opt(&stmt, &[&id]).await?.as_ref().map(public))
}

pub async fn profile_by_username(
    client: &Object,
    username: &str,
) -> Result<Option<PublicProfile>, UserError> {
    let sql = format!("SELECT {PUBLIC} FROM users u WHERE lower(u.username) = lower($1)");
    let stmt = client.prepare_cached(&sql).await?;
    Ok(client
        .query_opt(&stmt, &[&username])
        .await?
        .as_ref()
        .map(public))
}

pub async fn private_profile(
    client: &Object,
    id: i64,
) -> Result<Option<PrivateProfile>, UserError> {
    let stmt = client
        .prepare_cached(&format!("SELECT {PRIVATE} FROM users u WHERE u.id = $1"))
        .await?;
    Ok(client.query_opt(&stmt, &[&id]).await?.as_ref().map(private))
}

/// The account a sign-in names, by username or email (either regardless of case).
pub async fn credentials(
    client: &Object,
    login: &str,
) -> Result<Option<(i64, String, String)>, UserError> {
    let stmt = client
        .prepare_cached(
            "SELECT id, username, password_hash FROM users \
             WHERE lower(username) = lower($1) OR lower(email) = lower($1) LIMIT 1",
        )
        .await?;
    Ok(client
        .query_opt(&stmt, &[&login])
        .await?
        .map(|r| (r.get(0), r.get(1), r.get(2))))
}

/// Profile fields to change; `None` leaves a field as it is.
#[derive(Debug, Default)]
pub struct ProfileChanges {
    pub username: Option<String>,
    pub email: Option<String>,
    pub display_name: Option<String>,
    pub bio: Option<String>,
    /// `Some(None)` clears the avatar.
    pub avatar_url: Option<Option<String>>,
}

/// Applies `changes`; returns the new profile and the username it had before.
pub async fn update_profile(
    client: &Object,
    id: i64,
    c: &ProfileChanges,
) -> Result<Option<(PrivateProfile, String)>, UserError> {
    let sql = format!(
        "UPDATE users u SET \
            username = COALESCE($2, u.username), \
            email = COALESCE($3, u.email), \
            display_name = COALESCE($4, u.display_name), \
            bio = COALESCE($5, u.bio), \
            avatar_url = CASE WHEN $6 THEN $7 ELSE u.avatar_url END, \
            updated_at = now() \
         FROM users old WHERE u.id = $1 AND old.id = u.id \
         RETURNING {PRIVATE}, old.username"
    );
    let stmt = client.prepare_cached(&sql).await?;
    let set_avatar = c.avatar_url.is_some();
    let avatar = c.avatar_url.clone().flatten();
    let row = client
        .query_opt(
            &stmt,
            &[
                &id,
                &c.username,
                &c.email,
                &c.display_name,
                &c.bio,
                &set_avatar,
                &avatar,
            ],
        )
        .await?;
    Ok(row.map(|r| (private(&r), r.get(10))))
}

/// Deletes the account, its sessions and follows, keeping everyone else's counts exact. Returns
/// every user whose profile changed (the deleted one first), or `None` if there was no account.
pub async fn delete_user(client: &mut Object, id: i64) -> Result<Option<Vec<Touched>>, UserError> {
    retrying!(client, |tx| {
        // Lock every user whose counts change, in id order, so concurrent follows cannot deadlock.
        let stmt = tx
            .prepare_cached(
                "SELECT id, username FROM users WHERE id = $1 \
                    OR id IN (SELECT follower_id FROM follows WHERE followee_id = $1) \
                    OR id IN (SELECT followee_id FROM follows WHERE follower_id = $1) \
                 ORDER BY id FOR UPDATE",
            )
            .await?;
        let locked = tx.query(&stmt, &[&id]).await?;
        if !locked.iter().any(|r| r.get::<_, i64>(0) == id) {
            tx.rollback().await?;
            return Ok(None);
        }
        let stmt = tx
            .prepare_cached(
                "UPDATE users SET followings_count = followings_count - 1 \
                 WHERE id IN (SELECT follower_id FROM follows WHERE followee_id = $1)",
            )
            .await?;
        tx.execute(&stmt, &[&id]).await?;
        let stmt = tx
            .prepare_cached(
                "UPDATE users SET followers_count = followers_count - 1 \
                 WHERE id IN (SELECT followee_id FROM follows WHERE follower_id = $1)",
            )
            .await?;
        tx.execute(&stmt, &[&id]).await?;
        let stmt = tx.prepare_cached("DELETE FROM users WHERE id = $1").await?;
        tx.execute(&stmt, &[&id]).await?;
        tx.commit().await?;
        let mut touched: Vec<Touched> = locked
            .iter()
            .map(|r| Touched {
                id: r.get(0),
                username: r.get(1),
            })
            .collect();
        touched.sort_by_key(|t| t.id != id);
        Ok(Some(touched))
    })
}

/// The result of a follow or unfollow.
#[derive(Debug)]
pub enum FollowOutcome {
    /// The target does not exist.
    NoTarget,
    /// The follower's own account is gone.
    NoFollower,
    /// The follow was added or removed; both profiles changed.
    Changed(Vec<Touched>),
    /// Already in the wanted state.
    Unchanged,
}

/// `follow = true` follows, `false` unfollows; idempotent either way, counts exact.
pub async fn set_follow(
    client: &mut Object,
    follower: i64,
    followee: i64,
    follow: bool,
) -> Result<FollowOutcome, UserError> {
    retrying!(client, |tx| {
        let stmt = tx
            .prepare_cached(
                "SELECT id, username FROM users WHERE id = $1 OR id = $2 ORDER BY id FOR UPDATE",
            )
            .await?;
        let locked = tx.query(&stmt, &[&follower, &followee]).await?;
        let found = |id: i64| locked.iter().any(|r| r.get::<_, i64>(0) == id);
        if !found(follower) || !found(followee) {
            tx.rollback().await?;
            return Ok(if found(follower) {
                FollowOutcome::NoTarget
            } else {
                FollowOutcome::NoFollower
            });
        }
        let changed = if follow {
            let stmt = tx
                .prepare_cached(
                    "INSERT INTO follows (follower_id, followee_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
                )
                .await?;
            tx.execute(&stmt, &[&follower, &followee]).await?
        } else {
            let stmt = tx
                .prepare_cached("DELETE FROM follows WHERE follower_id = $1 AND followee_id = $2")
                .await?;
            tx.execute(&stmt, &[&follower, &followee]).await?
        };
        if changed == 0 {
            tx.rollback().await?;
            return Ok(FollowOutcome::Unchanged);
        }
        let delta: i64 = if follow { 1 } else { -1 };
        let stmt = tx
            .prepare_cached(
                "UPDATE users SET \
                    followings_count = followings_count + CASE WHEN id = $1 THEN $3::bigint ELSE 0 END, \
                    followers_count = followers_count + CASE WHEN id = $2 THEN $3::bigint ELSE 0 END \
                 WHERE id = $1 OR id = $2",
            )
            .await?;
        tx.execute(&stmt, &[&follower, &followee, &delta]).await?;
        tx.commit().await?;
        Ok(FollowOutcome::Changed(
            locked
                .iter()
                .map(|r| Touched {
                    id: r.get(0),
                    username: r.get(1),
                })
                .collect(),
        ))
    })
}

/// Which side of the follow graph a list shows.
#[derive(Debug, Clone, Copy)]
pub enum Direction {
    /// Users who follow the given user.
    Followers,
    /// Users the given user follows.
    Followings,
}

/// One page of a follower/following list, newest follow first: `(follow id, profile)` pairs with
/// follow ids below `before`. `None` when the user does not exist.
pub async fn follow_page(
    client: &Object,
    user: i64,
    direction: Direction,
    before: Option<i64>,
    limit: i64,
) -> Result<Option<Vec<(i64, PublicProfile)>>, UserError> {
    let (own, other) = match direction {
        Direction::Followers => ("followee_id", "follower_id"),
        Direction::Followings => ("follower_id", "followee_id"),
    };
    let sql = format!(
        "SELECT f.id, {PUBLIC} FROM follows f JOIN users u ON u.id = f.{other} \
         WHERE f.{own} = $1 AND f.id < $2 ORDER BY f.id DESC LIMIT $3"
    );
    let stmt = client.prepare_cached(&sql).await?;
    let before = before.unwrap_or(i64::MAX);
    let rows = client.query(&stmt, &[&user, &before, &limit]).await?;
    if rows.is_empty() {
        let exists = client
            .prepare_cached("SELECT 1 FROM users WHERE id = $1")
            .await?;
        if client.query_opt(&exists, &[&user]).await?.is_none() {
            return Ok(None);
        }
    }
    Ok(Some(
        rows.iter()
            .map(|r| {
                let id: i64 = r.get(0);
                let p = PublicProfile {
                    id: r.get(1),
                    username: r.get(2),
                    display_name: r.get(3),
                    bio: r.get(4),
                    avatar_url: r.get(5),
                    created_at: r.get(6),
                    followers_count: r.get(7),
                    followings_count: r.get(8),
                };
                (id, p)
            })
            .collect(),
    ))
}

/// Stores the first refresh token of a new session family.
pub async fn insert_refresh_token(
    client: &impl GenericClient,
    hash: &[u8],
    family: Uuid,
    user_id: i64,
    ttl_secs: i64,
) -> Result<(), UserError> {
    let stmt = client
        .prepare_cached(
            "INSERT INTO refresh_tokens (token_hash, family_id, user_id, expires_at) \
             VALUES ($1, $2, $3, now() + make_interval(secs => $4))",
        )
        .await?;
    client
        .execute(&stmt, &[&hash, &family, &user_id, &(ttl_secs as f64)])
        .await?;
    Ok(())
}

/// What presenting a refresh token led to.
#[derive(Debug)]
pub enum Rotation {
    /// The token was valid: it is now used, and `new_hash` is the family's next token.
    Rotated {
        user_id: i64,
        username: String,
    },
    Unknown,
    Expired,
    /// The family was already revoked (signed out, or reuse seen before).
    Revoked,
    /// The token had been used already: someone replayed it, so the whole family is revoked.
    Reused,
}

/// Rotates a refresh token: marks `old_hash` used and stores `new_hash` in its family, or, on
/// reuse, revokes the family. Runs under a row lock so two concurrent uses cannot both succeed.
pub async fn rotate_refresh_token(
    client: &mut Object,
    old_hash: &[u8],
    new_hash: &[u8],
    ttl_secs: i64,
) -> Result<Rotation, UserError> {
    retrying!(client, |tx| {
        let stmt = tx
            .prepare_cached(
                "SELECT t.family_id, t.user_id, t.expires_at < now(), t.used_at IS NOT NULL, \
                        t.revoked_at IS NOT NULL, u.username \
                 FROM refresh_tokens t JOIN users u ON u.id = t.user_id \
                 WHERE t.token_hash = $1 FOR UPDATE OF t",
            )
            .await?;
        let Some(row) = tx.query_opt(&stmt, &[&old_hash]).await? else {
            tx.rollback().await?;
            return Ok(Rotation::Unknown);
        };
        let (family, user_id): (Uuid, i64) = (row.get(0), row.get(1));
        let (expired, used, revoked): (bool, bool, bool) = (row.get(2), row.get(3), row.get(4));
        if revoked {
            tx.rollback().await?;
            return Ok(Rotation::Revoked);
        }
        if used {
            revoke_family_in(&tx, family).await?;
            tx.commit().await?;
            return Ok(Rotation::Reused);
        }
        if expired {
            tx.rollback().await?;
            return Ok(Rotation::Expired);
        }
        let stmt = tx
            .prepare_cached("UPDATE refresh_tokens SET used_at = now() WHERE token_hash = $1")
            .await?;
        tx.execute(&stmt, &[&old_hash]).await?;
        let stmt = tx
            .prepare_cached(
                "INSERT INTO refresh_tokens (token_hash, family_id, user_id, expires_at) \
                 VALUES ($1, $2, $3, now() + make_interval(secs => $4))",
            )
            .await?;
        tx.execute(&stmt, &[&new_hash, &family, &user_id, &(ttl_secs as f64)])
            .await?;
        tx.commit().await?;
        Ok(Rotation::Rotated {
            user_id,
            username: row.get(5),
        })
    })
}

async fn revoke_family_in(
    tx: &Transaction<'_>,
    family: Uuid,
) -> Result<u64, tokio_postgres::Error> {
    let stmt = tx
        .prepare_cached(
            "UPDATE refresh_tokens SET revoked_at = now() WHERE family_id = $1 AND revoked_at IS NULL",
        )
        .await?;
    tx.execute(&stmt, &[&family]).await
}

/// Signs a session out: revokes the family of the given token. Unknown tokens change nothing.
pub async fn revoke_family_of(client: &Object, hash: &[u8]) -> Result<(), UserError> {
    let stmt = client
        .prepare_cached(
            "UPDATE refresh_tokens SET revoked_at = now() WHERE revoked_at IS NULL AND family_id = \
             (SELECT family_id FROM refresh_tokens WHERE token_hash = $1)",
        )
        .await?;
    client.execute(&stmt, &[&hash]).await?;
    Ok(())
}

/// Applies the schema migrations (idempotent; several replicas may start at once).
pub async fn migrate(client: &mut Object) -> Result<(), anyhow::Error> {
    mod embedded {
        refinery::embed_migrations!("migrations");
    }
    // Serialise concurrent start-ups: refinery itself takes no lock.
    client
        .simple_query("SELECT pg_advisory_lock(727274)")
        .await?;
    let result = embedded::migrations::runner()
        .run_async(&mut ***client)
        .await;
    client
        .simple_query("SELECT pg_advisory_unlock(727274)")
        .await?;
    result?;
    Ok(())
}
