"""Optimizers' fast path: Adam's update in place, one temporary at a time, large parameters split over threads."""
import numpy as np

from scratch.fast import parallel
from scratch.optim.optimizer import _lerp_


def adam(theta, g, exp_avg, exp_avg_sq, max_exp_avg_sq, step: float, *, lr: float, beta1: float, beta2: float,
         eps: float) -> None:
    """``scratch.optim.adam._single_tensor_adam``'s arithmetic, in the same order (the same bits)."""
    bias_correction1 = 1 - beta1**step
    bias_correction2 = 1 - beta2**step
    step_size = lr / bias_correction1
    bias_correction2_sqrt = bias_correction2**0.5

    def update(theta, g, exp_avg, exp_avg_sq, *max_exp_avg_sq):
        # in place, one temporary at a time, in torch's order of operations
        _lerp_(exp_avg, g, 1 - beta1)
        exp_avg_sq *= beta2
        g2 = np.multiply(g, 1 - beta2)
        g2 *= g
        exp_avg_sq += g2
        if max_exp_avg_sq:
            np.maximum(max_exp_avg_sq[0], exp_avg_sq, out=max_exp_avg_sq[0])
            denom = np.sqrt(max_exp_avg_sq[0])
        else:
            denom = np.sqrt(exp_avg_sq)
        denom /= bias_correction2_sqrt
        denom += eps
        step_ = np.multiply(exp_avg, -step_size)
        step_ /= denom
        theta += step_

    # Every element updates alone: large parameters are split over the cores.
    parallel.elementwise(update, theta, g, exp_avg, exp_avg_sq, *([] if max_exp_avg_sq is None else [max_exp_avg_sq]))
