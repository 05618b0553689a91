#!/usr/bin/env bash
# Builds here, with `--features cuda,wgpu`, everything benches/gpu/run.sh needs on a bare GPU
# machine (no Rust, no registries), and stages it into one folder that travels with the tree:
#
#   bash benches/gpu/prepare.sh [--vulkan-loaders] [STAGE]     (STAGE default: gpu-stage)
#
#   STAGE/bin/digitnet.xz     the CLI                      (stripped, xz-compressed)
#   STAGE/bin/throughput.xz   the throughput bench         (cargo bench --bench throughput)
#   STAGE/bin/it.xz           the integration-test binary  (run.sh runs its backend_parity tests)
#   STAGE/paths.env           the absolute paths compiled into it.xz (CARGO_MANIFEST_DIR,
#                             CARGO_BIN_EXE_digitnet), which run.sh recreates there
#   STAGE/mnist/              the four MNIST files (DIGITNET_DATA_DIR, default ../shared/data/mnist)
#
# --vulkan-loaders also downloads the Vulkan/EGL loader packages into .gl/ (as the device
# README says), for a GPU machine without libvulkan. The GPU machine has CUDA 13.0 (driver 580):
# cudarc is pinned to those bindings (CUDARC_CUDA_VERSION=13000) rather than its newest. The
# script fails if the tracked tree, STAGE and .gl/ together exceed the 64 MiB that can travel.
set -euo pipefail
cd "$(dirname "$0")/../.."
loaders=false
if [ "${1:-}" = --vulkan-loaders ]; then loaders=true; shift; fi
stage=${1:-gpu-stage}
data=${DIGITNET_DATA_DIR:-../shared/data/mnist}
features=cuda,wgpu
export CUDARC_CUDA_VERSION=13000

# Each cargo command prints JSON messages; the executables are the artifacts' "executable".
executable() {
  python3 -c '
import json, sys
want = sys.argv[1]
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["name"] == want:
        print(m["executable"])' "$1" | tail -n 1
}
echo "building with --features $features (CUDA bindings $CUDARC_CUDA_VERSION)" >&2
digitnet=$(cargo build --release --features "$features" --bin digitnet --message-format=json | executable digitnet)
throughput=$(cargo bench --features "$features" --bench throughput --no-run --message-format=json | executable throughput)
it=$(cargo test --release --features "$features" --test it --no-run --message-format=json | executable it)
for f in "$digitnet" "$throughput" "$it"; do [ -x "$f" ] || { echo "no executable: $f" >&2; exit 1; }; done

rm -rf "$stage"
mkdir -p "$stage/bin" "$stage/mnist"
for pair in "digitnet:$digitnet" "throughput:$throughput" "it:$it"; do
  name=${pair%%:*}
  strip -o "$stage/bin/$name" "${pair#*:}"
  xz -9 -T0 "$stage/bin/$name"
done
cp "$data"/{train,t10k}-{images-idx3,labels-idx1}-ubyte.gz "$stage/mnist/"
cat >"$stage/paths.env" <<PATHS
# Compiled into the test binary by cargo; run.sh makes them point at the tree and bin/ there.
MANIFEST_DIR=$PWD
BIN_EXE_DIGITNET=$digitnet
PATHS

if $loaders; then
  grep -qx '/.gl/' .git/info/exclude || echo /.gl/ >>.git/info/exclude
  mkdir -p .gl /tmp/amd64/partial
  o='-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 -oDir::State::Lists=/tmp/amd64'
  # shellcheck disable=SC2086
  apt-get $o update -qq
  # shellcheck disable=SC2086
  (cd .gl && apt-get $o download libvulkan1 libegl1 libglvnd0 libopengl0 libgl1 libglx0 libgles2)
fi

tree=$(git ls-files -z | du -cb --files0-from=- | tail -n 1 | cut -f 1)
staged=$(du -sb "$stage" | cut -f 1)
gl=$( [ -d .gl ] && du -sb .gl | cut -f 1 || echo 0)
total=$(( tree + staged + gl ))
awk -v s="$stage" -v t="$tree" -v g="$staged" -v l="$gl" -v a="$total" 'BEGIN {
  m = 1048576
  printf "staged %s: tree %.1f MiB + stage %.1f MiB + .gl %.1f MiB = %.1f MiB (limit 64)\n", s, t / m, g / m, l / m, a / m
}'
[ "$total" -le $(( 64 * 1048576 )) ] || { echo "over the 64 MiB that can travel" >&2; exit 1; }
