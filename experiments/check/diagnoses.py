"""Explanations of a disagreement with torch, each measured on the layer's tensors.

Torch is the judge: nothing here runs unless a tensor already disagrees with torch, and nothing here turns a
tensor that agrees into a failure. Three registered lists, tried in order:

1. ``VARIANT_TESTS``: a named variant (the book's eps inside the log, non-inverted dropout...) is applied to
   torch's reference; it is kept when it makes a failing tensor agree and no other fail. A layer whose every
   tensor agrees once its variants are applied "differs by design"; a bug on top is diagnosed against the
   reference with the variants applied.
2. ``LAYER_DIAGNOSES`` (whole-layer hypotheses: swapped gradients, sigmoid's backward from the input, a
   softmax over the whole batch) and ``TENSOR_DIAGNOSES`` (one tensor against torch's: NaN/inf, shape,
   transpose, a difference only at a kink or a tie, a factor, another zero pattern).
3. The dot-product test (``experiments.check.adjoint``), for what is still unexplained.
"""
from collections import OrderedDict

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from experiments.check.adapters import is_dropout
from experiments.check.adjoint import adjoint_failures
from experiments.check.results import Diagnosis
from experiments.compare import compare_arrays, layer_tolerance

# The by-design variants a layer may differ by: code -> what it is (assert_matches_torch(accept=[code, ...])).
VARIANTS = OrderedDict([
    ("log-eps", "an epsilon inside the loss's log, -log(y + eps) (the book's 1e-7)"),
    ("loss-dout-1", "a loss backward that returns the gradient for dout = 1 whatever dout is (the book's)"),
    ("non-inverted-dropout", "dropout without 1/(1-p) in training and x*(1-p) at eval (the book's)"),
    ("bn-eps", "another eps under BatchNorm's square root (the book's 1e-6 = 10e-7)"),
    ("biased-running-var", "the biased batch variance in running_var (the book's)"),
    ("running-var-from-0", "running_var started at 0 where torch starts from 1"),
    ("float64-inside", "float64 results from float32 inputs (the book's float64 im2col buffers)"),
])


def diagnose(result, run, ours, ref, slots, state, rng):
    """Explain the tensors that disagree with torch; add to ``result.diagnoses`` / ``result.unexplained``."""
    add = result.diagnoses.append
    failing = run.failing(ours, ref) - _dtype_finding(result, run, ours, ref)
    order = list(ours).index
    for test in VARIANT_TESTS:
        if not failing:
            break
        found = _quietly(test, run, ours, ref, failing, slots)
        if found is None:
            continue
        d, candidate = found
        now = run.failing(ours, candidate)
        if now < failing:  # it explains a tensor and breaks none
            add(d)
            ref, failing = candidate, now
    explained = set()
    for test in LAYER_DIAGNOSES:
        if failing - explained:
            d = _quietly(test, run, ours, ref, failing - explained)
            if d is not None:
                add(d)
                explained |= set(d.tensors)
    for name in sorted(failing - explained, key=order):
        for test in TENSOR_DIAGNOSES:
            d = _quietly(test, name, run, ours, ref)
            if d is not None:
                add(d)
                explained.add(name)
                break
    left = sorted(failing - explained, key=order)
    adjoint = adjoint_failures(run, ours, slots, state, rng) if left and run.diff else {}
    if adjoint is None:
        adjoint = {}
        result.notes.append("dot-product test not run: the forward is not repeatable with np.random's state "
                            "replayed, does not compute in float64, or fails on float64 copies")
    for name in left:  # the dot-product test only explains a tensor torch already failed
        if name in adjoint:
            add(Diagnosis("adjoint", "bug", adjoint[name], (name,)))
        else:
            r = compare_arrays(name, np.asarray(ours[name], np.float64), np.asarray(ref[name], np.float64))
            result.unexplained.append(f"{name} differs from torch's by {r.scaled:.2g} (scaled) at {r.where}, "
                                      "cause not identified")


def _quietly(test, *args):
    """A diagnosis that cannot be measured on these tensors makes no claim (it never ends the check)."""
    try:
        with np.errstate(all="ignore"):
            return test(*args)
    except Exception:  # noqa: BLE001
        return None


