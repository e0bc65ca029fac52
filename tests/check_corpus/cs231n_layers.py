"""Correct layers in CS231n's function style (written for these tests): ``<name>_forward(...) -> (out, cache)``,
``<name>_backward(dout, cache)`` -> one gradient per array argument; losses return ``(loss, dx)``."""
import numpy as np


def affine_forward(x, w, b):
    out = x.reshape(x.shape[0], -1) @ w + b
    return out, (x, w)


def affine_backward(dout, cache):
    x, w = cache
    dx = (dout @ w.T).reshape(x.shape)
    dw = x.reshape(x.shape[0], -1).T @ dout
    return dx, dw, dout.sum(axis=0)


def relu_forward(x):
    return np.maximum(x, 0), x


def relu_backward(dout, cache):
    return dout * (cache > 0)


def conv_forward_naive(x, w, b, conv_param):
    s, p = conv_param["stride"], conv_param["pad"]
    n, _, h, wd = x.shape
    f, _, hh, ww = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))
    ho, wo = 1 + (h + 2 * p - hh) // s, 1 + (wd + 2 * p - ww) // s
    out = np.zeros((n, f, ho, wo), x.dtype)
    for i in range(ho):
        for j in range(wo):
            patch = xp[:, :, i * s:i * s + hh, j * s:j * s + ww]
            out[:, :, i, j] = np.tensordot(patch, w, axes=([1, 2, 3], [1, 2, 3])) + b
    return out, (x, w, conv_param)


def conv_backward_naive(dout, cache):
    x, w, conv_param = cache
    s, p = conv_param["stride"], conv_param["pad"]
    _, _, hh, ww = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))
    dxp, dw = np.zeros_like(xp), np.zeros_like(w)
    for i in range(dout.shape[2]):
        for j in range(dout.shape[3]):
            patch = xp[:, :, i * s:i * s + hh, j * s:j * s + ww]
            dw += np.tensordot(dout[:, :, i, j], patch, axes=([0], [0]))
            dxp[:, :, i * s:i * s + hh, j * s:j * s + ww] += np.tensordot(dout[:, :, i, j], w, axes=([1], [0]))
    dx = dxp[:, :, p:p + x.shape[2], p:p + x.shape[3]]
    return dx, dw, dout.sum(axis=(0, 2, 3))


def max_pool_forward_naive(x, pool_param):
    ph, pw, s = pool_param["pool_height"], pool_param["pool_width"], pool_param["stride"]
    n, c, h, w = x.shape
    ho, wo = 1 + (h - ph) // s, 1 + (w - pw) // s
    out = np.zeros((n, c, ho, wo), x.dtype)
    for i in range(ho):
        for j in range(wo):
            out[:, :, i, j] = x[:, :, i * s:i * s + ph, j * s:j * s + pw].max(axis=(2, 3))
    return out, (x, pool_param)


def max_pool_backward_naive(dout, cache):
    x, pool_param = cache
    ph, pw, s = pool_param["pool_height"], pool_param["pool_width"], pool_param["stride"]
    dx = np.zeros_like(x)
    n, c = x.shape[:2]
    for i in range(dout.shape[2]):
        for j in range(dout.shape[3]):
            window = x[:, :, i * s:i * s + ph, j * s:j * s + pw].reshape(n, c, -1)
            first = window.argmax(axis=2)  # the first maximum, as torch
            a, b = np.unravel_index(first, (ph, pw))
            for k in range(n):
                for m in range(c):
                    dx[k, m, i * s + a[k, m], j * s + b[k, m]] += dout[k, m, i, j]
    return dx


def _norm_forward(x, gamma, beta, axis, eps):
    mu = x.mean(axis=axis, keepdims=True)
    var = x.var(axis=axis, keepdims=True)
    xhat = (x - mu) / np.sqrt(var + eps)
    return xhat, 1 / np.sqrt(var + eps)


def _norm_backward(dxhat, xhat, inv, axis):
    m = np.prod([xhat.shape[a] for a in np.atleast_1d(axis)])
    return inv / m * (m * dxhat - dxhat.sum(axis=axis, keepdims=True)
                      - xhat * (dxhat * xhat).sum(axis=axis, keepdims=True))


