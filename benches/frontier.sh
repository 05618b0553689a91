#!/usr/bin/env bash
# The accuracy frontier: one model trained with augmentation by the project's own CLI on full
# MNIST, the test set evaluated after every epoch (PyTorch's MNIST example's rule; every epoch
# runs, so the last epoch's figure was not picked by looking at the test set). Prints each
# epoch's test accuracy and the wall time so far, the time to 99.5% and to 99.6%, and the final
# test accuracy, which `digitnet eval --artifacts DIR` reproduces.
#
#   DIGITNET_DATA_DIR=../shared/data/mnist bash benches/frontier.sh [--preset P] [--epochs N]
#       [--augment SPEC] [--artifacts DIR]
#
# Defaults: the default CNN (cnn-bn), 20 epochs, `--augment` with its default distortions,
# artifacts/frontier. Lines:
#   EPOCH <n> test=<accuracy> seconds=<wall time since the start of training>
#   REACHED <target> epoch=<n> seconds=<s>    (or NOT-REACHED <target> best=<accuracy>)
#   FRONTIER <preset> epochs=<n> test=<final accuracy> seconds=<s> augment=<spec>
set -euo pipefail
cd "$(dirname "$0")/.."
: "${DIGITNET_DATA_DIR:?set DIGITNET_DATA_DIR to a directory holding the MNIST IDX files}"
preset=cnn-bn
epochs=20
augment=default
dir=artifacts/frontier
while [ $# -gt 0 ]; do
  case "$1" in
    --preset) preset=${2:?}; shift 2 ;;
    --epochs) epochs=${2:?}; shift 2 ;;
    --augment) augment=${2:?}; shift 2 ;;
    --artifacts) dir=${2:?}; shift 2 ;;
    *) echo "usage: bash benches/frontier.sh [--preset P] [--epochs N] [--augment SPEC] [--artifacts DIR]" >&2
       exit 2 ;;
  esac
done

cargo build --release --quiet --bin digitnet
bin=$(cargo metadata --format-version 1 --no-deps |
  python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')/release/digitnet
mkdir -p "$(dirname "$dir")"
"$bin" train --preset "$preset" --epochs "$epochs" --augment "$augment" --validate-on-test \
  --artifacts "$dir" --progress lines >"$dir.out" 2>"$dir.log"

python3 - "$dir/metrics.csv" "$preset" "$epochs" "$augment" <<'PY'
import csv, sys
path, preset, epochs, augment = sys.argv[1:]
rows = list(csv.DictReader(open(path)))
elapsed, tests = 0.0, []
for row in rows:
    elapsed += float(row["seconds"])
    if row["split"] == "valid":  # --validate-on-test: the test set
        tests.append((int(row["epoch"]), float(row["accuracy"]), elapsed))
for epoch, accuracy, seconds in tests:
    print(f"EPOCH {epoch} test={accuracy:.4f} seconds={seconds:.0f}")
for target in (0.995, 0.996):
    hit = next((t for t in tests if t[1] >= target), None)
    if hit:
        print(f"REACHED {target} epoch={hit[0]} seconds={hit[2]:.0f}")
    else:
        print(f"NOT-REACHED {target} best={max(t[1] for t in tests):.4f}")
epoch, accuracy, seconds = tests[-1]
print(f"FRONTIER {preset} epochs={epoch} test={accuracy:.4f} seconds={seconds:.0f} augment={augment}")
PY
grep '^test accuracy' "$dir.out"
