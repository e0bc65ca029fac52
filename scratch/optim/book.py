"""The book's optimizers (chapter 6, ``common/optimizer.py``), each set beside PyTorch's rule.

The book's classes have an ``update(params, grads)`` method over dicts of
arrays. Here they take Parameters instead, like every ``scratch.optim``
optimizer, so they fit the same training loop, schedulers and state dicts::

    opt = book.Momentum(model.parameters(), lr=0.01, momentum=0.9)
    ...; model.backward(crit.backward()); opt.step(); opt.zero_grad()

``step()`` does, for every parameter with a gradient, what the book's
``update`` does for ``params[key]`` with ``grads[key]`` (the book has no
parameter groups: each group here just carries its own hyperparameters).
Each docstring gives the book's lines and how they differ from PyTorch's.
For the 2-D function of the chapter, wrap the point in a Parameter::

    xy = Parameter(np.array([-7.0, 2.0]))
    opt = book.AdaGrad([xy], lr=1.5)
    for _ in range(30):
        xy.grad = np.array([xy.data[0] / 10.0, 2.0 * xy.data[1]])  # grad of x^2/20 + y^2
        opt.step()

All six use the book's epsilon 1e-7 where they have one (hard-coded in the book).
"""
import math

import numpy as np

from scratch.optim.optimizer import Optimizer

BOOK_EPS = 1e-7


def _with_grad(optimizer):
    for group in optimizer.param_groups:
        for p in group["params"]:
            if p.grad is not None:
                yield group, p


def _check_lr(lr):
    if not 0.0 <= lr:
        raise ValueError(f"Invalid learning rate: {lr}")


class SGD(Optimizer):
    """The book's SGD: ``params[key] -= lr * grads[key]``.

    The same rule as ``torch.optim.SGD`` without momentum; only the default
    learning rate differs (the book's 0.01, PyTorch's 1e-3).
    """

    def __init__(self, params, lr: float = 0.01):
        _check_lr(lr)
        super().__init__(params, dict(lr=lr))

    def step(self, closure=None):
        loss = self._closure(closure)
        for group, p in _with_grad(self):
            p.data -= group["lr"] * p.grad
        return loss


class Momentum(Optimizer):
    """The book's Momentum SGD (Sutskever et al.'s form)::

        v = momentum * v - lr * grad          (v = 0 at first)
        param += v

    ``torch.optim.SGD(momentum=m)`` keeps the buffer b in gradient units
    instead: b = m b + g (b = g at first), param -= lr * b. With a constant lr
    the two are the same trajectory, v = -lr * b. They part when lr changes
    (a scheduler): the book's v carries the old rates in it, while PyTorch
    applies the new rate to the whole buffer at once. No dampening, no
    Nesterov, no weight decay. Defaults: lr=0.01, momentum=0.9.
    """

    def __init__(self, params, lr: float = 0.01, momentum: float = 0.9):
        _check_lr(lr)
        if momentum < 0.0:
            raise ValueError(f"Invalid momentum value: {momentum}")
        super().__init__(params, dict(lr=lr, momentum=momentum))

    def step(self, closure=None):
        loss = self._closure(closure)
        for group, p in _with_grad(self):
            state = self.state[p]
            if "v" not in state:
                state["v"] = np.zeros_like(p.data)
            v = state["v"]
            v *= group["momentum"]
            v -= group["lr"] * p.grad
            p.data += v
        return loss


class Nesterov(Optimizer):
    """The book's Nesterov accelerated gradient as its repository had it until January 2021, line for line::

        v *= momentum
        v -= lr * grad
        param += momentum * momentum * v
        param -= (1 + momentum) * lr * grad

    This is not PyTorch's Nesterov. ``torch.optim.SGD(momentum=m, nesterov=True)``,
    written with v = -lr * b, is param += m^2 v_old - (1 + m) lr grad: the
    velocity *before* this step's update (Bengio et al.'s form). The book uses
    the velocity *after* it, so its step is
        param += m^3 v_old - (1 + m + m^2) lr grad,
    a larger step on the current gradient and a smaller one along the velocity.
    The repository's "Fix Nesterov update function" (January 2021) moved the
    parameter step before the velocity update; that form is PyTorch's rule
    exactly (``torch.optim.SGD(nesterov=True)``, or ``scratch.optim.SGD``), so
    this class keeps the earlier one, the form that differs.
    Defaults: lr=0.01, momentum=0.9.
    """

    def __init__(self, params, lr: float = 0.01, momentum: float = 0.9):
        _check_lr(lr)
        if momentum < 0.0:
            raise ValueError(f"Invalid momentum value: {momentum}")
        super().__init__(params, dict(lr=lr, momentum=momentum))

    def step(self, closure=None):
        loss = self._closure(closure)
        for group, p in _with_grad(self):
            lr, momentum = group["lr"], group["momentum"]
            state = self.state[p]
            if "v" not in state:
                state["v"] = np.zeros_like(p.data)
            v = state["v"]
            v *= momentum
            v -= lr * p.grad
            p.data += momentum * momentum * v
            p.data -= (1 + momentum) * lr * p.grad
        return loss


