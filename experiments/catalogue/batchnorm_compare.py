"""Chapter 6: with and without batch normalisation, across 16 initial weight scales, on 1,000 images.

The book's ``batch_norm_test.py``: MultiLayerNetExtend(784, [100] * 5, 10), ReLU,
W ~ w * N(0, 1) for 16 scales w = logspace(0, -4, 16), with and without a
BatchNorm layer before every hidden activation; the first 1,000 MNIST training
images, batch 100, SGD lr 0.01, 20 epochs; training accuracy after each epoch,
one small plot per scale (figure 6-19). The book: with batch norm the net learns
faster at almost every scale; without it, it learns nothing when the scale is
too large or too small.

Here both nets of a scale start from the same N(0, 1) draws (lockstep: one init
stream); batch norm is PyTorch's (batch variance for the normalisation, unbiased
variance in the running estimate, momentum 0.1), the book's BatchNorm differs in
the running statistics only, which the training accuracy (eval mode) uses.
"""
import matplotlib.pyplot as plt
import numpy as np

from experiments.catalogue import experiment
from experiments.catalogue._ch6 import mlp_recipe
from experiments.catalogue._data import mnist
from experiments.writing import markdown_table
from experiments.training import Data

VARIANTS = (("BatchNorm", True), ("Normal", False))  # the book's labels: with BN, "Normal (without BatchNorm)"


def diverged_together(result):
    """First non-finite loss step of each twin (None if none); in lockstep, steps where both twins' losses
    are non-finite alike (both nan, or the same infinity) count as agreeing in the parity record.

    Without batch norm the largest scales overflow within a few steps (as in the book, whose curves
    then sit at chance): from there both twins compute nan, and a relative difference of nan and nan
    is undefined rather than large. Whether the twins broke down at the same step is checked apart.
    """
    first = {}
    for impl, h in result.history.items():
        bad = np.flatnonzero(~np.isfinite(h["loss"]))
        first[impl] = int(bad[0]) + 1 if bad.size else None
    if result.loss_rel_diff is not None:
        a, b = result.history["scratch"]["loss"], result.history["torch"]["loss"]
        alike = (np.isnan(a) & np.isnan(b)) | (np.isinf(a) & (a == b))
        result.loss_rel_diff = np.where(alike, 0.0, result.loss_rel_diff)
    return first


def final_parameter_gap(result):
    """Largest |scratch - torch| over the final parameters and buffers, scaled by the model's largest
    |value| (not each tensor's: a bias feeding a batch norm has an exact gradient of 0 and holds round-off
    only), and the number of entries finite in one twin and not in the other."""
    a, b = result.models["scratch"].state_dict(), result.models["torch"].state_dict()
    a = {k: np.asarray(v) for k, v in a.items()}
    b = {k: v.detach().cpu().numpy() for k, v in b.items()}
    worst, scale, mismatched = 0.0, 0.0, 0
    for k, v in a.items():
        if not np.issubdtype(v.dtype, np.floating):
            continue
        fa, fb = np.isfinite(v), np.isfinite(b[k])
        mismatched += int(np.sum(fa != fb))
        both = fa & fb
        if both.any():
            worst = max(worst, float(np.max(np.abs(v[both] - b[k][both]))))
            scale = max(scale, float(np.max(np.abs(b[k][both]))))
    return (worst / scale if scale else 0.0), mismatched


def accuracy_curves(results, impl):
    """(epochs, train accuracy) of ``impl``, mean over the results (seeds)."""
    e = results[0].evals[impl]
    return np.asarray(e["epoch"]), np.mean([r.evals[impl]["train_acc"] for r in results], axis=0)