def _dtype_finding(result, run, ours, ref) -> set:
    """float32 in, float64 out is the book's im2col (by design while the values agree); a lower precision out
    than in is a bug, and explains the tensors it leaves within that precision's tolerance. Either is the
    headline. Returns the tensors it explains."""
    changed = [n for n, v in ours.items() if np.issubdtype(np.asarray(v).dtype, np.floating)
               and np.asarray(v).dtype != run.dtype]
    if not changed:
        return set()
    got = np.asarray(ours[changed[0]]).dtype
    text = f"dtype: {np.dtype(run.dtype)} in, {got} out ({', '.join(changed)})"
    if got.itemsize > np.dtype(run.dtype).itemsize:
        d = Diagnosis("float64-inside", "design", text + ": computes in float64 (as the book's im2col buffers do)",
                      tuple(changed))
    else:
        d = Diagnosis("dtype", "bug", text + f": computed in {got}, less precise than the input's dtype",
                      tuple(changed))
    result.diagnoses.insert(0, d)
    if d.kind != "bug":
        return set()
    tol = layer_tolerance(got) if got in (np.float32, np.float64) else 0.0
    return {n for n in changed if np.shape(ours[n]) == np.shape(ref[n])
            and compare_arrays(n, np.asarray(ours[n]), np.asarray(ref[n])).scaled <= tol}


# -- by-design variants: (run, ours, ref, failing, slots) -> (Diagnosis, torch's reference with it) or None ----
def _grads(ours):
    return [n for n in ours if n != "out" and n.startswith("d")]


def _non_inverted_dropout(run, ours, ref, failing, slots):
    m = run.module
    if not (is_dropout(m) and 0 < m.p < 1):
        return None
    q = 1 - m.p
    mode = "train" if run.train else "eval"
    new = OrderedDict((k, v * q if k == "out" or k in _grads(ours) else v) for k, v in ref.items())
    return Diagnosis("non-inverted-dropout", "design", f"non-inverted dropout: out, dx are (1 - p) = {q:g} times "
                     f"torch's in {mode} mode (the book's: no 1/(1-p) in training, x*(1-p) at eval; torch scales "
                     "by 1/(1-p) in training and passes x at eval)", ("out",) + tuple(_grads(ours))), new


def _loss_dout_1(run, ours, ref, failing, slots):
    G = np.asarray(run.G)
    if G.ndim != 0 or float(G) == 0 or not set(_grads(ours)) & failing:
        return None
    new = OrderedDict((k, v / float(G) if k in _grads(ours) else v) for k, v in ref.items())
    return Diagnosis("loss-dout-1", "design", f"{', '.join(_grads(ours))} ignores the upstream gradient: "
                     f"backward(dout) returns the gradient for dout = 1 whatever dout is (dout was {float(G):.3g}); "
                     "right only when the loss is the last layer, as the book calls it", tuple(_grads(ours))), new


def _cross_entropy_parts(run):
    """(x, labels as a one-hot float64 array) for a cross-entropy check, or None."""
    m = run.module
    ce = (isinstance(m, nn.CrossEntropyLoss) and m.reduction == "mean" and m.weight is None
          and m.label_smoothing == 0) or m is F.cross_entropy
    if not ce or len(run.inputs) < 2:
        return None
    x = np.asarray(run.inputs[0], dtype=np.float64)
    t = np.asarray(run.inputs[1])
    if x.ndim != 2:
        return None
    onehot = np.eye(x.shape[1])[t] if np.issubdtype(t.dtype, np.integer) else t.astype(np.float64)
    return x, onehot


def _log_eps(run, ours, ref, failing, slots):
    """The epsilon inside the loss's log: solve -sum(t log(y + eps)) / N = the layer's loss for eps."""
    parts = _cross_entropy_parts(run)
    if parts is None or "out" not in failing or np.ndim(ours["out"]) != 0:
        return None
    x, t = parts
    z = x - x.max(axis=1, keepdims=True)
    p = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)

    def loss(e):
        return float(-np.sum(t * np.log(p + e)) / len(x))
    target = float(ours["out"])
    lo, hi = -30.0, 0.0
    if not loss(10 ** hi) < target < loss(10 ** lo):
        return None
    for _ in range(200):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if loss(10 ** mid) > target else (lo, mid)
    estimate = 10 ** lo
    e = float(f"{estimate:.0e}")
    e = e if abs(loss(e) - target) <= max(run.tol, 1e-12) * abs(target) else estimate
    shift = (target - loss(0.0)) / abs(loss(0.0))
    new = OrderedDict(ref)
    new["out"] = np.asarray(loss(e), dtype=np.asarray(ref["out"]).dtype)
    return Diagnosis("log-eps", "design", f"out: the loss has eps = {e:.3g} inside its log, -log(y + {e:.3g}) "
                     f"(solved from the loss, {shift:.2g} relative to torch's); torch's cross_entropy has none",
                     ("out",)), new


