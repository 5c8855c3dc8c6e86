#!/usr/bin/env bash
# Benchmark of the user service on this machine (load generator included):
#  1. GET /users/{id} over random ids of 10,000 users with a warm cache (every id read once first),
#     at a fixed rate (oha -q), ids drawn uniformly from a URL file;
#  2. one sign-in's latency (argon2id at OWASP parameters), sequentially.
#
# Usage: loadtest/user/bench.sh [rate] [seconds]      (defaults: 15000 20)
# Needs: PostgreSQL and Redis as for the tests, and oha (`cargo install oha --locked`).
set -euo pipefail
cd "$(dirname "$0")/../.."
rate=${1:-15000}
secs=${2:-20}
port=18081
db="bench_user_$(date +%s)"
out=loadtest/out/user
mkdir -p "$out"

cargo build --release -q -p user
export APP__SERVER__PORT=$port APP__POSTGRES__DATABASE=$db APP__REDIS__KEY_PREFIX="bench:$db:" \
  APP__TELEMETRY__LOG_LEVEL=warn APP__AUTH__DEV_KEY_PATH="$out/key.pem" \
  APP__SIGNIN_LIMITS__PER_ACCOUNT=100000 APP__SIGNIN_LIMITS__PER_ADDRESS=100000
target/release/user > "$out/service.log" 2>&1 &
pid=$!
cleanup() {
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  psql -h 127.0.0.1 -U postgres -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null
}
trap cleanup EXIT
for _ in $(seq 1 50); do curl -fs "localhost:$port/health/ready" >/dev/null && break; sleep 0.2; done

# One real account (for sign-in), then 10,000 rows straight into the table (argon2 would make
# signing them up through the API the slowest part of the benchmark).
curl -fs "localhost:$port/auth/signup" -H 'content-type: application/json' \
  -d '{"username":"bench","email":"bench@example.com","password":"benchmark password","display_name":"Bench"}' >/dev/null
psql -h 127.0.0.1 -U postgres -d "$db" -qc "
  INSERT INTO users (username, email, password_hash, display_name, bio)
  SELECT 'user' || g, 'user' || g || '@example.com', 'x', 'User ' || g, 'Bio of user ' || g
  FROM generate_series(2, 10001) g; ANALYZE users;"

seq 1 10001 | sed "s|^|http://localhost:$port/users/|" > "$out/urls.txt"
echo "warming the cache: every id once"
python3 loadtest/lib/fill.py "$out/urls.txt" 4

echo "GET /users/{id}, warm cache, $rate req/s for ${secs}s"
oha --no-tui --ipv4 -z "${secs}s" -q "$rate" -c 64 --latency-correction \
  --urls-from-file "$out/urls.txt" | tee "$out/get-user.txt"

echo "POST /auth/signin, one at a time, 40 requests"
oha --no-tui --ipv4 -n 40 -c 1 -m POST -H 'content-type: application/json' \
  -d '{"login":"bench","password":"benchmark password"}' "http://127.0.0.1:$port/auth/signin" | tee "$out/signin.txt"
