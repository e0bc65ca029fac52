"""Adagrad: per-coordinate learning rates from the running sum of squared gradients."""
import numpy as np

from scratch.optim.optimizer import Optimizer, _check_unsupported, _grad, _new_step


class Adagrad(Optimizer):
    r"""Implements the Adagrad algorithm, as ``torch.optim.Adagrad``.

    For each parameter theta with gradient g, with the sum s = initial_accumulator_value
    at first, at step t = 1, 2, ...:

        if maximize:        g <- -g
        if weight_decay:    g <- g + weight_decay * theta
        clr = lr / (1 + (t - 1) * lr_decay)
        s <- s + g^2
        theta <- theta - clr * g / (sqrt(s) + eps)

    The book's AdaGrad is this rule with eps = 1e-7 (PyTorch's default is
    1e-10), no lr_decay and no weight decay (``scratch.optim.book.AdaGrad``).

    Args:
        params: Parameters or dicts defining parameter groups.
        lr: learning rate (default: 1e-2).
        lr_decay: learning rate decay (default: 0).
        weight_decay: weight decay (L2 penalty) (default: 0).
        initial_accumulator_value: initial value of the sum of squares (default: 0).
        eps: term added to the denominator for numerical stability (default: 1e-10).
        maximize: maximize the objective instead of minimizing (default: False).
        foreach, fused: accepted for compatibility; they select nothing here.
        differentiable: must be False (scratch has no autograd).

    State per parameter: ``step`` (0-d float32 array) and ``sum``, created for
    every parameter at construction, as in PyTorch.
    """

    def __init__(self, params, lr: float = 1e-2, lr_decay: float = 0, weight_decay: float = 0,
                 initial_accumulator_value: float = 0, eps: float = 1e-10, foreach=None, *,
                 maximize: bool = False, differentiable: bool = False, fused=None):
        if not 0.0 <= lr:
            raise ValueError(f"Invalid learning rate: {lr}")
        if not 0.0 <= lr_decay:
            raise ValueError(f"Invalid lr_decay value: {lr_decay}")
        if not 0.0 <= weight_decay:
            raise ValueError(f"Invalid weight_decay value: {weight_decay}")
        if not 0.0 <= initial_accumulator_value:
            raise ValueError(f"Invalid initial_accumulator_value value: {initial_accumulator_value}")
        if not 0.0 <= eps:
            raise ValueError(f"Invalid epsilon value: {eps}")
        _check_unsupported("Adagrad", differentiable)
        defaults = dict(lr=lr, lr_decay=lr_decay, eps=eps, weight_decay=weight_decay,
                        initial_accumulator_value=initial_accumulator_value, foreach=foreach,
                        maximize=maximize, differentiable=differentiable, fused=fused)
        super().__init__(params, defaults)
        for group in self.param_groups:
            for p in group["params"]:
                self._init_state(p, initial_accumulator_value)

    def _init_state(self, p, initial_accumulator_value):
        state = self.state[p]
        state["step"] = _new_step()
        state["sum"] = np.full_like(p.data, initial_accumulator_value)

    def step(self, closure=None):
        """Update every parameter that has a gradient; returns ``closure()`` if one is given."""
        loss = self._closure(closure)
        for group in self.param_groups:
            lr, lr_decay, eps, weight_decay = group["lr"], group["lr_decay"], group["eps"], group["weight_decay"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if len(state) == 0:  # a group added after construction
                    self._init_state(p, self.defaults["initial_accumulator_value"])
                state["step"] += 1
                step = float(state["step"])
                g = _grad(p, group["maximize"])
                if weight_decay != 0:
                    g = g + weight_decay * p.data
                clr = lr / (1 + (step - 1) * lr_decay)
                state["sum"] += g * g
                p.data -= clr * g / (np.sqrt(state["sum"]) + eps)
        return loss
