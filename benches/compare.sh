#!/usr/bin/env bash
# digitnet against PyTorch, back to back on this machine: runs `cargo bench --bench throughput`
# and the PyTorch baseline (benches/baseline/pytorch_bench.py, same models, optimizer, batches,
# normalisation and thread count), prints every figure, then one line per model and metric:
#
#   RATIO <model> <metric> <ratio>     higher is better: digitnet/PyTorch for throughputs,
#                                      PyTorch/digitnet for latency and peak memory
#
#   DIGITNET_DATA_DIR=../shared/data/mnist bash benches/compare.sh [--quick]
#
# --quick: 0.5 s per figure and a 6,400-image "epoch" (a smoke run; the README's figures come
# from a full run). DIGITNET_BENCH_BACKEND picks digitnet's backend (default flex);
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
if [ "${1:-}" = "--quick" ]; then
  common=(--seconds 0.5 --epoch-images 6400)
elif [ $# -gt 0 ]; then
  echo "usage: bash benches/compare.sh [--quick]" >&2
  exit 2
fi

if ! "$venv/bin/python" -c "import torch" 2>/dev/null; then
  echo "# installing the PyTorch baseline into $venv" >&2
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet -r benches/baseline/requirements.txt
fi

out=target/bench-compare
mkdir -p "$out"
echo "# $(date -u +%Y-%m-%dT%H:%MZ), $(lscpu | sed -n 's/^Model name: *//p' | head -1), $threads threads, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo)"

cargo bench --quiet --bench throughput --no-run 2>/dev/null || cargo bench --bench throughput --no-run
cargo bench --quiet --bench throughput -- --backends "$backend" --epoch-backends "$backend" \
  "${common[@]}" | tee "$out/digitnet.txt"
"$venv/bin/python" benches/baseline/pytorch_bench.py --threads "$threads" "${common[@]}" \
  | tee "$out/pytorch.txt"

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
  }' "$out/digitnet.txt" "$out/pytorch.txt" | tee "$out/ratios.txt"
