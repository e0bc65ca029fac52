"""Chapters 7 and 8: the book's two convolutional networks, and a picture of the learned filters.

    SimpleConvNet:  Conv(30, 5x5) -> ReLU -> MaxPool(2x2) -> Affine(4320, 100) -> ReLU -> Affine(100, 10)
    DeepConvNet:    [Conv 3x3 -> ReLU -> Conv 3x3 -> ReLU -> MaxPool 2x2] * 3
                    -> Affine(64*4*4, 50) -> ReLU -> Dropout(0.5) -> Affine(50, 10) -> Dropout(0.5)

The layers keep the book's names (``Conv1``, ``Relu1``, ``Pool1``,
``Affine1``, ``Dropout1``, ...) inside one ``Sequential`` called ``layers``,
with a ``Flatten`` before the first Affine (the book's Affine reshapes
internally), so the state dict reads ``layers.Conv1.weight``,
``layers.Affine1.bias`` ..., the same keys as the torch_ref twin. As in
MultiLayerNet, ``Affine`` is ``Linear``, whose weight is (out, in), the
transpose of the book's W. The loss is the book's SoftmaxWithLoss, i.e.
``CrossEntropyLoss``: ``loss(x, t)`` then ``loss_backward()``.
"""
import math
from collections import OrderedDict

import numpy as np

from scratch import random as _random
from scratch.models import share_correct
from scratch.nn import Conv2d, CrossEntropyLoss, Flatten, Linear, MaxPool2d, Module, ReLU, Sequential
from scratch.nn.dropout import Dropout

_THROWAWAY_SEED = 0  # the layers' own default init is overwritten: keep it off the user's stream


class _BookConvNet(Module):
    """What both networks share: the layer stack, the loss, accuracy."""

    def forward(self, x: np.ndarray) -> np.ndarray:
        return self.layers(x)

    def backward(self, grad_output: np.ndarray) -> np.ndarray:
        return self.layers.backward(grad_output)

    def loss(self, x: np.ndarray, t: np.ndarray) -> np.ndarray:
        """CE(forward(x), t), a 0-d array (the book's SoftmaxWithLoss)."""
        return self.last_layer(self(x), t)

    def loss_backward(self) -> None:
        """Gradients of the last ``loss(x, t)`` into every ``p.grad``.

        No dL/dx: the first convolution has ``needs_input_grad = False`` (set it
        True to get the gradient with respect to the images from ``backward``).
        """
        self.backward(self.last_layer.backward())

    def accuracy(self, x: np.ndarray, t: np.ndarray, batch_size: int = 100) -> float:
        """Share of argmax(scores) == t, in eval mode (restored after), ``batch_size`` images at a time."""
        was_training = self.training
        self.eval()
        try:
            scores = np.concatenate([self(x[i:i + batch_size]) for i in range(0, len(x), batch_size)])
        finally:
            self.train(was_training)
        return share_correct(np.argmax(scores, axis=1), t, scores.shape[1])

    def convolutions(self) -> list:
        """The Conv2d layers, first to last (``filter_grid(net.convolutions()[0])`` pictures the first)."""
        return [m for m in self.layers if isinstance(m, Conv2d)]


def _conv(in_channels: int, param: dict, dtype) -> Conv2d:
    return Conv2d(in_channels, param["filter_num"], param["filter_size"], stride=param.get("stride", 1),
                  padding=param.get("pad", 0), dtype=dtype, generator=np.random.default_rng(_THROWAWAY_SEED))


def _linear(fan_in: int, fan_out: int, dtype) -> Linear:
    return Linear(fan_in, fan_out, dtype=dtype, generator=np.random.default_rng(_THROWAWAY_SEED))


