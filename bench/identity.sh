#!/usr/bin/env bash
# Identity API benchmark (issue 5): IP queries per second over HTTPS keep-alive with COUNT
# identities loaded, p99 at about half that rate, and the server's RSS.
#   bench/identity.sh [COUNT] [SECONDS] [CONNECTIONS]
# env: TESSERA_BIN (default target/release/tessera). Needs wrk and curl (installed if missing).
set -euo pipefail
cd "$(dirname "$0")/.."
COUNT=${1:-100000}
SECS=${2:-20}
CONNS=${3:-32}
BIN=${TESSERA_BIN:-target/release/tessera}
[ -x "$BIN" ] || cargo build --release -q -p tessera
for tool in wrk curl; do
  command -v $tool >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $tool >/dev/null; }
done

DIR=$(mktemp -d /tmp/tessera-idbench.XXXXXX)
trap 'kill $PID 2>/dev/null || true; wait $PID 2>/dev/null || true; rm -rf "$DIR"' EXIT
export TESSERA_DATA_DIR=$DIR/data TESSERA_AUTH_LISTEN=127.0.0.1:0 TESSERA_ACCT_LISTEN=127.0.0.1:0
export TESSERA_HTTP_LISTEN=127.0.0.1:0 TESSERA_LOG=${TESSERA_LOG:-warn,tessera::http=info,tessera::server=info}
SECRET=bench-secret-0123456789abcdef
cat > "$DIR/system.toml" <<TOML
[[api_client]]
client_id = "bench"
secret = "$SECRET"
scopes = ["identity:read", "identity:write"]
TOML
"$BIN" config import "$DIR/system.toml" >/dev/null
"$BIN" publish >/dev/null
"$BIN" serve 2>"$DIR/log" &
PID=$!
for _ in $(seq 100); do grep -q 'kind="https"' "$DIR/log" 2>/dev/null && break; sleep 0.1; done
PORT=$(grep 'kind="https"' "$DIR/log" | sed -E 's/.*addr=[^:]+:([0-9]+).*/\1/')
URL=https://127.0.0.1:$PORT
CURL=(curl -sS --cacert "$DIR/data/tls/cert.pem" --resolve "localhost:$PORT:127.0.0.1")
token() {
  "${CURL[@]}" -u "bench:$SECRET" -d grant_type=client_credentials "https://localhost:$PORT/api/v1/oauth/token" |
    sed -E 's/.*"access_token":"([^"]+)".*/\1/'
}
TOKEN=$(token)

echo "loading $COUNT identities through POST /api/v1/events ..." >&2
python3 - "$COUNT" "$DIR/events" <<'PY'
import json, sys, os
count, out = int(sys.argv[1]), sys.argv[2]
os.makedirs(out, exist_ok=True)
for start in range(0, count, 1000):
    ev = [{"state": "logon", "ip": f"10.{100 + i // 65536}.{(i // 256) % 256}.{i % 256}",
           "user": f"user{i}@example.com", "groups": ["vpn-users", "staff"], "session_id": f"s{i}"}
          for i in range(start, min(count, start + 1000))]
    with open(f"{out}/{start:08d}.json", "w") as f:
        json.dump({"events": ev}, f)
PY
t0=$(date +%s.%N)
for f in "$DIR"/events/*.json; do
  "${CURL[@]}" -o /dev/null -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
    --data-binary @"$f" "https://localhost:$PORT/api/v1/events"
done
t1=$(date +%s.%N)
echo "loaded in $(echo "$t1 - $t0" | bc) s" >&2
rss() { awk '/VmRSS|VmHWM/ {printf "%s=%d MB ", $1, $2/1024}' /proc/$PID/status; echo; }
echo "rss after load: $(rss)"

export TOKEN COUNT
echo "-- peak: $CONNS connections, ${SECS}s (wrk, HTTP/1.1 keep-alive over TLS)"
DELAY_MS=0 wrk -t1 -c"$CONNS" -d"${SECS}s" -s bench/ip_query.lua "$URL" | tail -1
echo "rss after peak: $(rss)"
PEAK=${PEAK_RPS:-}
PACE_CONNS=${PACE_CONNS:-64}
echo "-- paced: $PACE_CONNS connections, DELAY_MS=${PACE_MS:-2} per request (about half of peak)"
DELAY_MS=${PACE_MS:-2} wrk -t1 -c"$PACE_CONNS" -d"${SECS}s" -s bench/ip_query.lua "$URL" | tail -1
echo "rss at end: $(rss)"
