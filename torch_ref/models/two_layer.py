"""Chapters 4 and 5 in PyTorch: the book's two-layer network, 784 -> 50 -> 10."""
import torch
from torch import nn

ACTIVATIONS = {"relu": nn.ReLU, "sigmoid": nn.Sigmoid}


class TwoLayerNet(nn.Module):
    """fc1 -> activation -> fc2, initialised as the book does: W ~ weight_init_std * N(0, 1), b = 0."""

    def __init__(self, input_size: int = 784, hidden_size: int = 50, output_size: int = 10,
                 activation: str = "relu", weight_init_std: float = 0.01, dtype=torch.float64):
        super().__init__()
        if activation not in ACTIVATIONS:
            raise ValueError(f"TwoLayerNet: activation must be one of {sorted(ACTIVATIONS)}, got {activation!r}")
        self.fc1 = nn.Linear(input_size, hidden_size, dtype=dtype)
        self.act = ACTIVATIONS[activation]()
        self.fc2 = nn.Linear(hidden_size, output_size, dtype=dtype)
        for fc in (self.fc1, self.fc2):
            nn.init.normal_(fc.weight, std=weight_init_std)
            nn.init.zeros_(fc.bias)

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x)))
