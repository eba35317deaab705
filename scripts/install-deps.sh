#!/usr/bin/env bash
# Installs what pgpulse's tests, demo and benchmarks need on a Debian machine,
# only what is missing. Safe to run repeatedly; needs root (or sudo) only when
# something is actually missing.
set -euo pipefail

need=()
have_bin() { command -v "$1" >/dev/null 2>&1 || ls /usr/lib/postgresql/*/bin/"$1" >/dev/null 2>&1; }

have_bin initdb || need+=(postgresql)
have_bin psql || need+=(postgresql-client)
have_bin pgbench || need+=(postgresql-contrib)
have_bin redis-server || need+=(redis-server)
have_bin pgbouncer || [ -x /usr/sbin/pgbouncer ] || need+=(pgbouncer)
ls /usr/lib/postgresql/*/lib/hypopg.so >/dev/null 2>&1 || need+=(postgresql-15-hypopg)
ls /usr/lib/postgresql/*/lib/pg_stat_statements.so >/dev/null 2>&1 || need+=(postgresql-contrib)
# The report test takes a screenshot of the HTML report with headless Chromium.
have_bin chromium || need+=(chromium)

if [ ${#need[@]} -gt 0 ]; then
  echo "install-deps: installing ${need[*]}"
  SUDO=""
  if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  # Debian starts the packaged services; pgpulse's tests start their own on
  # free ports, so stop the system ones to free memory and the default ports.
  if command -v service >/dev/null 2>&1; then
    $SUDO service redis-server stop >/dev/null 2>&1 || true
    $SUDO service postgresql stop >/dev/null 2>&1 || true
    $SUDO service pgbouncer stop >/dev/null 2>&1 || true
  fi
fi
echo "install-deps: all present"

# Client-library test suites (crates/pgpulse-proxy/tests/client_libraries.rs):
# psycopg 3 + pytest for tests/clients/python, node-postgres and
# pg-copy-streams for tests/clients/node. Installed only when missing.
client_apt=()
command -v python3 >/dev/null 2>&1 || client_apt+=(python3 python3-pip)
command -v python3 >/dev/null 2>&1 && ! python3 -m pip --version >/dev/null 2>&1 && client_apt+=(python3-pip)
command -v node >/dev/null 2>&1 || client_apt+=(nodejs)
command -v npm >/dev/null 2>&1 || client_apt+=(npm)
if [ ${#client_apt[@]} -gt 0 ]; then
  echo "install-deps: installing ${client_apt[*]}"
  SUDO=""
  if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${client_apt[@]}" >/dev/null
fi
if ! python3 -c 'import psycopg, pytest' >/dev/null 2>&1; then
  echo "install-deps: installing psycopg[binary] and pytest (pip)"
  # Debian's own python3 refuses user packages without this flag (PEP 668).
  python3 -m pip install --quiet 'psycopg[binary]' pytest ||
    python3 -m pip install --quiet --break-system-packages 'psycopg[binary]' pytest
fi
node_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/tests/clients/node"
if [ -f "$node_dir/package.json" ] &&
  ! (cd "$node_dir" && node -e "require('pg'); require('pg-copy-streams')" >/dev/null 2>&1); then
  echo "install-deps: installing node modules in tests/clients/node (npm)"
  if [ -f "$node_dir/package-lock.json" ]; then
    npm ci --silent --prefix "$node_dir"
  else
    npm install --silent --prefix "$node_dir"
  fi
fi
# The dashboard's browser test (crates/pgpulse-api/tests/browser.rs) drives
# Debian's chromium (installed above) with playwright-core from tests/browser.
browser_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/tests/browser"
if [ -f "$browser_dir/package.json" ] &&
  ! (cd "$browser_dir" && node -e "require('playwright-core')" >/dev/null 2>&1); then
  echo "install-deps: installing node modules in tests/browser (npm)"
  npm ci --silent --prefix "$browser_dir"
fi
echo "install-deps: client libraries present"
