"""Networks in the book's style, written for the tests (layers from examples/book_layers.py), with planted bugs.

Each network has what chapter 5's ``TwoLayerNet`` has: ``params``, ``layers`` (an OrderedDict or a list),
a loss layer of its own, ``predict``, ``loss(x, t)``, ``gradient(x, t)`` and ``numerical_gradient(x, t)``.
The ``Half*``/``Transposed*``/``Leaky*`` layers are one-line bugs a learner makes.
"""
import importlib.util
from collections import OrderedDict
from pathlib import Path

import numpy as np

import test_check

_spec = importlib.util.spec_from_file_location("book_layers", Path(__file__).resolve().parent.parent / "examples"
                                               / "book_layers.py")
L = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(L)


class Affine(L.Affine):
    """The book's Affine of chapter 7: a 4-D input is flattened, dx goes back in the input's shape."""

    def forward(self, x):
        self.shape = x.shape
        return super().forward(x.reshape(x.shape[0], -1))

    def backward(self, dout):
        return super().backward(dout).reshape(self.shape)


class HalfDbAffine(Affine):
    """db halved: a scaled gradient in one layer."""

    def backward(self, dout):
        dx = super().backward(dout)
        self.db = self.db * 0.5
        return dx


class TransposedDwAffine(Affine):
    """dW = dout.T @ x: the transpose of the right gradient."""

    def backward(self, dout):
        dx = super().backward(dout)
        self.dW = np.dot(dout.T, self.x)
        return dx


# A learner's file calls its buggy class Affine (or Relu): the checker knows layers by that name.
for _cls, _name in ((HalfDbAffine, "Affine"), (TransposedDwAffine, "Affine")):
    _cls.__name__ = _name


class LeakyRelu(L.Relu):
    """The mask forgotten in backward: dx = dout (a wrong input gradient, passed on to the layers below)."""

    def backward(self, dout):
        return dout


LeakyRelu.__name__ = "Relu"


def _numerical_gradient(f, x):
    h = 1e-4
    grad = np.zeros_like(x)
    for idx in np.ndindex(*x.shape):
        old = x[idx]
        x[idx] = old + h
        up = f(x)
        x[idx] = old - h
        down = f(x)
        x[idx] = old
        grad[idx] = (up - down) / (2 * h)
    return grad


class _Net:
    def predict(self, x, train_flg=False):
        for layer in (self.layers.values() if isinstance(self.layers, dict) else self.layers):
            x = layer.forward(x, train_flg) if isinstance(layer, L.Dropout) else layer.forward(x)
        return x

    def loss(self, x, t):
        return self.last_layer.forward(self.predict(x, train_flg=True), t)

    def numerical_gradient(self, x, t):
        return {k: _numerical_gradient(lambda w: self.loss(x, t), v) for k, v in self.params.items()}

    def gradient(self, x, t):
        self.loss(x, t)
        dout = self.last_layer.backward(1)
        layers = list(self.layers.values() if isinstance(self.layers, dict) else self.layers)
        for layer in reversed(layers):
            dout = layer.backward(dout)
        return {k: getattr(self._owner[k][0], self._owner[k][1]) for k in self.params}


class TwoLayerNet(_Net):
    """Affine - Relu - Affine + SoftmaxWithLoss; ``affine2``/``relu`` swap in a planted bug."""

    def __init__(self, input_size, hidden_size, output_size, weight_init_std=0.1, affine2=Affine, relu=L.Relu,
                 swap_grads=False):
        self.params = {"W1": weight_init_std * np.random.randn(input_size, hidden_size),
                       "b1": np.zeros(hidden_size),
                       "W2": weight_init_std * np.random.randn(hidden_size, output_size),
                       "b2": np.zeros(output_size)}
        self.layers = OrderedDict()
        self.layers["Affine1"] = Affine(self.params["W1"], self.params["b1"])
        self.layers["Relu1"] = relu()
        self.layers["Affine2"] = affine2(self.params["W2"], self.params["b2"])
        self.last_layer = SoftmaxWithLossExact()
        a1, a2 = self.layers["Affine1"], self.layers["Affine2"]
        self._owner = {"W1": (a1, "dW"), "b1": (a1, "db"), "W2": (a2, "dW"), "b2": (a2, "db")}
        if swap_grads:  # gradient() takes b1 from the wrong layer (shapes agree when hidden = output)
            self._owner["b1"] = (a2, "db")


class SoftmaxWithLossExact(L.SoftmaxWithLoss):
    """SoftmaxWithLoss with torch's loss (no eps in the log), so a correct network matches torch exactly."""

    def forward(self, x, t):
        self.t = t
        z = x - x.max(axis=1, keepdims=True)
        self.y = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
        logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
        self.loss = -np.mean(logp[np.arange(len(t)), t]) if t.ndim == 1 else -np.sum(t * logp) / len(x)
        return self.loss


