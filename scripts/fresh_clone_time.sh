#!/usr/bin/env bash
# Times the README's two commands as a new user meets them: a fresh clone, an empty target
# directory and an empty cargo registry cache, then the main job (offline, on the MNIST files in
# DATA_DIR) followed by the test command. Prints one `TIME <step> <seconds>` line per step and
# the total; the logs stay in the clone's parent directory.
#
#   bash scripts/fresh_clone_time.sh [REV] [TEST_COMMAND]
#
# REV defaults to HEAD, TEST_COMMAND to `cargo test --release`. DATA_DIR defaults to
# ../shared/data/mnist beside this clone. Needs nothing but the Rust toolchain (and the
# network for crates.io, as a new user has).
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
rev="${1:-HEAD}"
test_command="${2:-cargo test --release}"
data_dir="$(cd "${DATA_DIR:-$repo/../shared/data/mnist}" && pwd)"
work="$(mktemp -d /tmp/digitnet-fresh.XXXXXX)"
echo "fresh clone of $(git -C "$repo" rev-parse --short "$rev") in $work; test command: $test_command"

git clone --quiet --no-local "$repo" "$work/digitnet"
git -C "$work/digitnet" checkout --quiet "$rev"
cd "$work/digitnet"
# A private cargo home with an empty registry cache, and no build of any earlier run.
export CARGO_HOME="$work/cargo-home"
export CARGO_TARGET_DIR="$work/digitnet/target"
unset DIGITNET_DATA_DIR DIGITNET_MIRRORS CI
mkdir -p "$CARGO_HOME"

timed() {
  local name="$1" log="$work/$1.log"
  shift
  local start=$SECONDS
  if ! "$@" >"$log" 2>&1; then
    echo "FAILED $name (log: $log)"
    tail -20 "$log"
    exit 1
  fi
  echo "TIME $name $((SECONDS - start))"
}

total_start=$SECONDS
timed main-job cargo run --release -- train --epochs 3 --data-dir "$data_dir" --progress quiet
timed test-command $test_command
echo "TIME total $((SECONDS - total_start))"
# cargo's own build times, within each step.
grep -H -E "^ *Finished" "$work/main-job.log" "$work/test-command.log" | sed "s#$work/##" || true
grep -E "^test result:|SKIPPED" "$work/test-command.log" || true
grep -E "^test accuracy" "$work/main-job.log" || true
