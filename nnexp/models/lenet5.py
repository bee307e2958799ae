"""LeNet-5 (LeCun et al. 1998): two convolution + subsampling stages, then three fully connected layers.

    (C, 32, 32) -conv 5x5-> (6, 28, 28) -pool-> (6, 14, 14) -conv 5x5-> (16, 10, 10) -pool-> (16, 5, 5)
    -> 120 -> 84 -> num_outputs

LeNet-5 reads 32x32 images; ``fit`` says how other sizes get there. ``pad``
adds a zero border up to 32x32 (LeCun padded 28x28 MNIST by 2 the same way;
larger images stay as they are and the first linear layer grows), ``resize``
rescales every image to 32x32 bilinearly.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from nnexp.models import activation as make_activation
from nnexp.options import models as options

SIZE = 32  # the input side LeNet-5 was designed for
POOLS: dict[str, type[nn.Module]] = {name: getattr(nn, cls) for name, cls in options.POOLS.items()}


def _side(n: int) -> int:
    """A side of n pixels after the two (5x5 convolution, 2x2 pooling) stages."""
    return ((n - 4) // 2 - 4) // 2


class LeNet5(nn.Module):
    def __init__(
        self,
        input_shape: tuple[int, ...],
        num_outputs: int,
        activation: str = "tanh",
        pool: str = "avg",
        fit: str = "resize",
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        options.lenet5(activation=activation, pool=pool, fit=fit, dropout=dropout)
        if len(input_shape) != 3:
            raise ValueError(f"lenet5 needs images (C, H, W); this dataset gives inputs of shape "
                             f"{tuple(input_shape)}; use an image dataset such as dataset=digits")
        channels, height, width = input_shape
        self.fit = fit
        if fit == "resize":
            height = width = SIZE
        pad_h, pad_w = max(0, SIZE - height), max(0, SIZE - width)
        self.pad = (pad_w // 2, pad_w - pad_w // 2, pad_h // 2, pad_h - pad_h // 2)  # left, right, top, bottom
        height, width = height + pad_h, width + pad_w
        self.features = nn.Sequential(
            nn.Conv2d(channels, 6, kernel_size=5), make_activation(activation),  # (B, 6, 28, 28)
            POOLS[pool](2),                                                      # (B, 6, 14, 14)
            nn.Conv2d(6, 16, kernel_size=5), make_activation(activation),       # (B, 16, 10, 10)
            POOLS[pool](2),                                                      # (B, 16, 5, 5)
            nn.Flatten(),                                                        # (B, 400)
        )
        flat = 16 * _side(height) * _side(width)  # 16 * 5 * 5 = 400 for 32x32 images
        drop = [nn.Dropout(dropout)] if dropout > 0 else []
        self.classifier = nn.Sequential(
            *drop, nn.Linear(flat, 120), make_activation(activation),  # (B, 120)
            *drop, nn.Linear(120, 84), make_activation(activation),    # (B, 84)
            *drop, nn.Linear(84, num_outputs),                         # (B, num_outputs)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.fit == "resize":
            x = F.interpolate(x, size=(SIZE, SIZE), mode="bilinear", align_corners=False)
        x = F.pad(x, self.pad)  # (B, C, >=32, >=32); a no-op for images already that large
        return self.classifier(self.features(x))
