"""Check your own optimizer against ``torch.optim``: ``check_optimizer``, ``assert_optimizer_matches_torch``.

Two shapes of optimizer are read:

- the book's (chapter 6, ``common/optimizer.py``): an object with ``update(params, grads)`` over dicts of
  arrays, hyperparameters as attributes (``lr, momentum, decay_rate, beta1, beta2, eps``);
- CS231n's (``optim.py``): a function ``f(w, dw, config) -> (next_w, config)``, one ``config`` dict per
  parameter, hyperparameters as its keys (``learning_rate, momentum, decay_rate, beta1, beta2, epsilon``)
  with the function's own defaults (read from the config it returns after its first call).

What the check does, in order:

1. Parameters and gradients: four parameters of varied shapes and scales (a matrix, a vector, a 4-D
   convolution kernel whose gradients are a thousandth of the others, a vector with large gradients),
   initial values and ``steps`` gradients drawn from the checker's stream (``checker_rng(seed)``), about one
   gradient element in ten an exact zero. The gradients are a fixed stream: they do not depend on the
   parameters, so a difference in one step is not amplified by the next.
2. The user's optimizer takes the steps first, on copies, then ``torch.optim`` (the judge) takes the same
   steps from the same values with the same hyperparameters (``TORCH_OPTIM`` says which class and how the
   names map). Every parameter's trajectory is compared step by step at the optimizer tolerance of
   docs/design.md (1e-12 relative in float64, 1e-5 in float32, relative to the scale of torch's values).
3. On a difference, named variants (``VARIANTS``) are applied to the torch side, alone and combined: another
   eps, eps inside the square root, Adam's bias correction folded into the rate or left out, its step counter
   off by one, the velocity-first Nesterov form, the momentum's sign. A variant that reproduces the whole
   trajectory within tolerance is the diagnosis: "differs by design: ..." for a known formulation,
   "mismatch: ..." for a bug. Where none does, the verdict is a mismatch at the first step where the two part,
   with the variant that follows the user's trajectory longest as the closest explanation.
"""
import copy
import inspect
import itertools
from collections import OrderedDict
from dataclasses import dataclass, field

import numpy as np
import torch

from experiments.check.inputs import checker_rng
from experiments.check.results import CheckResult, Diagnosis, Refused, TensorRecord
from experiments.compare import TOLERANCE, compare_arrays
from torch_ref.nn import torch_dtype

# The parameters the optimizer is run on: name, shape, scale of its gradients.
PARAMETERS = (("W1", (5, 4), 1.0), ("b1", (4,), 0.1), ("W2", (3, 2, 3, 3), 1e-3), ("b2", (3,), 10.0))
DEFAULT_STEPS = 200
# Steps a variant must reproduce before it is run over the whole stream (a cheap first filter).
SCREEN_STEPS = 3

# family -> (torch.optim class, {user's hyperparameter name: torch's}); aliases by lower-cased name.
TORCH_OPTIM = OrderedDict(
    sgd=("SGD", {}),
    momentum=("SGD", {"momentum": "momentum"}),
    nesterov=("SGD", {"momentum": "momentum"}),
    adagrad=("Adagrad", {"eps": "eps"}),
    rmsprop=("RMSprop", {"decay_rate": "alpha", "alpha": "alpha", "eps": "eps"}),
    adam=("Adam", {"eps": "eps"}),
)
ALIASES = {"sgd": "sgd", "momentum": "momentum", "momentumsgd": "momentum", "sgdmomentum": "momentum",
           "sgd_momentum": "momentum", "nesterov": "nesterov", "nag": "nesterov", "sgd_nesterov": "nesterov",
           "nesterov_momentum": "nesterov", "adagrad": "adagrad", "rmsprop": "rmsprop", "adam": "adam"}
# The names hyperparameters go by, in the book's classes and CS231n's configs, -> one name.
HYPER_NAMES = {"lr": "lr", "learning_rate": "lr", "momentum": "momentum", "mu": "momentum",
               "decay_rate": "alpha", "alpha": "alpha", "rho": "alpha", "beta1": "beta1", "beta2": "beta2",
               "eps": "eps", "epsilon": "eps"}
EPS_CANDIDATES = (1e-7, 1e-8, 1e-10, 1e-6, 1e-5, 1e-4, 0.0)


def family_of(name: str):
    """The optimizer family a class or function name stands for (``None`` when it names none)."""
    key = name.lower().replace("-", "_")
    return ALIASES.get(key) or ALIASES.get(key.replace("_", ""))


