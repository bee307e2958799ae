"""B7 of benchmarks/run.py: the B2 and B3 runs written the usual Lightning way (optional: `pip install lightning`).

A LightningModule around the same model and optimizer, a DataLoader over the
tensors in memory (shuffled, same batch size), EarlyStopping on val/loss, the
TensorBoard logger, and Lightning's default checkpointing. Only the progress bar
and the model summary are off, as nnexp's runs in the suite have no progress
display. Its batches are not nnexp's, so its losses are not compared.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import lightning as L
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset


class Classifier(L.LightningModule):
    def __init__(self, model: torch.nn.Module, optimizer: torch.optim.Optimizer) -> None:
        super().__init__()
        self.model, self._optimizer = model, optimizer

    def training_step(self, batch, batch_idx):  # noqa: ANN001, ANN201 - Lightning's signature
        x, y = batch
        out = self.model(x)
        loss = F.cross_entropy(out, y)
        self.log("train/loss", loss, on_step=False, on_epoch=True)
        self.log("train/acc", (out.argmax(-1) == y).float().mean(), on_step=False, on_epoch=True)
        return loss

    def validation_step(self, batch, batch_idx):  # noqa: ANN001, ANN201
        x, y = batch
        out = self.model(x)
        self.log("val/loss", F.cross_entropy(out, y), on_epoch=True)
        self.log("val/acc", (out.argmax(-1) == y).float().mean(), on_epoch=True)

    def configure_optimizers(self):  # noqa: ANN201
        return self._optimizer


def train(make: Callable[[], tuple], *, epochs: int, batch_size: int, seed: int, patience: int,
          root_dir: Path) -> dict:
    """One Lightning run of ``make()``'s (model, optimizer, data); benchmarks/run.py times it."""
    model, optimizer, data = make()
    loader = DataLoader(TensorDataset(data.train.x, data.train.y), batch_size=batch_size, shuffle=True,
                        generator=torch.Generator().manual_seed(seed))
    val = DataLoader(TensorDataset(data.val.x, data.val.y), batch_size=1024)
    trainer = L.Trainer(
        max_epochs=epochs, accelerator="cpu", devices=1, default_root_dir=str(root_dir),
        callbacks=[L.pytorch.callbacks.EarlyStopping(monitor="val/loss", patience=patience)],
        enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0,
    )
    trainer.fit(Classifier(model, optimizer), loader, val)
    return {}