def _bn_eps(run, ours, ref, failing, slots):
    """Estimate the layer's epsilon from how its output moves with the variance of each channel."""
    m = run.snapshot
    if not isinstance(m, nn.modules.batchnorm._BatchNorm) or "out" not in failing:
        return None
    x = np.asarray(run.inputs[0], dtype=np.float64)
    axes = (0,) + tuple(range(2, x.ndim))
    gamma = m.weight.detach().double().numpy() if m.affine else np.ones(x.shape[1])
    beta = m.bias.detach().double().numpy() if m.affine else np.zeros(x.shape[1])
    if run.train or not m.track_running_stats:
        mean, var = x.mean(axis=axes), x.var(axis=axes)
    else:
        mean, var = m.running_mean.double().numpy(), m.running_var.double().numpy()
    shape = (1, -1) + (1,) * (x.ndim - 2)
    xc = x - mean.reshape(shape)
    xhat = (np.asarray(ours["out"], dtype=np.float64) - beta.reshape(shape)) / gamma.reshape(shape)
    with np.errstate(all="ignore"):
        s = np.sum(xc * xc, axis=axes) / np.sum(xc * xhat, axis=axes)  # sqrt(var + eps), channel by channel
        eps = s * s - var
    if not np.all(np.isfinite(eps)):
        return None
    estimate = float(np.median(eps))
    if abs(estimate) <= 1e-9 * float(var.max()):  # round-off of an eps of 0
        candidate = 0.0
    elif estimate > 0:
        candidate = float(f"{estimate:.0e}")
        if not failing > run.failing(ours, run.reference(eps=candidate)):
            candidate = float(f"{estimate:.3g}")
    else:
        return None
    # torch refuses eps = 0 in training; the smallest positive float leaves sqrt(var + eps) = sqrt(var)
    new = run.reference(eps=candidate or float(np.finfo(np.float64).tiny))
    for k in ref:  # the variants found before (none yet for BatchNorm) stay applied
        if k not in new:
            new[k] = ref[k]
    if candidate == 0:
        return Diagnosis("bn-no-eps", "bug", f"no eps under the square root (torch's is {m.eps:g}): torch with "
                         "eps=0 matches; a channel of equal values divides by zero", ("out",)), new
    spread = float(np.ptp(eps) / estimate) if eps.size > 1 else 0.0
    return Diagnosis("bn-eps", "design", f"eps = {candidate:g} under the square root (torch's is {m.eps:g}): "
                     f"estimated {estimate:.3g} from the output's error channel by channel (variances "
                     f"{var.min():.3g} to {var.max():.3g}, estimates within {spread:.1%}); torch with "
                     f"eps={candidate:g} reproduces the layer", ("out",)), new


def _running_var(run, ours, ref, failing, slots):
    name = {s.torch: s.user for s in slots if s.buffer}.get("running_var")
    m = run.snapshot
    if name not in failing or not run.train or m.momentum is None:
        return None
    x = np.asarray(run.inputs[0], dtype=np.float64)
    axes = (0,) + tuple(range(2, x.ndim))
    n = x.size // x.shape[1]
    var_b = x.var(axis=axes)
    var_u = var_b * n / max(n - 1, 1)
    old = m.running_var.double().numpy()
    mom = m.momentum
    u = np.asarray(ours[name], dtype=np.float64)
    cands = [
        ("biased-running-var", "biased batch variance (N/(N-1) left out)", (1 - mom) * old + mom * var_b),
        ("running-var-from-0", "running_var started at 0 instead of the 1 torch starts from (unbiased batch "
         "variance)", mom * var_u),
        ("running-var-from-0", "running_var started at 0 instead of the 1 torch starts from, with the biased "
         "batch variance", mom * var_b),
    ]
    for code, text, value in cands:
        if compare_arrays(name, u, value).scaled <= max(run.tol, 1e-12) * 10:
            ratio = float(np.median((u - (1 - mom) * old) / (np.asarray(ref[name], np.float64) - (1 - mom) * old)))
            new = OrderedDict(ref)
            new[name] = value.astype(np.asarray(ref[name]).dtype)
            return Diagnosis(code, "design", f"{name}: {text}; measured (new - (1-momentum) * old) / torch's = "
                             f"{ratio:.4g} (N = {n}: (N-1)/N = {(n - 1) / n:.4g})", (name,)), new
    return None


