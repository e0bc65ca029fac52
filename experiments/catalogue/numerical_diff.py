"""Chapter 4.3: numerical differentiation, the notes' bad derivative and the fix, swept over h.

The notes' first attempt is a forward difference with a tiny step,

    (f(x + h) - f(x)) / h,   h = 10e-50 (= 1e-49; the text says 1e-50, which is 0.0 in float32),

and the fix is the central difference with h = 1e-4 (``scratch.numerical.numerical_diff``),

    (f(x + h) - f(x - h)) / 2h.

Both are swept over h from 1e-1 down to 1e-20, in float32 and float64, for a
few functions (the book's 0.01 x^2 + 0.1 x at x = 5 and x = 10 among them), and
compared with the exact derivative and with torch autograd. The error falls with
h while truncation dominates (O(h) forward, O(h^2) central), then rises again
once round-off, about eps * |f| / h, takes over; the best h sits where the two
meet, near eps^(1/2) (forward) and eps^(1/3) (central).
"""
import math

import matplotlib.pyplot as plt
import numpy as np
import torch

from experiments.catalogue import experiment
from experiments.compare import TOLERANCE
from experiments.writing import markdown_table
from scratch.numerical import numerical_diff

# name -> (f on NumPy scalars, f on torch tensors, x, exact f'(x))
FUNCTIONS = {
    "0.01x^2 + 0.1x at x = 5": (lambda x: 0.01 * x ** 2 + 0.1 * x, lambda x: 0.01 * x ** 2 + 0.1 * x, 5.0, 0.2),
    "0.01x^2 + 0.1x at x = 10": (lambda x: 0.01 * x ** 2 + 0.1 * x, lambda x: 0.01 * x ** 2 + 0.1 * x, 10.0, 0.3),
    "sin(x) at x = 1": (np.sin, torch.sin, 1.0, math.cos(1.0)),
    "exp(x) at x = 1": (np.exp, torch.exp, 1.0, math.exp(1.0)),
}
DTYPES = (np.float32, np.float64)
TORCH = {np.float32: torch.float32, np.float64: torch.float64}


def forward_difference(f, x, h):
    """The notes' first derivative: (f(x + h) - f(x)) / h."""
    return (f(x + h) - f(x)) / h


def notes_bad_derivative(f, x):
    """The notes' code as written: ``h = 10e-50`` with a forward difference (h is a Python float)."""
    h = 10e-50
    return (f(x + h) - f(x)) / h


def autograd(f_torch, x: float, dtype) -> float:
    t = torch.tensor(x, dtype=TORCH[dtype], requires_grad=True)
    f_torch(t).backward()
    return float(t.grad)


def sweep(f, x0: float, hs, dtype, method):
    """The derivative estimate at each h, computed in ``dtype`` (x and h rounded to it first)."""
    x = dtype(x0)
    out = np.empty(len(hs))
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        for i, h in enumerate(hs):
            h = dtype(h)
            out[i] = (numerical_diff(f, x, h) if method == "central" else forward_difference(f, x, h))
    return out


def rel_error(estimate, reference):
    return np.abs(np.asarray(estimate, dtype=np.float64) - reference) / abs(reference)


