"""Planted bugs in CS231n-style function pairs (each changes one thing in cs231n_layers.py's correct code).

``CASES``: (forward, backward or None for a loss, the kind it is checked as, the diagnosis code it must get).
"""
import numpy as np

import cs231n_layers as L


def affine_backward_sign_dw(dout, cache):
    dx, dw, db = L.affine_backward(dout, cache)
    return dx, -dw, db


def affine_backward_flat_dx(dout, cache):
    x, w = cache
    return dout @ w.T, x.reshape(x.shape[0], -1).T @ dout, dout.sum(axis=0)


def relu_backward_lt(dout, cache):
    return dout * (cache >= 0)  # passes the gradient at x == 0


def conv_backward_mean_db(dout, cache):
    dx, dw, db = L.conv_backward_naive(dout, cache)
    return dx, dw, dout.mean(axis=(0, 2, 3))


def max_pool_backward_every_tie(dout, cache):
    x, p = cache
    ph, pw, s = p["pool_height"], p["pool_width"], p["stride"]
    dx = np.zeros_like(x)
    for i in range(dout.shape[2]):
        for j in range(dout.shape[3]):
            win = x[:, :, i * s:i * s + ph, j * s:j * s + pw]
            dx[:, :, i * s:i * s + ph, j * s:j * s + pw] += (win == win.max(axis=(2, 3), keepdims=True)) * \
                dout[:, :, i:i + 1, j:j + 1]
    return dx


def batchnorm_backward_sign_dgamma(dout, cache):
    dx, dgamma, dbeta = L.batchnorm_backward(dout, cache)
    return dx, -dgamma, dbeta


def layernorm_backward_mean_dbeta(dout, cache):
    dx, dgamma, _ = L.layernorm_backward(dout, cache)
    return dx, dgamma, dout.mean(axis=0)


def dropout_backward_unscaled(dout, cache):
    dropout_param, mask = cache
    return dout * (mask != 0) if dropout_param["mode"] == "train" else dout


def softmax_loss_no_divide(x, y):
    loss, dx = L.softmax_loss(x, y)
    return loss, dx * x.shape[0]


def svm_loss_sign(x, y):
    loss, dx = L.svm_loss(x, y)
    return loss, -dx


CASES = [
    (L.affine_forward, affine_backward_sign_dw, "affine", "sign"),
    (L.affine_forward, affine_backward_flat_dx, "affine", "shape"),
    (L.relu_forward, relu_backward_lt, "relu", "kink"),
    (L.conv_forward_naive, conv_backward_mean_db, "conv", "averaged"),
    (L.max_pool_forward_naive, max_pool_backward_every_tie, "max_pool", "tie"),
    (L.batchnorm_forward, batchnorm_backward_sign_dgamma, "batchnorm", "sign"),
    (L.layernorm_forward, layernorm_backward_mean_dbeta, "layernorm", "averaged"),
    (L.dropout_forward, dropout_backward_unscaled, "dropout", "factor"),
    (softmax_loss_no_divide, None, "softmax_loss", "summed"),
    (svm_loss_sign, None, "svm_loss", "sign"),
]
