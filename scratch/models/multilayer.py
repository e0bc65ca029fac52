"""Chapter 6: the book's configurable fully connected networks, MultiLayerNet and MultiLayerNetExtend.

    x -> [Affine -> (BatchNorm) -> activation -> (Dropout)] * len(hidden_size_list) -> Affine -> scores

The layers keep the book's names (``Affine1``, ``BatchNorm1``,
``Activation_function1``, ``Dropout1``, ...) inside one ``Sequential`` called
``layers``, so the state dict reads ``layers.Affine1.weight``,
``layers.BatchNorm1.running_mean`` ..., the same keys as the torch_ref twin.
One difference from the book's arrays: ``Affine`` is ``Linear``, whose weight is
(out, in), the transpose of the book's W (in, out).

The book's loss is softmax cross entropy plus the L2 term over every weight
matrix (not biases, not gamma/beta):

    L = CE(scores, t) + 0.5 * weight_decay_lambda * sum_k sum(W_k^2)

``loss(x, t)`` computes it and ``loss_backward()`` writes all its gradients into
``p.grad`` (the twin's ``loss(x, t).backward()``).
"""
from collections import OrderedDict

import numpy as np

from scratch import random as _random
from scratch.models import share_correct
from scratch.nn import CrossEntropyLoss, Linear, Module, ReLU, Sequential, Sigmoid, Tanh
from scratch.nn.batchnorm import BatchNorm1d, BookBatchNorm
from scratch.nn.dropout import BookDropout, Dropout
from scratch.nn.init import book_std
from scratch.nn.regularization import L2Penalty

ACTIVATIONS = {"relu": ReLU, "sigmoid": Sigmoid, "tanh": Tanh}