class SmallConvNet(_Net):
    """Convolution - Relu - Pooling - Affine - Relu - Dropout - Affine + loss, as a list (DeepConvNet's form)."""

    def __init__(self, input_dim=(1, 28, 28), filter_num=3, hidden_size=12, output_size=10, dropout=0.5,
                 book_loss=False, book_dropout=False, affine2=None):
        c, h, _ = input_dim
        pooled = filter_num * ((h - 4) // 2) ** 2
        self.params = {"W1": 0.3 * np.random.randn(filter_num, c, 5, 5), "b1": 0.1 * np.random.randn(filter_num),
                       "W2": 0.1 * np.random.randn(pooled, hidden_size), "b2": np.zeros(hidden_size),
                       "W3": 0.3 * np.random.randn(hidden_size, output_size), "b3": np.zeros(output_size)}
        p = self.params
        drop = L.Dropout(dropout) if book_dropout else InvertedDropout(dropout)
        self.layers = [L.Convolution(p["W1"], p["b1"], 1, 0), L.Relu(), L.Pooling(2, 2, 2),
                       (affine2 or Affine)(p["W2"], p["b2"]), L.Relu(), drop, Affine(p["W3"], p["b3"])]
        self.last_layer = L.SoftmaxWithLoss() if book_loss else SoftmaxWithLossExact()
        ly = self.layers
        self._owner = {"W1": (ly[0], "dW"), "b1": (ly[0], "db"), "W2": (ly[3], "dW"), "b2": (ly[3], "db"),
                       "W3": (ly[6], "dW"), "b3": (ly[6], "db")}


class InvertedDropout(test_check.InvertedDropout):
    """torch's dropout (scaled by 1/(1-p) in training), the book's mask attribute kept (test_check's, named as
    a learner's file names it)."""


class NeedsWidth(TwoLayerNet):
    """A constructor argument nobody can guess."""

    def __init__(self, input_size, width, output_size):
        super().__init__(input_size, width, output_size)


InvertedDropout.__name__ = "Dropout"
SoftmaxWithLossExact.__name__ = "SoftmaxWithLoss"


class AttributeNet:
    """Another author's shape: weights as attributes (no params dict), layers in a list, the loss in ``criterion``."""

    def __init__(self, hidden=8, affine2=Affine):
        self.W1, self.b1 = 0.1 * np.random.randn(784, hidden), np.zeros(hidden)
        self.W2, self.b2 = 0.1 * np.random.randn(hidden, 10), np.zeros(10)
        self.layers = [Affine(self.W1, self.b1), L.Sigmoid(), affine2(self.W2, self.b2)]
        self.criterion = SoftmaxWithLossExact()

    def loss(self, x, t):
        for layer in self.layers:
            x = layer.forward(x)
        return self.criterion.forward(x, t)

    def gradient(self, x, t):
        self.loss(x, t)
        d = self.criterion.backward(1)
        for layer in reversed(self.layers):
            d = layer.backward(d)
        a, b = self.layers[0], self.layers[2]
        return {"W1": a.dW, "b1": a.db, "W2": b.dW, "b2": b.db}


class BatchNormNet(_Net):
    """Affine - BatchNormalization (the book's: eps 1e-6 inside) - Relu - Affine + loss: b1's gradient is 0
    in exact arithmetic (batch norm's dx sums to 0 over the batch), round-off on both sides."""

    def __init__(self, hidden=6):
        self.params = {"W1": 0.1 * np.random.randn(784, hidden), "b1": np.zeros(hidden),
                       "gamma1": np.ones(hidden), "beta1": np.zeros(hidden),
                       "W2": 0.3 * np.random.randn(hidden, 10), "b2": np.zeros(10)}
        p = self.params
        self.layers = OrderedDict(Affine1=Affine(p["W1"], p["b1"]),
                                  BatchNorm1=L.BatchNormalization(p["gamma1"], p["beta1"]),
                                  Relu1=L.Relu(), Affine2=Affine(p["W2"], p["b2"]))
        self.last_layer = SoftmaxWithLossExact()
        ly = self.layers
        self._owner = {"W1": (ly["Affine1"], "dW"), "b1": (ly["Affine1"], "db"),
                       "gamma1": (ly["BatchNorm1"], "dgamma"), "beta1": (ly["BatchNorm1"], "dbeta"),
                       "W2": (ly["Affine2"], "dW"), "b2": (ly["Affine2"], "db")}

    def predict(self, x, train_flg=False):
        for layer in self.layers.values():
            x = layer.forward(x, train_flg) if isinstance(layer, L.BatchNormalization) else layer.forward(x)
        return x
