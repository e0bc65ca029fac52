"""A correct Relu the hostile files share: the other layers must still be checked."""
import numpy as np


class Relu:
    def forward(self, x):
        self.mask = x <= 0
        return np.where(self.mask, 0.0, x).astype(x.dtype)

    def backward(self, dout):
        return np.where(self.mask, 0.0, dout).astype(dout.dtype)
