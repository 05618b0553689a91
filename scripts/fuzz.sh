#!/usr/bin/env bash
# Fuzzes the IDX reader (raw and gzip'd) and the picture preprocessing for a bounded time: the
# arbtest properties of crates/digitnet-data/src/tests/fuzz_inputs.rs, each given a share of
# SECONDS (default 300) of fresh random inputs. A failure stops the run and prints the seed that
# reproduces it (`ARBTEST_SEED=0x... cargo test --release -p digitnet-data --lib fuzz_inputs`).
#
#   bash scripts/fuzz.sh [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-300}"
properties=7
threads="$(nproc)"
cargo test --release --quiet -p digitnet-data --lib --no-run
# The properties run $threads at a time: each gets SECONDS * threads / properties.
budget_ms=$((seconds * 1000 * threads / properties))
echo "fuzzing $properties properties for about ${seconds}s (${budget_ms} ms each)"
ARBTEST_BUDGET_MS="$budget_ms" cargo test --release --quiet -p digitnet-data --lib fuzz_inputs
echo "fuzzed for ${SECONDS}s, no failure"
