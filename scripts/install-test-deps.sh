#!/usr/bin/env bash
# Install the real peers the tests drive: FreeRADIUS's radclient/radtest and oathtool.
# Safe to run repeatedly; does nothing when they are already there.
set -euo pipefail

need=()
command -v radclient >/dev/null 2>&1 || need+=(freeradius-utils)
command -v oathtool  >/dev/null 2>&1 || need+=(oathtool)
command -v md5sum    >/dev/null 2>&1 || need+=(coreutils)
[ ${#need[@]} -eq 0 ] && exit 0

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
    echo "install-test-deps: need root (or sudo) to install: ${need[*]}" >&2; exit 1
  fi
fi
echo "install-test-deps: installing ${need[*]}" >&2
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
