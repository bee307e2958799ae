"""How much of the loss's gradient reaches each time step of a recurrent model (``lstm``, ``rnn``): the
vanishing gradient through time (Bengio et al. 1994; Hochreiter & Schmidhuber 1997).

``step_norms`` measures, on a fixed batch of validation sequences, the L2 norm (over the batch and the
features) of dLoss/dx_t, the gradient with respect to the recurrence's input at step t (the features, or the
token embedding). The model runs in eval mode (no dropout), in float32, without touching any parameter's
``.grad`` and without drawing a random number, so measuring never changes what a run learns. The loop logs
step 1's norm each epoch as ``grad_norm/first_step``; ``draw`` makes the IMAGES tab's
``pictures/step_gradients``: the norm against t on a log scale.
"""

from __future__ import annotations

import contextlib

import numpy as np
import torch
from torch import nn

from nnexp.data import Split
from nnexp.losses import Objective

SAMPLES = 256  # validation sequences measured: a fixed batch, the same every epoch


def measures(model: nn.Module) -> bool:
    """A recurrent model of nnexp's: its forward pass splits at the recurrence's input."""
    return hasattr(model, "sequence_inputs") and hasattr(model, "from_sequence_inputs")


def step_norms(model: nn.Module, split: Split, objective: Objective) -> torch.Tensor:
    """(T,) float32 on the model's device: ||dLoss/dx_t|| over the first SAMPLES sequences of ``split``."""
    x, y = split.x[:SAMPLES], split.y[:SAMPLES]
    was_training = model.training
    cudnn_off = torch.backends.cudnn.flags(enabled=False) if x.is_cuda else contextlib.nullcontext()
    try:
        model.eval()
        with torch.enable_grad(), cudnn_off:  # cuDNN's RNN backward runs only in training mode
            z = model.sequence_inputs(x).detach().float().requires_grad_()
            loss = objective.loss(model.from_sequence_inputs(z), y).float()
            (grad,) = torch.autograd.grad(loss, z)
    finally:
        model.train(was_training)
    return torch.linalg.vector_norm(grad, dim=(0, 2))


def draw(norms: list[float], title: str) -> np.ndarray:
    """The norm against the time step, log scale: an (H, W, 3) uint8 array for TensorBoard."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6, 3.6), dpi=100, layout="constrained")
    canvas = FigureCanvasAgg(fig)
    ax = fig.subplots()
    steps = np.arange(1, len(norms) + 1)
    values = np.maximum(np.asarray(norms, dtype=np.float64), 1e-38)  # an exact 0 still has a place on the scale
    ax.plot(steps, values, color="C0", linewidth=1.8)
    ax.set_yscale("log")
    ax.set(xlabel="time step t", ylabel="||dLoss / dx_t||", title=title)
    ax.grid(alpha=0.3, which="both")
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3].copy()
