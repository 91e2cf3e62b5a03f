#!/usr/bin/env bash
# Issue 13 benchmark: PIN+HOTP logins over UDP and over TLS, same server build, same users:
#   udp      RADIUS over UDP (RFC 2865)
#   tls1     RadSec (RFC 6614) on 1 connection
#   tls4     RadSec on 4 connections
#   tls16    RadSec on 16 connections
#   v11-4    RADIUS/1.1 (RFC 9765, ALPN radius/1.1) on 4 connections
# at CONCS requests in flight, interleaved (every configuration once per round, REPEATS
# rounds), each run on a fresh server and a fresh SQLite file; then, per round, new mutual-TLS
# connections per second (full handshakes, no resumption, each proven by a Status-Server) for
# RFC 6614 and RADIUS/1.1, from four addresses. The PKI (a CA, the server's certificate for
# 127.0.0.1, a gateway's client certificate) is generated here with openssl and removed
# afterwards.
# One JSON line per run on stdout: {"config":...,"concurrency":...,"round":...,"result":{...}}
# (tessera bench's result line), then a summary table (medians) on stderr.
# usage: bench/radsec.sh [repeats] [duration] [users]
# env: CONFIGS="udp tls1 tls4 tls16 v11-4", CONCS="64 256", HANDSHAKES=2000 (0: none),
#      HS_CONC=16 (handshakes in progress at once), HS_SOURCES (their source addresses, taking
#      turns; default 127.0.1.1-4), TESSERA_BIN, TESSERA_LOG (server, warn),
#      PERF_DIR (perf record -g of the server over each measured window, one file per run)
set -euo pipefail
repeats=${1:-3}; dur=${2:-10}; users=${3:-1000}
T=$(realpath "${TESSERA_BIN:-target/release/tessera}")
handshakes=${HANDSHAKES:-2000}; hs_conc=${HS_CONC:-16}
hs_sources=${HS_SOURCES:-127.0.1.1,127.0.1.2,127.0.1.3,127.0.1.4}
auth_port=${AUTH_PORT:-18141}; tls_port=${TLS_PORT:-18143}
work=$(mktemp -d /tmp/tessera-radsec-bench.XXXXXX)
pid=
cleanup() {
  [ -n "$pid" ] && { kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; }
  rm -rf "$work"
}
trap cleanup EXIT

# --- test PKI: EC P-256 keys, valid two days --------------------------------------------
pki=$work/pki; mkdir -p "$pki"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
  -keyout "$pki/ca.key" -out "$pki/ca.pem" -subj "/CN=tessera bench CA" \
  -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
  2>/dev/null
# leaf NAME CN SAN EKU
leaf() {
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=$2" \
    -keyout "$pki/$1.key" -out "$pki/$1.csr" 2>/dev/null
  printf 'subjectAltName=%s\nextendedKeyUsage=%s\nbasicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\n' \
    "$3" "$4" >"$pki/$1.ext"
  openssl x509 -req -in "$pki/$1.csr" -CA "$pki/ca.pem" -CAkey "$pki/ca.key" -CAcreateserial \
    -days 2 -extfile "$pki/$1.ext" -out "$pki/$1.pem" 2>/dev/null
}
leaf server localhost "IP:127.0.0.1,DNS:localhost" serverAuth
leaf gateway bench-gw.example "DNS:bench-gw.example" clientAuth
tls_args=(--tls-cert "$pki/gateway.pem" --tls-key "$pki/gateway.key" --tls-ca "$pki/ca.pem")

# --- what every run's server gets ---------------------------------------------------------
"$T" bench --generate "$work/gen" --users "$users" --mode hotp >/dev/null
cat >"$work/node.toml" <<EOT
[radius]
tls_cert = "$pki/server.pem"
tls_key = "$pki/server.key"
tls_client_ca = "$pki/ca.pem"
EOT
# One UDP client and one TLS client (secret: RFC 6614's default "radsec"); the TLS client
# allows RADIUS/1.1, so both dialects reach the same server, and it is all of 127.0.0.0/8 so
# that handshakes come from several addresses (the server lets 8 at a time in per source).
cat >"$work/system.toml" <<EOT
[[method]]
name = "bench"
kind = "pin-otp"

