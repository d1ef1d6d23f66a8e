#!/usr/bin/env bash
# Install, upgrade, reconfigure or remove the Khiên agent on a Debian, Ubuntu or RHEL-family server.
# Run as root. Every run is safe to repeat: a second install changes nothing it does not need to.
#
#   install.sh --server https://khien.example.gov.vn --token TOKEN [--wheel khien-X-py3-none-any.whl]
#   install.sh --upgrade --wheel khien-Y-py3-none-any.whl     # keeps credentials, spool and config
#   install.sh --reconfigure                                  # after changing modules in agent.toml
#   install.sh --uninstall [--purge]                          # --purge also deletes state and config
#
# Layout: virtualenv /opt/khien-agent (command /usr/local/bin/khien-agent), config
# /etc/khien/agent.toml, state /var/lib/khien-agent, unit /etc/systemd/system/khien-agent.service.
# Full guide: docs/install.md.
set -euo pipefail
umask 022

PROG=install.sh
die() { echo "$PROG: error: $*" >&2; exit 1; }
say() { echo "== $*"; }

usage() {
  cat <<'EOF'
Usage: install.sh [MODE] [OPTIONS]

Modes (default: install):
  --upgrade             install a new wheel into the existing virtualenv and restart the agent;
                        credentials, spool and /etc/khien/agent.toml are kept
  --reconfigure         rewrite the unit's drop-in from /etc/khien/agent.toml and restart
  --uninstall           stop and disable the agent, remove the unit and the virtualenv;
                        state (/var/lib/khien-agent) and config (/etc/khien/agent.toml) are kept
  --purge               with --uninstall: delete the state directory and the config as well

Options:
  --server URL          the Khiên server (https://...); written to agent.toml and used to enroll
  --token TOKEN         enrollment token from `khien token create` ('-': read it from stdin)
  --ca-file PEM         CA certificate(s) of the server's certificate (a private CA); copied
                        to /etc/khien/server-ca.pem
  --reenroll            enroll again even if this host already has credentials
  --wheel PATH          install khien from this wheel file instead of the package index
  --wheelhouse DIR      install offline: take every package from this directory of wheels
  --with-packets        also install the `packets` extra (scapy), for [netwatch]
  --python PATH         the Python (>= 3.11) to build the virtualenv with (default: found on PATH)
  --root DIR            install under DIR instead of / (also $KHIEN_ROOT); systemctl then only
                        enables the unit inside DIR, nothing is started
  --no-systemd          write the unit files but never call systemctl (no systemd, e.g. a container)
  --package             (used by the .deb) the installer files belong to the package manager
  -h, --help            this help
EOF
}

# --- arguments ------------------------------------------------------------------------------------
mode=install purge=0 server="" token="" ca_file="" reenroll=0 wheel="" wheelhouse="" packets=0
python="" root="${KHIEN_ROOT:-}" use_systemd=1 packaged=0
need_value() { if [ $# -lt 2 ] || [ -z "$2" ]; then die "$1 needs a value (see --help)"; fi; }
while [ $# -gt 0 ]; do
  case "$1" in
    --upgrade) mode=upgrade ;;
    --reconfigure) mode=reconfigure ;;
    --uninstall) mode=uninstall ;;
    --purge) purge=1 ;;
    --server) need_value "$@"; server="$2"; shift ;;
    --token) need_value "$@"; token="$2"; shift ;;
    --ca-file) need_value "$@"; ca_file="$2"; shift ;;
    --reenroll) reenroll=1 ;;
    --wheel) need_value "$@"; wheel="$2"; shift ;;
    --wheelhouse) need_value "$@"; wheelhouse="$2"; shift ;;
    --with-packets) packets=1 ;;
    --python) need_value "$@"; python="$2"; shift ;;
    --root) need_value "$@"; root="$2"; shift ;;
    --no-systemd) use_systemd=0 ;;
    --package) packaged=1 ;;
    -h|--help) usage; exit 0 ;;
    *) die "unknown option '$1' (see --help)" ;;
  esac
  shift
done
[ "$purge" = 0 ] || [ "$mode" = uninstall ] || die "--purge goes with --uninstall"
[ -z "$token" ] || [ -n "$server" ] || die "--token needs --server URL"
[ -z "$wheel" ] || [ -f "$wheel" ] || die "wheel not found: $wheel"
[ -z "$wheel" ] || [[ "$wheel" == *.whl ]] || die "--wheel needs a .whl file, got $wheel"
[ -z "$wheelhouse" ] || [ -d "$wheelhouse" ] || die "wheelhouse directory not found: $wheelhouse"
[ -z "$ca_file" ] || [ -f "$ca_file" ] || die "CA file not found: $ca_file"
case "$server" in ""|https://*|http://*) ;; *) die "--server must be an http(s):// URL, got '$server'" ;; esac
if [ -n "$root" ]; then
  mkdir -p "$root" && root="$(cd "$root" && pwd)"
  [ "$root" != / ] || root=""
