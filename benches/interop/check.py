"""digitnet's models in other runtimes, and PyTorch's in digitnet: the largest logit difference
per model and direction, on the committed MNIST sample's test images.

    python benches/interop/check.py --digitnet target/release/digitnet [--out DIR]

(benches/interop.sh builds the binary, fills the venv and runs this.) For each preset, and for
the shipped model:

- `onnx`: `digitnet train` (one epoch on the sample), `digitnet export --onnx`, then
  onnxruntime's logits against `digitnet eval --logits`;
- `safetensors`: the same artifact directory read into PyTorch by digitnet_torch.load_digitnet,
  PyTorch's logits against digitnet's;
- `pytorch`: `digitnet import` of tests/fixtures/pytorch/<preset>.pth, digitnet's logits against
  those PyTorch computed (tests/fixtures/make_pytorch_models.py).

Prints `PARITY <model> <direction> <largest |difference|> <images>` per pair, then a Markdown
table, and exits 1 if any difference exceeds 1e-4 or any prediction differs.
"""

import argparse
import csv
import gzip
import json
import os
import subprocess
import sys

import numpy as np
import onnxruntime
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from digitnet_torch import load_digitnet  # noqa: E402

SAMPLE = "tests/fixtures/mnist-sample"
FIXTURES = "tests/fixtures/pytorch"
PRESETS = ["cnn-a", "cnn-b", "cnn-bn", "mlp-a", "mlp-b"]
MEAN, STD = 0.1307, 0.3081
BAR = 1e-4


def test_images():
    """The sample's test images, normalised as digitnet's MnistBatcher does, [N, 1, 28, 28]."""
    with gzip.open(os.path.join(SAMPLE, "t10k-images-idx3-ubyte.gz"), "rb") as f:
        data = f.read()
    count = int.from_bytes(data[4:8], "big")
    pixels = np.frombuffer(data, dtype=np.uint8, offset=16).reshape(count, 1, 28, 28)
    return ((pixels.astype(np.float32) / 255.0 - MEAN) / STD).astype(np.float32)


def run(digitnet, *args):
    """Runs the digitnet binary, quietly unless it fails."""
    done = subprocess.run([digitnet, *args], capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"digitnet {' '.join(args)} failed:\n{done.stdout}{done.stderr}")


def digitnet_logits(digitnet, artifacts, out):
    """`digitnet eval --logits` on the sample's test split (the shipped model if artifacts is
    None)."""
    path = os.path.join(out, "logits.csv")
    where = [] if artifacts is None else ["--artifacts", artifacts]
    run(digitnet, "eval", *where, "--data-dir", SAMPLE, "--no-verify", "--logits", path)
    with open(path) as f:
        rows = list(csv.DictReader(f))
    return np.array([[float(r[f"logit_{c}"]) for c in range(10)] for r in rows], np.float32)


def onnx_logits(path, images):
    session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
    (logits,) = session.run(["logits"], {"images": images})
    return logits


def torch_logits(artifacts, images):
    model = load_digitnet(artifacts)
    with torch.inference_mode():
        return model(torch.from_numpy(images)).numpy()


def compare(model, direction, ours, theirs, failures):
    diff = float(np.abs(ours - theirs).max())
    same = bool((ours.argmax(1) == theirs.argmax(1)).all())
    print(f"PARITY {model} {direction} {diff:.2e} {len(ours)}", flush=True)
    if diff > BAR or not same:
        failures.append(f"{model} {direction}: largest difference {diff:.2e}, "
                        f"predictions {'equal' if same else 'differ'}")
    return diff


def export_directions(digitnet, name, artifacts, out, images, failures):
    """onnx and safetensors parity of one digitnet model (artifacts None: the shipped one)."""
    os.makedirs(out, exist_ok=True)
    onnx_path = os.path.join(out, "model.onnx")
    where = [] if artifacts is None else ["--artifacts", artifacts]
    run(digitnet, "export", "--onnx", onnx_path, *where)
    ours = digitnet_logits(digitnet, artifacts, out)
    return {
        "onnx": compare(name, "onnx", ours, onnx_logits(onnx_path, images), failures),
        "safetensors": compare(name, "safetensors", ours,
                               torch_logits(artifacts or "weights/cnn-bn", images), failures),
    }


def import_direction(digitnet, preset, out, failures):
    run(digitnet, "import", os.path.join(FIXTURES, f"{preset}.pth"), "--preset", preset,
        "--artifacts", out)
    with open(os.path.join(FIXTURES, f"{preset}.logits.json")) as f:
        theirs = np.array(json.load(f)["logits"], np.float32)
    ours = digitnet_logits(digitnet, out, out)[: len(theirs)]
    return compare(preset, "pytorch", ours, theirs, failures)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--digitnet", required=True, help="the digitnet binary")
    parser.add_argument("--out", default="target/interop", help="scratch directory")
    args = parser.parse_args()
    images = test_images()
    failures, table = [], {}
    for preset in PRESETS:
        trained = os.path.join(args.out, preset)
        run(args.digitnet, "train", "--preset", preset, "--data-dir", SAMPLE, "--no-verify",
            "--epochs", "1",
            "--validate-on-test", "--artifacts", trained)
        table[preset] = export_directions(args.digitnet, preset, trained, trained, images,
                                          failures)
        table[preset]["pytorch"] = import_direction(
            args.digitnet, preset, os.path.join(args.out, f"{preset}-imported"), failures)
    table["shipped"] = export_directions(args.digitnet, "shipped", None,
                                         os.path.join(args.out, "shipped"), images, failures)
    print(f"\nonnxruntime {onnxruntime.__version__}, torch {torch.__version__}; "
          f"{len(images)} test images of {SAMPLE}\n")
    print("| model | digitnet -> ONNX (onnxruntime) | digitnet -> PyTorch (safetensors) "
          "| PyTorch -> digitnet (import) |")
    print("| --- | --- | --- | --- |")
    for name, row in table.items():
        cells = [f"{row[d]:.1e}" if d in row else "-" for d in ("onnx", "safetensors", "pytorch")]
        print(f"| {name} | " + " | ".join(cells) + " |")
    if failures:
        print("\nFAILED (bar %.0e):\n  " % BAR + "\n  ".join(failures), file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
