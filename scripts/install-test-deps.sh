#!/usr/bin/env bash
# Install the real peers the tests drive: FreeRADIUS's radclient/radtest, oathtool, curl, and
# the Python OAuth 2.0 library authlib (a third-party client for the identity API), slapd and
# the aiosmtpd SMTP server, nft + ip (the connector's nftables mirror, tested inside a
# network namespace), and radsecproxy and FreeRADIUS 3.2 (RadSec clients in front of tessera).
# Safe to run repeatedly; does nothing when they are already there.
set -euo pipefail

# authlib: a third-party OAuth 2.0 client; aiosmtpd: a real SMTP server for the couriers.
if ! python3 -c 'import authlib, requests, aiosmtpd' >/dev/null 2>&1; then
  echo "install-test-deps: installing authlib, requests and aiosmtpd (pip)" >&2
  python3 -m pip install -q --disable-pip-version-check --root-user-action=ignore authlib requests aiosmtpd
fi

need=()
command -v radclient >/dev/null 2>&1 || need+=(freeradius-utils)
command -v oathtool  >/dev/null 2>&1 || need+=(oathtool)
command -v md5sum    >/dev/null 2>&1 || need+=(coreutils)
command -v curl      >/dev/null 2>&1 || need+=(curl ca-certificates)
[ -x /usr/sbin/slapd ]                || need+=(slapd)
command -v ldapadd   >/dev/null 2>&1 || need+=(ldap-utils)
command -v chromium  >/dev/null 2>&1 || need+=(chromium)
command -v node      >/dev/null 2>&1 || need+=(nodejs npm)
command -v nft       >/dev/null 2>&1 || [ -x /usr/sbin/nft ] || need+=(nftables)
command -v ip        >/dev/null 2>&1 || [ -x /usr/sbin/ip ]  || need+=(iproute2)
# PostgreSQL server binaries (initdb, pg_ctl, postgres, psql) for the throw-away clusters the
# storage and cluster tests start; setpriv (util-linux) runs them as nobody under root.
compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || need+=(postgresql)
command -v setpriv   >/dev/null 2>&1 || need+=(util-linux)
# RadSec (RFC 6614) peers: radsecproxy and the FreeRADIUS server as TLS proxies to tessera.
[ -x /usr/sbin/radsecproxy ]          || need+=(radsecproxy)
[ -x /usr/sbin/freeradius ]           || need+=(freeradius)
# playwright-core (no browser download: the console test drives Debian's chromium).
install_playwright() {
  local dir
  dir="$(cd "$(dirname "$0")/.." && pwd)/target/playwright"
  if [ ! -d "$dir/node_modules/playwright-core" ]; then
    echo "install-test-deps: installing playwright-core (npm) into $dir" >&2
    mkdir -p "$dir"
    npm install --no-audit --no-fund --silent --prefix "$dir" playwright-core@1 >/dev/null
  fi
}
if [ ${#need[@]} -eq 0 ]; then install_playwright; exit 0; fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
    echo "install-test-deps: need root (or sudo) to install: ${need[*]}" >&2; exit 1
  fi
fi
echo "install-test-deps: installing ${need[*]}" >&2
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
# The tests start their own slapd on loopback; the package's system service is not wanted.
if [[ " ${need[*]} " == *" slapd "* ]]; then
  $SUDO service slapd stop >/dev/null 2>&1 || true
fi
# Nor is the cluster the postgresql package creates and starts on port 5432.
if [[ " ${need[*]} " == *" postgresql "* ]]; then
  $SUDO service postgresql stop >/dev/null 2>&1 || true
fi
# The RadSec tests start radsecproxy and freeradius themselves with their own configs; the
# packages' system services (freeradius listens on 1812/1813) are not wanted.
for svc in radsecproxy freeradius; do
  if [[ " ${need[*]} " == *" $svc "* ]]; then
    $SUDO service "$svc" stop >/dev/null 2>&1 || true
    if command -v systemctl >/dev/null 2>&1; then
      $SUDO systemctl disable "$svc" >/dev/null 2>&1 || true
    fi
    $SUDO update-rc.d "$svc" disable >/dev/null 2>&1 || true
  fi
done
install_playwright
