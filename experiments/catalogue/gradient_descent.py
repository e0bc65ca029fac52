"""Chapter 4.4: gradient descent on f(x0, x1) = x0^2 + x1^2 from (-3, 4).

    x <- x - lr * grad f(x),   grad f = (2 x0, 2 x1)

with a good rate (0.1), one too large (10) and one too small (1e-10). Three
gradients drive the same rule side by side:

- the book's: ``scratch.numerical.numerical_gradient`` (central differences,
  h = 1e-4) and ``x -= lr * grad``, as the book's ``gradient_descent``;
- the scratch analytic gradient 2x, applied by ``scratch.optim.SGD`` to a Parameter;
- torch autograd, ``f(x).backward()``, applied by ``torch.optim.SGD``.

The plot shows 20 steps (the book's figure); the table also runs the book's
100-step examples, whose printed results are quoted next to ours.
"""
import matplotlib.pyplot as plt
import numpy as np
import torch

import scratch.optim as soptim
from experiments.catalogue import experiment
from experiments.compare import TOLERANCE
from experiments.writing import fmt, markdown_table
from scratch.nn.parameter import Parameter
from scratch.numerical import numerical_gradient

INIT = (-3.0, 4.0)
# The book's printed results of gradient_descent(function_2, init_x=[-3, 4], lr, step_num=100).
BOOK_100 = {0.1: (-6.11110793e-10, 8.14814391e-10), 10.0: (-2.58983747e+13, -1.29524862e+12),
            1e-10: (-2.99999994, 3.99999992)}
METHODS = ("numerical (book)", "analytic (scratch SGD)", "autograd (torch SGD)")


def function_2(x):
    """The book's function_2: x0^2 + x1^2 (NumPy or torch)."""
    return x[0] ** 2 + x[1] ** 2


def path_numerical(lr, steps, dtype):
    x = np.array(INIT, dtype=dtype)
    path = [x.copy()]
    for _ in range(steps):
        x -= dtype(lr) * numerical_gradient(function_2, x)
        path.append(x.copy())
    return np.array(path, dtype=np.float64)


def path_analytic(lr, steps, dtype):
    p = Parameter(np.array(INIT, dtype=dtype))
    opt = soptim.SGD([p], lr=lr)
    path = [p.data.copy()]
    for _ in range(steps):
        p.accumulate_grad(dtype(2) * p.data)  # the analytic gradient of x0^2 + x1^2
        opt.step()
        opt.zero_grad()
        path.append(p.data.copy())
    return np.array(path, dtype=np.float64)


def path_autograd(lr, steps, dtype):
    x = torch.tensor(INIT, dtype=torch.float64 if dtype == np.float64 else torch.float32, requires_grad=True)
    opt = torch.optim.SGD([x], lr=lr)
    path = [x.detach().numpy().copy()]
    for _ in range(steps):
        opt.zero_grad()
        function_2(x).backward()
        opt.step()
        path.append(x.detach().numpy().copy())
    return np.array(path, dtype=np.float64)


def paths(lr, steps, dtype):
    with np.errstate(over="ignore", invalid="ignore"):
        return dict(zip(METHODS, (path_numerical(lr, steps, dtype), path_analytic(lr, steps, dtype),
                                  path_autograd(lr, steps, dtype))))


def scaled_gap(a, b) -> float:
    """Largest |a - b| over the path, each step scaled by the size of b there."""
    with np.errstate(invalid="ignore", over="ignore"):
        scale = np.maximum(np.abs(b).max(axis=1), np.finfo(np.float64).tiny)
        return float(np.max(np.abs(a - b).max(axis=1) / scale))


