"""The user's side: which attribute holds which of torch's tensors, how to call forward and build a layer."""
import inspect
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
from torch import nn

from experiments.check.results import Refused

# The layer's attribute names for torch's tensors, the one list the checker looks through.
PARAM_NAMES = {"weight": ("W", "w", "weight", "gamma"), "bias": ("b", "bias", "beta"),
               "running_mean": ("running_mean",), "running_var": ("running_var",)}
# forward's mode argument and a dropout constructor's rate, by the names learners give them.
MODE_ARGS = ("train_flg", "train", "training", "is_training", "train_mode")
RATE_ARGS = ("dropout_ratio", "ratio", "p", "rate", "drop_rate", "dropout", "drop_prob", "prob")
# The attributes that hold a learnable parameter (W, b, gamma, beta...), in the order they are looked for.
PARAM_ATTRS = PARAM_NAMES["weight"] + PARAM_NAMES["bias"]


def array_params(layer) -> list:
    """The book-style parameter attributes the layer holds as arrays."""
    return [a for a in PARAM_ATTRS if isinstance(getattr(layer, a, None), np.ndarray)]



@dataclass
class Slot:
    user: str  # the layer's attribute (W) or parameter name (weight)
    torch: str  # torch's parameter or buffer name
    transpose: bool
    buffer: bool
    grad_name: str  # dW, or weight.grad


def is_scratch_style(layer) -> bool:
    return all(hasattr(layer, a) for a in ("named_parameters", "named_buffers", "load_state_dict"))


def slots_for(layer, module, params, grads) -> list:
    """Which attribute of the layer receives which torch tensor, or Refused naming what is missing."""
    if not isinstance(module, nn.Module):
        looks = array_params(layer)
        if is_scratch_style(layer):
            looks = [n for n, _ in layer.named_parameters()]
        if looks:
            raise Refused(f"the layer has parameters ({', '.join(looks)}) and the torch counterpart is a function, "
                          "so no weights can be copied into them; pass a torch module (nn.Linear, nn.Conv2d...) "
                          "or pass the parameters as inputs")
        return []
    state = module.state_dict()
    slots = []
    if is_scratch_style(layer):
        own = dict(layer.named_parameters())
        bufs = dict(layer.named_buffers())
        for name in state:
            if name in own or name in bufs:
                slots.append(Slot(name, name, False, name in bufs, name + ".grad"))
            elif not name.endswith("num_batches_tracked"):
                raise Refused(f"torch's {name} has no counterpart in the layer's state_dict "
                              f"({', '.join(list(own) + list(bufs)) or 'empty'}); nothing is compared")
        extra = [k for k in list(own) + list(bufs) if k not in state]
        if extra:
            raise Refused(f"the layer's {', '.join(extra)} has no counterpart in torch's {type(module).__name__} "
                          "and would keep its own values; nothing is compared")
        return slots
    by_torch = {}
    for user, target in (params or {}).items():
        t = target[:-2] if target.endswith(".T") else target
        if t not in state:
            raise Refused(f"params maps {user!r} to {target!r}, but torch's {type(module).__name__} has no "
                          f"{t!r} (it has {', '.join(state) or 'no weights'})")
        by_torch[t] = (user, target.endswith(".T") or None)
    param_names = {n for n, _ in module.named_parameters()}
    for name, value in state.items():
        if name.endswith("num_batches_tracked"):
            continue
        if name in by_torch:
            user, transpose = by_torch[name]
            if not hasattr(layer, user):
                raise Refused(f"params maps {user!r} to torch's {name}, but the layer has no attribute {user!r}")
        else:
            found = [a for a in PARAM_NAMES.get(name, (name,)) if hasattr(layer, a)]
            if not found:
                raise Refused(f"torch's {name} {tuple(value.shape)} has no attribute to be copied into (looked for "
                              f"{', '.join(PARAM_NAMES.get(name, (name,)))}); pass params={{'YOUR_ATTR': {name!r}}} "
                              "(or 'NAME.T' for a transposed layout); nothing is compared")
            user, transpose = found[0], None
        current = getattr(layer, user)
        tshape = tuple(value.shape)
        if transpose is None:
            ushape = None if current is None else np.shape(current)
            if ushape is None:
                transpose = isinstance(module, nn.Linear) and user in ("W", "w")
            elif ushape == tshape and not (len(tshape) == 2 and tshape[0] == tshape[1]
                                           and isinstance(module, nn.Linear) and user in ("W", "w")):
                transpose = False
            elif len(tshape) == 2 and ushape == tshape[::-1]:
                transpose = True
            else:
                raise Refused(f"the layer's {user} has shape {ushape}, torch's {name} has {tshape} (or "
                              f"{tshape[::-1]} transposed): the weights cannot be copied; nothing is compared")
        buffer = name not in param_names
        grad_name = (grads or {}).get(user, "d" + user)
        slots.append(Slot(user, name, bool(transpose), buffer, grad_name))
    mapped = {s.user for s in slots}
    extra = [a for a in array_params(layer) if a not in mapped]
    if extra:
        raise Refused(f"the layer's {', '.join(extra)} has no counterpart in torch's {type(module).__name__} "
                      f"({', '.join(state) or 'no weights'}) and would keep its own values; nothing is compared")
    return slots


