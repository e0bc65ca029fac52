"""Check your own NumPy layer against PyTorch: ``check_layer``, ``assert_matches_torch``, ``experiments check``.

A layer is anything with ``forward(*inputs)`` and ``backward(dout)``: the book's
classes (parameters kept as attributes ``W, b, gamma, beta, running_mean,
running_var``, gradients left in ``dW, db, dgamma, dbeta``) or a
``scratch.nn``-style module (parameters by torch's names, gradients in
``param.grad``). ``check_layer`` copies the torch module's weights into the
layer in the layer's layout (the book's Affine keeps ``W`` as torch's
``weight.T``), runs both forward and backward on the same inputs and upstream
gradient, and returns a ``CheckResult``: one record per tensor, named by the
layer's own attribute names (out, dx, dW, db, running_var ...), with the max
absolute error, the scaled error (max abs / max |torch's value|), where it is,
the tolerance (docs/design.md: 1e-10 in float64, 1e-5 in float32) and a verdict.

What the checker does, in order (each step is a documented contract):

1. Weights: every parameter and buffer of the torch module is copied into the
   layer (``params={"my_W": "weight.T"}`` names what it cannot guess). If one
   cannot be copied, the check is **refused**, never run: a correct layer is not
   reported wrong because its weights differ from torch's.
2. Randomness: upstream gradients (and, from the command line, inputs and
   weights) come from the checker's own stream, ``checker_rng(seed)`` =
   ``numpy.random.default_rng((CHECK_STREAM, seed))``, independent of
   ``np.random``'s global state and of ``default_rng(seed)``, so an upstream
   gradient is never a copy of the user's input.
3. Order: the layer's forward runs first, then its backward, then torch. A
   train-mode dropout is compared through the mask the layer drew (its ``mask``
   attribute, or the non-zero pattern of its output when it keeps none).
4. Diagnoses, measured on the layer: a failing tensor is explained by
   re-running torch under a hypothesis (another epsilon, a biased running
   variance, no dropout scaling...) or by fitting the layer's tensor to torch's
   (a factor -1, 1/N, 1-p; a transpose; another zero pattern). A backward that is
   not the adjoint of its forward is caught by a dot-product test that needs no
   torch: <(f(x + hv) - f(x - hv)) / 2h, G> against <dx, v>, for random v.
   Differences the book makes by design (non-inverted dropout, eps inside the
   log, BatchNormalization's eps and biased running variance, a loss backward
   that assumes dout = 1, float64 im2col buffers) give the verdict
   "differs from torch: <reason>", which is not a pass.
"""
import copy
import inspect
import json
import textwrap
from collections import OrderedDict
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from experiments.compare import compare_arrays, layer_tolerance
from torch_ref.nn import torch_dtype

# The checker's generator: numpy.random.default_rng((CHECK_STREAM, seed)); CHECK_STREAM is b"check" as an integer.
CHECK_STREAM = int.from_bytes(b"check", "big")
# Central-difference step of the dot-product test, relative to the largest |value| of the perturbed tensor.
ADJOINT_STEP = 1e-6
# The dot-product test fails when the two products differ by more than this, relative to their scale.
ADJOINT_TOL = 1e-6
PARAM_NAMES = {"weight": ("W", "w", "weight", "gamma"), "bias": ("b", "bias", "beta"),
               "running_mean": ("running_mean",), "running_var": ("running_var",)}


def checker_rng(seed: int = 0) -> np.random.Generator:
    """The checker's own stream: ``numpy.random.default_rng((CHECK_STREAM, seed))``."""
    return np.random.default_rng((CHECK_STREAM, seed))


class Refused(Exception):
    """The check cannot run honestly (weights not copied, inputs not understood)."""


@dataclass
class TensorRecord:
    """One compared tensor: the layer's name for it, torch's, the errors and the verdict."""

    name: str
    against: str
    shape: tuple
    dtype: str
    max_abs: float
    scaled: float
    where: tuple
    tolerance: float
    verdict: str  # "ok", "FAIL", "shape" (another shape than torch's)
    float64_error: float = float("nan")
    torch_float64_error: float = float("nan")

    @property
    def ok(self) -> bool:
        return self.verdict == "ok"


@dataclass
class Diagnosis:
    """A measured explanation. ``kind`` is "design" (the book's formulation) or "bug"."""

    code: str
    kind: str
    text: str
    tensors: tuple = ()


