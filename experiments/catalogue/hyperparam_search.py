"""Chapter 6.5: random search of the learning rate and weight decay (the book's hyperparameter_optimization.py).

The book takes the first 500 MNIST training images, holds 20% of them out as a
validation set (hyperparameters are judged on data that neither trains the
weights nor is the test set), and runs trials of

    lr           = 10 ** uniform(-6, -2)
    weight_decay = 10 ** uniform(-8, -4)

each training a 784 -> 6 x 100 ReLU -> 10 net (He init) with SGD, batch 100,
for 50 epochs, then ranks the trials by final validation accuracy and plots the
best ones' validation and training accuracy by epoch. Both twins train every
trial (in lockstep by default), with the weight decay on the weight matrices
only, as the book's L2 term (``SGD`` parameter groups).
"""
import math

import matplotlib.pyplot as plt
import numpy as np

from experiments.catalogue import experiment
from experiments.compare import lockstep_tolerance
from experiments.catalogue._data import mnist
from experiments.catalogue._overfit import decay_groups, mean_curve
from experiments.plots import COLORS, plot_lockstep
from experiments.writing import fmt, markdown_table
from experiments.training import Data, Recipe
from scratch.models.multilayer import MultiLayerNet
from torch_ref.models.multilayer import MultiLayerNet as TorchMultiLayerNet


def sample_trials(n: int, seed: int, lr_range=(-6, -2), wd_range=(-8, -4)) -> list:
    """``n`` (lr, weight_decay) pairs drawn log-uniformly, as the book: 10 ** uniform(low, high)."""
    rng = np.random.default_rng([14, seed])  # a stream of its own, apart from the training streams
    return [(float(10 ** rng.uniform(*lr_range)), float(10 ** rng.uniform(*wd_range))) for _ in range(n)]


def split(data: Data, validation_rate: float, rng) -> Data:
    """Shuffle the training images and hold out ``validation_rate`` of them: Data(train, validation)."""
    order = rng.permutation(len(data.x_train))
    x, t = data.x_train[order], data.t_train[order]
    n_val = int(len(x) * validation_rate)
    return Data(x[n_val:], t[n_val:], x[:n_val], t[:n_val])


def rank_corr(a, b) -> float:
    """Spearman's rank correlation (ties ranked by order of appearance); nan when one side is constant."""
    ra, rb = (np.argsort(np.argsort(v, kind="stable")).astype(float) for v in (a, b))
    if ra.std() == 0 or rb.std() == 0:
        return float("nan")
    return float(np.corrcoef(ra, rb)[0, 1])


def val_acc(results, impl: str) -> float:
    return float(np.mean([r.final[impl]["test_acc"] for r in results]))


