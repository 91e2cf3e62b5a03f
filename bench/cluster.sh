#!/usr/bin/env bash
# Issue 12 benchmark: PIN+HOTP logins, N users, at 16/64/256 requests in flight, for
#   sqlite  one node on SQLite (the default storage)
#   pg1     one node on PostgreSQL
#   pg2     two nodes (127.0.0.2 and 127.0.0.3) on one PostgreSQL database, the load split
#   sqlite-base  SQLite with another build, $BASE_BIN (before/after in the same run)
# interleaved (every configuration once per round), REPEATS rounds, each run on fresh state
# (a new SQLite file or a new database). PostgreSQL is a throw-away cluster on this machine,
# started here (as nobody when run as root) with the settings printed at the start.
# One JSON line per run: {"config":...,"concurrency":...,"round":...} + tessera bench's result.
# usage: bench/cluster.sh [repeats] [duration] [users]
# env: CONFIGS="sqlite pg1 pg2 sqlite-base" (BASE_BIN for sqlite-base), CONCS="16 64 256",
#      PG_SETTINGS (extra postgresql.conf lines), TESSERA_STORAGE_POOL_SIZE, TESSERA_BIN
set -euo pipefail
repeats=${1:-3}; dur=${2:-10}; users=${3:-1000}
NEW=$(realpath "${TESSERA_BIN:-target/release/tessera}")
T=$NEW
PGBIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
work=$(mktemp -d /tmp/tessera-cluster-bench.XXXXXX)
chmod 755 "$work"
as_pg=()
if [ "$(id -u)" = 0 ]; then
  chown nobody: "$work"
  as_pg=(setpriv --reuid=nobody --regid=nogroup --clear-groups --)
fi
pgport=${PG_PORT:-25432}
echo "bench-password" > "$work/pw"
"${as_pg[@]}" "$PGBIN/initdb" -D "$work/pg" -U tessera --pwfile="$work/pw" --auth=scram-sha-256 \
  -E UTF8 --no-locale >/dev/null
cat >> "$work/pg/postgresql.auto.conf" <<EOT
listen_addresses = '127.0.0.1'
port = $pgport
unix_socket_directories = ''
max_connections = 200
shared_buffers = '256MB'
synchronous_commit = on
fsync = on
${PG_SETTINGS:-}
EOT
"${as_pg[@]}" "$PGBIN/pg_ctl" -D "$work/pg" -l "$work/pg.log" -w start >/dev/null
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  "${as_pg[@]}" "$PGBIN/pg_ctl" -D "$work/pg" -m fast -w stop >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
psql_() { PGPASSWORD=bench-password psql -X -q -A -t -h 127.0.0.1 -p "$pgport" -U tessera -d postgres -c "$1"; }
echo "# PostgreSQL $("$PGBIN/postgres" --version | awk '{print $3}'):" \
  "$(psql_ "SELECT string_agg(name || '=' || setting, ' ') FROM pg_settings WHERE name IN ('shared_buffers','synchronous_commit','fsync','wal_sync_method','commit_delay','commit_siblings','max_connections','wal_level')")" >&2
head -c 32 /dev/urandom > "$work/master.key"; chmod 600 "$work/master.key"
"$T" bench --generate "$work/gen" --users "$users" --mode hotp >/dev/null

n=0
# setup DIR URL: a fresh node data dir on storage URL, users imported and configuration published.
setup() {
  local dir=$1 url=$2
  mkdir -p "$dir"
  TESSERA_DATA_DIR=$dir/data TESSERA_STORAGE_URL=$url TESSERA_STORAGE_PASSWORD_FILE=$work/pw \
    TESSERA_MASTER_KEY_FILE=$work/master.key bash -c "
      '$T' user import '$work/gen/tessera-users.csv' >/dev/null
      '$T' method add bench --kind pin-otp >/dev/null
      '$T' client add bench --address 127.0.0.0/8 --secret testing123 --method bench >/dev/null
      '$T' publish >/dev/null"
}
# serve DIR URL ADDR: start a node, wait until it listens.
serve() {
  local dir=$1 url=$2 addr=$3
  TESSERA_DATA_DIR=$dir/data TESSERA_STORAGE_URL=$url TESSERA_STORAGE_PASSWORD_FILE=$work/pw \
    TESSERA_MASTER_KEY_FILE=$work/master.key TESSERA_AUTH_LISTEN=$addr \
    TESSERA_ACCT_LISTEN=${addr%:*}:0 TESSERA_HTTP_LISTEN=${addr%:*}:0 TESSERA_LOG=warn \
    "$T" serve 2>>"$dir/serve.log" &
  pids+=($!)
  for _ in $(seq 100); do
    grep -q "panicked\|Error" "$dir/serve.log" 2>/dev/null && { cat "$dir/serve.log" >&2; exit 1; }
    ss -Hlun "sport = :${addr##*:}" | grep -q "${addr%:*}" && return 0
    sleep 0.1
  done
  echo "node at $addr did not start" >&2; cat "$dir/serve.log" >&2; exit 1
}
stop_all() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  pids=()
}
one() {
  local config=$1 conc=$2 round=$3 targets url
  n=$((n + 1))
  local d=$work/run$n
  T=$NEW
  [ "$config" = sqlite-base ] && T=$(realpath "$BASE_BIN")
  case $config in
    sqlite*) url=sqlite://$d/a/data/tessera.db ;;
    *) psql_ "CREATE DATABASE bench_$n" >/dev/null
       url="postgres://tessera@127.0.0.1:$pgport/bench_$n?sslmode=disable" ;;
  esac
  setup "$d/a" "$url"
  serve "$d/a" "$url" 127.0.0.2:18121
  targets=127.0.0.2:18121
  if [ "$config" = pg2 ]; then
    mkdir -p "$d/b"
    serve "$d/b" "$url" 127.0.0.3:18121
    targets=$targets,127.0.0.3:18121
  fi
  sleep 0.5
  local out
  out=$("$T" bench --target "$targets" --users "$users" --concurrency "$conc" --duration "$dur" \
    --warmup 2 --mode hotp | tail -1)
  stop_all
  echo "{\"config\":\"$config\",\"concurrency\":$conc,\"round\":$round,\"result\":$out}"
  rm -rf "$d"
  [[ $config = sqlite* ]] || psql_ "DROP DATABASE bench_$n" >/dev/null
}
for round in $(seq "$repeats"); do
  for conc in ${CONCS:-16 64 256}; do
    for config in ${CONFIGS:-sqlite pg1 pg2}; do
      one "$config" "$conc" "$round"
    done
  done
done