@dataclass
class CheckResult:
    """Result of ``check_layer``: ``.ok``, ``.verdict``, ``.records``, ``.diagnoses``; ``str()`` is a table."""

    layer: str
    against: str
    dtype: str = ""
    inputs: str = ""
    mode: str = ""
    records: list = field(default_factory=list)
    diagnoses: list = field(default_factory=list)
    refused: str = ""
    unexplained: list = field(default_factory=list)
    notes: list = field(default_factory=list)

    @property
    def verdict(self) -> str:
        if self.refused:
            return "refused: " + self.refused
        bugs = [d.text for d in self.diagnoses if d.kind == "bug"] + self.unexplained
        design = [d.text for d in self.diagnoses if d.kind != "bug"]
        if bugs:
            return "mismatch: " + "; ".join(bugs) + ("; also differs from torch: " + "; ".join(design)
                                                     if design else "")
        if design:
            return "differs from torch: " + "; ".join(design)
        return "ok"

    @property
    def ok(self) -> bool:
        return self.verdict == "ok"

    @property
    def diagnosis(self) -> str:
        """The verdict's sentence without its prefix; empty when ok."""
        v = self.verdict
        return "" if v == "ok" else v.split(": ", 1)[1]

    @property
    def worst(self) -> float:
        return max((r.scaled for r in self.records), default=float("nan"))

    def as_dict(self) -> dict:
        return dict(layer=self.layer, against=self.against, ok=self.ok, worst=self.worst,
                    diagnosis=self.diagnosis, verdict=self.verdict, dtype=self.dtype, inputs=self.inputs,
                    mode=self.mode, records=[asdict(r) for r in self.records])

    def __str__(self) -> str:
        head = f"{self.layer} against {self.against}"
        detail = ", ".join(s for s in (self.dtype, self.mode, self.inputs) if s)
        lines = [f"{head} ({detail}): {self.verdict}" if detail else f"{head}: {self.verdict}"]
        if self.records:
            lines.append(f"  {'tensor':14s} {'against':22s} {'shape':16s} {'max abs':>9s} {'scaled':>9s} "
                         f"{'tol':>7s}  {'where':14s} verdict")
            for r in self.records:
                lines.append(f"  {r.name:14s} {r.against:22s} {str(r.shape):16s} {r.max_abs:9.2e} "
                             f"{r.scaled:9.2e} {r.tolerance:7.0e}  {str(r.where):14s} {r.verdict}")
        lines += [f"  note: {n}" for n in self.notes]
        return "\n".join(lines)


# -- the two sides ------------------------------------------------------------------------------------------
@dataclass
class _Slot:
    user: str  # the layer's attribute (W) or parameter name (weight)
    torch: str  # torch's parameter or buffer name
    transpose: bool
    buffer: bool
    grad_name: str  # dW, or weight.grad


def _is_scratch_style(layer) -> bool:
    return all(hasattr(layer, a) for a in ("named_parameters", "named_buffers", "load_state_dict"))


def _torch_name(counterpart) -> str:
    """torch.nn.Linear, torch.sigmoid, torch.nn.functional.cross_entropy..."""
    if isinstance(counterpart, nn.Module):
        cls = type(counterpart)
        return f"torch.nn.{cls.__name__}" if cls.__module__.startswith("torch.nn") else cls.__name__
    mod = getattr(counterpart, "__module__", None) or "torch"
    name = getattr(counterpart, "__name__", None) or repr(counterpart)
    return f"{mod}.{name}" if mod.startswith("torch") else name


def _slots(layer, module, params, grads) -> list:
    """Which attribute of the layer receives which torch tensor, or Refused naming what is missing."""
    if not isinstance(module, nn.Module):
        looks = [a for a in ("W", "w", "b", "gamma", "beta", "weight", "bias")
                 if isinstance(getattr(layer, a, None), np.ndarray)]
        if _is_scratch_style(layer):
            looks = [n for n, _ in layer.named_parameters()]
        if looks:
            raise Refused(f"the layer has parameters ({', '.join(looks)}) and the torch counterpart is a function, "
                          "so no weights can be copied into them; pass a torch module (nn.Linear, nn.Conv2d...) "
                          "or pass the parameters as inputs")
        return []
    state = module.state_dict()
    slots = []
    if _is_scratch_style(layer):
        own = dict(layer.named_parameters())
        bufs = dict(layer.named_buffers())
        for name in state:
            if name in own or name in bufs:
                slots.append(_Slot(name, name, False, name in bufs, name + ".grad"))
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
        slots.append(_Slot(user, name, bool(transpose), buffer, grad_name))
    mapped = {s.user for s in slots}
    extra = [a for a in ("W", "w", "b", "gamma", "beta", "weight", "bias")
             if isinstance(getattr(layer, a, None), np.ndarray) and a not in mapped]
    if extra:
        raise Refused(f"the layer's {', '.join(extra)} has no counterpart in torch's {type(module).__name__} "
                      f"({', '.join(state) or 'no weights'}) and would keep its own values; nothing is compared")
    return slots


def _copy_weights(layer, module, slots, dtype) -> None:
    """torch -> layer, in the layer's layout and the check's dtype; verified element for element."""
    if not slots:
        return
    state = module.state_dict()
    if _is_scratch_style(layer):
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


def _user_value(layer, slot, grad: bool):
    if _is_scratch_style(layer):
        own = dict(layer.named_parameters())
        if grad:
            p = own[slot.user]
            return np.zeros_like(p.data) if p.grad is None else p.grad
        return dict(layer.named_buffers())[slot.user]
    return getattr(layer, slot.grad_name if grad else slot.user, None)