@experiment(
    number=14, name="hyperparam_search", chapter="6",
    shows="random search of lr in 10^[-6,-2] and weight decay in 10^[-8,-4] on 400 images + 100 for "
          "validation, 6x100 net, 50 epochs per trial; the best trials' accuracy curves, both twins",
    durations={"quick": 25, "full": 300},
    profiles={
        "tiny": dict(synthetic=True, n_train=100, n_test=10, trials=3, epochs=3, shown=3, depth=6, width=100,
                     batch_size=100, validation_rate=0.2),
        "quick": dict(synthetic=False, n_train=500, n_test=10, trials=8, epochs=50, shown=8, depth=6,
                      width=100, batch_size=100, validation_rate=0.2),
        "full": dict(synthetic=False, n_train=500, n_test=10, trials=100, epochs=50, shown=20, depth=6,
                     width=100, batch_size=100, validation_rate=0.2),
    },
)
def run(ctx):
    cfg = ctx.config
    data = split(mnist(ctx), cfg["validation_rate"], ctx.streams.rng("data"))
    hidden = [cfg["width"]] * cfg["depth"]
    trials = []
    samples = sample_trials(cfg["trials"], ctx.seed)
    recipes = [Recipe(
        scratch_model=lambda dtype, rand: MultiLayerNet(784, hidden, 10, dtype=dtype, generator=rand.init),
        torch_model=lambda dtype, rand: TorchMultiLayerNet(784, hidden, 10, dtype=dtype),
        optimizer="SGD", optimizer_kwargs=dict(lr=lr), param_groups=decay_groups(wd),
        loss="CrossEntropyLoss", batch_size=cfg["batch_size"], epochs=cfg["epochs"],
        tag=f"trial{k:03d}", label=f"trial {k} (lr {lr:.2e}, weight decay {wd:.2e})")
        for k, (lr, wd) in enumerate(samples)]
    # Every trial (and seed) is a unit of work, in parallel with --workers; kept out of the report's standard
    # tables (record=False): the best three go in below.
    for k, ((lr, wd), results) in enumerate(zip(samples, ctx.train_each(recipes, data, plot=False, record=False))):
        trials.append({"trial": k, "lr": lr, "weight_decay": wd, "results": results,
                       "val_scratch": val_acc(results, "scratch"), "val_torch": val_acc(results, "torch")})
    ranked = sorted(trials, key=lambda tr: (-tr["val_scratch"], tr["trial"]))

    # The three best go into the report's standard tables; every trial into the search table.
    for rank, tr in enumerate(ranked[:3]):
        for r in tr["results"]:
            r.label = f"best {rank + 1}: {r.label}"
        ctx.add_results(tr["results"])
    best = ranked[0]
    if ctx.mode == "lockstep":
        r = best["results"][0]
        ctx.savefig(plot_lockstep(r, f"{r.label}: lockstep, seed {ctx.seed}, {ctx.dtype}"), "best_trial_lockstep",
                    f"{r.label}: both twins' loss per step, their difference on a log scale, accuracy by epoch")
        worst = max(tr["results"][0].max_loss_rel_diff for tr in trials)
        ctx.parity(f"all {len(trials)} trials: largest |loss difference| / loss at any step", worst,
                   lockstep_tolerance(ctx.dtype))
        ctx.parity(f"all {len(trials)} trials: largest parameter difference (scaled)",
                   max(tr["results"][0].max_param_diff for tr in trials))
        ctx.keep(worst_trial_loss_rel_diff=worst)
    same_rank = [tr["trial"] for tr in ranked] == [tr["trial"] for tr in sorted(
        trials, key=lambda tr: (-tr["val_torch"], tr["trial"]))]

    fig = plot_best(ranked[:cfg["shown"]], ctx)
    grid = ctx.savefig(fig, "best_trials", f"the {min(cfg['shown'], len(ranked))} best trials by validation "
                                           "accuracy: validation (thick) and training (thin) accuracy by epoch, "
                                           "scratch solid, torch dashed (the book's figure 6-24)")
    scatter = ctx.savefig(plot_map(trials, ctx), "search_map",
                          "every trial's final validation accuracy (scratch) by learning rate and weight decay")

    rows = [{"rank": i + 1, "trial": tr["trial"], "lr": f"{tr['lr']:.3e}", "weight decay": f"{tr['weight_decay']:.3e}",
             "val acc scratch": f"{tr['val_scratch']:.2%}", "val acc torch": f"{tr['val_torch']:.2%}",
             "train acc scratch": f"{np.mean([r.final['scratch']['train_acc'] for r in tr['results']]):.2%}",
             **({"largest loss difference": fmt(tr["results"][0].max_loss_rel_diff)} if ctx.mode == "lockstep"
                else {})}
            for i, tr in enumerate(ranked)]
    good = [tr for tr in ranked if tr["val_scratch"] >= 0.5 * ranked[0]["val_scratch"] and ranked[0]["val_scratch"]]
    ctx.keep(trials=[{k: v for k, v in tr.items() if k != "results"} for tr in ranked])
    ctx.keep(best={k: v for k, v in best.items() if k != "results"})
    ctx.headline(f"best of {len(trials)} trials: lr {best['lr']:.2e}, weight decay {best['weight_decay']:.2e}, "
                 f"validation accuracy {best['val_scratch']:.2%} / {best['val_torch']:.2%} (scratch / torch)")
    lrs, wds, accs = ([tr[k] for tr in trials] for k in ("lr", "weight_decay", "val_scratch"))
    ctx.keep(rank_correlation={"lr": rank_corr(lrs, accs), "weight_decay": rank_corr(wds, accs)})
    lr_span = (f"{min(tr['lr'] for tr in good):.1e} to {max(tr['lr'] for tr in good):.1e}" if good else "-")
    ctx.section("The search", (
        f"{len(trials)} trials, each {cfg['epochs']} epochs on {len(data.x_train)} training images, judged on "
        f"{len(data.x_test)} validation images held out of them (the test set is not used). In the metrics, "
        "`test_acc` of a trial is its validation accuracy. The ranking is by the scratch twin's final "
        "validation accuracy; the torch twin ranks the trials "
        + ("identically." if same_rank else "slightly differently (ties broken by round-off).")
        + f"\n\n![best trials]({grid})\n\n![search map]({scatter})\n\n"
        f"Trials reaching at least half the best validation accuracy have learning rates from {lr_span}. "
        "The book (100 trials, figure 6-24) finds learning well under way for lr between about 0.001 and 0.01 "
        "and weight decay between about 1e-8 and 1e-6, and suggests narrowing the ranges to that region "
        "and searching again. "
        + ("" if ctx.profile == "full" else f"This `{ctx.profile}` profile runs {len(trials)} trials; the "
           "`full` profile runs the book's 100. ")
        + f"Rank correlation (Spearman) of the final validation accuracy with the learning rate: "
          f"{rank_corr(lrs, accs):.2f}, with the weight decay: {rank_corr(wds, accs):.2f}. In {cfg['epochs']} "
          "epochs a small learning rate barely moves the weights, whatever the decay.\n\n"
        + markdown_table(rows)))


