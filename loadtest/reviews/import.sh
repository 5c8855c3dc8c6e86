#!/usr/bin/env bash
# Benchmark of `reviews import` on the full-size legacy dataset (5,774,952 reviews, ~2.74 M photos,
# ~3.35 M characteristics, ~19.3 M characteristic ratings, 0.1 % dirty rows), into a fresh database.
#
#  1. builds the release binary;
#  2. generates the dataset with `reviews generate` unless DIR already holds one (expected.json);
#  3. drops and re-creates DATABASE, imports DIR into it under /usr/bin/time -v (the fast path);
#  4. prints wall time, peak RSS, rows/s per table, and checks the database's row counts and the
#     rejects file's counts per reason against the generator's expected.json;
#  5. with AGAIN=1, imports the same files a second time (the incremental path: adds nothing).
#
# Usage: loadtest/reviews/import.sh [DIR] [DATABASE]
#        (defaults: /tmp/reviews-full audiostorm_reviews_bench)
# Needs: PostgreSQL as for the tests (127.0.0.1:5432, user postgres), psql, python3, /usr/bin/time
# (`apt-get install -y time`). Output lands in loadtest/out/reviews/.
set -euo pipefail
cd "$(dirname "$0")/../.."
dir=${1:-/tmp/reviews-full}
db=${2:-audiostorm_reviews_bench}
out=loadtest/out/reviews
mkdir -p "$out"
export PGHOST=${PGHOST:-127.0.0.1} PGUSER=${PGUSER:-postgres}
cargo build --release -q -p reviews

if [ ! -f "$dir/expected.json" ]; then
  echo "== generating the full-size dataset into $dir"
  target/release/reviews generate "$dir"
fi
du -sh "$dir"/*.csv

echo "== fresh database $db"
psql -q -d postgres -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" -c "CREATE DATABASE $db"

import() { # $1 = label
  echo "== reviews import $dir ($1)"
  APP__POSTGRES__DATABASE=$db APP__TELEMETRY__LOG_LEVEL=warn /usr/bin/time -v \
    target/release/reviews import "$dir" --rejects "$out/import.rejects.csv" \
    > "$out/import-$1.txt" 2> "$out/time-$1.txt"
  cat "$out/import-$1.txt"
  grep -E "Elapsed \(wall clock\)|Maximum resident set size|Percent of CPU" "$out/time-$1.txt"
}

import first

echo "== checking against $dir/expected.json"
psql -At -d "$db" -c "SELECT 'reviews.csv', count(*) FROM reviews
                      UNION ALL SELECT 'reviews_photos.csv', count(*) FROM review_photos
                      UNION ALL SELECT 'characteristics.csv', count(*) FROM characteristics
                      UNION ALL SELECT 'characteristic_reviews.csv', count(*) FROM characteristic_reviews" \
  > "$out/counts.txt"
python3 - "$dir/expected.json" "$out/counts.txt" "$out/import.rejects.csv" <<'EOF'
import collections, csv, json, sys
expected = json.load(open(sys.argv[1]))["files"]
rows = dict(line.strip().split("|") for line in open(sys.argv[2]) if line.strip())
rejects = collections.Counter((r["file"], r["reason"]) for r in csv.DictReader(open(sys.argv[3])))
ok = True
for name, e in expected.items():
    got = int(rows[name])
    flag = "ok" if got == e["accepted"] else "MISMATCH"
    ok &= got == e["accepted"]
    print(f"{name:28} rows in table {got:>10}  expected {e['accepted']:>10}  {flag}")
    for reason, n in sorted(e["rejected"].items()):
        if n or rejects[(name, reason)]:
            flag = "ok" if rejects[(name, reason)] == n else "MISMATCH"
            ok &= rejects[(name, reason)] == n
            print(f"  {reason:26} rejected {rejects[(name, reason)]:>8}  expected {n:>8}  {flag}")
extra = {k: v for k, v in rejects.items() if k[1] not in expected[k[0]]["rejected"]}
if extra:
    ok = False
    print("unexpected reasons:", extra)
print("all counts as expected" if ok else "COUNTS DIFFER")
EOF

if [ "${AGAIN:-0}" = 1 ]; then
  import second
fi
