import numpy as np
from _ok_relu import Relu  # noqa: F401


class Sigmoid:
    def forward(self, x):
        self.out = 1 / (1 + np.exp(-x))
        return self.out

    def backward(self, dout):
        while True:
            pass
