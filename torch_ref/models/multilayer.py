"""Chapter 6 in PyTorch: MultiLayerNet and MultiLayerNetExtend, twins of scratch.models.multilayer.

Same layer names inside one ``nn.Sequential`` called ``layers`` (``Affine1``,
``BatchNorm1``, ``Activation_function1``, ``Dropout1``, ...), hence the same
state-dict keys as the scratch twin. Dropout is ``torch_ref.nn.NumpyDropout``
when a NumPy ``dropout_generator`` is given (lockstep: masks equal to the scratch
twin's) and plain ``nn.Dropout`` otherwise (independent runs).

    loss(x, t) = CE(scores, t) + 0.5 * weight_decay_lambda * sum_k sum(W_k^2)

and ``loss(x, t).backward()`` gives what the scratch twin's ``loss_backward()`` does.
"""
import math
from collections import OrderedDict

import torch
from torch import nn

from torch_ref.models import share_correct
from torch_ref.nn import NumpyDropout, torch_dtype

ACTIVATIONS = {"relu": nn.ReLU, "sigmoid": nn.Sigmoid, "tanh": nn.Tanh}


def init_scale(weight_init_std, fan_in: int) -> float:
    """The book's std: 'relu'/'he' -> sqrt(2/fan_in), 'sigmoid'/'xavier' -> sqrt(1/fan_in), or the number given."""
    name = str(weight_init_std).lower()
    if name in ("relu", "he"):
        return math.sqrt(2.0 / fan_in)
    if name in ("sigmoid", "xavier"):
        return math.sqrt(1.0 / fan_in)
    if isinstance(weight_init_std, str):
        raise ValueError(
            f"weight_init_std must be 'relu', 'he', 'sigmoid', 'xavier' or a number, got {weight_init_std!r}"
        )
    return float(weight_init_std)


class MultiLayerNetExtend(nn.Module):
    """The book's extended fully connected network; arguments as the scratch twin's.

    ``generator`` is a ``torch.Generator`` for the initial weights (W = std * randn(fan_in, fan_out),
    stored transposed; biases 0); ``dropout_generator`` a ``numpy.random.Generator`` for lockstep
    masks, or None for ``nn.Dropout``. ``dtype``: a torch or NumPy dtype (default torch's default).

    Shapes: x (N, input_size) -> scores (N, output_size).
    """

    def __init__(self, input_size: int, hidden_size_list, output_size: int, activation: str = "relu",
                 weight_init_std="relu", weight_decay_lambda: float = 0, use_dropout: bool = False,
                 dropout_ration: float = 0.5, use_batchnorm: bool = False, dtype=None,
                 generator: torch.Generator | None = None, dropout_generator=None):
        super().__init__()
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, got {activation!r}")
        if weight_decay_lambda < 0:
            raise ValueError(f"Invalid weight_decay_lambda value: {weight_decay_lambda}")
        self.input_size = input_size
        self.hidden_size_list = list(hidden_size_list)
        self.output_size = output_size
        self.hidden_layer_num = len(self.hidden_size_list)
        self.use_dropout = use_dropout
        self.use_batchnorm = use_batchnorm
        self.weight_decay_lambda = weight_decay_lambda
        dtype = torch_dtype(dtype)

        sizes = [input_size] + self.hidden_size_list + [output_size]
        layers = OrderedDict()
        for idx in range(1, len(sizes)):
            fan_in, fan_out = sizes[idx - 1], sizes[idx]
            affine = nn.Linear(fan_in, fan_out, dtype=dtype)
            with torch.no_grad():
                W = torch.randn(fan_in, fan_out, generator=generator, dtype=torch.float64)
                affine.weight.copy_((init_scale(weight_init_std, fan_in) * W).T)
                affine.bias.zero_()
            layers[f"Affine{idx}"] = affine
            if idx == len(sizes) - 1:
                break
            if use_batchnorm:
                layers[f"BatchNorm{idx}"] = nn.BatchNorm1d(fan_out, dtype=dtype)
            layers[f"Activation_function{idx}"] = ACTIVATIONS[activation]()
            if use_dropout:
                layers[f"Dropout{idx}"] = (nn.Dropout(dropout_ration) if dropout_generator is None
                                           else NumpyDropout(dropout_ration, generator=dropout_generator))
        self.layers = nn.Sequential(layers)
        self.last_layer = nn.CrossEntropyLoss()  # the book's SoftmaxWithLoss

    def weights(self) -> list:
        """The Affine weights, the ones the L2 term decays."""
        return [m.weight for name, m in self.layers.named_children() if name.startswith("Affine")]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)

    def loss(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """The book's loss: CE(forward(x), t) + 0.5 * lambda * sum_k sum(W_k^2)."""
        loss = self.last_layer(self(x), t)
        if self.weight_decay_lambda:
            loss = loss + 0.5 * self.weight_decay_lambda * sum(torch.sum(w * w) for w in self.weights())
        return loss

    @torch.no_grad()
    def accuracy(self, x: torch.Tensor, t: torch.Tensor) -> float:
        """Share of argmax(scores) == t, computed in eval mode (the mode is restored after)."""
        was_training = self.training
        self.eval()
        try:
            scores = self(x)
        finally:
            self.train(was_training)
        return share_correct(scores.argmax(dim=1), t, scores.shape[1])

    def extra_repr(self) -> str:
        return f"weight_decay_lambda={self.weight_decay_lambda}" if self.weight_decay_lambda else ""


class MultiLayerNet(MultiLayerNetExtend):
    """The book's plain fully connected network: MultiLayerNetExtend without batch norm or dropout."""

    def __init__(self, input_size: int, hidden_size_list, output_size: int, activation: str = "relu",
                 weight_init_std="relu", weight_decay_lambda: float = 0, dtype=None,
                 generator: torch.Generator | None = None):
        super().__init__(input_size, hidden_size_list, output_size, activation=activation,
                         weight_init_std=weight_init_std, weight_decay_lambda=weight_decay_lambda,
                         dtype=dtype, generator=generator)