fi
[ "$(id -u)" = 0 ] || [ -n "$root" ] || die "run as root (or with --root DIR for a trial install)"
[ "$token" != - ] || { IFS= read -r token || true; [ -n "$token" ] || die "no token on stdin"; }

# --- paths ----------------------------------------------------------------------------------------
venv="$root/opt/khien-agent"
installer="$venv/installer"
conf_dir="$root/etc/khien"
conf="$conf_dir/agent.toml"
state="$root/var/lib/khien-agent"
unit_dir="$root/etc/systemd/system"
unit="$unit_dir/khien-agent.service"
dropin_dir="$unit_dir/khien-agent.service.d"
dropin="$dropin_dir/50-modules.conf"
link="$root/usr/local/bin/khien-agent"
ca_copy="$conf_dir/server-ca.pem"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

# The installer's own files: beside this script once installed (or in the .deb), in the repository's
# install/ tree when run from a checkout.
asset() {
  local name="$1" candidate
  for candidate in "$here/$name" "$here/../systemd/$name" "$here/../$name" "$here/../../docs/$name"; do
    [ -f "$candidate" ] && { echo "$candidate"; return 0; }
  done
  return 1
}

systemd_live() { [ "$use_systemd" = 1 ] && [ -z "$root" ]; }
systemctl_run() {
  # Live system: the real systemctl. Trial root: only offline operations (enable/disable symlinks).
  if [ "$use_systemd" = 0 ]; then return 0; fi
  if [ -n "$root" ]; then
    case "$1" in enable|disable) systemctl --root="$root" --quiet "$1" khien-agent.service ;; esac
    return 0
  fi
  systemctl "$@"
}

# --- operating system and Python ------------------------------------------------------------------
os_family() {
  local id="" like=""
  if [ -r /etc/os-release ]; then
    # shellcheck source=/dev/null
    id="$(. /etc/os-release && echo "${ID:-}")"
    # shellcheck source=/dev/null
    like="$(. /etc/os-release && echo "${ID_LIKE:-}")"
  fi
  case " $id $like " in
    *" debian "*|*" ubuntu "*) echo apt ;;
    *" rhel "*|*" fedora "*|*" centos "*) echo dnf ;;
    *) echo unknown ;;
  esac
}

python_ok() { "$1" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; }

find_python() {
  local candidate
  for candidate in python3.13 python3.12 python3.11 python3; do
    if command -v "$candidate" >/dev/null 2>&1 && python_ok "$candidate"; then
      command -v "$candidate"; return 0
    fi
  done
  return 1
}

install_python() {
  case "$(os_family)" in
    apt)
      say "installing Python 3.11+ and its venv module with apt-get"
      apt-get update -q >/dev/null
      # Debian 12 and Ubuntu 24.04 ship 3.11+ as python3; Ubuntu 22.04 has python3.11 beside 3.10.
      DEBIAN_FRONTEND=noninteractive apt-get install -y -q python3 python3-venv >/dev/null
      find_python >/dev/null ||
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q python3.11 python3.11-venv >/dev/null ;;
    dnf)
      say "installing Python 3.11 with dnf"
      # RHEL/Rocky/Alma 8.8+ and 9.2+ have python3.11 in AppStream; venv is part of it there.
      if command -v dnf >/dev/null 2>&1; then dnf install -y -q python3.11 >/dev/null
      else yum install -y -q python3.11 >/dev/null; fi ;;
    *) return 1 ;;
  esac
}

venv_module_hint() {
  case "$(os_family)" in
    apt) echo "apt-get install python3-venv (or python3.X-venv for your Python)" ;;
    dnf) echo "dnf install python3.11" ;;
    *) echo "install the venv module of Python 3.11+" ;;
  esac
}

# Sets $python to an interpreter >= 3.11 (not a $(...) function: installing one prints progress).
resolve_python() {
  if [ -n "$python" ]; then
    python_ok "$python" || die "$python is not Python 3.11 or newer"
    return
  fi
  find_python >/dev/null || install_python || true
  python="$(find_python)" || die "the agent needs Python 3.11 or newer and none was found or could be \
installed ($(os_family) system): install python3.11 and its venv module, or pass --python PATH"
}

create_venv() {
  resolve_python
  local py="$python"
  say "creating the virtualenv $venv with $("$py" --version 2>&1)"
  remove_venv_parts
  if ! "$py" -m venv "$venv" >/dev/null 2>&1; then
    remove_venv_parts
    if [ "$(os_family)" = apt ]; then
      local minor
      minor="$("$py" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')"
      say "installing python${minor}-venv with apt-get"
      apt-get update -q >/dev/null
      DEBIAN_FRONTEND=noninteractive apt-get install -y -q "python${minor}-venv" >/dev/null ||
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q python3-venv >/dev/null || true
    fi
    "$py" -m venv "$venv" >/dev/null 2>&1 ||
      die "cannot create a virtualenv with $py: its venv module is missing ($(venv_module_hint))"
  fi
}