VARIANT_TESTS = [_non_inverted_dropout, _log_eps, _loss_dout_1, _bn_eps, _running_var]


# -- whole-layer hypotheses: (run, ours, ref, failing) -> Diagnosis or None ------------------------------------
def _close(u, t, run) -> bool:
    u, t = np.asarray(u, np.float64), np.asarray(t, np.float64)
    return u.shape == t.shape and compare_arrays("", u, t).scaled <= max(run.tol, 1e-12) * 10


def _swapped(run, ours, ref, failing):
    """Two inputs' gradients exchanged (MulLayer's dx = dout * x instead of dout * y)."""
    grads = [n for n in _grads(ours) if n in failing][:len(run.diff)]
    for i, a in enumerate(grads):
        for b in grads[i + 1:]:
            if _close(ours[a], ref[b], run) and _close(ours[b], ref[a], run):
                return Diagnosis("swapped", "bug", f"{a} and {b} are swapped: {a} equals torch's {b} and {b} "
                                 f"torch's {a} (for x * y: dx = dout * y, dy = dout * x)", (a, b))
    return None


def _activation_from_input(run, ours, ref, failing):
    """Sigmoid's / tanh's backward written with the input x where the output y belongs."""
    m = run.module
    kind = "sigmoid" if isinstance(m, nn.Sigmoid) or m is torch.sigmoid else \
        "tanh" if isinstance(m, nn.Tanh) or m is torch.tanh else None
    grads = _grads(ours)
    if kind is None or not grads or grads[0] not in failing:
        return None
    x, G = np.asarray(run.inputs[0], np.float64), np.asarray(run.G, np.float64)
    wrong = G * x * (1 - x) if kind == "sigmoid" else G * (1 - x * x)
    rule = "dout * y * (1 - y)" if kind == "sigmoid" else "dout * (1 - y**2)"
    if _close(ours[grads[0]], wrong, run):
        return Diagnosis("from-input", "bug", f"{grads[0]} is computed from the input x where {kind}'s backward "
                         f"needs the output y = {kind}(x): {rule}, not with x", (grads[0],))
    return None


def _whole_batch_softmax(run, ours, ref, failing):
    """A 1-D softmax applied to a batch: exp(x) / sum(exp(x)) over every element, not row by row."""
    parts = _cross_entropy_parts(run)
    if parts is None or "out" not in failing or np.ndim(ours["out"]) != 0:
        return None
    x, t = parts
    y = np.exp(x - x.max())
    y = y / y.sum()
    for eps in (0.0, 1e-7):
        if abs(float(-np.sum(t * np.log(y + eps)) / len(x)) - float(ours["out"])) <= 1e-6 * abs(float(ours["out"])):
            return Diagnosis("whole-batch-softmax", "bug", "the softmax is taken over the whole batch (a 1-D "
                             "softmax, sum over every element) instead of row by row: the loss matches "
                             f"-sum(t log(softmax(x.ravel()) + {eps:g})) / N", ("out",) + tuple(
                                 n for n in _grads(ours) if n in failing))
    return None


def _float32_precision(run, ours, ref, failing):
    """float64 in and out, but every failing tensor agrees with torch only to float32's tolerance."""
    if run.dtype != np.float64:
        return None
    errors = {n: compare_arrays(n, np.asarray(ours[n], np.float64), np.asarray(ref[n], np.float64)).scaled
              for n in failing if np.shape(ours[n]) == np.shape(ref[n])}
    if len(errors) != len(failing) or not all(e <= layer_tolerance(np.float32) for e in errors.values()):
        return None
    names = sorted(errors, key=list(ours).index)
    return Diagnosis("precision", "bug", f"{', '.join(names)} agree with torch's float64 only to float32's "
                     f"precision (scaled errors up to {max(errors.values()):.2g}, float64's tolerance "
                     f"{run.tol:g}): the layer computes in float32 somewhere inside", tuple(names))


LAYER_DIAGNOSES = [_swapped, _activation_from_input, _whole_batch_softmax, _float32_precision]


