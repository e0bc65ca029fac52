"""Module and Sequential: PyTorch's container semantics over NumPy arrays.

A module computes ``forward(x)`` and keeps what its ``backward(grad_out)``
needs in plain attributes (the book's cache), then returns ``grad_in`` and adds
parameter gradients into ``param.grad``. Parameters, buffers and sub-modules
are registered on assignment, as in ``torch.nn.Module``, so ``state_dict``
keys come out the same as PyTorch's for the same structure.
"""
from collections import OrderedDict
from typing import Iterator, NamedTuple

import numpy as np

from scratch.nn.parameter import Parameter


class IncompatibleKeys(NamedTuple):
    missing_keys: list
    unexpected_keys: list


def check_grad_output(module: "Module", grad_output, shape: tuple) -> np.ndarray:
    """``grad_output`` as an array, refused unless it has ``shape``, the shape of the forward's output.

    NumPy would broadcast a (1, ...) or (..., 1) gradient against a layer's
    cache and hand back a gradient of the right size made of the wrong numbers;
    PyTorch's autograd refuses any shape but the output's.
    """
    g = np.asarray(grad_output)
    if g.shape != tuple(shape):
        raise ValueError(f"{module._get_name()}.backward: grad_output must have the output's shape "
                         f"{tuple(shape)}, got {g.shape}")
    return g


def check_floating(module: "Module", x: np.ndarray) -> np.ndarray:
    """Refuse an integer or boolean input where PyTorch's kernel has no integer version.

    NumPy would compute in the integer dtype and round silently (an average of
    ints, a 0.01 slope on -100, both 0).
    """
    if not np.issubdtype(x.dtype, np.floating):
        raise TypeError(f"{module._get_name()}: input must be floating point, got dtype {x.dtype}")
    return x


def check_dtype(module: "Module", x: np.ndarray, weight: np.ndarray) -> None:
    """Refuse mixed dtypes instead of letting NumPy upcast silently."""
    if x.dtype != weight.dtype:
        raise RuntimeError(
            f"{module._get_name()}: input dtype {x.dtype} does not match parameter dtype {weight.dtype}; "
            f"cast the input or call .to({x.dtype}) on the module"
        )


def pair(value, name: str) -> tuple:
    """An int or a pair of ints (a kernel size, a stride...) as a pair: 3 -> (3, 3), as torch's _pair."""
    if isinstance(value, (int, np.integer)):
        return int(value), int(value)
    value = tuple(int(v) for v in value)
    if len(value) != 2:
        raise ValueError(f"{name} must be an int or a tuple of 2 ints, got {value}")
    return value


