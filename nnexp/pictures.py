"""Pictures for TensorBoard's IMAGES tab, drawn with numpy and PIL (no matplotlib).

Every public function returns an RGB ``uint8`` array of shape (H, W, 3), ready
for ``SummaryWriter.add_image(..., dataformats="HWC")``. They run the model in
eval mode under ``no_grad``, restore its train/eval mode and draw no random
numbers, so switching pictures on or off never changes what a run learns.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw, ImageFont
from torch import nn

from nnexp.data import Data, Split
from nnexp.losses import predicted_class

# Class colours: orange and blue first, as in TensorFlow Playground; more classes cycle.
PALETTE = np.array([(245, 147, 34), (8, 119, 189), (44, 160, 44), (214, 39, 40), (148, 103, 189),
                    (140, 86, 75), (227, 119, 194), (127, 127, 127), (188, 189, 34), (23, 190, 207)],
                   dtype=np.float32)
WHITE = np.float32(255.0)
DARK_BLUE = np.array((8, 48, 107), dtype=np.float32)  # confusion matrix: a cell holding a whole row
DARK_PURPLE = np.array((63, 0, 125), dtype=np.float32)  # attention: a head's largest weight
GAP_GREY = 200

BOUNDARY_SIZE = 256  # image side in pixels
BOUNDARY_GRID = 32  # the model is evaluated on GRID x GRID points, then interpolated up to the image
MARGIN = 0.1  # the view extends this fraction of the data's range beyond the outermost points
MAX_POINTS = 1000  # points drawn per split; more only cost time
ATTENTION_SIZE = 160  # side of one head's picture in pixels (rounded down to a multiple of T)
CONFUSION_SIZE = 320  # side of the confusion matrix in pixels (cells are 4 to 64 pixels)


def has_decision_boundary(data: Data) -> bool:
    """A plane can show the model: 2-D real-valued inputs, one class per sample."""
    return (tuple(data.input_shape) == (2,) and data.task == "classification" and data.vocab_size is None
            and not data.per_step)


def _class_probabilities(model: nn.Module, x: torch.Tensor, batch_size: int = 4096) -> torch.Tensor:
    """(N, *input_shape) -> (N, C) probabilities, with C >= 2 (a single logit becomes two columns)."""
    chunks = []
    for start in range(0, len(x), batch_size):
        out = model(x[start:start + batch_size])  # (B, C) or (B, 1)
        if out.shape[-1] == 1:
            p1 = torch.sigmoid(out)
            chunks.append(torch.cat([1 - p1, p1], dim=-1))
        else:
            chunks.append(torch.softmax(out, dim=-1))
    return torch.cat(chunks).float()


def _palette(n: int) -> np.ndarray:
    return PALETTE[np.arange(n) % len(PALETTE)]  # (n, 3)


@torch.no_grad()
def decision_boundary(model: nn.Module, data: Data, device: torch.device | str,
                      size: int = BOUNDARY_SIZE, grid: int = BOUNDARY_GRID) -> np.ndarray:
    """The model's classes over the plane, with the data on top: (size, size, 3) uint8.

    The background takes the colour of the predicted class, deeper where the
    model is more certain and white where classes tie. Training points are
    circles with a white rim, validation points squares with a black rim.
    The view is square in data units, so shapes are not stretched.
    """
    was_training = model.training
    model.eval()
    train_x, val_x = data.train.x.float().cpu(), data.val.x.float().cpu()  # (N, 2) each
    points = torch.cat([train_x, val_x])
    lo, hi = points.min(dim=0).values, points.max(dim=0).values
    centre = (lo + hi) / 2
    half = max(float((hi - lo).max()) / 2 * (1 + 2 * MARGIN), 1e-3)  # half the side of the square view

    axis = torch.linspace(-1.0, 1.0, grid)
    gy, gx = torch.meshgrid(axis.flip(0), axis, indexing="ij")  # row 0 is the top: the largest y
    plane = torch.stack([gx, gy], dim=-1).reshape(-1, 2) * half + centre  # (grid*grid, 2)
    probs = _class_probabilities(model, plane.to(device)).cpu()  # (grid*grid, C)
    model.train(was_training)

    n_classes = probs.shape[1]
    probs = probs.T.reshape(1, n_classes, grid, grid)
    probs = F.interpolate(probs, size=(size, size), mode="bilinear", align_corners=True)[0]  # (C, S, S)
    confidence, cls = probs.max(dim=0)  # (S, S) each
    # 0 where classes tie, 0.65 where the model is sure: light enough for the points to stand out
    depth = ((confidence - 1 / n_classes) / (1 - 1 / n_classes)).clamp(0, 1).numpy()[..., None] * 0.65
    colours = _palette(n_classes)
    image = WHITE + depth * (colours[cls.numpy()] - WHITE)  # (S, S, 3)

    picture = Image.fromarray(image.round().astype(np.uint8))
    draw = ImageDraw.Draw(picture)

    def pixel(xy: torch.Tensor) -> np.ndarray:  # (N, 2) data units -> (N, 2) pixel (column, row)
        u = ((xy - centre) / half).numpy()  # in [-1, 1] inside the view
        return np.stack([(u[:, 0] + 1) / 2 * (size - 1), (1 - u[:, 1]) / 2 * (size - 1)], axis=1)

    r = max(2, size // 80)  # marker radius in pixels
    fills = [tuple(int(v) for v in c * 0.8) for c in colours]  # points a shade darker than their region
    for split_x, split_y, circle in ((train_x, data.train.y, True), (val_x, data.val.y, False)):
        labels = split_y[:MAX_POINTS].cpu().tolist()
        for (c, row), label in zip(pixel(split_x[:MAX_POINTS]).tolist(), labels, strict=True):
            fill = fills[label % n_classes]
            box = (c - r, row - r, c + r, row + r)
            if circle:
                draw.ellipse(box, fill=fill, outline=(255, 255, 255))
            else:
                draw.rectangle(box, fill=fill, outline=(0, 0, 0))
    return np.array(picture)  # a writable copy


@torch.no_grad()
def confusion_counts(model: nn.Module, split: Split, num_classes: int, batch_size: int = 1024) -> np.ndarray:
    """(C, C) int64: entry [true, predicted]; per-step targets count every time step."""
    was_training = model.training
    model.eval()
    counts = torch.zeros(num_classes * num_classes, dtype=torch.long, device=split.x.device)
    for start in range(0, len(split), batch_size):
        pred = predicted_class(model(split.x[start:start + batch_size])).reshape(-1)  # (B,) or (B*T,)
        true = split.y[start:start + batch_size].reshape(-1)
        counts += torch.bincount(true * num_classes + pred, minlength=num_classes * num_classes)
    model.train(was_training)
    return counts.reshape(num_classes, num_classes).cpu().numpy()


def render_confusion(counts: np.ndarray) -> np.ndarray:
    """(C, C) counts -> (H, W, 3) uint8. Rows: true class from the top, columns: predicted class from the left.

    A cell's blue is its share of its row (recall of the true class): a perfect
    classifier is a dark diagonal on white. Cells big enough show the count.
    """
    n = len(counts)
    share = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)  # (C, C) in [0, 1]
    cell = int(np.clip(CONFUSION_SIZE // n, 4, 64))
    colours = WHITE + share[..., None] * (DARK_BLUE - WHITE)  # (C, C, 3)
    image = np.repeat(np.repeat(colours, cell, axis=0), cell, axis=1).round().astype(np.uint8)
    if cell < 20:
        return image
    picture = Image.fromarray(image)
    draw = ImageDraw.Draw(picture)
    font = ImageFont.load_default()
    for i in range(n):
        for j in range(n):
            ink = (255, 255, 255) if share[i, j] > 0.5 else (0, 0, 0)
            draw.text((j * cell + cell / 2, i * cell + cell / 2), str(counts[i, j]), fill=ink, font=font, anchor="mm")
    return np.array(picture)  # a writable copy


def confusion_matrix(model: nn.Module, split: Split, num_classes: int, batch_size: int = 1024) -> np.ndarray:
    """The confusion matrix of ``model`` on ``split`` as an (H, W, 3) uint8 picture."""
    return render_confusion(confusion_counts(model, split, num_classes, batch_size))


@torch.no_grad()
def attention_maps(model: nn.Module, example: torch.Tensor) -> list[np.ndarray]:
    """One picture per layer for one input ``example`` (1, *input_shape); [] for models without attention.

    A layer's heads stand side by side, each a T x T map: row t shows how much
    position t attends to each position (dark = most, each head scaled to its
    own largest weight). Needs a model that keeps ``attention`` after a forward.
    """
    if not hasattr(model, "attention"):
        return []
    was_training = model.training
    model.eval()
    model(example)
    model.train(was_training)
    pictures = []
    for weights in model.attention:  # (1, heads, T, T)
        w = weights[0].float().cpu()
        w = w / w.amax(dim=(1, 2), keepdim=True).clamp_min(1e-12)  # (heads, T, T) in [0, 1]
        heads, length, _ = w.shape
        cell = max(1, ATTENTION_SIZE // length)
        tiles = w.repeat_interleave(cell, dim=1).repeat_interleave(cell, dim=2).numpy()  # (heads, T*cell, T*cell)
        side = length * cell
        gap = 4
        image = np.full((side, heads * (side + gap) - gap, 3), GAP_GREY, dtype=np.float32)
        for h in range(heads):
            x0 = h * (side + gap)
            image[:, x0:x0 + side] = WHITE + tiles[h][..., None] * (DARK_PURPLE - WHITE)
        pictures.append(image.round().astype(np.uint8))
    return pictures
