#!/usr/bin/env bash
# Build Khiên's packages from this repository:
#   DIST/khien-VERSION-py3-none-any.whl     the one distribution (extras agent, packets, server)
#   DIST/wheelhouse/                        that wheel plus every wheel the agent needs, for offline installs
#   DIST/khien-agent_VERSION-1_ARCH.deb     the agent for Debian/Ubuntu: wheelhouse + installer under
#                                           /opt/khien-agent/installer; postinst runs install.sh
#
# Usage: install/build.sh [--out DIR] [--no-deb]       (DIR default: ./dist; PYTHON default: python3)
# Needs Python 3.11+ with pip (and network access to the package index, or PIP_FIND_LINKS pointing at
# the dependencies), dpkg-deb for the .deb.
set -euo pipefail
umask 022

die() { echo "build.sh: error: $*" >&2; exit 1; }
say() { echo "== $*"; }

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="$repo/dist" deb=1
while [ $# -gt 0 ]; do
  case "$1" in
    --out) [ $# -ge 2 ] || die "--out needs a directory"; out="$2"; shift ;;
    --no-deb) deb=0 ;;
    -h|--help) sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown option '$1' (see --help)" ;;
  esac
  shift
done
py="${PYTHON:-python3}"
"$py" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null || die "$py is not Python 3.11 or newer"
[ "$deb" = 0 ] || command -v dpkg-deb >/dev/null || die "dpkg-deb not found (apt-get install dpkg), or pass --no-deb"
mkdir -p "$out"
out="$(cd "$out" && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# --- wheel: built from a clean copy, so nothing of the checkout (build/, *.egg-info) leaks in or out
say "copying the sources"
mkdir -p "$work/src"
tar -C "$repo" --exclude=__pycache__ --exclude='*.pyc' -cf - pyproject.toml README.md agent collector rules \
  console khien | tar -C "$work/src" -xf -
rm -f "$out"/khien-*.whl
if "$py" -c 'import build' 2>/dev/null; then
  say "building the wheel (python -m build)"
  "$py" -m build --wheel --outdir "$out" "$work/src" >"$work/build.log" 2>&1 || { cat "$work/build.log" >&2; exit 1; }
else
  say "building the wheel (pip wheel)"
  "$py" -m pip wheel --quiet --disable-pip-version-check --no-deps --wheel-dir "$out" "$work/src" ||
    die "pip could not build the wheel"
fi
wheel="$(ls "$out"/khien-*-py3-none-any.whl)"
version="$(basename "$wheel" | cut -d- -f2)"
say "wheel: $wheel"

# --- wheelhouse: the agent and what it needs, so an air-gapped host installs with --wheelhouse
say "collecting the agent's wheels (khien[agent,packets])"
rm -rf "$out/wheelhouse"
"$py" -m pip wheel --quiet --disable-pip-version-check --wheel-dir "$out/wheelhouse" \
  "khien[agent,packets] @ file://$wheel" || die "pip could not collect the agent's dependencies"

[ "$deb" = 1 ] || exit 0

# --- .deb -----------------------------------------------------------------------------------------
# Wheels with compiled code (psutil) tie the package to this machine's architecture.
arch=all
for whl in "$out"/wheelhouse/*.whl; do
  case "$whl" in *-none-any.whl) ;; *) arch="$(dpkg --print-architecture)" ;; esac
done
stage="$work/deb"
payload="$stage/opt/khien-agent/installer"
mkdir -p "$payload/wheelhouse" "$stage/DEBIAN" "$stage/usr/share/doc/khien-agent"
install -m 0755 "$repo/install/agent/install.sh" "$payload/install.sh"
install -m 0644 "$repo/install/agent/unit_dropin.py" "$repo/install/systemd/khien-agent.service" \
  "$repo/install/agent.example.toml" "$repo/docs/install.md" "$payload/"
install -m 0644 "$out"/wheelhouse/*.whl "$payload/wheelhouse/"
for script in postinst prerm postrm; do
  install -m 0755 "$repo/install/deb/$script" "$stage/DEBIAN/$script"
done
printf 'Khiên agent, Apache License 2.0. Bundled wheels keep their own licences (see their metadata).\n' \
  > "$stage/usr/share/doc/khien-agent/copyright"
chmod 0644 "$stage/usr/share/doc/khien-agent/copyright"
cat > "$stage/DEBIAN/control" <<EOF
Package: khien-agent
Version: ${version}-1
Architecture: ${arch}
Maintainer: ${KHIEN_DEB_MAINTAINER:-Khiên maintainers <khien@localhost>}
Installed-Size: $(du -sk --exclude=DEBIAN "$stage" | cut -f1)
Depends: python3 (>= 3.11), python3-venv
Recommends: systemd
Section: admin
Priority: optional
Description: Khiên security-monitoring agent
 The host agent of Khiên: inventory, patch status, compliance facts, authentication
 log and file-integrity events sent to a Khiên server. Installs into a virtualenv
 under /opt/khien-agent from the bundled wheels (no network needed) with a hardened
 systemd unit; enroll with /opt/khien-agent/installer/install.sh --server URL --token TOKEN.
EOF
deb_file="$out/khien-agent_${version}-1_${arch}.deb"
dpkg-deb --root-owner-group -Zxz --build "$stage" "$deb_file" >/dev/null
say "deb: $deb_file"
