#!/usr/bin/env bash
# The GPU check, run from the repository root of a copy that holds the folder
# benches/gpu/prepare.sh staged (and .gl/, the Vulkan loaders, if the machine lacks libvulkan):
#
#   bash benches/gpu/run.sh [--quick] [STAGE]     (STAGE default: gpu-stage)
#
# In order, each step under its own time limit so that the whole stays under 8 minutes:
# the staged binaries start (before anything else: the GPU machine runs another distribution);
# `digitnet backends`; the backend-parity tests (cuda and wgpu against flex and ndarray); the
# throughput bench's train@64/256/1024 and infer@1000 for cnn-bn, cnn-b and mlp-a on cuda and
# wgpu; one epoch of the default CNN with `digitnet train --backend cuda` and its test accuracy.
# Without a CUDA driver, cuda is skipped with a line saying so. Everything goes to one log,
# $OUT/gpu.log when $OUT is set (the device machine's return folder), else STAGE/gpu.log.
#
# --quick: the same steps with less work (mlp-a, train@64, infer@1000, half a second a figure)
# and a longer limit for the parity tests (lavapipe autotunes from cold for minutes), for
# checking the script on a CPU machine with wgpu on lavapipe.
set -uo pipefail
cd "$(dirname "$0")/../.."
quick=false
if [ "${1:-}" = --quick ]; then quick=true; shift; fi
stage=${1:-gpu-stage}
[ -d "$stage/bin" ] || { echo "no $stage/bin: run benches/gpu/prepare.sh first" >&2; exit 2; }
log=${OUT:-$stage}/gpu.log
exec > >(tee "$log") 2>&1
started=$(date +%s)
failures=()
step() { printf '\n=== %s (+%d s)\n' "$*" $(( $(date +%s) - started )); }
# run LIMIT NAME COMMAND...: a step's command under a time limit; a failure is noted, not fatal.
run() {
  local limit=$1 name=$2; shift 2
  timeout --kill-after=10 "$limit" "$@"
  local rc=$?
  [ $rc -eq 0 ] || { echo "FAILED: $name (exit $rc$([ $rc -eq 124 ] && echo ", over its ${limit} s"))"; failures+=("$name"); }
}

step "unpack the staged binaries"
bin=/tmp/digitnet-gpu/bin
mkdir -p "$bin"
for f in "$stage"/bin/*.xz; do
  name=$(basename "$f" .xz)
  if command -v xz >/dev/null; then xz -dc "$f" >"$bin/$name"
  else python3 -c 'import lzma, shutil, sys; shutil.copyfileobj(lzma.open(sys.argv[1]), sys.stdout.buffer)' "$f" >"$bin/$name"
  fi
  chmod +x "$bin/$name"
done
ls -l "$bin"

step "the binaries start here"
uname -a
for name in digitnet throughput it; do
  if ! "$bin/$name" --help >/dev/null 2>"$bin/$name.err"; then
    echo "FATAL: $name does not start on this machine:"; cat "$bin/$name.err"; ldd "$bin/$name"
    exit 1
  fi
  echo "$name starts"
done

step "drivers"
if ! ldconfig -p | grep -q 'libvulkan.so.1'; then
  if [ -d .gl ]; then
    for f in .gl/*.deb; do dpkg -x "$f" /; done
    ldconfig
    echo "Vulkan loaders unpacked from .gl/"
  else
    echo "no libvulkan.so.1 and no .gl/: wgpu will find no adapter"
  fi
fi
nvidia=/usr/local/nvidia/share
if [ -e "$nvidia/vulkan/icd.d/nvidia_icd.json" ]; then
  export VK_DRIVER_FILES=$nvidia/vulkan/icd.d/nvidia_icd.json
  export __EGL_VENDOR_LIBRARY_FILENAMES=$nvidia/glvnd/egl_vendor.d/10_nvidia.json
fi
command -v nvidia-smi >/dev/null &&
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv
backends=wgpu
cuda=false
if ldconfig -p | grep -q 'libcuda.so.1' || ls /usr/local/nvidia/lib*/libcuda.so.1 >/dev/null 2>&1; then
  cuda=true
  backends=cuda,wgpu
else
  echo "SKIP cuda: no CUDA driver (libcuda.so.1) on this machine; cuda steps are left out"
fi

step "digitnet backends"
run 60 "digitnet backends" "$bin/digitnet" backends

step "the test binary's paths"
# shellcheck disable=SC1090
source "$stage/paths.env"
if [ ! -e "$MANIFEST_DIR" ]; then
  mkdir -p "$(dirname "$MANIFEST_DIR")" && ln -s "$PWD" "$MANIFEST_DIR"
  echo "linked $MANIFEST_DIR -> $PWD"
fi
if [ ! -e "$BIN_EXE_DIGITNET" ]; then
  mkdir -p "$(dirname "$BIN_EXE_DIGITNET")" && ln -s "$bin/digitnet" "$BIN_EXE_DIGITNET"
  echo "linked $BIN_EXE_DIGITNET -> $bin/digitnet"
fi

step "parity: $backends against flex and ndarray"
parity_limit=150
$quick && parity_limit=600
run "$parity_limit" "backend parity" "$bin/it" backend_parity:: --test-threads 1 --nocapture

export DIGITNET_DATA_DIR=$stage/mnist
if $quick; then
  bench=(--models mlp-a --train-batches 64 --infer-batches 1000 --seconds 0.5)
else
  bench=(--models cnn-bn,cnn-b,mlp-a --train-batches 64,256,1024 --infer-batches 1000 --seconds 1)
fi
step "throughput on $backends"
run 180 "throughput" "$bin/throughput" --backends "$backends" "${bench[@]}" --epoch-backends none

step "one epoch of the default CNN on cuda"
if $cuda; then
  run 120 "train on cuda" "$bin/digitnet" train --backend cuda --epochs 1 --progress lines \
    --artifacts /tmp/digitnet-gpu/cnn-bn --data-dir "$DIGITNET_DATA_DIR" --offline
else
  echo "SKIP cuda: no CUDA driver"
fi

step "done"
if [ ${#failures[@]} -gt 0 ]; then
  echo "FAILED STEPS: ${failures[*]}"
  exit 1
fi
echo "all steps passed; log: $log"
