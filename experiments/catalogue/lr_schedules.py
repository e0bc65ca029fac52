"""Chapter 6 (learning-rate decay): StepLR, cosine annealing and one-cycle against a constant rate.

The same 784 -> 100 -> 100 -> 10 ReLU net (He init) is trained with SGD
(momentum 0.9, batch 100) four times, once per schedule, each in both twins:

    constant:  lr = base_lr
    StepLR:    lr = base_lr * gamma ** (epoch // step_size)                       (stepped per epoch)
    cosine:    lr = eta_min + (base_lr - eta_min) * (1 + cos(pi * t / T_max)) / 2  (per step, T_max = all steps)
    one-cycle: max_lr / div_factor -> max_lr (cosine, first pct_start of the steps) -> far below (per step),
               the momentum cycling inversely between 0.95 and 0.85

``scratch.optim.lr_scheduler`` drives the scratch twin, ``torch.optim.lr_scheduler``
the torch twin. Apart from the training, each schedule is replayed on a bare
optimizer in both libraries, step by step as the trainer steps it, and the rates
(and one-cycle's momentum) compared value for value.
"""
import math

import matplotlib.pyplot as plt
import numpy as np
import torch

import scratch.optim as soptim
from experiments.catalogue import experiment
from experiments.compare import TOLERANCE
from experiments.catalogue._data import mnist
from experiments.writing import fmt, markdown_table
from experiments.training import Recipe
from scratch.models.multilayer import MultiLayerNet
from scratch.nn.parameter import Parameter
from torch_ref.models.multilayer import MultiLayerNet as TorchMultiLayerNet

SCHEDULE_COLORS = {"constant": "tab:gray", "StepLR": "tab:green", "cosine": "tab:purple", "one-cycle": "tab:red"}


def schedules(cfg, total_steps: int) -> dict:
    """name -> (scheduler class name or None, kwargs, interval): the same for both libraries."""
    return {
        "constant": (None, {}, "epoch"),
        "StepLR": ("StepLR", dict(step_size=cfg["step_size"], gamma=cfg["gamma"]), "epoch"),
        "cosine": ("CosineAnnealingLR", dict(T_max=total_steps, eta_min=0.0), "step"),
        "one-cycle": ("OneCycleLR", dict(max_lr=cfg["max_lr"], total_steps=total_steps), "step"),
    }


def trace(library: str, scheduler, kwargs, interval, lr, momentum, total_steps, steps_per_epoch):
    """The (lr, momentum) each of ``total_steps`` optimizer steps uses, replaying the trainer's stepping
    (scheduler.step() after each step, or after the last step of each epoch) on a bare optimizer."""
    if library == "scratch":
        opt = soptim.SGD([Parameter(np.zeros(1))], lr=lr, momentum=momentum)
        sched = getattr(soptim.lr_scheduler, scheduler)(opt, **kwargs) if scheduler else None
    else:
        opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=lr, momentum=momentum)
        sched = getattr(torch.optim.lr_scheduler, scheduler)(opt, **kwargs) if scheduler else None
    out = np.empty((total_steps, 2))
    for k in range(total_steps):
        out[k] = opt.param_groups[0]["lr"], opt.param_groups[0]["momentum"]
        opt.step()  # no gradients: nothing moves, but torch wants a step before the scheduler's
        if sched is not None and (interval == "step" or (k + 1) % steps_per_epoch == 0):
            sched.step()
    return out


def relative_gap(a, b) -> float:
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = np.where(a == b, 0.0, np.abs(a - b) / np.abs(b))
    return float(rel.max())