@experiment(
    number=11, name="batchnorm_compare", chapter="6",
    shows="with vs without batch norm across 16 initial weight scales (1e0 to 1e-4), 1,000 training images, "
          "SGD lr 0.01: training accuracy per epoch, the book's grid of 16 plots, both twins",
    durations={"quick": 24, "full": 90},
    profiles={
        "tiny": dict(synthetic=True, n_train=200, n_test=0, scales=4, epochs=5, hidden=[32] * 5),
        "quick": dict(synthetic=False, n_train=1000, n_test=0, scales=16, epochs=6, hidden=[100] * 5),
        "full": dict(synthetic=False, n_train=1000, n_test=0, scales=16, epochs=20, hidden=[100] * 5),
    },
)
def run(ctx):
    cfg = ctx.config
    d = mnist(ctx)
    data = Data(d.x_train, d.t_train)  # the book measures training accuracy only
    scales = np.logspace(0, -4, num=cfg["scales"])
    curves, rows, breakdowns, gaps = {}, [], [], []
    keys = [(i, variant) for i in range(len(scales)) for variant, _ in VARIANTS]
    # numpy_errors: without batch norm the largest scales overflow, as expected; it is reported below.
    recipes = [mlp_recipe(f"w{i}/{variant}", f"w={scales[i]:.3g}, {variant}", cfg["hidden"], float(scales[i]),
                          use_batchnorm=dict(VARIANTS)[variant], optimizer="SGD", optimizer_kwargs=dict(lr=0.01),
                          batch_size=100, epochs=cfg["epochs"], numpy_errors=dict(over="ignore", invalid="ignore"))
               for i, variant in keys]
    # Every (scale, variant) and seed a unit of work: with --workers they train at once.
    curves = dict(zip(keys, ctx.train_each(recipes, data, plot=False)))
    for i, w in enumerate(scales):
        for variant, bn in VARIANTS:
            results = curves[i, variant]
            for r in results:
                first = diverged_together(r)
                if any(first.values()):
                    breakdowns.append((w, variant, r.seed, first))
                if r.mode == "lockstep":
                    gaps.append(final_parameter_gap(r))
        row = {"scale w": f"{w:.3g}"}
        for variant, _ in VARIANTS:
            for impl in ("scratch", "torch"):
                row[f"{variant} ({impl})"] = f"{accuracy_curves(curves[i, variant], impl)[1][-1]:.3f}"
        rows.append(row)

    if ctx.mode == "lockstep":
        apart = sum(1 for *_, f in breakdowns if f["scratch"] != f["torch"])
        ctx.parity("runs whose twins' losses turned non-finite at different steps", apart, 0)
        ctx.parity("final parameters: largest |scratch - torch| over all runs, scaled by each model's largest "
                   "|parameter| (finite entries)", max(g for g, _ in gaps))
        ctx.parity("final parameters: entries finite in one twin and not in the other", sum(m for _, m in gaps), 0)

    # -- the book's grid of small plots ------------------------------------------------------------
    side = int(np.ceil(np.sqrt(len(scales))))
    fig, axes = plt.subplots(side, side, figsize=(3.2 * side, 2.6 * side), sharex=True, sharey=True, squeeze=False)
    for i, w in enumerate(scales):
        ax = axes.flat[i]
        for variant, color in (("BatchNorm", "tab:blue"), ("Normal", "tab:red")):
            for impl, ls, marker in (("scratch", "-", None), ("torch", ":", "x")):
                x, acc = accuracy_curves(curves[i, variant], impl)
                ax.plot(x, acc, ls, color=color, marker=marker, ms=3, markevery=2, lw=1.2,
                        label=f"{variant} ({impl})")
        ax.set_title(f"W: {w:.3g}", fontsize=9)
        ax.set_ylim(0, 1.0)
        ax.tick_params(labelsize=7)
        ax.locator_params(nbins=4)
    for ax in axes.flat[len(scales):]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=6)
    for ax in axes[-1]:
        ax.set_xlabel("epochs", fontsize=8)
    for ax in axes[:, 0]:
        ax.set_ylabel("train accuracy", fontsize=8)
    fig.suptitle(f"training accuracy with (blue) and without (red) batch norm, {len(data.x_train)} images, "
                 f"{cfg['epochs']} epochs; scratch solid, torch dotted ({ctx.mode})")
    fig.subplots_adjust(left=0.06, right=0.98, bottom=0.06, top=0.92, wspace=0.1, hspace=0.3)
    grid = ctx.savefig(fig, "batchnorm_grid", "the book's figure 6-19: training accuracy per epoch for "
                                                          "each initial weight scale")

    fig, ax = plt.subplots(figsize=(8, 4.5))
    final = {}
    for variant, color in (("BatchNorm", "tab:blue"), ("Normal", "tab:red")):
        for impl, ls, marker in (("scratch", "-", "o"), ("torch", ":", "x")):
            final[variant, impl] = np.array([accuracy_curves(curves[i, variant], impl)[1][-1]
                                             for i in range(len(scales))])
            ax.plot(scales, final[variant, impl], ls, marker=marker, color=color, label=f"{variant} ({impl})")
    ax.set(xscale="log", xlabel="initial weight scale w", ylabel="final training accuracy", ylim=(0, 1.02),
           title=f"after {cfg['epochs']} epochs")
    ax.legend(fontsize=8)
    fig.tight_layout()
    summary_plot = ctx.savefig(fig, "batchnorm_final", "final training accuracy against the initial "
                                                                   "weight scale")

    bn, plain = final["BatchNorm", "scratch"], final["Normal", "scratch"]
    ahead = int(np.sum(bn > plain))
    ctx.keep(**{f"final_train_acc_{ctx.mode}": {"scales": scales, "BatchNorm": bn, "Normal": plain}})
    ctx.headline(f"batch norm ahead at {ahead}/{len(scales)} scales; mean final train accuracy {bn.mean():.1%} "
                 f"with, {plain.mean():.1%} without ({cfg['epochs']} epochs)")
    runs = "the book's 20 epochs" if cfg["epochs"] >= 20 else (
        f"{cfg['epochs']} epochs, a shorter run than the book's 20 (profile `{ctx.profile}`)")
    ctx.section("Against the book", (
        f"{len(scales)} initial scales from 1 to 1e-4, {len(data.x_train)} training images, batch 100, SGD lr "
        f"0.01, {runs}; every epoch is a permutation of the images (the book samples with replacement). The "
        "book (figure 6-19): batch norm learns faster at almost every scale, and without it the net does not "
        f"learn at all for the largest and the smallest scales. Here batch norm ends ahead at {ahead} of "
        f"{len(scales)} scales (scratch twin; the torch twin's accuracies are in the table).\n\n"
        + markdown_table(rows) + f"\n![grid]({grid})\n\n![final accuracy]({summary_plot})\n"))
    broke = "\n".join(f"- w = {w:.3g}, {v}{'' if ctx.mode == 'lockstep' else f', seed {seed}'}: scratch at step "
                      f"{f['scratch']}, torch at step {f['torch']}" for w, v, seed, f in breakdowns)
    ctx.section("Parity notes", (
        "**Runs that overflow.** Without batch norm the largest scales blow up: the loss turns to nan within "
        "a few steps and the accuracy drops to the share of the class argmax picks for nan. Steps where both "
        "twins' losses are nan count as agreeing in the lockstep parity above; that both broke down at the "
        "same step is a parity figure of its own. First non-finite training loss:\n\n"
        + (broke or "- none") + "\n\n"
        "After the breakdown the two twins' parameters need not be nan in the same places: scratch's ReLU "
        "backward multiplies the gradient by its mask (nan * 0 = nan), where torch's `threshold_backward` "
        "writes 0 for inputs <= 0, so a nan gradient dies at an inactive unit in torch and spreads in "
        "scratch. That is what a non-zero count of *entries finite in one twin and not in the other* means; "
        "the finite steps before the breakdown agree to round-off.\n\n"
        "**Biases before a batch norm.** The runner's *largest parameter difference (scaled)* scales each "
        "tensor by its own largest value. The bias of an Affine layer feeding a BatchNorm has an exact "
        "gradient of 0 (the normalisation subtracts the batch mean), so it holds round-off of order 1e-19 and "
        "that figure compares noise with noise: it can read 1 or more while the twins agree. The figure "
        "scaled by each model's largest parameter, above, is the meaningful one here.\n"))
