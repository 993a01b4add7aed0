#!/usr/bin/env bash
# Install torbalance on a Debian machine, verified, from a release tarball or a git commit.
#
#   install.sh --tarball torbalance-0.1.0.tgz [--sha256 HEX] [--lockfile FILE] [options]
#   install.sh --git URL|DIR --ref TAG|BRANCH|COMMIT [--commit FULL_SHA] [options]
#
# Tarball: its SHA-256 must equal --sha256, or the line for it in "<tarball>.sha256"
# (sha256sum format; a line for the lockfile there is checked too). npm tarballs carry no
# lockfile: --lockfile (default: package-lock.json next to the tarball) is used for
# `npm ci --omit=dev`, which checks every dependency against the lockfile's integrity hashes.
# Git: the repository is cloned, --ref checked out and `git rev-parse HEAD` must equal
# --commit (when given); it is built (npm ci, tsc) and packed, then installed like a tarball.
#
# Installs into PREFIX/<version> (default /opt/torbalance/<version>), points PREFIX/current at
# it and BIN_DIR/torbalance (default /usr/bin) at PREFIX/current/bin/torbalance, checks node ≥
# 20.19 and tor ≥ 0.4.8 (apt-get install tor with --install-tor), installs the systemd unit
# (deploy/torbalance.service next to this script) into UNIT_DIR, and with --create-user (as
# root) creates the system user torbalance, ETC_DIR (root:torbalance 0750) and STATE_DIR
# (torbalance 0700). Finally runs `torbalance --version` and prints the next steps.
#
# Options (all paths overridable, for tests and non-standard layouts):
#   --prefix DIR         default /opt/torbalance
#   --bin-dir DIR        default /usr/bin
#   --unit-dir DIR       default /etc/systemd/system
#   --unit FILE          default <this script's dir>/torbalance.service
#   --etc-dir DIR        default /etc/torbalance
#   --state-dir DIR      default /var/lib/torbalance
#   --create-user        create the user and directories (root only)
#   --install-tor        apt-get install -y tor when tor is missing or too old
#   --no-systemctl       do not run `systemctl daemon-reload`
#   --force              reinstall over an existing PREFIX/<version>
#   --npm-flags "..."    extra flags for npm (e.g. "--offline")
set -euo pipefail

PREFIX=/opt/torbalance
BIN_DIR=/usr/bin
UNIT_DIR=/etc/systemd/system
UNIT_FILE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/torbalance.service"
ETC_DIR=/etc/torbalance
STATE_DIR=/var/lib/torbalance
TARBALL=""
SHA256=""
LOCKFILE=""
GIT_SRC=""
GIT_REF=""
GIT_COMMIT=""
CREATE_USER=0
INSTALL_TOR=0
SYSTEMCTL=1
FORCE=0
NPM_FLAGS=""
MIN_NODE="20.19.0"
MIN_TOR="0.4.8"

die() { echo "install.sh: error: $*" >&2; exit 1; }
say() { echo "install.sh: $*" >&2; }

while [ $# -gt 0 ]; do
  case "$1" in
    --tarball) TARBALL="$2"; shift 2 ;;
    --sha256) SHA256="$2"; shift 2 ;;
    --lockfile) LOCKFILE="$2"; shift 2 ;;
    --git) GIT_SRC="$2"; shift 2 ;;
    --ref) GIT_REF="$2"; shift 2 ;;
    --commit) GIT_COMMIT="$2"; shift 2 ;;
    --prefix) PREFIX="$2"; shift 2 ;;
    --bin-dir) BIN_DIR="$2"; shift 2 ;;
    --unit-dir) UNIT_DIR="$2"; shift 2 ;;
    --unit) UNIT_FILE="$2"; shift 2 ;;
    --etc-dir) ETC_DIR="$2"; shift 2 ;;
    --state-dir) STATE_DIR="$2"; shift 2 ;;
    --create-user) CREATE_USER=1; shift ;;
    --install-tor) INSTALL_TOR=1; shift ;;
    --no-systemctl) SYSTEMCTL=0; shift ;;
    --force) FORCE=1; shift ;;
    --npm-flags) NPM_FLAGS="$2"; shift 2 ;;
    -h|--help) sed -n '2,32p' "$0"; exit 0 ;;
    *) die "unknown option $1 (see --help)" ;;
  esac
done

if [ -n "$TARBALL" ] && [ -n "$GIT_SRC" ]; then die "give --tarball or --git, not both"; fi
if [ -z "$TARBALL" ] && [ -z "$GIT_SRC" ]; then die "give --tarball FILE or --git URL --ref REF"; fi
[ -f "$UNIT_FILE" ] || die "systemd unit $UNIT_FILE not found (pass --unit FILE)"