@experiment(
    number=15, name="lr_schedules", chapter="6",
    shows="SGD with momentum under StepLR, cosine and one-cycle schedules against a constant rate on MNIST "
          "(784-100-100-10): rates step by step and accuracy, scratch.optim.lr_scheduler vs torch",
    durations={"quick": 20, "full": 150},
    profiles={
        "tiny": dict(synthetic=True, n_train=300, n_test=100, epochs=2, hidden=[100, 100], batch_size=100,
                     lr=0.05, momentum=0.9, step_size=1, gamma=0.1, max_lr=0.1),
        "quick": dict(synthetic=False, n_train=10000, n_test=5000, epochs=4, hidden=[100, 100], batch_size=100,
                      lr=0.05, momentum=0.9, step_size=2, gamma=0.1, max_lr=0.1),
        "full": dict(synthetic=False, n_train=None, n_test=None, epochs=15, hidden=[100, 100], batch_size=100,
                     lr=0.05, momentum=0.9, step_size=5, gamma=0.1, max_lr=0.1),
    },
)
def run(ctx):
    cfg = ctx.config
    data = mnist(ctx)
    per_epoch = math.ceil(len(data.x_train) / cfg["batch_size"])
    total = cfg["epochs"] * per_epoch
    traces, rows = {}, []
    plan = schedules(cfg, total)
    recipes = {}
    for name, (scheduler, kwargs, interval) in plan.items():
        recipes[name] = Recipe(
            scratch_model=lambda dtype, rand: MultiLayerNet(784, cfg["hidden"], 10, dtype=dtype, generator=rand.init),
            torch_model=lambda dtype, rand: TorchMultiLayerNet(784, cfg["hidden"], 10, dtype=dtype),
            optimizer="SGD", optimizer_kwargs=dict(lr=cfg["lr"], momentum=cfg["momentum"]),
            scheduler=scheduler, scheduler_kwargs=kwargs, scheduler_interval=interval,
            loss="CrossEntropyLoss", batch_size=cfg["batch_size"], epochs=cfg["epochs"],
            tag=name.replace("-", "_"), label=f"{name} schedule")
    # Every schedule (and seed) a unit of work: with --workers they train at once.
    runs = dict(zip(recipes, ctx.train_each(list(recipes.values()), data)))
    for name, (scheduler, kwargs, interval) in plan.items():
        recipe = recipes[name]
        traces[name] = {lib: trace(lib, scheduler, kwargs, interval, cfg["lr"], cfg["momentum"], total, per_epoch)
                        for lib in ("scratch", "torch")}
        lr_gap = relative_gap(traces[name]["scratch"][:, 0], traces[name]["torch"][:, 0])
        mom_gap = relative_gap(traces[name]["scratch"][:, 1], traces[name]["torch"][:, 1])
        for k, (s, t) in enumerate(zip(traces[name]["scratch"], traces[name]["torch"])):
            ctx.log("scratch", f"{recipe.tag}/lr", float(s[0]), step=k + 1)
            ctx.log("torch", f"{recipe.tag}/lr", float(t[0]), step=k + 1)
        if scheduler:
            ctx.parity(f"{name}: largest relative difference of the rate over {total} steps, scratch vs torch "
                       "scheduler", lr_gap, TOLERANCE["optim"][np.float64])
        if name == "one-cycle":
            ctx.parity(f"{name}: largest relative difference of the cycled momentum", mom_gap, TOLERANCE["optim"][np.float64])
        acc = {impl: float(np.mean([r.final[impl]["test_acc"] for r in runs[name]])) for impl in ("scratch", "torch")}
        rows.append({"schedule": name, "scheduler": scheduler or "-", "stepped": f"per {interval}",
                     "first rate": fmt(traces[name]["scratch"][0, 0]), "last rate": fmt(traces[name]["scratch"][-1, 0]),
                     "scratch test accuracy": f"{acc['scratch']:.2%}", "torch test accuracy": f"{acc['torch']:.2%}",
                     "rate difference": fmt(lr_gap)})
    ctx.keep(schedules=rows)

    fig = plot_schedules(runs, traces, ctx)
    plot = ctx.savefig(fig, "schedules", "the rate per step in both twins (left), their difference (middle) and "
                                         "test accuracy by epoch (right), per schedule")
    best = max(rows, key=lambda r: float(r["scratch test accuracy"].rstrip("%")))
    ctx.headline("test accuracy " + ", ".join(f"{r['schedule']} {r['scratch test accuracy']} / "
                                              f"{r['torch test accuracy']}" for r in rows) + " (scratch / torch)")
    ctx.section("Schedules", (
        f"![schedules]({plot})\n\n"
        f"{cfg['epochs']} epochs of {per_epoch} steps on {len(data.x_train)} training images, SGD "
        f"lr {cfg['lr']} and momentum {cfg['momentum']} (one-cycle: max_lr {cfg['max_lr']}, starting at "
        f"max_lr / 25). StepLR multiplies the rate by {cfg['gamma']} every {cfg['step_size']} epochs; cosine "
        "anneals it to 0 over all the steps; one-cycle warms it up over the first 30% of the steps, then "
        "anneals it to max_lr / 25 / 10^4, moving the momentum the other way. The test accuracy is on the "
        f"whole test set ({len(data.x_test)} images) after the last step. Best here: {best['schedule']}.\n\n"
        + markdown_table(rows) + "\n\n"
        "The notes point to learning-rate decay without numbers; the book decays the rate only inside "
        "AdaGrad. 'rate difference' is the largest relative difference between the rates "
        "`scratch.optim.lr_scheduler` and `torch.optim.lr_scheduler` set, replayed step by step on a bare "
        "optimizer."))


