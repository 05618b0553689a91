#!/usr/bin/env bash
# digitnet against PyTorch on this machine, interleaved finely: in each round the two sides take
# turns model by model (digitnet's `cargo bench --bench throughput`, then the PyTorch baseline
# benches/baseline/pytorch_bench.py, or the other way round on even rounds), so that a slow
# minute on this VM hits both sides of a pair. Same models (max-pool before ReLU on both),
# optimizer, batches, normalisation, and thread count: torch.set_num_threads(N) and a rayon pool
# of N threads (--threads N on both). Prints every figure, then
#
#   RATIOS <model> <metric> r1 r2 ...    each round's ratio
#   RATIO  <model> <metric> <median>     their median; higher is better: digitnet/PyTorch for
#                                        throughputs, PyTorch/digitnet for latency and memory
#   SIDES  <model> <metric> <digitnet> <pytorch>   each side's median over the rounds
#   PEAK   <GFLOP/s>                     the machine's measured peak: the best 2048^3 float32
#                                        matmul rate either side reached (all threads)
#   SHARE  <model> <metric> <digitnet> <pytorch>   each side's median as a share of PEAK
#                                        (flops.rs counts the arithmetic per image)
#
# digitnet's `train-epoch` (one epoch through digitnet_train::train, the product path) and its
# memory are set against PyTorch's hand-written epoch.
#
#   DIGITNET_DATA_DIR=../shared/data/mnist bash benches/compare.sh [--quick] [--runs N]
#
# --quick: 0.5 s per figure and a 6,400-image "epoch" (a smoke run; the README's figures come
# from a full run). --runs N: N rounds (default 1). --models A,B: only these presets (default
# cnn-a,cnn-b,cnn-bn,mlp-a). --summary: measure nothing, print the
# summary of the rounds kept under target/bench-compare/ again. The summary ends with the
# README's tables, in Markdown. DIGITNET_BENCH_BACKEND picks digitnet's
# backend (default flex); DIGITNET_BENCH_THREADS the thread count (default: all cores);
# DIGITNET_BENCH_VENV the baseline's venv (default ~/.cache/digitnet-bench/venv; created and
# filled from benches/baseline/requirements.txt when it has no torch). Outputs are kept under
# target/bench-compare/.
set -euo pipefail
cd "$(dirname "$0")/.."
: "${DIGITNET_DATA_DIR:?set DIGITNET_DATA_DIR to a directory holding the MNIST IDX files}"
export DIGITNET_DATA_DIR
backend=${DIGITNET_BENCH_BACKEND:-flex}
venv=${DIGITNET_BENCH_VENV:-$HOME/.cache/digitnet-bench/venv}
threads=${DIGITNET_BENCH_THREADS:-$(nproc)}
models=(cnn-a cnn-b cnn-bn mlp-a)

common=()
runs=1
summary_only=false
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) common=(--seconds 0.5 --epoch-images 6400); shift ;;
    --summary) summary_only=true; shift ;;
    --models)
      [[ "${2:-}" =~ ^[a-z0-9,-]+$ ]] || { echo "--models needs a list such as cnn-a,mlp-a" >&2; exit 2; }
      IFS=, read -r -a models <<<"$2"
      shift 2 ;;
    --runs)
      runs=${2:-}
      [[ "$runs" =~ ^[1-9][0-9]*$ ]] || { echo "--runs needs a positive number" >&2; exit 2; }
      shift 2 ;;
    *) echo "usage: bash benches/compare.sh [--quick] [--runs N] [--models A,B] [--summary]" >&2; exit 2 ;;
  esac
done

out=target/bench-compare
if $summary_only; then
  runs=$(find "$out" -maxdepth 1 -name 'round-*' -type d | wc -l)
  [ "$runs" -gt 0 ] || { echo "no rounds under $out to summarise" >&2; exit 1; }
else
  if ! "$venv/bin/python" -c "import torch" 2>/dev/null; then
    echo "# installing the PyTorch baseline into $venv" >&2
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet -r benches/baseline/requirements.txt
  fi

  mkdir -p "$out"
  echo "# $(date -u +%Y-%m-%dT%H:%MZ), $(lscpu | sed -n 's/^Model name: *//p' | head -1), $threads threads, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $runs round(s)"

  cargo bench --quiet --bench throughput --no-run 2>/dev/null || cargo bench --bench throughput --no-run

  digitnet_side() {
    cargo bench --quiet --bench throughput -- --backends "$backend" --epoch-backends "$backend" \
      --threads "$threads" --models "$1" --peak "${common[@]}"
  }
  pytorch_side() {
    "$venv/bin/python" benches/baseline/pytorch_bench.py --threads "$threads" --models "$1" \
      --peak "${common[@]}"
  }

  rm -rf "$out"/round-*
  for round in $(seq 1 "$runs"); do
    dir="$out/round-$round"
    mkdir -p "$dir"
    echo "# round $round of $runs ($(date -u +%H:%MZ))"
    sides=(digitnet pytorch)
    (( round % 2 == 0 )) && sides=(pytorch digitnet)
    for model in "${models[@]}"; do
      for side in "${sides[@]}"; do
        "${side}_side" "$model" | tee -a "$dir/$side.txt"
      done
    done
  done
  cp "$out/round-$runs/digitnet.txt" "$out/round-$runs/pytorch.txt" "$out/"
