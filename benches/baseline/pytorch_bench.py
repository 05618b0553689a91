"""PyTorch baseline for digitnet's benchmark (benches/throughput): the same four models, the same
optimizer (Adam, lr 1e-3, eps 1e-8), the same loss, batch sizes, normalisation and thread count,
measured the same way, printing the same `RESULT` lines with backend `pytorch`.

    DIGITNET_DATA_DIR=../shared/data/mnist venv/bin/python pytorch_bench.py [--threads 2]

Run by benches/compare.sh, which installs torch into its own venv first.
"""

import argparse
import gzip
import math
import os
import statistics
import subprocess
import sys
import time

import numpy as np
import torch
from torch import nn

MEAN, STD = 0.1307, 0.3081


def load_idx(path):
    """An IDX file (gzip'd or raw) as a numpy array."""
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    dims = data[3]
    shape = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(dims)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)


def load_train(data_dir):
    """The MNIST training images (N, 28, 28) uint8 and labels (N,)."""
    def find(name):
        for candidate in (name + ".gz", name):
            path = os.path.join(data_dir, candidate)
            if os.path.exists(path):
                return path
        sys.exit(f"{name}(.gz) not found in {data_dir}")
    return load_idx(find("train-images-idx3-ubyte")), load_idx(find("train-labels-idx1-ubyte"))


def find_file(data_dir, name):
    for candidate in (name + ".gz", name):
        path = os.path.join(data_dir, candidate)
        if os.path.exists(path):
            return path
    sys.exit(f"{name}(.gz) not found in {data_dir}")


def time_to_accuracy(args, data_dir):
    """The tutorial's whole job under digitnet's stop rule: load MNIST, then train `args.models`'
    first model on all 60,000 images (batch 64, shuffled, Adam lr 1e-3 with digitnet's cosine
    schedule to 1% over `args.max_epochs` epochs, stepped every batch), evaluate the test set
    after each epoch and stop at the first epoch that reaches `args.time_to_accuracy`, seeded
    with `args.seed`. The
    calling script times the whole process, `import torch` included."""
    name = args.models[0]
    images, labels = load_train(data_dir)
    test_x = normalise(load_idx(find_file(data_dir, "t10k-images-idx3-ubyte")))
    test_y = torch.from_numpy(load_idx(find_file(data_dir, "t10k-labels-idx1-ubyte")).astype(np.int64))
    torch.manual_seed(args.seed)
    trainer = Trainer(name)
    batches = -(-len(images) // 64)
    last = max(batches * args.max_epochs - 1, 1)
    floor = 0.01
    trainer.schedule = torch.optim.lr_scheduler.LambdaLR(
        trainer.opt,
        lambda step: floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * min(step / last, 1.0))))
    targets = torch.from_numpy(labels.astype(np.int64))
    rng = np.random.default_rng(args.seed)
    for epoch in range(1, args.max_epochs + 1):
        trainer.net.train()
        order = rng.permutation(len(images))
        for i in range(0, len(images), 64):
            idx = order[i : i + 64]
            trainer.step(normalise(images[idx]), targets[idx])
            trainer.schedule.step()
        trainer.net.eval()
        correct = 0
        with torch.inference_mode():
            for i in range(0, len(test_x), 1000):
                logits = trainer.net(test_x[i : i + 1000])
                correct += (logits.argmax(1) == test_y[i : i + 1000]).sum().item()
        accuracy = correct / len(test_x)
        print(f"# epoch {epoch}: test accuracy {accuracy:.4f}", flush=True)
        if accuracy >= args.time_to_accuracy:
            break
    print(f"RESULT pytorch {name} tta-epochs {epoch}", flush=True)
    print(f"RESULT pytorch {name} tta-test-accuracy {accuracy:.4f}", flush=True)