def plot_schedules(runs, traces, ctx):
    fig, axes = plt.subplots(1, 3, figsize=(16, 4.3))
    for name, tr in traces.items():
        color = SCHEDULE_COLORS[name]
        steps = np.arange(1, len(tr["scratch"]) + 1)
        axes[0].plot(steps, tr["scratch"][:, 0], "-", color=color, lw=1.5, label=f"{name} (scratch)")
        axes[0].plot(steps, tr["torch"][:, 0], "--", color="k", lw=0.7, alpha=0.6,
                     label="torch (dashed)" if name == "constant" else None)
        diff = np.abs(tr["scratch"][:, 0] - tr["torch"][:, 0])
        shown = np.where(diff > 0, diff, np.nan)
        axes[1].plot(steps, shown, ".", ms=2, color=color,
                     label=f"{name}: {int(np.sum(diff == 0))} of {len(diff)} steps exactly equal")
        for impl, ls in (("scratch", "-"), ("torch", "--")):
            e = runs[name][0].evals[impl]
            axes[2].plot(e["epoch"], e["test_acc"], ls, marker="o" if impl == "scratch" else "x", ms=4,
                         color=color, label=f"{name} ({impl})")
    axes[0].set(xlabel="step", ylabel="learning rate", title="rate used at each step")
    axes[0].legend(fontsize=7)
    axes[1].set(xlabel="step", ylabel="|lr scratch - lr torch|", title="rate difference (gaps: exactly equal)")
    if any(np.any(np.isfinite(line.get_ydata())) for line in axes[1].get_lines()):
        axes[1].set_yscale("log")
    else:
        axes[1].text(0.5, 0.5, "every rate of every schedule\nis bit for bit the same in both twins",
                     ha="center", va="center", transform=axes[1].transAxes)
    axes[1].legend(fontsize=7)
    # Zoom on the end of training, where the schedules part: from the first evaluation after epoch 0.
    later = [a for line in axes[2].get_lines() for e, a in zip(line.get_xdata(), line.get_ydata()) if e > 0]
    if later:
        low, high = min(later), max(later)
        axes[2].set_ylim(low - 0.1 * (high - low + 1e-3), high + 0.1 * (high - low + 1e-3))
    axes[2].set(xlabel="epoch", ylabel="test accuracy", title="test accuracy by epoch (whole test set, zoomed)")
    axes[2].legend(fontsize=6, ncol=2)
    fig.suptitle(f"learning-rate schedules ({ctx.mode}, {ctx.dtype})")
    fig.tight_layout()
    return fig