class AdaGrad(Optimizer):
    """The book's AdaGrad::

        h += grad * grad                                  (h = 0 at first)
        param -= lr * grad / (sqrt(h) + 1e-7)

    The same rule as ``torch.optim.Adagrad(lr, eps=1e-7)``: eps after the
    square root in both. PyTorch's default eps is 1e-10, and it adds lr_decay,
    weight_decay and initial_accumulator_value, which the book has not. Default: lr=0.01.
    """

    def __init__(self, params, lr: float = 0.01):
        _check_lr(lr)
        super().__init__(params, dict(lr=lr))

    def step(self, closure=None):
        loss = self._closure(closure)
        for group, p in _with_grad(self):
            state = self.state[p]
            if "h" not in state:
                state["h"] = np.zeros_like(p.data)
            h = state["h"]
            h += p.grad * p.grad
            p.data -= group["lr"] * p.grad / (np.sqrt(h) + BOOK_EPS)
        return loss


class RMSprop(Optimizer):
    """The book's RMSprop::

        h *= decay_rate
        h += (1 - decay_rate) * grad * grad               (h = 0 at first)
        param -= lr * grad / (sqrt(h) + 1e-7)

    The same rule as ``torch.optim.RMSprop(lr, alpha=decay_rate, eps=1e-7)``.
    The names differ (decay_rate is PyTorch's alpha) and so does eps (PyTorch's
    default is 1e-8); PyTorch adds momentum, centered and weight_decay.
    Defaults: lr=0.01, decay_rate=0.99.
    """

    def __init__(self, params, lr: float = 0.01, decay_rate: float = 0.99):
        _check_lr(lr)
        if not 0.0 <= decay_rate:
            raise ValueError(f"Invalid decay_rate value: {decay_rate}")
        super().__init__(params, dict(lr=lr, decay_rate=decay_rate))

    def step(self, closure=None):
        loss = self._closure(closure)
        for group, p in _with_grad(self):
            decay_rate = group["decay_rate"]
            state = self.state[p]
            if "h" not in state:
                state["h"] = np.zeros_like(p.data)
            h = state["h"]
            h *= decay_rate
            h += (1 - decay_rate) * p.grad * p.grad
            p.data -= group["lr"] * p.grad / (np.sqrt(h) + BOOK_EPS)
        return loss


class Adam(Optimizer):
    """The book's Adam, with the bias correction folded into the learning rate::

        iter += 1
        lr_t = lr * sqrt(1 - beta2**iter) / (1 - beta1**iter)
        m += (1 - beta1) * (grad - m)
        v += (1 - beta2) * (grad**2 - v)
        param -= lr_t * m / (sqrt(v) + 1e-7)

    ``torch.optim.Adam`` divides by sqrt(v_hat) + eps = sqrt(v) / sqrt(1 - beta2^t) + eps,
    so its eps is added *after* the bias correction. Rewriting the book's line the
    same way gives sqrt(v) / sqrt(1 - beta2^t) + 1e-7 / sqrt(1 - beta2^t): the book's
    Adam is PyTorch's with a step-dependent eps_t = 1e-7 / sqrt(1 - beta2^t)
    (about 32 times 1e-7 at t = 1 with beta2 = 0.999, tending to 1e-7). The
    moments m and v are the same; the difference shows when sqrt(v) is near eps
    (tiny gradients) and in the first steps. Also 1e-7 against PyTorch's default
    1e-8, and no weight_decay or amsgrad. ``iter`` is counted per parameter
    (the book keeps one counter; they agree when every parameter has a gradient
    at every step). Defaults: lr=0.001, beta1=0.9, beta2=0.999.
    """

    def __init__(self, params, lr: float = 0.001, beta1: float = 0.9, beta2: float = 0.999):
        _check_lr(lr)
        if not 0.0 <= beta1 < 1.0:
            raise ValueError(f"Invalid beta parameter at index 0: {beta1}")
        if not 0.0 <= beta2 < 1.0:
            raise ValueError(f"Invalid beta parameter at index 1: {beta2}")
        super().__init__(params, dict(lr=lr, beta1=beta1, beta2=beta2))

    def step(self, closure=None):
        loss = self._closure(closure)
        for group, p in _with_grad(self):
            lr, beta1, beta2 = group["lr"], group["beta1"], group["beta2"]
            state = self.state[p]
            if "m" not in state:
                state["iter"] = 0
                state["m"] = np.zeros_like(p.data)
                state["v"] = np.zeros_like(p.data)
            state["iter"] += 1
            t = state["iter"]
            lr_t = lr * math.sqrt(1.0 - beta2**t) / (1.0 - beta1**t)  # a Python float: float32 stays float32
            m, v = state["m"], state["v"]
            m += (1 - beta1) * (p.grad - m)
            v += (1 - beta2) * (p.grad**2 - v)
            p.data -= lr_t * m / (np.sqrt(v) + BOOK_EPS)
        return loss