[[client]]
name = "bench-udp"
address = "127.0.0.1"
secret = "testing123"
method = "bench"

[[client]]
name = "bench-gw"
address = "127.0.0.0/8"
transport = "tls"
tls_peer_name = "bench-gw.example"
method = "bench"
EOT

# start DIR: a fresh data dir, users imported, configuration published, server listening.
start() {
  local dir=$1
  mkdir -p "$dir"
  export TESSERA_DATA_DIR=$dir/data TESSERA_AUTH_LISTEN=127.0.0.1:$auth_port \
    TESSERA_ACCT_LISTEN=127.0.0.1:0 TESSERA_HTTP_LISTEN=127.0.0.1:0 \
    TESSERA_TLS_LISTEN=127.0.0.1:$tls_port
  "$T" user import "$work/gen/tessera-users.csv" >/dev/null
  "$T" config import "$work/system.toml" >/dev/null
  "$T" publish >/dev/null
  TESSERA_LOG=${TESSERA_LOG:-warn} "$T" --config "$work/node.toml" serve 2>>"$dir/serve.log" &
  pid=$!
  for _ in $(seq 100); do
    grep -q "panicked\|Error" "$dir/serve.log" 2>/dev/null && { cat "$dir/serve.log" >&2; exit 1; }
    if ss -Hltn "sport = :$tls_port" | grep -q 127.0.0.1 &&
      ss -Hlun "sport = :$auth_port" | grep -q 127.0.0.1; then
      sleep 0.3
      return 0
    fi
    sleep 0.1
  done
  echo "tessera did not start" >&2; cat "$dir/serve.log" >&2; exit 1
}
stop() {
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  pid=
}

# cpu PID: user + system CPU time so far, in clock ticks; cores T0 T1 SECONDS: cores used.
cpu() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
hz=$(getconf CLK_TCK)
cores() { awk "BEGIN { printf \"%.2f\", ($2 - $1) / $hz / $3 }"; }

n=0
one() {
  local config=$1 conc=$2 round=$3 args out
  n=$((n + 1))
  case $config in
    udp) args=(--target 127.0.0.1:$auth_port) ;;
    tls*) args=(--transport tls --target 127.0.0.1:$tls_port "${tls_args[@]}" --connections "${config#tls}") ;;
    v11-*) args=(--transport tls --radius-1-1 --target 127.0.0.1:$tls_port "${tls_args[@]}" --connections "${config#v11-}") ;;
    *) echo "unknown configuration $config" >&2; exit 1 ;;
  esac
  start "$work/run$n"
  "$T" bench "${args[@]}" --users "$users" --concurrency "$conc" --duration "$dur" \
    --warmup 2 --mode hotp >"$work/out" &
  local bp=$! s0 g0 s1 g1 window
  # CPU of the server and of the generator over most of the measured window, in cores.
  window=$(awk "BEGIN { print ($dur > 1) ? $dur - 0.5 : $dur / 2 }")
  sleep 2; s0=$(cpu "$pid"); g0=$(cpu "$bp")
  local perf=
  if [ -n "${PERF_DIR:-}" ]; then
    mkdir -p "$PERF_DIR"
    perf record -q -g -p "$pid" -o "$PERF_DIR/$config-$conc-$round.data" -- sleep "$window" \
      >/dev/null 2>&1 &
    perf=$!
  fi
  sleep "$window"
  s1=$(cpu "$pid"); g1=$(cpu "$bp")
  [ -n "$perf" ] && wait "$perf"
  wait "$bp"
  out=$(tail -1 "$work/out")
  stop
  echo "{\"config\":\"$config\",\"concurrency\":$conc,\"round\":$round,\"server_cpu\":$(cores "$s0" "$s1" "$window"),\"generator_cpu\":$(cores "$g0" "$g1" "$window"),\"result\":$out}"
  rm -rf "$work/run$n"
}
hs() {
  local config=$1 round=$2 extra=() out
  n=$((n + 1))
  [ "$config" = v11 ] && extra=(--radius-1-1)
  start "$work/run$n"
  local s0 s1
  s0=$(cpu "$pid")
  out=$("$T" bench --transport tls "${extra[@]}" --target 127.0.0.1:$tls_port "${tls_args[@]}" \
    --handshakes "$handshakes" --concurrency "$hs_conc" --source "$hs_sources" | tail -1)
  s1=$(cpu "$pid")
  stop
  # the server's CPU per handshake (it does nothing else meanwhile), in ms
  echo "{\"config\":\"handshakes-$config\",\"concurrency\":$hs_conc,\"round\":$round,\"server_ms_per_handshake\":$(awk "BEGIN { printf \"%.3f\", ($s1 - $s0) * 1000 / $hz / $handshakes }"),\"result\":$out}"
  rm -rf "$work/run$n"
}

