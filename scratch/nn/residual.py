r"""Residual connections (He et al., 2015; chapter 8 of the notes): y = body(x) + shortcut(x).

The addition is a layer of its own so that its backward is written out: the
gradient of a sum reaches x along both paths,

    dL/dx = body.backward(g) + shortcut.backward(g),   g = dL/dy,

and along the identity shortcut it arrives unchanged, however deep the body.
That is why a deep stack of residual blocks still trains.
"""
from collections import OrderedDict

import numpy as np

from scratch import random as _random
from scratch.nn import init
from scratch.nn.activation import ReLU
from scratch.nn.batchnorm import BatchNorm2d
from scratch.nn.conv import Conv2d
from scratch.nn.linear import Identity
from scratch.nn.module import Module, Sequential


class Residual(Module):
    r"""y = body(x) + shortcut(x).

    Args:
        body: the residual branch F (any Module).
        shortcut: the skip path (a Module), default ``Identity()``: y = F(x) + x.

    Shapes: x (*) -> y (*); body(x) and shortcut(x) must have the same shape.

    Backward, g = dL/dy (the same array flows into both branches):
        dL/dx = body.backward(g) + shortcut.backward(g).
    A branch whose backward returns None (a first layer that computes no input
    gradient) contributes nothing.
    """

    def __init__(self, body: Module, shortcut: Module = None):
        super().__init__()
        self.body = body
        self.shortcut = Identity() if shortcut is None else shortcut

    def forward(self, x: np.ndarray) -> np.ndarray:
        a = self.body(x)
        b = self.shortcut(x)
        if a.shape != b.shape:
            raise RuntimeError(
                f"{self._get_name()}: the body's output {a.shape} and the shortcut's output {b.shape} must have "
                f"the same shape (give a shortcut, e.g. a 1x1 convolution, that maps the input to the body's shape)"
            )
        return a + b

    def backward(self, grad_output: np.ndarray) -> np.ndarray:
        grads = [g for g in (self.body.backward(grad_output), self.shortcut.backward(grad_output)) if g is not None]
        if not grads:
            return None
        return grads[0] if len(grads) == 1 else grads[0] + grads[1]


class ResidualBlock(Residual):
    r"""The basic block of ResNet-18/34: two 3x3 convolutions with batch norm, then ReLU after the addition.

        body:     conv1 (3x3, stride s, pad 1) -> bn1 -> relu1 -> conv2 (3x3, pad 1) -> bn2
        shortcut: identity if s == 1 and C_in == C_out, else conv (1x1, stride s) -> bn
        y = relu(body(x) + shortcut(x))

    Convolutions have no bias (the batch norm that follows has one).

    Args:
        in_channels, out_channels: C_in, C_out.
        stride: s of the first convolution and of the projection shortcut, default 1.
        dtype: parameter dtype (default float32).
        generator: ``numpy.random.Generator`` for the convolution weights: He init
            (``kaiming_normal_(mode="fan_out", nonlinearity="relu")``, torchvision's ResNet);
            batch norm starts at weight 1, bias 0.

    Shapes: x (N, C_in, H, W) -> (N, C_out, ceil(H / s), ceil(W / s)).
    State-dict keys: ``body.conv1.weight``, ``body.bn1.weight`` ..., ``shortcut.conv.weight`` (projection).
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1, dtype=None, generator=None):
        rng = _random.resolve(generator)
        dtype = np.dtype(dtype or np.float32)

        def conv(cin, cout, k, s):
            c = Conv2d(cin, cout, k, stride=s, padding=k // 2, bias=False, dtype=dtype, generator=rng)
            init.kaiming_normal_(c.weight, mode="fan_out", nonlinearity="relu", generator=rng)
            return c

        body = Sequential(OrderedDict([
            ("conv1", conv(in_channels, out_channels, 3, stride)), ("bn1", BatchNorm2d(out_channels, dtype=dtype)),
            ("relu1", ReLU()),
            ("conv2", conv(out_channels, out_channels, 3, 1)), ("bn2", BatchNorm2d(out_channels, dtype=dtype)),
        ]))
        shortcut = None
        if stride != 1 or in_channels != out_channels:
            shortcut = Sequential(OrderedDict([("conv", conv(in_channels, out_channels, 1, stride)),
                                               ("bn", BatchNorm2d(out_channels, dtype=dtype))]))
        super().__init__(body, shortcut)
        self.relu = ReLU()
        self.in_channels, self.out_channels, self.stride = in_channels, out_channels, stride

    def forward(self, x: np.ndarray) -> np.ndarray:
        return self.relu(super().forward(x))

    def backward(self, grad_output: np.ndarray) -> np.ndarray:
        return super().backward(self.relu.backward(grad_output))

    def extra_repr(self) -> str:
        return f"in_channels={self.in_channels}, out_channels={self.out_channels}, stride={self.stride}"