# The virtualenv's own parts; ${venv:?} guards against ever removing /bin or /lib.
remove_venv_parts() { rm -rf "${venv:?}/bin" "${venv:?}/lib" "${venv:?}/lib64" "${venv:?}/include" "${venv:?}/pyvenv.cfg"; }

venv_works() { [ -x "$venv/bin/python" ] && "$venv/bin/python" -c 'import sys' 2>/dev/null; }

# --- the package ----------------------------------------------------------------------------------
requirement() {
  local extras=agent
  [ "$packets" = 0 ] || extras=agent,packets
  if [ -n "$wheel" ]; then
    echo "khien[$extras] @ file://$(cd "$(dirname "$wheel")" && pwd)/$(basename "$wheel")"
  else
    echo "khien[$extras]"
  fi
}

pip_install() {
  local args=(-m pip install --quiet --disable-pip-version-check --no-warn-script-location)
  [ -z "$wheelhouse" ] || args+=(--no-index --find-links "$wheelhouse")
  "$venv/bin/python" "${args[@]}" "$@"
}

install_package() {
  say "installing $(requirement)"
  pip_install --upgrade "$(requirement)"
  if [ "$mode" = upgrade ] && [ -n "$wheel" ]; then
    # A rebuilt wheel may carry the same version number: replace the package's own files anyway.
    pip_install --force-reinstall --no-deps "$wheel"
  fi
  "$venv/bin/khien-agent" --version >/dev/null || die "the installed khien-agent does not start"
}

copy_installer() {
  # Keep this installer beside the virtualenv so upgrade and uninstall work without the source tree.
  [ "$packaged" = 0 ] || return 0
  [ "$here" != "$(cd "$installer" 2>/dev/null && pwd)" ] || return 0
  mkdir -p "$installer"
  install -m 0755 "$here/install.sh" "$installer/install.sh"
  local name src
  for name in unit_dropin.py khien-agent.service agent.example.toml install.md; do
    if src="$(asset "$name")"; then install -m 0644 "$src" "$installer/$name"; fi
  done
}

# --- configuration --------------------------------------------------------------------------------
write_config() {
  mkdir -p "$conf_dir"
  chmod 0755 "$conf_dir"
  if [ -f "$conf" ]; then
    say "keeping the existing $conf"
    return
  fi
  local example
  example="$(asset agent.example.toml)" || die "agent.example.toml not found beside $PROG"
  say "writing $conf"
  # The example with [server] url (and ca_file) filled in; TOML strings quoted by Python's JSON
  # encoder, which writes valid TOML basic strings.
  local ca_on_host=""
  [ -z "$ca_file" ] || ca_on_host="/etc/khien/server-ca.pem"  # where the agent finds it once running
  "$venv/bin/python" - "$example" "$conf.tmp" "$server" "$ca_on_host" <<'PY'
import json, sys
src, dst, url, ca = sys.argv[1:5]
out, section = [], ""
for line in open(src, encoding="utf-8").read().splitlines():
    stripped = line.strip()
    if stripped.startswith("["):
        section = stripped
    elif section == "[server]" and stripped == 'url = ""' and url:
        line = f"url = {json.dumps(url)}"
    elif section == "[server]" and stripped == 'ca_file = ""' and ca:
        line = f"ca_file = {json.dumps(ca)}"
    out.append(line)
with open(dst, "w", encoding="utf-8") as fh:
    fh.write("\n".join(out) + "\n")
PY
  # 0640: no secret here (those live in the state directory, 0600), but no reason to show the
  # server and the module settings to every local user either.
  chmod 0640 "$conf.tmp"
  mv "$conf.tmp" "$conf"
}

# The server's CA certificate is copied beside the config: the agent's unit cannot see a file left
# in /tmp (PrivateTmp) and runs with / as working directory, so the given path may not work there.
install_ca() {
  [ -n "$ca_file" ] || return 0
  mkdir -p "$conf_dir"
  install -m 0644 "$ca_file" "$ca_copy.tmp"
  mv "$ca_copy.tmp" "$ca_copy"
  ca_file="$ca_copy"
  say "installed the server's CA certificate as $ca_copy"
}

# --- enrollment -----------------------------------------------------------------------------------
enrolled() { [ -s "$state/credentials.json" ]; }

