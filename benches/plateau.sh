#!/bin/sh
# Issue 15 item 3: does overload plateau? In-process host, loopback only.
#
#   cargo build --release && benches/plateau.sh [RESULTS_DIR]
#
# For each connection policy (scenarios/overload.toml: a new connection per activation;
# scenarios/bench.toml: kept alive), a ladder of offered rates (NEW_LADDER, KEEP_LADDER) for
# DURATION (10 s) each finds the sustained rate S: the highest step, before the first that
# fails, whose activations per second reach 95 % of the offered rate with no failure and at most
# 1 % not started. Then the same scenario is offered 1.5 x S. Overload plateaus when the
# activations per second at 1.5 x S are at least 90 % of those at S. Every run prints
# activations/s (activated / elapsed), not started, late attempts, p50/p99 of total latency,
# failures, kmsload's CPU (host included) per activation and as a share of the cores (well
# below 100 %: something else on the machine took the rest, and the figures are not
# kmsload's), and the machine's listen-queue overflows over the run (TcpExtListenOverflows and
# TcpExtListenDrops deltas from /proc/net/netstat, as `nstat` shows them; machine-wide, so
# other work on the machine counts too). NEW_SUSTAINED / KEEP_SUSTAINED skip the ladder and
# take that rate as S (to compare two builds at the same rates). Every run is bounded by its
# duration and the scenario's attempts.
set -eu
K=${KMSLOAD:-target/release/kmsload}
OUT=${1:-results/plateau}
DURATION=${DURATION:-10s}
NEW_LADDER=${NEW_LADDER:-4000 6000 8000 10000 12000 14000}
KEEP_LADDER=${KEEP_LADDER:-10000 20000 30000 40000 50000 60000}
mkdir -p "$OUT"

# Prints "TcpExtListenOverflows TcpExtListenDrops" now (0 0 where unreadable).
overflows() {
    awk '/^TcpExt:/ { if (!h) { for (i = 2; i <= NF; i++) n[$i] = i; h = 1 } else { print $n["ListenOverflows"] + 0, $n["ListenDrops"] + 0; f = 1 } }
         END { if (!f) print 0, 0 }' /proc/net/netstat 2>/dev/null || echo 0 0
}

# run SCENARIO TAG RATE: one run; prints "activations/s not_started failed" on stdout and
# the whole row on stderr.
run() {
    sc=$1 tag=$2 rate=$3
    dir="$OUT/$tag-$rate"
    set -- $(overflows)
    o0=$1 d0=$2
    "$K" run "$sc" --quiet --rate "$rate" --duration "$DURATION" --events off --no-html \
        --out "$dir" >/dev/null 2>&1 || true
    set -- $(overflows)
    o1=$1 d1=$2
    python3 - "$dir/summary.json" "$tag" "$rate" "$((o1 - o0))" "$((d1 - d0))" <<'PY'
import json, sys
path, tag, rate, ovf, drops = sys.argv[1:]
s = json.load(open(path))
o = s["by_outcome"]
act = o["activated"] / s["elapsed_s"]
lat = s["latency_us"]["total"]
g = s["generator"]
cpu = g.get("process_cpu_s")
per = f"{cpu * 1e6 / max(o['activated'], 1):.1f} us" if cpu is not None else "n/a"
print(f"{tag} offered {rate}/s: {act:.0f} activations/s, elapsed {s['elapsed_s']:.1f} s, "
      f"not started {s['not_started']}, late {g['late_attempts']}, max lag {g['max_lag_us'] / 1e3:.0f} ms, "
      f"p50 {lat['p50'] / 1e3:.1f} ms, p99 {lat['p99'] / 1e3:.1f} ms, failed {o['failed']} {s['by_cause']}, "
      f"CPU {cpu} s ({g.get('process_cpu_busy', 0) or 0:.0%} of the cores), {per} per activation, "
      f"listen overflows {ovf}, drops {drops}", file=sys.stderr)
print(f"{act:.0f} {s['not_started']} {o['failed']} {s['attempts']}")
PY
}

policy() { # TAG SCENARIO LADDER [SUSTAINED]
    tag=$1 sc=$2 ladder=$3 sustained=${4:-} at=""
    if [ -n "$sustained" ]; then
        set -- $(run "$sc" "$tag" "$sustained")
        at=$1 ladder=""
    fi
    for r in $ladder; do
        set -- $(run "$sc" "$tag" "$r")
        if [ "$3" -eq 0 ] && [ "$1" -ge $((r * 95 / 100)) ] && [ "$2" -le $(($4 / 100)) ]; then
            sustained=$r at=$1
        else
            break
        fi
    done
    if [ -z "$sustained" ]; then
        echo "$tag: no step of [$ladder] was sustained; lower the ladder" >&2
        return
    fi
    over=$((sustained * 3 / 2))
    set -- $(run "$sc" "$tag" "$over")
    echo "$tag: sustained $sustained/s ($at activations/s); offered $over/s: $1 activations/s, ratio $(awk "BEGIN {printf \"%.2f\", $1 / $at}") (target >= 0.90)"
}

policy new scenarios/overload.toml "$NEW_LADDER" "${NEW_SUSTAINED:-}"
policy keep-alive scenarios/bench.toml "$KEEP_LADDER" "${KEEP_SUSTAINED:-}"
