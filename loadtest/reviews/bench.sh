#!/usr/bin/env bash
# Benchmarks of the reviews service's API on this machine (load generator included), on the
# full-size synthetic legacy dataset and on one 10x smaller (same reviews per song):
#  1. GET /reviews?song_id=N and GET /reviews/meta?song_id=N at a fixed rate over random songs,
#     cache cold (no Redis reachable: every read is a PostgreSQL query) and cache warm (Redis and
#     the near cache, a random sample of songs read once first, then read at random);
#  2. POST /reviews at a fixed rate, each by a distinct signed-in user about a random song.
# The datasets are generated (`reviews generate`) and imported (`reviews import`) on first use
# into the databases reviews_bench_full / reviews_bench_small, and kept for the next run.
#
# Usage: loadtest/reviews/bench.sh [get_rate] [post_rate] [seconds]   (defaults: 11000 1000 20)
# Needs: PostgreSQL and Redis as for the tests, oha (`cargo install oha --locked`), ~4 GB of disk.
set -euo pipefail
cd "$(dirname "$0")/../.."
get_rate=${1:-11000}
post_rate=${2:-1000}
secs=${3:-20}
port=18083
out=loadtest/out/reviews
mkdir -p "$out"
cargo build --release -q -p reviews --bin reviews --example post_load
export APP__TELEMETRY__LOG_LEVEL=error

prepare() { # $1 = name, $2... = generator arguments
  local name=$1; shift
  local dir="$out/$name" db="reviews_bench_$name"
  if [ ! -f "$dir/characteristic_reviews.csv" ]; then
    echo "== generating the $name dataset ($*)"
    target/release/reviews generate "$dir" "$@"
  fi
  if [ "$(psql -h 127.0.0.1 -U postgres -d "$db" -tAc 'SELECT count(*) > 0 FROM reviews' 2>/dev/null)" != "t" ]; then
    echo "== importing the $name dataset into $db"
    APP__POSTGRES__DATABASE=$db /usr/bin/time -f "import: wall %e s, peak RSS %M KB" \
      target/release/reviews import "$dir" --rejects "$out/$name.rejects.csv" 2>&1 | tail -n 40
  fi
}

pid=""
start_service() { # $1 = database, $2 = redis url
  APP__SERVER__PORT=$port APP__POSTGRES__DATABASE=$1 APP__REDIS__URL=$2 \
  APP__REDIS__KEY_PREFIX="bench:$(date +%s%N):" target/release/reviews > "$out/service.log" 2>&1 &
  pid=$!
  for _ in $(seq 1 100); do curl -fs "localhost:$port/health/ready" >/dev/null && return; sleep 0.2; done
  echo "the reviews service did not become ready"; exit 1
}
stop_service() { [ -n "$pid" ] && { kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; }; pid=""; }
trap stop_service EXIT

load() { # $1 = label, $2 = url file, $3 = rate
  echo "== $1, $3 req/s for ${secs}s"
  oha --no-tui --ipv4 -z "${secs}s" -q "$3" -c 64 --latency-correction --urls-from-file "$2" \
    | tee "$out/$(echo "$1" | tr ' /?=,' '_____').txt" \
    | grep -E 'Success rate|Requests/sec|50.00%|99.00%|\[[0-9]{3}\]|Error' || true
}

bench_reads() { # $1 = name, $2 = songs
  local name=$1 songs=$2 db="reviews_bench_$1"
  shuf -i "1-$songs" -n 200000 --random-source=<(yes) > "$out/$name.songs"
  sed "s|^|http://localhost:$port/reviews?song_id=|" "$out/$name.songs" > "$out/$name-list.urls"
  sed "s|^|http://localhost:$port/reviews/meta?song_id=|" "$out/$name.songs" > "$out/$name-meta.urls"
  start_service "$db" redis://127.0.0.1:1/0
  load "$name GET /reviews cold" "$out/$name-list.urls" "$get_rate"
  load "$name GET /reviews/meta cold" "$out/$name-meta.urls" "$get_rate"
  stop_service
  start_service "$db" redis://127.0.0.1:6379/0
  for kind in list meta; do
    head -n 50000 "$out/$name-$kind.urls" > "$out/$name-$kind-warm.urls"
    python3 loadtest/lib/fill.py "$out/$name-$kind-warm.urls" 4
  done
  load "$name GET /reviews warm" "$out/$name-list-warm.urls" "$get_rate"
  load "$name GET /reviews/meta warm" "$out/$name-meta-warm.urls" "$get_rate"
  echo "== $name GET /reviews warm, unthrottled (64 connections) for 10s"
  oha --no-tui --ipv4 -z 10s -c 64 --urls-from-file "$out/$name-list-warm.urls" \
    | tee "$out/$name-list-max.txt" | grep -E 'Success rate|Requests/sec|50.00%|99.00%|\[[0-9]{3}\]' || true
  stop_service
}

prepare full
prepare small --reviews 577495 --songs 100000
bench_reads full 1000000
bench_reads small 100000

echo "== POST /reviews on the full dataset"
APP__POSTGRES__DATABASE=reviews_bench_full APP__REDIS__KEY_PREFIX="bench:post:$(date +%s):" \
  target/release/examples/post_load target/release/reviews "$port" "$post_rate" 10 1000000 \
  | tee "$out/post.txt"
