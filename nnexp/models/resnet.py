"""CIFAR-style ResNet of depth 6n + 2 (He et al. 2016, section 4.2), and its plain twin.

    stem 3x3 conv (width) -> stage 1: n blocks, width channels, H x W
                          -> stage 2: n blocks, 2 width, H/2 x W/2 (first block strides by 2)
                          -> stage 3: n blocks, 4 width, H/4 x W/4
                          -> global average pool -> dropout -> linear

Each BasicBlock is 3x3 conv-BN-act-3x3 conv-BN, plus the shortcut, then act.
Shortcuts are He et al.'s option A, the one they used on CIFAR: the identity,
and where a stage halves the size and doubles the width, the input subsampled
by 2 and zero-padded with the new channels. Option A has no parameters, so
``skip=False`` (every shortcut removed: the "plain" network of the same depth)
has exactly as many parameters as the ResNet: the comparison is fair.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from nnexp.models import activation as make_activation
from nnexp.options import models as options

MIN_SIDE = 8  # three stages, two of them halving: 8x8 ends at 2x2


class BasicBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, stride: int, activation: str, skip: bool) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False)  # BN has the bias
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.act1, self.act2 = make_activation(activation), make_activation(activation)
        self.skip, self.stride, self.extra = skip, stride, c_out - c_in

    def shortcut(self, x: torch.Tensor) -> torch.Tensor:
        """Option A: identity, or subsample by the stride and zero-pad the added channels."""
        if self.stride > 1:
            x = x[:, :, :: self.stride, :: self.stride]  # (B, c_in, H/2, W/2)
        if self.extra:
            x = F.pad(x, (0, 0, 0, 0, 0, self.extra))  # (B, c_out, H/2, W/2): new channels are zeros
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.act1(self.bn1(self.conv1(x)))  # (B, c_out, H/stride, W/stride)
        out = self.bn2(self.conv2(out))
        if self.skip:
            out = out + self.shortcut(x)  # the block learns a residual F(x) on top of x
        return self.act2(out)


class ResNet(nn.Module):
    def __init__(
        self,
        input_shape: tuple[int, ...],
        num_outputs: int,
        depth: int = 20,
        width: int = 16,
        skip: bool = True,
        activation: str = "relu",
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        options.resnet(depth=depth, width=width, skip=skip, activation=activation, dropout=dropout)
        if len(input_shape) != 3:
            raise ValueError(f"resnet needs images (C, H, W); this dataset gives inputs of shape "
                             f"{tuple(input_shape)}; use an image dataset such as dataset=digits")
        channels, height, width_px = input_shape
        if min(height, width_px) < MIN_SIDE:
            raise ValueError(f"resnet needs images of at least {MIN_SIDE}x{MIN_SIDE}; "
                             f"this dataset gives {height}x{width_px}")
        n = (depth - 2) // 6
        self.stem = nn.Sequential(
            nn.Conv2d(channels, width, 3, padding=1, bias=False), nn.BatchNorm2d(width),
            make_activation(activation),  # (B, width, H, W)
        )
        blocks: list[nn.Module] = []
        c_in = width
        for stage, c_out in enumerate((width, 2 * width, 4 * width)):
            for i in range(n):
                stride = 2 if stage > 0 and i == 0 else 1
                blocks.append(BasicBlock(c_in, c_out, stride, activation, skip))
                c_in = c_out
        self.blocks = nn.Sequential(*blocks)  # (B, 4 width, H/4, W/4), sizes rounded up
        self.pool = nn.AdaptiveAvgPool2d(1)  # (B, 4 width, 1, 1)
        self.drop = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.fc = nn.Linear(4 * width, num_outputs)  # (B, num_outputs)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):  # He initialisation, as in the paper
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.blocks(self.stem(x))  # (B, 4 width, H/4, W/4)
        return self.fc(self.drop(torch.flatten(self.pool(x), 1)))
