"""Explanations of a disagreement with torch, each measured on the layer's tensors."""
import numpy as np
from torch import nn
from torch.nn import functional as F

from experiments.check.adapters import is_dropout
from experiments.check.adjoint import adjoint_failures
from experiments.check.results import Diagnosis
from experiments.compare import compare_arrays


def diagnose(result, run, ours, ref, slots, state, rng):
    failing = {r.name for r in result.records if not r.ok}
    explained = set()
    add = result.diagnoses.append
    dtype = run.dtype
    changed = [n for n, v in ours.items() if np.issubdtype(np.asarray(v).dtype, np.floating)
               and np.asarray(v).dtype != dtype]
    if changed:
        got = np.asarray(ours[changed[0]]).dtype
        what = "promotion" if got.itemsize > np.dtype(dtype).itemsize else "changed"
        add(Diagnosis("dtype", "design", f"dtype {what}: {np.dtype(dtype)} in, {got} out ({', '.join(changed)})",
                      tuple(changed)))
    module = run.module
    if failing and isinstance(module, nn.modules.batchnorm._BatchNorm):
        explained |= _bn_eps(result, run, ours, failing)
    if failing - explained and isinstance(module, nn.modules.batchnorm._BatchNorm) and run.train:
        explained |= _running_var(result, run, ours, ref, slots, failing - explained)
    if "out" in failing - explained and np.ndim(ours["out"]) == 0 and _is_cross_entropy(module):
        explained |= _log_eps(result, run, ours)
    for name in sorted(failing - explained, key=list(ours).index):
        d = _tensor_diagnosis(name, run, ours[name], ref[name])
        if d is not None:
            add(d)
            explained.add(name)
    drop = [d for d in result.diagnoses if d.code == "dropout"]  # out and dx: one finding, named once
    if drop:
        drop[0].tensors = tuple(n for d in drop for n in d.tensors)
        drop[0].text = ", ".join(drop[0].tensors) + " " + drop[0].text
        result.diagnoses = [d for d in result.diagnoses if d.code != "dropout" or d is drop[0]]
    adjoint = adjoint_failures(run, ours, slots, state, rng) if run.diff else {}
    if adjoint is None:
        adjoint = {}
        result.notes.append("dot-product test not run: the forward is not repeatable with np.random's state "
                            "replayed, or fails on float64 copies")
    for name in sorted(failing - explained, key=list(ours).index):
        if name in adjoint:
            result.diagnoses.append(Diagnosis("adjoint", "bug", adjoint.pop(name), (name,)))
        else:
            r = next(r for r in result.records if r.name == name)
            result.unexplained.append(f"{name} differs from torch's {r.against} by {r.scaled:.2g} (scaled) at "
                                      f"{r.where}, cause not identified")
    for name, text in adjoint.items():  # torch agrees, yet the dot-product test fails: report, never hide
        if name not in failing:
            result.diagnoses.append(Diagnosis("adjoint", "bug", text, (name,)))


def _tensor_diagnosis(name, run, u, t):
    """A factor (-1, 1/N, 1-p, 1/dout), a transpose or another zero pattern, measured on one tensor."""
    u = np.asarray(u, dtype=np.float64)
    t = np.asarray(t, dtype=np.float64)
    tol = max(run.tol, 1e-12)
    if u.shape != t.shape:
        if u.ndim == 2 and u.shape == t.shape[::-1] and compare_arrays(name, u.T, t).scaled <= tol:
            return Diagnosis("transpose", "bug", f"{name} is transposed: shape {u.shape}, the right gradient "
                             f"is {t.shape} (the transpose of the right one)", (name,))
        return Diagnosis("shape", "bug", f"{name} has shape {u.shape}, torch's {t.shape}", (name,))
    if u.ndim == 2 and u.shape[0] == u.shape[1] and u.size > 1 and compare_arrays(name, u.T, t).scaled <= tol \
            and compare_arrays(name, u, t).scaled > tol:
        return Diagnosis("transpose", "bug", f"{name} is transposed (equal to the transpose of torch's)", (name,))
    factor = None
    tt = float(np.sum(t * t))
    if tt > 0:
        c = float(np.sum(u * t)) / tt
        resid = np.max(np.abs(u - c * t)) / max(np.max(np.abs(c * t)), np.finfo(float).tiny)
        if resid <= tol and c != 0:
            factor = _factor(name, c, run, generic=u.size > 1)  # any two scalars are proportional
    if factor is not None and factor.code != "factor":
        return factor
    zu, zt = u == 0, t == 0
    if zt.any() or zu.any():
        extra, lost = int(np.sum(zu & ~zt)), int(np.sum(zt & ~zu))
        if extra or lost:
            return Diagnosis("mask", "bug", f"{name} uses another mask than forward: it is 0 at {extra} element(s) "
                             f"where torch's is not and non-zero at {lost} where torch's is 0", (name,))
    return factor


