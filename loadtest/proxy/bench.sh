#!/usr/bin/env bash
# Benchmark of the proxy against nginx, in front of the same two user-service replicas, on this
# machine (load generator included):
#  - GET /users/{id} over 10,000 users with a warm cache, ids drawn uniformly from a URL file;
#  - three targets, one after the other, with the same backends: direct (the URL file alternates
#    the two replicas, oha draws from it at random), nginx (from apt, config generated below:
#    upstream block with both replicas, keepalive 512 (idle connections kept per worker: ours
#    keeps up to 256 per replica), HTTP/1.1, `Connection ""`, round robin, the same forwarded
#    headers, request id and a `traceparent` as ours sends, worker_processes 2, no access log)
#    and our proxy (release build, 2 runtime threads); with PROXY_BASELINE, a fourth: another
#    build of our proxy (see below);
#  - for each offered rate, each target at that fixed rate with latency correction
#    (`oha -z SECS -q RATE -c 64 --latency-correction`), then each target unthrottled
#    (`oha -z MAX_SECS -c 64`) for the maximum throughput;
#  - all of that ROUNDS times, targets interleaved and their order rotated each round, so a burst
#    of load from other work on the machine hits all of them alike rather than one; the summary
#    gives every round, the medians, and per round how ours compares with nginx.
# Raw oha output (JSON) lands in loadtest/out/proxy/, the summary on stdout and in
# loadtest/out/proxy/summary.md.
#
# With PIN=1, the proxies get a core of their own: ours (1 runtime thread), nginx
# (worker_processes 1) and the baseline run on CPU 1, the generator and the replicas on CPU 0 (for
# direct access as well). That is the setup the overhead target assumes (a proxy on cores of its
# own), in miniature, and it keeps the generator's and the replicas' work off the proxy's core.
# Every run also records the CPU time each proxy spent (user + system, from /proc) per request.
#
# Usage: [PIN=1] [PROXY_BASELINE=binary] loadtest/proxy/bench.sh [rates] [seconds] [max_seconds] [rounds]
#        (defaults: "5000 10000" 20 10 1)
# Run it under the machine's benchmark lock: flock /tmp/bench.lock loadtest/proxy/bench.sh
# Needs: PostgreSQL and Redis as for the tests, oha (`cargo install oha --locked`), nginx
# (`apt-get install -y nginx`; the script runs its own instance on port 18090, not the system's).
set -euo pipefail
cd "$(dirname "$0")/../.."
rates=${1:-"5000 10000"}
secs=${2:-20}
max_secs=${3:-10}
rounds=${4:-1}
replica_ports=(18181 18182)
proxy_port=18080
nginx_port=18090
db="bench_proxy_$(date +%s)"
out=loadtest/out/proxy
rm -rf "$out" && mkdir -p "$out/nginx"
if [ "${PIN:-}" = 1 ]; then
  on_generator_cpus=(taskset -c 0)
  on_proxy_cpus=(taskset -c 1)
  proxy_workers=1
else
  on_generator_cpus=()
  on_proxy_cpus=()
  proxy_workers=2
fi

cargo build --release -q -p user -p proxy
# Two user-service replicas sharing one database and one Redis key prefix, one worker each.
source loadtest/proxy/replicas.sh
paste -d '\n' "$out/replica-${replica_ports[0]}.urls" "$out/replica-${replica_ports[1]}.urls" \
  > "$out/direct.urls"
sed "s|^|http://127.0.0.1:$nginx_port/users/|" <<<"$ids" > "$out/nginx.urls"