def _forward_names(layer, n) -> list:
    """Names of forward's positional inputs (x, t ...), for the records dx, dt."""
    try:
        ps = [p for p in inspect.signature(layer.forward).parameters.values()
              if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
        names = [p.name for p in ps][:n]
    except (TypeError, ValueError):
        names = []
    return names + [f"input{i}" for i in range(len(names), n)]


def _call_forward(layer, inputs, train):
    if _is_scratch_style(layer):
        layer.train(bool(train))
        if hasattr(layer, "zero_grad"):
            layer.zero_grad()
        return layer.forward(*inputs)
    try:
        has_flag = "train_flg" in inspect.signature(layer.forward).parameters
    except (TypeError, ValueError):
        has_flag = False
    return layer.forward(*inputs, train_flg=bool(train)) if has_flag else layer.forward(*inputs)


def _is_dropout(module) -> bool:
    return isinstance(module, nn.Module) and hasattr(module, "p") and "Dropout" in type(module).__name__


def _torch_run(counterpart, inputs, diff, G, dtype, train, keep=None):
    """torch forward and backward: output, input<i>.grad for the differentiable inputs, <param>.grad, buffers."""
    tensors = [torch.tensor(np.asarray(v).astype(dtype) if np.issubdtype(np.asarray(v).dtype, np.floating)
                            else np.asarray(v), requires_grad=i in diff) for i, v in enumerate(inputs)]
    module = counterpart if isinstance(counterpart, nn.Module) else None
    if module is not None:
        module.to(torch_dtype(dtype))
        module.train(bool(train))
        module.zero_grad(set_to_none=True)
    if module is not None and _is_dropout(module) and train:
        # torch.nn.Dropout's rule with the layer's own mask: y = x * keep / (1 - p), zeros when p = 1.
        p = module.p
        scale = torch.tensor(keep, dtype=tensors[0].dtype) * (0.0 if p == 1 else 1 / (1 - p))
        out = tensors[0] * scale
    else:
        out = counterpart(*tensors)
    if out.requires_grad:
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


# -- the check ----------------------------------------------------------------------------------------------
def check_layer(layer, torch_module_or_function, *inputs, nondiff=(), params=None, grads=None, train=None,
                grad_output=None, seed: int = 0, name: str | None = None) -> CheckResult:
    """Check a NumPy layer's forward and backward against a torch module or function.

    Args:
        layer: an object with ``forward(*inputs)`` and ``backward(dout)``; ``backward`` returns the gradient
            of the first differentiable input, or a tuple with one per differentiable input. Book style:
            parameters as attributes (W, b, gamma, beta, running_mean, running_var), gradients in ``d<name>``;
            ``forward(x, train_flg)`` gets the mode. scratch.nn style: ``named_parameters``, ``param.grad``,
            ``train()``/``eval()``.
        torch_module_or_function: the torch counterpart (``nn.Linear(3, 4)``, ``torch.sigmoid``...). A module's
            parameters and buffers are copied into the layer first; if one cannot be, the check is refused.
        inputs: NumPy arrays passed to both forwards; their floating dtype is the check's dtype.
        nondiff: positions or forward-argument names of inputs that take no gradient (labels, one-hot targets,
            masks). Integer inputs never take one.
        params: ``{layer_attr: torch_name}`` for names the checker does not know; ``"weight.T"`` for a
            transposed layout. Known: W/w/weight/gamma <- weight (W of a Linear transposed), b/bias/beta <- bias,
            running_mean, running_var.
        grads: ``{layer_attr: gradient_attr}`` where the gradient is not in ``d<attr>``.
        train: mode for both (default: the module's ``training``, True for a function).
        grad_output: upstream gradient (default: standard normal from ``checker_rng(seed)``, in the output's
            shape and dtype).
        seed: seed of the checker's stream (upstream gradient, dot-product test directions).
        name: the layer's name in the result (default: its class name).

    Returns:
        ``CheckResult``: ``.ok``, ``.verdict``, ``.records`` (out, d<input>, d<param>, buffers), ``.diagnoses``.
    """
    module = torch_module_or_function
    result = CheckResult(name or type(layer).__name__, _torch_name(module))
    try:
        _check(result, layer, module, inputs, nondiff, params, grads, train, grad_output, seed)
    except Refused as e:
        result.refused = str(e)
    return result


def assert_matches_torch(layer, torch_module_or_function, *inputs, **kwargs) -> CheckResult:
    """``check_layer`` for pytest: raises AssertionError carrying the table unless the layer matches torch."""
    result = check_layer(layer, torch_module_or_function, *inputs, **kwargs)
    if not result.ok:
        raise AssertionError("\n" + str(result))
    return result


def _check(result, layer, module, inputs, nondiff, params, grads, train, grad_output, seed):
    if not callable(getattr(layer, "forward", None)) or not callable(getattr(layer, "backward", None)):
        raise Refused(f"{type(layer).__name__} needs forward(...) and backward(dout) methods")
    inputs = [np.asarray(v) for v in inputs]
    if not inputs:
        raise Refused("no inputs given")
    names = _forward_names(layer, len(inputs))
    nondiff = {names.index(n) if isinstance(n, str) and n in names else n for n in nondiff}
    bad = [n for n in nondiff if not isinstance(n, int) or not 0 <= n < len(inputs)]
    if bad:
        raise Refused(f"nondiff={bad!r} names no input (inputs: {', '.join(names)})")
    diff = [i for i, v in enumerate(inputs) if np.issubdtype(v.dtype, np.floating) and i not in nondiff]
    if not diff:
        raise Refused("no floating input takes a gradient")
    dtype = inputs[diff[0]].dtype
    if dtype not in (np.float32, np.float64):
        raise Refused(f"inputs must be float32 or float64, got {dtype}")
    if train is None:
        train = module.training if isinstance(module, nn.Module) else True
    result.dtype = str(dtype)
    result.mode = ("train" if train else "eval") if isinstance(module, nn.Module) else ""
    result.inputs = ", ".join(f"{names[i]} {inputs[i].shape}" for i in range(len(inputs)))
    tol = layer_tolerance(dtype)
    if isinstance(module, nn.Module):
        module.to(torch_dtype(dtype))
    slots = _slots(layer, module, params, grads)
    _copy_weights(layer, module, slots, dtype)
    snapshot = copy.deepcopy(module) if isinstance(module, nn.Module) else module
    for s in slots:  # a backward that leaves dW unwritten must not pass on an earlier call's dW
        if not s.buffer and not _is_scratch_style(layer) and hasattr(layer, s.grad_name):
            setattr(layer, s.grad_name, None)
    rng = checker_rng(seed)
    state = np.random.get_state()  # the adjoint test replays the layer's draws from np.random
    try:
        out = _call_forward(layer, [v.copy() for v in inputs], train)
    except Exception as e:  # noqa: BLE001 - a forward that rejects the input is reported, not compared
        raise Refused(f"forward{tuple(names)} raised {type(e).__name__}: {e}") from e
    if not isinstance(out, (np.ndarray, np.generic, float)):
        raise Refused(f"forward returned {type(out).__name__}, not an array")
    out = np.asarray(out)
    keep = None
    if _is_dropout(module) and train:
        keep = _dropout_keep(layer, out, inputs[0])
    G = (rng.standard_normal(out.shape) if grad_output is None else np.asarray(grad_output)).astype(dtype)
    if G.shape != out.shape:
        raise Refused(f"grad_output has shape {G.shape}, the layer's output {out.shape}")
    try:
        got = layer.backward(G.copy())
    except Exception as e:  # noqa: BLE001
        if train:
            raise Refused(f"backward(dout) raised {type(e).__name__}: {e}") from e
        # The book's Dropout and BatchNormalization have no backward at test time: compare the forward.
        result.notes.append(f"backward not checked in eval mode: it raised {type(e).__name__}: {e}")
        diff, got = [], []
    got = list(got) if isinstance(got, (tuple, list)) else [got]
    if len(got) != len(diff):
        raise Refused(f"backward returned {len(got)} gradient(s) for {len(diff)} differentiable input(s) "
                      f"({', '.join(names[i] for i in diff)}); mark inputs without gradient with nondiff=")
    ours = OrderedDict(out=out)
    pairs = OrderedDict(out="output")
    for i, g in zip(diff, got):
        ours["d" + names[i]] = g
        pairs["d" + names[i]] = f"input{i}.grad"
    for s in slots:
        if not s.buffer and (diff or not result.notes):
            ours[s.grad_name] = _user_value(layer, s, grad=True)
            pairs[s.grad_name] = s.torch + ".grad"
    for s in slots:
        if s.buffer:
            ours[s.user] = _user_value(layer, s, grad=False)
            pairs[s.user] = s.torch
    missing = [n for n, v in ours.items() if v is None]
    if missing:
        raise Refused(f"the layer has no {', '.join(missing)} after backward (gradient attributes: d<name>; "
                      "pass grads={'W': 'YOUR_GRAD_ATTR'})")
    transposed = {s.grad_name if not s.buffer else s.user for s in slots if s.transpose}
    run = _Run(layer, module, snapshot, inputs, diff, G, dtype, train, keep, pairs, transposed, tol)
    try:
        ref = run.reference()
    except Exception as e:  # noqa: BLE001 - inputs torch does not take: nothing to compare against
        raise Refused(f"{result.against} raised {type(e).__name__} on these inputs: {e}") from e
    result.records = run.records(ours, ref)
    _diagnose(result, run, ours, ref, slots, state, rng)


class _Run:
    """One configuration's torch side, re-runnable under a hypothesis (another eps, another reference)."""

    def __init__(self, layer, module, snapshot, inputs, diff, G, dtype, train, keep, pairs, transposed, tol):
        self.__dict__.update(locals())
        del self.__dict__["self"]

    def torch_values(self, dtype=None, **overrides):
        module = copy.deepcopy(self.snapshot) if isinstance(self.snapshot, nn.Module) else self.snapshot
        for k, v in overrides.items():
            setattr(module, k, v)
        dtype = dtype or self.dtype
        values = _torch_run(module, self.inputs, self.diff, self.G.astype(dtype), dtype, self.train, self.keep)
        return OrderedDict((u, _layout(values[t], u in self.transposed)) for u, t in self.pairs.items())

    def reference(self, **overrides):
        return self.torch_values(**overrides)

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
                                        "ok" if e.ok(self.tol) else "FAIL", e.float64_error,
                                        e.torch_float64_error))
        return records


