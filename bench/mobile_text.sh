#!/usr/bin/env bash
# Two-round logins per second (issue 4): mobile-text against a real slapd (password search +
# bind) and a real SMTP server (aiosmtpd; bench/smtp_sink.py hands the codes to the load
# generator), with RADIUS from `tessera bench --mode mobile-text`.
#   bench/mobile_text.sh [USERS] [CONCURRENCY] [SECONDS]
# env: TESSERA_BIN (default target/release/tessera). Needs slapd, ldap-utils, aiosmtpd
# (scripts/install-test-deps.sh installs them).
set -euo pipefail
cd "$(dirname "$0")/.."
USERS=${1:-2000}
CONC=${2:-32}
SECS=${3:-20}
BIN=${TESSERA_BIN:-target/release/tessera}
[ -x "$BIN" ] || cargo build --release -q -p tessera
scripts/install-test-deps.sh

DIR=$(mktemp -d /tmp/tessera-mtbench.XXXXXX)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$DIR"; }
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 200); do (exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return; sleep 0.05; done; echo "port $1 not up" >&2; exit 1; }

# slapd with USERS people
LDAP_PORT=$(free_port)
mkdir -p "$DIR/slapd/db"
cat > "$DIR/slapd/slapd.conf" <<CONF
include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
modulepath /usr/lib/ldap
moduleload back_mdb
pidfile $DIR/slapd/slapd.pid
database mdb
maxsize 1073741824
suffix "dc=example,dc=com"
rootdn "cn=admin,dc=example,dc=com"
rootpw admin-password
directory $DIR/slapd/db
index uid eq
CONF
/usr/sbin/slapd -f "$DIR/slapd/slapd.conf" -h "ldap://127.0.0.1:$LDAP_PORT" -d 0 >/dev/null 2>&1 &
PIDS+=($!)
wait_port "$LDAP_PORT"
"$BIN" bench --mode mobile-text --users "$USERS" --generate "$DIR/users" >/dev/null
{ printf 'dn: dc=example,dc=com\nobjectClass: dcObject\nobjectClass: organization\no: Example\ndc: example\n\n'
  printf 'dn: ou=people,dc=example,dc=com\nobjectClass: organizationalUnit\nou: people\n\n'
  cat "$DIR/users/ldap-users.ldif"; } > "$DIR/tree.ldif"
ldapadd -x -H "ldap://127.0.0.1:$LDAP_PORT" -D cn=admin,dc=example,dc=com -w admin-password -f "$DIR/tree.ldif" >/dev/null

# SMTP sink
SMTP_PORT=$(free_port)
: > "$DIR/codes"
PYTHONPATH=bench python3 -m aiosmtpd -n -l "127.0.0.1:$SMTP_PORT" -c smtp_sink.CodeSink "$DIR/codes" >/dev/null 2>&1 &
PIDS+=($!)
wait_port "$SMTP_PORT"

export TESSERA_DATA_DIR=$DIR/data TESSERA_ACCT_LISTEN=127.0.0.1:0 TESSERA_HTTP_LISTEN=127.0.0.1:0
export TESSERA_LOG=${TESSERA_LOG:-warn}
RADIUS_PORT=$(free_port)
export TESSERA_AUTH_LISTEN=127.0.0.1:$RADIUS_PORT
cat > "$DIR/system.toml" <<TOML
[[directory]]
name = "corp"
kind = "ldap"
url = "ldap://127.0.0.1:$LDAP_PORT"
bind_dn = "cn=admin,dc=example,dc=com"
bind_password = "admin-password"
base_dn = "dc=example,dc=com"
user_filter = "(uid={user})"

[[courier]]
name = "mail"
kind = "smtp"
url = "smtp://127.0.0.1:$SMTP_PORT?tls=none"
from = "tessera@example.com"
body = "Your code is {code}"

[[method]]
name = "vpn"
kind = "mobile-text"
directory = "corp"
courier = "mail"

[[client]]
name = "bench"
address = "127.0.0.1/32"
secret = "testing123"
method = "vpn"
TOML
"$BIN" config import "$DIR/system.toml" >/dev/null
"$BIN" publish >/dev/null
"$BIN" serve 2>"$DIR/serve.log" &
SERVE=$!
PIDS+=($SERVE)
for _ in $(seq 100); do grep -q 'kind="https"' "$DIR/serve.log" && break; sleep 0.1; done

# CPU seconds (user+system) of each process, to see where the time goes.
cpu() { awk -v hz="$(getconf CLK_TCK)" '{printf "%.1f", ($14+$15)/hz}' /proc/"$1"/stat; }
SLAPD=${PIDS[0]} SMTPD=${PIDS[1]}
read -r c1 c2 c3 <<< "$(cpu $SERVE) $(cpu $SLAPD) $(cpu $SMTPD)"
T0=$(date +%s.%N)
"$BIN" bench --mode mobile-text --target "127.0.0.1:$RADIUS_PORT" --secret testing123 \
  --users "$USERS" --concurrency "$CONC" --duration "$SECS" --warmup 3 --timeout 5 --codes "$DIR/codes"
T1=$(date +%s.%N)
echo "CPU seconds over $(printf '%.1f' "$(echo "$T1 - $T0" | bc)") s of wall time (warm-up included):" \
  "tessera $(echo "$(cpu $SERVE) - $c1" | bc)," \
  "slapd $(echo "$(cpu $SLAPD) - $c2" | bc)," \
  "aiosmtpd $(echo "$(cpu $SMTPD) - $c3" | bc)"
echo "server RSS: $(awk '/VmRSS|VmHWM/ {printf "%s %d MB  ", $1, $2/1024}' /proc/$SERVE/status)"
echo "mails received: $(wc -l < "$DIR/codes")"
