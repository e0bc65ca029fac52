"""check_layer, assert_matches_torch and check_class: one layer against its torch counterpart."""
import copy
from collections import OrderedDict

import numpy as np
from torch import nn

from experiments.check.adapters import (FunctionPair, call_forward, copy_weights, dropout_keep, forward_names,
                                        is_dropout,
                                        is_scratch_style, slots_for, user_value)
from experiments.check.diagnoses import diagnose
from experiments.check.inputs import checker_rng, flavour
from experiments.check.recognize import case_for, unmapped_reason
from experiments.check.diagnoses import VARIANTS, kink_note
from experiments.check.results import CheckResult, Diagnosis, Refused, TensorRecord, UserCodeError, traceback_tail
from experiments.check.torchrun import Run, output_shape, torch_name
from experiments.compare import layer_tolerance
from torch_ref.nn import torch_dtype


def check_layer(layer, torch_module_or_function, *inputs, nondiff=(), params=None, grads=None, train=None,
                grad_output=None, seed: int = 0, name: str | None = None, rtol: float | None = None,
                atol: float = 0.0) -> CheckResult:
    """Check a NumPy layer's forward and backward against a torch module or function.

    Torch is the judge: a tensor within tolerance of torch's is never failed by a secondary test; the
    diagnoses (a variant re-run in torch, a factor, a mask, the dot-product test) only explain tensors that
    already disagree.

    Args:
        layer: an object with ``forward(*inputs)`` and ``backward(dout)``; ``backward`` returns the gradient
            of the first differentiable input, or a tuple with one per differentiable input. Book style:
            parameters as attributes (W, b, gamma, beta, running_mean, running_var), gradients in ``d<name>``;
            ``forward(x, train_flg)`` gets the mode (also named ``train``, ``training``, ``is_training``).
            scratch.nn style: ``named_parameters``, ``param.grad``, ``train()``/``eval()``.
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
        grad_output: upstream gradient (default: standard normal from ``checker_rng(seed)``, in the shape of
            torch's output and the check's dtype).
        seed: seed of the checker's stream (upstream gradient, dot-product test directions).
        name: the layer's name in the result (default: its class name).
        rtol: scaled tolerance, max|ours - torch| / max|torch| (default: docs/design.md's, 1e-10 in float64,
            1e-5 in float32); torch.testing's name.
        atol: absolute tolerance: a tensor also passes when max|ours - torch| <= atol (default 0).

    Returns:
        ``CheckResult``: ``.ok``, ``.verdict`` (ok, mismatch, differs by design, error, refused), ``.records``
        (out, d<input>, d<param>, buffers), ``.diagnoses``.
    """
    module = torch_module_or_function
    result = CheckResult(name or type(layer).__name__, torch_name(module))
    try:
        _check(result, layer, module, inputs, nondiff, params, grads, train, grad_output, seed, rtol, atol)
    except Refused as e:
        result.refused = str(e)
    except UserCodeError as e:
        result.error, result.error_tail = str(e), e.tail
    return result


def assert_matches_torch(layer, torch_module_or_function, *inputs, accept=(), **kwargs) -> CheckResult:
    """``check_layer`` for pytest: raises AssertionError unless the layer matches torch.

    The message's first line names the layer, the tensor and the diagnosis; the table follows. ``accept``
    lists by-design variants the test accepts (codes as in ``VARIANTS``: "log-eps", "bn-eps",
    "non-inverted-dropout", "loss-dout-1", "biased-running-var", "running-var-from-0", "float64-inside"):
    a layer that differs from torch only by those passes. ``rtol``/``atol`` as in ``check_layer``.
    """
    __tracebackhide__ = True  # pytest shows the test's line, not the checker's frames
    unknown = [a for a in accept if a not in VARIANTS]
    if unknown:
        raise ValueError(f"accept: unknown variant(s) {', '.join(map(repr, unknown))}; "
                         f"known: {', '.join(VARIANTS)}")
    result = check_layer(layer, torch_module_or_function, *inputs, **kwargs)
    result.accepted = tuple(accept)
    if not result.ok:
        failing = [r.name for r in result.records if not r.ok]
        tensors = f" ({', '.join(failing)})" if failing else ""
        raise AssertionError(f"{result.layer} vs {result.against}{tensors}: {result.verdict}\n{result}")
    return result


