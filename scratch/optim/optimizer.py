"""Optimizer: the base class, with torch.optim's param groups, state and state dict.

An optimizer holds ``param_groups``, a list of dicts; each has ``"params"`` (a
list of ``scratch.nn.Parameter``) and that group's hyperparameters (``lr``,
``weight_decay`` ...), filled in from ``defaults`` where the group leaves one
out. ``state`` maps each Parameter to a dict of arrays (momentum buffers,
moment estimates, the step count) created lazily on its first update.

``step()`` reads ``p.grad`` and updates ``p.data`` in place; parameters whose
``grad`` is None are skipped, as in PyTorch.

``state_dict()`` has PyTorch's layout, so a scratch optimizer and a torch one
can trade state (see ``experiments/optim_transfer.py``)::

    {"state": {0: {"step": array(3., dtype=float32), "exp_avg": ...}, 1: {...}},
     "param_groups": [{"lr": 0.001, ..., "params": [0, 1]}]}

Parameters are numbered in group order. As in PyTorch, the arrays in it are
the optimizer's own, not copies: ``copy.deepcopy`` it to keep a checkpoint.
"""
import copy
from collections import defaultdict

import numpy as np

from scratch.nn.parameter import Parameter


class _RequiredParameter:
    """Marks a hyperparameter that has no default and must be given."""

    def __repr__(self) -> str:
        return "<required parameter>"


required = _RequiredParameter()


class Optimizer:
    """Base class: parameter groups, per-parameter state, zero_grad, state dicts.

    Args:
        params: an iterable of Parameters, of ``(name, Parameter)`` pairs
            (``model.named_parameters()``), or of dicts defining parameter groups.
        defaults: the hyperparameters a group gets when it does not set them.
    """

    def __init__(self, params, defaults: dict):
        self.defaults = defaults
        if isinstance(params, (Parameter, np.ndarray)):
            raise TypeError(
                "params argument given to the optimizer should be an iterable of Tensors or dicts, but got "
                + type(params).__name__
            )
        self.state = defaultdict(dict)
        self.param_groups = []
        param_groups = list(params)
        if len(param_groups) == 0:
            raise ValueError("optimizer got an empty parameter list")
        if not isinstance(param_groups[0], dict):
            param_groups = [{"params": param_groups}]
        for group in param_groups:
            self.add_param_group(group)

    def add_param_group(self, param_group: dict) -> None:
        """Add a group (a dict with "params" and any hyperparameters it overrides)."""
        if not isinstance(param_group, dict):
            raise TypeError(f"param_group must be a dict, but got {type(param_group)}")
        params = param_group["params"]
        if isinstance(params, Parameter):
            params = [params]
        elif isinstance(params, set):
            raise TypeError(
                "optimizer parameters need to be organized in ordered collections, but "
                "the ordering of tensors in sets will change between runs. Please use a list instead."
            )
        else:
            params = list(params)

        names = [p[0] for p in params if isinstance(p, tuple)]
        params = [p[1] if isinstance(p, tuple) else p for p in params]
        if names:
            if len(names) != len(params):
                raise ValueError("all optimizer params should be with/without names. Some param names are missing")
            param_group["param_names"] = names
        param_group["params"] = params

        for p in params:
            if not isinstance(p, Parameter):
                raise TypeError(
                    "optimizer can only optimize Tensors, but one of the params is " + type(p).__name__
                )
        for name, default in self.defaults.items():
            if default is required and name not in param_group:
                raise ValueError(f"parameter group didn't specify a value of required optimization parameter {name}")
            param_group.setdefault(name, default)

        seen = set()
        for group in self.param_groups:
            seen.update(id(p) for p in group["params"])
            if ("param_names" in param_group) != ("param_names" in group):
                which = "with names" if "param_names" in param_group else "without names"
                raise ValueError(
                    "all optimizer param groups should be with/without names. "
                    f"cannot add param group {which} to the optimizer"
                )
        if any(id(p) in seen for p in params):
            raise ValueError("some parameters appear in more than one parameter group")
        self.param_groups.append(param_group)

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Reset every parameter's gradient: to None (default) or to zeros in place."""
        for group in self.param_groups:
            for p in group["params"]:
                if set_to_none:
                    p.grad = None
                elif p.grad is not None:
                    p.grad[...] = 0

    def step(self, closure=None):
        raise NotImplementedError

    def _closure(self, closure):
        return None if closure is None else closure()

    # -- state dicts ------------------------------------------------------
    def state_dict(self) -> dict:
        """``{"state": {index: {...}}, "param_groups": [{..., "params": [indices]}]}``, as PyTorch's."""
        index = {}
        groups = []
        for group in self.param_groups:
            packed = {k: v for k, v in group.items() if k != "params"}
            for p in group["params"]:
                index.setdefault(id(p), len(index))
            packed["params"] = [index[id(p)] for p in group["params"]]
            groups.append(packed)
        state = {index[id(p)]: s for p, s in self.state.items() if id(p) in index}
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: dict) -> None:
        """Load a state dict from ``state_dict()`` (or a torch optimizer's, tensors and all).

        Arrays are copied; floating state takes its parameter's dtype, except
        ``step``, which keeps its own (as in PyTorch).
        """
        groups = self.param_groups
        saved_groups = copy.deepcopy(state_dict["param_groups"])
        if len(groups) != len(saved_groups):
            raise ValueError("loaded state dict has a different number of parameter groups")
        if any(len(g["params"]) != len(s["params"]) for g, s in zip(groups, saved_groups)):
            raise ValueError(
                "loaded state dict contains a parameter group that doesn't match the size of optimizer's group"
            )
        id_map = {}
        for g, s in zip(groups, saved_groups):
            id_map.update(zip(s["params"], g["params"]))

        state = defaultdict(dict)
        for k, v in state_dict["state"].items():
            if k in id_map:
                param = id_map[k]
                state[param] = {key: _cast(param, value, key) for key, value in v.items()}
            else:
                state[k] = v
        for g, s in zip(groups, saved_groups):
            s["params"] = g["params"]
            if "param_names" in g and "param_names" not in s:
                s["param_names"] = g["param_names"]
        self.state = state
        self.param_groups = saved_groups

    def __repr__(self) -> str:
        lines = [self.__class__.__name__ + " ("]
        for i, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            lines += [f"    {k}: {group[k]}" for k in sorted(group) if k != "params"]
        return "\n".join(lines) + "\n)"


