#!/usr/bin/env bash
# Time to accuracy, digitnet against PyTorch: the same model trained to the same test accuracy
# under the same stop rule, timed as whole processes (start to exit, `import torch` included).
#
#   DIGITNET_DATA_DIR=../shared/data/mnist bash benches/time_to_accuracy.sh [--runs 3]
#       [--models cnn-b:0.99,cnn-bn:0.994] [--max-epochs 10]
#
# Both sides train on all 60,000 training images (batch 64, shuffled, Adam lr 1e-3 with a cosine
# schedule to 1% over --max-epochs epochs, stepped every batch), evaluate the test set after each
# epoch and stop at the first epoch that reaches the model's target:
#   digitnet: `digitnet train --preset P --validate-on-test --target-accuracy T` (burn-train's
#             Learner with its metrics, checkpoints and plots, then the CLI's test report);
#   PyTorch:  the preset's twin in benches/baseline/pytorch_bench.py --time-to-accuracy T.
# Round r seeds both sides with r (initial weights and shuffling), so the median spans three
# seeds: how many epochs a model needs to reach its target changes with the seed. The two sides
# take turns model by model, and which goes first alternates from round to round.
# Prints each run's `RESULT <side> <model> tta-seconds|tta-epochs|tta-test-accuracy` lines, each
# side's medians (`SIDES`), and `RATIO <model> time-to-accuracy <PyTorch s / digitnet s>`
# (above 1: digitnet gets there first).
set -euo pipefail
cd "$(dirname "$0")/.."
usage="usage: $0 [--runs N] [--models PRESET:TARGET,...] [--max-epochs N]"
runs=3
models="cnn-b:0.99,cnn-bn:0.994"
max_epochs=10
while [[ $# -gt 0 ]]; do
    case "$1" in
        --runs) runs="${2:?$usage}" ;;
        --models) models="${2:?$usage}" ;;
        --max-epochs) max_epochs="${2:?$usage}" ;;
        *) echo "$usage" >&2; exit 2 ;;
    esac
    shift 2
done
: "${DIGITNET_DATA_DIR:?set DIGITNET_DATA_DIR to a directory holding the MNIST IDX files}"
export DIGITNET_DATA_DIR
venv=${DIGITNET_BENCH_VENV:-$HOME/.cache/digitnet-bench/venv}
"$venv/bin/python" -c "import torch" 2>/dev/null ||
    { echo "no PyTorch in $venv: run benches/compare.sh once (it creates the venv)" >&2; exit 1; }
cargo build --quiet --release --bin digitnet
digitnet="${CARGO_TARGET_DIR:-target}/release/digitnet"
out=target/bench-compare/tta
rm -rf "$out"
mkdir -p "$out"
artifacts=$(mktemp -d)
trap 'rm -rf "$artifacts"' EXIT

now() { date +%s.%N; }
since() { awk -v a="$(now)" -v b="$1" 'BEGIN { printf "%.1f", a - b }'; }

run_digitnet() { # preset target log seed
    local start
    start=$(now)
    "$digitnet" train --preset "$1" --epochs "$max_epochs" --seed "$4" --validate-on-test \
        --target-accuracy "$2" --data-dir "$DIGITNET_DATA_DIR" --artifacts "$artifacts" \
        --progress quiet >"$3" 2>&1
    local seconds epochs accuracy
    seconds=$(since "$start")
    epochs=$(grep -c ',train,' "$artifacts/metrics.csv")
    accuracy=$(sed -n 's/^test accuracy: //p' "$3")
    printf "RESULT digitnet %s tta-seconds %s\nRESULT digitnet %s tta-epochs %s\n" \
        "$1" "$seconds" "$1" "$epochs"
    printf "RESULT digitnet %s tta-test-accuracy %s\n" "$1" "$accuracy"
}

run_pytorch() { # preset target log seed
    local start
    start=$(now)
    "$venv/bin/python" benches/baseline/pytorch_bench.py --threads "$(nproc)" --models "$1" \
        --time-to-accuracy "$2" --max-epochs "$max_epochs" --seed "$4" >"$3" 2>&1
    local seconds
    seconds=$(since "$start")
    printf "RESULT pytorch %s tta-seconds %s\n" "$1" "$seconds"
    grep '^RESULT' "$3"
}

echo "# $(date -u +%Y-%m-%dT%H:%MZ), $(lscpu | sed -n 's/^Model name: *//p' | head -1), $(nproc) threads, $runs round(s), at most $max_epochs epochs"
for round in $(seq 1 "$runs"); do
    sides="digitnet pytorch"
    (( round % 2 == 0 )) && sides="pytorch digitnet"
    for pair in ${models//,/ }; do
        preset=${pair%:*}
        target=${pair#*:}
        for side in $sides; do
            echo "# round $round: $side $preset to $target" >&2
            "run_$side" "$preset" "$target" "$out/$side-$preset-$round.log" "$round" |
                tee -a "$out/results.txt"
        done
    done
done

python3 - "$out/results.txt" <<'EOF'
import statistics, sys
values = {}
for line in open(sys.argv[1]):
    _, side, model, figure, value = line.split()
    values.setdefault((model, figure), {}).setdefault(side, []).append(float(value))
models = sorted({m for m, _ in values}, key=list(dict.fromkeys(m for m, _ in values)).index)
for model in models:
    for figure in ("tta-seconds", "tta-epochs", "tta-test-accuracy"):
        sides = values.get((model, figure), {})
        cells = "  ".join(f"{side} {statistics.median(v):g} ({', '.join(f'{x:g}' for x in v)})"
                          for side, v in sorted(sides.items()))
        print(f"SIDES {model} {figure}  {cells}")
    seconds = values[(model, "tta-seconds")]
    ratio = statistics.median(seconds["pytorch"]) / statistics.median(seconds["digitnet"])
    print(f"RATIO {model} time-to-accuracy {ratio:.2f}")
EOF