class Module:
    training: bool

    def __init__(self):
        object.__setattr__(self, "training", True)
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "_non_persistent_buffers", set())
        object.__setattr__(self, "_modules", OrderedDict())

    # -- registration ---------------------------------------------------
    def __setattr__(self, name, value):
        if "_parameters" not in self.__dict__:
            raise AttributeError(
                f"cannot assign '{name}' before {type(self).__name__}.__init__() calls super().__init__()"
            )
        params, buffers, modules = self._parameters, self._buffers, self._modules
        if isinstance(value, Parameter):
            buffers.pop(name, None)
            modules.pop(name, None)
            self.__dict__.pop(name, None)
            params[name] = value
        elif isinstance(value, Module):
            params.pop(name, None)
            buffers.pop(name, None)
            self.__dict__.pop(name, None)
            modules[name] = value
        elif name in params:
            if value is not None:
                raise TypeError(
                    f"cannot assign '{type(value).__name__}' as parameter '{name}' "
                    "(scratch.nn.Parameter or None expected)"
                )
            params[name] = None
        elif name in buffers:
            if value is not None and not isinstance(value, np.ndarray):
                raise TypeError(
                    f"cannot assign '{type(value).__name__}' as buffer '{name}' (numpy.ndarray or None expected)"
                )
            buffers[name] = value
        elif name in modules:
            if value is not None:
                raise TypeError(f"cannot assign '{type(value).__name__}' as child module '{name}'")
            modules[name] = None
        else:
            object.__setattr__(self, name, value)

    def __getattr__(self, name):
        # Only called when normal lookup fails: look in the registries.
        d = self.__dict__
        for registry in ("_parameters", "_buffers", "_modules"):
            if registry in d and name in d[registry]:
                return d[registry][name]
        raise AttributeError(f"'{type(self).__name__}' object has no attribute '{name}'")

    def __delattr__(self, name):
        for registry in (self._parameters, self._buffers, self._modules):
            if name in registry:
                del registry[name]
                self._non_persistent_buffers.discard(name)
                return
        object.__delattr__(self, name)

    def register_parameter(self, name: str, param) -> None:
        if param is not None and not isinstance(param, Parameter):
            raise TypeError(f"cannot assign '{type(param).__name__}' as parameter '{name}'")
        self.__dict__.pop(name, None)
        self._parameters[name] = param

    def register_buffer(self, name: str, tensor, persistent: bool = True) -> None:
        if tensor is not None and not isinstance(tensor, np.ndarray):
            raise TypeError(f"cannot assign '{type(tensor).__name__}' as buffer '{name}' (numpy.ndarray expected)")
        self.__dict__.pop(name, None)
        self._buffers[name] = tensor
        if persistent:
            self._non_persistent_buffers.discard(name)
        else:
            self._non_persistent_buffers.add(name)

    def add_module(self, name: str, module) -> None:
        if module is not None and not isinstance(module, Module):
            raise TypeError(f"{type(module).__name__} is not a Module subclass")
        self._modules[name] = module

    register_module = add_module

    # -- computation ----------------------------------------------------
    def forward(self, *args, **kwargs):
        raise NotImplementedError(f'Module [{type(self).__name__}] is missing the required "forward" function')

    def backward(self, grad_output):
        raise NotImplementedError(f'Module [{type(self).__name__}] is missing the required "backward" function')

    def __call__(self, *args, **kwargs):
        return self.forward(*args, **kwargs)

    # -- traversal ------------------------------------------------------
    def named_modules(self, memo=None, prefix: str = "") -> Iterator:
        if memo is None:
            memo = set()
        if id(self) in memo:
            return
        memo.add(id(self))
        yield prefix, self
        for name, module in self._modules.items():
            if module is None:
                continue
            yield from module.named_modules(memo, prefix + ("." if prefix else "") + name)

    def modules(self) -> Iterator:
        for _, m in self.named_modules():
            yield m

    def named_children(self) -> Iterator:
        seen = set()
        for name, module in self._modules.items():
            if module is not None and id(module) not in seen:
                seen.add(id(module))
                yield name, module

    def children(self) -> Iterator:
        for _, m in self.named_children():
            yield m

    def _named_members(self, registry: str, prefix: str, recurse: bool):
        seen = set()
        modules = self.named_modules(prefix=prefix) if recurse else [(prefix, self)]
        for module_prefix, module in modules:
            for name, value in getattr(module, registry).items():
                if value is None or id(value) in seen:
                    continue
                seen.add(id(value))
                yield module_prefix + ("." if module_prefix else "") + name, value

    def named_parameters(self, prefix: str = "", recurse: bool = True) -> Iterator:
        yield from self._named_members("_parameters", prefix, recurse)

    def parameters(self, recurse: bool = True) -> Iterator[Parameter]:
        for _, p in self.named_parameters(recurse=recurse):
            yield p

    def named_buffers(self, prefix: str = "", recurse: bool = True) -> Iterator:
        yield from self._named_members("_buffers", prefix, recurse)

    def buffers(self, recurse: bool = True) -> Iterator[np.ndarray]:
        for _, b in self.named_buffers(recurse=recurse):
            yield b

    # -- state ----------------------------------------------------------
    def state_dict(self, destination=None, prefix: str = "") -> "OrderedDict[str, np.ndarray]":
        """Parameters then persistent buffers of each module, children after, as PyTorch orders them.

        The arrays are the module's own (not copies), as PyTorch's tensors are.
        """
        if destination is None:
            destination = OrderedDict()
        for name, p in self._parameters.items():
            if p is not None:
                destination[prefix + name] = p.data
        for name, b in self._buffers.items():
            if b is not None and name not in self._non_persistent_buffers:
                destination[prefix + name] = b
        for name, module in self._modules.items():
            if module is not None:
                module.state_dict(destination, prefix + name + ".")
        return destination

    def load_state_dict(self, state_dict, strict: bool = True) -> IncompatibleKeys:
        """Copy values into this module's arrays in place, keeping their dtype.

        With ``strict`` (the default) missing or unexpected keys are an error;
        a shape mismatch is always one. Values may be anything ``numpy.asarray``
        accepts, CPU torch tensors included.
        """
        own = self.state_dict()
        missing = [k for k in own if k not in state_dict]
        unexpected = [k for k in state_dict if k not in own]
        errors = []
        if strict:
            if unexpected:
                errors.append("Unexpected key(s) in state_dict: " + ", ".join(f'"{k}"' for k in unexpected) + ". ")
            if missing:
                errors.append("Missing key(s) in state_dict: " + ", ".join(f'"{k}"' for k in missing) + ". ")
        values = {}
        for key, target in own.items():
            if key not in state_dict:
                continue
            value = np.asarray(state_dict[key])
            if value.shape != target.shape:
                errors.append(
                    f"size mismatch for {key}: copying a param with shape {tuple(value.shape)} from checkpoint, "
                    f"the shape in current model is {tuple(target.shape)}."
                )
            else:
                values[key] = value
        if errors:
            raise RuntimeError(
                f"Error(s) in loading state_dict for {type(self).__name__}:\n\t" + "\n\t".join(errors)
            )
        for key, value in values.items():
            np.copyto(own[key], value, casting="unsafe")
        return IncompatibleKeys(missing, unexpected)

    # -- modes, gradients, dtype ----------------------------------------
    def train(self, mode: bool = True):
        if not isinstance(mode, bool):
            raise ValueError("training mode is expected to be boolean")
        for m in self.modules():
            object.__setattr__(m, "training", mode)
        return self

    def eval(self):
        return self.train(False)

    def zero_grad(self, set_to_none: bool = True) -> None:
        for p in self.parameters():
            if set_to_none:
                p.grad = None
            elif p.grad is not None:
                p.grad[...] = 0

    def to(self, dtype):
        """Cast every floating parameter and buffer to ``dtype``; integer buffers stay."""
        dtype = np.dtype(dtype)
        if not np.issubdtype(dtype, np.floating):
            raise TypeError(f"Module.to only accepts floating point dtypes, but got desired dtype={dtype}")
        for m in self.modules():
            for p in m._parameters.values():
                if p is not None:
                    p.data = p.data.astype(dtype, copy=False)
                    if p.grad is not None:
                        p.grad = p.grad.astype(dtype, copy=False)
            for name, b in m._buffers.items():
                if b is not None and np.issubdtype(b.dtype, np.floating):
                    m._buffers[name] = b.astype(dtype, copy=False)
        return self

    def float(self):
        return self.to(np.float32)

    def double(self):
        return self.to(np.float64)

    def half(self):
        return self.to(np.float16)

    def apply(self, fn):
        for m in self.children():
            m.apply(fn)
        fn(self)
        return self

    # -- printing -------------------------------------------------------
    def extra_repr(self) -> str:
        return ""

    def _get_name(self) -> str:
        return type(self).__name__

    def __repr__(self) -> str:
        lines = []
        for name, module in self._modules.items():
            child = repr(module).replace("\n", "\n  ")
            lines.append(f"({name}): {child}")
        extra = self.extra_repr()
        if not lines:
            return f"{self._get_name()}({extra})"
        body = "\n  ".join(([extra] if extra else []) + lines)
        return f"{self._get_name()}(\n  {body}\n)"