# Our proxy: every pool on the two replicas (only /users is measured; the other pools' probes
# then hit them instead of whatever listens on the default ports).
upstreams="127.0.0.1:${replica_ports[0]},127.0.0.1:${replica_ports[1]}"
start_proxy() { # $1 = binary, $2 = port, $3 = target name (its URL file and log)
  sed "s|^|http://127.0.0.1:$2/users/|" <<<"$ids" > "$out/$3.urls"
  APP__SERVER__PORT=$2 APP__SERVER__HOST=127.0.0.1 APP__TELEMETRY__LOG_LEVEL=warn \
    APP__POOLS__USER=$upstreams APP__POOLS__PLAYER=$upstreams APP__POOLS__REVIEWS=$upstreams \
    APP__SERVER__WORKERS=$proxy_workers APP__STATIC_FILES__DIR="$out/no-web-client" \
    ${on_proxy_cpus[@]+"${on_proxy_cpus[@]}"} "$1" > "$out/$3.log" 2>&1 &
  pids+=($!)
  wait_ready "localhost:$2/health/ready"
}
start_proxy target/release/proxy "$proxy_port" proxy
proxy_pid=${pids[-1]}
declare -A target_pids=([proxy]=$proxy_pid)

# Optionally a second build of our proxy (PROXY_BASELINE=path/to/binary), measured as a fourth
# target "baseline" in the same rounds: a before/after comparison of two builds on one machine.
# Given a copy of the same build, it is an A/A control: how far two identical proxies' figures
# differ on this machine, the least difference between two builds (or ours and nginx) that a run
# can tell apart from noise.
targets=(direct nginx proxy)
if [ -n "${PROXY_BASELINE:-}" ]; then
  start_proxy "$PROXY_BASELINE" 18084 baseline
  target_pids[baseline]=${pids[-1]}
  targets+=(baseline)
fi

# nginx, configured the same way (nginx.sh).
source loadtest/proxy/nginx.sh
write_nginx_conf "$nginx_port" "$proxy_workers"
nginx -t -e "$PWD/$out/nginx/error.log" -c "$PWD/$out/nginx/nginx.conf" 2>"$out/nginx/test.log" || { cat "$out/nginx/test.log"; exit 1; }
${on_proxy_cpus[@]+"${on_proxy_cpus[@]}"} nginx -e "$PWD/$out/nginx/error.log" -c "$PWD/$out/nginx/nginx.conf" &
pids+=($!)
wait_ready "localhost:$nginx_port/health/live"
target_pids[nginx]="$(cat "$out/nginx/nginx.pid") $(pgrep -P "$(cat "$out/nginx/nginx.pid")" | tr '\n' ' ')"

cpu_ticks() { # $@ = pids: their user + system time, in clock ticks
  local total=0 p
  for p in "$@"; do
    total=$((total + $(awk '{print $14 + $15}' "/proc/$p/stat")))
  done
  echo "$total"
}