def _layout(value, transpose):
    return value.T if transpose else value


def _dropout_keep(layer, out, x):
    """The layer's keep mask: its ``mask`` attribute, else where its output is non-zero."""
    mask = getattr(layer, "mask", None)
    if mask is None:
        mask = getattr(layer, "multiplier", None)
    if isinstance(mask, np.ndarray) and mask.shape == x.shape:
        return np.asarray(mask != 0)
    if out.shape != x.shape:
        raise Refused(f"dropout output has shape {out.shape}, the input {x.shape}: its mask cannot be read")
    return out != 0


# -- diagnoses ----------------------------------------------------------------------------------------------
def _diagnose(result, run, ours, ref, slots, state, rng):
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
    adjoint = _adjoint(run, ours, slots, state, rng) if run.diff else {}
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
    if _is_dropout(module) and 0 < module.p < 1 and close(1 - module.p):
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


def dot_product_test(layer, *inputs, nondiff=(), train=True, grad_output=None, seed: int = 0) -> dict:
    """Is ``layer.backward`` the adjoint of ``layer.forward``? A check that needs no torch.

    For each differentiable input and each parameter attribute with a gradient (W -> dW, b -> db,
    gamma -> dgamma, beta -> dbeta; scratch.nn-style: ``param.grad``), with a random direction v and the
    upstream gradient G from ``checker_rng(seed)``, in float64:
    <(f(x + h v) - f(x - h v)) / 2h, G> must equal <dx, v> to ``ADJOINT_TOL`` of their scale,
    h = ``ADJOINT_STEP`` x max(1, max|x|). np.random's global state is replayed before every forward, so
    the book's dropout draws the same mask each time.

    Returns:
        {gradient name: sentence} for the gradients that fail; empty when all pass.

    Raises:
        ValueError: the test cannot run (the forward is not repeatable, or fails on float64 copies).
    """
    inputs = [np.asarray(v) for v in inputs]
    names = _forward_names(layer, len(inputs))
    nondiff = {names.index(n) if isinstance(n, str) and n in names else n for n in nondiff}
    diff = [i for i, v in enumerate(inputs) if np.issubdtype(v.dtype, np.floating) and i not in nondiff]
    rng = checker_rng(seed)
    state = np.random.get_state()
    out = np.asarray(_call_forward(layer, [v.copy() for v in inputs], train))
    G = rng.standard_normal(out.shape) if grad_output is None else np.asarray(grad_output, np.float64)
    layer.backward(G.astype(out.dtype))
    if _is_scratch_style(layer):
        slots = [_Slot(n, n, False, False, n + ".grad") for n, _ in layer.named_parameters()]
    else:
        slots = [_Slot(a, a, False, False, "d" + a) for a in ("W", "w", "b", "gamma", "beta", "weight", "bias")
                 if isinstance(getattr(layer, a, None), np.ndarray) and getattr(layer, "d" + a, None) is not None]
    ours = OrderedDict([("out", out)] + [("d" + names[i], None) for i in diff])
    run = _Run(layer, None, None, inputs, diff, G, inputs[diff[0]].dtype if diff else np.float64, train, None,
               {}, set(), 0.0)
    failures = _adjoint(run, ours, slots, state, rng)
    if failures is None:
        raise ValueError("dot_product_test: the forward is not repeatable with np.random's state replayed "
                         "(a layer with its own generator), or fails on float64 copies")
    return failures