def _cast(param: Parameter, value, key=None):
    """A copy of ``value`` as NumPy arrays: torch tensors converted, floating ones in the param's dtype."""
    if isinstance(value, dict):
        return {k: _cast(param, v, k) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_cast(param, v) for v in value)
    if isinstance(value, np.ndarray) or hasattr(value, "__array__"):
        arr = np.array(np.asarray(value))  # a copy (np.asarray first: a torch tensor's __array__ takes no copy=)
        if key != "step" and np.issubdtype(arr.dtype, np.floating):
            arr = arr.astype(param.dtype, copy=False)
        return arr
    return value


# -- shared pieces of the update rules ------------------------------------------
def _new_step() -> np.ndarray:
    """The step counter: a 0-d float32 array, as torch keeps ``state["step"]`` (a float32 tensor)."""
    return np.zeros((), dtype=np.float32)


def _grad(p: Parameter, maximize: bool) -> np.ndarray:
    return -p.grad if maximize else p.grad


def _lerp_(start: np.ndarray, end: np.ndarray, weight: float) -> None:
    """start <- start + weight (end - start), in torch.lerp's two-branch form (same rounding)."""
    w = start.dtype.type(weight)
    diff = end - start
    if abs(w) < 0.5:
        diff *= w
        start += diff
    else:
        diff *= 1 - w
        np.subtract(end, diff, out=start)


def _check_unsupported(name: str, differentiable: bool) -> None:
    if differentiable:
        raise NotImplementedError(f"{name}: differentiable=True needs autograd, which scratch does not have")