# ---- prerequisites -----------------------------------------------------------------------
version_ge() { # $1 >= $2 (dotted numbers)
  [ "$(printf '%s\n%s\n' "$2" "$1" | sort -t. -k1,1n -k2,2n -k3,3n -k4,4n | head -n1)" = "$2" ]
}
command -v node >/dev/null 2>&1 || die "node not found: install Node.js >= $MIN_NODE (https://nodejs.org or NodeSource's Debian repository)"
command -v npm >/dev/null 2>&1 || die "npm not found: install npm (it comes with Node.js)"
NODE_VERSION="$(node -p 'process.versions.node')"
version_ge "$NODE_VERSION" "$MIN_NODE" || die "node $NODE_VERSION is older than $MIN_NODE"
tor_version() { tor --version 2>/dev/null | sed -n 's/^Tor version \([0-9][0-9.]*[0-9]\).*/\1/p' | head -n1; }
TOR_VERSION=""
if command -v tor >/dev/null 2>&1; then TOR_VERSION="$(tor_version)"; fi
if [ -z "$TOR_VERSION" ] || ! version_ge "$TOR_VERSION" "$MIN_TOR"; then
  if [ "$INSTALL_TOR" = 1 ]; then
    [ "$(id -u)" = 0 ] || die "--install-tor needs root"
    say "installing tor with apt-get"
    DEBIAN_FRONTEND=noninteractive apt-get install -y tor
    TOR_VERSION="$(tor_version)"
  fi
  [ -n "$TOR_VERSION" ] || die "tor not found: install tor >= $MIN_TOR (apt-get install tor, or rerun with --install-tor)"
  version_ge "$TOR_VERSION" "$MIN_TOR" || die "tor $TOR_VERSION is older than $MIN_TOR (use the Tor Project's Debian repository)"
fi
say "node $NODE_VERSION, tor $TOR_VERSION"

WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

sha256_of() { sha256sum "$1" | cut -d' ' -f1; }

# ---- source: git → build a tarball -------------------------------------------------------
if [ -n "$GIT_SRC" ]; then
  [ -n "$GIT_REF" ] || die "--git needs --ref TAG|BRANCH|COMMIT"
  command -v git >/dev/null 2>&1 || die "git not found (apt-get install git)"
  say "cloning $GIT_SRC"
  git clone --quiet --no-checkout "$GIT_SRC" "$WORK/src"
  git -C "$WORK/src" -c advice.detachedHead=false checkout --quiet --detach "$GIT_REF" || die "cannot check out $GIT_REF"
  HEAD_COMMIT="$(git -C "$WORK/src" rev-parse HEAD)"
  if [ -n "$GIT_COMMIT" ] && [ "$HEAD_COMMIT" != "$GIT_COMMIT" ]; then
    die "$GIT_REF is commit $HEAD_COMMIT, not the expected $GIT_COMMIT"
  fi
  say "building commit $HEAD_COMMIT"
  # shellcheck disable=SC2086
  # --ignore-scripts: no dependency's install script runs (as root) during the build; none is
  # needed (the build is tsc only; the lockfile has no package with an install script).
  (cd "$WORK/src" && npm ci --ignore-scripts --no-audit --no-fund $NPM_FLAGS >&2 && npx tsc -p tsconfig.build.json >&2 && npm pack --ignore-scripts --pack-destination "$WORK" >/dev/null) || die "build of $HEAD_COMMIT failed"
  TARBALL="$(ls "$WORK"/torbalance-*.tgz)"
  SHA256="$(sha256_of "$TARBALL")"
  LOCKFILE="$WORK/src/package-lock.json"
fi

# ---- verify the tarball ------------------------------------------------------------------
[ -f "$TARBALL" ] || die "tarball $TARBALL not found"
ACTUAL="$(sha256_of "$TARBALL")"
SUMS="$TARBALL.sha256"
if [ -z "$SHA256" ]; then
  [ -f "$SUMS" ] || die "no checksum: pass --sha256 HEX or put $SUMS (sha256sum format) next to the tarball"
  SHA256="$(awk -v n="$(basename "$TARBALL")" '{f=$2; sub(/^\*/, "", f)} f==n || NF==1 {print $1; exit}' "$SUMS")"
  [ -n "$SHA256" ] || die "$SUMS has no line for $(basename "$TARBALL")"
fi
SHA256="$(echo "$SHA256" | tr 'A-F' 'a-f')"
[ "$ACTUAL" = "$SHA256" ] || die "checksum mismatch for $TARBALL: expected $SHA256, got $ACTUAL (refusing to install)"
say "tarball verified: sha256 $ACTUAL"

