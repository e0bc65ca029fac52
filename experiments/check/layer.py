"""check_layer, assert_matches_torch and check_class: one layer against its torch counterpart."""
import copy
from collections import OrderedDict

import numpy as np
from torch import nn

from experiments.check.adapters import (call_forward, copy_weights, dropout_keep, forward_names, is_dropout,
                                        is_scratch_style, slots_for, user_value)
from experiments.check.diagnoses import diagnose
from experiments.check.inputs import checker_rng
from experiments.check.recognize import case_for
from experiments.check.results import CheckResult, Refused
from experiments.check.torchrun import Run, torch_name
from experiments.compare import layer_tolerance
from torch_ref.nn import torch_dtype


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
    result = CheckResult(name or type(layer).__name__, torch_name(module))
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
    tol = layer_tolerance(dtype)
    if isinstance(module, nn.Module):
        module.to(torch_dtype(dtype))
    slots = slots_for(layer, module, params, grads)
    copy_weights(layer, module, slots, dtype)
    snapshot = copy.deepcopy(module) if isinstance(module, nn.Module) else module
    for s in slots:  # a backward that leaves dW unwritten must not pass on an earlier call's dW
        if not s.buffer and not is_scratch_style(layer) and hasattr(layer, s.grad_name):
            setattr(layer, s.grad_name, None)
    rng = checker_rng(seed)
    state = np.random.get_state()  # the adjoint test replays the layer's draws from np.random
    try:
        out = call_forward(layer, [v.copy() for v in inputs], train)
    except Exception as e:  # noqa: BLE001 - a forward that rejects the input is reported, not compared
        raise Refused(f"forward{tuple(names)} raised {type(e).__name__}: {e}") from e
    if not isinstance(out, (np.ndarray, np.generic, float)):
        raise Refused(f"forward returned {type(out).__name__}, not an array")
    out = np.asarray(out)
    keep = None
    if is_dropout(module) and train:
        keep = dropout_keep(layer, out, inputs[0])
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
    transposed = {s.grad_name if not s.buffer else s.user for s in slots if s.transpose}
    run = Run(layer, module, snapshot, inputs, diff, G, dtype, train, keep, pairs, transposed, tol)
    try:
        ref = run.reference()
    except Exception as e:  # noqa: BLE001 - inputs torch does not take: nothing to compare against
        raise Refused(f"{result.against} raised {type(e).__name__} on these inputs: {e}") from e
    result.records = run.records(ours, ref)
    diagnose(result, run, ours, ref, slots, state, rng)



def check_class(name, cls, dtype, configs: int = 5, seed: int = 0):
    """Check one class over random configurations: (JSON record, [CheckResult...])."""
    case = case_for(name, cls)
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
