#!/bin/sh
# Issue 15 item 2: the in-process host against a separate `kmsload host -q` process, same
# runner, same scenario, at saturation. Loopback only.
#
#   cargo build --release && benches/inproc.sh [RESULTS_DIR]
#
# Runs scenarios/bench.toml at --rate RATE (default 200 000/s: far past saturation, so the open
# model falls behind and reports most attempts as not started) for DURATION (10 s), in
# alternating pairs: separate host, in-process host, separate, in-process ... (PAIRS, default
# 3), and scenarios/scale.toml (64 clients, closed loop) the same way unless SKIP_SCALE is set.
# Prints every run's activations per second (activated / elapsed) and the medians; the
# target is in-process median >= 0.85 x separate median. Every run is bounded by its
# duration; the host is stopped at exit. PORT must be below the ephemeral range (32768).
set -eu
K=${KMSLOAD:-target/release/kmsload}
OUT=${1:-results/inproc}
DURATION=${DURATION:-10s}
RATE=${RATE:-200000}
PAIRS=${PAIRS:-3}
PORT=${PORT:-21788}
T=127.0.0.1:$PORT
mkdir -p "$OUT"
"$K" host -q --charged --listen "$T" >"$OUT/host.log" 2>&1 &
HOST=$!
trap 'kill "$HOST" 2>/dev/null || true' EXIT INT TERM
sleep 1
if ! kill -0 "$HOST" 2>/dev/null; then
    echo "the host did not start (see $OUT/host.log); choose another PORT" >&2
    exit 2
fi

# NAME: "activated/s achieved_rate not_started cpu_s"
figures() {
    python3 - "$1/summary.json" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
act = s["by_outcome"]["activated"] / s["elapsed_s"]
fails = s["by_outcome"]["failed"]
print(f'{act:.0f} {s["achieved_rate"]:.0f} {s["not_started"]} {s["generator"].get("process_cpu_s")} {fails}')
PY
}
median() { tr ' ' '\n' | sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }

one() { # SCENARIO TAG I [ARGS...]
    sc=$1 tag=$2 i=$3
    shift 3
    dir="$OUT/$tag-$i"
    "$K" run "$sc" --quiet --duration "$DURATION" --events off --no-html --out "$dir" "$@" \
        >/dev/null 2>&1 || true
    set -- $(figures "$dir")
    echo "$tag run $i: $1 activations/s (achieved_rate $2/s, not started $3, cpu $4 s, failed $5)" >&2
    echo "$1"
}

pairs() { # NAME SCENARIO [ARGS...]
    name=$1 sc=$2
    shift 2
    sep="" inp=""
    i=1
    while [ "$i" -le "$PAIRS" ]; do
        sep="$sep $(one "$sc" "$name-separate" "$i" --target "$T" "$@")"
        inp="$inp $(one "$sc" "$name-inprocess" "$i" "$@")"
        i=$((i + 1))
    done
    ms=$(echo $sep | median)
    mi=$(echo $inp | median)
    echo "$name: separate host median $ms/s [$sep ], in-process median $mi/s [$inp ], ratio $(awk "BEGIN {printf \"%.2f\", $mi / $ms}")"
}

pairs bench scenarios/bench.toml --rate "$RATE"
if [ "${SKIP_SCALE:-}" = "" ]; then
    pairs scale scenarios/scale.toml
fi
