-- The number of rows in which the review summaries (song_review_stats, characteristic_stats)
-- differ from a recount of the visible reviews: 0 when they are exact. Used by the tests as an
-- oracle independent of the triggers and of review_stats_rebuild().
WITH want_songs AS (
    SELECT song_id, count(*) FILTER (WHERE rating = 1) AS r1, count(*) FILTER (WHERE rating = 2) AS r2,
           count(*) FILTER (WHERE rating = 3) AS r3, count(*) FILTER (WHERE rating = 4) AS r4,
           count(*) FILTER (WHERE rating = 5) AS r5,
           count(*) FILTER (WHERE NOT recommend) AS no, count(*) FILTER (WHERE recommend) AS yes
    FROM reviews WHERE NOT reported GROUP BY song_id),
have_songs AS (
    SELECT song_id, rating_1, rating_2, rating_3, rating_4, rating_5, recommended_false, recommended_true
    FROM song_review_stats
    WHERE (rating_1, rating_2, rating_3, rating_4, rating_5, recommended_false, recommended_true)
          <> (0, 0, 0, 0, 0, 0, 0)),
want_chars AS (
    SELECT cr.characteristic_id, sum(cr.value)::bigint AS total, count(*) AS n
    FROM characteristic_reviews cr JOIN reviews r ON r.id = cr.review_id
    WHERE NOT r.reported GROUP BY cr.characteristic_id),
have_chars AS (
    SELECT characteristic_id, value_sum, value_count FROM characteristic_stats
    WHERE (value_sum, value_count) <> (0, 0))
SELECT (SELECT count(*) FROM (SELECT * FROM want_songs EXCEPT SELECT * FROM have_songs) a)
     + (SELECT count(*) FROM (SELECT * FROM have_songs EXCEPT SELECT * FROM want_songs) b)
     + (SELECT count(*) FROM (SELECT * FROM want_chars EXCEPT SELECT * FROM have_chars) c)
     + (SELECT count(*) FROM (SELECT * FROM have_chars EXCEPT SELECT * FROM want_chars) d)
