"""Chapters 7 and 8 in PyTorch: SimpleConvNet and DeepConvNet, twins of scratch.models.convnets.

Same layer names inside one ``nn.Sequential`` called ``layers`` (``Conv1``,
``Relu1``, ``Pool1``, ``Flatten``, ``Affine1``, ``Dropout1``, ...), hence the
same state-dict keys as the scratch twin. Dropout is
``torch_ref.nn.NumpyDropout`` when a NumPy ``dropout_generator`` is given
(lockstep: the scratch twin's masks) and ``nn.Dropout`` otherwise.
``filter_grid`` pictures a convolution's filters with ``torchvision.utils.make_grid``.
"""
import math
from collections import OrderedDict

import torch
from torch import nn

from torch_ref.models import share_correct
from torch_ref.nn import NumpyDropout, torch_dtype


class _BookConvNet(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)

    def loss(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """CE(forward(x), t) (the book's SoftmaxWithLoss)."""
        return self.last_layer(self(x), t)

    @torch.no_grad()
    def accuracy(self, x: torch.Tensor, t: torch.Tensor, batch_size: int = 100) -> float:
        """Share of argmax(scores) == t, in eval mode (restored after), ``batch_size`` images at a time."""
        was_training = self.training
        self.eval()
        try:
            scores = torch.cat([self(x[i:i + batch_size]) for i in range(0, len(x), batch_size)])
        finally:
            self.train(was_training)
        return share_correct(scores.argmax(dim=1), t, scores.shape[1])

    def convolutions(self) -> list:
        return [m for m in self.layers if isinstance(m, nn.Conv2d)]


def _randn(shape, generator, std: float) -> torch.Tensor:
    return std * torch.randn(shape, generator=generator, dtype=torch.float64)


class SimpleConvNet(_BookConvNet):
    """The book's chapter 7 network; arguments as the scratch twin's.

    ``generator``: a ``torch.Generator`` for the initial weights (std * randn, the
    book's shapes and order; biases 0). ``dtype``: torch or NumPy dtype (default torch's).
    Shapes: x (N, C, H, W) -> scores (N, output_size).
    """

    def __init__(self, input_dim=(1, 28, 28), conv_param=None, hidden_size: int = 100, output_size: int = 10,
                 weight_init_std: float = 0.01, dtype=None, generator: torch.Generator | None = None):
        super().__init__()
        conv_param = dict({"filter_num": 30, "filter_size": 5, "pad": 0, "stride": 1}, **(conv_param or {}))
        dtype = torch_dtype(dtype)
        C, H, W = input_dim
        fn, fs, pad, stride = (conv_param[k] for k in ("filter_num", "filter_size", "pad", "stride"))
        conv_h, conv_w = (H - fs + 2 * pad) // stride + 1, (W - fs + 2 * pad) // stride + 1
        pool_out = fn * (conv_h // 2) * (conv_w // 2)
        conv1 = nn.Conv2d(C, fn, fs, stride=stride, padding=pad, dtype=dtype)
        affine1, affine2 = nn.Linear(pool_out, hidden_size, dtype=dtype), nn.Linear(hidden_size, output_size,
                                                                                    dtype=dtype)
        with torch.no_grad():
            conv1.weight.copy_(_randn((fn, C, fs, fs), generator, weight_init_std))
            affine1.weight.copy_(_randn((pool_out, hidden_size), generator, weight_init_std).T)
            affine2.weight.copy_(_randn((hidden_size, output_size), generator, weight_init_std).T)
            for layer in (conv1, affine1, affine2):
                layer.bias.zero_()
        self.layers = nn.Sequential(OrderedDict([
            ("Conv1", conv1), ("Relu1", nn.ReLU()), ("Pool1", nn.MaxPool2d(2, stride=2)), ("Flatten", nn.Flatten()),
            ("Affine1", affine1), ("Relu2", nn.ReLU()), ("Affine2", affine2),
        ]))
        self.last_layer = nn.CrossEntropyLoss()


DEEP_CONV_PARAMS = (
    {"filter_num": 16, "filter_size": 3, "pad": 1, "stride": 1},
    {"filter_num": 16, "filter_size": 3, "pad": 1, "stride": 1},
    {"filter_num": 32, "filter_size": 3, "pad": 1, "stride": 1},
    {"filter_num": 32, "filter_size": 3, "pad": 2, "stride": 1},
    {"filter_num": 64, "filter_size": 3, "pad": 1, "stride": 1},
    {"filter_num": 64, "filter_size": 3, "pad": 1, "stride": 1},
)


class DeepConvNet(_BookConvNet):
    """The book's chapter 8 network; arguments as the scratch twin's.

    ``generator``: a ``torch.Generator`` for the He initial weights (sqrt(2/fan_in) * randn, the
    book's fan_in); ``dropout_generator``: a ``numpy.random.Generator`` for lockstep masks, or None
    for ``nn.Dropout``. Shapes: x (N, C, H, W) -> scores (N, output_size).
    """

    def __init__(self, input_dim=(1, 28, 28), conv_param_1=None, conv_param_2=None, conv_param_3=None,
                 conv_param_4=None, conv_param_5=None, conv_param_6=None, hidden_size: int = 50,
                 output_size: int = 10, dropout_ratio: float = 0.5, dtype=None,
                 generator: torch.Generator | None = None, dropout_generator=None):
        super().__init__()
        given = (conv_param_1, conv_param_2, conv_param_3, conv_param_4, conv_param_5, conv_param_6)
        params = [dict(default, **(p or {})) for default, p in zip(DEEP_CONV_PARAMS, given)]
        dtype = torch_dtype(dtype)
        C, H, W = input_dim

        def dropout():
            return (nn.Dropout(dropout_ratio) if dropout_generator is None
                    else NumpyDropout(dropout_ratio, generator=dropout_generator))

        layers = OrderedDict()
        channels = C
        for i, p in enumerate(params, start=1):
            conv = nn.Conv2d(channels, p["filter_num"], p["filter_size"], stride=p["stride"], padding=p["pad"],
                             dtype=dtype)
            with torch.no_grad():
                fan_in = channels * p["filter_size"] ** 2
                conv.weight.copy_(_randn(conv.weight.shape, generator, math.sqrt(2.0 / fan_in)))
                conv.bias.zero_()
            layers[f"Conv{i}"] = conv
            layers[f"Relu{i}"] = nn.ReLU()
            channels = p["filter_num"]
            H = (H + 2 * p["pad"] - p["filter_size"]) // p["stride"] + 1
            W = (W + 2 * p["pad"] - p["filter_size"]) // p["stride"] + 1
            if i % 2 == 0:
                layers[f"Pool{i // 2}"] = nn.MaxPool2d(2, stride=2)
                H, W = H // 2, W // 2
        layers["Flatten"] = nn.Flatten()
        features = channels * H * W
        for name, fan_in, fan_out in (("Affine1", features, hidden_size), ("Affine2", hidden_size, output_size)):
            affine = nn.Linear(fan_in, fan_out, dtype=dtype)
            with torch.no_grad():
                affine.weight.copy_(_randn((fan_in, fan_out), generator, math.sqrt(2.0 / fan_in)).T)
                affine.bias.zero_()
            layers[name] = affine
            if name == "Affine1":
                layers["Relu7"] = nn.ReLU()
                layers["Dropout1"] = dropout()
        layers["Dropout2"] = dropout()
        self.layers = nn.Sequential(layers)
        self.last_layer = nn.CrossEntropyLoss()


def filter_grid(weight, nrow: int = 8, padding: int = 2, normalize: bool = True, value_range=None,
                scale_each: bool = True, pad_value: float = 0.0) -> torch.Tensor:
    """Conv filters as one picture: ``torchvision.utils.make_grid`` of the weight (O, C, KH, KW).

    ``weight``: an ``nn.Conv2d`` or its weight. Defaults as the scratch twin's (per-filter
    scaling to [0, 1], the chapter 7 picture); returns (C', H', W'), C' = 3 for one-channel filters.
    """
    w = weight.weight if isinstance(weight, nn.Conv2d) else weight
    w = torch.as_tensor(w).detach()
    if w.ndim != 4:
        raise ValueError(f"filter_grid: expected a Conv2d or a weight (O, C, KH, KW), got shape {tuple(w.shape)}")
    from torchvision.utils import make_grid  # here: torchvision's package import costs 1.7 s (its models, dynamo)

    return make_grid(w, nrow=nrow, padding=padding, normalize=normalize, value_range=value_range,
                     scale_each=scale_each, pad_value=pad_value)
