#!/bin/sh
# Scale-out figures for README "Running from several machines", on one machine, loopback only.
#
#   cargo build --release && benches/scale.sh [RESULTS_DIR]
#
# 1. achieved rate: scenarios/scale.toml (64 clients, closed loop, kept-alive connections)
#    for DURATION against `kmsload host -q --charged`, once as one process and once as 4
#    shards (16 clients each) with 2 source addresses each (127.0.0.2 .. 127.0.0.9), started
#    together with --start-at, then merged;
# 2. merge cost: the same scenario in full as 4 shards of 1 000 000 attempts each, then
#    `kmsload merge` under /usr/bin/time -v (wall time, peak RSS).
# Every run is bounded by the scenario's attempts and duration; the host is stopped at exit.
set -eu
K=${KMSLOAD:-target/release/kmsload}
OUT=${1:-results/scale}
DURATION=${DURATION:-15s}
PORT=${PORT:-41688}
SC=scenarios/scale.toml
T=127.0.0.1:$PORT
rate() { grep -m1 '"achieved_rate"' "$1/summary.json" | tr -dc '0-9.'; }
attempts() { grep -m1 '"attempts"' "$1/summary.json" | tr -dc '0-9'; }

mkdir -p "$OUT"
"$K" host -q --charged --listen "$T" >"$OUT/host.log" 2>&1 &
HOST=$!
trap 'kill "$HOST" 2>/dev/null || true' EXIT INT TERM
sleep 1
if ! kill -0 "$HOST" 2>/dev/null; then
    echo "the host did not start (see $OUT/host.log); choose another PORT" >&2
    exit 2
fi

shards() { # NAME [EXTRA ARGS...]: 4 shards with a common start, waits for all
    name=$1
    shift
    at=$(date -u -d '+3 seconds' +%Y-%m-%dT%H:%M:%SZ)
    pids=""
    for i in 0 1 2 3; do
        "$K" run "$SC" --quiet --target "$T" --shard "$i/4" --run-id "$name" --start-at "$at" \
            --source-address "127.0.0.$((2 * i + 2)),127.0.0.$((2 * i + 3))" \
            --out "$OUT/$name-shard-$i" "$@" >/dev/null &
        pids="$pids $!"
    done
    for p in $pids; do wait "$p" || true; done
}

"$K" run "$SC" --quiet --target "$T" --duration "$DURATION" --out "$OUT/whole" >/dev/null || true
shards rate --duration "$DURATION"
"$K" merge "$OUT"/rate-shard-? --out "$OUT/rate-merged" >/dev/null || true
echo "one process:     $(attempts "$OUT/whole") attempts, $(rate "$OUT/whole") /s"
for i in 0 1 2 3; do
    echo "shard $i:         $(attempts "$OUT/rate-shard-$i") attempts, $(rate "$OUT/rate-shard-$i") /s"
done
echo "4 shards merged: $(attempts "$OUT/rate-merged") attempts, $(rate "$OUT/rate-merged") /s"

if [ "${SKIP_MERGE_COST:-}" = "" ]; then
    shards big
    /usr/bin/time -v "$K" merge "$OUT"/big-shard-? --out "$OUT/big-merged" \
        >/dev/null 2>"$OUT/big-merge-time.txt" || true
    echo "merge of 4 x $(attempts "$OUT/big-shard-0") attempts: $(attempts "$OUT/big-merged") merged"
    grep -E 'Elapsed \(wall|Maximum resident' "$OUT/big-merge-time.txt"
fi
