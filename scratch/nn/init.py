"""Weight initialisation, as ``torch.nn.init``: same fans, gains and bounds.

Each function fills its array (or ``Parameter``) in place and returns it. The
random draws come from an explicit ``numpy.random.Generator`` (``generator=``),
the default stream of ``scratch.random`` when it is ``None``. Draws are made in
float64 and rounded to the array's dtype, so a float32 model holds exactly the
rounded weights of the float64 model of the same seed.
"""
import math

import numpy as np

from scratch import random as _random
from scratch.nn.parameter import Parameter


def _array(tensor) -> np.ndarray:
    return tensor.data if isinstance(tensor, Parameter) else tensor


def _fill(tensor, values):
    arr = _array(tensor)
    arr[...] = values
    return tensor


def _calculate_fan_in_and_fan_out(tensor):
    """fan_in = shape[1] * receptive field, fan_out = shape[0] * receptive field.

    For a Linear weight ``(out, in)`` that is (in, out); for a Conv2d weight
    ``(out, in/groups, kh, kw)`` it is (in/groups*kh*kw, out*kh*kw).
    """
    shape = np.shape(_array(tensor))
    if len(shape) < 2:
        raise ValueError("Fan in and fan out can not be computed for tensor with fewer than 2 dimensions")
    receptive = math.prod(shape[2:]) if len(shape) > 2 else 1
    return shape[1] * receptive, shape[0] * receptive


def calculate_gain(nonlinearity: str, param=None) -> float:
    r"""The recommended gain for a nonlinearity, as in ``torch.nn.init.calculate_gain``.

    linear, conv*, sigmoid: 1;  tanh: 5/3;  relu: \sqrt{2};
    leaky_relu: \sqrt{2 / (1 + slope^2)} (slope 0.01 by default);  selu: 3/4.
    """
    linear_fns = ["linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d", "conv_transpose3d"]
    if nonlinearity in linear_fns or nonlinearity == "sigmoid":
        return 1
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        if param is None:
            negative_slope = 0.01
        elif not isinstance(param, bool) and isinstance(param, (int, float)):
            negative_slope = param
        else:
            raise ValueError(f"negative_slope {param} not a valid number")
        return math.sqrt(2.0 / (1 + negative_slope**2))
    if nonlinearity == "selu":
        return 3.0 / 4
    raise ValueError(f"Unsupported nonlinearity {nonlinearity}")


def _calculate_correct_fan(tensor, mode: str) -> int:
    mode = mode.lower()
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"Mode {mode} not supported, please use one of fan_in, fan_out")
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    return fan_in if mode == "fan_in" else fan_out


def uniform_(tensor, a: float = 0.0, b: float = 1.0, generator=None):
    """Fill with U(a, b)."""
    rng = _random.resolve(generator)
    return _fill(tensor, rng.uniform(a, b, size=np.shape(_array(tensor))))


def kaiming_uniform_(tensor, a: float = 0, mode: str = "fan_in", nonlinearity: str = "leaky_relu", generator=None):
    r"""Fill with U(-bound, bound), bound = gain * \sqrt{3 / fan_mode}, gain = calculate_gain(nonlinearity, a).

    PyTorch's Linear and Conv layers use a = \sqrt{5}, which gives bound = 1/\sqrt{fan_in}.
    """
    fan = _calculate_correct_fan(tensor, mode)
    gain = calculate_gain(nonlinearity, a)
    bound = math.sqrt(3.0) * gain / math.sqrt(fan)
    return uniform_(tensor, -bound, bound, generator=generator)