@experiment(
    number=19, name="numerical_diff", chapter="4", trained=False,
    shows="forward vs central differences swept over h = 1e-1 ... 1e-20 in float32 and float64 against the "
          "exact derivative and torch autograd: truncation error gives way to round-off; the notes' h = 1e-50",
    durations={"quick": 3, "full": 4},
    profiles={"tiny": dict(points=20), "quick": dict(points=77), "full": dict(points=191)},
)
def run(ctx):
    hs = np.logspace(-1, -20, ctx.config["points"])
    for k, h in enumerate(hs):
        ctx.log("input", "h", float(h), step=k)
    errors, best_rows, notes_rows = {}, [], []
    grads = {}
    for name, (f, ft, x0, exact) in FUNCTIONS.items():
        for dtype in DTYPES:
            dname = np.dtype(dtype).name
            grads[name, dname] = g = autograd(ft, x0, dtype)
            for method in ("forward", "central"):
                est = sweep(f, x0, hs, dtype, method)
                err = rel_error(est, exact)
                errors[name, dname, method] = (err, rel_error(est, g))
                for k, (e, a) in enumerate(zip(*errors[name, dname, method])):
                    ctx.log("scratch", f"{name}/{dname}/{method}/rel_error_vs_exact", float(e), step=k)
                    ctx.log("scratch", f"{name}/{dname}/{method}/rel_error_vs_autograd", float(a), step=k)
                finite = np.where(np.isfinite(err), err, np.inf)
                i = int(np.argmin(finite))
                at_1e4 = float(rel_error(numerical_diff(f, dtype(x0), dtype(1e-4)) if method == "central" else
                                         forward_difference(f, dtype(x0), dtype(1e-4)), exact))
                best_rows.append({"function": name, "dtype": dname, "method": method, "best h": f"{hs[i]:.1e}",
                                  "error there": f"{err[i]:.1e}", "error at h = 1e-4": f"{at_1e4:.1e}"})
            ctx.log("torch", f"{name}/{dname}/autograd/rel_error_vs_exact", float(rel_error(g, exact)))
            with np.errstate(divide="ignore", invalid="ignore"):
                bad = float(notes_bad_derivative(f, dtype(x0)))
                bad32 = float(forward_difference(f, dtype(x0), dtype(1e-50)))
            notes_rows.append({"function": name, "dtype": dname, "exact": f"{exact:.10g}",
                               "notes' code (h = 10e-50)": f"{bad:.10g}",
                               "h = 1e-50 rounded to the dtype first": f"{bad32:.10g}",
                               "central, h = 1e-4": f"{float(numerical_diff(f, dtype(x0), dtype(1e-4))):.10g}",
                               "torch autograd": f"{g:.10g}"})

    # The twins: central difference at the book's h against autograd, and autograd against the exact value.
    worst_central = max(float(rel_error(numerical_diff(f, np.float64(x0), 1e-4), grads[name, "float64"]))
                        for name, (f, _, x0, _) in FUNCTIONS.items())
    worst_autograd = {d: max(float(rel_error(grads[name, d], FUNCTIONS[name][3])) for name in FUNCTIONS)
                      for d in ("float32", "float64")}
    ctx.parity("central difference (h = 1e-4, float64) vs torch autograd, largest relative difference",
               worst_central, TOLERANCE["numerical"])
    for d, v in worst_autograd.items():
        ctx.parity(f"torch autograd ({d}) vs the exact derivative, largest relative error", v,
                   10 * np.finfo(d).eps)

    # A quadratic's central difference has no truncation error (f''' = 0): its best h is merely the
    # largest one tried, so the central optimum is measured on the other functions.
    curved = [n for n in FUNCTIONS if "x^2" not in n]
    best = {}
    for dname in ("float32", "float64"):
        for method in ("forward", "central"):
            hs_best = [float(r["best h"]) for r in best_rows if r["dtype"] == dname and r["method"] == method
                       and (method == "forward" or r["function"] in curved)]
            best[dname, method] = float(np.exp(np.median(np.log(hs_best))))
    at_book = {d: max(float(r["error at h = 1e-4"]) for r in best_rows
                      if r["dtype"] == d and r["method"] == "central" and r["function"] in curved)
               for d in ("float32", "float64")}
    ctx.keep(best_h={f"{d}/{m}": v for (d, m), v in best.items()})
    ctx.keep(notes_bad_derivative=notes_rows)

    fig = plot_sweep(hs, errors)
    plot = ctx.savefig(fig, "error_vs_h", "relative error of forward and central differences against the exact "
                                          "derivative (solid) and torch autograd (dots), by h, log-log")
    theory = {d: np.finfo(d).eps for d in ("float32", "float64")}
    ctx.headline("best h measured: central " + ", ".join(f"{best[d, 'central']:.0e} ({d})" for d in
                                                         ("float32", "float64"))
                 + "; forward " + ", ".join(f"{best[d, 'forward']:.0e} ({d})" for d in ("float32", "float64"))
                 + "; the notes' h = 10e-50 gives 0.0 (float64) and nan (float32)")
    ctx.section("The notes' bad derivative", (
        "The notes' code, `h = 10e-50` (that is 1e-49), forward difference. In float64, x + h rounds back to "
        "x, so f(x + h) - f(x) is exactly 0 and so is the derivative. In float32, h itself rounds to 0.0 (the "
        "notes' `np.float32(1e-50)`; NumPy casts the Python float to the array's dtype), and 0 / 0 is nan. "
        f"The central difference with h = 1e-4 is right to {at_book['float64']:.0e} (float64) and "
        f"{at_book['float32']:.0e} (float32) relative, on sin and exp.\n\n" + markdown_table(notes_rows)))
    ctx.section("Truncation against round-off", (
        f"![error by h]({plot})\n\n"
        f"{len(hs)} values of h, log-spaced from 1e-1 to 1e-20. Best h measured (geometric median over the "
        "functions; for the central difference over sin and exp only, since a quadratic's central difference "
        "has no truncation error and only gets better as h grows), with the textbook estimate for a function "
        "of size about 1:\n\n"
        + markdown_table([{"dtype": d, "forward: best h": f"{best[d, 'forward']:.1e}",
                           "forward: sqrt(eps)": f"{math.sqrt(theory[d]):.1e}",
                           "central: best h": f"{best[d, 'central']:.1e}",
                           "central: eps^(1/3)": f"{theory[d] ** (1 / 3):.1e}"} for d in ("float32", "float64")])
        + f"\n\nThe book's h = 1e-4 lies on the truncation side of the float64 optimum (error up to "
          f"{at_book['float64']:.0e} against about {min(float(r['error there']) for r in best_rows if r['dtype'] == 'float64' and r['method'] == 'central' and r['function'] in curved):.0e} at the best h), a safe choice; in float32 it is "
          f"in the round-off regime (error up to {at_book['float32']:.0e}). Below about eps * |x| the step "
          "vanishes (x + h == x) and both differences return 0 (relative error 1); once h underflows to 0 they "
          "return nan (not plotted).\n\n"
        + markdown_table(best_rows)))