def plot_best(trials, ctx):
    cols = min(4, len(trials))
    rows = math.ceil(len(trials) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.3 * cols, 2.4 * rows), sharex=True, sharey=True,
                             squeeze=False)
    for ax in axes.flat[len(trials):]:
        ax.axis("off")
    for i, (ax, tr) in enumerate(zip(axes.flat, trials)):
        for impl, ls in (("scratch", "-"), ("torch", "--")):
            epochs, val = mean_curve(tr["results"], impl, "test_acc")
            _, train = mean_curve(tr["results"], impl, "train_acc")
            ax.plot(epochs, val, ls, color=COLORS[impl], lw=1.6, label=f"{impl} validation")
            ax.plot(epochs, train, ls, color=COLORS[impl], lw=0.8, alpha=0.5, label=f"{impl} train")
        ax.set_title(f"best {i + 1} (val {tr['val_scratch']:.2f})\nlr {tr['lr']:.1e}, wd {tr['weight_decay']:.1e}",
                     fontsize=8)
        ax.set_ylim(0, 1.0)
        ax.tick_params(labelsize=7)
        if i == 0:
            ax.legend(fontsize=6, loc="lower right")
    fig.suptitle(f"random search, best trials ({ctx.mode}, {ctx.dtype})")
    fig.tight_layout()
    return fig


def plot_map(trials, ctx):
    fig, ax = plt.subplots(figsize=(6, 4.5))
    lr = np.array([tr["lr"] for tr in trials])
    wd = np.array([tr["weight_decay"] for tr in trials])
    acc = np.array([tr["val_scratch"] for tr in trials])
    points = ax.scatter(lr, wd, c=acc, cmap="viridis", vmin=0, vmax=1, s=40, edgecolors="k", linewidths=0.4)
    fig.colorbar(points, ax=ax, label="validation accuracy (scratch)")
    ax.set(xscale="log", yscale="log", xlabel="learning rate", ylabel="weight decay",
           title=f"{len(trials)} trials ({ctx.mode}, {ctx.dtype})")
    ax.grid(True, alpha=0.3)
    fig.tight_layout()
    return fig
