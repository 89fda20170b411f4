#!/bin/sh
# Issue 15 item 1: what the host's per-request log costs. Loopback only.
#
#   cargo build --release && benches/hostlog.sh [RESULTS_DIR]
#
# Starts `kmsload host --charged` three ways, in turn, ROUNDS times (default 3): with `-q` (no
# per-request log), with its default text log and with `--log-format json`, each log to a file.
# Each is driven by the same `kmsload run scenarios/scale.toml` (64 clients, closed loop, kept
# alive) for DURATION (10 s). Prints every run's activations per second and the host's CPU per
# request (from /proc, read before the host stops), then per format the median ratio of its
# throughput to the `-q` run of the same round (target >= 0.85). On a machine whose cores the
# host and the runner already fill, the log thread competes with both: run it on an otherwise
# idle machine. PORT must be below the ephemeral range (32768). Every run is bounded by its
# duration; the host is stopped after each.
set -eu
K=${KMSLOAD:-target/release/kmsload}
OUT=${1:-results/hostlog}
DURATION=${DURATION:-10s}
ROUNDS=${ROUNDS:-3}
PORT=${PORT:-21790}
T=127.0.0.1:$PORT
mkdir -p "$OUT"
HOST=""
trap '[ -n "$HOST" ] && kill "$HOST" 2>/dev/null || true' EXIT INT TERM

# The host's CPU time so far in seconds (utime + stime of /proc/PID/stat).
cpu_s() {
    awk -v hz="$(getconf CLK_TCK)" '{ sub(/^.*\) /, ""); print ($12 + $13) / hz }' "/proc/$1/stat"
}

# one MODE ROUND: prints "activations/s"; the row goes to stderr.
one() {
    mode=$1 i=$2
    case $mode in
    quiet) set -- -q ;;
    text) set -- ;;
    json) set -- --log-format json ;;
    esac
    "$K" host --charged --listen "$T" "$@" 2>"$OUT/host-$mode-$i.log" >"$OUT/host-$mode-$i.out" &
    HOST=$!
    sleep 0.5
    if ! kill -0 "$HOST" 2>/dev/null; then
        echo "the host did not start (see $OUT/host-$mode-$i.log); choose another PORT" >&2
        exit 2
    fi
    dir="$OUT/run-$mode-$i"
    rm -rf "$dir"
    "$K" run scenarios/scale.toml --quiet --duration "$DURATION" --events off --no-html \
        --target "$T" --out "$dir" >/dev/null 2>&1 || true
    cpu=$(cpu_s "$HOST")
    kill -INT "$HOST"
    wait "$HOST" || true
    HOST=""
    python3 - "$dir/summary.json" "$mode" "$i" "$cpu" "$OUT/host-$mode-$i.log" <<'PY'
import json, sys
path, mode, i, cpu, log = sys.argv[1:]
s = json.load(open(path))
act = s["by_outcome"]["activated"] / s["elapsed_s"]
lines = sum(1 for _ in open(log, "rb"))
print(f"{mode} round {i}: {act:.0f} activations/s, host CPU {float(cpu) * 1e6 / max(s['attempts'], 1):.1f} us "
      f"per request, {lines} log lines for {s['attempts']} requests", file=sys.stderr)
print(f"{act:.0f}")
PY
}

median() { tr ' ' '\n' | sed '/^$/d' | sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }

text="" json=""
i=1
while [ "$i" -le "$ROUNDS" ]; do
    q=$(one quiet "$i")
    t=$(one text "$i")
    j=$(one json "$i")
    text="$text $(awk "BEGIN {printf \"%.2f\", $t / $q}")"
    json="$json $(awk "BEGIN {printf \"%.2f\", $j / $q}")"
    i=$((i + 1))
done
echo "text log / -q: median $(echo $text | median) [$text ] (target >= 0.85)"
echo "json log / -q: median $(echo $json | median) [$json ]"
