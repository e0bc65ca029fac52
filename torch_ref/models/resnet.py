"""Chapter 8 in PyTorch: the residual block and the small ResNet, twins of scratch.nn.residual and
scratch.models.resnet (same module names, hence the same state-dict keys)."""
from collections import OrderedDict

import torch
from torch import nn

from torch_ref.nn import torch_dtype


class Residual(nn.Module):
    """y = body(x) + shortcut(x); ``shortcut`` defaults to ``nn.Identity()``. Autograd does the backward."""

    def __init__(self, body: nn.Module, shortcut: nn.Module = None):
        super().__init__()
        self.body = body
        self.shortcut = nn.Identity() if shortcut is None else shortcut

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x) + self.shortcut(x)


def _conv(cin: int, cout: int, k: int, stride: int, dtype) -> nn.Conv2d:
    conv = nn.Conv2d(cin, cout, k, stride=stride, padding=k // 2, bias=False, dtype=dtype)
    nn.init.kaiming_normal_(conv.weight, mode="fan_out", nonlinearity="relu")
    return conv


class ResidualBlock(Residual):
    """relu(body(x) + shortcut(x)), body = conv3x3(stride) -> bn -> relu -> conv3x3 -> bn,
    shortcut = identity or conv1x1(stride) -> bn. Arguments as the scratch twin's."""

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1, dtype=None):
        dtype = torch_dtype(dtype)
        body = nn.Sequential(OrderedDict([
            ("conv1", _conv(in_channels, out_channels, 3, stride, dtype)),
            ("bn1", nn.BatchNorm2d(out_channels, dtype=dtype)), ("relu1", nn.ReLU()),
            ("conv2", _conv(out_channels, out_channels, 3, 1, dtype)),
            ("bn2", nn.BatchNorm2d(out_channels, dtype=dtype)),
        ]))
        shortcut = None
        if stride != 1 or in_channels != out_channels:
            shortcut = nn.Sequential(OrderedDict([("conv", _conv(in_channels, out_channels, 1, stride, dtype)),
                                                  ("bn", nn.BatchNorm2d(out_channels, dtype=dtype))]))
        super().__init__(body, shortcut)
        self.relu = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(super().forward(x))


class ResNet(nn.Module):
    """The small ResNet of scratch.models.resnet; arguments as the scratch twin's (init from torch's RNG).

    Shapes: x (N, in_channels, H, W) -> scores (N, num_classes).
    """

    def __init__(self, in_channels: int = 1, widths=(16, 32, 64), blocks: int = 1, num_classes: int = 10,
                 stem_stride: int = 1, dtype=None):
        super().__init__()
        dtype = torch_dtype(dtype)
        layers = OrderedDict([("stem", nn.Sequential(OrderedDict([
            ("conv", _conv(in_channels, widths[0], 3, stem_stride, dtype)),
            ("bn", nn.BatchNorm2d(widths[0], dtype=dtype)),
            ("relu", nn.ReLU())])))])
        channels = widths[0]
        for i, width in enumerate(widths, start=1):
            stage = []
            for j in range(blocks):
                stage.append(ResidualBlock(channels, width, 2 if i > 1 and j == 0 else 1, dtype=dtype))
                channels = width
            layers[f"stage{i}"] = nn.Sequential(*stage)
        layers["pool"] = nn.AdaptiveAvgPool2d(1)
        layers["flatten"] = nn.Flatten()
        layers["fc"] = nn.Linear(channels, num_classes, dtype=dtype)
        self.layers = nn.Sequential(layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)
