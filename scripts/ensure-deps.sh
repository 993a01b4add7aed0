#!/usr/bin/env bash
# Installs what torbalance's tests and demo need on a fresh Debian machine (run as root):
# tor (+ tor-gencert), python3-stem and python3-cryptography, wireguard-go, wireguard-tools,
# iproute2 and chromium (headless, for the dashboard test) from Debian, npm dependencies from the lockfile, and a
# build of dist/. Idempotent: does nothing that is already done.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v tor >/dev/null 2>&1 || need_apt+=(tor)
command -v tor-gencert >/dev/null 2>&1 || need_apt+=(tor)
/usr/bin/python3 -c 'import stem' >/dev/null 2>&1 || need_apt+=(python3-stem)
# stem needs python3-cryptography for descriptor crypto (not a Debian dependency of python3-stem).
/usr/bin/python3 -c 'import cryptography' >/dev/null 2>&1 || need_apt+=(python3-cryptography)
# The mesh's WireGuard tests run userspace wireguard-go in network namespaces (no kernel module here).
command -v wireguard-go >/dev/null 2>&1 || need_apt+=(wireguard-go)
command -v wg >/dev/null 2>&1 || need_apt+=(wireguard-tools)
command -v ip >/dev/null 2>&1 || need_apt+=(iproute2)
command -v ss >/dev/null 2>&1 || need_apt+=(iproute2)
# The admin dashboard is tested in headless Chromium (fonts so text renders in screenshots).
# The demo does not need it (scripts/demo.sh sets TORBALANCE_NO_CHROMIUM=1).
if [ "${TORBALANCE_NO_CHROMIUM:-0}" != 1 ]; then
  command -v chromium >/dev/null 2>&1 || need_apt+=(chromium fonts-liberation)
fi
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "[ensure-deps] installing from Debian: ${need_apt[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi

# npm dependencies: reinstall when the lockfile changed since the last install.
stamp=node_modules/.torbalance-lock-stamp
if [ ! -f "$stamp" ] || ! cmp -s package-lock.json "$stamp"; then
  echo "[ensure-deps] npm ci" >&2
  npm ci --no-audit --no-fund --loglevel=error
  cp package-lock.json "$stamp"
fi

echo "[ensure-deps] build" >&2
npx tsc -p tsconfig.build.json
