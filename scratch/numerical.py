"""Numerical differentiation (chapter 4): the yardstick backprop is checked against.

Central differences, f'(x) ~ (f(x + h) - f(x - h)) / 2h, have truncation
error O(h^2) instead of the forward difference's O(h); h = 1e-4 is the book's
choice, and in float64 the error is then about 1e-8 relative, well inside the
round-off limit. The book's "bad" forward difference with h = 1e-50 is 0.0 in
float32 and left for the numerical_diff experiment to show.
"""
import numpy as np


def numerical_diff(f, x, h: float = 1e-4):
    """Central difference of a scalar function of a scalar: (f(x+h) - f(x-h)) / 2h."""
    return (f(x + h) - f(x - h)) / (2 * h)


def numerical_gradient(f, x: np.ndarray, h: float = 1e-4) -> np.ndarray:
    """Gradient of the scalar ``f(x)`` with respect to every element of ``x``, any shape.

    Perturbs ``x`` in place one element at a time (``f`` sees the perturbed
    array) and restores each element exactly before moving on.
    """
    if not isinstance(x, np.ndarray) or not np.issubdtype(x.dtype, np.floating):
        raise TypeError("numerical_gradient: x must be a floating-point numpy array (it is perturbed in place)")
    grad = np.zeros_like(x)
    flat_x, flat_g = x.reshape(-1), grad.reshape(-1)
    if not np.shares_memory(flat_x, x):
        raise ValueError("numerical_gradient: x must be contiguous so that it can be perturbed in place")
    for i in range(flat_x.size):
        saved = flat_x[i]
        flat_x[i] = saved + h
        f_plus = float(f(x))
        flat_x[i] = saved - h
        f_minus = float(f(x))
        flat_x[i] = saved
        flat_g[i] = (f_plus - f_minus) / (2 * h)
    return grad


def gradcheck(module, x: np.ndarray, *args, grad_output=None, h: float = 1e-6, seed: int = 0):
    """Compare a module's backprop with central differences, in float64.

    The scalar checked is L = sum(module(x, *args) * G) for a fixed upstream
    gradient G (random when ``grad_output`` is None), so dL/dx = module.backward(G).
    ``args`` are passed through unchanged (a loss's target, say).
    Returns one record per checked tensor ('input' and each parameter):
    a dict with name, shape, max_abs, scaled (``max_abs`` relative to the largest
    numerical gradient, the measure ``experiments.compare.ErrorRecord.scaled`` names
    and docs/design.md's tolerances bound) and where (the index of the largest error).
    """
    missing = [m for m in ("__call__", "backward", "zero_grad", "named_parameters")
               if not callable(getattr(module, m, None))]
    if missing:
        raise TypeError(f"gradcheck: {type(module).__name__} has no {', '.join(missing)} (a scratch.nn.Module has "
                        "them), so its parameters and their gradients cannot be found; for a layer in the book's "
                        "style (W, b, dW, db as attributes) use experiments.check.check_layer(layer, "
                        "torch_counterpart, x), or experiments.check.dot_product_test(layer, x) without torch")
    if x.dtype != np.float64:
        raise TypeError("gradcheck: use float64 inputs (and module.double()); float32 is too coarse for differences")
    x = np.array(x, copy=True)
    out = module(x, *args)
    G = np.random.default_rng(seed).standard_normal(np.shape(out)) if grad_output is None else grad_output
    module.zero_grad()
    grad_in = module.backward(G)
    analytic = {"input": grad_in}
    analytic.update({name: p.grad for name, p in module.named_parameters()})

    def loss(_):
        return float(np.sum(module(x, *args) * G))

    targets = {"input": x}
    targets.update({name: p.data for name, p in module.named_parameters()})
    records = []
    for name, array in targets.items():
        numeric = numerical_gradient(loss, array, h)
        got = analytic[name] if analytic[name] is not None else np.zeros_like(array)
        err = np.abs(got - numeric)
        idx = np.unravel_index(np.argmax(err), err.shape) if err.size else ()
        scale = max(float(np.max(np.abs(numeric), initial=0.0)), np.finfo(np.float64).tiny)
        records.append({
            "name": name,
            "shape": tuple(array.shape),
            "max_abs": float(err.max(initial=0.0)),
            "scaled": float(err.max(initial=0.0)) / scale,
            "where": tuple(int(i) for i in idx),
        })
    return records
