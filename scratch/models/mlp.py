"""A plain multi-layer perceptron of any widths: the XOR net (2-2-1) and the regression nets of chapter 3."""
import numpy as np

from scratch import random as _random
from scratch.nn import Linear, Module, ReLU, Sequential, Sigmoid, Tanh

ACTIVATIONS = {"relu": ReLU, "sigmoid": Sigmoid, "tanh": Tanh}


class MLP(Module):
    r"""Linear layers of ``sizes`` with ``activation`` between them; the output is linear
    (or passes through ``output_activation``).

    ``MLP([2, 2, 1], "sigmoid", output_activation="sigmoid")`` is the XOR network.
    Layers live in ``self.layers`` (a Sequential), so the state-dict keys are
    ``layers.0.weight``, ``layers.0.bias``, ``layers.2.weight``... as in the
    torch twin's ``nn.Sequential``.

    Init: PyTorch's default (``weight_init_std=None``), or W ~ std * N(0, 1), b = 0.
    Shapes: x (N, sizes[0]) -> (N, sizes[-1]).
    """

    def __init__(self, sizes, activation: str = "sigmoid", output_activation=None, weight_init_std=None,
                 dtype=np.float64, generator=None):
        super().__init__()
        for a in (activation, output_activation):
            if a is not None and a not in ACTIVATIONS:
                raise ValueError(f"MLP: activation must be one of {sorted(ACTIVATIONS)}, got {a!r}")
        if len(sizes) < 2:
            raise ValueError(f"MLP: sizes needs at least an input and an output width, got {sizes}")
        rng = _random.resolve(generator)
        layers = []
        for i, (fin, fout) in enumerate(zip(sizes[:-1], sizes[1:])):
            fc = Linear(fin, fout, dtype=dtype, generator=rng)
            if weight_init_std is not None:
                fc.weight.data[...] = weight_init_std * rng.standard_normal(fc.weight.shape)
                fc.bias.data[...] = 0
            layers.append(fc)
            last = i == len(sizes) - 2
            if not last:
                layers.append(ACTIVATIONS[activation]())
            elif output_activation is not None:
                layers.append(ACTIVATIONS[output_activation]())
        self.layers = Sequential(*layers)

    def forward(self, x):
        return self.layers(x)

    def backward(self, grad_output):
        return self.layers.backward(grad_output)
