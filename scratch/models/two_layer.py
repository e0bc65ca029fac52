"""Chapters 4 and 5: the book's two-layer network, 784 -> 50 -> 10, for MNIST."""
import numpy as np

from scratch import random as _random
from scratch.nn import Linear, Module, ReLU, Sigmoid

ACTIVATIONS = {"relu": ReLU, "sigmoid": Sigmoid}


class TwoLayerNet(Module):
    r"""Linear -> activation -> Linear: logits = W2 act(W1 x + b1) + b2.

    The book's TwoLayerNet (chapter 4 with sigmoid, chapter 5 with ReLU). Its
    initialisation: W ~ weight_init_std * N(0, 1), b = 0 (not PyTorch's default).
    The softmax lives in the loss (``CrossEntropyLoss``), as the book's
    SoftmaxWithLoss does.

    Shapes: x (N, input_size) -> logits (N, output_size);
    fc1.weight (hidden_size, input_size), fc2.weight (output_size, hidden_size).
    """

    def __init__(self, input_size: int = 784, hidden_size: int = 50, output_size: int = 10,
                 activation: str = "relu", weight_init_std: float = 0.01, dtype=np.float64, generator=None):
        super().__init__()
        if activation not in ACTIVATIONS:
            raise ValueError(f"TwoLayerNet: activation must be one of {sorted(ACTIVATIONS)}, got {activation!r}")
        rng = _random.resolve(generator)
        self.fc1 = Linear(input_size, hidden_size, dtype=dtype, generator=rng)
        self.act = ACTIVATIONS[activation]()
        self.fc2 = Linear(hidden_size, output_size, dtype=dtype, generator=rng)
        for fc in (self.fc1, self.fc2):
            # Drawn in float64 and rounded, so a float32 net holds the float64 net's weights rounded.
            fc.weight.data[...] = weight_init_std * rng.standard_normal(fc.weight.shape)
            fc.bias.data[...] = 0

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x)))

    def backward(self, grad_output):
        return self.fc1.backward(self.act.backward(self.fc2.backward(grad_output)))
