#!/usr/bin/env bash
# AudioStorm on this machine, natively, with one command:
#
#   deploy/local/stack.sh
#
# Builds the release binaries, then starts the embedded CQL engine (the songs database), two
# replicas of each service (user, player, reviews) and the proxy on http://localhost:8080, which
# serves the web client. The first start also creates demo data (users, songs with generated audio,
# a catalogue, reviews); later starts keep everything: PostgreSQL keeps the user and reviews
# databases, the CQL engine saves its snapshot on stop, audio lives under the data directory.
# Ctrl-C (or SIGTERM) stops everything cleanly: the proxy first, the services, the engine last.
#
# Needs: Rust, PostgreSQL (127.0.0.1:5432, user postgres, trust auth), Redis (127.0.0.1:6379),
# ffmpeg (the player's renditions and the demo audio), python3 (the demo data).
# Settings (environment): AUDIOSTORM_DATA (default data/stack), AUDIOSTORM_PORT (default 8080),
# AUDIOSTORM_DEMO=0 to skip the demo data. Logs: $AUDIOSTORM_DATA/logs/<process>.log.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$(pwd)
data=${AUDIOSTORM_DATA:-data/stack}
port=${AUDIOSTORM_PORT:-8080}
demo=${AUDIOSTORM_DEMO:-1}
mkdir -p "$data/logs" "$data/media" "$data/work"
data=$(cd "$data" && pwd)

say() { printf '\033[1m%s\033[0m\n' "$*"; }

for tool in cargo psql redis-cli ffmpeg python3 curl; do
  command -v "$tool" >/dev/null || { echo "stack: $tool is not on the PATH (see the README's requirements)"; exit 1; }
done
pg_isready -h 127.0.0.1 -p 5432 -q || { echo "stack: PostgreSQL does not answer on 127.0.0.1:5432"; exit 1; }
redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1 || { echo "stack: Redis does not answer on 127.0.0.1:6379"; exit 1; }

say "== building (release)"
cargo build --release --locked -p user -p player -p reviews -p proxy -p cql-engine
bin=$root/target/release

# Every process of the stack: started in the background, stopped in reverse order on exit.
pids=()
names=()
stopping=""
stop_all() {
  [ -n "$stopping" ] && return
  stopping=1
  say "== stopping"
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
    kill -TERM "${pids[$i]}" 2>/dev/null || true
    # Each process drains and exits on SIGTERM; the engine saves its snapshot first.
    for _ in $(seq 1 100); do kill -0 "${pids[$i]}" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "${pids[$i]}" 2>/dev/null || true
    wait "${pids[$i]}" 2>/dev/null || true
    echo "   stopped ${names[$i]}"
  done
}
trap 'stop_all; exit 0' INT TERM
trap stop_all EXIT

start() { # $1 = name, then the command; environment variables set by the caller
  local name=$1
  shift
  "$@" >"$data/logs/$name.log" 2>&1 &
  pids+=($!)
  names+=("$name")
}

wait_ready() { # $1 = name, $2 = URL
  for _ in $(seq 1 300); do
    curl -fs -o /dev/null "$2" && return 0
    if ! kill -0 "${pids[-1]}" 2>/dev/null && [ "${names[-1]}" = "$1" ]; then break; fi
    sleep 0.2
  done
  echo "stack: $1 did not become ready; the end of $data/logs/$1.log:"
  tail -n 20 "$data/logs/$1.log"
  exit 1
}

# Shared by every service: the stack's own databases and Redis key prefixes, so it never mixes
# with a service run alone or with the tests.
export APP__TELEMETRY__LOG_FORMAT=${APP__TELEMETRY__LOG_FORMAT:-pretty}
cql=127.0.0.1:19042
jwks=http://127.0.0.1:8101/.well-known/jwks.json

say "== starting the CQL engine on $cql"
start cql-engine "$bin/cql-engine" --listen "$cql" --state-file "$data/songs.ron"
for _ in $(seq 1 300); do grep -q "listening" "$data/logs/cql-engine.log" 2>/dev/null && break; sleep 0.1; done

user_env=(APP__POSTGRES__DATABASE=audiostorm_stack_user APP__REDIS__KEY_PREFIX=stack:user:
          APP__SIGNIN_LIMITS__TRUST_FORWARDED_FOR=true
          APP__AUTH__DEV_KEY_PATH="$data/user-signing-key.pem")
player_env=(APP__CQL__CONTACT_POINTS=$cql APP__CQL__KEYSPACE=audiostorm_stack
            APP__REDIS__KEY_PREFIX=stack:player: APP__AUTH__JWKS_URL=$jwks
            APP__MEDIA__LOCAL_DIR="$data/media" APP__MEDIA__WORK_DIR="$data/work")
reviews_env=(APP__POSTGRES__DATABASE=audiostorm_stack_reviews APP__REDIS__KEY_PREFIX=stack:reviews:
             APP__AUTH__JWKS_URL=$jwks)

say "== starting two replicas of each service"
# The first user replica creates the signing key; the second one reads it.
for n in 1 2; do
  start "user-$n" env "${user_env[@]}" APP__SERVER__PORT=810$n "$bin/user"
  wait_ready "user-$n" "http://127.0.0.1:810$n/health/ready"
done
for n in 1 2; do
  start "player-$n" env "${player_env[@]}" APP__SERVER__PORT=820$n APP__IDS__WORKER_ID=$n "$bin/player"
  wait_ready "player-$n" "http://127.0.0.1:820$n/health/ready"
done
for n in 1 2; do
  start "reviews-$n" env "${reviews_env[@]}" APP__SERVER__PORT=830$n "$bin/reviews"
  wait_ready "reviews-$n" "http://127.0.0.1:830$n/health/ready"
done

say "== starting the proxy on port $port"
start proxy env APP__SERVER__PORT="$port" APP__STATIC_FILES__DIR="$root/web" \
  APP__POOLS__USER=127.0.0.1:8101,127.0.0.1:8102 \
  APP__POOLS__PLAYER=127.0.0.1:8201,127.0.0.1:8202 \
  APP__POOLS__REVIEWS=127.0.0.1:8301,127.0.0.1:8302 \
  "$bin/proxy"
wait_ready proxy "http://127.0.0.1:$port/health/ready"

if [ "$demo" = 1 ] && [ ! -f "$data/demo.done" ]; then
  say "== first start: creating the demo data"
  python3 deploy/local/demo.py --url "http://127.0.0.1:$port" --work "$data/demo" \
    --reviews-bin "$bin/reviews" --reviews-database audiostorm_stack_reviews
  touch "$data/demo.done"
fi

say "AudioStorm is running: http://localhost:$port   (Ctrl-C stops it; logs in $data/logs)"
[ -f "$data/demo/accounts.txt" ] && cat "$data/demo/accounts.txt"
# Wait until a process dies or a signal arrives.
wait -n "${pids[@]}" || true
say "stack: a process exited; see $data/logs"
