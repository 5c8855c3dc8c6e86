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
# Usage: loadtest/proxy/instructions.sh [requests] [proxy binary ...]
#        (defaults: 10000, target/release/proxy built from this checkout)
# Example, before/after: cp target/release/proxy /tmp/proxy-before; (change, build);
#        loadtest/proxy/instructions.sh 10000 /tmp/proxy-before target/release/proxy
# Needs: valgrind, oha, PostgreSQL and Redis as for the tests. Ports 18281, 18282, 18283.
set -euo pipefail
cd "$(dirname "$0")/../.."
requests=${1:-10000}
shift || true
binaries=("$@")
[ ${#binaries[@]} -eq 0 ] && binaries=(target/release/proxy)
replica_ports=(18281 18282)
proxy_port=18283
db="instr_proxy_$(date +%s)"
out=loadtest/out/proxy-instructions
rm -rf "$out" && mkdir -p "$out"

cargo build --release -q -p user -p proxy
source loadtest/proxy/replicas.sh
sed "s|^|http://127.0.0.1:$proxy_port/users/|" <<<"$ids" > "$out/proxy.urls"

upstreams="127.0.0.1:${replica_ports[0]},127.0.0.1:${replica_ports[1]}"
for binary in "${binaries[@]}"; do
  rm -f "$out"/callgrind.out*
  APP__SERVER__PORT=$proxy_port APP__SERVER__HOST=127.0.0.1 APP__SERVER__WORKERS=2 \
    APP__TELEMETRY__LOG_LEVEL=warn APP__POOLS__USER=$upstreams APP__POOLS__PLAYER=$upstreams \
    APP__POOLS__REVIEWS=$upstreams APP__STATIC_FILES__DIR="$out/no-web-client" \
    valgrind --tool=callgrind --callgrind-out-file="$out/callgrind.out" "$binary" \
    > "$out/valgrind.log" 2>&1 &
  vg=$!
  wait_ready "localhost:$proxy_port/health/ready"
  oha --no-tui --ipv4 -n 2000 -c 16 --urls-from-file "$out/proxy.urls" > /dev/null
  callgrind_control -z "$vg" > /dev/null
  oha --no-tui --ipv4 -n "$requests" -c 16 --output-format json \
    --urls-from-file "$out/proxy.urls" > "$out/oha.json"
  callgrind_control -d "$vg" > /dev/null
  kill -INT "$vg"; wait "$vg" || true
  python3 - "$out" "$requests" "$binary" <<'PY'
import glob, json, sys
out, n, binary = sys.argv[1], int(sys.argv[2]), sys.argv[3]
codes = json.load(open(f"{out}/oha.json"))["statusCodeDistribution"]
# The dump taken right after the run holds everything since the counters were zeroed; the one
# written at exit adds the few instructions between the two.
total = 0
for f in glob.glob(f"{out}/callgrind.out*"):
    for line in open(f):
        if line.startswith(("summary:", "totals:")):
            total += int(line.split()[1])
            break
print(f"{binary}: {total / n:,.0f} instructions per request ({n} requests, status codes {codes})")
PY
done
