"""AdamW: Adam with decoupled weight decay."""
from scratch.optim.adam import Adam


class AdamW(Adam):
    r"""Implements AdamW, as ``torch.optim.AdamW``: weight decay that bypasses the moment estimates.

    For each parameter theta with gradient g, at step t = 1, 2, ...:

        if maximize:  g <- -g
        theta <- theta (1 - lr * weight_decay)      (decoupled: the decay never enters m or v)
        m <- beta1 m + (1 - beta1) g
        v <- beta2 v + (1 - beta2) g^2
        if amsgrad:   v_max <- max(v_max, v);  v <- v_max for the update below
        theta <- theta - (lr / (1 - beta1^t)) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)

    It is ``Adam(..., decoupled_weight_decay=True)`` with a default weight decay
    of 1e-2. With plain Adam, weight decay is an L2 term added to g, so it is
    divided by sqrt(v) like the gradient; here every weight shrinks by the same
    factor (Loshchilov & Hutter, "Decoupled Weight Decay Regularization").

    Args:
        params, lr (1e-3), betas ((0.9, 0.999)), eps (1e-8), amsgrad (False), maximize (False):
            as ``Adam``.
        weight_decay: weight decay coefficient (default: 1e-2).
    """

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 1e-2, amsgrad: bool = False, *, maximize: bool = False,
                 foreach=None, capturable: bool = False, differentiable: bool = False, fused=None):
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, foreach=foreach, maximize=maximize,
                         capturable=capturable, differentiable=differentiable, fused=fused,
                         decoupled_weight_decay=True)

    def load_state_dict(self, state_dict: dict) -> None:
        super().load_state_dict(state_dict)
        for group in self.param_groups:
            group["decoupled_weight_decay"] = True