class MultiLayerNetExtend(Module):
    r"""The book's extended fully connected network (chapter 6), in PyTorch's module form.

    Args:
        input_size, output_size: features in and classes out.
        hidden_size_list: sizes of the hidden layers, e.g. [100, 100, 100].
        activation: 'relu' (default), 'sigmoid' or 'tanh'.
        weight_init_std: 'relu'/'he' (std sqrt(2/fan_in), default), 'sigmoid'/'xavier'
            (std sqrt(1/fan_in)) or a number (the std itself). W ~ std * N(0, 1),
            drawn as the book draws it, (fan_in, fan_out) in that order; biases 0.
        weight_decay_lambda: lambda of the L2 term in ``loss`` (default 0).
        use_dropout, dropout_ration: a Dropout(p=dropout_ration) after each hidden
            activation (the book's spelling of "ratio"; default off, 0.5).
        use_batchnorm: a BatchNorm1d (PyTorch defaults: eps 1e-5, momentum 0.1)
            between each hidden Affine and its activation (default off).
        book_layers: use the book's BookBatchNorm and BookDropout instead of
            PyTorch's (default False). The torch twin has no such option, so keep
            it False for lockstep runs; it exists to show what the differences change.
        dtype: parameter dtype (default float32).
        generator: ``numpy.random.Generator`` for the initial weights.
        dropout_generator: ``numpy.random.Generator`` for the dropout masks (give
            the torch twin one seeded alike for equal masks).

    Shapes: x (N, input_size) -> scores (N, output_size); t class indices (N,) or one-hot (N, output_size).
    """

    def __init__(self, input_size: int, hidden_size_list, output_size: int, activation: str = "relu",
                 weight_init_std="relu", weight_decay_lambda: float = 0, use_dropout: bool = False,
                 dropout_ration: float = 0.5, use_batchnorm: bool = False, book_layers: bool = False,
                 dtype=None, generator=None, dropout_generator=None):
        super().__init__()
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, got {activation!r}")
        self.input_size = input_size
        self.hidden_size_list = list(hidden_size_list)
        self.output_size = output_size
        self.hidden_layer_num = len(self.hidden_size_list)
        self.use_dropout = use_dropout
        self.use_batchnorm = use_batchnorm
        dtype = np.dtype(dtype or np.float32)
        rng = _random.resolve(generator)
        throwaway = np.random.default_rng(0)  # Linear's own init is overwritten: keep it off the user's stream

        sizes = [input_size] + self.hidden_size_list + [output_size]
        layers = OrderedDict()
        for idx in range(1, len(sizes)):
            fan_in, fan_out = sizes[idx - 1], sizes[idx]
            affine = Linear(fan_in, fan_out, dtype=dtype, generator=throwaway)
            W = book_std(weight_init_std, fan_in) * rng.standard_normal((fan_in, fan_out))
            affine.weight.data[...] = W.T
            affine.bias.data[...] = 0
            layers[f"Affine{idx}"] = affine
            if idx == len(sizes) - 1:
                break
            if use_batchnorm:
                layers[f"BatchNorm{idx}"] = (BookBatchNorm(fan_out, dtype=dtype) if book_layers
                                             else BatchNorm1d(fan_out, dtype=dtype))
            layers[f"Activation_function{idx}"] = ACTIVATIONS[activation]()
            if use_dropout:
                layers[f"Dropout{idx}"] = (BookDropout(dropout_ration, generator=dropout_generator) if book_layers
                                           else Dropout(dropout_ration, generator=dropout_generator))
        layers["Affine1"].needs_input_grad = False  # the images need no gradient, as in PyTorch's autograd
        self.layers = Sequential(layers)
        self.last_layer = CrossEntropyLoss()  # the book's SoftmaxWithLoss
        self.weight_decay = L2Penalty(weight_decay_lambda)

    @property
    def weight_decay_lambda(self) -> float:
        return self.weight_decay.weight_decay_lambda

    def weights(self) -> list:
        """The Affine weight Parameters, the ones the L2 term decays."""
        return [m.weight for name, m in self.layers.named_children() if name.startswith("Affine")]

    def forward(self, x: np.ndarray) -> np.ndarray:
        return self.layers(x)

    def backward(self, grad_output: np.ndarray) -> None:
        """Parameter gradients only: the first Affine skips dL/dx (``needs_input_grad``), so this returns None."""
        return self.layers.backward(grad_output)

    def loss(self, x: np.ndarray, t: np.ndarray) -> np.ndarray:
        """The book's loss: CE(forward(x), t) + 0.5 * lambda * sum_k sum(W_k^2), a 0-d array."""
        loss = self.last_layer(self(x), t)
        if self.weight_decay_lambda:
            loss = loss + self.weight_decay(self.weights())
        return loss

    def loss_backward(self) -> None:
        """Gradients of the last ``loss(x, t)`` into every ``p.grad``: backprop, then lambda * W."""
        self.backward(self.last_layer.backward())
        if self.weight_decay_lambda:
            self.weight_decay.backward()

    def accuracy(self, x: np.ndarray, t: np.ndarray) -> float:
        """Share of argmax(scores) == t, computed in eval mode (the mode is restored after)."""
        was_training = self.training
        self.eval()
        try:
            scores = self(x)
        finally:
            self.train(was_training)
        return share_correct(np.argmax(scores, axis=1), t, scores.shape[1])

    def extra_repr(self) -> str:
        return f"weight_decay_lambda={self.weight_decay_lambda}" if self.weight_decay_lambda else ""


class MultiLayerNet(MultiLayerNetExtend):
    """The book's plain fully connected network: MultiLayerNetExtend without batch norm or dropout.

    x -> [Affine -> activation] * len(hidden_size_list) -> Affine -> scores; arguments as there.
    """

    def __init__(self, input_size: int, hidden_size_list, output_size: int, activation: str = "relu",
                 weight_init_std="relu", weight_decay_lambda: float = 0, dtype=None, generator=None):
        super().__init__(input_size, hidden_size_list, output_size, activation=activation,
                         weight_init_std=weight_init_std, weight_decay_lambda=weight_decay_lambda,
                         dtype=dtype, generator=generator)