# -- the user's side: two shapes of optimizer ------------------------------------------------------------
class _BookStyle:
    """``opt.update(params, grads)`` over dicts; hyperparameters are the object's attributes."""

    def __init__(self, opt):
        self.opt = copy.deepcopy(opt)  # the user's object keeps its state; the check starts from the copy's

    def step(self, params, grads):
        self.opt.update(params, grads)
        return params

    def hyper(self) -> dict:
        return _hyper({k: v for k, v in vars(self.opt).items()})


class _FunctionStyle:
    """``f(w, dw, config) -> (next_w, config)``, one config per parameter, defaults set by the function."""

    def __init__(self, fn, config=None):
        self.fn, self.base, self.configs = fn, dict(config or {}), {}

    def step(self, params, grads):
        for k in params:
            config = self.configs.get(k)
            if config is None:
                config = copy.deepcopy(self.base) if self.base else None
            out = self.fn(params[k], grads[k], config)
            if not (isinstance(out, tuple) and len(out) == 2 and isinstance(out[1], dict)):
                raise Refused(f"{self.fn.__name__}(w, dw, config) returned {type(out).__name__}, not "
                              "(next_w, config)")
            params[k], self.configs[k] = out
        return params

    def hyper(self) -> dict:
        first = next(iter(self.configs.values()), {})
        return _hyper(first)


def _hyper(values: dict) -> dict:
    out = {}
    for k, v in values.items():
        if k in HYPER_NAMES and isinstance(v, (int, float, np.floating, np.integer)) and not isinstance(v, bool):
            out.setdefault(HYPER_NAMES[k], float(v))
    return out


def _adapter(opt, config):
    if callable(getattr(opt, "update", None)):
        return _BookStyle(opt)
    if callable(opt) and not inspect.isclass(opt):
        try:
            n = len([p for p in inspect.signature(opt).parameters.values()
                     if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)])
        except (TypeError, ValueError):
            n = 3
        if n >= 2:
            return _FunctionStyle(opt, config)
    raise Refused(f"{_name(opt)} is neither an object with update(params, grads) nor a function "
                  "f(w, dw, config) -> (next_w, config)")


def _name(opt) -> str:
    return getattr(opt, "__name__", None) or type(opt).__name__


# -- the stream ------------------------------------------------------------------------------------------
def gradient_stream(steps: int, dtype, seed: int = 0):
    """(initial parameters, [grads per step]): the checker's stream, ``PARAMETERS``' shapes and scales."""
    rng = checker_rng(seed)
    params = OrderedDict((n, rng.standard_normal(s).astype(dtype)) for n, s, _ in PARAMETERS)
    stream = []
    for _ in range(steps):
        grads = OrderedDict()
        for n, s, scale in PARAMETERS:
            g = rng.standard_normal(s) * scale
            g[rng.random(s) < 0.1] = 0.0  # exact zeros: AdaGrad's and Adam's eps alone in the denominator
            grads[n] = g.astype(dtype)
        stream.append(grads)
    return params, stream


def user_trajectory(adapter, params0, stream):
    """The user's parameters after every step ({name: (steps, *shape)}), fed copies of both."""
    params = OrderedDict((k, v.copy()) for k, v in params0.items())
    path = {k: [] for k in params0}
    for i, grads in enumerate(stream):
        given = OrderedDict((k, g.copy()) for k, g in grads.items())
        try:
            params = adapter.step(params, given)
        except Refused:
            raise
        except Exception as e:  # noqa: BLE001 - the user's code raised: reported as the step it raised at
            raise _UserError(f"step {i + 1} raised {type(e).__name__}: {e}") from e
        for k in path:
            v = params.get(k) if isinstance(params, dict) else None
            if v is None or np.shape(v) != np.shape(params0[k]):
                raise _UserError(f"after step {i + 1} parameter {k} is "
                                 f"{'missing' if v is None else f'of shape {np.shape(v)}'}, "
                                 f"expected {params0[k].shape}")
            path[k].append(np.array(v, copy=True))
        changed = [k for k in grads if not np.array_equal(given[k], grads[k])]
        if changed and i == 0:
            adapter.modified = changed
    return {k: np.stack(v) for k, v in path.items()}


class _UserError(Exception):
    pass


