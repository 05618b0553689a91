#!/usr/bin/env bash
# Builds and runs, from a crate outside this workspace, what the README's library section shows:
# the lean dependency (`default-features = false` and one CPU backend), DefaultBackend, train,
# evaluate and predict on the default CNN, then a user-defined module trained and loaded back.
#
#   bash scripts/outside_crate.sh [FEATURES]      # default: "flex"; e.g. "ndarray" or "flex,ndarray"
#
# It checks that the dependency tree holds none of clap, anyhow, axum, tokio, hyper or tower,
# trains on the committed sample, and prints each step's figure.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
features="${1:-flex}"
quoted="$(sed 's/[^,]*/"&"/g' <<<"$features")"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cp -r "$repo/scripts/outside-crate/src" "$work/src"
sed -e "s|@DIGITNET@|$repo|" -e "s|@FEATURES@|$quoted|" \
  "$repo/scripts/outside-crate/Cargo.toml.in" >"$work/Cargo.toml"
cd "$work"
heavy="$(cargo tree -e normal --prefix none | grep -E '^(clap|anyhow|axum|tokio|hyper|tower)(-[a-z-]+)? v' || true)"
if [ -n "$heavy" ]; then
  echo "the lean dependency pulls in:"
  echo "$heavy"
  exit 1
fi
echo "dependency tree: no clap, anyhow, axum, tokio, hyper or tower"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$repo/target/outside-crate}"
cargo build --release --quiet
python3 - "$repo/tests/fixtures/mnist-sample" digit.png <<'PY'
import gzip, struct, sys, zlib
sample, out = sys.argv[1], sys.argv[2]
pixels = gzip.open(f"{sample}/t10k-images-idx3-ubyte.gz").read()[16:16 + 784]
rows = b"".join(b"\0" + bytes(255 - p for p in pixels[r * 28:(r + 1) * 28]) for r in range(28))
chunk = lambda t, d: struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d))
png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 28, 28, 8, 0, 0, 0, 0))
open(out, "wb").write(png + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))
PY
DIGITNET_DATA_DIR="$repo/tests/fixtures/mnist-sample" DIGITNET_NO_VERIFY=1 \
  "$CARGO_TARGET_DIR/release/outside" digit.png 2>&1 | grep -v -E "^(train|valid) epoch|^epoch "
echo "(the first test image of the sample is a 7)"
