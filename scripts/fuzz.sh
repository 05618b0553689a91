#!/usr/bin/env bash
# Fuzzes the IDX reader (raw and gzip'd) and the picture preprocessing for a bounded time:
# repeated rounds of the proptest suite crates/digitnet-data/tests/fuzz_inputs.rs, each with fresh
# random seeds and FUZZ_CASES cases per property (default 20000), until SECONDS (default 300) have
# passed. A failure stops the run and proptest prints the minimal failing input.
#
#   bash scripts/fuzz.sh [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-300}"
cases="${FUZZ_CASES:-20000}"
cargo test --quiet -p digitnet-data --test fuzz_inputs --no-run
deadline=$((SECONDS + seconds))
round=0
while [ "$SECONDS" -lt "$deadline" ]; do
  round=$((round + 1))
  echo "round $round: $cases cases per property"
  PROPTEST_CASES="$cases" cargo test --quiet -p digitnet-data --test fuzz_inputs
done
echo "fuzzed for ${SECONDS}s: $round rounds, no failure"
