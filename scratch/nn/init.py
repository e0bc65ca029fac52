"""Weight initialisation, as ``torch.nn.init``: same fans, gains and bounds.

Each function fills its array (or ``Parameter``) in place and returns it. The
random draws come from an explicit ``numpy.random.Generator`` (``generator=``),
the default stream of ``scratch.random`` when it is ``None``. Draws are made in
float64 and rounded to the array's dtype, so a float32 model holds exactly the
rounded weights of the float64 model of the same seed.

The book's schemes (chapter 6: a Gaussian with a fixed std, 'xavier' or 'he')
are ``book_std`` and ``book_init_`` at the end of the file.
"""
import math
import warnings

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
    valid_modes = ["fan_in", "fan_out"]
    if mode not in valid_modes:
        raise ValueError(f"Mode {mode} not supported, please use one of {valid_modes}")
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    return fan_in if mode == "fan_in" else fan_out


def _is_empty(tensor) -> bool:
    if 0 in np.shape(_array(tensor)):
        warnings.warn("Initializing zero-element tensors is a no-op", stacklevel=3)
        return True
    return False


def uniform_(tensor, a: float = 0.0, b: float = 1.0, generator=None):
    """Fill with U(a, b)."""
    rng = _random.resolve(generator)
    return _fill(tensor, rng.uniform(a, b, size=np.shape(_array(tensor))))


def normal_(tensor, mean: float = 0.0, std: float = 1.0, generator=None):
    """Fill with N(mean, std^2)."""
    rng = _random.resolve(generator)
    return _fill(tensor, rng.normal(mean, std, size=np.shape(_array(tensor))))


def constant_(tensor, val: float):
    """Fill with the value ``val``."""
    return _fill(tensor, val)


def ones_(tensor):
    """Fill with 1."""
    return _fill(tensor, 1.0)


def zeros_(tensor):
    """Fill with 0."""
    return _fill(tensor, 0.0)


def xavier_uniform_(tensor, gain: float = 1.0, generator=None):
    r"""Glorot's uniform init: U(-a, a), a = gain * \sqrt{6 / (fan_in + fan_out)} = \sqrt{3} * std."""
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    std = gain * math.sqrt(2.0 / float(fan_in + fan_out))
    a = math.sqrt(3.0) * std
    return uniform_(tensor, -a, a, generator=generator)


def xavier_normal_(tensor, gain: float = 1.0, generator=None):
    r"""Glorot's normal init: N(0, std^2), std = gain * \sqrt{2 / (fan_in + fan_out)}.

    Not the book's 'xavier' (std = \sqrt{1 / fan_in}, see ``book_std``).
    """
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    std = gain * math.sqrt(2.0 / float(fan_in + fan_out))
    return normal_(tensor, 0.0, std, generator=generator)


def kaiming_uniform_(tensor, a: float = 0, mode: str = "fan_in", nonlinearity: str = "leaky_relu", generator=None):
    r"""He's uniform init: U(-bound, bound), bound = gain * \sqrt{3 / fan_mode}.

    gain = calculate_gain(nonlinearity, a); ``a`` is the negative slope of the
    leaky ReLU after the layer (used with 'leaky_relu' only); ``mode`` 'fan_in'
    (default) keeps the forward variance, 'fan_out' the backward one.
    PyTorch's Linear and Conv layers use a = \sqrt{5}, which gives bound = 1/\sqrt{fan_in}.
    """
    if _is_empty(tensor):
        return tensor
    fan = _calculate_correct_fan(tensor, mode)
    gain = calculate_gain(nonlinearity, a)
    std = gain / math.sqrt(fan)
    bound = math.sqrt(3.0) * std
    return uniform_(tensor, -bound, bound, generator=generator)


def kaiming_normal_(tensor, a: float = 0, mode: str = "fan_in", nonlinearity: str = "leaky_relu", generator=None):
    r"""He's normal init: N(0, std^2), std = gain / \sqrt{fan_mode}; arguments as ``kaiming_uniform_``.

    With nonlinearity='relu' and mode='fan_in' it is std = \sqrt{2 / fan_in}, the book's 'he'.
    """
    if _is_empty(tensor):
        return tensor
    fan = _calculate_correct_fan(tensor, mode)
    gain = calculate_gain(nonlinearity, a)
    std = gain / math.sqrt(fan)
    return normal_(tensor, 0.0, std, generator=generator)


# -- the book's schemes ---------------------------------------------------------
def book_std(weight_init_std, fan_in: int) -> float:
    r"""The std of the book's Gaussian initial weights (chapter 6, ``weight_init_std``).

        'relu' or 'he':         \sqrt{2 / fan_in}   (He et al.; = kaiming_normal_(nonlinearity='relu'))
        'sigmoid' or 'xavier':  \sqrt{1 / fan_in}   (what the book calls Xavier's)
        a number:               that number (the book's default is 0.01)

    The book's 'xavier' is LeCun's rule, \sqrt{1 / fan_in}, not PyTorch's
    ``xavier_normal_``, whose std is \sqrt{2 / (fan_in + fan_out)}: the two agree
    only for square layers. ``fan_in`` is the number of inputs of a unit: in
    for a Linear weight, in_channels * kh * kw for a Conv weight.
    """
    name = str(weight_init_std).lower()
    if name in ("relu", "he"):
        return math.sqrt(2.0 / fan_in)
    if name in ("sigmoid", "xavier"):
        return math.sqrt(1.0 / fan_in)
    if isinstance(weight_init_std, str):
        raise ValueError(
            f"weight_init_std must be 'relu', 'he', 'sigmoid', 'xavier' or a number, got {weight_init_std!r}"
        )
    std = float(weight_init_std)
    if not std >= 0:
        raise ValueError(f"weight_init_std must be >= 0, got {weight_init_std!r}")
    return std


def book_init_(tensor, weight_init_std=0.01, generator=None):
    """Fill a weight with N(0, book_std(weight_init_std, fan_in)^2), fan_in from its shape as PyTorch counts it.

    The book sets biases to zero: ``zeros_(bias)``, or ``book_init_module_`` for a whole model.
    """
    fan_in, _ = _calculate_fan_in_and_fan_out(tensor)
    return normal_(tensor, 0.0, book_std(weight_init_std, fan_in), generator=generator)


def book_init_module_(module, weight_init_std=0.01, generator=None):
    """The book's init for every layer of ``module`` with a weight of 2 or more dims (Linear, Conv):
    weight ~ N(0, book_std^2), bias = 0. Other parameters (batch norm's) are left as they are.
    Layers are visited in ``modules()`` order, each drawing from ``generator`` in turn."""
    for m in module.modules():
        weight = m._parameters.get("weight")
        if weight is None or weight.ndim < 2:
            continue
        book_init_(weight, weight_init_std, generator=generator)
        if m._parameters.get("bias") is not None:
            zeros_(m._parameters["bias"])
    return module
