"""Shared pieces of the chapter 6 entries: the book's 5-layer MNIST net as a Recipe, its smoothed loss curves.

The book's chapter 6 scripts (optimizer_compare_mnist.py, weight_init_compare.py,
batch_norm_test.py) all train ``MultiLayerNet(784, [100] * 4, 10)`` or its
``Extend`` form and plot the training loss through ``smooth_curve``. ``mlp_recipe``
builds that net in both twins; ``loss_curves`` overlays the twins' smoothed
curves, one colour per variant, and the lockstep difference on a log scale.
"""
import matplotlib.pyplot as plt
import numpy as np

from experiments.plots import COLORS
from experiments.training import Recipe
from scratch.models.multilayer import MultiLayerNetExtend
from torch_ref.models.multilayer import MultiLayerNetExtend as TorchMultiLayerNetExtend

PALETTE = ("tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown", "tab:pink")


def mlp_recipe(tag, label, hidden, weight_init_std="relu", activation="relu", use_batchnorm=False, **recipe):
    """A ``Recipe`` training the book's MultiLayerNetExtend(784, hidden, 10) in both twins.

    Lockstep: the scratch twin draws W = std * N(0, 1) from the init stream, the torch
    twin gets those weights. Independent: each draws its own with the same book scheme.
    ``recipe``: the other Recipe fields (optimizer, optimizer_kwargs, batch_size, iterations, ...).
    """
    hidden = list(hidden)

    def scratch_model(dtype, rand):
        return MultiLayerNetExtend(784, hidden, 10, activation, weight_init_std, use_batchnorm=use_batchnorm,
                                   dtype=dtype, generator=rand.init)

    def torch_model(dtype, rand):
        return TorchMultiLayerNetExtend(784, hidden, 10, activation, weight_init_std, use_batchnorm=use_batchnorm,
                                        dtype=dtype)

    return Recipe(scratch_model=scratch_model, torch_model=torch_model, loss="CrossEntropyLoss", tag=tag,
                  label=label, **recipe)


def smooth_curve(x):
    """The book's ``common/util.smooth_curve``: an 11-point Kaiser window (beta 2), edges mirrored."""
    x = np.asarray(x, dtype=float)
    window_len = 11
    if len(x) < window_len:
        return x
    s = np.r_[x[window_len - 1:0:-1], x, x[-1:-window_len:-1]]
    w = np.kaiser(window_len, 2)
    y = np.convolve(w / w.sum(), s, mode="valid")
    return y[5:len(y) - 5]


def mean_history(results, impl):
    """The per-step training loss of ``impl``, averaged over the results (seeds) given."""
    return np.mean([r.history[impl]["loss"] for r in results], axis=0)


def loss_curves(groups, title, ylim=None):
    """Smoothed training loss of every variant, both twins, and (lockstep) their relative difference.

    ``groups``: list of (name, results) with results from ``ctx.train``; independent runs
    show the mean over seeds.
    """
    lockstep = all(rs[0].mode == "lockstep" for _, rs in groups)
    fig, axes = plt.subplots(1, 2 if lockstep else 1, figsize=(14 if lockstep else 8, 4.8), squeeze=False)
    ax = axes[0, 0]
    for k, (name, rs) in enumerate(groups):
        color = PALETTE[k % len(PALETTE)]
        steps = rs[0].history["scratch"]["step"]
        for impl, ls in (("scratch", "-"), ("torch", "--")):
            ax.plot(steps, smooth_curve(mean_history(rs, impl)), ls, color=color, lw=1.2 if impl == "scratch" else 1,
                    label=f"{name} ({impl})")
    ax.set(xlabel="iterations", ylabel="training loss (smoothed)" + ("" if lockstep else ", mean over seeds"),
           title="loss: scratch solid, torch dashed")
    if ylim:
        ax.set_ylim(*ylim)
    ax.legend(fontsize=7, ncol=2)
    if lockstep:
        ax = axes[0, 1]
        for k, (name, rs) in enumerate(groups):
            d = np.asarray(rs[0].loss_rel_diff, dtype=float)
            ax.plot(rs[0].history["scratch"]["step"], np.where(d > 0, d, np.nan), lw=0.7,
                    color=PALETTE[k % len(PALETTE)], label=name)
        if rs[0].tolerance is not None:
            ax.axhline(rs[0].tolerance, color=COLORS["diff"], ls=":", lw=1, label="tolerance (float64)")
        ax.set(xlabel="iterations", ylabel="|scratch - torch| / torch (log; 0 not shown)",
               title="twin difference per step")
        if np.any([np.any(np.asarray(rs[0].loss_rel_diff) > 0) for _, rs in groups]):
            ax.set_yscale("log")
        ax.legend(fontsize=7)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def final_value(results, impl, key):
    """``key`` of the final metrics of ``impl``, averaged over the results (seeds)."""
    return float(np.mean([r.final[impl][key] for r in results]))
