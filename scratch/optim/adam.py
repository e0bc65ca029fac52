"""Adam: adaptive moment estimation, with bias correction, AMSGrad and (optionally decoupled) weight decay."""
import numpy as np

from scratch import fast, paths
from scratch.optim.optimizer import Optimizer, _check_unsupported, _grad, _lerp_, _new_step


class Adam(Optimizer):
    r"""Implements the Adam algorithm, as ``torch.optim.Adam``.

    For each parameter theta with gradient g, with m = v = v_max = 0 at first, at step t = 1, 2, ...:

        if maximize:        g <- -g
        if weight_decay:    theta <- theta * (1 - lr * weight_decay)   if decoupled_weight_decay (AdamW)
                            g <- g + weight_decay * theta              otherwise (an L2 penalty)
        m <- beta1 m + (1 - beta1) g              (computed as torch.lerp: m + (1 - beta1)(g - m))
        v <- beta2 v + (1 - beta2) g^2
        if amsgrad:         v_max <- max(v_max, v);  v <- v_max for the update below
        bias_correction1 = 1 - beta1^t,   bias_correction2 = 1 - beta2^t
        denom = sqrt(v) / sqrt(bias_correction2) + eps
        theta <- theta - (lr / bias_correction1) * m / denom

    that is, theta <- theta - lr * m_hat / (sqrt(v_hat) + eps) with m_hat = m / (1 - beta1^t),
    v_hat = v / (1 - beta2^t). The operations are done in torch's order, so a
    float64 run matches torch's to round-off. The book's Adam puts eps outside
    the bias correction (see ``scratch.optim.book.Adam``).

    Args:
        params: Parameters or dicts defining parameter groups.
        lr: learning rate (default: 1e-3).
        betas: coefficients of the running averages of g and g^2 (default: (0.9, 0.999)).
        eps: term added to the denominator for numerical stability (default: 1e-8).
        weight_decay: weight decay (L2 penalty) (default: 0).
        amsgrad: use the AMSGrad variant, normalising by the largest v so far (default: False).
        maximize: maximize the objective instead of minimizing (default: False).
        decoupled_weight_decay: decay the weights directly, as AdamW (default: False).
        foreach, capturable, fused: accepted so that code and state dicts move between
            the twins; NumPy has one implementation, so they select nothing.
        differentiable: must be False (scratch has no autograd).

    State per parameter: ``step`` (a 0-d float32 array, as torch's), ``exp_avg``,
    ``exp_avg_sq`` and, with amsgrad, ``max_exp_avg_sq``.
    """

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0, amsgrad: bool = False, *, foreach=None, maximize: bool = False,
                 capturable: bool = False, differentiable: bool = False, fused=None,
                 decoupled_weight_decay: bool = False):
        if not 0.0 <= lr:
            raise ValueError(f"Invalid learning rate: {lr}")
        if not 0.0 <= eps:
            raise ValueError(f"Invalid epsilon value: {eps}")
        if not 0.0 <= betas[0] < 1.0:
            raise ValueError(f"Invalid beta parameter at index 0: {betas[0]}")
        if not 0.0 <= betas[1] < 1.0:
            raise ValueError(f"Invalid beta parameter at index 1: {betas[1]}")
        if not 0.0 <= weight_decay:
            raise ValueError(f"Invalid weight_decay value: {weight_decay}")
        if not (isinstance(betas[0], float) and isinstance(betas[1], float)):
            raise ValueError("betas must be either both floats or both Tensors")
        _check_unsupported(type(self).__name__, differentiable)
        defaults = dict(lr=lr, betas=(betas[0], betas[1]), eps=eps, weight_decay=weight_decay,
                        amsgrad=amsgrad, maximize=maximize, foreach=foreach, capturable=capturable,
                        differentiable=differentiable, fused=fused,
                        decoupled_weight_decay=decoupled_weight_decay)
        super().__init__(params, defaults)

    def step(self, closure=None):
        """Update every parameter that has a gradient; returns ``closure()`` if one is given."""
        loss = self._closure(closure)
        for group in self.param_groups:
            lr, eps, weight_decay, amsgrad = group["lr"], group["eps"], group["weight_decay"], group["amsgrad"]
            beta1, beta2 = group["betas"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                g = _grad(p, group["maximize"])
                state = self.state[p]
                if len(state) == 0:
                    state["step"] = _new_step()
                    state["exp_avg"] = np.zeros_like(p.data)
                    state["exp_avg_sq"] = np.zeros_like(p.data)
                    if amsgrad:
                        state["max_exp_avg_sq"] = np.zeros_like(p.data)
                exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]

                state["step"] += 1
                if weight_decay != 0:
                    if group["decoupled_weight_decay"]:
                        p.data *= 1 - lr * weight_decay
                    else:
                        g = g + weight_decay * p.data

                # One parameter's rule; the fast path does it in place, split over threads: scratch/fast/optim.py
                update = fast.optim.adam if paths.is_fast() else _single_tensor_adam
                update(p.data, g, exp_avg, exp_avg_sq, state.get("max_exp_avg_sq"), float(state["step"]),
                       lr=lr, beta1=beta1, beta2=beta2, eps=eps)
        return loss


def _single_tensor_adam(theta, g, exp_avg, exp_avg_sq, max_exp_avg_sq, step: float, *, lr: float, beta1: float,
                        beta2: float, eps: float) -> None:
    """Adam's update of one parameter ``theta`` in place, as torch's ``_single_tensor_adam``.

    ``max_exp_avg_sq`` is None without amsgrad; ``step`` is t, already counted.
    """
    _lerp_(exp_avg, g, 1 - beta1)  # m <- beta1 m + (1 - beta1) g
    exp_avg_sq *= beta2
    exp_avg_sq += (1 - beta2) * g * g  # v <- beta2 v + (1 - beta2) g^2
    if max_exp_avg_sq is not None:  # amsgrad
        np.maximum(max_exp_avg_sq, exp_avg_sq, out=max_exp_avg_sq)
    v = exp_avg_sq if max_exp_avg_sq is None else max_exp_avg_sq
    bias_correction1, bias_correction2 = 1 - beta1**step, 1 - beta2**step
    denom = np.sqrt(v) / bias_correction2**0.5 + eps
    theta -= (lr / bias_correction1) * exp_avg / denom