class Sequential(Module):
    """Modules applied in order; ``backward`` runs the chain in reverse.

    ``Sequential(m0, m1, ...)`` or ``Sequential(OrderedDict(name=module))``;
    children are named "0", "1", ... in the first form, as in PyTorch.
    """

    def __init__(self, *args):
        super().__init__()
        if len(args) == 1 and isinstance(args[0], OrderedDict):
            for name, module in args[0].items():
                self.add_module(name, module)
        else:
            for i, module in enumerate(args):
                self.add_module(str(i), module)

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())

    def __getitem__(self, idx):
        if isinstance(idx, slice):
            return Sequential(OrderedDict(list(self._modules.items())[idx]))
        n = len(self)
        if not -n <= idx < n:
            raise IndexError(f"index {idx} is out of range")
        return list(self._modules.values())[idx % n]

    def append(self, module):
        self.add_module(str(len(self)), module)
        return self

    def forward(self, x):
        for module in self._modules.values():
            x = module(x)
        return x

    def backward(self, grad_output):
        for module in reversed(self._modules.values()):
            grad_output = module.backward(grad_output)
        return grad_output


class ModuleList(Module):
    """A list of modules whose parameters are registered (no forward of its own)."""

    def __init__(self, modules=None):
        super().__init__()
        for m in modules or []:
            self.append(m)

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())

    def __getitem__(self, idx):
        return list(self._modules.values())[idx]

    def append(self, module):
        self.add_module(str(len(self)), module)
        return self
