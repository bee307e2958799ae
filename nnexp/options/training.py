"""The options of nnexp's optimizer factories (nnexp/optim.py) and of early stopping
(nnexp/early_stopping.py), checked without torch. The factories' other options are torch's own: the rule table
of nnexp/config.py checks them, as it checks torch's optimizers and schedulers."""

from __future__ import annotations

from typing import Any

from nnexp.options import check, check_choice, check_int, finite, takes

OPTIMIZER_IMPLS = ("torch", "scratch")  # torch.optim, or nnexp/scratch/optim.py
MONITORS = ("train/loss", "val/loss", "train/acc", "val/acc")


def optimizer_impl(impl: Any) -> None:
    """Our one option of an optimizer factory."""
    check_choice("impl", impl, OPTIMIZER_IMPLS)


takes("nnexp.optim.sgd", ("lr", "momentum", "nesterov", "weight_decay", "impl"), optimizer_impl)
takes("nnexp.optim.adam", ("lr", "betas", "eps", "weight_decay", "impl"), optimizer_impl)


def early_stopping(*, monitor: Any, mode: Any, patience: Any, min_delta: Any) -> None:
    """``enabled`` and ``restore_best`` are typed by the schema (nnexp/config.py)."""
    check_choice("monitor", monitor, MONITORS)
    check_choice("mode", mode, ("min", "max"))
    check_int("patience", patience, 0, "epochs")
    check("min_delta", min_delta, finite(min_delta) and min_delta >= 0, "a finite number >= 0")


takes("nnexp.early_stopping.EarlyStopping",
      ("monitor", "mode", "patience", "min_delta", "restore_best", "enabled"), early_stopping)