def _factor(name, c, run, generic=True):
    close = lambda a: abs(c - a) <= 100 * max(run.tol, 1e-12) * abs(a)  # noqa: E731
    module = run.module
    N = np.shape(run.inputs[0])[0] if np.ndim(run.inputs[0]) else 1
    if is_dropout(module) and 0 < module.p < 1 and close(1 - module.p):
        mode = "train" if run.train else "eval"
        return Diagnosis("dropout", "design", f"are (1 - p) = {1 - module.p:g} times torch's in {mode} mode: "
                         "non-inverted dropout (the book's: no 1/(1-p) in training, x*(1-p) at eval; torch scales "
                         "by 1/(1-p) in training and passes x at eval)", (name,))
    if close(-1):
        return Diagnosis("sign", "bug", f"{name} has the wrong sign ({name} = -1 x torch's)", (name,))
    if np.ndim(run.G) == 0 and name.startswith("d") and run.G != 0 and close(1 / float(run.G)):
        return Diagnosis("upstream", "design", f"{name} ignores the upstream gradient: backward(dout) returns the "
                         f"gradient for dout = 1 whatever dout is (dout was {float(run.G):.3g}); right only when "
                         "the loss is the last layer, as the book calls it", (name,))
    counts = {N: f"the batch size N = {N}"}
    out = np.asarray(run.G)
    if out.ndim > 2:
        counts.setdefault(out.size // out.shape[1], f"N x H x W = {out.size // out.shape[1]}")
    for n, what in counts.items():
        if n > 1 and close(1 / n):
            return Diagnosis("averaged", "bug", f"{name} is torch's divided by {what}: averaged over the batch "
                             "instead of summed", (name,))
        if n > 1 and close(n):
            return Diagnosis("summed", "bug", f"{name} is torch's times {what}: summed where torch averages",
                             (name,))
    if abs(c - 1) < 1e-3 or not generic:  # a hair off torch, or a single element: no factor to name
        return None
    return Diagnosis("factor", "bug", f"{name} is {c:.6g} x torch's", (name,))


def _bn_eps(result, run, ours, failing) -> set:
    """Estimate the layer's epsilon from how its output moves with the variance of each channel."""
    x = np.asarray(run.inputs[0], dtype=np.float64)
    axes = (0,) + tuple(range(2, x.ndim))
    m = run.snapshot
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
    if not np.all(np.isfinite(eps)) or np.median(eps) <= 0:
        return set()
    estimate = float(np.median(eps))
    for candidate in (float(f"{estimate:.0e}"), float(f"{estimate:.3g}")):
        ref = run.reference(eps=candidate)
        now = {r.name for r in run.records(ours, ref) if r.ok}
        if failing & now and ("out" in now or "out" not in failing):
            spread = float(np.ptp(eps) / estimate) if eps.size > 1 else 0.0
            result.diagnoses.append(Diagnosis(
                "bn-eps", "design", f"eps = {candidate:g} under the square root (torch's is {m.eps:g}): estimated "
                f"{estimate:.3g} from the output's error channel by channel (variances {var.min():.3g} to "
                f"{var.max():.3g}, estimates within {spread:.1%}); torch with eps={candidate:g} matches "
                f"{', '.join(sorted(failing & now, key=list(ours).index))}", tuple(sorted(failing & now))))
            return failing & now
    return set()


def _running_var(result, run, ours, ref, slots, failing) -> set:
    names = {s.torch: s.user for s in slots if s.buffer}
    name = names.get("running_var")
    m = run.snapshot
    if name not in failing or m.momentum is None:
        return set()
    x = np.asarray(run.inputs[0], dtype=np.float64)
    axes = (0,) + tuple(range(2, x.ndim))
    n = x.size // x.shape[1]
    var_b = x.var(axis=axes)
    var_u = var_b * n / max(n - 1, 1)
    old = m.running_var.double().numpy()
    mom = m.momentum
    u = np.asarray(ours[name], dtype=np.float64)
    cands = [
        ("biased batch variance (N/(N-1) left out)", (1 - mom) * old + mom * var_b),
        ("running_var started at 0 instead of the 1 torch starts from (unbiased batch variance)", mom * var_u),
        ("running_var started at 0 instead of the 1 torch starts from, with the biased batch variance",
         mom * var_b),
    ]
    for text, value in cands:
        if compare_arrays(name, u, value).scaled <= max(run.tol, 1e-12) * 10:
            ratio = float(np.median((u - (1 - mom) * old) / (np.asarray(ref[name], np.float64) - (1 - mom) * old)))
            result.diagnoses.append(Diagnosis(
                "running-var", "design", f"{name}: {text}; measured (new - (1-momentum) * old) / torch's = "
                f"{ratio:.4g} (N = {n}: (N-1)/N = {(n - 1) / n:.4g})", (name,)))
            return {name}
    return set()


def _is_cross_entropy(module) -> bool:
    if isinstance(module, nn.CrossEntropyLoss):
        return module.reduction == "mean" and module.weight is None and module.label_smoothing == 0
    return module is F.cross_entropy


def _log_eps(result, run, ours) -> set:
    """The epsilon inside the loss's log: solve -mean(log(y_t + eps)) = the layer's loss for eps."""
    x = np.asarray(run.inputs[0], dtype=np.float64)
    t = np.asarray(run.inputs[1]) if len(run.inputs) > 1 else None
    if x.ndim != 2 or t is None:
        return set()
    z = x - x.max(axis=1, keepdims=True)
    p = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    if np.issubdtype(t.dtype, np.integer):
        def loss(e):
            return float(-np.mean(np.log(p[np.arange(len(t)), t] + e)))
    else:
        tt = t.astype(np.float64)

        def loss(e):
            return float(-np.sum(tt * np.log(p + e)) / len(x))
    target = float(ours["out"])
    lo, hi = -30.0, 0.0
    if not loss(10 ** hi) < target < loss(10 ** lo):
        return set()
    for _ in range(200):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if loss(10 ** mid) > target else (lo, mid)
    estimate = 10 ** lo
    tol = max(run.tol, 1e-12)
    for e in (float(f"{estimate:.0e}"), estimate):
        if abs(loss(e) - target) <= tol * abs(target):
            shift = (target - loss(0.0)) / abs(loss(0.0))
            result.diagnoses.append(Diagnosis(
                "log-eps", "design", f"out: the loss has eps = {e:.3g} inside its log, -log(y + {e:.3g}) (solved "
                f"from the loss, {shift:.2g} relative to torch's); torch's cross_entropy has none", ("out",)))
            return {"out"}
    return set()