class SimpleConvNet(_BookConvNet):
    r"""The book's chapter 7 network.

        x (N, C, H, W) -> Conv1 -> Relu1 -> Pool1 (max 2x2, stride 2) -> Flatten
          -> Affine1 (C'*H'*W' -> hidden_size) -> Relu2 -> Affine2 (hidden_size -> output_size) -> scores

    Args:
        input_dim: (C, H, W) of one image, default (1, 28, 28).
        conv_param: the book's dict, default {'filter_num': 30, 'filter_size': 5, 'pad': 0, 'stride': 1}.
        hidden_size: default 100;  output_size: default 10.
        weight_init_std: std of the Gaussian initial weights, default 0.01 (biases 0).
            Drawn as the book draws them: W1 (filter_num, C, fs, fs), W2 (pool_out, hidden), W3 (hidden, out),
            in that order from ``generator``.
        dtype: parameter dtype (default float32);  generator: ``numpy.random.Generator`` for the weights.

    With the defaults: conv out 24x24x30, pooled 12x12x30 = 4320 features.
    Shapes: x (N, C, H, W) -> scores (N, output_size).
    """

    def __init__(self, input_dim=(1, 28, 28), conv_param=None, hidden_size: int = 100, output_size: int = 10,
                 weight_init_std: float = 0.01, dtype=None, generator=None):
        super().__init__()
        conv_param = dict({"filter_num": 30, "filter_size": 5, "pad": 0, "stride": 1}, **(conv_param or {}))
        dtype = np.dtype(dtype or np.float32)
        rng = _random.resolve(generator)
        C, H, W = input_dim
        fn, fs, pad, stride = (conv_param[k] for k in ("filter_num", "filter_size", "pad", "stride"))
        conv_h, conv_w = (H - fs + 2 * pad) // stride + 1, (W - fs + 2 * pad) // stride + 1
        pool_out = fn * (conv_h // 2) * (conv_w // 2)
        conv1 = _conv(C, conv_param, dtype)
        affine1, affine2 = _linear(pool_out, hidden_size, dtype), _linear(hidden_size, output_size, dtype)
        conv1.weight.data[...] = weight_init_std * rng.standard_normal((fn, C, fs, fs))
        affine1.weight.data[...] = (weight_init_std * rng.standard_normal((pool_out, hidden_size))).T
        affine2.weight.data[...] = (weight_init_std * rng.standard_normal((hidden_size, output_size))).T
        for layer in (conv1, affine1, affine2):
            layer.bias.data[...] = 0
        conv1.needs_input_grad = False  # the images need no gradient: skip the col2im, as PyTorch's autograd does
        self.layers = Sequential(OrderedDict([
            ("Conv1", conv1), ("Relu1", ReLU()), ("Pool1", MaxPool2d(2, stride=2)), ("Flatten", Flatten()),
            ("Affine1", affine1), ("Relu2", ReLU()), ("Affine2", affine2),
        ]))
        self.last_layer = CrossEntropyLoss()


DEEP_CONV_PARAMS = (
    {"filter_num": 16, "filter_size": 3, "pad": 1, "stride": 1},
    {"filter_num": 16, "filter_size": 3, "pad": 1, "stride": 1},
    {"filter_num": 32, "filter_size": 3, "pad": 1, "stride": 1},
    {"filter_num": 32, "filter_size": 3, "pad": 2, "stride": 1},
    {"filter_num": 64, "filter_size": 3, "pad": 1, "stride": 1},
    {"filter_num": 64, "filter_size": 3, "pad": 1, "stride": 1},
)


class DeepConvNet(_BookConvNet):
    r"""The book's chapter 8 network (about 99.4% on MNIST).

        x -> Conv1 -> Relu1 -> Conv2 -> Relu2 -> Pool1
          -> Conv3 -> Relu3 -> Conv4 -> Relu4 -> Pool2
          -> Conv5 -> Relu5 -> Conv6 -> Relu6 -> Pool3 -> Flatten
          -> Affine1 -> Relu7 -> Dropout1 -> Affine2 -> Dropout2 -> scores

    Convolutions 3x3 with 16, 16, 32, 32, 64, 64 filters, padding 1 except the
    fourth (2); each pool is max 2x2 stride 2. On (1, 28, 28): 28 -> 14 -> 16 -> 8 -> 4,
    so Affine1 is (64*4*4 -> 50).

    Args:
        input_dim: (C, H, W), default (1, 28, 28).
        conv_param_1 ... conv_param_6: the book's dicts (defaults above, ``DEEP_CONV_PARAMS``).
        hidden_size: default 50;  output_size: default 10.
        dropout_ratio: p of both Dropout layers, default 0.5 (PyTorch's inverted dropout).
        dtype: parameter dtype (default float32).
        generator: ``numpy.random.Generator`` for the initial weights: He init,
            W ~ sqrt(2 / fan_in) N(0, 1) with the book's fan_in (pre-node counts)
            [C*3*3, 16*3*3, 16*3*3, 32*3*3, 32*3*3, 64*3*3, 64*4*4, hidden_size],
            drawn in layer order, Affine weights as (in, out); biases 0.
        dropout_generator: ``numpy.random.Generator`` for the dropout masks (seed
            the torch twin's alike for equal masks).

    Shapes: x (N, C, H, W) -> scores (N, output_size).
    """

    def __init__(self, input_dim=(1, 28, 28), conv_param_1=None, conv_param_2=None, conv_param_3=None,
                 conv_param_4=None, conv_param_5=None, conv_param_6=None, hidden_size: int = 50,
                 output_size: int = 10, dropout_ratio: float = 0.5, dtype=None, generator=None,
                 dropout_generator=None):
        super().__init__()
        given = (conv_param_1, conv_param_2, conv_param_3, conv_param_4, conv_param_5, conv_param_6)
        params = [dict(default, **(p or {})) for default, p in zip(DEEP_CONV_PARAMS, given)]
        dtype = np.dtype(dtype or np.float32)
        rng = _random.resolve(generator)
        C, H, W = input_dim
        layers = OrderedDict()
        channels = C
        for i, param in enumerate(params, start=1):
            conv = _conv(channels, param, dtype)
            fan_in = channels * param["filter_size"] ** 2
            conv.weight.data[...] = math.sqrt(2.0 / fan_in) * rng.standard_normal(conv.weight.shape)
            conv.bias.data[...] = 0
            layers[f"Conv{i}"] = conv
            layers[f"Relu{i}"] = ReLU()
            channels = param["filter_num"]
            H = (H + 2 * param["pad"] - param["filter_size"]) // param["stride"] + 1
            W = (W + 2 * param["pad"] - param["filter_size"]) // param["stride"] + 1
            if i % 2 == 0:
                layers[f"Pool{i // 2}"] = MaxPool2d(2, stride=2)
                H, W = H // 2, W // 2
        layers["Conv1"].needs_input_grad = False  # the images need no gradient: skip the col2im
        layers["Flatten"] = Flatten()
        features = channels * H * W
        for name, fan_in, fan_out in (("Affine1", features, hidden_size), ("Affine2", hidden_size, output_size)):
            affine = _linear(fan_in, fan_out, dtype)
            affine.weight.data[...] = (math.sqrt(2.0 / fan_in) * rng.standard_normal((fan_in, fan_out))).T
            affine.bias.data[...] = 0
            layers[name] = affine
            if name == "Affine1":
                layers["Relu7"] = ReLU()
                layers["Dropout1"] = Dropout(dropout_ratio, generator=dropout_generator)
        layers["Dropout2"] = Dropout(dropout_ratio, generator=dropout_generator)
        self.layers = Sequential(layers)
        self.last_layer = CrossEntropyLoss()


def filter_grid(weight, nrow: int = 8, padding: int = 2, normalize: bool = True, value_range=None,
                scale_each: bool = True, pad_value: float = 0.0) -> np.ndarray:
    """Conv filters as one picture: ``torchvision.utils.make_grid`` of the weight, in NumPy.

    ``weight``: a Conv2d or its weight (O, C, KH, KW). Each filter is one tile;
    tiles go ``nrow`` to a row, ``padding`` pixels of ``pad_value`` around them.
    One-channel filters are repeated to 3 channels (as make_grid does). With
    ``normalize`` each tile (``scale_each``, the chapter 7 picture) or the whole
    set is clamped to ``value_range`` (default its own min and max) and mapped to
    [0, 1]: (w - low) / max(high - low, 1e-5).

    Returns (C', rows * (KH + padding) + padding, cols * (KW + padding) + padding),
    C' = 3 for one-channel filters; a single filter comes back unpadded, as make_grid does.
    Show it with ``plt.imshow(grid.transpose(1, 2, 0))`` (or ``grid[0]`` and a gray colormap).
    """
    w = np.array(weight.weight if isinstance(weight, Conv2d) else weight, copy=True)
    if w.ndim != 4:
        raise ValueError(f"filter_grid: expected a Conv2d or a weight (O, C, KH, KW), got shape {w.shape}")
    if w.shape[1] == 1:
        w = np.concatenate([w, w, w], axis=1)
    if normalize:
        def norm(t, low, high):
            np.clip(t, low, high, out=t)
            t -= t.dtype.type(low)
            t /= t.dtype.type(max(high - low, 1e-5))

        if value_range is not None:
            norm(w, *value_range)
        elif scale_each:
            flat = w.reshape(len(w), -1)
            low, high = flat.min(axis=1), flat.max(axis=1)
            np.clip(flat, low[:, None], high[:, None], out=flat)
            flat -= low[:, None]
            flat /= np.maximum(high - low, 1e-5).astype(w.dtype)[:, None]
        else:
            norm(w, float(w.min()), float(w.max()))
    n, C, kh, kw = w.shape
    if n == 1:
        return w[0]
    xmaps = min(nrow, n)
    ymaps = math.ceil(n / xmaps)
    h, wd = kh + padding, kw + padding
    tiles = np.full((ymaps * xmaps, C, h, wd), pad_value, dtype=w.dtype)
    tiles[:n, :, padding:, padding:] = w
    grid = np.full((C, ymaps * h + padding, xmaps * wd + padding), pad_value, dtype=w.dtype)
    grid[:, :ymaps * h, :xmaps * wd] = tiles.reshape(ymaps, xmaps, C, h, wd).transpose(2, 0, 3, 1, 4).reshape(
        C, ymaps * h, xmaps * wd)
    return grid