def copy_weights(layer, module, slots, dtype) -> None:
    """torch -> layer, in the layer's layout and the check's dtype; verified element for element."""
    if not slots:
        return
    state = module.state_dict()
    if is_scratch_style(layer):
        if hasattr(layer, "to"):
            layer.to(dtype)
        layer.load_state_dict(OrderedDict((k, v.detach().cpu().numpy()) for k, v in state.items()),
                              strict=False)
        own = dict(layer.named_parameters())
        bufs = dict(layer.named_buffers())
        for s in slots:
            got = own[s.user].data if s.user in own else bufs[s.user]
            if not np.array_equal(got, state[s.torch].detach().cpu().numpy()):
                raise Refused(f"the layer did not keep the copied {s.user}; nothing is compared")
        return
    for s in slots:
        value = state[s.torch].detach().cpu().numpy().astype(dtype)
        value = np.ascontiguousarray(value.T if s.transpose else value)
        current = getattr(layer, s.user)
        if isinstance(current, np.ndarray) and current.shape == value.shape and current.dtype == value.dtype \
                and current.flags.writeable:
            np.copyto(current, value)  # in place: a network holding a reference to W sees it too
        else:
            setattr(layer, s.user, value)
        if not np.array_equal(getattr(layer, s.user), value):
            raise Refused(f"the layer did not keep the copied {s.user}; nothing is compared")


def user_value(layer, slot, grad: bool):
    if is_scratch_style(layer):
        own = dict(layer.named_parameters())
        if grad:
            p = own[slot.user]
            return np.zeros_like(p.data) if p.grad is None else p.grad
        return dict(layer.named_buffers())[slot.user]
    return getattr(layer, slot.grad_name if grad else slot.user, None)


def forward_names(layer, n) -> list:
    """Names of forward's positional inputs (x, t ...), for the records dx, dt."""
    given = list(getattr(layer, "input_names", ()))[:n]
    if given:
        return given + [f"input{i}" for i in range(len(given), n)]
    try:
        ps = [p for p in inspect.signature(layer.forward).parameters.values()
              if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.name.lower() not in MODE_ARGS]
        names = [p.name for p in ps][:n]
    except (TypeError, ValueError):
        names = []
    return names + [f"input{i}" for i in range(len(names), n)]


def call_forward(layer, inputs, train):
    if is_scratch_style(layer):
        layer.train(bool(train))
        if hasattr(layer, "zero_grad"):
            layer.zero_grad()
        return layer.forward(*inputs)
    flag = mode_arg(layer.forward)
    return layer.forward(*inputs, **{flag: bool(train)}) if flag else layer.forward(*inputs)


