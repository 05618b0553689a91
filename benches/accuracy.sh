#!/usr/bin/env bash
# Full-MNIST accuracy verification: trains each model with the project's own CLI (the same command
# a user runs), then checks its test accuracy against the target. Takes hours on a 2-core CPU, so
# it is a benchmark, not a test: its figures go in the README.
#
#   DIGITNET_DATA_DIR=../shared/data/mnist bash benches/accuracy.sh [MODEL...]
#
# MODEL is any of cnn-bn, cnn-b, mlp-a (default: all three). Prints one line per model:
#   ACCURACY <model> epochs=<n> test=<accuracy> target=<target> seconds=<s> img/s=<rate> PASS|FAIL
set -euo pipefail
cd "$(dirname "$0")/.."
: "${DIGITNET_DATA_DIR:?set DIGITNET_DATA_DIR to a directory holding the MNIST IDX files}"

cargo build --release --quiet
bin=target/release/digitnet
mkdir -p artifacts

# model preset, epochs, target test accuracy
declare -A EPOCHS=([cnn-bn]=12 [cnn-b]=5 [mlp-a]=10)
declare -A TARGET=([cnn-bn]=0.994 [cnn-b]=0.990 [mlp-a]=0.975)

models=("$@")
[ ${#models[@]} -gt 0 ] || models=(cnn-bn cnn-b mlp-a)
status=0
for model in "${models[@]}"; do
  epochs=${EPOCHS[$model]:?unknown model $model}
  dir=artifacts/accuracy-$model
  start=$(date +%s)
  "$bin" train --preset "$model" --epochs "$epochs" --artifacts "$dir" --progress lines \
    >"$dir.out" 2>"$dir.log"
  seconds=$(( $(date +%s) - start ))
  accuracy=$(sed -n 's/^test accuracy: //p' "$dir.out")
  train_images=$(( 55000 * epochs ))
  rate=$(awk -v n="$train_images" -v s="$seconds" 'BEGIN { printf "%.0f", n / (s > 0 ? s : 1) }')
  verdict=$(awk -v a="$accuracy" -v t="${TARGET[$model]}" 'BEGIN { print (a >= t) ? "PASS" : "FAIL" }')
  [ "$verdict" = PASS ] || status=1
  echo "ACCURACY $model epochs=$epochs test=$accuracy target=${TARGET[$model]} seconds=$seconds img/s=$rate $verdict"
done
exit $status
