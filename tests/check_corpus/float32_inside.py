"""A correct Sigmoid that computes in float32 whatever it is given."""
import numpy as np


class Sigmoid:
    """Correct, but computes in float32 whatever it is given: as accurate as torch in float32."""

    def forward(self, x):
        self.out = (1 / (1 + np.exp(-x.astype(np.float32)))).astype(x.dtype)
        return self.out

    def backward(self, dout):
        y = self.out.astype(np.float32)
        return (dout.astype(np.float32) * y * (1 - y)).astype(dout.dtype)
