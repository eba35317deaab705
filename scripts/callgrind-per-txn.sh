#!/usr/bin/env bash
# Instructions pgpulse executes per pgbench transaction, counted by
# callgrind (all of pgpulse's threads, user space only). Unlike TPS, the
# count repeats to within a few per cent whatever else the machine is doing,
# so it compares two builds on a noisy 2-core machine (BENCHMARKS.md,
# "Instructions per transaction").
#
# usage: scripts/callgrind-per-txn.sh BINARY CACHE_MODE PROTOCOL KEYS UPSTREAM_URL
#   BINARY        a pgpulse binary (release)
#   CACHE_MODE    off | all
#   PROTOCOL      simple | extended | prepared
#   KEYS          how many pgbench_accounts rows the reads pick from
#                 (1000: a hot set the cache holds; 1000000: mostly misses)
#   UPSTREAM_URL  postgres://USER:PASS@HOST:PORT/DB, initialized by
#                 `pgbench -i -s 10` (scale >= KEYS / 100000)
# Needs valgrind, pgbench and psql. Prints "Ir=<total> per_txn=<n>".
set -euo pipefail
bin=$1 mode=$2 proto=$3 keys=$4 url=$5
work=$(mktemp -d)
trap 'kill -INT "$pid" 2>/dev/null || true; rm -rf "$work"' EXIT
port=$((20000 + RANDOM % 20000))
http=$((port + 1))
printf '\\set aid random(1, %d)\nSELECT abalance FROM pgbench_accounts WHERE aid = :aid;\n' \
    "$keys" >"$work/select.sql"
(cd "$work" && PGPULSE_CACHE_MODE=$mode DATABASE_URL=$url \
    PGPULSE_LISTEN=127.0.0.1:$port PGPULSE_HTTP_LISTEN=127.0.0.1:$http \
    exec valgrind --tool=callgrind --callgrind-out-file="$work/cg.out" "$bin" serve \
    >"$work/log" 2>&1) &
pid=$!
for _ in $(seq 1 240); do
    (echo >"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
    sleep 0.5
done
# The connection string's user, password and database, with pgpulse's port.
target=$(sed -E "s#@[^/]+/#@127.0.0.1:$port/#" <<<"$url")
run() { pgbench -n -c 4 -j 2 -t "$1" -M "$proto" -f "$work/select.sql" "$target"; }
run 3000 >/dev/null 2>&1 # warm-up: connections, catalog, cache
sleep 2
vgpid=$(pgrep -f "callgrind-out-file=$work/cg.out" | head -1)
callgrind_control -z "$vgpid" >/dev/null 2>&1
run 5000 | grep "actually processed"
sleep 2
callgrind_control -d "$vgpid" >/dev/null 2>&1
sleep 1
dump=$(ls -t "$work"/cg.out.* | head -1)
# CALLGRIND_KEEP=FILE keeps the profile (callgrind_annotate --inclusive=yes FILE).
if [ -n "${CALLGRIND_KEEP:-}" ]; then cp "$dump" "$CALLGRIND_KEEP"; fi
ir=$(callgrind_annotate "$dump" 2>/dev/null | grep -m1 "PROGRAM TOTALS" | awk '{print $1}' | tr -d ,)
echo "Ir=$ir per_txn=$((ir / 20000))"
