"""The comparison harness: move weights between twins and measure how far apart they are.

``compare_module`` runs a scratch module and a torch module on the same input,
with the same weights and the same upstream gradient, and returns one
``ErrorRecord`` per tensor: the output, the input gradient, every parameter
gradient and every buffer. ``compare_function`` does the same for a pair of
plain functions, for users checking their own NumPy layer.
"""
from collections import OrderedDict
from dataclasses import asdict, dataclass

import numpy as np
import torch

from torch_ref.nn import torch_dtype

# DESIGN.md, "Tolerances": the largest error relative to the scale of the values.
TOLERANCE = {
    "layer": {np.float64: 1e-10, np.float32: 1e-5},
    "numerical": 1e-7,
    "optim": {np.float64: 1e-12, np.float32: 1e-5},
    "lockstep": 1e-9,
}


def layer_tolerance(dtype) -> float:
    return TOLERANCE["layer"][np.dtype(dtype).type]


# -- state dicts --------------------------------------------------------------
def to_torch(state_dict, device=None) -> "OrderedDict[str, torch.Tensor]":
    """NumPy state dict -> torch state dict: copies, dtypes kept (int64 counters too)."""
    return OrderedDict((k, torch.tensor(np.asarray(v), device=device)) for k, v in state_dict.items())


def to_numpy(state_dict) -> "OrderedDict[str, np.ndarray]":
    """torch state dict -> NumPy state dict: copies on the CPU, dtypes kept."""
    return OrderedDict((k, v.detach().cpu().numpy().copy()) for k, v in state_dict.items())


def copy_weights(scratch_module, torch_module) -> None:
    """Give ``torch_module`` exactly the scratch module's parameters and buffers."""
    torch_module.load_state_dict(to_torch(scratch_module.state_dict()))


# -- errors -------------------------------------------------------------------
@dataclass
class ErrorRecord:
    """How far ``ours`` is from ``reference``, and where the worst element is."""

    tensor: str
    shape: tuple
    dtype: str
    max_abs: float
    max_rel: float  # elementwise |a - b| / |b|, largest over elements with b != 0
    scaled: float  # max_abs / max|b|: the DESIGN.md measure checked against tolerances
    where: tuple  # index of the largest absolute error
    # Float32 checks only: max abs error of ours and of torch's float32 result against the
    # exact answer (torch in float64 on the same float32 inputs and weights).
    float64_error: float = float("nan")
    torch_float64_error: float = float("nan")

    def ok(self, tol: float) -> bool:
        """Within ``tol`` of torch, relative to the scale of the values.

        Where a float32 result is a small difference of large terms (a saturated
        softmax, p - q with p close to q), both twins return round-off of the
        terms and ``scaled`` measures that; such a result still passes when it is
        within twice PyTorch's own float32 error of the exact answer.
        """
        return self.scaled <= tol or self.float64_error <= 2 * self.torch_float64_error

    def as_dict(self) -> dict:
        return asdict(self)

    def __str__(self) -> str:
        return (f"{self.tensor} {self.shape} {self.dtype}: max_abs={self.max_abs:.3g} "
                f"max_rel={self.max_rel:.3g} scaled={self.scaled:.3g} at {self.where}")


def compare_arrays(name: str, ours, reference) -> ErrorRecord:
    """Error of ``ours`` against ``reference`` (arrays or torch tensors of one shape)."""
    a = _numpy(ours)
    b = _numpy(reference)
    if a.shape != b.shape:
        raise ValueError(f"{name}: shape {a.shape} does not match the reference's {b.shape}")
    a64, b64 = a.astype(np.float64).reshape(-1), b.astype(np.float64).reshape(-1)
    err = np.abs(a64 - b64)
    both_nan = np.isnan(a64) & np.isnan(b64)
    err[both_nan | (a64 == b64)] = 0.0  # equal infinities and nans in the same place are agreement
    err[np.isnan(err)] = np.inf
    if err.size == 0:
        return ErrorRecord(name, a.shape, str(a.dtype), 0.0, 0.0, 0.0, ())
    i = int(np.argmax(err))
    where = np.unravel_index(i, a.shape)
    max_abs = float(err[i])
    finite_b = np.abs(b64[np.isfinite(b64)])
    scale = float(finite_b.max(initial=0.0))
    scaled = max_abs / scale if scale > 0 else max_abs
    nonzero = b64 != 0
    max_rel = float((err[nonzero] / np.abs(b64[nonzero])).max(initial=0.0))
    return ErrorRecord(name, a.shape, str(a.dtype), max_abs, max_rel, scaled, tuple(int(i) for i in where))


def _numpy(x) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().numpy()
    return np.asarray(x)