sched_stats() { # $@ = pids: over all their threads, nanoseconds spent runnable but waiting for a
  # CPU (the run queue: what a busy machine adds to a proxy's latency), and times put on a CPU
  # (about one per wake-up), from /proc/<pid>/task/<tid>/schedstat
  local p
  for p in "$@"; do cat /proc/"$p"/task/*/schedstat 2>/dev/null || true; done |
    awk '{wait += $2; slices += $3} END {printf "%d %d\n", wait, slices}'
}

run() { # $1 = target, $2 = rate or "max", $3 = round
  local file="$out/$1-$2-r$3.json" rate_args=()
  if [ "$2" = max ]; then
    rate_args=(-z "${max_secs}s")
  else
    rate_args=(-z "${secs}s" -q "$2" --latency-correction)
  fi
  local opens_before opens_after cpu_before=0 sched_before="0 0"
  # shellcheck disable=SC2086 # a list of pids
  if [ "$1" != direct ]; then
    cpu_before=$(cpu_ticks ${target_pids[$1]})
    sched_before=$(sched_stats ${target_pids[$1]})
  fi
  opens_before=$(nstat -az TcpPassiveOpens | awk '/TcpPassiveOpens/ {print $2}')
  ${on_generator_cpus[@]+"${on_generator_cpus[@]}"} oha --no-tui --ipv4 "${rate_args[@]}" -c 64 --output-format json \
    --urls-from-file "$out/$1.urls" > "$file"
  opens_after=$(nstat -az TcpPassiveOpens | awk '/TcpPassiveOpens/ {print $2}')
  echo "$((opens_after - opens_before))" > "$out/$1-$2-r$3.opens"
  # shellcheck disable=SC2086
  if [ "$1" != direct ]; then
    echo "$(($(cpu_ticks ${target_pids[$1]}) - cpu_before)) $(getconf CLK_TCK)" > "$out/$1-$2-r$3.cpu"
    echo "$sched_before $(sched_stats ${target_pids[$1]})" > "$out/$1-$2-r$3.sched"
  fi
  python3 - "$file" "$1" "$2" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
codes, errs = d["statusCodeDistribution"], dict(d["errorDistribution"])
cut = errs.pop("aborted due to deadline", 0)
ok = sum(n for c, n in codes.items() if c.startswith("2"))
bad = sum(n for c, n in codes.items() if not c.startswith("2")) + sum(errs.values())
p = d["latencyPercentiles"]
print(f"{sys.argv[2]:>6} @ {sys.argv[3]:>5}: {d['summary']['requestsPerSec']:9.0f} req/s "
      f"p50 {p['p50']*1000:6.2f} ms  p99 {p['p99']*1000:7.2f} ms  2xx {ok}  errors {bad}  cut off {cut}")
PY
}

for round in $(seq 1 "$rounds"); do
  # The order rotates from round to round, so that no target always runs right after another one
  # (or always last): whatever one run leaves behind (a replica's state, a burst of other work on
  # the machine) falls on each target in turn.
  shift_by=$(((round - 1) % ${#targets[@]}))
  order=("${targets[@]:shift_by}" "${targets[@]:0:shift_by}")
  echo "== round $round: fixed rates ${rates} req/s for ${secs}s each, 64 connections; order ${order[*]}"
  for rate in $rates; do
    for target in "${order[@]}"; do run "$target" "$rate" "$round"; done
  done
  echo "== round $round: unthrottled, ${max_secs}s each, 64 connections"
  for target in "${order[@]}"; do run "$target" max "$round"; done
done

proxy_rss=$(awk '/VmRSS/ {print $2}' "/proc/$proxy_pid/status")
nginx_rss=0
nginx_master=$(cat "$out/nginx/nginx.pid")
for p in "$nginx_master" $(pgrep -P "$nginx_master" || true); do
  nginx_rss=$((nginx_rss + $(awk '/VmRSS/ {print $2}' "/proc/$p/status" 2>/dev/null || echo 0)))
done
echo "RSS after the runs: proxy $((proxy_rss / 1024)) MiB, nginx (master + workers) $((nginx_rss / 1024)) MiB"

python3 - "$out" "$rates" "$rounds" "${targets[@]}" <<'PY' | tee "$out/summary.md"
import json, statistics, sys
out, rates, rounds = sys.argv[1], sys.argv[2].split() + ["max"], int(sys.argv[3])
targets = sys.argv[4:]
def label(rate):
    return "unthrottled" if rate == "max" else f"{int(rate):,} req/s"
def cpu_per_request(path, requests):
    """The proxy's user + system CPU time per request in µs (None for direct access)."""
    try:
        ticks, hz = map(int, open(path).read().split())
    except FileNotFoundError:
        return None
    return ticks / hz * 1e6 / max(requests, 1)
def us(cpu):
    return "–" if cpu is None else f"{cpu:.1f} µs"
def sched_per_request(path, requests):
    """The proxy's run-queue wait per request in µs, and its times put on a CPU per request
    (None, None for direct access)."""
    try:
        w0, s0, w1, s1 = map(int, open(path).read().split())
    except FileNotFoundError:
        return None, None
    n = max(requests, 1)
    return (w1 - w0) / 1e3 / n, (s1 - s0) / n
def waits(wait, slices):
    return "–" if wait is None else f"{wait:.1f} µs, {slices:.2f}"
rows = {}
for r in range(1, rounds + 1):
    print(f"Round {r}:\n")
    print("| offered | target | achieved req/s | p50 | p99 | 2xx | errors | cut off by the deadline | TCP connections accepted (machine-wide) | proxy CPU per request | proxy run-queue wait, times on a CPU, per request |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for rate in rates:
        for t in targets:
            d = json.load(open(f"{out}/{t}-{rate}-r{r}.json"))
            codes, errs = d["statusCodeDistribution"], dict(d["errorDistribution"])
            cut = errs.pop("aborted due to deadline", 0)
            ok = sum(n for c, n in codes.items() if c.startswith("2"))
            bad = sum(n for c, n in codes.items() if not c.startswith("2")) + sum(errs.values())
            p = d["latencyPercentiles"]
            rps = d["summary"]["requestsPerSec"]
            opens = open(f"{out}/{t}-{rate}-r{r}.opens").read().strip()
            cpu = cpu_per_request(f"{out}/{t}-{rate}-r{r}.cpu", ok + bad)
            wait, slices = sched_per_request(f"{out}/{t}-{rate}-r{r}.sched", ok + bad)
            rows.setdefault((rate, t), []).append((rps, p["p50"] * 1000, p["p99"] * 1000, bad, cpu, wait, slices))
            print(f"| {label(rate)} | {t} | {rps:,.0f} | {p['p50']*1000:.2f} ms | {p['p99']*1000:.2f} ms | {ok:,} | {bad} | {cut} | {opens} | {us(cpu)} | {waits(wait, slices)} |")
    m = {t: rows[("max", t)][-1][0] for t in targets}
    print(f"\nUnthrottled: proxy/nginx = {m['proxy']/m['nginx']:.2f}, proxy/direct = "
          f"{m['proxy']/m['direct']:.2f}, nginx/direct = {m['nginx']/m['direct']:.2f}\n")
if rounds > 1:
    print(f"Medians over {rounds} rounds:\n")
    print("| offered | target | achieved req/s | p50 | p99 | errors (all rounds) | proxy CPU per request | proxy run-queue wait, times on a CPU, per request |")
    print("|---|---|---|---|---|---|---|---|")
    for rate in rates:
        for t in targets:
            v = rows[(rate, t)]
            med = lambda i: statistics.median(x[i] for x in v)
            cpu, wait, slices = (None, None, None) if t == "direct" else (med(4), med(5), med(6))
            print(f"| {label(rate)} | {t} | {med(0):,.0f} | {med(1):.2f} ms | {med(2):.2f} ms | {sum(x[3] for x in v)} | {us(cpu)} | {waits(wait, slices)} |")
    def by_round(rate, field, a="proxy", b="nginx"):
        """Per round, `a`'s figure `field` (an index into a row) over `b`'s."""
        return [rows[(rate, a)][i][field] / max(rows[(rate, b)][i][field], 1e-9) for i in range(rounds)]
    def listed(xs):
        return f"{', '.join(f'{x:.2f}' for x in xs)} (median {statistics.median(xs):.2f}"
    ratios, direct = by_round("max", 0), by_round("max", 0, b="direct")
    print(f"\nUnthrottled proxy/nginx by round: {listed(ratios)}); proxy/direct median {statistics.median(direct):.2f}")
    print("\nProxy CPU per request, proxy/nginx by round (below 1: ours spends less):\n")
    for rate in rates:
        print(f"- {label(rate)}: {listed(by_round(rate, 4))})")
    print("\nProxy run-queue wait per request, proxy/nginx by round (below 1: ours waited less for a CPU):\n")
    for rate in rates:
        print(f"- {label(rate)}: {listed(by_round(rate, 5))})")
    print("\np99, proxy/nginx by round (below 1: ours is lower):\n")
    for rate in rates:
        p99 = by_round(rate, 2)
        print(f"- {label(rate)}: {listed(p99)}; ours lower or equal in {sum(x <= 1 for x in p99)} of {rounds})")
    if "baseline" in targets:
        print("\nThis build against the baseline build, by round (throughput: above 1 is faster; p99: below 1 is lower):\n")
        for rate in rates:
            what = "req/s" if rate == "max" else "p99"
            print(f"- {label(rate)}, {what}: {listed(by_round(rate, 0 if rate == 'max' else 2, b='baseline'))})")
PY
