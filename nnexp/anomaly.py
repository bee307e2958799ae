"""``trainer.detect_anomaly`` (debug=anomaly): where the first NaN/Inf of a training step came from.

Forward: a hook on every module checks what it returns; the first module whose output holds a NaN or Inf
made it (a hook runs when its module's forward returns, so an inner module reports before the one that
holds it; the input batch is checked before any of them). Backward: torch's anomaly detection raises at the
first autograd function that returns NaN, naming it (``SqrtBackward0``); torch's warning with the traceback
of the forward call behind it goes to train.log, not the terminal, and its last frame into the message.
Either way the loop stops at that step, before its optimizer step, and the run ends diverged with these
words. Only training steps are watched (modules in train mode): validation and pictures run as without it.

It costs a host sync per module per step: a debugging mode, not a way to train.
"""

from __future__ import annotations

import logging
import re
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import nn

# torch's words: "Function 'SqrtBackward0' returned nan values in its 0th output."
_BACKWARD = re.compile(r"Function '(\w+)' returned nan values in its \w+ output")
# its warning just before: "Error detected in SqrtBackward0. Traceback of forward call ...\n  File "x.py", line 4, in f"
_FRAME = re.compile(r'File "([^"]+)", line (\d+), in (\S+)')
log = logging.getLogger("nnexp")


def non_finite(value: Any) -> str | None:
    """"NaN" or "Inf" if a floating tensor in ``value`` (a tensor, or tuples, lists, dicts of them) holds one."""
    if isinstance(value, torch.Tensor):
        if not value.is_floating_point() or bool(torch.isfinite(value).all()):
            return None
        return "NaN" if bool(torch.isnan(value).any()) else "Inf"
    items = value.values() if isinstance(value, dict) else value if isinstance(value, (tuple, list)) else ()
    found = [kind for kind in map(non_finite, items) if kind]
    return "NaN" if "NaN" in found else (found[0] if found else None)


class AnomalyWatch:
    """While entered: hooks on every module of ``model`` and torch's anomaly detection. ``found`` says where
    the first NaN/Inf came from, ``the first NaN came from model.net.fc2 (Linear) in the forward pass``."""

    def __init__(self, model: nn.Module, name: str = "model") -> None:
        self.model, self.name = model, name
        self.found: str | None = None
        self._handles: list[Any] = []
        self._before: tuple[bool, bool] = (False, True)
        self._warnings = warnings.catch_warnings()
        self._shown = warnings.showwarning
        self._forward_line = ""  # where the forward op a backward NaN came from was called: "x.py:4 in f"

    def __enter__(self) -> AnomalyWatch:
        self._handles.append(self.model.register_forward_pre_hook(self._check_input))
        for name, module in self.model.named_modules():
            self._handles.append(module.register_forward_hook(self._check_output(
                f"{self.name}.{name}" if name else self.name)))
        self._before = (torch.is_anomaly_enabled(), torch.is_anomaly_check_nan_enabled())
        torch.autograd.set_detect_anomaly(True, check_nan=True)
        self._warnings.__enter__()  # restores the warning filters and showwarning on exit
        warnings.filterwarnings("always", message="Error detected in")  # each time, not once per process
        self._shown = warnings.showwarning
        warnings.showwarning = self._show
        return self

    def __exit__(self, *exc: object) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()
        torch.autograd.set_detect_anomaly(*self._before)
        self._warnings.__exit__(*exc)

    def _show(self, message: Warning | str, *args: Any, **kwargs: Any) -> None:
        """torch's anomaly warning (the forward traceback) to train.log, not the terminal; its last frame kept."""
        text = str(message)
        if not text.startswith("Error detected in"):
            self._shown(message, *args, **kwargs)
            return
        log.info("trainer.detect_anomaly: %s", text)
        frames = _FRAME.findall(text)
        if frames:
            path, line, function = frames[-1]
            self._forward_line = f"{Path(path).name}:{line} in {function}"

    def _check_input(self, module: nn.Module, inputs: tuple[Any, ...]) -> None:
        if self.found is None and module.training and (kind := non_finite(inputs)):
            self.found = f"the first {kind} came from the input batch (the data) in the forward pass"

    def _check_output(self, name: str):  # noqa: ANN202 - a forward hook
        def hook(module: nn.Module, inputs: tuple[Any, ...], output: Any) -> None:
            if self.found is None and module.training and (kind := non_finite(output)):
                self.found = f"the first {kind} came from {name} ({type(module).__name__}) in the forward pass"
        return hook

    def backward_failed(self, exc: RuntimeError) -> bool:
        """Is ``exc`` torch's anomaly error of a backward pass? Then ``found`` names the function."""
        match = _BACKWARD.search(str(exc))
        if match is None:
            return False
        if self.found is None:
            made = f" (of the forward call at {self._forward_line})" if self._forward_line else ""
            self.found = f"the first NaN came from {match[1]}{made} in the backward pass"
        return True