def _adjoint(run, ours, slots, state, rng):
    """Dot-product test in float64: <J v, G> = <backward(G), v> for each gradient, by central differences.

    Returns {tensor: sentence} for the tensors that fail it; None when it cannot run (a forward that is not
    repeatable with np.random's state replayed, as a layer drawing from its own generator).
    """
    layer = run.layer
    scratch = _is_scratch_style(layer)
    saved = {s.user: np.array(_user_value(layer, s, grad=False) if scratch and s.buffer else
                              (dict(layer.named_parameters())[s.user].data if scratch else getattr(layer, s.user)))
             for s in slots}
    inputs = [np.asarray(v, np.float64) if i in run.diff else v for i, v in enumerate(run.inputs)]
    G = np.asarray(run.G, np.float64)

    def set_param(s, value):
        if scratch:
            target = dict(layer.named_parameters())[s.user].data if not s.buffer else _user_value(layer, s, False)
            if target.dtype != value.dtype and hasattr(layer, "to"):
                layer.to(value.dtype)
                target = dict(layer.named_parameters())[s.user].data if not s.buffer else \
                    _user_value(layer, s, False)
            np.copyto(target, value)
        else:
            setattr(layer, s.user, value.copy())

    def forward(xs):
        for s in slots:  # buffers too: a train-mode forward moves the running statistics
            if s.buffer:
                set_param(s, base[s.user])
        np.random.set_state(state)
        return np.asarray(_call_forward(layer, [v.copy() for v in xs], run.train), dtype=np.float64)

    after = np.random.get_state()
    base = {k: v.astype(np.float64) if np.issubdtype(v.dtype, np.floating) else v for k, v in saved.items()}
    failures = {}
    try:
        for s in slots:
            set_param(s, base[s.user])
        out = forward(inputs)
        if not np.array_equal(out, forward(inputs)) or out.shape != G.shape:
            return None
        got = layer.backward(G.copy())
        got = list(got) if isinstance(got, (tuple, list)) else [got]
        grads = OrderedDict((n, np.asarray(g, np.float64)) for n, g in zip([n for n in ours if n != "out"], got))
        for s in slots:
            if not s.buffer:
                grads[s.grad_name] = np.asarray(_user_value(layer, s, grad=True), np.float64)
        targets = [(n, ("input", i)) for n, i in zip(list(grads)[:len(run.diff)], run.diff)]
        targets += [(s.grad_name, ("param", s)) for s in slots if not s.buffer]
        for name, (kind, what) in targets:
            point = inputs[what] if kind == "input" else base[what.user]
            g = grads.get(name)
            if g is None or g.shape != point.shape:
                continue
            v = rng.standard_normal(point.shape)
            h = ADJOINT_STEP * max(1.0, float(np.max(np.abs(point), initial=0.0)))
            values = []
            for sign in (1, -1):
                if kind == "input":
                    xs = list(inputs)
                    xs[what] = point + sign * h * v
                    values.append(forward(xs))
                else:
                    set_param(what, point + sign * h * v)
                    values.append(forward(inputs))
                    set_param(what, point)
            jv = (values[0] - values[1]) / (2 * h)
            lhs, rhs = float(np.sum(jv * G)), float(np.sum(g * v))
            scale = float(np.sum(np.abs(jv * G)) + np.sum(np.abs(g * v)))
            if abs(lhs - rhs) > ADJOINT_TOL * scale:
                failures[name] = (f"backward is not the adjoint of forward for {name}: dot-product test "
                                  f"<J v, dout> = {lhs:.6g} but <{name}, v> = {rhs:.6g}")
    except Exception:  # noqa: BLE001 - a forward that fails on float64 copies: no test, no claim
        return None
    finally:  # the layer gets back its weights and dtype, np.random its state
        if scratch and slots and hasattr(layer, "to"):
            layer.to(run.dtype)
        for s in slots:
            set_param(s, saved[s.user])
        np.random.set_state(after)
    return failures


