#!/usr/bin/env bash
# Reject timing (issue 11): are unknown, locked, wrong-PIN and wrong-OTP rejects
# indistinguishable? One fresh server, PIN+HOTP users, then `tessera bench --mode timing`
# interleaves the four classes one request at a time.
# usage: bench/timing.sh [samples per class, default 1500]
set -euo pipefail
samples=${1:-1500}
T=${TESSERA_BIN:-target/release/tessera}
B=${TESSERA_BENCH_BIN:-$T}   # the load generator (to measure an older server with today's bench)
dir=$(mktemp -d /tmp/tessera-timing.XXXXXX)
port=${BENCH_PORT:-18131}
export TESSERA_DATA_DIR=$dir/data TESSERA_AUTH_LISTEN=127.0.0.1:$port TESSERA_ACCT_LISTEN=127.0.0.1:0 TESSERA_HTTP_LISTEN=127.0.0.1:0
$T user add alice >/dev/null
$T token add alice --kind hotp --secret GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ --pin 1234 >/dev/null
$T user add locked >/dev/null
$T token add locked --kind hotp --secret MFRGGZDFMZTWQ2LKNNWG23TPOBYXE43U --pin 1234 >/dev/null
# First a policy that locks at 3 failures for good, to lock `locked`...
cat >"$dir/system.toml" <<TOML
[policy]
max_failures = 3
lockout_time = "0"
[[method]]
name = "vpn"
kind = "pin-otp"
[[client]]
name = "bench"
address = "127.0.0.1"
secret = "testing123"
method = "vpn"
TOML
$T config import "$dir/system.toml" >/dev/null
$T publish >/dev/null
TESSERA_LOG=${TESSERA_LOG:-warn} $T serve 2>"$dir/serve.log" & pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$dir"' EXIT
sleep 1
for i in 1 2 3; do
  $B bench --mode timing --target 127.0.0.1:$port --samples 10 \
    --class a=locked:9999000000 --class b=nobody:1234000000 >/dev/null 2>&1 || true
done
show=$($T user show locked)
grep -q "^state: *locked" <<<"$show" || { echo "timing.sh: user 'locked' did not lock: $show" >&2; exit 1; }
# ... then one that never locks, so that alice's wrong passcodes keep being counted.
sed -i 's/max_failures = 3/max_failures = 1000000000/' "$dir/system.toml"
$T config import "$dir/system.toml" >/dev/null
$T publish >/dev/null
sleep 1.5
# 123456 is not within alice's HOTP look-ahead window (counters 0..10 of the RFC 4226 seed).
$B bench --mode timing --target 127.0.0.1:$port --samples "$samples" \
  --class unknown=nobody:1234123456 \
  --class locked=locked:1234123456 \
  --class wrong-pin=alice:9999755224 \
  --class wrong-otp=alice:1234123456
