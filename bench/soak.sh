#!/usr/bin/env bash
# Soak (issue 11): measure the peak PIN+HOTP rate, then hold 80% of it for a while and sample
# the server's RSS and open file descriptors every 10 s. Both should stay flat.
# usage: bench/soak.sh [seconds, default 600] [users, default 1000] [concurrency, default 64]
set -euo pipefail
secs=${1:-600}; users=${2:-1000}; conc=${3:-64}
T=${TESSERA_BIN:-target/release/tessera}
dir=$(mktemp -d /tmp/tessera-soak.XXXXXX)
port=${BENCH_PORT:-18141}
export TESSERA_DATA_DIR=$dir/data TESSERA_AUTH_LISTEN=127.0.0.1:$port TESSERA_ACCT_LISTEN=127.0.0.1:0 TESSERA_HTTP_LISTEN=127.0.0.1:0
$T bench --generate "$dir/gen" --users "$users" --mode hotp >/dev/null
setup() {   # a fresh database: every user's HOTP counter at 0, as the load generator expects
  rm -rf "$dir/data"
  $T user import "$dir/gen/tessera-users.csv" >/dev/null
  $T method add bench --kind pin-otp >/dev/null
  $T client add bench --address 127.0.0.1 --secret testing123 --method bench >/dev/null
  $T publish >/dev/null
  TESSERA_LOG=${TESSERA_LOG:-warn} $T serve 2>>"$dir/serve.log" & pid=$!
  sleep 1
}
trap 'kill $sampler 2>/dev/null || true; kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$dir"' EXIT
setup
peak=$($T bench --target 127.0.0.1:$port --users "$users" --concurrency "$conc" --duration 10 --warmup 2 --mode hotp \
  | tail -1 | python3 -c 'import json,sys; print(json.load(sys.stdin)["accepts_per_s"])')
kill $pid; wait $pid 2>/dev/null || true
setup
rate=$(python3 -c "print(int($peak * 0.8))")
echo "soak: peak ${peak}/s, holding ${rate}/s for ${secs} s; samples every 10 s" >&2
echo "t_s,rss_kb,fds,threads"
sample() {
  local t=0
  while kill -0 $pid 2>/dev/null; do
    rss=$(awk '/^VmRSS/ {print $2}' /proc/$pid/status)
    thr=$(awk '/^Threads/ {print $2}' /proc/$pid/status)
    fds=$(ls /proc/$pid/fd | wc -l)
    echo "$t,$rss,$fds,$thr"
    sleep 10; t=$((t + 10))
  done
}
sample & sampler=$!
$T bench --target 127.0.0.1:$port --users "$users" --concurrency "$conc" --duration "$secs" --warmup 0 \
  --mode hotp --rate "$rate" >"$dir/bench.out"
kill $sampler 2>/dev/null || true
cat "$dir/bench.out" >&2