def model(name):
    """digitnet's presets, layer for layer, in digitnet's order: each block is convolution,
    batch norm (the default CNN), 2x2 max-pool, then ReLU. Pooling before the ReLU gives the same
    function as after it (max commutes with ReLU) on a quarter of the values, so both sides do
    the same work."""
    if name == "cnn-a":
        return nn.Sequential(
            nn.Conv2d(1, 16, 5, padding=2), nn.MaxPool2d(2), nn.ReLU(),
            nn.Conv2d(16, 32, 5, padding=2), nn.MaxPool2d(2), nn.ReLU(),
            nn.Conv2d(32, 64, 5, padding=2), nn.ReLU(),
            nn.Flatten(), nn.Linear(64 * 7 * 7, 10))
    if name == "cnn-b":
        return nn.Sequential(
            nn.Conv2d(1, 32, 3, padding=1), nn.MaxPool2d(2), nn.ReLU(),
            nn.Conv2d(32, 64, 3, padding=1), nn.MaxPool2d(2), nn.ReLU(),
            nn.Flatten(), nn.Linear(3136, 128), nn.ReLU(), nn.Linear(128, 10))
    if name == "cnn-bn":
        layers, c_in = [], 1
        for c in (32, 64, 128):
            layers += [nn.Conv2d(c_in, c, 3, padding=1, bias=False), nn.BatchNorm2d(c),
                       nn.MaxPool2d(2), nn.ReLU()]
            c_in = c
        return nn.Sequential(*layers, nn.Flatten(), nn.Dropout(0.3), nn.Linear(128 * 3 * 3, 128),
                             nn.ReLU(), nn.Dropout(0.3), nn.Linear(128, 10))
    if name == "mlp-a":
        return nn.Sequential(nn.Flatten(), nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 64),
                             nn.ReLU(), nn.Linear(64, 10))
    sys.exit(f"unknown model {name}")


def normalise(images):
    """uint8 (N, 28, 28) to the normalised float tensor (N, 1, 28, 28), as digitnet's batcher."""
    return torch.from_numpy(images).float().div_(255.0).sub_(MEAN).div_(STD).unsqueeze(1)


def timed(seconds, step):
    """Warm up once, then repeat for about `seconds` (at least 3 times); the median time."""
    step()
    times, start = [], time.perf_counter()
    while len(times) < 3 or time.perf_counter() - start < seconds:
        t = time.perf_counter()
        step()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def result(name, metric, value):
    print(f"RESULT pytorch {name} {metric} {value:.3f}", flush=True)


class Trainer:
    """A model with Adam (lr 1e-3, eps 1e-8) and cross-entropy: one training step at a time."""

    def __init__(self, name):
        self.net = model(name)
        self.net.train()
        self.opt = torch.optim.Adam(self.net.parameters(), lr=1e-3, eps=1e-8)
        self.loss = nn.CrossEntropyLoss()

    def step(self, x, y):
        self.opt.zero_grad()
        loss = self.loss(self.net(x), y)
        loss.item()
        loss.backward()
        self.opt.step()


def peak_gflops(seconds):
    """The best rate of a 2048 x 2048 x 2048 float32 matrix product on every thread."""
    n = 2048
    a, b = torch.ones(n, n), torch.ones(n, n)
    torch.mm(a, b)
    best, start = float("inf"), time.perf_counter()
    while best == float("inf") or time.perf_counter() - start < seconds:
        t = time.perf_counter()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - t)
    return 2 * n**3 / best / 1e9


def in_process(args, images, labels):
    items = images[:1000]
    item_labels = torch.from_numpy(labels[:1000].astype(np.int64))

    def batch(n):
        idx = np.arange(n) % len(items)
        return normalise(items[idx]), item_labels[idx]

    idx64 = np.arange(64)
    result("-", "batcher@64",
           64 / timed(args.seconds, lambda: (normalise(items[idx64]), item_labels[idx64])))
    if args.peak:
        result("-", "peak-gflops", peak_gflops(args.seconds))
    for name in args.models:
        torch.manual_seed(42)
        for n in args.train_batches:
            x, y = batch(n)
            trainer = Trainer(name)
            result(name, f"train@{n}", n / timed(args.seconds, lambda: trainer.step(x, y)))
        net = model(name).eval()
        with torch.inference_mode():
            for n in args.infer_batches:
                x, _ = batch(n)
                secs = timed(args.seconds, lambda: net(x))
                if n == 1:
                    result(name, "latency", secs * 1e3)
                result(name, f"infer@{n}", n / secs)
        if args.epoch:
            child = [sys.executable, __file__, "--epoch-child", name, "--threads", str(args.threads)]
            if args.epoch_images:
                child += ["--epoch-images", str(args.epoch_images)]
            out = subprocess.run(child, check=True, capture_output=True, text=True)
            print(out.stdout, end="", flush=True)


