#!/usr/bin/env bash
# digitnet against PyTorch, back to back on this machine: runs `cargo bench --bench throughput`
# and the PyTorch baseline (benches/baseline/pytorch_bench.py, same models, optimizer, batches,
# normalisation and thread count), prints every figure, then one line per model and metric:
#
#   RATIO <model> <metric> <ratio>     higher is better: digitnet/PyTorch for throughputs,
#                                      PyTorch/digitnet for latency and peak memory
#
#   DIGITNET_DATA_DIR=../shared/data/mnist bash benches/compare.sh [--quick] [--runs N]
#
# --quick: 0.5 s per figure and a 6,400-image "epoch" (a smoke run; the README's figures come
# from a full run). --runs N: N rounds, each digitnet then PyTorch back to back; every round's
# ratios are printed (`RATIOS <model> <metric> r1 r2 ...`) and the RATIO lines are their medians
# (on a shared VM either side can be slowed for a while; the median of rounds is robust to it).
# DIGITNET_BENCH_BACKEND picks digitnet's backend (default flex);
# DIGITNET_BENCH_VENV the baseline's venv (default ~/.cache/digitnet-bench/venv; created and
# filled from benches/baseline/requirements.txt when it has no torch). Outputs are kept under
# target/bench-compare/.
set -euo pipefail
cd "$(dirname "$0")/.."
: "${DIGITNET_DATA_DIR:?set DIGITNET_DATA_DIR to a directory holding the MNIST IDX files}"
export DIGITNET_DATA_DIR
backend=${DIGITNET_BENCH_BACKEND:-flex}
venv=${DIGITNET_BENCH_VENV:-$HOME/.cache/digitnet-bench/venv}
threads=$(nproc)

common=()
runs=1
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) common=(--seconds 0.5 --epoch-images 6400); shift ;;
    --runs)
      runs=${2:-}
      [[ "$runs" =~ ^[1-9][0-9]*$ ]] || { echo "--runs needs a positive number" >&2; exit 2; }
      shift 2 ;;
    *) echo "usage: bash benches/compare.sh [--quick] [--runs N]" >&2; exit 2 ;;
  esac
done

if ! "$venv/bin/python" -c "import torch" 2>/dev/null; then
  echo "# installing the PyTorch baseline into $venv" >&2
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet -r benches/baseline/requirements.txt
fi

out=target/bench-compare
mkdir -p "$out"
echo "# $(date -u +%Y-%m-%dT%H:%MZ), $(lscpu | sed -n 's/^Model name: *//p' | head -1), $threads threads, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo)"

cargo bench --quiet --bench throughput --no-run 2>/dev/null || cargo bench --bench throughput --no-run

# The ratios of one round: its digitnet and PyTorch outputs in, `RATIO` lines out.
ratios() {
  awk -v backend="$backend" '
    $1 == "RESULT" && FILENAME ~ /digitnet/ && $2 == backend { ours[$3 " " $4] = $5 }
    $1 == "RESULT" && FILENAME ~ /pytorch/ { theirs[$3 " " $4] = $5; order[++n] = $3 " " $4 }
    END {
      for (i = 1; i <= n; i++) {
        key = order[i]
        if (!(key in ours) || ours[key] == 0 || theirs[key] == 0) continue
        split(key, k, " ")
        lower_is_better = (k[2] == "latency" || k[2] == "rss-epoch")
        ratio = lower_is_better ? theirs[key] / ours[key] : ours[key] / theirs[key]
        printf "RATIO %s %s %.2f\n", k[1], k[2], ratio
      }
    }' "$1/digitnet.txt" "$1/pytorch.txt"
}

rm -rf "$out"/round-*
for round in $(seq 1 "$runs"); do
  dir="$out/round-$round"
  mkdir -p "$dir"
  [ "$runs" -gt 1 ] && echo "# round $round of $runs ($(date -u +%H:%MZ))"
  cargo bench --quiet --bench throughput -- --backends "$backend" --epoch-backends "$backend" \
    "${common[@]}" | tee "$dir/digitnet.txt"
  "$venv/bin/python" benches/baseline/pytorch_bench.py --threads "$threads" "${common[@]}" \
    | tee "$dir/pytorch.txt"
  ratios "$dir" > "$dir/ratios.txt"
done
cp "$out/round-$runs/digitnet.txt" "$out/round-$runs/pytorch.txt" "$out/"

# Median over the rounds (one round: its ratios as they are).
cat "$out"/round-*/ratios.txt | awk '
  { key = $2 " " $3; if (!(key in count)) order[++n] = key; vals[key, ++count[key]] = $4 }
  END {
    for (i = 1; i <= n; i++) {
      key = order[i]; c = count[key]
      # insertion sort of the values for this key
      for (a = 1; a <= c; a++) v[a] = vals[key, a]
      for (a = 2; a <= c; a++) { x = v[a]; b = a - 1; while (b > 0 && v[b] > x) { v[b + 1] = v[b]; b-- } v[b + 1] = x }
      median = (c % 2) ? v[(c + 1) / 2] : (v[c / 2] + v[c / 2 + 1]) / 2
      if (c > 1) {
        line = "RATIOS " key
        for (a = 1; a <= c; a++) line = line " " vals[key, a]
        print line
      }
      printf "RATIO %s %.2f\n", key, median
    }
  }' | tee "$out/ratios.txt"
