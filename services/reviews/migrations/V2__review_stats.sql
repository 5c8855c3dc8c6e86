-- Per-song and per-characteristic summaries of the visible (not reported) reviews, so that
-- `/reviews/meta` reads a handful of rows by primary key instead of aggregating every review of a
-- song: its cost no longer grows with the number of reviews.
--
-- Triggers keep them exact whoever writes (the API, an operator with psql). They are
-- statement-level with transition tables, so a bulk statement updates each summary row once, not
-- once per review (its rows travel as one array: a statement touching tens of millions of rows
-- would outgrow it). The importer disables them while it loads and rebuilds both tables with
-- `review_stats_rebuild()` before it commits.
--
-- Upserts lock summary rows in key order (ORDER BY), so concurrent writers cannot deadlock.

CREATE TABLE song_review_stats (
    song_id           BIGINT PRIMARY KEY,
    rating_1          BIGINT NOT NULL DEFAULT 0,
    rating_2          BIGINT NOT NULL DEFAULT 0,
    rating_3          BIGINT NOT NULL DEFAULT 0,
    rating_4          BIGINT NOT NULL DEFAULT 0,
    rating_5          BIGINT NOT NULL DEFAULT 0,
    recommended_false BIGINT NOT NULL DEFAULT 0,
    recommended_true  BIGINT NOT NULL DEFAULT 0
);

-- Sum and count of a characteristic's ratings by visible reviews; the average is computed on
-- read as `value_sum::numeric / value_count`, exactly what `avg()` computes.
CREATE TABLE characteristic_stats (
    characteristic_id BIGINT PRIMARY KEY,
    value_sum         BIGINT NOT NULL DEFAULT 0,
    value_count       BIGINT NOT NULL DEFAULT 0
);

-- Adds signed reviews (n = 1 counts a review in, -1 out) to song_review_stats. Trigger functions
-- pass their transition tables' rows as arrays: a called function cannot see a transition table.
-- PL/pgSQL rather than SQL functions: their plans are cached per session, not made on every call.
CREATE TYPE review_delta AS (song_id BIGINT, rating SMALLINT, recommend BOOLEAN, n BIGINT);
CREATE FUNCTION song_review_stats_add(deltas review_delta[]) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO song_review_stats AS s (song_id, rating_1, rating_2, rating_3, rating_4, rating_5,
                                        recommended_false, recommended_true)
    SELECT * FROM (
        SELECT song_id,
               coalesce(sum(n) FILTER (WHERE rating = 1), 0) AS r1,
               coalesce(sum(n) FILTER (WHERE rating = 2), 0) AS r2,
               coalesce(sum(n) FILTER (WHERE rating = 3), 0) AS r3,
               coalesce(sum(n) FILTER (WHERE rating = 4), 0) AS r4,
               coalesce(sum(n) FILTER (WHERE rating = 5), 0) AS r5,
               coalesce(sum(n) FILTER (WHERE NOT recommend), 0) AS no,
               coalesce(sum(n) FILTER (WHERE recommend), 0) AS yes
        FROM unnest(deltas) GROUP BY song_id) g
    WHERE (g.r1, g.r2, g.r3, g.r4, g.r5, g.no, g.yes) <> (0, 0, 0, 0, 0, 0, 0)
    ORDER BY song_id
    ON CONFLICT (song_id) DO UPDATE SET
        rating_1 = s.rating_1 + excluded.rating_1, rating_2 = s.rating_2 + excluded.rating_2,
        rating_3 = s.rating_3 + excluded.rating_3, rating_4 = s.rating_4 + excluded.rating_4,
        rating_5 = s.rating_5 + excluded.rating_5,
        recommended_false = s.recommended_false + excluded.recommended_false,
        recommended_true = s.recommended_true + excluded.recommended_true;
END $$;

CREATE TYPE characteristic_delta AS (characteristic_id BIGINT, value_sum BIGINT, n BIGINT);
CREATE FUNCTION characteristic_stats_add(deltas characteristic_delta[]) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO characteristic_stats AS s (characteristic_id, value_sum, value_count)
    SELECT * FROM (SELECT characteristic_id, sum(value_sum) AS total, sum(n) AS n
                   FROM unnest(deltas) GROUP BY characteristic_id) g
    WHERE (g.total, g.n) <> (0, 0)
    ORDER BY characteristic_id
    ON CONFLICT (characteristic_id) DO UPDATE SET
        value_sum = s.value_sum + excluded.value_sum,
        value_count = s.value_count + excluded.value_count;
END $$;

-- reviews: inserted, updated (reported, rating, recommend, song), deleted.
CREATE FUNCTION reviews_stats_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM song_review_stats_add(ARRAY(
        SELECT (song_id, rating, recommend, 1)::review_delta FROM new_rows WHERE NOT reported));
    RETURN NULL;
END $$;

