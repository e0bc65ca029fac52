"""Chapter 6: the optimizers' paths on f(x, y) = x^2/20 + y^2 from (-7, 2), in three implementations.

The book's ``optimizer_compare_naive.py``: 30 steps of SGD (lr 0.95), Momentum
(lr 0.1), AdaGrad (lr 1.5) and Adam (lr 0.3) from (-7, 2) on a bowl stretched
along x, so plain SGD zig-zags across the steep y direction. Each optimizer runs
three times:

    scratch  scratch.optim (PyTorch's rules), gradient (x/10, 2y) written out as the book does
    torch    torch.optim, gradient from autograd
    book     scratch.optim.book (the book's rules), the same written-out gradient

scratch against torch is the parity check (an optimizer's tolerance: 1e-12
relative in float64, 1e-5 in float32); book against torch shows where the two
formulations part. A fifth optimizer the book defines but does not plot here,
Nesterov, is added because its two forms really differ (the book repository's
until its January 2021 fix, ``scratch.optim.book.Nesterov``, and PyTorch's, which
the repository's fixed form equals).
"""
import matplotlib.pyplot as plt
import numpy as np
import torch

import scratch.optim as soptim
from experiments.catalogue import experiment
from experiments.compare import TOLERANCE
from experiments.data.synthetic import BOWL_START, bowl, bowl_grad, bowl_grid
from experiments.writing import markdown_table
from scratch.nn.parameter import Parameter
from scratch.optim import book as boptim

# name -> (PyTorch's class and settings, the book's class and settings); PyTorch's other defaults apply.
OPTIMIZERS = {
    "SGD": (("SGD", dict(lr=0.95)), ("SGD", dict(lr=0.95))),
    "Momentum": (("SGD", dict(lr=0.1, momentum=0.9)), ("Momentum", dict(lr=0.1, momentum=0.9))),
    "AdaGrad": (("Adagrad", dict(lr=1.5)), ("AdaGrad", dict(lr=1.5))),
    "Adam": (("Adam", dict(lr=0.3)), ("Adam", dict(lr=0.3))),
    "Nesterov": (("SGD", dict(lr=0.1, momentum=0.9, nesterov=True)), ("Nesterov", dict(lr=0.1, momentum=0.9))),
}
BOOK_FIGURE = ("SGD", "Momentum", "AdaGrad", "Adam")  # the book's figure 6-8
IMPLS = ("scratch", "torch", "book")


def scratch_path(optimizer_cls, kwargs, steps, dtype):
    """(steps + 1, 2) positions of a scratch optimizer, the gradient written out as in the book."""
    xy = Parameter(np.array(BOWL_START, dtype=dtype))
    opt = optimizer_cls([xy], **kwargs)
    path = [xy.data.copy()]
    for _ in range(steps):
        gx, gy = bowl_grad(xy.data[0], xy.data[1])
        xy.grad = np.array([gx, gy], dtype=dtype)
        opt.step()
        opt.zero_grad()
        path.append(xy.data.copy())
    return np.array(path)


def torch_path(name, kwargs, steps, dtype):
    """(steps + 1, 2) positions of a torch.optim optimizer, the gradient from autograd."""
    xy = torch.tensor(BOWL_START, dtype=dtype, requires_grad=True)
    opt = getattr(torch.optim, name)([xy], **kwargs)
    path = [xy.detach().numpy().copy()]
    for _ in range(steps):
        opt.zero_grad()
        bowl(xy[0], xy[1]).backward()
        opt.step()
        path.append(xy.detach().numpy().copy())
    return np.array(path)


def _settings(kwargs):
    return ", ".join(f"{k}={v}" for k, v in kwargs.items())