enroll() {
  if enrolled && [ "$reenroll" = 0 ]; then
    say "already enrolled ($state/credentials.json kept; --reenroll to enroll again)"
    return
  fi
  if [ -z "$token" ]; then
    say "not enrolled: run '$PROG --server URL --token TOKEN' (or khien-agent enroll) to enroll"
    return
  fi
  say "enrolling with $server"
  local args=(enroll --server "$server" --token - --config "$conf" --state-dir "$state")
  [ -z "$ca_file" ] || args+=(--ca-file "$ca_file")
  # The token goes through stdin: on the command line every local user could read it in ps.
  printf '%s\n' "$token" | "$venv/bin/khien-agent" "${args[@]}"
}

# --- systemd --------------------------------------------------------------------------------------
write_units() {
  local unit_src
  unit_src="$(asset khien-agent.service)" || die "khien-agent.service not found beside $PROG"
  mkdir -p "$unit_dir" "$dropin_dir"
  install -m 0644 "$unit_src" "$unit"
  "$venv/bin/python" "$(asset unit_dropin.py)" --config "$conf" > "$dropin.tmp" ||
    { rm -f "$dropin.tmp"; die "cannot derive the unit's capabilities from $conf (fix it and run again)"; }
  chmod 0644 "$dropin.tmp"
  mv "$dropin.tmp" "$dropin"
  say "wrote $unit and $dropin"
  if grep -q AF_PACKET "$dropin" && ! "$venv/bin/python" -c 'import scapy' 2>/dev/null; then
    say "note: [netwatch] is enabled but scapy is missing: run $PROG --upgrade --with-packets"
  fi
}

start_agent() {
  systemctl_run daemon-reload
  systemctl_run enable khien-agent.service
  if ! enrolled; then
    say "the unit is enabled and starts once this host is enrolled"
  elif systemd_live; then
    systemctl restart khien-agent.service
    say "khien-agent is $(systemctl is-active khien-agent.service || true)"
  fi
}

check_systemd() {
  if systemd_live && [ ! -d /run/systemd/system ]; then
    die "systemd is not running here (a container?): pass --no-systemd and start the agent yourself"
  fi
}

# --- modes ----------------------------------------------------------------------------------------
do_install() {
  check_systemd
  # shellcheck source=/dev/null
  say "installing the Khiên agent on $(. /etc/os-release 2>/dev/null && echo "${PRETTY_NAME:-this system}")"
  if ! venv_works; then
    create_venv
  fi
  install_package
  copy_installer
  mkdir -p "$(dirname "$link")"
  ln -sfn "$venv/bin/khien-agent" "$link"
  install_ca
  write_config
  enroll
  write_units
  start_agent
  say "done: khien-agent status shows what the agent last reported"
}

do_upgrade() {
  check_systemd
  [ -d "$venv" ] || die "the agent is not installed in $venv (install it first)"
  if ! venv_works; then
    # The system's Python changed under the virtualenv (a distribution upgrade): rebuild it.
    create_venv
  fi
  install_package
  copy_installer
  [ -f "$conf" ] || write_config
  write_units
  systemctl_run daemon-reload
  if systemd_live && enrolled; then
    systemctl restart khien-agent.service
  fi
  say "upgraded to $("$venv/bin/khien-agent" --version); credentials and spool kept"
}

do_reconfigure() {
  check_systemd
  venv_works || die "the agent is not installed in $venv"
  write_units
  systemctl_run daemon-reload
  if systemd_live; then systemctl try-restart khien-agent.service; fi
  say "the unit now follows $conf"
}

do_uninstall() {
  if systemd_live && [ -d /run/systemd/system ]; then
    systemctl disable --now khien-agent.service 2>/dev/null || true
  else
    [ ! -f "$unit" ] || systemctl_run disable
  fi
  rm -f "$unit" "$dropin"
  [ "$purge" = 0 ] || rm -rf "$dropin_dir"
  rmdir "$dropin_dir" 2>/dev/null || true  # kept when it holds a local override.conf
  if systemd_live && [ -d /run/systemd/system ]; then systemctl daemon-reload; fi
  [ "$(readlink "$link" 2>/dev/null)" != "$venv/bin/khien-agent" ] || rm -f "$link"
  if [ "$packaged" = 1 ]; then
    # The package manager removes installer/ itself; remove only what this script created.
    remove_venv_parts
    rm -rf "${venv:?}/share"
  else
    rm -rf "$venv"
  fi
  if [ "$purge" = 1 ]; then
    rm -rf "$state"
    rm -f "$conf" "$ca_copy"
    rmdir "$conf_dir" 2>/dev/null || true  # kept when the server's files live there too
    say "removed the agent, its state directory and its config"
  else
    say "removed the agent; kept $conf and $state (--purge deletes them)"
  fi
}

case "$mode" in
  install) do_install ;;
  upgrade) do_upgrade ;;
  reconfigure) do_reconfigure ;;
  uninstall) do_uninstall ;;
esac