# -- the torch side --------------------------------------------------------------------------------------
def torch_optimizer(family: str, hyper: dict, params):
    """The ``torch.optim`` counterpart built with the user's hyperparameters (torch's defaults for the rest)."""
    cls = getattr(torch.optim, TORCH_OPTIM[family][0])
    kw = {}
    if "lr" in hyper:
        kw["lr"] = hyper["lr"]
    if family in ("momentum", "nesterov"):
        kw["momentum"] = hyper.get("momentum", 0.9)
        kw["nesterov"] = family == "nesterov"
    if family == "rmsprop" and "alpha" in hyper:
        kw["alpha"] = hyper["alpha"]
    if family == "adam":
        kw["betas"] = (hyper.get("beta1", 0.9), hyper.get("beta2", 0.999))
    if "eps" in hyper and family in ("adagrad", "rmsprop", "adam"):
        kw["eps"] = hyper["eps"]
    if family != "sgd" or "lr" not in kw:
        kw["foreach"] = False
    return cls(params, **kw)


def torch_signature(opt) -> str:
    """``torch.optim.Adam(lr=0.001, betas=(0.9, 0.999), eps=1e-08)``: the hyperparameters that matter."""
    g = opt.param_groups[0]
    keys = {"SGD": ("lr", "momentum", "nesterov"), "Adagrad": ("lr", "eps"), "RMSprop": ("lr", "alpha", "eps"),
            "Adam": ("lr", "betas", "eps")}[type(opt).__name__]
    shown = [f"{k}={g[k]!r}" for k in keys if not (k in ("momentum", "nesterov") and not g[k])]
    return f"torch.optim.{type(opt).__name__}({', '.join(shown)})"


def torch_trajectory(family, hyper, params0, stream, dtype):
    """``torch.optim`` over the stream: ({name: (steps, *shape)}, the optimizer's signature)."""
    tensors = OrderedDict((k, torch.tensor(v.astype(dtype), dtype=torch_dtype(dtype)).requires_grad_())
                          for k, v in params0.items())
    opt = torch_optimizer(family, hyper, list(tensors.values()))
    path = {k: [] for k in tensors}
    for grads in stream:
        for k, p in tensors.items():
            p.grad = torch.tensor(grads[k], dtype=p.dtype)
        opt.step()
        for k, p in tensors.items():
            path[k].append(p.detach().numpy().copy())
    return {k: np.stack(v) for k, v in path.items()}, torch_signature(opt)


def default_eps(family, hyper):
    """The eps torch.optim runs with for these hyperparameters (None for SGD)."""
    return torch_optimizer(family, hyper, [torch.zeros(1)]).param_groups[0].get("eps")


@dataclass
class OptimizerResult(CheckResult):
    """``CheckResult`` of an optimizer: also its rule's ``family``, the ``hyper``parameters read, and the
    ``variant`` ({axis: value}) that reproduces its trajectory when one does."""

    family: str = ""
    hyper: dict = field(default_factory=dict)
    variant: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Variant:
    """One change to torch's rule. ``kind``: "design" (a published formulation) or "bug"."""

    axis: str
    value: object
    kind: str
    text: str


def _variants(family: str, hyper: dict, torch_eps):
    """The axes along which the family's rule is varied: [[Variant, ...] per axis], torch's first on each."""
    axes = []
    if family in ("adagrad", "rmsprop", "adam"):
        told = (f"its eps attribute says {torch_eps:g}" if "eps" in hyper else
                f"torch's default is {torch_eps:g}; the optimizer has no eps attribute or config key")
        eps = [Variant("eps", None, "design", "")]
        for e in EPS_CANDIDATES:
            if e != torch_eps:
                eps.append(Variant("eps", e, "design", f"eps = {e:g} ({told})"))
        axes.append(eps)
        axes.append([Variant("place", "outside", "design", ""),
                     Variant("place", "inside", "design", "eps inside the square root, sqrt(v + eps) "
                             "(torch adds it after: sqrt(v) + eps)")])
    if family == "adam":
        axes.append([Variant("bias", "torch", "design", ""),
                     Variant("bias", "folded", "design", "bias correction folded into the learning rate, "
                             "lr_t = lr * sqrt(1 - beta2^t) / (1 - beta1^t), with eps added before the correction "
                             "(Kingma & Ba's 'more efficient' order, the book's; torch adds eps to sqrt(v_hat))"),
                     Variant("bias", "none", "bug", "no bias correction: m and v are used as they are, not "
                             "divided by (1 - beta1^t) and (1 - beta2^t)")])
        axes.append([Variant("offset", 0, "design", ""),
                     Variant("offset", 1, "bug", "bias-correction step counter off by one: step t is corrected "
                             "as t + 1 (the counter starts at 1, or is incremented twice)"),
                     Variant("offset", -1, "bug", "bias-correction step counter off by one: step t is corrected "
                             "as t - 1 (the counter is incremented after its use)")])
    if family == "nesterov":
        axes.append([Variant("nesterov", "torch", "design", ""),
                     Variant("nesterov", "velocity-first", "design", "the velocity-first Nesterov form "
                             "(v = m v - lr g first, then param += m^2 v - (1 + m) lr g with the new v: "
                             "scratch.optim.book.Nesterov); torch's SGD(nesterov=True) uses the velocity before "
                             "this step's update"),
                     Variant("nesterov", "plain", "bug", "no look-ahead: the rule is plain momentum "
                             "(param += v), not Nesterov's")])
    if family in ("momentum", "nesterov"):
        axes.append([Variant("sign", 1, "design", ""),
                     Variant("sign", -1, "bug", "the velocity is applied with the wrong sign (the update "
                             "climbs the gradient: param -= v where v = m v - lr g)")])
    return axes


