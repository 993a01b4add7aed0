#!/usr/bin/env bash
# Installs what torbalance's tests and demo need on a fresh Debian machine (run as root):
# tor (+ tor-gencert), python3-stem and python3-cryptography, wireguard-go, wireguard-tools,
# nginx-light (bench/proxy.ts's side-by-side; its system service is not started), iproute2 and chromium (headless, for the dashboard test) from Debian, npm dependencies from the lockfile, and a
# build of dist/. Idempotent: does nothing that is already done.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v tor >/dev/null 2>&1 || need_apt+=(tor)
command -v tor-gencert >/dev/null 2>&1 || need_apt+=(tor)
# bench/proxy.ts compares the proxy with nginx doing the same rewriting (its own instance).
need_nginx=0
[ -x /usr/sbin/nginx ] || { need_apt+=(nginx-light); need_nginx=1; }
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
  # Debian's nginx package starts a system nginx on port 80 when installed; the benchmark only
  # needs the binary. policy-rc.d exit 101 tells invoke-rc.d not to start services for this
  # install (a policy-rc.d already present is left alone).
  policy=""
  if [ "$need_nginx" = 1 ] && [ ! -e /usr/sbin/policy-rc.d ]; then
    policy=/usr/sbin/policy-rc.d
    printf '#!/bin/sh\nexit 101\n' >"$policy"
    chmod 755 "$policy"
  fi
  apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null || { [ -z "$policy" ] || rm -f "$policy"; exit 1; }
  [ -z "$policy" ] || rm -f "$policy"
  # and not at boot either (systemd hosts)
  if [ "$need_nginx" = 1 ] && command -v systemctl >/dev/null 2>&1; then systemctl disable --now nginx >/dev/null 2>&1 || true; fi
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
