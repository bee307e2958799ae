"""The reference of benchmarks/run.py: a minimal PyTorch training loop, written by hand.

What someone who needs no runner would write: shuffled mini-batches sliced from
tensors in memory, validation each epoch, early stopping on val/loss with the
best weights kept, the four scalars logged to TensorBoard. It draws its batches
exactly as nnexp does (one ``torch.randperm`` per epoch from a CPU generator
seeded with the run's seed) so that both do the same arithmetic and their losses
can be checked against each other; it has none of nnexp's bookkeeping
(checkpoints, CSV, gradient norms, progress, summary, pictures).
"""

from __future__ import annotations

import copy
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn


@torch.no_grad()
def _score(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int) -> tuple[float, float]:
    model.eval()
    loss_sum, right = torch.zeros(()), torch.zeros((), dtype=torch.long)
    for start in range(0, len(x), batch_size):
        out = model(x[start:start + batch_size])  # (B, classes)
        yb = y[start:start + batch_size]
        loss_sum += F.cross_entropy(out, yb) * len(yb)
        right += (out.argmax(dim=-1) == yb).sum()
    model.train()
    return loss_sum.item() / len(x), right.item() / len(x)


def train(model: nn.Module, optimizer: torch.optim.Optimizer, train_xy: tuple[torch.Tensor, torch.Tensor],
          val_xy: tuple[torch.Tensor, torch.Tensor], *, epochs: int, batch_size: int, seed: int,
          patience: int | None = None, log_dir: Path | None = None, eval_batch_size: int = 1024) -> list[dict]:
    """Train a classifier; returns one dict of train/val loss and accuracy per epoch."""
    writer = None
    if log_dir is not None:
        from torch.utils.tensorboard import SummaryWriter

        writer = SummaryWriter(log_dir=str(log_dir))
    x, y = train_xy
    generator = torch.Generator().manual_seed(seed)
    best, best_state, waited, history = float("inf"), None, 0, []
    model.train()
    for epoch in range(1, epochs + 1):
        order = torch.randperm(len(x), generator=generator)
        loss_sum, right = torch.zeros(()), torch.zeros((), dtype=torch.long)
        for start in range(0, len(x), batch_size):
            idx = order[start:start + batch_size]
            xb, yb = x[idx], y[idx]
            out = model(xb)
            loss = F.cross_entropy(out, yb)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            loss_sum += loss.detach() * len(idx)
            right += (out.detach().argmax(dim=-1) == yb).sum()
        val_loss, val_acc = _score(model, *val_xy, eval_batch_size)
        row = {"epoch": epoch, "train/loss": loss_sum.item() / len(x), "train/acc": right.item() / len(x),
               "val/loss": val_loss, "val/acc": val_acc}
        history.append(row)
        if writer is not None:
            for tag in ("train/loss", "val/loss", "train/acc", "val/acc"):
                writer.add_scalar(tag, row[tag], epoch)
        if patience is not None:
            if val_loss < best:
                best, best_state, waited = val_loss, copy.deepcopy(model.state_dict()), 0
            else:
                waited += 1
                if waited >= patience:
                    break
    if best_state is not None:
        model.load_state_dict(best_state)
    if writer is not None:
        writer.close()
    return history
