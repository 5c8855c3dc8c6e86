#!/usr/bin/env bash
# Instructions the proxy executes per proxied request, counted by valgrind's callgrind: unlike
# time, the count does not depend on what else the machine is doing, so a small change to the
# request path can be compared before and after on a shared machine (run both binaries in one
# go). It counts user-space instructions only: system calls and cache misses do not show.
#
# Same backends as bench.sh (two user-service replicas, GET /users/{id} over 10,000 warm ids);
# each binary runs under callgrind (2 worker threads), gets 2,000 warm-up requests, then the
# counters are zeroed and REQUESTS requests are sent (oha, 16 connections); the total is divided
# by REQUESTS.
#
# RATE=N sends the requests at N per second instead of as fast as they are answered: at a low
# rate (RATE=400) each request arrives alone, so what the proxy pays per wake-up (parking and
# waking its runtime, reading the clock) is counted in full rather than shared by a batch.
# WORKERS sets the proxy's worker threads (default 2). NGINX=1 counts nginx (from apt; one
# worker process, `master_process off`, configured as in bench.sh) after the binaries, the same
# way.
#
# Usage: [RATE=400] [WORKERS=1] [NGINX=1] loadtest/proxy/instructions.sh [requests] [proxy binary ...]
#        (defaults: 10000, target/release/proxy built from this checkout)
# Example, before/after: cp target/release/proxy /tmp/proxy-before; (change, build);
#        loadtest/proxy/instructions.sh 10000 /tmp/proxy-before target/release/proxy
# Needs: valgrind, oha, PostgreSQL and Redis as for the tests (and nginx for NGINX=1). Ports
# 18281, 18282, 18283 (18284 for nginx).
set -euo pipefail
cd "$(dirname "$0")/../.."
requests=${1:-10000}
shift || true
binaries=("$@")
[ ${#binaries[@]} -eq 0 ] && binaries=(target/release/proxy)
replica_ports=(18281 18282)
proxy_port=18283
nginx_port=18284
rate_args=()
[ -n "${RATE:-}" ] && rate_args=(-q "$RATE" --latency-correction)
db="instr_proxy_$(date +%s)"
out=loadtest/out/proxy-instructions
rm -rf "$out" && mkdir -p "$out"

cargo build --release -q -p user -p proxy
source loadtest/proxy/replicas.sh
sed "s|^|http://127.0.0.1:$proxy_port/users/|" <<<"$ids" > "$out/proxy.urls"

upstreams="127.0.0.1:${replica_ports[0]},127.0.0.1:${replica_ports[1]}"
count() { # $1 = what was measured, $2 = its pid under callgrind, $3 = its URL file
  oha --no-tui --ipv4 -n 2000 -c 16 "${rate_args[@]}" --urls-from-file "$3" > /dev/null
  callgrind_control -z "$2" > /dev/null
  oha --no-tui --ipv4 -n "$requests" -c 16 "${rate_args[@]}" --output-format json \
    --urls-from-file "$3" > "$out/oha.json"
  callgrind_control -d "$2" > /dev/null
  python3 - "$out" "$requests" "$1" "${RATE:-}" <<'PY'
import glob, json, sys
out, n, what, rate = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
codes = json.load(open(f"{out}/oha.json"))["statusCodeDistribution"]
# The dump taken right after the run holds everything since the counters were zeroed (the one
# written at exit, with the few instructions after it and the shutdown, is not counted).
total = 0
for f in glob.glob(f"{out}/callgrind.out.*"):
    for line in open(f):
        if line.startswith(("summary:", "totals:")):
            total += int(line.split()[1])
            break
pace = f"at {rate} req/s" if rate else "as fast as answered"
print(f"{what}: {total / n:,.0f} instructions per request ({n} requests {pace}, status codes {codes})")
PY
}

for binary in "${binaries[@]}"; do
  rm -f "$out"/callgrind.out*
  APP__SERVER__PORT=$proxy_port APP__SERVER__HOST=127.0.0.1 APP__SERVER__WORKERS=${WORKERS:-2} \
    APP__TELEMETRY__LOG_LEVEL=warn APP__POOLS__USER=$upstreams APP__POOLS__PLAYER=$upstreams \
    APP__POOLS__REVIEWS=$upstreams APP__STATIC_FILES__DIR="$out/no-web-client" \
    valgrind --tool=callgrind --callgrind-out-file="$out/callgrind.out" "$binary" \
    > "$out/valgrind.log" 2>&1 &
  vg=$!
  wait_ready "localhost:$proxy_port/health/ready"
  count "$binary" "$vg" "$out/proxy.urls"
  kill -INT "$vg"; wait "$vg" || true
done

if [ "${NGINX:-}" = 1 ]; then
  # bench.sh's configuration, with one worker process run in the foreground (no master), so
  # that callgrind follows the process that serves.
  source loadtest/proxy/nginx.sh
  write_nginx_conf "$nginx_port" 1
  sed -i '1i master_process off;' "$out/nginx/nginx.conf"
  sed "s|^|http://127.0.0.1:$nginx_port/users/|" <<<"$ids" > "$out/nginx.urls"
  rm -f "$out"/callgrind.out*
  valgrind --tool=callgrind --callgrind-out-file="$out/callgrind.out" \
    nginx -e "$PWD/$out/nginx/error.log" -c "$PWD/$out/nginx/nginx.conf" > "$out/valgrind.log" 2>&1 &
  vg=$!
  wait_ready "localhost:$nginx_port/health/live"
  count "nginx $(nginx -v 2>&1 | sed 's|.*/||')" "$vg" "$out/nginx.urls"
  kill -QUIT "$vg"; wait "$vg" || true
fi
