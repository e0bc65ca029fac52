"""SGD: stochastic gradient descent, with momentum, dampening, Nesterov and weight decay."""
import numpy as np

from scratch.optim.optimizer import Optimizer, _check_unsupported, _grad


class SGD(Optimizer):
    r"""Implements stochastic gradient descent (optionally with momentum), as ``torch.optim.SGD``.

    For each parameter theta with gradient g, at step t = 1, 2, ...:

        if maximize:        g <- -g
        if weight_decay:    g <- g + weight_decay * theta
        if momentum:
            b <- g                                   at t = 1 (no dampening on the first step)
            b <- momentum * b + (1 - dampening) * g  at t > 1
            g <- g + momentum * b    if nesterov   else   g <- b
        theta <- theta - lr * g

    This is PyTorch's form: the buffer b holds gradients, and the learning rate
    multiplies it at the update. The book's Momentum (Sutskever's form) keeps
    v = momentum * v - lr * g instead; with a constant lr the two trajectories
    are the same (v = -lr b), see ``scratch.optim.book.Momentum``.

    Args:
        params: Parameters or dicts defining parameter groups.
        lr: learning rate (default: 1e-3).
        momentum: momentum factor (default: 0).
        dampening: dampening for momentum (default: 0).
        weight_decay: weight decay, an L2 penalty added to the gradient (default: 0).
        nesterov: enables Nesterov momentum; needs momentum > 0 and dampening = 0 (default: False).
        maximize: maximize the objective instead of minimizing (default: False).
        foreach, fused: accepted so that code and state dicts move between the twins;
            NumPy has one implementation, so they select nothing.
        differentiable: must be False (scratch has no autograd).

    State per parameter: ``momentum_buffer`` (only when momentum != 0).
    """

    def __init__(self, params, lr: float = 1e-3, momentum: float = 0, dampening: float = 0,
                 weight_decay: float = 0, nesterov: bool = False, *, maximize: bool = False,
                 foreach=None, differentiable: bool = False, fused=None):
        if lr < 0.0:
            raise ValueError(f"Invalid learning rate: {lr}")
        if momentum < 0.0:
            raise ValueError(f"Invalid momentum value: {momentum}")
        if weight_decay < 0.0:
            raise ValueError(f"Invalid weight_decay value: {weight_decay}")
        _check_unsupported("SGD", differentiable)
        defaults = dict(lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay,
                        nesterov=nesterov, maximize=maximize, foreach=foreach,
                        differentiable=differentiable, fused=fused)
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("Nesterov momentum requires a momentum and zero dampening")
        super().__init__(params, defaults)

    def step(self, closure=None):
        """Update every parameter that has a gradient; returns ``closure()`` if one is given."""
        loss = self._closure(closure)
        for group in self.param_groups:
            lr, momentum, dampening = group["lr"], group["momentum"], group["dampening"]
            weight_decay, nesterov = group["weight_decay"], group["nesterov"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                g = _grad(p, group["maximize"])
                if weight_decay != 0:
                    g = g + weight_decay * p.data
                if momentum != 0:
                    state = self.state[p]
                    buf = state.get("momentum_buffer")
                    if buf is None:
                        buf = state["momentum_buffer"] = np.array(g)  # a copy; an array even for 0-d params
                    else:
                        buf *= momentum
                        buf += (1 - dampening) * g
                    g = g + momentum * buf if nesterov else buf
                p.data += -lr * g
        return loss