class TorchRule:
    """Torch's rule for ``family`` with the variants in ``chosen`` ({axis: value}) applied, in torch operations.

    ``step(params, grads)`` updates a dict of tensors in place. With no variant it is torch.optim's rule (the
    test suite holds it to torch.optim over 50 steps); the lockstep trainer uses it where the user's optimizer
    differs from torch.optim by design.
    """

    def __init__(self, family, hyper, chosen=None, torch_eps=None):
        self.family, self.chosen, self.t, self.state = family, dict(chosen or {}), 0, {}
        self.lr = hyper.get("lr", {"sgd": 1e-3, "momentum": 1e-3, "nesterov": 1e-3, "adagrad": 1e-2,
                                   "rmsprop": 1e-2, "adam": 1e-3}[family])
        self.m, self.alpha = hyper.get("momentum", 0.9), hyper.get("alpha", 0.99)
        self.b1, self.b2 = hyper.get("beta1", 0.9), hyper.get("beta2", 0.999)
        self.eps = self.chosen.get("eps") if self.chosen.get("eps") is not None else torch_eps
        self.inside = self.chosen.get("place") == "inside"

    def _denom(self, v):
        return torch.sqrt(v + self.eps) if self.inside else torch.sqrt(v) + self.eps

    @torch.no_grad()
    def step(self, params, grads):
        self.t += 1
        family, chosen, lr, m = self.family, self.chosen, self.lr, self.m
        for k, p in params.items():
            g, s = grads[k], self.state.setdefault(k, {})
            if family == "sgd":
                new = p - lr * g
            elif family in ("momentum", "nesterov"):
                form = chosen.get("nesterov", "torch") if family == "nesterov" else "plain"
                sign = chosen.get("sign", 1)
                if form == "velocity-first":
                    v = s.get("v", torch.zeros_like(g)) * m - lr * g
                    s["v"] = v
                    new = p + sign * (m * m * v - (1 + m) * lr * g)
                else:
                    b = g.clone() if "b" not in s else s["b"] * m + g
                    s["b"] = b
                    new = p - sign * lr * (g + m * b if form == "torch" else b)
            elif family in ("adagrad", "rmsprop"):
                h = s.get("h", torch.zeros_like(g))
                h = h + g * g if family == "adagrad" else h * self.alpha + (1 - self.alpha) * g * g
                s["h"] = h
                new = p - lr * g / self._denom(h)
            else:  # adam
                b1, b2 = self.b1, self.b2
                mm = s.get("m", torch.zeros_like(g)) * b1 + (1 - b1) * g
                vv = s.get("v", torch.zeros_like(g)) * b2 + (1 - b2) * g * g
                s["m"], s["v"] = mm, vv
                tt = self.t + chosen.get("offset", 0)
                bc1, bc2 = 1 - b1 ** tt, 1 - b2 ** tt
                bias = chosen.get("bias", "torch")
                if bias == "torch":
                    vhat = vv / bc2 if bc2 != 0 else vv * float("inf")
                    new = p - (lr / bc1 if bc1 != 0 else float("inf")) * mm / self._denom(vhat)
                elif bias == "folded":
                    lr_t = lr * np.sqrt(bc2) / bc1 if bc1 != 0 else float("nan")
                    new = p - lr_t * mm / self._denom(vv)
                else:
                    new = p - lr * mm / self._denom(vv)
            p.copy_(new)


