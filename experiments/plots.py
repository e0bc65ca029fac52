"""The plots of a training report: the twins overlaid, their difference on a log scale, the float32
twins against their float64 shadow, and each seed's curves in independent mode."""
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from experiments.shadow import error_ratio_verdict, interval_text  # noqa: E402

COLORS = {"scratch": "tab:blue", "torch": "tab:orange", "diff": "tab:red", "book": "tab:green"}


def _positive(a):
    a = np.asarray(a, dtype=float)
    return np.where(a > 0, a, np.nan)


def plot_lockstep(result, title=""):
    """Three panels: both twins' loss per step overlaid, their relative difference (log), accuracy."""
    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    ax = axes[0]
    for impl, ls in (("scratch", "-"), ("torch", "--")):
        h = result.history[impl]
        ax.plot(h["step"], h["loss"], ls, color=COLORS[impl], lw=1, label=impl)
    ax.set(xlabel="step", ylabel="training loss (batch)", title="loss, both twins")
    ax.legend()
    ax = axes[1]
    d = _positive(result.loss_rel_diff)
    ax.plot(result.history["scratch"]["step"], d, color=COLORS["diff"], lw=0.8,
            label="|loss difference| / max(loss, 1e-3 loss_1)")
    if result.param_diff:
        steps, vals = zip(*result.param_diff)
        ax.plot(steps, _positive(vals), "o-", color="tab:purple", ms=3, lw=1, label="max parameter difference")
    if result.control_loss_rel_diff is not None:
        ax.plot(result.history["scratch"]["step"], _positive(result.control_loss_rel_diff), color="gray", lw=0.8,
                alpha=0.8, label="control: scratch vs scratch 1 ulp apart")
    if np.all(np.isnan(d)) and not result.param_diff:
        ax.text(0.5, 0.5, "identical at every step", transform=ax.transAxes, ha="center")
    zeros = int(np.sum(np.asarray(result.loss_rel_diff) == 0))
    ax.set(xlabel="step", ylabel="difference (log)", title=f"twin difference ({zeros} steps exactly equal)")
    if not np.all(np.isnan(d)):
        ax.set_yscale("log")
    ax.legend(fontsize=8)
    _plot_evals(axes[2], [result])
    fig.suptitle(title or result.label)
    fig.tight_layout()
    return fig


def plot_shadow(result, title=""):
    """Float32 lockstep against its float64 shadow: the three losses, and each twin's error (log)."""
    shadow = result.shadow
    k = shadow["steps"]
    steps = np.arange(1, k + 1)
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    ax = axes[0]
    for impl, ls in (("scratch", "-"), ("torch", "--")):
        ax.plot(steps, result.history[impl]["loss"][:k], ls, color=COLORS[impl], lw=1, label=f"{impl} (float32)")
    ax.plot(steps, shadow["loss"], ":", color="black", lw=1, label="shadow (float64)")
    ax.set(xlabel="step", ylabel="training loss (batch)", title="loss: both float32 twins and the float64 shadow")
    ax.legend(fontsize=8)
    ax = axes[1]
    for impl in ("scratch", "torch"):
        ax.plot(steps, _positive(shadow["err"][impl]), color=COLORS[impl], lw=0.7, alpha=0.8,
                label=f"{impl}: |loss - shadow| / max(shadow, 1e-3 shadow_1)")
        if shadow["param_err"][impl]:
            at, vals = zip(*shadow["param_err"][impl])
            ax.plot(at, _positive(vals), "o", color=COLORS[impl], ms=3, label=f"{impl}: parameter error (scaled)")
    if not np.all(np.isnan(_positive(np.concatenate([shadow["err"]["scratch"], shadow["err"]["torch"]])))):
        ax.set_yscale("log")
    v = error_ratio_verdict(shadow["err"]["scratch"], shadow["err"]["torch"])
    ax.set(xlabel="step", ylabel="error against float64 (log)",
           title=f"{v['verdict']}: median error ratio scratch / torch {v['median_ratio']:.3g}{interval_text(v)}")
    ax.legend(fontsize=7)
    fig.suptitle(title or result.label)
    fig.tight_layout()
    return fig


def plot_independent(results, title=""):
    """Each seed's curve, both twins: the distributions, not the steps, are compared."""
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    ax = axes[0]
    for r in results:
        for impl, ls in (("scratch", "-"), ("torch", "--")):
            h = r.history[impl]
            ax.plot(h["step"], h["loss"], ls, color=COLORS[impl], lw=0.7, alpha=0.7,
                    label=impl if r is results[0] else None)
    ax.set(xlabel="step", ylabel="training loss (batch)", title=f"loss, {len(results)} seeds per twin")
    ax.legend()
    _plot_evals(axes[1], results)
    fig.suptitle(title or results[0].label)
    fig.tight_layout()
    return fig


def _plot_evals(ax, results):
    key = "test_acc" if "test_acc" in results[0].evals["scratch"] else (
        "train_acc" if "train_acc" in results[0].evals["scratch"] else None)
    key = key or ("test_loss" if "test_loss" in results[0].evals["scratch"] else "train_loss")
    for r in results:
        for impl, ls, marker in (("scratch", "-", "o"), ("torch", "--", "x")):
            e = r.evals[impl]
            ax.plot(e["epoch"], e[key], ls, marker=marker, ms=4, color=COLORS[impl], lw=1,
                    label=impl if r is results[0] else None)
            other = key.replace("test", "train") if key.startswith("test") else None
            if other and other in e:
                ax.plot(e["epoch"], e[other], ls, color=COLORS[impl], lw=0.7, alpha=0.5,
                        label=f"{impl} ({other})" if r is results[0] else None)
    ax.set(xlabel="epoch", ylabel=key, title=f"{key} by epoch (whole set)")
    ax.legend(fontsize=8)