def batchnorm_forward(x, gamma, beta, bn_param):
    eps, momentum = bn_param.get("eps", 1e-5), bn_param.get("momentum", 0.9)
    if bn_param["mode"] == "train":
        xhat, inv = _norm_forward(x, gamma, beta, 0, eps)
        n = x.shape[0]
        bn_param["running_mean"] = momentum * bn_param["running_mean"] + (1 - momentum) * x.mean(axis=0)
        bn_param["running_var"] = momentum * bn_param["running_var"] + (1 - momentum) * x.var(axis=0) * n / (n - 1)
        return gamma * xhat + beta, (xhat, inv, gamma)
    xhat = (x - bn_param["running_mean"]) / np.sqrt(bn_param["running_var"] + eps)
    return gamma * xhat + beta, (xhat, 1 / np.sqrt(bn_param["running_var"] + eps), gamma, "test")


def batchnorm_backward(dout, cache):
    xhat, inv, gamma = cache[:3]
    dgamma, dbeta = (dout * xhat).sum(axis=0), dout.sum(axis=0)
    if len(cache) == 4:  # test mode: the statistics are constants
        return dout * gamma * inv, dgamma, dbeta
    return _norm_backward(dout * gamma, xhat, inv, 0), dgamma, dbeta


def spatial_batchnorm_forward(x, gamma, beta, bn_param):
    n, c, h, w = x.shape
    out, cache = batchnorm_forward(x.transpose(0, 2, 3, 1).reshape(-1, c), gamma, beta, bn_param)
    return out.reshape(n, h, w, c).transpose(0, 3, 1, 2), (cache, x.shape)


def spatial_batchnorm_backward(dout, cache):
    cache, (n, c, h, w) = cache
    dx, dgamma, dbeta = batchnorm_backward(dout.transpose(0, 2, 3, 1).reshape(-1, c), cache)
    return dx.reshape(n, h, w, c).transpose(0, 3, 1, 2), dgamma, dbeta


def layernorm_forward(x, gamma, beta, ln_param):
    xhat, inv = _norm_forward(x, gamma, beta, 1, ln_param.get("eps", 1e-5))
    return gamma * xhat + beta, (xhat, inv, gamma)


def layernorm_backward(dout, cache):
    xhat, inv, gamma = cache
    return _norm_backward(dout * gamma, xhat, inv, 1), (dout * xhat).sum(axis=0), dout.sum(axis=0)


def spatial_groupnorm_forward(x, gamma, beta, G, gn_param):
    n, c, h, w = x.shape
    xg = x.reshape(n, G, -1)
    xhat, inv = _norm_forward(xg, None, None, 2, gn_param.get("eps", 1e-5))
    xhat = xhat.reshape(x.shape)
    return gamma * xhat + beta, (xhat, inv, gamma, G)


def spatial_groupnorm_backward(dout, cache):
    xhat, inv, gamma, G = cache
    n = xhat.shape[0]
    dxhat = (dout * gamma).reshape(n, G, -1)
    dx = _norm_backward(dxhat, xhat.reshape(n, G, -1), inv, 2).reshape(xhat.shape)
    return dx, (dout * xhat).sum(axis=(0, 2, 3), keepdims=True), dout.sum(axis=(0, 2, 3), keepdims=True)


def dropout_forward(x, dropout_param):
    p, mode = dropout_param["p"], dropout_param["mode"]  # p: the probability of keeping a unit
    if "seed" in dropout_param:
        np.random.seed(dropout_param["seed"])
    if mode == "train":
        mask = (np.random.rand(*x.shape) < p) / p
        return x * mask, (dropout_param, mask)
    return x, (dropout_param, None)


def dropout_backward(dout, cache):
    dropout_param, mask = cache
    return dout * mask if dropout_param["mode"] == "train" else dout


def softmax_loss(x, y):
    z = x - x.max(axis=1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    n = x.shape[0]
    dx = np.exp(logp)
    dx[np.arange(n), y] -= 1
    return -logp[np.arange(n), y].mean(), dx / n


def svm_loss(x, y):
    n = x.shape[0]
    margins = np.maximum(0, x - x[np.arange(n), y][:, None] + 1.0)
    margins[np.arange(n), y] = 0
    dx = (margins > 0).astype(x.dtype)
    dx[np.arange(n), y] -= dx.sum(axis=1)
    return margins.sum() / n, dx / n