def plot_sweep(hs, errors):
    names = list(FUNCTIONS)
    fig, axes = plt.subplots(1, len(names), figsize=(4.6 * len(names), 4.2), sharey=True)
    styles = {("float32", "forward"): ("tab:orange", "--"), ("float32", "central"): ("tab:orange", "-"),
              ("float64", "forward"): ("tab:blue", "--"), ("float64", "central"): ("tab:blue", "-")}
    for ax, name in zip(axes, names):
        for (dname, method), (color, ls) in styles.items():
            vs_exact, vs_autograd = errors[name, dname, method]
            shown = np.where(vs_exact > 0, vs_exact, 1e-17)
            ax.plot(hs, shown, ls, color=color, lw=1.3, label=f"{method}, {dname}")
            ax.plot(hs, np.where(vs_autograd > 0, vs_autograd, 1e-17), ".", color=color, ms=2.5)
        ax.axvline(1e-4, color="gray", lw=0.8)
        ax.text(1e-4, 3e-17, " h = 1e-4", fontsize=7, color="gray")
        ax.set(xscale="log", yscale="log", xlabel="h", title=name, ylim=(5e-18, 1e3))
        ax.invert_xaxis()
        ax.grid(True, alpha=0.3)
    axes[0].set_ylabel("|estimate - f'(x)| / |f'(x)|   (0 shown as 1e-17)")
    axes[0].legend(fontsize=7, loc="upper left")
    fig.suptitle("numerical derivative error by step h: lines against the exact value, dots against torch autograd")
    fig.tight_layout()
    return fig
