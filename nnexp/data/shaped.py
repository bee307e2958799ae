"""Random tensors shaped like a real dataset, for measuring speed, not learning.

``nnexp train dataset=random_images`` gives MNIST-shaped images (1, 28, 28) with
60,000 training and 10,000 validation samples; ``dataset.shape=[3,32,32]`` makes
them CIFAR-shaped. Pixels are standard normal and labels uniform: a model can
only memorise them, so the losses say nothing, but every step costs what it
costs on the real data of that shape. Nothing is downloaded.
"""

from __future__ import annotations

import numpy as np
import torch

from nnexp.data import Data, Split
from nnexp.options import data as options


def random_images(shape: list[int] = (1, 28, 28), train_size: int = 60000, val_size: int = 10000,
                  num_classes: int = 10, seed: int = 0) -> Data:
    """``train_size`` + ``val_size`` images of ``shape`` (C, H, W) with labels in range(num_classes)."""
    options.random_images(shape=shape, train_size=train_size, val_size=val_size, num_classes=num_classes, seed=seed)
    shape = tuple(int(s) for s in shape)
    rng = np.random.default_rng(seed)
    n = train_size + val_size
    x = torch.from_numpy(rng.standard_normal((n, *shape), dtype=np.float32))  # (N, C, H, W)
    y = torch.from_numpy(rng.integers(0, num_classes, n))  # (N,) int64
    return Data(name="random_images", task="classification", input_shape=shape,
                train=Split(x[:train_size], y[:train_size]), val=Split(x[train_size:], y[train_size:]),
                num_classes=num_classes)