def variant_trajectory(family, hyper, chosen: dict, params0, stream, dtype, steps=None, torch_eps=None):
    """``TorchRule`` over the stream: {name: (steps, *shape)}."""
    td = torch_dtype(dtype)
    rule = TorchRule(family, hyper, chosen, torch_eps)
    p = OrderedDict((k, torch.tensor(v, dtype=td)) for k, v in params0.items())
    path = {k: [] for k in params0}
    for grads in stream[:steps]:
        rule.step(p, {k: torch.tensor(g, dtype=td) for k, g in grads.items()})
        for k in p:
            path[k].append(p[k].numpy().copy())
    return {k: np.stack(v) for k, v in path.items()}


# -- comparison ------------------------------------------------------------------------------------------
def _departure(ours, ref, tol):
    """(first step, 1-based, where any parameter leaves ``tol``, or None; {name: (worst scaled, step, where)})."""
    first = None
    worst = {}
    for k in ref:
        steps = len(ref[k])
        best = (0.0, 0, ())
        for i in range(min(steps, len(ours[k]))):
            e = compare_arrays(k, ours[k][i], ref[k][i])
            if e.scaled > tol and (first is None or i + 1 < first):
                first = i + 1
            if e.scaled > best[0] or (first == i + 1 and best[1] != first):
                best = (e.scaled, i + 1, e.where) if e.scaled >= best[0] else best
        worst[k] = best
    return first, worst


def _parts_at(ours, ref, tol):
    return _departure(ours, ref, tol)[0]


def check_optimizer(opt, *, steps: int = DEFAULT_STEPS, dtype=np.float64, seed: int = 0, config=None,
                    family: str | None = None, name: str | None = None) -> CheckResult:
    """Run an optimizer beside the matching ``torch.optim`` on the same gradients and compare the trajectories.

    Args:
        opt: the book's style, an object with ``update(params, grads)`` (dicts of arrays, updated in place or
            returned), e.g. ``Adam()``; or CS231n's, a function ``f(w, dw, config) -> (next_w, config)``.
        steps: optimizer steps on the fixed gradient stream (200, the tolerance's horizon in docs/design.md).
        dtype: float64 (tolerance 1e-12 relative) or float32 (1e-5).
        seed: seed of the checker's stream (initial parameters, gradients).
        config: a CS231n-style function's starting config (default: none, the function's own defaults).
        family: which torch.optim rule to compare with ("sgd", "momentum", "nesterov", "adagrad", "rmsprop",
            "adam"); default: from the class or function name.
        name: the optimizer's name in the result (default: its class or function name).

    Returns:
        ``CheckResult``: one record per parameter (the worst scaled difference over the steps, ``where`` =
        (step, index) of it), ``.diagnoses`` naming the variant that reproduces the user's trajectory.
    """
    name = name or _name(opt)
    family = family or family_of(name)
    result = OptimizerResult(name, "torch.optim", family=family)
    dtype = np.dtype(dtype)
    if family is None:
        result.refused = (f"no torch.optim rule known for {name!r} (names known: "
                          f"{', '.join(sorted(set(ALIASES)))}); pass family='adam' (or sgd, momentum, nesterov, "
                          "adagrad, rmsprop)")
        return result
    if family not in TORCH_OPTIM:
        raise ValueError(f"family must be one of {', '.join(TORCH_OPTIM)}, got {family!r}")
    if dtype not in (np.float32, np.float64):
        raise ValueError(f"dtype must be float32 or float64, got {dtype}")
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    tol = TOLERANCE["optim"][dtype.type]
    try:
        adapter = _adapter(opt, config)
        params0, stream = gradient_stream(steps, dtype, seed)
        try:
            ours = user_trajectory(adapter, params0, stream)
        except _UserError as e:
            result.error = f"the optimizer's {e}"
            return result
    except Refused as e:
        result.refused = str(e)
        return result
    hyper = adapter.hyper()
    result.hyper = hyper
    ref, signature = torch_trajectory(family, hyper, params0, stream, dtype)
    result.against = signature
    result.dtype = str(dtype)
    result.inputs = (f"{len(PARAMETERS)} parameters " + ", ".join(str(s) for _, s, _ in PARAMETERS)
                     + f"; {steps} steps")
    first, worst = _departure(ours, ref, tol)
    for k, (scaled, step, where) in worst.items():
        e = compare_arrays(k, ours[k][step - 1], ref[k][step - 1]) if step else None
        result.records.append(TensorRecord(k, f"{k} path (step, index)", tuple(params0[k].shape), str(dtype),
                                           e.max_abs if e else 0.0, scaled, (step,) + tuple(where), tol,
                                           "ok" if scaled <= tol else "FAIL"))
    if getattr(adapter, "modified", None):
        result.notes.append(f"update modified the gradients it was given in place: {', '.join(adapter.modified)}")
    if first is None:
        return result
    result.notes.append(f"the trajectories part at step {first} of {steps}")
    torch_eps = default_eps(family, hyper)
    _explain(result, family, hyper, params0, stream, dtype, tol, ours, first, torch_eps)
    return result


