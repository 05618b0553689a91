#!/usr/bin/env bash
# digitnet against other runtimes: ONNX export read by onnxruntime, model.safetensors read into
# PyTorch, PyTorch state_dicts imported into digitnet. Prints each model's largest logit
# difference per direction and the README's table (benches/interop/check.py says how).
#
#   bash benches/interop.sh
#
# Needs no dataset: it trains on the committed sample. DIGITNET_BENCH_VENV: the Python venv
# (default ~/.cache/digitnet-bench/venv, shared with compare.sh; filled from
# benches/interop/requirements.txt when it lacks onnxruntime, torch or safetensors).
set -euo pipefail
cd "$(dirname "$0")/.."
venv=${DIGITNET_BENCH_VENV:-$HOME/.cache/digitnet-bench/venv}
if ! "$venv/bin/python" -c "import onnxruntime, safetensors, torch" 2>/dev/null; then
  echo "installing benches/interop/requirements.txt into $venv" >&2
  [ -x "$venv/bin/python" ] || python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet -r benches/interop/requirements.txt
fi
cargo build --release --quiet --bin digitnet
target_dir=$(cargo metadata --format-version 1 --no-deps | "$venv/bin/python" -c \
  'import json, sys; print(json.load(sys.stdin)["target_directory"])')
exec "$venv/bin/python" benches/interop/check.py --digitnet "$target_dir/release/digitnet" \
  --out "$target_dir/interop"
