"""A plain multi-layer perceptron of any widths, the twin of scratch.models.mlp.MLP."""
import torch
from torch import nn

ACTIVATIONS = {"relu": nn.ReLU, "sigmoid": nn.Sigmoid, "tanh": nn.Tanh}


class MLP(nn.Module):
    """Linear layers of ``sizes`` with ``activation`` between them, in ``self.layers`` (nn.Sequential)."""

    def __init__(self, sizes, activation: str = "sigmoid", output_activation=None, weight_init_std=None,
                 dtype=torch.float64):
        super().__init__()
        for a in (activation, output_activation):
            if a is not None and a not in ACTIVATIONS:
                raise ValueError(f"MLP: activation must be one of {sorted(ACTIVATIONS)}, got {a!r}")
        if len(sizes) < 2:
            raise ValueError(f"MLP: sizes needs at least an input and an output width, got {sizes}")
        layers = []
        for i, (fin, fout) in enumerate(zip(sizes[:-1], sizes[1:])):
            fc = nn.Linear(fin, fout, dtype=dtype)
            if weight_init_std is not None:
                nn.init.normal_(fc.weight, std=weight_init_std)
                nn.init.zeros_(fc.bias)
            layers.append(fc)
            if i < len(sizes) - 2:
                layers.append(ACTIVATIONS[activation]())
            elif output_activation is not None:
                layers.append(ACTIVATIONS[output_activation]())
        self.layers = nn.Sequential(*layers)

    def forward(self, x):
        return self.layers(x)
