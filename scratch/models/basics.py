"""Chapters 2 and 3: perceptron logic gates and the three-layer network with fixed weights."""
import numpy as np

from scratch.nn import Linear, Module, Sigmoid

# The book's hand-chosen perceptron weights (chapter 2): y = 1 if w.x + b > 0 else 0.
GATES = {
    "AND": ([0.5, 0.5], -0.7),
    "NAND": ([-0.5, -0.5], 0.7),
    "OR": ([0.5, 0.5], -0.2),
}

# The chapter 3 network (notes, p. 62). The book writes x @ W (W of shape (in, out));
# Linear stores weight as (out, in), so these are loaded transposed.
BOOK_WEIGHTS = {
    "W1": [[0.1, 0.3, 0.5], [0.2, 0.4, 0.6]], "b1": [0.1, 0.2, 0.3],
    "W2": [[0.1, 0.4], [0.2, 0.5], [0.3, 0.6]], "b2": [0.1, 0.2],
    "W3": [[0.1, 0.3], [0.2, 0.4]], "b3": [0.1, 0.2],
}


class Step(Module):
    """The perceptron's activation: y = 1 if x > 0 else 0. Its derivative is 0 wherever it exists."""

    def __init__(self):
        super().__init__()
        self.shape = None

    def forward(self, x):
        self.shape = x.shape
        return (x > 0).astype(x.dtype)

    def backward(self, grad_output):
        return np.zeros(self.shape, dtype=grad_output.dtype)


class Perceptron(Module):
    """A single perceptron on (N, in_features) inputs: step(x W^T + b) -> (N, 1)."""

    def __init__(self, in_features: int = 2, dtype=np.float64, generator=None):
        super().__init__()
        self.fc = Linear(in_features, 1, dtype=dtype, generator=generator)
        self.step = Step()

    @classmethod
    def gate(cls, name: str, dtype=np.float64):
        """The book's AND, NAND or OR gate."""
        if name not in GATES:
            raise ValueError(f"gate must be one of {sorted(GATES)}, got {name!r}")
        w, b = GATES[name]
        p = cls(2, dtype=dtype)
        p.load_state_dict({"fc.weight": np.array([w]), "fc.bias": np.array([b])})
        return p

    def forward(self, x):
        return self.step(self.fc(x))

    def backward(self, grad_output):
        return self.fc.backward(self.step.backward(grad_output))


class XORNet(Module):
    """XOR as two layers of perceptrons (chapter 2): y = AND(NAND(x1, x2), OR(x1, x2)).

    ``hidden`` holds the NAND and OR perceptrons as the two rows of one Linear(2, 2).
    """

    def __init__(self, dtype=np.float64, generator=None):
        super().__init__()
        self.hidden = Linear(2, 2, dtype=dtype, generator=generator)
        self.step1 = Step()
        self.out = Linear(2, 1, dtype=dtype, generator=generator)
        self.step2 = Step()

    @classmethod
    def from_book(cls, dtype=np.float64):
        net = cls(dtype=dtype)
        (w_nand, b_nand), (w_or, b_or), (w_and, b_and) = GATES["NAND"], GATES["OR"], GATES["AND"]
        net.load_state_dict({"hidden.weight": np.array([w_nand, w_or]), "hidden.bias": np.array([b_nand, b_or]),
                             "out.weight": np.array([w_and]), "out.bias": np.array([b_and])})
        return net

    def forward(self, x):
        return self.step2(self.out(self.step1(self.hidden(x))))

    def backward(self, grad_output):
        g = self.out.backward(self.step2.backward(grad_output))
        return self.hidden.backward(self.step1.backward(g))


class ThreeLayerNet(Module):
    """The chapter 3 network: 2 -> 3 -> 2 -> 2, sigmoid hidden layers, identity output.

    Shapes: x (N, 2) -> y (N, 2). ``from_book()`` loads the fixed weights W1..W3, b1..b3
    of the notes, for which x = [1.0, 0.5] gives y = [0.31682708, 0.69627909].
    """

    def __init__(self, dtype=np.float64, generator=None):
        super().__init__()
        self.fc1 = Linear(2, 3, dtype=dtype, generator=generator)
        self.act1 = Sigmoid()
        self.fc2 = Linear(3, 2, dtype=dtype, generator=generator)
        self.act2 = Sigmoid()
        self.fc3 = Linear(2, 2, dtype=dtype, generator=generator)

    @classmethod
    def from_book(cls, dtype=np.float64):
        net = cls(dtype=dtype)
        net.load_state_dict(book_state_dict())
        return net

    def forward(self, x):
        return self.fc3(self.act2(self.fc2(self.act1(self.fc1(x)))))

    def backward(self, grad_output):
        g = self.fc2.backward(self.act2.backward(self.fc3.backward(grad_output)))
        return self.fc1.backward(self.act1.backward(g))


def book_state_dict() -> dict:
    """The notes' W1..W3, b1..b3 under ThreeLayerNet's keys (weights transposed to (out, in))."""
    w = {k: np.array(v, dtype=np.float64) for k, v in BOOK_WEIGHTS.items()}
    return {"fc1.weight": w["W1"].T, "fc1.bias": w["b1"], "fc2.weight": w["W2"].T, "fc2.bias": w["b2"],
            "fc3.weight": w["W3"].T, "fc3.bias": w["b3"]}