@experiment(
    number=7, name="optimizer_paths", chapter="6", trained=False,
    shows="SGD, Momentum, AdaGrad, Adam (and Nesterov) on x^2/20 + y^2 from (-7, 2), 30 steps: contour plot with "
          "the paths of scratch.optim, torch.optim and the book's rules",
    durations={"quick": 3, "full": 4},
    profiles={"tiny": dict(steps=30, grid=41), "quick": dict(steps=30, grid=201), "full": dict(steps=30, grid=401)},
)
def run(ctx):
    cfg = ctx.config
    dtype = ctx.dtype
    tdtype = torch.float64 if dtype == np.float64 else torch.float32
    tol = TOLERANCE["optim"][dtype.type]
    paths, rows, gaps = {}, [], {}
    for name, ((t_cls, t_kwargs), (b_cls, b_kwargs)) in OPTIMIZERS.items():
        p = {"scratch": scratch_path(getattr(soptim, t_cls), t_kwargs, cfg["steps"], dtype),
             "torch": torch_path(t_cls, t_kwargs, cfg["steps"], tdtype),
             "book": scratch_path(getattr(boptim, b_cls), b_kwargs, cfg["steps"], dtype)}
        paths[name] = p
        for impl in IMPLS:
            f = bowl(p[impl][:, 0], p[impl][:, 1])
            for k in range(len(f)):
                ctx.log(impl, f"{name}/x", float(p[impl][k, 0]), step=k)
                ctx.log(impl, f"{name}/y", float(p[impl][k, 1]), step=k)
                ctx.log(impl, f"{name}/f", float(f[k]), step=k)
        scale = np.max(np.abs(p["torch"]))
        twin = float(np.max(np.abs(p["scratch"] - p["torch"])) / scale)
        rule = float(np.max(np.abs(p["book"] - p["torch"])) / scale)
        gaps[name] = (twin, rule)
        ctx.parity(f"{name}: scratch.optim.{t_cls} vs torch.optim.{t_cls}, largest position difference over "
                   f"{cfg['steps']} steps (scaled)", twin, tol)
        ctx.parity(f"{name}: the book's rule (book.{b_cls}) vs torch.optim.{t_cls} (scaled)", rule)
        row = {"optimizer": name, "PyTorch": f"{t_cls}({_settings(t_kwargs)})",
               "book": f"{b_cls}({_settings(b_kwargs)})"}
        for impl in IMPLS:
            x, y = p[impl][-1]
            row[f"{impl}: final (x, y)"] = f"({x:.6g}, {y:.6g})"
        row["f at the end (torch)"] = f"{float(bowl(*p['torch'][-1])):.3e}"
        row["scratch vs torch"] = f"{twin:.1e}"
        row["book vs torch"] = f"{rule:.1e}"
        rows.append(row)

    # -- the book's figure, with both twins and the book's rules ---------------------------------
    X, Y, Z = bowl_grid(cfg["grid"])
    Z = np.where(Z > 7, 0, Z)  # as the book does: the flat outer region keeps the contours readable
    fig, axes = plt.subplots(2, 3, figsize=(16, 9))
    for ax, (name, p) in zip(axes.flat, paths.items()):
        ax.contour(X, Y, Z, levels=12, colors="lightgray", linewidths=0.8)
        ax.plot(p["scratch"][:, 0], p["scratch"][:, 1], "o-", color="tab:blue", ms=5, lw=1.5, label="scratch.optim")
        ax.plot(p["torch"][:, 0], p["torch"][:, 1], "x--", color="tab:orange", ms=6, lw=1, label="torch.optim")
        ax.plot(p["book"][:, 0], p["book"][:, 1], ".:", color="tab:green", ms=4, lw=1, label="book's rule")
        ax.plot(0, 0, "+", color="k", ms=10)
        ax.set(xlim=(-10, 10), ylim=(-10, 10), xlabel="x", ylabel="y",
               title=name + ("" if name in BOOK_FIGURE else " (not in the book's figure)"))
        ax.legend(fontsize=7, loc="upper right")
    ax = axes.flat[len(paths)]
    for k, (name, p) in enumerate(paths.items()):
        color = f"C{k}"
        steps = np.arange(len(p["torch"]))
        twin = np.max(np.abs(p["scratch"] - p["torch"]), axis=1)
        rule = np.max(np.abs(p["book"] - p["torch"]), axis=1)
        ax.plot(steps, np.where(twin > 0, twin, np.nan), "-", color=color, label=f"{name}: scratch vs torch")
        ax.plot(steps, np.where(rule > 0, rule, np.nan), "--", color=color, label=f"{name}: book vs torch")
    ax.set(yscale="log", xlabel="step", ylabel="max |position difference| (0 not shown)",
           title="distance between the paths")
    ax.legend(fontsize=6)
    fig.suptitle(f"f(x, y) = x^2/20 + y^2 from {BOWL_START}, {cfg['steps']} steps, {dtype}")
    fig.tight_layout()
    plot = ctx.savefig(fig, "optimizer_paths", "each optimizer's path in the three implementations (the book's "
                                               "figure 6-8), and the distances between them")

    worst_twin = max(t for t, _ in gaps.values())
    same = [n for n, (_, r) in gaps.items() if r <= 1e-6]
    apart = {n: r for n, (_, r) in gaps.items() if r > 1e-6}
    ctx.keep(scratch_vs_torch={n: t for n, (t, _) in gaps.items()})
    ctx.keep(book_vs_torch={n: r for n, (_, r) in gaps.items()})
    ctx.headline(f"scratch.optim = torch.optim paths to {worst_twin:.1e}; book's rules vs PyTorch's: "
                 + ", ".join(f"{n} {r:.1e}" for n, (_, r) in gaps.items()))
    ctx.section("The paths", (
        f"Every optimizer starts at {BOWL_START} and takes {cfg['steps']} steps with the book's learning rates "
        "(the same in every profile: there is nothing random here, so lockstep and independent modes run the same "
        "computation). Positions are scaled by the largest |coordinate| of the torch path.\n\n"
        + markdown_table(rows) + f"\n![paths]({plot})\n"))
    ctx.section("PyTorch's rules against the book's", (
        f"Same path to within 1e-6 (scaled): {', '.join(same) or 'none'}. "
        + ("Apart: " + ", ".join(f"{n} ({r:.2g})" for n, r in apart.items()) + ". " if apart else "")
        + "Why, rule by rule (see `scratch/optim/book.py`):\n\n"
        "- **SGD**: the same rule, `param -= lr * grad`.\n"
        "- **Momentum**: the book keeps a velocity v = m v - lr g, PyTorch a buffer b = m b + g and steps "
        "-lr b; with a constant rate v = -lr b, so the paths agree to round-off.\n"
        "- **AdaGrad**: the same rule; the book's eps is 1e-7, PyTorch's default 1e-10, invisible next to "
        "gradients of order 1.\n"
        "- **Adam**: the book folds the bias corrections into the rate and adds eps before them, i.e. PyTorch's "
        "rule with a step-dependent eps_t = 1e-7 / sqrt(1 - beta2^t) against PyTorch's 1e-8: a difference of the "
        "order of eps / sqrt(v), small on this function.\n"
        "- **Nesterov**: the book repository's update until its January 2021 fix uses the velocity *after* this "
        "step's update (param += m^2 v - (1 + m) lr g with the new v), PyTorch's (`SGD(nesterov=True)`) the one "
        "before it: different trajectories, which is why it is plotted here although the book's figure leaves it "
        "out. The repository's fixed form steps the parameter first and is PyTorch's rule exactly.\n"))
