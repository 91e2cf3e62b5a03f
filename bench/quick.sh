#!/usr/bin/env bash
# Quick single-server load run: fresh data dir, N users with PIN+HOTP tokens, one bench run.
# usage: bench/quick.sh [users] [concurrency] [duration] [extra bench args...]
set -euo pipefail
users=${1:-1000}; conc=${2:-64}; dur=${3:-10}; shift $(( $# > 3 ? 3 : $# ))
T=${TESSERA_BIN:-target/release/tessera}
dir=$(mktemp -d /tmp/tessera-bench.XXXXXX)
port=${BENCH_PORT:-18121}
export TESSERA_DATA_DIR=$dir/data TESSERA_AUTH_LISTEN=127.0.0.1:$port
$T bench --generate "$dir/gen" --users "$users" --mode hotp >/dev/null
$T user import "$dir/gen/tessera-users.csv" >/dev/null
if [ -n "${SYSTEM_TOML:-}" ]; then
  $T config import "$SYSTEM_TOML" >/dev/null
else
  $T method add bench --kind pin-otp >/dev/null
  $T client add bench --address 127.0.0.1 --secret testing123 --method bench >/dev/null
fi
$T publish >/dev/null
TESSERA_LOG=${TESSERA_LOG:-warn,tessera::server=info} $T serve 2>"$dir/serve.log" & pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; grep -o "commits=.*" "$dir/serve.log" >&2 || true; rm -rf "$dir"' EXIT
sleep 1
${PERF_CMD:-} $T bench --target 127.0.0.1:$port --users "$users" --concurrency "$conc" --duration "$dur" --warmup 2 --mode hotp "$@"
