"""Read a digitnet artifact directory (config.json + model.safetensors) into PyTorch.

    from digitnet_torch import load_digitnet
    model = load_digitnet("artifacts/mine")      # a torch.nn.Module in eval mode
    logits = model(images)                        # images: [N, 1, 28, 28], normalised

The PyTorch module is built from config.json's `model` (a digitnet CnnConfig or MlpConfig), so
any preset or custom configuration reads back. What differs between the two layouts:

- keys: digitnet's are `Cnn.blocks.<i>.conv.weight`, `Cnn.blocks.<i>.norm.gamma`,
  `Cnn.linears.<j>.weight`, `Mlp.linears.<j>.bias`, ...;
- linear weights: digitnet stores `[in, out]`, PyTorch `[out, in]` (transposed here);
- batch norm: digitnet's `gamma`/`beta` are PyTorch's `weight`/`bias`;
- convolution weights (`[out, in, kh, kw]`), biases and running statistics are the same.

Inputs are normalised as digitnet does: `(pixel / 255 - 0.1307) / 0.3081` for MNIST. Needs torch
and safetensors (benches/interop/requirements.txt).
"""

import json
import os

import torch
from safetensors.torch import load_file
from torch import nn


class Block(nn.Module):
    """A digitnet conv block: conv, [batch norm], [2x2 max-pool], ReLU, [dropout]."""

    def __init__(self, in_channels, cfg):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, cfg["out_channels"], cfg["kernel_size"],
                              padding=cfg["padding"], bias=not cfg["batch_norm"])
        self.norm = nn.BatchNorm2d(cfg["out_channels"]) if cfg["batch_norm"] else None
        self.pool = nn.MaxPool2d(2) if cfg["max_pool"] else None
        self.dropout = nn.Dropout(cfg["dropout"])

    def forward(self, x):
        x = self.conv(x)
        if self.norm is not None:
            x = self.norm(x)
        if self.pool is not None:
            x = self.pool(x)
        return self.dropout(torch.relu(x))


class Dense(nn.Module):
    """digitnet's fully connected stack: [dropout], linear, ReLU, ..., [dropout], linear."""

    def __init__(self, sizes, dropout):
        super().__init__()
        self.linears = nn.ModuleList(nn.Linear(a, b) for a, b in zip(sizes, sizes[1:]))
        self.dropout = nn.Dropout(dropout)

    def forward(self, x):
        for i, linear in enumerate(self.linears):
            x = linear(self.dropout(x))
            if i + 1 < len(self.linears):
                x = torch.relu(x)
        return x


class Cnn(nn.Module):
    """digitnet's `Cnn` from a CnnConfig."""

    def __init__(self, cfg):
        super().__init__()
        channels, side = cfg.get("in_channels", 1), cfg.get("image_size", 28)
        blocks = []
        for block in cfg["blocks"]:
            blocks.append(Block(channels, block))
            channels = block["out_channels"]
            side = side + 2 * block["padding"] - block["kernel_size"] + 1
            if block["max_pool"]:
                side //= 2
        self.blocks = nn.ModuleList(blocks)
        sizes = [channels * side * side, *cfg.get("hidden", []), cfg.get("num_classes", 10)]
        self.dense = Dense(sizes, cfg.get("dropout", 0.0))

    def forward(self, x):
        for block in self.blocks:
            x = block(x)
        return self.dense(torch.flatten(x, 1))


class Mlp(nn.Module):
    """digitnet's `Mlp` from an MlpConfig."""

    def __init__(self, cfg):
        super().__init__()
        sizes = [cfg.get("input_size", 784), *cfg["hidden"], cfg.get("num_classes", 10)]
        self.dense = Dense(sizes, cfg.get("dropout", 0.0))

    def forward(self, x):
        return self.dense(torch.flatten(x, 1))


def torch_state_dict(tensors, kind):
    """digitnet's tensors (as read from model.safetensors) under the names and in the layouts
    of `Cnn`/`Mlp` above."""
    state = {}
    for key, value in tensors.items():
        owner, _, rest = key.partition(".")
        if owner != kind:
            raise ValueError(f"{key}: expected a {kind} tensor")
        parts = rest.split(".")
        if parts[0] == "linears":
            parts.insert(0, "dense")
            if parts[-1] == "weight":
                value = value.t().contiguous()
        parts[-1] = {"gamma": "weight", "beta": "bias"}.get(parts[-1], parts[-1])
        state[".".join(parts)] = value
    return state


def load_digitnet(artifacts):
    """The model in `artifacts` (a directory written by `digitnet train` or `digitnet import`)
    as a PyTorch module in eval mode. Raises on a tensor missing, extra or of the wrong shape."""
    with open(os.path.join(artifacts, "config.json")) as f:
        config = json.load(f)["model"]
    (kind, cfg), = config.items()
    model = {"Cnn": Cnn, "Mlp": Mlp}[kind](cfg)
    path = os.path.join(artifacts, "model.safetensors")
    result = model.load_state_dict(torch_state_dict(load_file(path), kind), strict=False)
    missing = [k for k in result.missing_keys if not k.endswith("num_batches_tracked")]
    if missing or result.unexpected_keys:
        raise ValueError(f"{path}: missing {missing}, unexpected {result.unexpected_keys}")
    return model.eval()
