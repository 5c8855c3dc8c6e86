#!/usr/bin/env bash
# Benchmarks of the player service on this machine (load generator included):
#  1. seeding rate into the embedded engine (player-seed, in-process engine, snapshot saved);
#  2. GET /songs/{id} over random ids at a fixed rate, cache warm (Redis and the near cache, every
#     id read twice first)
#     and cache cold (no Redis reachable: every read goes to CQL: the song row, its like rows and its
#     play rows), against the cql-engine server loaded with the seeded snapshot.
#
# Usage: loadtest/player/bench.sh [songs] [warm_rate] [cold_rate] [seconds]
#        (defaults: 100000 15000 5000 20)
# Needs: Redis as for the tests, and oha (`cargo install oha --locked`).
set -euo pipefail
cd "$(dirname "$0")/../.."
songs=${1:-100000}
warm_rate=${2:-15000}
cold_rate=${3:-5000}
secs=${4:-20}
out=loadtest/out/player
mkdir -p "$out"
cargo build --release -q -p player -p cql-engine

echo "== seeding $songs songs into the embedded engine"
APP__TELEMETRY__LOG_LEVEL=warn /usr/bin/time -f "peak RSS %M KB, wall %e s" \
  target/release/player-seed --count "$songs" --state-file "$out/songs.ron" 2>&1 | tail -n 3 | tee "$out/seed.txt"

target/release/cql-engine --listen 127.0.0.1:19042 --state-file "$out/songs.ron" > "$out/engine.log" 2>&1 &
engine=$!
for _ in $(seq 1 600); do grep -q listening "$out/engine.log" && break; sleep 0.5; done

player_pid=""
start_player() { # $1 = redis url
  APP__SERVER__PORT=18082 APP__CQL__CONTACT_POINTS=127.0.0.1:19042 APP__CQL__AWAIT_SCHEMA_AGREEMENT=false \
  APP__REDIS__URL="$1" APP__REDIS__KEY_PREFIX="bench:$(date +%s%N):" APP__TELEMETRY__LOG_LEVEL=error \
    target/release/player > "$out/player.log" 2>&1 &
  player_pid=$!
  for _ in $(seq 1 100); do curl -fs localhost:18082/health/ready >/dev/null && return; sleep 0.2; done
  echo "player did not become ready"; exit 1
}
stop_player() { kill "$player_pid" 2>/dev/null || true; wait "$player_pid" 2>/dev/null || true; }
trap 'stop_player; kill $engine 2>/dev/null || true' EXIT

# Ids drawn uniformly from 1..N (a URL file; oha picks one at random per request).
seq 1 "$songs" | sed "s|^|http://localhost:18082/songs/|" > "$out/urls.txt"

echo "== cache warm: every song read twice (the first fills Redis, the second the near cache)"
start_player redis://127.0.0.1:6379/0
python3 loadtest/lib/fill.py "$out/urls.txt" 4
python3 loadtest/lib/fill.py "$out/urls.txt" 4
echo "== GET /songs/{id}, cache warm, $warm_rate req/s for ${secs}s"
oha --no-tui --ipv4 -z "${secs}s" -q "$warm_rate" -c 64 --latency-correction --urls-from-file "$out/urls.txt" | tee "$out/get-warm.txt"
stop_player

echo "== GET /songs/{id}, cache cold (no Redis), $cold_rate req/s for ${secs}s"
start_player redis://127.0.0.1:1/0
oha --no-tui --ipv4 -z "${secs}s" -q "$cold_rate" -c 64 --latency-correction --urls-from-file "$out/urls.txt" | tee "$out/get-cold.txt"
