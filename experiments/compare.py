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

# docs/design.md, "Tolerances": the largest error relative to the scale of the values.
TOLERANCE = {
    "layer": {np.float64: 1e-10, np.float32: 1e-5},
    "numerical": 1e-7,
    "optim": {np.float64: 1e-12, np.float32: 1e-5},
    "lockstep": 1e-9,
    # a run's final metrics against the reference report's, same settings (experiments.index.reference_verdict)
    "reproduce": {np.float64: 1e-9, np.float32: 1e-5},
}


def layer_tolerance(dtype) -> float:
    return TOLERANCE["layer"][np.dtype(dtype).type]


def lockstep_tolerance(dtype):
    """The lockstep bound on the twins' relative loss difference in ``dtype``: TOLERANCE["lockstep"] in
    float64; None in float32, where training amplifies round-off and the float64 shadow judges instead."""
    return TOLERANCE["lockstep"] if np.dtype(dtype) == np.float64 else None


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
    max_abs: float  # torch.testing's "greatest absolute difference": max |a - b|
    max_rel: float  # torch.testing's "greatest relative difference": max |a - b| / |b| over elements with b != 0
    # max_abs / max|b|: the docs/design.md measure checked against the tolerances (scratch.numerical.gradcheck's
    # records and the checker's call it "scaled" too)
    scaled: float
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
    _require_module(scratch_module, torch_module, copy)
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


