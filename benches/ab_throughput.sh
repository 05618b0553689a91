#!/usr/bin/env bash
# Compares two builds of the throughput benchmark, or two backends in one build, run in turn
# (A B A B ..., B first on even rounds) so that a slow minute on this machine hits both: prints,
# for every RESULT figure, each side's median, the ratio B/A of the medians and each round's ratio.
#
#   bash benches/ab_throughput.sh [--runs N] BIN_A BIN_B [-- BENCH_ARGS...]
#   bash benches/ab_throughput.sh [--runs N] --backends A,B BIN [-- BENCH_ARGS...]
#   bash benches/ab_throughput.sh [--runs N] --b-args "ARGS" BIN [-- BENCH_ARGS...]
#
# BIN_A and BIN_B are throughput executables (`cargo bench --bench throughput --no-run` prints
# the path; copy it aside before rebuilding). With `--backends A,B`, one executable runs side A
# with `--backends A` and side B with `--backends B` (e.g. `flex,ndarray`: ndarray's speed as a
# share of flex's). With `--b-args "ARGS"`, one executable runs both sides and side B adds ARGS
# (e.g. `--augment`: what augmentation costs an epoch). BENCH_ARGS go to both (default: CNN A, CNN B and MLP A on every compiled
# CPU backend, train@64, infer@1 and @1000, 1.5 s per figure).
set -euo pipefail

usage="usage: $0 [--runs N] BIN_A BIN_B | --backends A,B BIN | --b-args ARGS BIN [-- BENCH_ARGS...]"
runs=3
backends=""
b_args=""
while [[ "${1:-}" == --runs || "${1:-}" == --backends || "${1:-}" == --b-args ]]; do
    case "$1" in
        --runs) runs="${2:?$usage}" ;;
        --backends) backends="${2:?$usage}" ;;
        --b-args) b_args="${2:?$usage}" ;;
    esac
    shift 2
done
if [[ -n "$b_args" ]]; then
    [[ $# -ge 1 && -z "$backends" ]] || { echo "$usage" >&2; exit 2; }
    bin_a="$1"
    bin_b="$1"
    args_a=()
    read -r -a args_b <<<"$b_args"
    shift 1
elif [[ -n "$backends" ]]; then
    [[ "$backends" =~ ^[a-z]+,[a-z]+$ ]] || { echo "$usage" >&2; exit 2; }
    [[ $# -ge 1 ]] || { echo "$usage" >&2; exit 2; }
    bin_a="$1"
    bin_b="$1"
    args_a=(--backends "${backends%,*}")
    args_b=(--backends "${backends#*,}")
    shift 1
else
    [[ $# -ge 2 ]] || { echo "$usage" >&2; exit 2; }
    bin_a="$1"
    bin_b="$2"
    args_a=()
    args_b=()
    shift 2
fi
[[ "${1:-}" == "--" ]] && shift
if [[ $# -eq 0 ]]; then
    set -- --models cnn-a,cnn-b,mlp-a --train-batches 64 --infer-batches 1,1000 \
        --seconds 1.5 --epoch-backends none
fi

out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
for round in $(seq 1 "$runs"); do
    order="a b"
    (( round % 2 == 0 )) && order="b a"
    for side in $order; do
        bin="$bin_a"
        side_args=("${args_a[@]}")
        if [[ "$side" == b ]]; then
            bin="$bin_b"
            side_args=("${args_b[@]}")
        fi
        echo "round $round: $side ($bin ${side_args[*]})" >&2
        "$bin" "$@" "${side_args[@]}" | grep '^RESULT' >"$out/$side.$round"
    done
done

python3 - "$out" "$runs" "$backends" <<'EOF'
import statistics, sys
from pathlib import Path

out, runs, backends = Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
figures = {}
for side in "ab":
    for r in range(1, runs + 1):
        for line in (out / f"{side}.{r}").read_text().splitlines():
            _, backend, model, figure, value = line.split()
            # Comparing backends: the sides' figures pair up by model and figure alone.
            key = (backends.replace(",", "/") if backends else backend, model, figure)
            figures.setdefault(key, {"a": {}, "b": {}})[side][r] = float(value)

print(f"{'backend':13} {'model':6} {'figure':12} {'median A':>11} {'median B':>11} {'B/A':>6}  rounds B/A")
for (backend, model, figure), sides in figures.items():
    a, b = sides["a"], sides["b"]
    if not a or not b:
        print(f"{backend:13} {model:6} {figure:12} printed by side {'A' if a else 'B'} only")
        continue
    rounds = [b[r] / a[r] for r in sorted(a) if r in b and a[r] > 0]
    ma, mb = statistics.median(a.values()), statistics.median(b.values())
    ratio = mb / ma if ma > 0 else float("nan")
    each = ", ".join(f"{x:.2f}" for x in rounds)
    print(f"{backend:13} {model:6} {figure:12} {ma:11.2f} {mb:11.2f} {ratio:6.3f}  ({each})")
print("(latency is in ms, lower is better; every other figure is in images/s)")
EOF
