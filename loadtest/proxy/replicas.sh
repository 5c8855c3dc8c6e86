# Sourced by the proxy benchmarks: two user-service replicas (release build, one actix worker
# each) sharing one new database and one Redis key prefix, 10,000 users inserted and each read once
# through each replica (warm near caches). Expects `replica_ports` (two ports), `db` and `out` set,
# the release binaries built, and the caller's `pids` array and EXIT trap (see `cleanup` below);
# `on_generator_cpus` (optional) is a command prefix the replicas run under (e.g. `taskset -c 0`).
# Leaves the user ids in `ids`.

pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  psql -h 127.0.0.1 -U postgres -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null
}
trap cleanup EXIT
wait_ready() { # $1 = url
  for _ in $(seq 1 100); do curl -fs "$1" >/dev/null && return; sleep 0.2; done
  echo "$1 did not answer"; exit 1
}

for port in "${replica_ports[@]}"; do
  APP__SERVER__PORT=$port APP__SERVER__WORKERS=1 APP__POSTGRES__DATABASE=$db \
    APP__REDIS__KEY_PREFIX="bench:$db:" APP__TELEMETRY__LOG_LEVEL=warn \
    APP__AUTH__DEV_KEY_PATH="$out/key.pem" ${on_generator_cpus[@]+"${on_generator_cpus[@]}"} \
    target/release/user > "$out/user-$port.log" 2>&1 &
  pids+=($!)
  wait_ready "localhost:$port/health/ready"
done
psql -h 127.0.0.1 -U postgres -d "$db" -qc "
  INSERT INTO users (username, email, password_hash, display_name, bio)
  SELECT 'user' || g, 'user' || g || '@example.com', 'x', 'User ' || g, 'Bio of user ' || g
  FROM generate_series(1, 10000) g; ANALYZE users;"

ids=$(psql -h 127.0.0.1 -U postgres -d "$db" -tAc "SELECT id FROM users ORDER BY id")
for port in "${replica_ports[@]}"; do
  sed "s|^|http://127.0.0.1:$port/users/|" <<<"$ids" > "$out/replica-$port.urls"
  echo "warming replica $port: every id once"
  python3 loadtest/lib/fill.py "$out/replica-$port.urls" 4
done
