import sys

import numpy as np
from _ok_relu import Relu  # noqa: F401


class Sigmoid:
    def forward(self, x):
        return 1 / (1 + np.exp(-x))

    def backward(self, dout):
        raise ValueError("dout has the wrong shape, says the learner's own check")


class Affine:
    def __init__(self, W, b):
        self.W, self.b = W, b

    def forward(self, x):
        sys.exit(3)

    def backward(self, dout):
        return dout