def mode_arg(function):
    """The name of a forward's train/eval argument (train_flg, train, training, is_training), or None."""
    try:
        params = inspect.signature(function).parameters
    except (TypeError, ValueError):
        return None
    return next((p for p in params if p.lower() in MODE_ARGS), None)


def is_dropout(module) -> bool:
    return isinstance(module, nn.Module) and hasattr(module, "p") and "Dropout" in type(module).__name__


def dropout_keep(layer, out, x):
    """The layer's keep mask: its ``mask`` attribute, else where its output is non-zero."""
    mask = getattr(layer, "mask", None)
    if mask is None:
        mask = getattr(layer, "multiplier", None)
    if isinstance(mask, np.ndarray) and mask.shape == x.shape:
        return np.asarray(mask != 0)
    if out.shape != x.shape:
        raise Refused(f"dropout output has shape {out.shape}, the input {x.shape}: its mask cannot be read")
    return out != 0



def ctor_args(cls):
    try:
        return [p for p in inspect.signature(cls.__init__).parameters if p != "self"]
    except (TypeError, ValueError):
        return []


def rate_arg(cls):
    """The name of a dropout constructor's rate argument (dropout_ratio, ratio, p, rate...), or None."""
    return next((a for a in ctor_args(cls) if a.lower() in RATE_ARGS), None)


class FunctionPair:
    """A book-style layer around CS231n-style functions, so that one checker serves both.

    ``forward_fn(*arrays, *extra) -> (out, cache)`` and ``backward_fn(dout, cache)`` -> one gradient per array
    argument (a tuple, or one array). ``param`` is the dict among ``extra`` that carries the mode
    (``{"mode": "train"}`` / ``"test"``), as CS231n's bn_param and dropout_param do. A dropout's keep mask is
    read from the cache (its first array of the input's shape).
    """

    def __init__(self, forward_fn, backward_fn, extra=(), names=None, param=None):
        self.forward_fn, self.backward_fn, self.extra, self.param = forward_fn, backward_fn, tuple(extra), param
        self.input_names = list(names or function_inputs(forward_fn))
        self.cache = self.mask = None

    def forward(self, *arrays, train_flg=True):
        if self.param is not None:
            self.param["mode"] = "train" if train_flg else "test"
        got = self.forward_fn(*arrays, *self.extra)
        if not (isinstance(got, tuple) and len(got) == 2):
            raise TypeError(f"{self.forward_fn.__name__} returned {type(got).__name__}, not (out, cache)")
        out, self.cache = got
        x = arrays[0]
        parts = self.cache if isinstance(self.cache, (tuple, list)) else (self.cache,)
        self.mask = next((c for c in parts if isinstance(c, np.ndarray) and c.shape == np.shape(x)
                          and c is not x), None)
        return out

    def backward(self, dout):
        return self.backward_fn(dout, self.cache)


class LossFunction:
    """A book-style layer around a loss function ``f(x, y) -> (loss, dx)`` (CS231n's softmax_loss, svm_loss):
    it takes no dout, so it is checked with dout = 1."""

    def __init__(self, function):
        self.function = function
        self.input_names = list(function_inputs(function))[:2]
        self.dx = None

    def forward(self, x, y):
        got = self.function(x, y)
        if not (isinstance(got, tuple) and len(got) == 2):
            raise Refused(f"{self.function.__name__}(x, y) returned a {type(got).__name__}, not (loss, dx): "
                          "a loss without its gradient has no backward to check")
        loss, self.dx = got
        return loss

    def backward(self, dout):
        return self.dx


def function_inputs(function) -> list:
    try:
        return [p.name for p in inspect.signature(function).parameters.values()
                if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    except (TypeError, ValueError):
        return []
