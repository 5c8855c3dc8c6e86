#!/usr/bin/env bash
# Benchmarks of the player's audio on this machine (everything local: embedded CQL engine, local
# object store in loadtest/out/audio/media, Redis, the user service for a real access token):
#  1. upload-to-ready time of a 5-minute MP3 (320 kbit/s) and a 5-minute FLAC: from the start of
#     the upload until GET /songs/{id} says `ready` (validation, storage, decode, waveform, the
#     128 kbit/s MP3 rendition);
#  2. 200 concurrent range streams (`Range: bytes=0-`, the whole 5-minute rendition each) for
#     N seconds: aggregate MB/s, and the player's RSS before and at its peak.
#
# Usage: loadtest/audio/bench.sh [seconds]     (default 20)
# Needs: PostgreSQL and Redis as for the tests, ffmpeg, and oha (`cargo install oha --locked`).
set -euo pipefail
cd "$(dirname "$0")/../.."
secs=${1:-20}
out=loadtest/out/audio
rm -rf "$out" && mkdir -p "$out"
db="bench_audio_$(date +%s)"
cargo build --release -q -p player -p user

echo "== fixtures: 5 minutes of music-like audio (a chord over pink noise)"
src="sine=f=220:d=300,volume=0.3[a];sine=f=277:d=300,volume=0.2[b];anoisesrc=d=300:c=pink:a=0.1[c];[a][b][c]amix=inputs=3"
ffmpeg -nostdin -v error -y -filter_complex "$src" -ac 2 -ar 44100 -c:a libmp3lame -b:a 320k "$out/song.mp3"
ffmpeg -nostdin -v error -y -filter_complex "${src/f=220/f=221}" -ac 2 -ar 44100 -c:a flac "$out/song.flac"
ls -l "$out/song.mp3" "$out/song.flac"

APP__SERVER__PORT=18181 APP__POSTGRES__DATABASE=$db APP__REDIS__KEY_PREFIX="bench:$db:user:" \
  APP__TELEMETRY__LOG_LEVEL=warn APP__AUTH__DEV_KEY_PATH="$out/key.pem" \
  target/release/user > "$out/user.log" 2>&1 &
user=$!
APP__SERVER__PORT=18182 APP__REDIS__KEY_PREFIX="bench:$db:player:" APP__TELEMETRY__LOG_LEVEL=warn \
  APP__AUTH__JWKS_URL=http://127.0.0.1:18181/.well-known/jwks.json \
  APP__MEDIA__LOCAL_DIR="$out/media" APP__MEDIA__WORK_DIR="$out" APP__MEDIA__JOB_POLL_MS=100 \
  target/release/player > "$out/player.log" 2>&1 &
player=$!
cleanup() {
  kill "$player" "$user" 2>/dev/null || true
  wait "$player" "$user" 2>/dev/null || true
  psql -h 127.0.0.1 -U postgres -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null
}
trap cleanup EXIT
for port in 18181 18182; do
  for _ in $(seq 1 100); do curl -fs "localhost:$port/health/ready" >/dev/null && break; sleep 0.2; done
done
curl -fs localhost:18181/auth/signup -H 'content-type: application/json' \
  -d '{"username":"bench","email":"bench@example.com","password":"benchmark password","display_name":"Bench"}' >/dev/null
token=$(curl -fs localhost:18181/auth/signin -H 'content-type: application/json' \
  -d '{"login":"bench","password":"benchmark password"}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')

upload_to_ready() { # $1 = file
  local id start end state
  id=$(curl -fs localhost:18182/songs -H "authorization: Bearer $token" -H 'content-type: application/json' \
    -d "{\"title\":\"$(basename "$1")\"}" | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
  start=$(date +%s.%N)
  curl -fs -o /dev/null "localhost:18182/songs/$id/audio" -H "authorization: Bearer $token" --data-binary "@$1"
  local accepted
  accepted=$(date +%s.%N)
  while :; do
    state=$(curl -fs "localhost:18182/songs/$id" -H "authorization: Bearer $token" | python3 -c 'import json,sys; print(json.load(sys.stdin)["state"])')
    [ "$state" != processing ] && break
    sleep 0.05
  done
  end=$(date +%s.%N)
  python3 -c 'import sys; f,st,s,a,e,i=sys.argv[1:]; print(f"{f}: {st}, upload answered in {float(a)-float(s):.2f} s, ready after {float(e)-float(s):.2f} s (song {i})")' \
    "$(basename "$1")" "$state" "$start" "$accepted" "$end" "$id" | tee -a "$out/upload.txt"
  last_song=$id
}
echo "== upload to ready"
upload_to_ready "$out/song.flac"
upload_to_ready "$out/song.mp3"
curl -fsI "localhost:18182/songs/$last_song/stream" | tr -d '\r' | grep -i -E 'content-length|etag' | tee -a "$out/upload.txt"

echo "== 200 concurrent range streams for ${secs}s"
rss() { awk '/VmRSS/ {print $2}' "/proc/$player/status"; }
before=$(rss)
( peak=$before; end=$((SECONDS + secs + 2))
  while [ $SECONDS -lt $end ]; do r=$(rss); [ "$r" -gt "$peak" ] && peak=$r; sleep 0.1; done
  echo "$peak" > "$out/rss-peak.txt" ) &
sampler=$!
oha --no-tui --ipv4 -z "${secs}s" -c 200 -H 'Range: bytes=0-' "http://127.0.0.1:18182/songs/$last_song/stream" | tee "$out/streams.txt"
wait $sampler
peak=$(cat "$out/rss-peak.txt")
echo "player RSS: before ${before} KB, peak ${peak} KB, growth $(( (peak - before) / 1024 )) MB" | tee -a "$out/streams.txt"