# -- command line -------------------------------------------------------------------------------------------
def add_arguments(parser):
    parser.add_argument("path", metavar="PATH.py", help="a Python file defining layers (the book's names: "
                        + ", ".join(BOOK) + "; or scratch.nn-style modules named as torch's)")
    parser.add_argument("--layers", nargs="+", metavar="NAME", help="check only these classes")
    parser.add_argument("--dtype", choices=("float64", "float32"), default="float64",
                        help="dtype of inputs and weights (float64)")
    parser.add_argument("--configs", type=int, default=5, help="random shapes per layer and mode (5)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the checker's stream (0)")
    parser.add_argument("--json", action="store_true", help="print a JSON list, one record per layer")


def main(args) -> int:
    import importlib.util
    import sys
    from pathlib import Path

    path = Path(args.path)
    if args.configs < 1:
        print("experiments check: --configs must be >= 1", file=sys.stderr)
        return 2
    try:
        spec = importlib.util.spec_from_file_location(f"_checked_{path.stem}", path)
        if spec is None or not path.is_file():
            raise FileNotFoundError(f"no such file: {path}")
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
    except BaseException as e:  # noqa: BLE001 - one line, not a traceback
        if isinstance(e, KeyboardInterrupt):
            raise
        print(f"experiments check: cannot import {path}: {type(e).__name__}: {e}", file=sys.stderr)
        return 2
    classes = OrderedDict((n, c) for n, c in vars(mod).items() if inspect.isclass(c) and hasattr(c, "forward")
                          and hasattr(c, "backward"))
    if args.layers:
        unknown = [n for n in args.layers if n not in classes]
        if unknown:
            print(f"experiments check: {path} has no layer class {', '.join(unknown)} "
                  f"(it has {', '.join(classes) or 'none'})", file=sys.stderr)
            return 2
        classes = OrderedDict((n, classes[n]) for n in args.layers)
    reports = [check_class(n, c, np.dtype(args.dtype), args.configs, args.seed) for n, c in classes.items()]
    if args.json:
        print(json.dumps([r for r, _ in reports], indent=1))
    else:
        print(f"{'layer':22s} {'against':26s} {'configs':>7s} {'worst':>9s}  verdict")
        for r, results in reports:
            worst = "-" if r["worst"] is None else f"{r['worst']:9.2e}"
            print(f"{r['layer']:22s} {r['against'] or '-':26s} {r.get('configs', 0):7d} {worst:>9s}  "
                  f"{r['verdict'].split(':')[0]}")
            if r["ok"] is False:
                print(textwrap.fill(r["diagnosis"], 116, initial_indent="    ", subsequent_indent="    "))
            shown = next((x for x in results if not x.ok), None)
            if shown is not None and not shown.refused:
                where = ", ".join(filter(None, (shown.dtype, shown.mode, shown.inputs)))
                print(f"    first failing configuration: {where}")
                print("\n".join("    " + line for line in str(shown).splitlines()[1:]))
    checked = [r for r, _ in reports if r["checked"]]
    if not checked:
        print(f"experiments check: no layer class it knows in {path}", file=sys.stderr)
        return 2
    return 0 if all(r["ok"] for r in checked) else 1


