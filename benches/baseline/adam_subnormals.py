"""Counts the subnormal values in Adam's state while MLP A trains on one batch of 64 MNIST
images over and over, as the throughput benchmark's train@64 does (PyTorch's Adam, lr 1e-3,
eps 1e-8). The weights of dead ReLU units get a zero gradient; their first moment decays by 0.9 a
step until it reaches the smallest subnormal, where 0.9 times it rounds back to it.

    ~/.cache/digitnet-bench/venv/bin/python benches/baseline/adam_subnormals.py ../shared/data/mnist
"""

import sys

import numpy as np
import torch

import pytorch_bench as pb


def main():
    images, labels = pb.load_train(sys.argv[1])
    x = pb.normalise(images[:64].copy())
    y = torch.from_numpy(labels[:64].astype(np.int64))
    torch.manual_seed(42)
    torch.set_num_threads(2)
    net = pb.model("mlp-a")
    opt = torch.optim.Adam(net.parameters(), lr=1e-3, eps=1e-8)
    tiny = torch.finfo(torch.float32).tiny

    def subnormal(t):
        return int(((t != 0) & (t.abs() < tiny)).sum())

    for step in range(1, 8001):
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(net(x), y)
        loss.backward()
        opt.step()
        if step in (100, 500, 1000, 2000, 4000, 8000):
            state = [opt.state[p] for p in net.parameters()]
            m = torch.cat([s["exp_avg"].flatten() for s in state])
            v = torch.cat([s["exp_avg_sq"].flatten() for s in state])
            g = torch.cat([p.grad.flatten() for p in net.parameters()])
            print(f"step {step}: loss {loss.item():.2e}, subnormal first moments {subnormal(m)}, "
                  f"second moments {subnormal(v)}, zero gradients {int((g == 0).sum())} "
                  f"of {m.numel()}")


if __name__ == "__main__":
    main()
