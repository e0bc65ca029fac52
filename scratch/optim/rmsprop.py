"""RMSprop: divide the gradient by a running root-mean-square of recent gradients."""
import numpy as np

from scratch.optim.optimizer import Optimizer, _check_unsupported, _grad, _lerp_, _new_step


class RMSprop(Optimizer):
    r"""Implements RMSprop, as ``torch.optim.RMSprop``.

    For each parameter theta with gradient g, with v = b = g_ave = 0 at first, at each step:

        if maximize:        g <- -g
        if weight_decay:    g <- g + weight_decay * theta
        v <- alpha v + (1 - alpha) g^2
        if centered:        g_ave <- g_ave + (1 - alpha)(g - g_ave);   v~ = v - g_ave^2
        else:               v~ = v
        if momentum > 0:    b <- momentum b + g / (sqrt(v~) + eps);    theta <- theta - lr b
        else:               theta <- theta - lr g / (sqrt(v~) + eps)

    eps is added after the square root (TensorFlow adds it inside). The book's
    RMSprop is this rule with alpha = decay_rate = 0.99 and eps = 1e-7
    (PyTorch's default eps is 1e-8), see ``scratch.optim.book.RMSprop``.

    Args:
        params: Parameters or dicts defining parameter groups.
        lr: learning rate (default: 1e-2).
        alpha: smoothing constant of the square average (default: 0.99).
        eps: term added to the denominator for numerical stability (default: 1e-8).
        weight_decay: weight decay (L2 penalty) (default: 0).
        momentum: momentum factor (default: 0).
        centered: normalise by an estimate of the gradient's variance (default: False).
        maximize: maximize the objective instead of minimizing (default: False).
        capturable, foreach: accepted for compatibility; they select nothing here.
        differentiable: must be False (scratch has no autograd).

    State per parameter: ``step`` (0-d float32 array), ``square_avg``, and
    ``momentum_buffer`` (momentum > 0), ``grad_avg`` (centered).
    """

    def __init__(self, params, lr: float = 1e-2, alpha: float = 0.99, eps: float = 1e-8,
                 weight_decay: float = 0, momentum: float = 0, centered: bool = False,
                 capturable: bool = False, foreach=None, maximize: bool = False, differentiable: bool = False):
        if not 0.0 <= lr:
            raise ValueError(f"Invalid learning rate: {lr}")
        if not 0.0 <= eps:
            raise ValueError(f"Invalid epsilon value: {eps}")
        if not 0.0 <= momentum:
            raise ValueError(f"Invalid momentum value: {momentum}")
        if not 0.0 <= weight_decay:
            raise ValueError(f"Invalid weight_decay value: {weight_decay}")
        if not 0.0 <= alpha:
            raise ValueError(f"Invalid alpha value: {alpha}")
        _check_unsupported("RMSprop", differentiable)
        defaults = dict(lr=lr, momentum=momentum, alpha=alpha, eps=eps, centered=centered,
                        weight_decay=weight_decay, capturable=capturable, foreach=foreach,
                        maximize=maximize, differentiable=differentiable)
        super().__init__(params, defaults)

    def step(self, closure=None):
        """Update every parameter that has a gradient; returns ``closure()`` if one is given."""
        loss = self._closure(closure)
        for group in self.param_groups:
            lr, alpha, eps, weight_decay = group["lr"], group["alpha"], group["eps"], group["weight_decay"]
            momentum, centered = group["momentum"], group["centered"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if len(state) == 0:
                    state["step"] = _new_step()
                    state["square_avg"] = np.zeros_like(p.data)
                    if momentum > 0:
                        state["momentum_buffer"] = np.zeros_like(p.data)
                    if centered:
                        state["grad_avg"] = np.zeros_like(p.data)
                g = _grad(p, group["maximize"])
                square_avg = state["square_avg"]
                state["step"] += 1
                if weight_decay != 0:
                    g = g + weight_decay * p.data

                square_avg *= alpha
                square_avg += (1 - alpha) * g * g  # v <- alpha v + (1 - alpha) g^2
                if centered:
                    grad_avg = state["grad_avg"]
                    _lerp_(grad_avg, g, 1 - alpha)  # g_ave <- g_ave + (1 - alpha)(g - g_ave)
                    avg = np.sqrt(square_avg - grad_avg * grad_avg) + eps
                else:
                    avg = np.sqrt(square_avg) + eps
                if momentum > 0:
                    buf = state["momentum_buffer"]
                    buf *= momentum
                    buf += g / avg
                    p.data -= lr * buf
                else:
                    p.data -= lr * g / avg
        return loss