def check_class(name, cls, dtype, configs: int = 5, seed: int = 0):
    """Check one class over random configurations: (JSON record, [CheckResult...])."""
    case = _case_for(name, cls)
    if case is None:
        return dict(layer=name, against=None, ok=None, checked=False, worst=None, configs=0,
                    diagnosis="not checked: no torch counterpart known",
                    verdict="not checked: no torch counterpart known"), []
    results = []
    saved = np.random.get_state()
    for i in range(configs):
        rng = checker_rng(seed * 1000 + i)
        # The book's layers draw dropout masks from np.random: seeded from the checker's stream, a run repeats.
        np.random.seed(int(rng.integers(2**32)))
        for train in case.modes:
            try:
                layer, module, inputs, kw = case.build(cls, rng, dtype)
            except Exception as e:  # noqa: BLE001
                results.append(CheckResult(name, case.against, refused=f"cannot build {name} with the book's "
                                           f"arguments: {type(e).__name__}: {e}"))
                break
            module.train(train)
            results.append(check_layer(layer, module, *inputs, seed=seed * 1000 + i, name=name, **kw))
    np.random.set_state(saved)
    bad = [r for r in results if not r.ok]
    first = next((r for r in bad if r.refused), None) or next(
        (r for r in bad if r.verdict.startswith("mismatch")), None)
    if first is None and bad:
        texts = OrderedDict()
        for r in bad:
            for d in r.diagnoses:
                texts.setdefault(d.code, d.text)
        verdict = "differs from torch: " + "; ".join(texts.values())
    else:
        verdict = "ok" if first is None else first.verdict
    worst = max((r.worst for r in results if r.records), default=float("nan"))
    worst = float(worst) if np.isfinite(worst) else None  # JSON has no nan or inf: refused, or shapes differ
    record = dict(layer=name, against=case.against, ok=not bad, checked=True, worst=worst,
                  diagnosis="" if not bad else verdict.split(": ", 1)[1], verdict=verdict,
                  configs=len(results), dtype=str(dtype))
    return record, results


@dataclass
class _Case:
    against: str
    build: object  # (cls, rng, dtype) -> (layer, torch module, inputs, check_layer keywords)
    modes: tuple = (True,)


def _randn(rng, shape, dtype):
    return rng.standard_normal(shape).astype(dtype)


def _init(module, rng):
    """Random weights and statistics for the torch module (copied into the layer by check_layer)."""
    with torch.no_grad():
        for name, t in module.state_dict().items():
            if t.is_floating_point():
                v = rng.standard_normal(tuple(t.shape))
                if name.endswith("running_var") or (isinstance(module, nn.modules.batchnorm._BatchNorm)
                                                    and name.endswith("weight")):
                    v = rng.uniform(0.5, 1.5, tuple(t.shape))
                t.copy_(torch.from_numpy(v))
    return module


def _ctor_args(cls):
    try:
        return [p for p in inspect.signature(cls.__init__).parameters if p != "self"]
    except (TypeError, ValueError):
        return []


def _book_affine(cls, rng, dtype):
    n, i, o = rng.integers(2, 9), rng.integers(1, 8), rng.integers(1, 8)
    m = _init(nn.Linear(int(i), int(o)).to(torch_dtype(dtype)), rng)
    return cls(np.zeros((i, o), dtype), np.zeros(o, dtype)), m, [_randn(rng, (n, i), dtype)], {}


def _book_elementwise(module):
    def build(cls, rng, dtype):
        shape = tuple(int(s) for s in rng.integers(1, 7, size=rng.integers(2, 4)))
        return cls(), module(), [_randn(rng, shape, dtype)], {}
    return build


def _book_softmax_loss(cls, rng, dtype):
    n, c = int(rng.integers(2, 9)), int(rng.integers(2, 8))
    x = _randn(rng, (n, c), dtype)
    labels = rng.integers(0, c, size=n)
    t = labels if rng.random() < 0.5 else np.eye(c, dtype=dtype)[labels]
    return cls(), nn.CrossEntropyLoss(), [x, t], {"nondiff": (1,)}


