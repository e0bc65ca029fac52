"""Correct layers under the names and signatures learners give them: every one must read "ok"."""
import numpy as np


class ReLu:
    def forward(self, x):
        self.keep = x > 0
        return x * self.keep

    def backward(self, dout):
        return dout * self.keep


class Dense:
    def __init__(self, W, b):
        self.W, self.b = W, b

    def forward(self, x):
        self.shape = x.shape
        self.x = x.reshape(x.shape[0], -1)
        return self.x @ self.W + self.b

    def backward(self, dout):
        self.dW, self.db = self.x.T @ dout, dout.sum(axis=0)
        return (dout @ self.W.T).reshape(self.shape)


class FullyConnectedLayer(Dense):
    pass


class DropoutLayer:
    """Inverted dropout, as torch's, with the names a learner chose."""

    def __init__(self, ratio=0.5):
        self.ratio = ratio

    def forward(self, x, train=True):
        if not train:
            return x
        self.mask = ((np.random.rand(*x.shape) >= self.ratio) / (1 - self.ratio)).astype(x.dtype)
        return x * self.mask

    def backward(self, dout):
        return dout * self.mask


class MaxPooling:
    def __init__(self, pool_h, pool_w, stride=1, pad=0):
        self.ph, self.pw, self.s = pool_h, pool_w, stride

    def forward(self, x):
        n, c, h, w = x.shape
        oh, ow = 1 + (h - self.ph) // self.s, 1 + (w - self.pw) // self.s
        self.x, out = x, np.empty((n, c, oh, ow), x.dtype)
        self.first = np.empty((n, c, oh, ow), int)
        for i in range(oh):
            for j in range(ow):
                win = x[:, :, i * self.s:i * self.s + self.ph, j * self.s:j * self.s + self.pw].reshape(n, c, -1)
                self.first[:, :, i, j] = win.argmax(axis=2)
                out[:, :, i, j] = win.max(axis=2)
        return out

    def backward(self, dout):
        dx = np.zeros_like(self.x)
        n, c, oh, ow = dout.shape
        for i in range(oh):
            for j in range(ow):
                a, b = np.unravel_index(self.first[:, :, i, j], (self.ph, self.pw))
                for k in range(n):
                    for m in range(c):
                        dx[k, m, i * self.s + a[k, m], j * self.s + b[k, m]] += dout[k, m, i, j]
        return dx


class Mul:
    def forward(self, x, y):
        self.x, self.y = x, y
        return x * y

    def backward(self, dout):
        return dout * self.y, dout * self.x


class AddLayer:
    def forward(self, x, y):
        return x + y

    def backward(self, dout):
        return dout, dout
