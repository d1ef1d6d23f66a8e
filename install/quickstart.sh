#!/usr/bin/env bash
# Install Khiên into ./.venv and run the demo: server on SQLite in ./khien-data, a demo province,
# an admin user (password printed once) and an agent on this machine. Ctrl-C stops everything.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
  echo "Khiên needs Python 3.11 or newer (python3 is $(python3 --version 2>&1))." >&2
  exit 1
fi
if [ ! -x .venv/bin/python ]; then
  if ! python3 -m venv .venv 2>/dev/null; then
    rm -rf .venv
    if [ "$(id -u)" = 0 ]; then
      echo "== installing python3-venv"
      apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv
      python3 -m venv .venv
    else
      echo "python3 -m venv failed: install the python3-venv package (sudo apt-get install python3-venv)." >&2
      exit 1
    fi
  fi
fi
echo "== installing Khiên into .venv"
.venv/bin/python -m pip install -q --disable-pip-version-check -e ".[server,agent]"
exec .venv/bin/khien demo "$@"