def _book_dropout(cls, rng, dtype):
    p = float(rng.choice([0.2, 0.3, 0.5, 0.6]))
    shape = (int(rng.integers(3, 9)), int(rng.integers(2, 9)))
    layer = cls(p) if _ctor_args(cls)[:1] in (["dropout_ratio"], ["p"]) else cls()
    return layer, nn.Dropout(p), [_randn(rng, shape, dtype)], {}


def _book_batchnorm(cls, rng, dtype):
    n, d = int(rng.integers(3, 9)), int(rng.integers(1, 6))
    m = _init(nn.BatchNorm1d(d, momentum=0.1).to(torch_dtype(dtype)), rng)
    layer = cls(np.ones(d, dtype), np.zeros(d, dtype), 0.9) if "momentum" in _ctor_args(cls) else \
        cls(np.ones(d, dtype), np.zeros(d, dtype))
    x = _randn(rng, (n, d), dtype) * rng.uniform(0.5, 2, d).astype(dtype)
    return layer, m, [x], {}


def _book_conv(cls, rng, dtype):
    n, c, fn = (int(v) for v in rng.integers(1, 4, size=3))
    fh, fw = (int(v) for v in rng.integers(1, 4, size=2))
    stride, pad = int(rng.integers(1, 3)), int(rng.integers(0, 2))
    h, w = fh + int(rng.integers(0, 5)), fw + int(rng.integers(0, 5))
    m = _init(nn.Conv2d(c, fn, (fh, fw), stride=stride, padding=pad).to(torch_dtype(dtype)), rng)
    layer = cls(np.zeros((fn, c, fh, fw), dtype), np.zeros(fn, dtype), stride, pad)
    return layer, m, [_randn(rng, (n, c, h, w), dtype)], {}


def _book_pool(cls, rng, dtype):
    ph, pw = (int(v) for v in rng.integers(1, 4, size=2))
    stride = int(rng.integers(1, 3))
    n, c = (int(v) for v in rng.integers(1, 4, size=2))
    h, w = ph + int(rng.integers(0, 5)), pw + int(rng.integers(0, 5))
    return cls(ph, pw, stride, 0), nn.MaxPool2d((ph, pw), stride=stride), [_randn(rng, (n, c, h, w), dtype)], {}


BOOK = OrderedDict(
    Relu=_Case("torch.nn.ReLU", _book_elementwise(nn.ReLU)),
    Sigmoid=_Case("torch.nn.Sigmoid", _book_elementwise(nn.Sigmoid)),
    Affine=_Case("torch.nn.Linear", _book_affine),
    SoftmaxWithLoss=_Case("torch.nn.CrossEntropyLoss", _book_softmax_loss),
    Dropout=_Case("torch.nn.Dropout", _book_dropout, (True, False)),
    BatchNormalization=_Case("torch.nn.BatchNorm1d", _book_batchnorm, (True, False)),
    Convolution=_Case("torch.nn.Conv2d", _book_conv),
    Pooling=_Case("torch.nn.MaxPool2d", _book_pool),
)


def _torch_style(name):
    """scratch.nn-style modules: built with torch's constructor arguments, weights copied by state_dict."""
    def build(cls, rng, dtype):
        td = torch_dtype(dtype)
        if name == "Linear":
            i, o = (int(v) for v in rng.integers(1, 8, size=2))
            args, shape = (i, o), (int(rng.integers(2, 9)), i)
        elif name in ("Conv2d",):
            c, o, k = (int(v) for v in rng.integers(1, 4, size=3))
            args, shape = (c, o, k), (int(rng.integers(1, 4)), c, k + int(rng.integers(0, 4)), k + 2)
        elif name in ("MaxPool2d", "AvgPool2d"):
            k = int(rng.integers(1, 4))
            args, shape = (k,), (2, int(rng.integers(1, 4)), k + int(rng.integers(0, 4)), k + 1)
        elif name in ("BatchNorm1d", "BatchNorm2d"):
            c = int(rng.integers(1, 5))
            args = (c,)
            shape = (int(rng.integers(3, 8)), c) + ((int(rng.integers(1, 4)), 3) if name.endswith("2d") else ())
        elif name == "Dropout":
            args, shape = (float(rng.choice([0.2, 0.5])),), (int(rng.integers(3, 8)), 5)
        else:
            args, shape = (), tuple(int(s) for s in rng.integers(1, 7, size=2))
        m = _init(getattr(nn, name)(*args).to(td), rng)
        return cls(*args), m, [_randn(rng, shape, dtype)], {}
    return build


TORCH_STYLE = ("Linear", "ReLU", "Sigmoid", "Tanh", "Conv2d", "MaxPool2d", "AvgPool2d", "BatchNorm1d",
               "BatchNorm2d", "Dropout")


def _case_for(name, cls):
    params = _ctor_args(cls)
    torch_like = _is_scratch_style(cls) or (name == "Dropout" and params[:1] == ["p"])
    if name in TORCH_STYLE and (torch_like or name not in BOOK):
        modes = (True, False) if name.startswith(("BatchNorm", "Dropout")) else (True,)
        return _Case(f"torch.nn.{name}", _torch_style(name), modes)
    return BOOK.get(name)