def rss_mib(field):
    """This process's `VmRSS` (now) or `VmHWM` (peak) from /proc/self/status, in MiB."""
    with open("/proc/self/status") as f:
        return next(int(l.split()[1]) for l in f if l.startswith(field + ":")) / 1024


def epoch_child(args, images, labels):
    """One shuffled epoch at batch 64 (batches normalised on the fly), then the peak RSS: of the
    whole process, and its growth over the RSS after `import torch` and loading the data."""
    name = args.epoch_child
    n = min(args.epoch_images or len(images), len(images))
    loaded = rss_mib("VmRSS")
    torch.manual_seed(42)
    trainer = Trainer(name)
    targets = torch.from_numpy(labels[:n].astype(np.int64))
    order = np.random.default_rng(42).permutation(n)
    start = time.perf_counter()
    for i in range(0, n, 64):
        idx = order[i : i + 64]
        trainer.step(normalise(images[idx]), targets[idx])
    result(name, "epoch", n / (time.perf_counter() - start))
    peak = rss_mib("VmHWM")
    result(name, "rss-epoch", peak)
    result(name, "rss-epoch-growth", peak - loaded)


def print_build_config():
    """What `torch.__config__.show()` says of PyTorch's CPU kernels: its BLAS (MKL), oneDNN
    (MKL-DNN), threading and CPU capability lines, and the BLAS and oneDNN build settings."""
    keys = ("Math Kernel Library", "MKL-DNN", "oneDNN", "OpenMP", "CPU capability")
    wanted = ("BLAS_INFO", "LAPACK_INFO", "USE_MKL", "USE_MKLDNN", "USE_OPENMP")
    for line in torch.__config__.show().splitlines():
        line = line.strip().lstrip("- ")
        if any(key in line for key in keys):
            print(f"# torch config: {line}", flush=True)
        elif line.startswith("Build settings:"):
            settings = [s.strip() for s in line.split(":", 1)[1].split(",")]
            picked = [s for s in settings if s.split("=")[0] in wanted]
            print(f"# torch config: build {', '.join(picked)}", flush=True)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=os.cpu_count())
    p.add_argument("--models", default="cnn-a,cnn-b,cnn-bn,mlp-a")
    p.add_argument("--train-batches", default="1,64,256")
    p.add_argument("--infer-batches", default="1,64,256,1000")
    p.add_argument("--seconds", type=float, default=2.0)
    p.add_argument("--no-epoch", dest="epoch", action="store_false")
    p.add_argument("--peak", action="store_true", help="also measure a 2048^3 matmul's rate")
    p.add_argument("--epoch-images", type=int)
    p.add_argument("--epoch-child")
    p.add_argument("--time-to-accuracy", type=float, metavar="FRACTION",
                   help="only train the first of --models until its test accuracy reaches "
                        "FRACTION after an epoch (at most --max-epochs)")
    p.add_argument("--max-epochs", type=int, default=10)
    p.add_argument("--seed", type=int, default=42, help="seed of --time-to-accuracy's run")
    args = p.parse_args()
    args.models = args.models.split(",")
    args.train_batches = [int(b) for b in args.train_batches.split(",")]
    args.infer_batches = [int(b) for b in args.infer_batches.split(",")]
    torch.set_num_threads(args.threads)
    data_dir = os.environ.get("DIGITNET_DATA_DIR") or sys.exit("set DIGITNET_DATA_DIR")
    if args.time_to_accuracy:
        time_to_accuracy(args, data_dir)
        return
    images, labels = load_train(data_dir)
    if args.epoch_child:
        epoch_child(args, images, labels)
        return
    print(f"# pytorch {torch.__version__}: {len(images)} train images, "
          f"{torch.get_num_threads()} threads", flush=True)
    print_build_config()
    for name in args.models:
        print(f"# {name}: {sum(p.numel() for p in model(name).parameters())} parameters", flush=True)
    in_process(args, images, labels)


if __name__ == "__main__":
    main()
