"""The one way of running torch: forward and backward of a module or function on the checker's inputs."""
import copy
from collections import OrderedDict

import numpy as np
import torch
from torch import nn

from experiments.check.adapters import is_dropout
from experiments.check.results import TensorRecord
from experiments.compare import compare_arrays
from torch_ref.nn import torch_dtype


def torch_name(counterpart) -> str:
    """torch.nn.Linear, torch.sigmoid, torch.nn.functional.cross_entropy..."""
    if getattr(counterpart, "label", None):  # the checker's own wrappers name what they run
        return counterpart.label
    if isinstance(counterpart, nn.Module):
        cls = type(counterpart)
        return f"torch.nn.{cls.__name__}" if cls.__module__.startswith("torch.nn") else cls.__name__
    mod = getattr(counterpart, "__module__", None) or "torch"
    name = getattr(counterpart, "__name__", None) or repr(counterpart)
    return f"{mod}.{name}" if mod.startswith("torch") else name



def output_shape(counterpart, inputs, dtype, train) -> tuple:
    """The shape of torch's output on these inputs (a copy of the module runs: its statistics stay)."""
    module = copy.deepcopy(counterpart) if isinstance(counterpart, nn.Module) else counterpart
    if is_dropout(module):
        return np.shape(inputs[0])
    values = torch_run(module, inputs, [], None, dtype, train)
    return values["output"].shape


def torch_run(counterpart, inputs, diff, G, dtype, train, keep=None):
    """torch forward and backward: output, input<i>.grad for the differentiable inputs, <param>.grad, buffers."""
    tensors = [torch.tensor(np.asarray(v).astype(dtype) if np.issubdtype(np.asarray(v).dtype, np.floating)
                            else np.asarray(v), requires_grad=i in diff) for i, v in enumerate(inputs)]
    module = counterpart if isinstance(counterpart, nn.Module) else None
    if module is not None:
        module.to(torch_dtype(dtype))
        module.train(bool(train))
        module.zero_grad(set_to_none=True)
    if module is not None and is_dropout(module) and train:
        # torch.nn.Dropout's rule with the layer's own mask: y = x * keep / (1 - p), zeros when p = 1.
        p = module.p
        scale = torch.tensor(keep, dtype=tensors[0].dtype) * (0.0 if p == 1 else 1 / (1 - p))
        out = tensors[0] * scale
    else:
        out = counterpart(*tensors)
    if out.requires_grad and G is not None:
        out.backward(torch.tensor(np.asarray(G), dtype=out.dtype))
    values = OrderedDict(output=out.detach().numpy())
    for i in diff:
        g = tensors[i].grad
        values[f"input{i}.grad"] = np.zeros(np.shape(inputs[i]), dtype) if g is None else g.numpy()
    if module is not None:
        for name, p in module.named_parameters():
            values[name + ".grad"] = np.zeros(tuple(p.shape), dtype) if p.grad is None else p.grad.numpy()
        for name, b in module.named_buffers():
            values[name] = b.detach().numpy().copy()
    return values



class Run:
    """One configuration's torch side, re-runnable under a hypothesis (another eps, another reference)."""

    def __init__(self, layer, module, snapshot, inputs, diff, G, dtype, train, keep, pairs, transposed, tol,
                 atol=0.0):
        self.__dict__.update(locals())
        del self.__dict__["self"]

    def torch_values(self, dtype=None, G=None, **overrides):
        module = copy.deepcopy(self.snapshot) if isinstance(self.snapshot, nn.Module) else self.snapshot
        for k, v in overrides.items():
            setattr(module, k, v)
        dtype = dtype or self.dtype
        G = self.G if G is None else G
        values = torch_run(module, self.inputs, self.diff, np.asarray(G).astype(dtype), dtype, self.train, self.keep)
        return OrderedDict((u, layout(values[t], u in self.transposed)) for u, t in self.pairs.items())

    def reference(self, **overrides):
        return self.torch_values(**overrides)

    def ok(self, error) -> bool:
        """The one rule: within ``tol`` scaled (float32: or as accurate as torch against torch's float64,
        experiments.shadow's ratio), or within ``atol`` absolute when the caller gave one."""
        return error.ok(self.tol) or error.max_abs <= self.atol

    def failing(self, ours, ref) -> set:
        return {r.name for r in self.records(ours, ref) if not r.ok}

    def records(self, ours, ref) -> list:
        exact = self.torch_values(np.float64) if self.dtype == np.float32 else None
        records = []
        for name, value in ours.items():
            value = np.asarray(value)
            against = self.pairs[name] + (".T" if name in self.transposed else "")
            if against.startswith("input"):  # torch's x.grad, by the name of forward's argument
                against = name[1:] + ".grad"
            if value.shape != ref[name].shape:
                records.append(TensorRecord(name, against, value.shape, str(value.dtype), float("inf"),
                                            float("inf"), (), self.tol, "shape"))
                continue
            e = compare_arrays(name, value, ref[name])
            if exact is not None:
                e.float64_error = compare_arrays(name, value, exact[name]).max_abs
                e.torch_float64_error = compare_arrays(name, ref[name], exact[name]).max_abs
            records.append(TensorRecord(name, against, e.shape, e.dtype, e.max_abs, e.scaled, e.where, self.tol,
                                        "ok" if self.ok(e) else "FAIL", e.float64_error,
                                        e.torch_float64_error))
        return records


def layout(value, transpose):
    return value.T if transpose else value