# -- one tensor against torch's: (name, run, ours, ref) -> Diagnosis or None ---------------------------------
def _nonfinite(name, run, ours, ref):
    u, t = np.asarray(ours[name], np.float64), np.asarray(ref[name], np.float64)
    if u.shape != t.shape:
        return None
    bad = ~np.isfinite(u) & np.isfinite(t)
    if not bad.any():
        return None
    where = tuple(int(i) for i in np.argwhere(bad)[0]) if u.ndim else ()
    kinds = " and ".join(k for k, f in (("NaN", np.isnan), ("inf", np.isinf)) if f(u[bad]).any())
    return Diagnosis("nonfinite", "bug", f"{name} has {kinds} at {where} ({int(bad.sum())} of {u.size} "
                     "element(s)) where torch's is finite", (name,))


def _shape(name, run, ours, ref):
    u, t = np.asarray(ours[name], np.float64), np.asarray(ref[name], np.float64)
    tol = max(run.tol, 1e-12)
    if u.shape != t.shape:
        if u.ndim == 2 and u.shape == t.shape[::-1] and compare_arrays(name, u.T, t).scaled <= tol:
            return Diagnosis("transpose", "bug", f"{name} is transposed: shape {u.shape}, the right gradient "
                             f"is {t.shape} (the transpose of the right one)", (name,))
        if u.size == t.size and compare_arrays(name, u.reshape(t.shape), t).scaled <= tol:
            return Diagnosis("shape", "bug", f"{name} has shape {u.shape}, torch's {t.shape}: the right values, "
                             f"not reshaped back to the input's shape", (name,))
        return Diagnosis("shape", "bug", f"{name} has shape {u.shape}, torch's {t.shape}", (name,))
    if u.ndim == 2 and u.shape[0] == u.shape[1] and u.size > 1 and compare_arrays(name, u.T, t).scaled <= tol \
            and compare_arrays(name, u, t).scaled > tol:
        return Diagnosis("transpose", "bug", f"{name} is transposed (equal to the transpose of torch's)", (name,))
    return None


def _differ(name, run, ours, ref):
    u, t = np.asarray(ours[name], np.float64), np.asarray(ref[name], np.float64)
    scale = max(float(np.max(np.abs(t), initial=0.0)), 1e-300)
    return np.abs(u - t) > max(run.tol, 1e-12) * scale


def _kink(name, run, ours, ref):
    """dx differs only where x is exactly 0: ReLU's convention at its kink."""
    m = run.module
    relu = isinstance(m, nn.ReLU) or m in (torch.relu, F.relu)
    if not relu or name != next(iter(_grads(ours)), None):
        return None
    x = np.asarray(run.inputs[0])
    if np.shape(ours[name]) != x.shape:
        return None
    differ = _differ(name, run, ours, ref)
    if not differ.any() or not np.all(x[differ] == 0):
        return None
    passes = np.allclose(np.asarray(ours[name])[differ], np.asarray(run.G)[differ])
    also = ", and the layer passes dout there (a mask x < 0 where x <= 0 belongs)" if passes else ""
    return Diagnosis("kink", "bug", f"{name} differs from torch's only where x == 0 ({int(differ.sum())} "
                     f"element(s)): at ReLU's kink torch's convention is relu'(0) = 0{also}", (name,))


def _tie(name, run, ours, ref):
    """dx differs only at tied maxima of pooling windows: torch sends a window's gradient to its first maximum."""
    m = run.module
    if not isinstance(m, nn.MaxPool2d) or name != next(iter(_grads(ours)), None):
        return None
    x = np.asarray(run.inputs[0], np.float64)
    found = tied_maxima(m, x)
    if found is None or np.shape(ours[name]) != x.shape:
        return None
    tied, windows = found
    differ = _differ(name, run, ours, ref)
    if not differ.any() or not np.all(tied[differ]):
        return None
    return Diagnosis("tie", "bug", f"{name} differs from torch's only at tied maxima ({int(differ.sum())} "
                     f"element(s), {windows} window(s) with a tie): torch sends a window's gradient to its first "
                     "maximum (row by row), the layer to another or to every tied one", (name,))


