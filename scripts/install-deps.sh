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