results=$work/results.jsonl
for round in $(seq "$repeats"); do
  for conc in ${CONCS:-64 256}; do
    for config in ${CONFIGS:-udp tls1 tls4 tls16 v11-4}; do
      one "$config" "$conc" "$round" >>"$results"
      tail -n 1 "$results"
    done
  done
  if [ "$handshakes" -gt 0 ]; then
    for config in rfc6614 v11; do
      hs "$config" "$round" >>"$results"
      tail -n 1 "$results"
    done
  fi
done

# Medians over the rounds, and each configuration against UDP at the same concurrency.
python3 - "$results" >&2 <<'EOF'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
groups = {}
for r in rows:
    groups.setdefault((r["config"], r["concurrency"]), []).append(r["result"])
med = lambda rs, k: statistics.median(x[k] for x in rs)
rows_of = {}
for r in rows:
    rows_of.setdefault((r["config"], r["concurrency"]), []).append(r)
print("| configuration | in flight | accepted/s (runs) | vs UDP | p50 ms | p99 ms | timeouts | invalid | server CPU µs/login | server, generator cores |")
print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
for (config, conc), rs in groups.items():
    if config.startswith("handshakes"):
        continue
    a = med(rs, "accepts_per_s")
    udp = groups.get(("udp", conc))
    ratio = f"{a / med(udp, 'accepts_per_s'):.2f}×" if udp else "–"
    runs = " / ".join(f"{x['accepts_per_s']:,.0f}" for x in rs)
    full = rows_of[(config, conc)]
    us = statistics.median(r["server_cpu"] * 1e6 / r["result"]["accepts_per_s"]
                           for r in full if r["result"]["accepts_per_s"] > 0)
    sc = statistics.median(r["server_cpu"] for r in full)
    gc = statistics.median(r["generator_cpu"] for r in full)
    print(f"| {config} | {conc} | {a:,.0f} ({runs}) | {ratio} | {med(rs, 'p50_ms'):.2f} | "
          f"{med(rs, 'p99_ms'):.2f} | {sum(x['timeouts'] for x in rs)} | {sum(x['invalid'] for x in rs)} | "
          f"{us:.1f} | {sc:.2f}, {gc:.2f} |")
for (config, conc), rs in groups.items():
    if not config.startswith("handshakes"):
        continue
    runs = " / ".join(f"{x['handshakes_per_s']:,.0f}" for x in rs)
    ms = statistics.median(r["server_ms_per_handshake"] for r in rows_of[(config, conc)])
    print(f"| {config} | {conc} at once | {med(rs, 'handshakes_per_s'):,.0f}/s ({runs}) | | "
          f"{med(rs, 'p50_ms'):.2f} | {med(rs, 'p99_ms'):.2f} | failed {sum(x['failed'] for x in rs)} | | "
          f"{ms * 1000:.0f} per handshake | |")
EOF
