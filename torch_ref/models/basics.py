"""Chapters 2 and 3 in PyTorch: perceptron logic gates and the fixed-weight three-layer network."""
import torch
from torch import nn

GATES = {
    "AND": ([0.5, 0.5], -0.7),
    "NAND": ([-0.5, -0.5], 0.7),
    "OR": ([0.5, 0.5], -0.2),
}

BOOK_WEIGHTS = {
    "W1": [[0.1, 0.3, 0.5], [0.2, 0.4, 0.6]], "b1": [0.1, 0.2, 0.3],
    "W2": [[0.1, 0.4], [0.2, 0.5], [0.3, 0.6]], "b2": [0.1, 0.2],
    "W3": [[0.1, 0.3], [0.2, 0.4]], "b3": [0.1, 0.2],
}


class Step(nn.Module):
    """y = 1 if x > 0 else 0 (a comparison, so autograd gives no gradient through it)."""

    def forward(self, x):
        return (x > 0).to(x.dtype)


class Perceptron(nn.Module):
    def __init__(self, in_features: int = 2, dtype=torch.float64):
        super().__init__()
        self.fc = nn.Linear(in_features, 1, dtype=dtype)
        self.step = Step()

    @classmethod
    def gate(cls, name: str, dtype=torch.float64):
        if name not in GATES:
            raise ValueError(f"gate must be one of {sorted(GATES)}, got {name!r}")
        w, b = GATES[name]
        p = cls(2, dtype=dtype)
        p.load_state_dict({"fc.weight": torch.tensor([w]), "fc.bias": torch.tensor([b])})
        return p

    def forward(self, x):
        return self.step(self.fc(x))


class XORNet(nn.Module):
    def __init__(self, dtype=torch.float64):
        super().__init__()
        self.hidden = nn.Linear(2, 2, dtype=dtype)
        self.step1 = Step()
        self.out = nn.Linear(2, 1, dtype=dtype)
        self.step2 = Step()

    @classmethod
    def from_book(cls, dtype=torch.float64):
        net = cls(dtype=dtype)
        (w_nand, b_nand), (w_or, b_or), (w_and, b_and) = GATES["NAND"], GATES["OR"], GATES["AND"]
        net.load_state_dict({"hidden.weight": torch.tensor([w_nand, w_or]),
                             "hidden.bias": torch.tensor([b_nand, b_or]),
                             "out.weight": torch.tensor([w_and]), "out.bias": torch.tensor([b_and])})
        return net

    def forward(self, x):
        return self.step2(self.out(self.step1(self.hidden(x))))


class ThreeLayerNet(nn.Module):
    """2 -> 3 -> 2 -> 2 with sigmoid hidden layers; ``from_book()`` loads the notes' fixed weights."""

    def __init__(self, dtype=torch.float64):
        super().__init__()
        self.fc1 = nn.Linear(2, 3, dtype=dtype)
        self.act1 = nn.Sigmoid()
        self.fc2 = nn.Linear(3, 2, dtype=dtype)
        self.act2 = nn.Sigmoid()
        self.fc3 = nn.Linear(2, 2, dtype=dtype)

    @classmethod
    def from_book(cls, dtype=torch.float64):
        net = cls(dtype=dtype)
        w = {k: torch.tensor(v, dtype=torch.float64) for k, v in BOOK_WEIGHTS.items()}
        net.load_state_dict({"fc1.weight": w["W1"].T, "fc1.bias": w["b1"], "fc2.weight": w["W2"].T,
                             "fc2.bias": w["b2"], "fc3.weight": w["W3"].T, "fc3.bias": w["b3"]})
        return net

    def forward(self, x):
        return self.fc3(self.act2(self.fc2(self.act1(self.fc1(x)))))
