"""Planted bugs in book-style layers, each the kind a learner makes, with the diagnosis the checker must give.

Every class derives from the repo's own book-style layers (examples/book_layers.py) and changes one thing.
``CASES``: (class, the name it is checked as, the diagnosis code it must get).
"""
import importlib.util
from pathlib import Path

import numpy as np

_spec = importlib.util.spec_from_file_location("book_layers_for_corpus",
                                               Path(__file__).resolve().parents[2] / "examples" / "book_layers.py")
B = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(B)


# -- Relu ------------------------------------------------------------------------------------------------------
class ReluMaskLessThan(B.Relu):
    def forward(self, x):
        self.mask = x < 0  # wrong exactly at 0: torch's relu'(0) = 0
        out = x.copy()
        out[self.mask] = 0
        return out


class ReluInPlace(B.Relu):
    def forward(self, x):
        self.mask = x <= 0
        x[self.mask] = 0  # zeroes the caller's array
        return x


class ReluComplementMask(B.Relu):
    def backward(self, dout):
        return dout * self.mask


class ReluDividesByMask(B.Relu):
    def backward(self, dout):
        keep = (~self.mask).astype(dout.dtype)
        with np.errstate(invalid="ignore"):
            return dout * keep / keep * keep  # 0/0 where the input was <= 0


class ReluFlattens(B.Relu):
    def forward(self, x):
        return super().forward(x).ravel()


# -- Sigmoid ---------------------------------------------------------------------------------------------------
class SigmoidFromInput(B.Sigmoid):
    def forward(self, x):
        self.x = x
        return super().forward(x)

    def backward(self, dout):
        return dout * (1.0 - self.x) * self.x


class SigmoidMissingFactor(B.Sigmoid):
    def backward(self, dout):
        return dout * (1.0 - self.out)


# -- Affine ----------------------------------------------------------------------------------------------------
class AffineNoReshapeBack(B.Affine):
    def backward(self, dout):
        dx = super().backward(dout)
        return dx.reshape(len(dx), -1)  # the 4-D input's dx left flat


class AffineSignOfdW(B.Affine):
    def backward(self, dout):
        dx = super().backward(dout)
        self.dW = -self.dW
        return dx


class AffineTransposedW(B.Affine):
    def backward(self, dout):
        dx = super().backward(dout)
        self.dW = np.dot(dout.T, self.x)
        return dx


class AffineMeanDb(B.Affine):
    def backward(self, dout):
        dx = super().backward(dout)
        self.db = np.mean(dout, axis=0)
        return dx


class AffineListdW(B.Affine):
    def backward(self, dout):
        dx = super().backward(dout)
        self.dW = self.dW.tolist()
        return dx


class AffineFloat32(B.Affine):
    def forward(self, x):
        return super().forward(x).astype(np.float32)


# -- SoftmaxWithLoss -------------------------------------------------------------------------------------------
class SoftmaxNoBatchDivide(B.SoftmaxWithLoss):
    def backward(self, dout=1):
        return super().backward(dout) * self.t.shape[0]


class SoftmaxWholeBatch(B.SoftmaxWithLoss):
    def forward(self, x, t):
        self.t = t
        e = np.exp(x - np.max(x))
        self.y = e / np.sum(e)  # the 1-D softmax of chapter 3, applied to a batch
        self.loss = B.cross_entropy_error(self.y, self.t)
        return self.loss


class SoftmaxSignOfdx(B.SoftmaxWithLoss):
    def backward(self, dout=1):
        return -super().backward(dout)


# -- Dropout ---------------------------------------------------------------------------------------------------
class DropoutNewMaskInBackward(B.Dropout):
    def backward(self, dout):
        return dout * (np.random.rand(*dout.shape) > self.dropout_ratio)


class DropoutPassesXAtEval(B.Dropout):
    def forward(self, x, train_flg=True):
        if train_flg:
            return super().forward(x, True)
        return x  # the book scales by (1 - ratio) here; torch's inverted dropout scales in training instead


