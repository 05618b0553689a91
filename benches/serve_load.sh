#!/usr/bin/env bash
# Load check of `digitnet serve`: starts the release server (shipped weights, flex) on a free
# port, then wrk (Debian package `wrk`) in a second process POSTs a 28x28 PNG of a real test
# digit to /api/predict from CONNECTIONS (default 16) connections for SECONDS (default 10), and
# prints requests/s, the latency distribution (p50..p99) and any non-2xx answers. Both share
# this machine's cores.
#
#   bash benches/serve_load.sh [SECONDS] [CONNECTIONS]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-10}
connections=${2:-16}
command -v wrk >/dev/null || { echo "wrk not found: apt-get install wrk" >&2; exit 1; }
cargo build --quiet --release --bin digitnet
work=$(mktemp -d)
server_pid=""
cleanup() { [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

# Test image 0 of the committed sample (a 7), as a PNG.
python3 - "$work/digit.png" <<'PY'
import gzip, struct, sys, zlib
raw = gzip.open("tests/fixtures/mnist-sample/t10k-images-idx3-ubyte.gz").read()[16:16 + 784]
rows = b"".join(b"\x00" + raw[28 * y:28 * y + 28] for y in range(28))
def chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
png = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">II", 28, 28) + bytes([8, 0, 0, 0, 0]))
       + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))
open(sys.argv[1], "wb").write(png)
PY

"${CARGO_TARGET_DIR:-target}/release/digitnet" serve --backend flex --addr 127.0.0.1:0 \
  > "$work/server.log" 2>&1 &
server_pid=$!
for _ in $(seq 100); do
  grep -q "http://" "$work/server.log" && break
  sleep 0.1
done
url=$(grep -o 'http://[0-9.:]*' "$work/server.log" | head -1)
curl -sf -H "Content-Type: image/png" --data-binary @"$work/digit.png" "$url/api/predict" \
  | python3 -c 'import json, sys; p = json.load(sys.stdin); print("# one request: digit", p["digit"])'
echo "# $(date -u +%Y-%m-%dT%H:%MZ), $(lscpu | sed -n 's/^Model name: *//p' | head -1), $(nproc) threads; wrk -t2 -c$connections -d${seconds}s"
DIGITNET_LOAD_PNG="$work/digit.png" wrk -t2 -c"$connections" -d"${seconds}s" --latency \
  -s benches/serve_post.lua "$url/api/predict"