def _check(result, layer, module, inputs, nondiff, params, grads, train, grad_output, seed, rtol, atol):
    if not callable(getattr(layer, "forward", None)) or not callable(getattr(layer, "backward", None)):
        raise Refused(f"{type(layer).__name__} needs forward(...) and backward(dout) methods")
    inputs = [np.asarray(v) for v in inputs]
    if not inputs:
        raise Refused("no inputs given")
    names = forward_names(layer, len(inputs))
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
    tol = layer_tolerance(dtype) if rtol is None else float(rtol)
    if isinstance(module, nn.Module):
        module.to(torch_dtype(dtype))
    slots = slots_for(layer, module, params, grads)
    copy_weights(layer, module, slots, dtype)
    snapshot = copy.deepcopy(module) if isinstance(module, nn.Module) else module
    for s in slots:  # a backward that leaves dW unwritten must not pass on an earlier call's dW
        if not s.buffer and not is_scratch_style(layer) and hasattr(layer, s.grad_name):
            setattr(layer, s.grad_name, None)
    try:  # torch first, on its own copy: its output's shape decides dout's, and a wrong shape is the layer's
        expected = output_shape(snapshot, inputs, dtype, train)
    except Exception as e:  # noqa: BLE001 - inputs torch does not take: nothing to compare against
        raise Refused(f"{result.against} raised {type(e).__name__} on these inputs: {e}") from e
    rng = checker_rng(seed)
    state = np.random.get_state()  # the dot-product test replays the layer's draws from np.random
    given = [v.copy() for v in inputs]  # the layer's own arrays: modified in place, they tell
    try:
        out = call_forward(layer, given, train)
    except Refused:  # an adapter found the function is not what its name says (a loss without its gradient)
        raise
    except Exception as e:  # noqa: BLE001 - the user's code raised: the verdict is "error"
        raise UserCodeError(f"forward({', '.join(names)})", e) from e
    findings = [d for d in (_modified(f"forward modified its input {names[i]} in place", given[i], inputs[i])
                            for i in range(len(inputs))) if d]
    if not isinstance(out, (np.ndarray, np.generic, float, int)):
        result.diagnoses += findings + [Diagnosis("type", "bug", f"forward returned a {type(out).__name__}, not "
                                                  "an ndarray", ("out",))]
        return
    out = np.asarray(out)
    if out.shape != tuple(expected):
        result.records = [TensorRecord("out", "output", out.shape, str(out.dtype), float("inf"), float("inf"), (),
                                       tol, "shape")]
        result.diagnoses += findings + [Diagnosis(
            "shape", "bug", f"out has shape {out.shape}, torch's {tuple(expected)}: the layer's forward returns "
            "another shape for these inputs", ("out",))]
        result.notes.append("backward not compared: the output's shape differs from torch's")
        return
    keep = None
    if is_dropout(module) and train:
        keep = dropout_keep(layer, out, inputs[0])
    G = (rng.standard_normal(out.shape) if grad_output is None else np.asarray(grad_output)).astype(dtype)
    if G.shape != out.shape:
        raise Refused(f"grad_output has shape {G.shape}, the layer's output {out.shape}")
    dout = G.copy()
    try:
        got = layer.backward(dout)
    except Exception as e:  # noqa: BLE001
        if train:
            raise UserCodeError("backward(dout)", e) from e
        # The book's Dropout and BatchNormalization have no backward at test time: compare the forward.
        result.notes.append(f"backward not checked in eval mode: it raised {type(e).__name__}: {e}")
        diff, got = [], []
    if not np.array_equal(dout, G):
        result.notes.append("backward wrote into dout in place (torch never does; harmless only while "
                            "nothing else reads dout, as in the book's sequential networks)")
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
            ours[s.grad_name] = user_value(layer, s, grad=True)
            pairs[s.grad_name] = s.torch + ".grad"
    for s in slots:
        if s.buffer:
            ours[s.user] = user_value(layer, s, grad=False)
            pairs[s.user] = s.torch
    missing = [n for n, v in ours.items() if v is None]
    if missing:
        raise Refused(f"the layer has no {', '.join(missing)} after backward (gradient attributes: d<name>; "
                      "pass grads={'W': 'YOUR_GRAD_ATTR'})")
    for n, v in ours.items():  # a gradient is an ndarray: a list or a number only looks like one
        if n != "out" and not isinstance(v, np.ndarray) and not (np.ndim(v) == 0 and isinstance(v, np.generic)):
            findings.append(Diagnosis("type", "bug", f"{n} is a {type(v).__name__}, not an ndarray", (n,)))
    transposed = {s.grad_name if not s.buffer else s.user for s in slots if s.transpose}
    run = Run(layer, module, snapshot, inputs, diff, G, dtype, train, keep, pairs, transposed, tol, atol)
    try:
        ref = run.reference()
    except Exception as e:  # noqa: BLE001 - inputs torch does not take: nothing to compare against
        raise Refused(f"{result.against} raised {type(e).__name__} on these inputs: {e}") from e
    result.records = run.records(ours, ref)
    result.diagnoses += findings
    note = kink_note(module, inputs)
    if note:
        result.notes.append(note)
    diagnose(result, run, ours, ref, slots, state, rng)


def _modified(text, now, before):
    """A Diagnosis when ``now`` differs from ``before`` (an array the user's code received)."""
    if np.array_equal(now, before, equal_nan=np.issubdtype(before.dtype, np.floating)):
        return None
    changed = np.argwhere(~((now == before) | (np.isnan(now) & np.isnan(before)))
                          if np.issubdtype(before.dtype, np.floating) else now != before)
    first = tuple(int(i) for i in changed[0]) if len(changed) else ()
    return Diagnosis("inplace", "bug", f"{text} ({len(changed)} element(s) changed, first at {first}): the "
                     "caller's array is overwritten; work on a copy (out = x.copy())", ())


