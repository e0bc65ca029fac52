"""Chapter 3: softmax overflows when written naively; subtracting the max fixes it.

The notes' fix (p. 66): exp(a - max(a)) / sum(exp(a - max(a))) equals
exp(a) / sum(exp(a)) mathematically, but exp(a) overflows to inf beyond
a ~ 88.7 in float32 and ~ 709.8 in float64, and inf / inf is nan. Inputs
a = [c, c - 10, c - 20] for growing c go through the naive form, the shifted
form, ``scratch.nn.functional.softmax``, ``scratch.nn.Softmax`` and ``torch.softmax``;
each is compared with the exact answer, which does not depend on c.
"""
import matplotlib.pyplot as plt
import numpy as np
import torch

import scratch.nn as snn
from experiments.catalogue import experiment
from experiments.compare import TOLERANCE, compare_arrays
from experiments.writing import markdown_table
from scratch.nn import functional as F


def naive_softmax(a):
    """The form before the fix: exp(a) / sum(exp(a)), along the last axis."""
    with np.errstate(over="ignore", invalid="ignore"):
        e = np.exp(a)
        return e / e.sum(axis=-1, keepdims=True)


def shifted_softmax(a):
    """The notes' fix: subtract the max first, so the largest exponent is exp(0) = 1."""
    e = np.exp(a - a.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


IMPLS = {"naive": "notes", "shifted (notes)": "notes", "scratch F.softmax": "scratch",
         "scratch nn.Softmax": "scratch", "torch.softmax": "torch"}


def overflow_threshold(dtype) -> float:
    """Largest a with exp(a) finite: log(max float)."""
    return float(np.log(np.finfo(dtype).max))


@experiment(
    number=4, name="softmax_stability", chapter="3", trained=False,
    shows="naive vs max-shifted softmax on [c, c-10, c-20] for growing c: the naive form turns to nan "
          "past log(max float); scratch and torch do not",
    durations={"quick": 3, "full": 3},
    profiles={"tiny": dict(points=40), "quick": dict(points=400), "full": dict(points=2000)},
)
def run(ctx):
    dtype = ctx.dtype
    tol = TOLERANCE["layer"][dtype.type]
    cs = np.unique(np.concatenate([np.logspace(0, 4, ctx.config["points"]), [1010.0]]))
    a = (cs[:, None] - np.array([0.0, 10.0, 20.0])).astype(dtype)
    exact = shifted_softmax(np.array([0.0, -10.0, -20.0], dtype=np.longdouble)).astype(np.float64)
    outs = {
        "naive": naive_softmax(a),
        "shifted (notes)": shifted_softmax(a),
        "scratch F.softmax": F.softmax(a, dim=-1),
        "scratch nn.Softmax": snn.Softmax(dim=-1)(a),
        "torch.softmax": torch.softmax(torch.tensor(a), dim=-1).numpy(),
    }
    errors = {}
    for name, y in outs.items():
        err = np.abs(y.astype(np.float64) - exact).max(axis=1)
        err[~np.all(np.isfinite(y), axis=1)] = np.inf
        errors[name] = err
    # metrics.csv: step k is the k-th input; impl "input" gives its c, the others their error.
    for k, c in enumerate(cs):
        ctx.log("input", "c", float(c), step=k)
        for name, impl in IMPLS.items():
            ctx.log(impl, f"{name}/max_abs_error", float(errors[name][k]), step=k)

    limit = overflow_threshold(dtype)
    first_nan = cs[~np.isfinite(errors["naive"])]
    first_nan = float(first_nan.min()) if first_nan.size else None
    rows = []
    for name, err in errors.items():
        finite = np.isfinite(err)
        rows.append({"form": name, "nan/inf outputs": int((~finite).sum()), "of": len(cs),
                     "first c giving nan": "-" if finite.all() else f"{cs[~finite].min():.1f}",
                     "max error where finite": f"{err[finite].max():.2e}" if finite.any() else "-"})
    twin = compare_arrays("softmax", outs["scratch F.softmax"], outs["torch.softmax"]).scaled
    ctx.parity("scratch F.softmax vs torch.softmax over all inputs (scaled)", twin, tol)
    ctx.parity("scratch nn.Softmax vs torch.softmax over all inputs (scaled)",
               compare_arrays("softmax", outs["scratch nn.Softmax"], outs["torch.softmax"]).scaled, tol)
    ctx.parity("scratch F.softmax vs the exact value, largest error", float(errors["scratch F.softmax"].max()),
               10 * np.finfo(dtype).eps)

    book = np.array([1010.0, 1000.0, 990.0], dtype=dtype)
    book_rows = [{"form": n, "softmax([1010, 1000, 990])": np.array2string(f(book), precision=8)}
                 for n, f in (("naive", naive_softmax), ("shifted (notes)", shifted_softmax),
                              ("scratch F.softmax", lambda v: F.softmax(v, dim=-1)),
                              ("torch.softmax", lambda v: torch.softmax(torch.tensor(v), -1).numpy()))]

    fig, ax = plt.subplots(figsize=(8, 4.5))
    top = 1.0
    for name, err, style in zip(errors, errors.values(), ("o", "-", "--", ":", "-.")):
        shown = np.where(np.isfinite(err), np.maximum(err, 1e-20), np.nan)
        ax.plot(cs, shown, style, ms=2, label=name)
        bad = ~np.isfinite(err)
        if bad.any():
            ax.plot(cs[bad], np.full(bad.sum(), top), "x", color="tab:red", ms=4,
                    label=f"{name}: nan (plotted at {top:g})")
    ax.axvline(limit, color="gray", lw=0.8)
    ax.text(limit, 0.03, f" log(max {dtype}) = {limit:.1f}", fontsize=8, transform=ax.get_xaxis_transform())
    ax.set(xscale="log", yscale="log", xlabel="c (input [c, c-10, c-20])",
           ylabel="max |softmax - exact| (0 shown as 1e-20)", title=f"softmax of large inputs, {dtype}")
    ax.legend(fontsize=7)
    fig.tight_layout()
    plot = ctx.savefig(fig, "softmax_error", "error of each softmax form against the exact value, by input size")

    ctx.headline(f"naive softmax gives nan from c = {first_nan:.1f} ({dtype}); shifted, scratch and torch stay "
                 f"exact (twin difference {twin:.1e})" if first_nan else f"twin difference {twin:.1e}")
    ctx.section("The notes' example", markdown_table(book_rows))
    ctx.section("Every input", (
        f"{len(cs)} inputs [c, c-10, c-20] with c from 1 to 10,000 (log-spaced, plus the notes' 1010). "
        f"exp(c) overflows past log(max {dtype}) = {limit:.2f}; the naive form then divides inf by inf.\n\n"
        + markdown_table(rows) + f"\n![error by input size]({plot})\n"))
    ctx.keep(first_nan_c=first_nan)
    ctx.keep(overflow_threshold=limit)