def _explain(result, family, hyper, params0, stream, dtype, tol, ours, first, torch_eps):
    """The variant (or combination) that reproduces the trajectory, else the closest one, as a diagnosis."""
    axes = _variants(family, hyper, torch_eps)
    combos = sorted(itertools.product(*axes), key=lambda c: sum(v.text != "" for v in c))
    best = (first, None)
    for combo in combos:
        changed = [v for v in combo if v.text]
        if not changed:
            continue
        chosen = {v.axis: v.value for v in combo}
        short = variant_trajectory(family, hyper, chosen, params0, stream, dtype, SCREEN_STEPS, torch_eps)
        parted = _parts_at({k: v[:SCREEN_STEPS] for k, v in ours.items()}, short, tol)
        if parted is not None:
            if parted > best[0]:
                best = (parted, changed)
            continue
        full = variant_trajectory(family, hyper, chosen, params0, stream, dtype, None, torch_eps)
        parted = _parts_at(ours, full, tol)
        if parted is None:
            kind = "bug" if any(v.kind == "bug" for v in changed) else "design"
            text = "; ".join(v.text for v in changed) + (
                f": torch with {'these changes' if len(changed) > 1 else 'this change'} reproduces the "
                f"trajectory over all {len(stream)} steps")
            result.diagnoses.append(Diagnosis("optim-" + "+".join(str(v.axis) for v in changed), kind, text,
                                              tuple(r.name for r in result.records if not r.ok)))
            result.variant = chosen  # what the lockstep trainer applies to torch
            return
        if parted > best[0]:
            best = (parted, changed)
    worst = max(result.records, key=lambda r: r.scaled)
    text = (f"parts from {result.against} at step {first} ({worst.name} {worst.scaled:.2g} apart, scaled, at "
            f"step {worst.where[0]})")
    if best[1]:
        text += (f"; closest explanation: {'; '.join(v.text for v in best[1])} (follows the trajectory to step "
                 f"{best[0] - 1}, then parts)")
    else:
        text += "; no named variant explains it"
    result.unexplained.append(text)


def assert_optimizer_matches_torch(opt, **kwargs) -> CheckResult:
    """``check_optimizer`` for pytest: raises AssertionError carrying the table unless the trajectories agree."""
    result = check_optimizer(opt, **kwargs)
    if not result.ok:
        raise AssertionError("\n" + str(result))
    return result


def optimizers_in(namespace: dict) -> "OrderedDict[str, object]":
    """The optimizers of a module's namespace: classes with ``update`` and functions named as a known rule."""
    found = OrderedDict()
    for n, v in namespace.items():
        if n.startswith("_"):
            continue
        if inspect.isclass(v) and inspect.isfunction(getattr(v, "update", None)):  # not dict.update
            if len(inspect.signature(v.update).parameters) >= 3:  # self, params, grads
                found[n] = v
        elif inspect.isfunction(v) and family_of(n) is not None:
            try:
                positional = [p for p in inspect.signature(v).parameters.values()
                              if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
            except (TypeError, ValueError):
                continue
            if len(positional) >= 2:
                found[n] = v
    return found


def check_optimizer_named(name, obj, *, steps: int = DEFAULT_STEPS, dtype=np.float64, seed: int = 0):
    """The command line's check of one optimizer class (built with its defaults) or function."""
    if inspect.isclass(obj):
        try:
            obj = obj()
        except Exception as e:  # noqa: BLE001 - a constructor that needs arguments
            result = OptimizerResult(name, "torch.optim")
            result.refused = (f"cannot build {name}() with its defaults ({type(e).__name__}: {e}); from Python: "
                              f"check_optimizer({name}(lr=...))")
            return result
    return check_optimizer(obj, steps=steps, dtype=dtype, seed=seed, name=name)