def tied_maxima(m, x):
    """(mask of the elements that tie for a window's maximum, number of windows with a tie) of a MaxPool2d
    without padding or dilation on (N, C, H, W); None for another pooling."""
    if not isinstance(m, nn.MaxPool2d) or x.ndim != 4 or m.padding not in (0, (0, 0)) \
            or m.dilation not in (1, (1, 1)):
        return None
    kh, kw = (m.kernel_size, m.kernel_size) if isinstance(m.kernel_size, int) else m.kernel_size
    stride = m.stride or m.kernel_size
    sh, sw = (stride, stride) if isinstance(stride, int) else stride
    tied = np.zeros(x.shape, bool)
    windows = 0
    for i in range(0, x.shape[2] - kh + 1, sh):
        for j in range(0, x.shape[3] - kw + 1, sw):
            w = x[:, :, i:i + kh, j:j + kw]
            at_max = w == w.max(axis=(2, 3), keepdims=True)
            many = at_max.sum(axis=(2, 3), keepdims=True) > 1
            tied[:, :, i:i + kh, j:j + kw] |= at_max & many
            windows += int(many.sum())
    return tied, windows


def kink_note(module, inputs) -> str:
    """What the report says when the input sits at a non-differentiable point: torch's convention is used."""
    x = np.asarray(inputs[0])
    if isinstance(module, nn.ReLU) or module in (torch.relu, F.relu):
        zeros = int(np.sum(x == 0))
        return (f"x has {zeros} exact zero(s), where ReLU has no derivative: compared with torch's convention "
                "relu'(0) = 0") if zeros else ""
    found = tied_maxima(module, x)
    if found and found[1]:
        return (f"{found[1]} pooling window(s) hold tied maxima: compared with torch's convention, the gradient "
                "goes to the first maximum of a window (row by row)")
    return ""


def _factor_of(name, run, ours, ref):
    """A factor (-1, 1/N, N, 1/dout, N/dout...) between the layer's tensor and torch's."""
    u, t = np.asarray(ours[name], np.float64), np.asarray(ref[name], np.float64)
    tt = float(np.sum(t * t))
    if u.shape != t.shape or tt == 0 or u.size < 1:
        return None
    c = float(np.sum(u * t)) / tt
    resid = np.max(np.abs(u - c * t)) / max(np.max(np.abs(c * t)), np.finfo(float).tiny)
    if resid > max(run.tol, 1e-12) or c == 0:
        return None

    def close(a):
        return abs(c - a) <= 100 * max(run.tol, 1e-12) * abs(a)
    N = np.shape(run.inputs[0])[0] if np.ndim(run.inputs[0]) else 1
    G = np.asarray(run.G)
    dout = [(1.0, "")]
    if G.ndim == 0 and float(G) != 0 and name.startswith("d"):
        dout.append((1 / float(G), f"; it also ignores dout (dout was {float(G):.3g}: the gradient for dout = 1)"))
    counts = {N: f"the batch size N = {N}"}
    if G.ndim > 2:
        counts.setdefault(G.size // G.shape[1], f"N x H x W = {G.size // G.shape[1]}")
    for k, also in dout:
        if close(-k):
            return Diagnosis("sign", "bug", f"{name} has the wrong sign ({name} = -1 x torch's){also}", (name,))
        for n, what in counts.items():
            if n > 1 and close(k / n):
                return Diagnosis("averaged", "bug", f"{name} is torch's divided by {what}: averaged over the batch "
                                 f"instead of summed{also}", (name,))
            if n > 1 and close(k * n):
                return Diagnosis("summed", "bug", f"{name} is torch's times {what}: the 1/N of the batch mean is "
                                 f"missing (summed where torch averages){also}", (name,))
    if abs(c - 1) < 1e-3 or u.size == 1:  # a hair off torch, or a single element: no factor to name
        return None
    return Diagnosis("factor", "bug", f"{name} is {c:.6g} x torch's", (name,))


def _mask(name, run, ours, ref):
    u, t = np.asarray(ours[name], np.float64), np.asarray(ref[name], np.float64)
    if u.shape != t.shape:
        return None
    zu, zt = u == 0, t == 0
    extra, lost = int(np.sum(zu & ~zt)), int(np.sum(zt & ~zu))
    if not (extra or lost):
        return None
    return Diagnosis("mask", "bug", f"{name} uses another mask than forward: it is 0 at {extra} element(s) "
                     f"where torch's is not and non-zero at {lost} where torch's is 0", (name,))


TENSOR_DIAGNOSES = [_nonfinite, _shape, _kink, _tie, _factor_of, _mask]