fi

# Per figure: each round's ratio, their median, and each side's median.
python3 - "$out" "$runs" "$backend" <<'EOF' | tee "$out/ratios.txt"
import statistics, sys
from pathlib import Path

out, runs, backend = Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
lower_is_better = ("latency", "rss-epoch", "rss-epoch-growth")
values, order, medians, ratio_lists, shares = {}, [], {}, {}, {}
for r in range(1, runs + 1):
    for side, wanted in (("digitnet", backend), ("pytorch", "pytorch")):
        for line in (out / f"round-{r}" / f"{side}.txt").read_text().splitlines():
            f = line.split()
            if len(f) != 5 or f[0] != "RESULT" or f[1] != wanted:
                continue
            key = (f[2], f[3])
            if key not in values:
                values[key] = {"digitnet": {}, "pytorch": {}}
                order.append(key)
            values[key][side][r] = float(f[4])
# digitnet's product-path epoch (digitnet_train::train) is set against PyTorch's one epoch.
baseline_of = {"train-epoch": "epoch", "rss-train-epoch": "rss-epoch",
               "rss-train-epoch-growth": "rss-epoch-growth"}
for key in order:
    model, metric = key
    ours = values[key]["digitnet"]
    theirs = values.get((model, baseline_of.get(metric, metric)), {}).get("pytorch", {})
    rounds = [r for r in range(1, runs + 1) if ours.get(r) and theirs.get(r)]
    if not rounds:
        continue
    flip = baseline_of.get(metric, metric) in lower_is_better
    ratios = [theirs[r] / ours[r] if flip else ours[r] / theirs[r] for r in rounds]
    ratio_lists[key] = ratios
    if runs > 1:
        print(f"RATIOS {model} {metric} " + " ".join(f"{x:.2f}" for x in ratios))
    print(f"RATIO {model} {metric} {statistics.median(ratios):.2f}")
    a = statistics.median(ours[r] for r in rounds)
    b = statistics.median(theirs[r] for r in rounds)
    print(f"SIDES {model} {metric} {a:.3f} {b:.3f}")
    medians[key] = (a, b)

peaks = [v for (m, metric), sides in values.items() if metric == "peak-gflops"
         for side in sides.values() for v in side.values()]
if peaks:
    peak = max(peaks)
    print(f"PEAK {peak:.1f}")
    for (model, metric), (a, b) in medians.items():
        flops = values.get((model, "flops-per-image"), {}).get("digitnet", {})
        speed = metric.startswith(("train@", "infer@")) or metric in ("epoch", "train-epoch")
        if not flops or not speed:
            continue
        passes = 1 if metric.startswith("infer@") else 3
        per_image = statistics.median(flops.values()) * passes / 1e9
        shares[(model, metric)] = (a * per_image / peak, b * per_image / peak)
        print(f"SHARE {model} {metric} {a * per_image / peak:.3f} {b * per_image / peak:.3f}")
# The README's tables: each cell is the median ratio, then each side's median (digitnet / PyTorch).
columns = [("train@64", "train@64", "img/s"), ("epoch", "full epoch", "img/s"),
           ("train-epoch", "epoch via `digitnet_train::train`", "img/s"),
           ("infer@1000", "infer@1000", "img/s"), ("latency", "latency, 1 image", "ms"),
           ("rss-epoch", "peak RSS of an epoch", "MiB"),
           ("rss-epoch-growth", "its growth after loading", "MiB")]
names = {"cnn-a": "CNN A", "cnn-b": "CNN B", "cnn-bn": "default CNN (cnn-bn)", "mlp-a": "MLP A"}
ratio_of = {key: statistics.median(v) for key, v in ratio_lists.items()}
models = [m for m in names if any((m, c) in medians for c, _, _ in columns)]
if models:
    print()
    print("| model | " + " | ".join(title for _, title, _ in columns) + " |")
    print("| --- |" + " --- |" * len(columns))
    for m in models:
        cells = []
        for metric, _, unit in columns:
            if (m, metric) not in medians:
                cells.append("")
                continue
            a, b = medians[(m, metric)]
            digits = 0 if unit == "img/s" or unit == "MiB" else 3
            cells.append(f"{ratio_of[(m, metric)]:.2f}x ({a:,.{digits}f} / {b:,.{digits}f} {unit})")
        print(f"| {names[m]} | " + " | ".join(cells) + " |")
if peaks and models:
    print()
    print(f"| share of the measured peak ({peak:.0f} GFLOP/s), digitnet / PyTorch | train@64 | full epoch | infer@1000 |")
    print("| --- | --- | --- | --- |")
    for m in models:
        cells = [f"{shares[(m, c)][0]:.0%} / {shares[(m, c)][1]:.0%}" if (m, c) in shares else ""
                 for c in ("train@64", "epoch", "infer@1000")]
        print(f"| {names[m]} | " + " | ".join(cells) + " |")
EOF