[ -n "$LOCKFILE" ] || LOCKFILE="$(dirname "$TARBALL")/package-lock.json"
[ -f "$LOCKFILE" ] || die "lockfile $LOCKFILE not found (npm tarballs carry none; pass --lockfile FILE from the release or tag)"
if [ -f "$SUMS" ] && [ -z "$GIT_SRC" ]; then
  WANT_LOCK="$(awk -v n="$(basename "$LOCKFILE")" '{f=$2; sub(/^\*/, "", f)} f==n {print $1; exit}' "$SUMS")"
  if [ -n "$WANT_LOCK" ]; then
    [ "$(sha256_of "$LOCKFILE")" = "$WANT_LOCK" ] || die "checksum mismatch for $LOCKFILE (refusing to install)"
    say "lockfile verified"
  fi
fi

# ---- unpack and install dependencies -----------------------------------------------------
mkdir -p "$WORK/pkg"
tar -xzf "$TARBALL" -C "$WORK/pkg" --no-same-owner
PKG="$WORK/pkg/package"
[ -f "$PKG/package.json" ] && [ -f "$PKG/bin/torbalance.js" ] || die "$TARBALL is not a torbalance package"
NAME="$(node -p 'require(process.argv[1]).name' "$PKG/package.json")"
VERSION="$(node -p 'require(process.argv[1]).version' "$PKG/package.json")"
[ "$NAME" = torbalance ] || die "$TARBALL is package $NAME, not torbalance"
case "$VERSION" in *[!0-9A-Za-z.+-]*|"") die "bad version $VERSION" ;; esac
LOCK_NAME="$(node -p 'require(process.argv[1]).name' "$LOCKFILE")"
LOCK_VERSION="$(node -p 'require(process.argv[1]).version' "$LOCKFILE")"
[ "$LOCK_NAME@$LOCK_VERSION" = "torbalance@$VERSION" ] || die "lockfile is for $LOCK_NAME@$LOCK_VERSION, the tarball is torbalance@$VERSION"
cp "$LOCKFILE" "$PKG/package-lock.json"
say "installing dependencies of torbalance $VERSION (npm ci --omit=dev)"
# shellcheck disable=SC2086
(cd "$PKG" && npm ci --omit=dev --ignore-scripts --no-audit --no-fund $NPM_FLAGS >&2) || die "npm ci failed"

DEST="$PREFIX/$VERSION"
if [ -e "$DEST" ]; then
  [ "$FORCE" = 1 ] || die "$DEST exists (pass --force to reinstall)"
  rm -rf "$DEST"
fi
mkdir -p "$PREFIX" "$BIN_DIR" "$UNIT_DIR"
cp -a "$PKG" "$DEST.tmp.$$"
chmod -R go-w "$DEST.tmp.$$"
mv "$DEST.tmp.$$" "$DEST"
ln -sfn "$VERSION" "$PREFIX/current.tmp.$$" && mv -T "$PREFIX/current.tmp.$$" "$PREFIX/current"
ln -sfn "$PREFIX/current/bin/torbalance.js" "$BIN_DIR/torbalance"
install -m 0644 "$UNIT_FILE" "$UNIT_DIR/torbalance.service"
say "installed $DEST; $BIN_DIR/torbalance → $PREFIX/current/bin/torbalance.js; unit $UNIT_DIR/torbalance.service"

# ---- user and directories ----------------------------------------------------------------
if [ "$CREATE_USER" = 1 ]; then
  [ "$(id -u)" = 0 ] || die "--create-user needs root"
  if ! id torbalance >/dev/null 2>&1; then
    useradd --system --user-group --home-dir "$STATE_DIR" --no-create-home --shell /usr/sbin/nologin torbalance
    say "created system user torbalance"
  fi
  install -d -m 0750 -o root -g torbalance "$ETC_DIR"
  install -d -m 0700 -o torbalance -g torbalance "$STATE_DIR"
fi
if [ "$SYSTEMCTL" = 1 ] && command -v systemctl >/dev/null 2>&1; then systemctl daemon-reload || say "systemctl daemon-reload failed"; fi

# ---- verify what was installed -----------------------------------------------------------
GOT="$("$BIN_DIR/torbalance" --version)" || die "$BIN_DIR/torbalance --version failed"
[ "$GOT" = "$VERSION" ] || die "$BIN_DIR/torbalance --version printed $GOT, expected $VERSION"
echo "torbalance $VERSION installed."
cat <<EOF

Next steps (docs/OPERATIONS.md):
  first node:  sudo -u torbalance torbalance init --dir $STATE_DIR --target <your service>.onion --name node-1 --cluster ...
  more nodes:  sudo -u torbalance torbalance join --token-file $ETC_DIR/join-token --dir $STATE_DIR --name node-2 ...
  then:        sudo -u torbalance torbalance doctor --config $STATE_DIR/torbalance.toml
               sudo systemctl enable --now torbalance
EOF
