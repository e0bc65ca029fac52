"""Chapter 8: a small ResNet for MNIST, built from ``scratch.nn.ResidualBlock``.

    x (N, 1, 28, 28) -> stem: conv 3x3 (C0) -> bn -> relu
      -> stage 1: blocks of width C0, stride 1
      -> stage 2: blocks of width C1, the first with stride 2 (28 -> 14) and a 1x1 projection shortcut
      -> stage 3: blocks of width C2, the first with stride 2 (14 -> 7)
      -> global average pool -> Flatten -> fc (C2 -> 10) -> scores

Widths (C0, C1, C2) default to (16, 32, 64), one block per stage (a ResNet-8:
1 + 3 * 2 convolutions + fc). The state dict reads ``layers.stem.conv.weight``,
``layers.stage2.0.body.conv1.weight``, ``layers.stage2.0.shortcut.conv.weight``,
``layers.fc.bias`` ..., the same keys as ``torch_ref.models.resnet.ResNet``.
"""
from collections import OrderedDict

import numpy as np

from scratch import random as _random
from scratch.nn import (AdaptiveAvgPool2d, BatchNorm2d, Conv2d, Flatten, Linear, Module, ReLU, ResidualBlock,
                        Sequential, init)


class ResNet(Module):
    r"""A small ResNet (see the module docstring).

    Args:
        in_channels: channels of the images, default 1.
        widths: channels of the three stages, default (16, 32, 64).
        blocks: residual blocks per stage, default 1.
        num_classes: default 10.
        stem_stride: stride of the stem convolution, default 1; 2 halves the image first (28 -> 14 -> 7 -> 4),
            a quarter of the arithmetic.
        dtype: parameter dtype (default float32).
        generator: ``numpy.random.Generator`` for the initial weights: convolutions He-normal
            (fan_out, torchvision's ResNet), batch norm weight 1 and bias 0, fc PyTorch's default.

    Shapes: x (N, in_channels, H, W) -> scores (N, num_classes).
    """

    def __init__(self, in_channels: int = 1, widths=(16, 32, 64), blocks: int = 1, num_classes: int = 10,
                 stem_stride: int = 1, dtype=None, generator=None):
        super().__init__()
        rng = _random.resolve(generator)
        dtype = np.dtype(dtype or np.float32)
        stem_conv = Conv2d(in_channels, widths[0], 3, stride=stem_stride, padding=1, bias=False, dtype=dtype,
                           generator=rng)
        init.kaiming_normal_(stem_conv.weight, mode="fan_out", nonlinearity="relu", generator=rng)
        stem_conv.needs_input_grad = False  # the images need no gradient
        layers = OrderedDict([("stem", Sequential(OrderedDict([
            ("conv", stem_conv), ("bn", BatchNorm2d(widths[0], dtype=dtype)), ("relu", ReLU())])))])
        channels = widths[0]
        for i, width in enumerate(widths, start=1):
            stage = []
            for j in range(blocks):
                stride = 2 if i > 1 and j == 0 else 1
                stage.append(ResidualBlock(channels, width, stride, dtype=dtype, generator=rng))
                channels = width
            layers[f"stage{i}"] = Sequential(*stage)
        layers["pool"] = AdaptiveAvgPool2d(1)
        layers["flatten"] = Flatten()
        layers["fc"] = Linear(channels, num_classes, dtype=dtype, generator=rng)
        self.layers = Sequential(layers)

    def forward(self, x: np.ndarray) -> np.ndarray:
        return self.layers(x)

    def backward(self, grad_output: np.ndarray) -> np.ndarray:
        return self.layers.backward(grad_output)