def check_class(name, cls, dtype, configs: int = 5, seed: int = 0):
    """Check one class over configurations (exact zeros and ties, batch size 1, then random shapes).

    Returns (JSON record, [CheckResult...]); the record's verdict is the first error, refusal or mismatch, else
    the by-design variants found, else ok.
    """
    case = case_for(name, cls)
    if case is None:
        reason = unmapped_reason(name, cls)
        return dict(layer=name, against=None, ok=None, checked=False, worst=None, configs=0,
                    diagnosis=reason, verdict="not checked: " + reason, codes=[], notes=[], traceback=""), []
    return run_case(name, case, cls, dtype, configs, seed)


def run_case(name, case, target, dtype, configs: int = 5, seed: int = 0):
    """``check_class``'s loop for a recognised case (a class, or a pair of functions)."""
    results = []
    saved = np.random.get_state()
    try:
        for i in range(configs):
            rng = checker_rng(seed * 1000 + i)
            # The book's layers draw dropout masks from np.random: seeded from the checker's stream, a run repeats.
            np.random.seed(int(rng.integers(2**32)))
            kind = flavour(i)
            for train in case.modes:
                try:
                    layer, module, inputs, kw = case.build(target, rng, dtype, kind)
                except Refused as e:
                    results.append(CheckResult(name, case.against, refused=str(e)))
                    break
                except Exception as e:  # noqa: BLE001 - the user's constructor raised
                    results.append(CheckResult(name, case.against, error=f"cannot build {name} with the "
                                               f"arguments {case.args}: {type(e).__name__}: {e}",
                                               error_tail=traceback_tail(e)))
                    break
                if isinstance(module, nn.Module):
                    module.train(train)
                kw = dict(kw)
                if not isinstance(module, nn.Module):
                    kw.setdefault("train", train)
                r = check_layer(layer, module, *inputs, seed=seed * 1000 + i, name=name, **kw)
                small = kind == "batch size 1" and np.shape(inputs[0])[:1] != (1,)
                r.inputs += f" [{'smallest batch torch takes' if small else kind}]"
                results.append(r)
    finally:
        np.random.set_state(saved)
    bad = [r for r in results if not r.ok]
    first = next((r for r in bad if r.kind in ("error", "refused", "mismatch")), None)
    verdict = "ok" if first is None else first.verdict
    also = next((r for r in bad if r.kind == "mismatch"), None)
    if first is not None and first.kind != "mismatch" and also is not None:
        # the error is the headline, but the bug another configuration showed must not be lost behind it
        verdict += "; on another configuration: " + also.verdict.split(": ", 1)[1]
    if first is None and bad:
        texts = OrderedDict()
        for r in bad:
            for d in r.diagnoses:
                texts.setdefault(d.code, d.text)
        verdict = "differs by design: " + "; ".join(texts.values())
        inconsistent = _dropout_modes(results)
        if inconsistent:
            verdict = "mismatch: " + inconsistent
    codes = list(OrderedDict.fromkeys(d.code for r in results for d in r.diagnoses))
    if verdict.startswith("mismatch: ") and first is None:
        codes.append("dropout-modes")
    worst = max((r.worst for r in results if r.records), default=float("nan"))
    worst = float(worst) if np.isfinite(worst) else None  # JSON has no nan or inf: refused, or shapes differ
    ok = verdict == "ok"
    record = dict(layer=name, against=case.against, ok=ok, checked=True, worst=worst,
                  diagnosis="" if ok else verdict.split(": ", 1)[1], verdict=verdict,
                  configs=len(results), dtype=str(dtype), codes=codes,
                  traceback=first.error_tail if first else "",
                  notes=list(OrderedDict.fromkeys(n for r in results for n in r.notes)))
    return record, results


def _dropout_modes(results) -> str:
    """Non-inverted in training but x passed unscaled at eval: neither the book's dropout nor torch's."""
    train = [r for r in results if r.mode == "train"]
    evals = [r for r in results if r.mode == "eval"]
    if any("non-inverted-dropout" in r.variants for r in train) and any(r.ok for r in evals):
        return ("non-inverted in training (no 1/(1-p)) but x passed unscaled at eval: the expected activation "
                "changes by (1 - p) between training and inference; scale by (1 - p) at eval (the book's) or by "
                "1/(1-p) in training (torch's)")
    return ""




def check_functions(forward, backward, torch_module_or_function, *inputs, extra=(), **kwargs) -> CheckResult:
    """Check a CS231n-style pair: ``forward(*inputs, *extra) -> (out, cache)``, ``backward(dout, cache)`` ->
    one gradient per input (dx, dw, db...), against a torch function of the same inputs.

    Example: ``check_functions(affine_forward, affine_backward, lambda x, w, b: x.flatten(1) @ w + b, x, w, b)``.
    ``extra`` holds the non-array arguments (``conv_param``...); the keywords are ``check_layer``'s.
    """
    layer = FunctionPair(forward, backward, extra=extra)
    kwargs.setdefault("name", f"{forward.__name__}/{backward.__name__}")
    return check_layer(layer, torch_module_or_function, *inputs, **kwargs)