# -- BatchNormalization ----------------------------------------------------------------------------------------
class BatchNormNoEps(B.BatchNormalization):
    def forward(self, x, train_flg=True):
        if train_flg:
            mu = x.mean(axis=0)
            self.xc = x - mu
            self.std = np.sqrt(np.mean(self.xc ** 2, axis=0))
            self.batch_size = x.shape[0]
            self.xn = self.xc / self.std
            self.input_shape = x.shape
            self.running_mean = self.momentum * self.running_mean + (1 - self.momentum) * mu
            self.running_var = self.momentum * self.running_var + (1 - self.momentum) * self.std ** 2
            return self.gamma * self.xn + self.beta
        return super().forward(x, train_flg)


class BatchNormFlippedDgamma(B.BatchNormalization):
    def backward(self, dout):
        dx = super().backward(dout)
        self.dgamma = -self.dgamma
        return dx


class BatchNormMeanDbeta(B.BatchNormalization):
    def backward(self, dout):
        dx = super().backward(dout)
        self.dbeta = dout.mean(axis=0)
        return dx


# -- Convolution and Pooling -----------------------------------------------------------------------------------
class ConvolutionSignOfdW(B.Convolution):
    def backward(self, dout):
        dx = super().backward(dout)
        self.dW = -self.dW
        return dx


class ConvolutionMeanDb(B.Convolution):
    def backward(self, dout):
        dx = super().backward(dout)
        self.db = dout.mean(axis=(0, 2, 3))
        return dx


class PoolingEveryTie(B.Pooling):
    def backward(self, dout):
        # the gradient to every element equal to its window's maximum, ties included
        n, c, h, w = self.x.shape
        dx = np.zeros_like(self.x)
        oh, ow = dout.shape[2:]
        for i in range(oh):
            for j in range(ow):
                win = self.x[:, :, i * self.stride:i * self.stride + self.pool_h,
                             j * self.stride:j * self.stride + self.pool_w]
                hit = win == win.max(axis=(2, 3), keepdims=True)
                dx[:, :, i * self.stride:i * self.stride + self.pool_h,
                   j * self.stride:j * self.stride + self.pool_w] += hit * dout[:, :, i:i + 1, j:j + 1]
        return dx


# -- chapter 5's MulLayer / AddLayer ---------------------------------------------------------------------------
class MulLayerSwapped:
    def forward(self, x, y):
        self.x, self.y = x, y
        return x * y

    def backward(self, dout):
        return dout * self.x, dout * self.y


class AddLayerSign:
    def forward(self, x, y):
        return x + y

    def backward(self, dout):
        return dout * 1, -dout


CASES = [
    (ReluMaskLessThan, "Relu", "kink"), (ReluInPlace, "Relu", "inplace"), (ReluComplementMask, "Relu", "mask"),
    (ReluDividesByMask, "Relu", "nonfinite"), (ReluFlattens, "Relu", "shape"),
    (SigmoidFromInput, "Sigmoid", "from-input"), (SigmoidMissingFactor, "Sigmoid", "adjoint"),
    (AffineNoReshapeBack, "Affine", "shape"), (AffineSignOfdW, "Affine", "sign"),
    (AffineTransposedW, "Affine", "transpose"), (AffineMeanDb, "Affine", "averaged"),
    (AffineListdW, "Affine", "type"), (AffineFloat32, "Affine", "dtype"),
    (SoftmaxNoBatchDivide, "SoftmaxWithLoss", "summed"), (SoftmaxWholeBatch, "SoftmaxWithLoss", "whole-batch-softmax"),
    (SoftmaxSignOfdx, "SoftmaxWithLoss", "sign"),
    (DropoutNewMaskInBackward, "Dropout", "mask"), (DropoutPassesXAtEval, "Dropout", "dropout-modes"),
    (BatchNormNoEps, "BatchNormalization", "bn-no-eps"), (BatchNormFlippedDgamma, "BatchNormalization", "sign"),
    (BatchNormMeanDbeta, "BatchNormalization", "averaged"),
    (ConvolutionSignOfdW, "Convolution", "sign"), (ConvolutionMeanDb, "Convolution", "averaged"),
    (PoolingEveryTie, "Pooling", "tie"),
    (MulLayerSwapped, "MulLayer", "swapped"), (AddLayerSign, "AddLayer", "sign"),
]
