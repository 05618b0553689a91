#!/usr/bin/env bash
# Time to accuracy, digitnet against PyTorch, back to back on this machine:
#   digitnet: `digitnet train` of the default CNN for DIGITNET_TTA_EPOCHS epochs (default 2) on
#             55,000 images (5,000 held out for validation), then the test set; the whole process.
#   PyTorch:  CNN B, 3 epochs of all 60,000 images (batch 64, Adam), then the test set, timed from
#             after `import torch` (benches/baseline/pytorch_bench.py --time-to-accuracy 3).
# Prints each run's test accuracy and seconds, then `RATIO time-to-accuracy <PyTorch s / ours>`
# (higher is better).
#
#   DIGITNET_DATA_DIR=../shared/data/mnist bash benches/time_to_accuracy.sh
set -euo pipefail
cd "$(dirname "$0")/.."
: "${DIGITNET_DATA_DIR:?set DIGITNET_DATA_DIR to a directory holding the MNIST IDX files}"
export DIGITNET_DATA_DIR
epochs=${DIGITNET_TTA_EPOCHS:-2}
venv=${DIGITNET_BENCH_VENV:-$HOME/.cache/digitnet-bench/venv}
"$venv/bin/python" -c "import torch" 2>/dev/null ||
  { echo "no PyTorch in $venv: run benches/compare.sh once (it creates the venv)" >&2; exit 1; }
out=target/bench-compare
mkdir -p "$out"
cargo build --quiet --release --bin digitnet
artifacts=$(mktemp -d)
trap 'rm -rf "$artifacts"' EXIT

echo "# $(date -u +%Y-%m-%dT%H:%MZ), $(lscpu | sed -n 's/^Model name: *//p' | head -1), $(nproc) threads"
start=$(date +%s.%N)
"${CARGO_TARGET_DIR:-target}/release/digitnet" train --epochs "$epochs" \
  --data-dir "$DIGITNET_DATA_DIR" --artifacts "$artifacts" > "$out/tta-digitnet.log" 2>&1
ours=$(awk -v a="$(date +%s.%N)" -v b="$start" 'BEGIN { printf "%.1f", a - b }')
accuracy=$(sed -n 's/^test accuracy: //p' "$out/tta-digitnet.log")
printf "RESULT digitnet cnn-bn tta-test-accuracy %s\nRESULT digitnet cnn-bn tta-seconds %s\n" \
  "$accuracy" "$ours"
"$venv/bin/python" benches/baseline/pytorch_bench.py --threads "$(nproc)" --time-to-accuracy 3 |
  tee "$out/tta-pytorch.txt"
theirs=$(awk '$4 == "tta-seconds" { print $5 }' "$out/tta-pytorch.txt")
awk -v t="$theirs" -v o="$ours" 'BEGIN { printf "RATIO time-to-accuracy %.2f\n", t / o }'
