"""B8's peer: a hand-written PyTorch loop that times its own epochs, run as a process of its own.

    python benchmarks/hand_epochs.py MODEL EPOCHS DATA.pt [--budget SECONDS]

MODEL is one of ``MODELS`` (the three networks of B8, written out by hand with the
layers, init and optimizer nnexp builds for the same config); DATA.pt holds the digits
split nnexp uses (benchmarks/busy_machine.py writes it with nnexp's own dataset
builder). It imports nothing but torch, sets no threads and no OpenMP variables: torch's
defaults in whatever environment it was started with. Each epoch is timed as nnexp times
the ``seconds`` column of metrics.csv: the training pass and the validation pass, nothing
else. Prints ``{"seconds": [per epoch ...]}`` as one JSON line. ``--budget``: stop after
any epoch from the second on once that many seconds have passed (an epoch under a
collapsing load can take 15 s).
"""

from __future__ import annotations

import argparse
import json
import time

import torch
import torch.nn.functional as F
from torch import nn

BATCH, EVAL_BATCH, SEED = 32, 1024, 0  # nnexp's trainer.batch_size, eval_batch_size and seed defaults
MODELS = ("mlp", "lenet5", "sigmoid10")


class LeNet5(nn.Module):
    """LeNet-5 as model=lenet5 builds it for digits: tanh, 2x2 average pooling, 8x8 resized to 32x32."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(1, 6, 5), nn.Tanh(), nn.AvgPool2d(2),
                                      nn.Conv2d(6, 16, 5), nn.Tanh(), nn.AvgPool2d(2), nn.Flatten())
        self.classifier = nn.Sequential(nn.Linear(400, 120), nn.Tanh(), nn.Linear(120, 84), nn.Tanh(),
                                        nn.Linear(84, 10))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, 1, 8, 8) -> (B, 10)
        x = F.interpolate(x, size=(32, 32), mode="bilinear", align_corners=False)
        return self.classifier(self.features(x))


def _mlp(widths: list[int], act: type[nn.Module], xavier: bool) -> nn.Sequential:
    layers: list[nn.Module] = [nn.Flatten()]
    for a, b in zip([64, *widths], widths, strict=False):
        layers += [nn.Linear(a, b), act()]
    layers.append(nn.Linear(widths[-1], 10))
    if xavier:  # model.init=xavier: Glorot normal weights, zero biases
        for layer in layers:
            if isinstance(layer, nn.Linear):
                nn.init.xavier_normal_(layer.weight)
                nn.init.zeros_(layer.bias)
    return nn.Sequential(*layers)


def make(model: str) -> tuple[nn.Module, torch.optim.Optimizer]:
    """The network and optimizer of one of B8's models (nnexp's defaults: Adam 1e-3, SGD 0.05)."""
    torch.manual_seed(SEED)
    if model == "mlp":  # the default demo: MLP 512x512, ReLU, Adam
        net = _mlp([512, 512], nn.ReLU, xavier=False)
        return net, torch.optim.Adam(net.parameters(), lr=1e-3)
    if model == "lenet5":
        net = LeNet5()
        return net, torch.optim.Adam(net.parameters(), lr=1e-3)
    if model == "sigmoid10":  # experiment=vanishing_gradients, arm sigmoid_plain: 10 x 64 sigmoid, plain SGD
        net = _mlp([64] * 10, nn.Sigmoid, xavier=True)
        return net, torch.optim.SGD(net.parameters(), lr=0.05)
    raise SystemExit(f"unknown model {model!r}; one of {', '.join(MODELS)}")


def epoch(net: nn.Module, opt: torch.optim.Optimizer, train: tuple, val: tuple, gen: torch.Generator) -> dict:
    """One shuffled pass over ``train`` in mini-batches, then the validation pass; the epoch's four scalars."""
    x, y = train
    net.train()
    order = torch.randperm(len(x), generator=gen)
    loss_sum, right = torch.zeros(()), torch.zeros((), dtype=torch.long)
    for start in range(0, len(x), BATCH):
        idx = order[start:start + BATCH]
        out = net(x[idx])  # (B, 10)
        loss = F.cross_entropy(out, y[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        loss_sum += loss.detach() * len(idx)
        right += (out.detach().argmax(dim=-1) == y[idx]).sum()
    net.eval()
    val_loss, val_right = torch.zeros(()), torch.zeros((), dtype=torch.long)
    with torch.no_grad():
        for start in range(0, len(val[0]), EVAL_BATCH):
            out, yb = net(val[0][start:start + EVAL_BATCH]), val[1][start:start + EVAL_BATCH]
            val_loss += F.cross_entropy(out, yb, reduction="sum")
            val_right += (out.argmax(dim=-1) == yb).sum()
    return {"train/loss": loss_sum.item() / len(x), "train/acc": right.item() / len(x),
            "val/loss": val_loss.item() / len(val[0]), "val/acc": val_right.item() / len(val[0])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", choices=MODELS)
    parser.add_argument("epochs", type=int)
    parser.add_argument("data", help="a .pt file {'train': (x, y), 'val': (x, y)}")
    parser.add_argument("--budget", type=float, default=float("inf"), help="seconds; stop after epoch >= 2")
    args = parser.parse_args()
    data = torch.load(args.data, weights_only=True)
    net, opt = make(args.model)
    gen = torch.Generator().manual_seed(SEED)
    seconds: list[float] = []
    began, last = time.perf_counter(), {}
    for _ in range(args.epochs):
        start = time.perf_counter()
        last = epoch(net, opt, data["train"], data["val"], gen)
        seconds.append(time.perf_counter() - start)
        if len(seconds) >= 2 and time.perf_counter() - began > args.budget:
            break
    print(json.dumps({"seconds": seconds, "last": last}), flush=True)


if __name__ == "__main__":
    main()