def _require_module(scratch_module, torch_module, copy) -> None:
    """Refuse what compare_module cannot compare honestly: never a report without the weights copied."""
    state = list(torch_module.state_dict())
    needs = ["__call__", "backward"]
    if state:
        needs += ["named_parameters", "named_buffers"] + (["state_dict"] if copy else [])
    missing = [m for m in needs if not callable(getattr(scratch_module, m, None))]
    if missing:
        what = f", so torch's {', '.join(state)} cannot be copied into it and its gradients cannot be read" \
            if state else ""
        raise TypeError(f"compare_module: {type(scratch_module).__name__} has no {', '.join(missing)}{what}; "
                        "for a layer with parameters as attributes (the book's W, b, dW, db) use "
                        "experiments.check.check_layer(layer, torch_module, x)")


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
    gets a gradient. ``forward`` runs before ``torch_fn``. ``grad_output``
    defaults to ``numpy.random.default_rng(seed).standard_normal(out.shape)``: an
    input drawn from that same call would make G a copy of it, so draw inputs
    elsewhere. Returns ``ErrorRecord``s for "output" and "grad_input<i>".

    For a layer class (weights as attributes, labels that take no gradient, a
    verdict and a diagnosis) use ``experiments.check.check_layer``.
    """
    inputs = [np.asarray(v) for v in inputs]
    tensors = [torch.tensor(v, requires_grad=np.issubdtype(v.dtype, np.floating)) for v in inputs]
    out = forward(*inputs)  # first: a torch_fn that reads the layer's dropout mask needs this forward's draw
    out_t = torch_fn(*tensors)
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


# -- nearest-neighbour sampling -------------------------------------------------
# docs/design.md, "Machine independence": where an output pixel's source coordinate
# lies within a few ulps of a rounding tie, which neighbour it takes depends on how
# the machine rounded the grid (torch's grid is a BLAS product: fused multiply-adds
# on one CPU, separate roundings on another). Such pixels are counted and reported;
# every other pixel must be equal.
@dataclass
class SamplingRecord:
    """Nearest-neighbour sampling of two twins compared pixel by pixel, rounding ties apart."""

    tensor: str
    values: int  # output values compared
    ties: int  # values whose source coordinate lies within `band` pixels of a rounding tie
    ties_differ: int  # of those, values where the twins took different neighbours
    unexplained: int  # tie values that are no neighbour's value in either twin (never expected)
    differ: int  # values away from every tie that differ (must be 0)
    where: tuple  # the first value that differs away from the ties, or is unexplained
    band: float  # in pixels

    @property
    def ok(self) -> bool:
        return self.differ == 0 and self.unexplained == 0

    def as_dict(self) -> dict:
        return asdict(self)

    def __str__(self) -> str:
        return (f"{self.tensor}: {self.differ} of {self.values} values differ away from rounding ties, "
                f"{self.ties} values lie within {self.band:.1e} px of a tie ({self.ties_differ} of them "
                f"differ, {self.unexplained} unexplained)" + (f"; first difference at {self.where}"
                                                              if not self.ok else ""))


def source_coordinates(theta, height: int, width: int):
    """Exact (float64) source coordinates ``(ix, iy)``, each ``(N, H, W)``, of every output pixel.

    ``theta``: ``(N, 2, 3)`` inverse affine matrices as the sampler received them
    (rounded to its dtype). Pixel ``(i, j)`` has its centre at ``x = j - (W - 1) / 2``,
    ``y = i - (H - 1) / 2``; ``affine_grid`` + ``grid_sample(align_corners=False)``
    read it from ``ix = theta[0] . (x, y, 1) + (W - 1) / 2`` and likewise ``iy``.
    """
    theta = np.asarray(theta, dtype=np.float64)
    x = (np.arange(width) - (width - 1) / 2)[None, None, :]
    y = (np.arange(height) - (height - 1) / 2)[None, :, None]
    t = theta[:, :, :, None, None]
    ix = t[:, 0, 0] * x + t[:, 0, 1] * y + t[:, 0, 2] + (width - 1) / 2
    iy = t[:, 1, 0] * x + t[:, 1, 1] * y + t[:, 1, 2] + (height - 1) / 2
    return ix, iy


def compare_nearest(name: str, ours, reference, image, ix, iy, fill=None, ulps: int = 8) -> SamplingRecord:
    """Compare two nearest-neighbour warps of ``image``, away from rounding ties exactly.

    Args:
        ours, reference: ``(N, C, H', W')`` outputs.
        image: ``(N, C, H, W)`` the input both sampled.
        ix, iy: ``(N, H', W')`` exact source coordinates (:func:`source_coordinates`).
        fill: the value read outside the image (None: 0; a number or one per channel).
        ulps: half-width of the tie band, in ulps of the sampling dtype at the image's
            size (float32 for integer images): ``band = ulps * eps * max(H, W)`` pixels.

    A value is "at a tie" when a source coordinate lies within ``band`` of ``k + 1/2``;
    there either neighbour is a correct answer, and both twins must give one of them.
    """
    a, b, img = _numpy(ours).astype(np.float64), _numpy(reference).astype(np.float64), _numpy(image)
    if a.shape != b.shape or a.ndim != 4 or img.ndim != 4 or a.shape[:2] != img.shape[:2]:
        raise ValueError(f"{name}: expected ours and reference (N, C, H', W') and image (N, C, H, W) of the same "
                         f"N and C, got {a.shape}, {b.shape} and {img.shape}")
    if np.shape(ix) != (a.shape[0],) + a.shape[2:] or np.shape(iy) != np.shape(ix):
        raise ValueError(f"{name}: ix and iy must have shape {(a.shape[0],) + a.shape[2:]}, got "
                         f"{np.shape(ix)} and {np.shape(iy)}")
    n, c, h, w = img.shape
    work = img.dtype if np.issubdtype(img.dtype, np.floating) else np.dtype(np.float32)
    band = ulps * float(np.finfo(work).eps) * max(h, w)
    outside = np.zeros((1, c, 1, 1)) if fill is None else np.broadcast_to(
        np.asarray(fill, dtype=np.float64).reshape(1, -1, 1, 1), (1, c, 1, 1))
    flat = img.reshape(n, c, h * w).astype(np.float64)

    def neighbours(coord):
        low = np.floor(coord)
        tie = np.abs(coord - low - 0.5) <= band
        return (np.where(tie, low, np.rint(coord)), np.where(tie, low + 1, np.rint(coord))), tie

    xs, tie_x = neighbours(np.asarray(ix, dtype=np.float64))
    ys, tie_y = neighbours(np.asarray(iy, dtype=np.float64))
    candidates = []
    for xc in xs:
        for yc in ys:
            inside = ((xc >= 0) & (xc <= w - 1) & (yc >= 0) & (yc <= h - 1))[:, None]
            index = (np.where(inside[:, 0], yc, 0) * w + np.where(inside[:, 0], xc, 0)).astype(np.intp)
            picked = np.take_along_axis(flat, index.reshape(n, 1, -1), axis=2).reshape(a.shape)
            candidates.append(np.where(inside, picked, outside))
    def equal(x, y):
        return (x == y) | (np.isnan(x) & np.isnan(y))

    def a_neighbours(x):
        return np.logical_or.reduce([equal(x, v) for v in candidates])

    tie = np.broadcast_to((tie_x | tie_y)[:, None], a.shape)
    same = equal(a, b)
    bad_off = ~same & ~tie
    bad_tie = tie & ~(a_neighbours(a) & a_neighbours(b))
    bad = np.argwhere(bad_off | bad_tie)
    return SamplingRecord(name, int(a.size), int(tie.sum()), int((tie & ~same).sum()), int(bad_tie.sum()),
                          int(bad_off.sum()), tuple(int(i) for i in bad[0]) if len(bad) else (), band)
