"""``lr_find.png``: a range test's loss against the lr (log scale), the suggestion marked; drawn with
matplotlib's Agg canvas (as report.png), once for the file and once as pixels for TensorBoard."""

from __future__ import annotations

import io
import math
import textwrap

import numpy as np

from nnexp.lr_find import Curve


def draw(curve: Curve, title: str, suggested: str | None) -> tuple[bytes, np.ndarray]:
    """The picture as PNG bytes and as an (H, W, 3) uint8 array. ``suggested``: the lr as printed (None: no
    suggestion is marked)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8, 5), dpi=100, layout="constrained")
    canvas = FigureCanvasAgg(fig)
    ax = fig.subplots()
    ax.plot(curve.lrs, curve.losses, color="C0", alpha=0.3, linewidth=1, label="loss (each batch)")
    ax.plot(curve.lrs, curve.smoothed, color="C0", linewidth=2, label="smoothed loss")
    if curve.suggestion is not None and suggested is not None:
        lr, loss = curve.lrs[curve.suggestion], curve.smoothed[curve.suggestion]
        ax.axvline(lr, color="C3", linestyle=":", linewidth=1.2)
        ax.plot([lr], [loss], "o", color="C3", markersize=8,
                label=f"suggested: optimizer.lr={suggested} (steepest fall)")
    ax.set_xscale("log")
    smoothed = [v for v in curve.smoothed if math.isfinite(v)]
    if smoothed:  # the batches' losses of the last steps may shoot far up: the smoothed curve sets the top
        low = min(smoothed + [v for v in curve.losses if math.isfinite(v)])
        high = max(smoothed)
        pad = 0.05 * (high - low) if high > low else 0.1 * abs(high) + 0.1
        ax.set_ylim(low - pad, high + pad)
    ax.set(xlabel="learning rate (log scale)", ylabel="training loss")
    ax.set_title(textwrap.shorten(title, 90, placeholder=" ..."), fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", fontsize=9)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    canvas.draw()
    pixels = np.asarray(canvas.buffer_rgba())[..., :3].copy()  # (H, W, 3)
    return buffer.getvalue(), pixels
