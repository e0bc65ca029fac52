"""The dot-product test: is backward the adjoint of forward? A diagnostic that needs no torch."""
from collections import OrderedDict

import numpy as np

from experiments.check.adapters import (Slot, array_params, call_forward, forward_names, is_scratch_style,
                                        user_value)
from experiments.check.inputs import checker_rng
from experiments.check.torchrun import Run

# Central-difference step of the dot-product test, relative to the largest |value| of the perturbed tensor.
ADJOINT_STEP = 1e-6
# The dot-product test fails when the two products differ by more than this, relative to their scale.
ADJOINT_TOL = 1e-6
# Directions tried per gradient; one that crosses a kink or a tie is skipped, and if all do, no claim is made.
ADJOINT_DIRECTIONS = 4
# A direction is kinked when its second difference exceeds this fraction of its first: ~h (1e-6) when smooth.
KINK_RATIO = 1e-3


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
    names = forward_names(layer, len(inputs))
    nondiff = {names.index(n) if isinstance(n, str) and n in names else n for n in nondiff}
    diff = [i for i, v in enumerate(inputs) if np.issubdtype(v.dtype, np.floating) and i not in nondiff]
    rng = checker_rng(seed)
    state = np.random.get_state()
    out = np.asarray(call_forward(layer, [v.copy() for v in inputs], train))
    G = rng.standard_normal(out.shape) if grad_output is None else np.asarray(grad_output, np.float64)
    layer.backward(G.astype(out.dtype))
    if is_scratch_style(layer):
        slots = [Slot(n, n, False, False, n + ".grad") for n, _ in layer.named_parameters()]
    else:
        slots = [Slot(a, a, False, False, "d" + a) for a in array_params(layer)
                 if getattr(layer, "d" + a, None) is not None]
    ours = OrderedDict([("out", out)] + [("d" + names[i], None) for i in diff])
    run = Run(layer, None, None, inputs, diff, G, inputs[diff[0]].dtype if diff else np.float64, train, None,
               {}, set(), 0.0)
    failures = adjoint_failures(run, ours, slots, state, rng)
    if failures is None:
        raise ValueError("dot_product_test: the forward is not repeatable with np.random's state replayed "
                         "(a layer with its own generator), or fails on float64 copies")
    return failures


def adjoint_failures(run, ours, slots, state, rng):
    """Dot-product test in float64: <J v, G> = <backward(G), v> for each gradient, by central differences.

    Returns {tensor: sentence} for the tensors that fail it; None when it cannot run (a forward that is not
    repeatable with np.random's state replayed, as a layer drawing from its own generator).
    """
    layer = run.layer
    scratch = is_scratch_style(layer)
    saved = {s.user: np.array(user_value(layer, s, grad=False) if scratch and s.buffer else
                              (dict(layer.named_parameters())[s.user].data if scratch else getattr(layer, s.user)))
             for s in slots}
    inputs = [np.asarray(v, np.float64) if i in run.diff else v for i, v in enumerate(run.inputs)]
    G = np.asarray(run.G, np.float64)

    def set_param(s, value):
        if scratch:
            target = dict(layer.named_parameters())[s.user].data if not s.buffer else user_value(layer, s, False)
            if target.dtype != value.dtype and hasattr(layer, "to"):
                layer.to(value.dtype)
                target = dict(layer.named_parameters())[s.user].data if not s.buffer else \
                    user_value(layer, s, False)
            np.copyto(target, value)
        else:
            setattr(layer, s.user, value.copy())

    def forward(xs):
        for s in slots:  # buffers too: a train-mode forward moves the running statistics
            if s.buffer:
                set_param(s, base[s.user])
        np.random.set_state(state)
        y = np.asarray(call_forward(layer, [v.copy() for v in xs], run.train))
        if y.dtype != np.float64:  # a layer computing in float32 inside: differences of 1e-6 are round-off
            raise TypeError("the forward does not compute in float64")
        return y

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
                grads[s.grad_name] = np.asarray(user_value(layer, s, grad=True), np.float64)
        targets = [(n, ("input", i)) for n, i in zip(list(grads)[:len(run.diff)], run.diff)]
        targets += [(s.grad_name, ("param", s)) for s in slots if not s.buffer]
        for name, (kind, what) in targets:
            point = inputs[what] if kind == "input" else base[what.user]
            g = grads.get(name)
            if g is None or g.shape != point.shape:
                continue
            h = ADJOINT_STEP * max(1.0, float(np.max(np.abs(point), initial=0.0)))
            for _ in range(ADJOINT_DIRECTIONS):
                v = rng.standard_normal(point.shape)
                values = []
                for sign in (1, 0, -1):
                    if kind == "input":
                        xs = list(inputs)
                        xs[what] = point + sign * h * v
                        values.append(forward(xs))
                    else:
                        set_param(what, point + sign * h * v)
                        values.append(forward(inputs))
                        set_param(what, point)
                up, mid, down = values
                # A direction that crosses a kink (ReLU at 0) or a tie (two maxima of a pool window) is no
                # evidence: there the forward is not linear over [-h, h], its second difference is of order h.
                if np.max(np.abs(up - 2 * mid + down), initial=0.0) > KINK_RATIO * np.max(np.abs(up - down),
                                                                                           initial=0.0):
                    continue
                jv = (up - down) / (2 * h)
                lhs, rhs = float(np.sum(jv * G)), float(np.sum(g * v))
                scale = float(np.sum(np.abs(jv * G)) + np.sum(np.abs(g * v)))
                if abs(lhs - rhs) > ADJOINT_TOL * scale:
                    failures[name] = (f"backward is not the adjoint of forward for {name}: dot-product test "
                                      f"<J v, dout> = {lhs:.6g} but <{name}, v> = {rhs:.6g}")
                break
    except Exception:  # noqa: BLE001 - a forward that fails on float64 copies: no test, no claim
        return None
    finally:  # the layer gets back its weights and dtype, np.random its state
        if scratch and slots and hasattr(layer, "to"):
            layer.to(run.dtype)
        for s in slots:
            set_param(s, saved[s.user])
        np.random.set_state(after)
    return failures