# -- modules ------------------------------------------------------------------
def compare_module(scratch_module, torch_module, x, *args, grad_output=None, seed: int = 0,
                   copy=True) -> list:
    """Run both twins forward and backward from the same weights and upstream gradient.

    ``x`` is the input the gradient is taken for; ``args`` go to both forwards
    unchanged (a loss's target, say). ``grad_output`` defaults to a standard
    normal array drawn from ``seed``. The torch module is cast to ``x``'s dtype,
    put in the scratch module's train/eval mode, and (with ``copy``) given the
    scratch module's weights first.

    Returns ``ErrorRecord``s for "output", "grad_input", "grad_<param>" for each
    parameter and "<buffer>" for each buffer after the forward pass.
    """
    ours, ref, _ = twin_values(scratch_module, torch_module, x, *args, grad_output=grad_output, seed=seed,
                               copy=copy)
    return [compare_arrays(name, value, ref[name]) for name, value in ours.items()]


def twin_values(scratch_module, torch_module, x, *args, grad_output=None, seed: int = 0, copy=True):
    """The tensors ``compare_module`` compares: (scratch values, torch values, upstream gradient G)."""
    x = np.asarray(x)
    torch_module.to(torch_dtype(x.dtype))  # before the copy, so that weights are not rounded on the way
    if copy and hasattr(scratch_module, "state_dict"):
        copy_weights(scratch_module, torch_module)
    if hasattr(scratch_module, "training"):
        torch_module.train(scratch_module.training)
    if hasattr(scratch_module, "zero_grad"):
        scratch_module.zero_grad()
    out = scratch_module(x, *args)
    G = _upstream(grad_output, out, seed)
    ours = OrderedDict(output=np.asarray(out), grad_input=scratch_module.backward(G))
    if hasattr(scratch_module, "named_parameters"):
        for name, p in scratch_module.named_parameters():
            ours[f"grad_{name}"] = np.zeros_like(p.data) if p.grad is None else p.grad
        for name, b in scratch_module.named_buffers():
            ours[name] = b
    return ours, torch_values(torch_module, x, *args, grad_output=G), G


def torch_values(torch_module, x, *args, grad_output) -> "OrderedDict[str, np.ndarray]":
    """Forward and backward of a torch module in ``x``'s dtype: output, grad_input, grad_<param>, buffers."""
    x = np.asarray(x)
    torch_module.to(torch_dtype(x.dtype))
    torch_module.zero_grad(set_to_none=True)
    x_t = torch.tensor(x, requires_grad=True)
    args_t = [torch.tensor(np.asarray(a)) if isinstance(a, np.ndarray) else a for a in args]
    out_t = torch_module(x_t, *args_t)
    out_t.backward(torch.tensor(np.asarray(grad_output), dtype=out_t.dtype))
    values = OrderedDict(output=_numpy(out_t), grad_input=_numpy(x_t.grad))
    for name, p in torch_module.named_parameters():
        values[f"grad_{name}"] = np.zeros(tuple(p.shape), dtype=x.dtype) if p.grad is None else _numpy(p.grad)
    for name, b in torch_module.named_buffers():
        values[name] = _numpy(b)
    return values


def compare_function(forward, backward, torch_fn, *inputs, grad_output=None, seed: int = 0) -> list:
    """Check a hand-written NumPy function and its backward against a torch function.

    ``forward(*inputs) -> out``; ``backward(G) -> dL/d(input)`` or a tuple with
    one gradient per input; ``torch_fn(*tensors) -> out``. Every floating input
    gets a gradient. Returns ``ErrorRecord``s for "output" and "grad_input<i>".
    """
    inputs = [np.asarray(v) for v in inputs]
    tensors = [torch.tensor(v, requires_grad=np.issubdtype(v.dtype, np.floating)) for v in inputs]
    out_t = torch_fn(*tensors)
    out = forward(*inputs)
    G = _upstream(grad_output, out, seed)
    out_t.backward(torch.tensor(G, dtype=out_t.dtype))
    grads = backward(G)
    if not isinstance(grads, (tuple, list)):
        grads = (grads,)
    records = [compare_arrays("output", out, out_t)]
    floating = [t for t in tensors if t.requires_grad]
    if len(grads) != len(floating):
        raise ValueError(f"backward returned {len(grads)} gradients for {len(floating)} floating inputs")
    for i, (g, t) in enumerate(zip(grads, floating)):
        records.append(compare_arrays(f"grad_input{i}", g, t.grad))
    return records


def _upstream(grad_output, out, seed):
    out = np.asarray(out)
    if grad_output is not None:
        return np.asarray(grad_output, dtype=out.dtype)
    return np.random.default_rng(seed).standard_normal(out.shape).astype(out.dtype)


def worst(records) -> ErrorRecord:
    """The record with the largest scaled error."""
    return max(records, key=lambda r: r.scaled)