CREATE FUNCTION reviews_stats_updated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- Only rows whose summary-relevant columns changed (a helpful vote changes none of them).
    PERFORM song_review_stats_add(ARRAY(
        SELECT d FROM old_rows o JOIN new_rows n ON n.id = o.id,
             LATERAL (VALUES ((o.song_id, o.rating, o.recommend, -1)::review_delta, o.reported),
                             ((n.song_id, n.rating, n.recommend, 1)::review_delta, n.reported)) v(d, hidden)
        WHERE NOT v.hidden
          AND (o.song_id, o.rating, o.recommend, o.reported) IS DISTINCT FROM
              (n.song_id, n.rating, n.recommend, n.reported)));
    -- A review hidden or shown again takes its characteristic ratings with it.
    PERFORM characteristic_stats_add(ARRAY(
        SELECT (cr.characteristic_id, sum(cr.value * f.sign), sum(f.sign))::characteristic_delta
        FROM (SELECT n.id, CASE WHEN n.reported THEN -1 ELSE 1 END AS sign
              FROM old_rows o JOIN new_rows n ON n.id = o.id WHERE o.reported <> n.reported) f
        JOIN characteristic_reviews cr ON cr.review_id = f.id
        GROUP BY cr.characteristic_id));
    RETURN NULL;
END $$;

CREATE FUNCTION reviews_stats_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM song_review_stats_add(ARRAY(
        SELECT (song_id, rating, recommend, -1)::review_delta FROM old_rows WHERE NOT reported));
    RETURN NULL;
END $$;

-- A visible review's characteristic ratings are subtracted before the delete cascades to them:
-- once the review is gone, their own delete trigger can no longer tell whether it was visible.
CREATE FUNCTION reviews_stats_deleting() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NOT OLD.reported THEN
        PERFORM characteristic_stats_add(ARRAY(
            SELECT (characteristic_id, -value, -1)::characteristic_delta
            FROM characteristic_reviews WHERE review_id = OLD.id));
    END IF;
    RETURN OLD;
END $$;

CREATE TRIGGER reviews_stats_inserted AFTER INSERT ON reviews
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION reviews_stats_inserted();
CREATE TRIGGER reviews_stats_updated AFTER UPDATE ON reviews
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION reviews_stats_updated();
CREATE TRIGGER reviews_stats_deleted AFTER DELETE ON reviews
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION reviews_stats_deleted();
CREATE TRIGGER reviews_stats_deleting BEFORE DELETE ON reviews
    FOR EACH ROW EXECUTE FUNCTION reviews_stats_deleting();

-- characteristic_reviews: counted while their review is visible (a review deleted in the same
-- statement is gone, and was handled by `reviews_stats_deleting`).
CREATE FUNCTION characteristic_reviews_stats_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM characteristic_stats_add(ARRAY(
        SELECT (n.characteristic_id, n.value, 1)::characteristic_delta
        FROM new_rows n JOIN reviews r ON r.id = n.review_id WHERE NOT r.reported));
    RETURN NULL;
END $$;

CREATE FUNCTION characteristic_reviews_stats_updated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM characteristic_stats_add(ARRAY(
        SELECT d FROM (
            SELECT (o.characteristic_id, -o.value, -1)::characteristic_delta AS d, o.review_id FROM old_rows o
            UNION ALL
            SELECT (n.characteristic_id, n.value, 1)::characteristic_delta, n.review_id FROM new_rows n) x
        JOIN reviews r ON r.id = x.review_id WHERE NOT r.reported));
    RETURN NULL;
END $$;

CREATE FUNCTION characteristic_reviews_stats_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM characteristic_stats_add(ARRAY(
        SELECT (o.characteristic_id, -o.value, -1)::characteristic_delta
        FROM old_rows o JOIN reviews r ON r.id = o.review_id WHERE NOT r.reported));
    RETURN NULL;
END $$;

CREATE TRIGGER characteristic_reviews_stats_inserted AFTER INSERT ON characteristic_reviews
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION characteristic_reviews_stats_inserted();
CREATE TRIGGER characteristic_reviews_stats_updated AFTER UPDATE ON characteristic_reviews
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION characteristic_reviews_stats_updated();
CREATE TRIGGER characteristic_reviews_stats_deleted AFTER DELETE ON characteristic_reviews
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION characteristic_reviews_stats_deleted();

-- Both summaries from scratch: the importer (which loads with these triggers disabled) and this
-- migration on existing data. DELETE, not TRUNCATE, so readers of the summaries are not blocked.
CREATE FUNCTION review_stats_rebuild() RETURNS void LANGUAGE sql AS $$
    DELETE FROM song_review_stats;
    DELETE FROM characteristic_stats;
    INSERT INTO song_review_stats
    SELECT song_id, count(*) FILTER (WHERE rating = 1), count(*) FILTER (WHERE rating = 2),
           count(*) FILTER (WHERE rating = 3), count(*) FILTER (WHERE rating = 4),
           count(*) FILTER (WHERE rating = 5),
           count(*) FILTER (WHERE NOT recommend), count(*) FILTER (WHERE recommend)
    FROM reviews WHERE NOT reported GROUP BY song_id;
    INSERT INTO characteristic_stats
    SELECT cr.characteristic_id, sum(cr.value), count(*)
    FROM characteristic_reviews cr JOIN reviews r ON r.id = cr.review_id
    WHERE NOT r.reported GROUP BY cr.characteristic_id;
$$;

SELECT review_stats_rebuild();