@experiment(
    number=20, name="gradient_descent", chapter="4", trained=False,
    shows="gradient descent on x0^2 + x1^2 from (-3, 4), lr 0.1, 10 and 1e-10: paths on a contour plot; the "
          "book's numerical gradient, the analytic one (scratch SGD) and torch autograd (torch SGD) side by side",
    durations={"quick": 3, "full": 3},
    profiles={"tiny": dict(steps=20, long_steps=100, lrs=[0.1, 10.0, 1e-10]),
              "quick": dict(steps=20, long_steps=100, lrs=[0.1, 10.0, 1e-10]),
              "full": dict(steps=20, long_steps=100, lrs=[0.1, 10.0, 1e-10])},
)
def run(ctx):
    cfg, dtype = ctx.config, ctx.dtype.type
    tol = TOLERANCE["optim"][dtype]
    short = {lr: paths(lr, cfg["steps"], dtype) for lr in cfg["lrs"]}
    long = {lr: paths(lr, cfg["long_steps"], dtype) for lr in cfg["lrs"]}
    for lr, ps in short.items():
        for method, path in ps.items():
            impl = "torch" if method.startswith("autograd") else "scratch"
            for k, (x0, x1) in enumerate(path):
                ctx.log(impl, f"lr_{lr:g}/{method.split()[0]}/x0", float(x0), step=k)
                ctx.log(impl, f"lr_{lr:g}/{method.split()[0]}/x1", float(x1), step=k)

    rows, parity_rows = [], []
    for lr, ps in long.items():
        row = {"lr": f"{lr:g}", "book (numerical)": np.array2string(np.array(BOOK_100[lr]), precision=8)}
        for method, path in ps.items():
            row[method] = np.array2string(path[-1], precision=8)
        rows.append(row)
    for lr in cfg["lrs"]:
        ps = short[lr]
        twin = scaled_gap(ps["analytic (scratch SGD)"], ps["autograd (torch SGD)"])
        num = scaled_gap(ps["numerical (book)"], ps["analytic (scratch SGD)"])
        ctx.parity(f"lr {lr:g}: scratch SGD (analytic gradient) vs torch SGD (autograd), largest difference over "
                   f"{cfg['steps']} steps (scaled)", twin, tol)
        ctx.parity(f"lr {lr:g}: numerical vs analytic gradient path, largest difference (scaled)", num,
                   TOLERANCE["numerical"] if dtype == np.float64 and lr != 10.0 else None)
        parity_rows.append((lr, twin, num))
    book_gap = None  # the book printed float64 results only
    if dtype == np.float64:
        book_gap = max(float(np.max(np.abs(long[lr]["numerical (book)"][-1] - np.array(BOOK_100[lr]))
                                    / np.abs(np.array(BOOK_100[lr])))) for lr in cfg["lrs"])
        ctx.parity("the book's printed 100-step results vs the numerical path here, largest relative difference "
                   "(the book prints 9 digits)", book_gap, 1e-8)
        ctx.keep(book_gap=book_gap)
    ctx.keep(final_20={f"{lr:g}": {m: p[-1] for m, p in ps.items()} for lr, ps in short.items()})

    fig = plot_paths(short, long, ctx)
    plot = ctx.savefig(fig, "paths", "the three paths for each learning rate on the contours of f (lr 10: its first "
                                     "steps, on wider axes); for lr 10, the distance from the minimum by step "
                                     "(log scale) over 100 steps")
    good = short[cfg["lrs"][0]]["numerical (book)"][-1]
    ctx.headline(f"lr {cfg['lrs'][0]:g}: ({good[0]:.4g}, {good[1]:.4g}) after {cfg['steps']} steps; torch and "
                 f"scratch SGD paths differ by {fmt(max(t for _, t, _ in parity_rows))}"
                 + ("" if book_gap is None else f"; the book's 100-step results reproduced to {fmt(book_gap)}"))
    ctx.section("Paths", (
        f"![paths]({plot})\n\n"
        "With lr 0.1 each step multiplies x by 1 - 2 * 0.1 = 0.8: the path runs straight to the minimum. "
        "With lr 10 the factor is 1 - 20 = -19: x flips sign and grows 19-fold every step. With lr 1e-10 "
        "it is 1 - 2e-10: x does not visibly move.\n\n"
        "After 100 steps (the book's examples; the book prints the numerical-gradient result):\n\n"
        + markdown_table(rows) + "\n\n"
        "With lr 10 the numerical gradient stops the explosion near 1e13: once |x| is above about 1e12, "
        "h = 1e-4 is less than half the spacing of float64 numbers there (2^-9, about 2e-3, near 1e13), so "
        "x + h rounds to x, the central difference returns 0 and the path freezes: the book's odd-looking result. The analytic gradient and "
        "autograd keep growing by 19 per step, to about 1e128."))


def plot_paths(short, long, ctx):
    """One contour panel per rate (a diverging rate: its first steps, on wider axes), then the diverging
    rates' distance from the minimum by step over the long run."""
    lrs = list(short)
    diverging = [lr for lr in lrs if lr >= 1]
    fig, axes = plt.subplots(1, len(lrs) + len(diverging), figsize=(4.8 * (len(lrs) + len(diverging)), 4.6))
    styles = {"numerical (book)": ("tab:green", "o", 7), "analytic (scratch SGD)": ("tab:blue", "s", 4),
              "autograd (torch SGD)": ("tab:orange", "x", 5)}
    for ax, lr in zip(axes, lrs):
        shown = 3 if lr >= 1 else len(short[lr][METHODS[0]])  # a diverging path leaves any view at once
        path0 = short[lr][METHODS[0]][:shown]
        span = max(4.5, 1.15 * float(np.abs(path0).max()))
        g = np.linspace(-span, span, 181)
        X0, X1 = np.meshgrid(g, g)
        ax.contour(X0, X1, X0 ** 2 + X1 ** 2, levels=np.linspace(0.02, 1, 12) * span ** 2, colors="gray",
                   linewidths=0.6)
        for method, (color, marker, ms) in styles.items():
            path = short[lr][method][:shown]
            ax.plot(path[:, 0], path[:, 1], "-", marker=marker, ms=ms, color=color, lw=0.8, label=method,
                    mfc="none" if marker == "o" else color)
        ax.plot(0, 0, "+", color="k", ms=10)
        ax.set(xlim=(-span, span), ylim=(-span, span), xlabel="x0", ylabel="x1", aspect="equal",
               title=f"lr {lr:g}: " + (f"first {shown - 1} steps" if lr >= 1 else f"{shown - 1} steps"))
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7)
    for ax, lr in zip(axes[len(lrs):], diverging):
        for method, (color, marker, ms) in styles.items():
            path = long[lr][method]
            with np.errstate(over="ignore", invalid="ignore"):
                r = np.sqrt((path ** 2).sum(axis=1))
            ax.plot(np.arange(len(r)), r, "-", marker=marker, ms=3, color=color, label=method, lw=0.8)
        ax.set(yscale="log", xlabel="step", ylabel="distance from (0, 0)",
               title=f"lr {lr:g}: diverges ({len(long[lr][METHODS[0]]) - 1} steps)")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle(f"gradient descent on x0^2 + x1^2 from (-3, 4) ({ctx.dtype})")
    fig.tight_layout()
    return fig
