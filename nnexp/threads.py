"""How many CPU threads a run trains with under ``trainer.threads=0`` (auto): chosen from its layers' size.

A second thread helps a layer only when the layer's work outweighs waking the
thread and waiting for it at the end of every operation. nnexp's OpenMP threads
sleep when idle (nnexp/openmp.py: a competing process must not make a run
hundreds of times slower), and waking a sleeping thread costs tens of
microseconds, more on a virtual machine. The layers of most course-sized models
are far smaller than that pays for: on the 2-core machine one thread trained
the demo MLP, LeNet-5, the LSTM and the Transformer faster than two
(benchmarks/RESULTS.md, B6); two threads won only on ResNet-20 over
CIFAR-shaped images at batch 128.

So auto counts the multiply-adds of the average layer in one optimizer step (a
forward pass of one sample, with hooks, times the batch size) and takes every
core it may use where that reaches ``LARGE_LAYER``, one thread otherwise. The
count depends only on the model and the batch size, never on a timing, so the
same command trains with the same threads (and gives the same numbers) every time.
"""

from __future__ import annotations

import torch
from torch import nn

# multiply-adds per layer and optimizer step from which the cores pay for their wake-ups (ResNet-20 on
# 32x32 images at batch 128 has 260M; the demo MLP at batch 32, 3.2M; the Transformer on adding, 7.5M)
LARGE_LAYER = 100e6
_RECURRENT = (nn.LSTM, nn.GRU, nn.RNN)


def layer_work(model: nn.Module, sample: torch.Tensor) -> tuple[int, int]:
    """(multiply-adds, layer applications) of one forward pass of ``sample`` (a batch of one) through the
    model's linear, convolutional and recurrent layers; a recurrent layer applies its weights once per time
    step. Run in eval mode without gradients: no running statistics move and no random number is drawn."""
    work, applications = 0, 0

    def count(module: nn.Module, _inputs: object, output: object) -> None:
        nonlocal work, applications
        out = output[0] if isinstance(output, tuple) else output
        if not isinstance(out, torch.Tensor) or out.numel() == 0:
            return
        if isinstance(module, _RECURRENT):
            steps = out.shape[1] if module.batch_first or out.ndim == 2 else out.shape[0]
            weights = sum(p.numel() for name, p in module.named_parameters() if name.startswith("weight"))
            work += weights * steps
            applications += module.num_layers * steps
            return
        channels = out.shape[1] if isinstance(module, nn.modules.conv._ConvNd) else out.shape[-1]
        work += module.weight.numel() * (out.numel() // max(1, channels))  # weights x output positions
        applications += 1

    layers = (nn.Linear, nn.modules.conv._ConvNd, *_RECURRENT)
    hooks = [m.register_forward_hook(count) for m in model.modules() if isinstance(m, layers)]
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            model(sample)
    finally:
        model.train(was_training)
        for hook in hooks:
            hook.remove()
    return work, applications


def auto_threads(model: nn.Module, sample: torch.Tensor, batch_size: int, available: int) -> tuple[int, str]:
    """The thread count for ``trainer.threads=0`` and the reason, for the run's log line."""
    if available <= 1:
        return 1, "auto: 1 core available"
    try:
        work, applications = layer_work(model, sample)
    except Exception as exc:  # noqa: BLE001 - a model this cannot run on one sample: the safe choice
        return 1, f"auto: layer sizes unknown ({type(exc).__name__}), 1 thread is never slowed by a busy core"
    per_layer = work * batch_size / max(1, applications)
    size = f"{per_layer / 1e6:.3g}M multiply-adds per layer and step"
    if per_layer >= LARGE_LAYER:
        return available, f"auto: {size}, large enough for {available} cores"
    return 1, f"auto: {size}, below the {LARGE_LAYER / 1e6:.0f}M that pays for a second thread"
