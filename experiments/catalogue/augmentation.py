"""Chapter 8: data augmentation (rotation and shift) against none, on a training set small enough to overfit.

The notes (8.1) enlarge the training set by rotating and shifting its images.
Here a 784-100-100-10 ReLU network (Adam lr 0.001, batch 100) learns from a few
hundred MNIST images, four times: without augmentation, with random rotations
(+-15 degrees), with random whole-pixel shifts (+-2 pixels) and with both
(``RandomAffine``). Without augmentation it memorises the training set (train
accuracy near 100%) and test accuracy stalls; the augmented runs see a new
variant of each image every epoch and generalise better.

Each twin augments with its own code: the scratch twin with
``scratch.transforms`` (a NumPy affine warp), the torch twin with
``torch_ref.transforms`` (torchvision.transforms.v2). The augmentation sits at
the front of the model and acts in training mode only. In lockstep both draw
their angles and shifts from copies of the shared ``augment`` stream, in the
same order, so they warp every batch alike (bilinear sampling: a round-off
difference in a sampling position changes a pixel by round-off, never by a
whole neighbour). Independent: the torch twin draws from torch's own RNG.
"""

import matplotlib.pyplot as plt
import numpy as np
import torch
from torch import nn

import scratch.nn as snn
import scratch.transforms as st
from experiments.catalogue import experiment
from experiments.compare import TOLERANCE, layer_tolerance
from experiments.catalogue._data import mnist
from experiments.plots import COLORS
from experiments.writing import markdown_table
from experiments.training import Recipe
from scratch.models.mlp import MLP
from torch_ref.models.mlp import MLP as TorchMLP

DEGREES, SHIFT = 15.0, 2


def transforms(kind: str, twin, generator):
    """The random transform of one variant for one twin (``twin``: scratch.transforms or torch_ref.transforms)."""
    if kind == "none":
        return None
    if kind == "rotation":
        return twin.RandomRotation(DEGREES, interpolation="bilinear", generator=generator)
    if kind == "shift":
        return twin.RandomShift(SHIFT, generator=generator)
    if kind == "rotation+shift":
        return twin.RandomAffine(DEGREES, translate=(SHIFT / 28, SHIFT / 28), interpolation="bilinear",
                                 generator=generator)
    raise ValueError(f"augmentation: unknown variant {kind!r}; valid: none, rotation, shift, rotation+shift")


class Augmented(snn.Module):
    """x (N, 1, 28, 28) -> [augment, training only] -> Flatten -> net. The images need no gradient:
    backward returns dL/d(augmented image) and stops there."""

    def __init__(self, transform, net):
        super().__init__()
        self.transform = transform
        self.flatten = snn.Flatten()
        self.net = net

    def forward(self, x):
        if self.training and self.transform is not None:
            x = self.transform(x)
        return self.net(self.flatten(x))

    def backward(self, grad_output):
        return self.flatten.backward(self.net.backward(grad_output))


class TorchAugmented(nn.Module):
    """The torch twin of ``Augmented``."""

    def __init__(self, transform, net):
        super().__init__()
        self.transform = transform
        self.flatten = nn.Flatten()
        self.net = net

    def forward(self, x):
        if self.training and self.transform is not None:
            x = self.transform(x)
        return self.net(self.flatten(x))


def torch_transforms():
    """``torch_ref.transforms``, imported when first needed: it imports torchvision, whose package imports
    its models and torch._dynamo (1.7 s here), and every command that lists the catalogue would pay it."""
    import torch_ref.transforms

    return torch_ref.transforms


@experiment(
    number=18, name="augmentation", chapter="8",
    shows="random rotation (+-15 deg), shift (+-2 px) and both vs none on a few hundred MNIST images "
          "(784-100-100-10 ReLU, Adam): train/test accuracy by epoch; each twin warps with its own code, "
          "the same angles and shifts in lockstep",
    durations={"quick": 20, "full": 480},
    profiles={
        "tiny": dict(synthetic=True, n_train=40, n_test=40, epochs=2, batch_size=20, hidden=16,
                     variants=["none", "rotation", "shift", "rotation+shift"]),
        "quick": dict(synthetic=False, n_train=300, n_test=2000, epochs=60, batch_size=100, hidden=100,
                      variants=["none", "rotation+shift"]),
        "full": dict(synthetic=False, n_train=1000, n_test=None, epochs=200, batch_size=100, hidden=100,
                     variants=["none", "rotation", "shift", "rotation+shift"]),
    },
)
def run(ctx):
    cfg = ctx.config
    data = mnist(ctx, flatten=False)
    sizes = [784, cfg["hidden"], cfg["hidden"], 10]
    recipes = []
    for kind in cfg["variants"]:
        transforms(kind, st, None)  # a bad name fails before anything trains
        recipes.append(Recipe(
            scratch_model=lambda dtype, rand, kind=kind: Augmented(
                transforms(kind, st, rand.augment), MLP(sizes, "relu", dtype=dtype, generator=rand.init)),
            torch_model=lambda dtype, rand, kind=kind: TorchAugmented(
                transforms(kind, torch_transforms(), rand.augment), TorchMLP(sizes, "relu", dtype=dtype)),
            optimizer="Adam", optimizer_kwargs=dict(lr=0.001), loss="CrossEntropyLoss",
            batch_size=cfg["batch_size"], epochs=cfg["epochs"], param_every=50, tag=kind,
            label=f"augmentation: {kind}"))
    # Every variant (and seed) a unit of work: with --workers they train at once.
    results = dict(zip(cfg["variants"], ctx.train_each(recipes, data, plot=False)))

    sample = _sample_figure(ctx, data)
    curves = _curves_figure(ctx, results)
    rows, accs = [], {}
    for kind, rs in results.items():
        accs[kind] = {}
        row = {"augmentation": kind}
        for impl in ("scratch", "torch"):
            test = [r.final[impl]["test_acc"] for r in rs]
            train = [r.final[impl]["train_acc"] for r in rs]
            best = [max(r.evals[impl]["test_acc"]) for r in rs]
            accs[kind][impl] = float(np.mean(test))
            row[f"{impl} train"] = f"{np.mean(train):.2%}"
            row[f"{impl} test"] = f"{np.mean(test):.2%}"
            row[f"{impl} best test (epoch)"] = f"{np.mean(best):.2%}"
        rows.append(row)
    base = accs.get("none", {}).get("scratch")
    best_kind = max(accs, key=lambda k: accs[k]["scratch"])
    ctx.headline("test accuracy, scratch / torch: " + "; ".join(
        f"{k} {a['scratch']:.1%} / {a['torch']:.1%}" for k, a in accs.items()) + f" ({cfg['n_train']} images)")
    mean = " (mean over seeds)" if ctx.mode == "independent" else ""
    gain = "" if base is None else (f" The best variant here is **{best_kind}**, "
                                    f"{100 * (accs[best_kind]['scratch'] - base):+.1f} points of test accuracy over "
                                    "no augmentation (scratch twin).")
    note = {"full": "",
            "quick": " The quick profile compares only none and rotation+shift, on 300 images for 60 epochs; the "
                     "full one adds rotation alone and shift alone, on 1,000 images for 200 epochs.",
            "tiny": " The tiny profile (the test suite's) trains two epochs on generated images: its accuracies "
                    "mean nothing."}[ctx.profile]
    ctx.section("Augmentation against none", f"""\
{cfg['n_train']} training images, {len(data.t_test)} test images, {cfg['epochs']} epochs of batch
{cfg['batch_size']} per variant; accuracies on the whole sets after the last epoch{mean} (train accuracy measured
on the original, unaugmented images).{gain}{note}

{markdown_table(rows)}

![accuracy by epoch]({curves})

The same training images as each twin augments them (same angles and shifts in lockstep):

![augmented samples]({sample})
""")
    ctx.keep(test_acc=accs)


def _sample_figure(ctx, data):
    """Eight training images and each variant's warp of them, scratch above torch; parity of the warps."""
    x = np.ascontiguousarray(data.x_train[:8], dtype=ctx.dtype)
    kinds = [k for k in ctx.config["variants"] if k != "none"]
    fig, axes = plt.subplots(1 + 2 * len(kinds), 8, figsize=(8, 1.1 * (1 + 2 * len(kinds))), squeeze=False)
    rows = [("original", x)]
    worst = 0.0
    for kind in kinds:
        a = transforms(kind, st, ctx.streams.rng("augment"))(x)
        b = transforms(kind, torch_transforms(), ctx.streams.rng("augment"))(torch.from_numpy(x)).numpy()
        worst = max(worst, float(np.abs(a - b).max()))
        rows += [(f"{kind}\nscratch", a), (f"{kind}\ntorch", b)]
    for (label, imgs), ax_row in zip(rows, axes):
        for img, ax in zip(imgs, ax_row):
            ax.imshow(img[0], cmap="gray_r", vmin=0, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
        ax_row[0].set_ylabel(label, fontsize=7, rotation=0, ha="right", va="center")
    fig.suptitle(f"first draw of the augment stream; largest pixel difference scratch vs torch: {worst:.1e}",
                 fontsize=9)
    fig.tight_layout()
    if ctx.mode == "lockstep":
        ctx.parity("one augmented batch, scratch.transforms vs torchvision (largest pixel difference)", worst,
                   layer_tolerance(ctx.dtype))
    return ctx.savefig(fig, "augmented_samples", "training images as each twin's augmentation warps them")


def _curves_figure(ctx, results):
    """Test and train accuracy by epoch per variant, both twins; lockstep: the loss difference (log)."""
    lockstep = ctx.mode == "lockstep"
    fig, axes = plt.subplots(1, 3 if lockstep else 2, figsize=(16 if lockstep else 11, 4.2))
    palette = dict(zip(results, plt.rcParams["axes.prop_cycle"].by_key()["color"]))
    for kind, rs in results.items():
        r = rs[0]
        for impl, ls in (("scratch", "-"), ("torch", "--")):
            e = r.evals[impl]
            axes[0].plot(e["epoch"], e["test_acc"], ls, color=palette[kind], lw=1,
                         label=f"{kind} ({impl})")
            axes[1].plot(e["epoch"], e["train_acc"], ls, color=palette[kind], lw=1)
        if lockstep:
            d = np.asarray(r.loss_rel_diff, dtype=float)
            axes[2].plot(r.history["scratch"]["step"], np.where(d > 0, d, np.nan), color=palette[kind], lw=0.7,
                         label=kind)
    axes[0].set(xlabel="epoch", ylabel="test accuracy", title="test accuracy (solid: scratch, dashed: torch)")
    axes[0].legend(fontsize=7)
    axes[1].set(xlabel="epoch", ylabel="train accuracy", title="train accuracy (original images)")
    if lockstep:
        axes[2].set(xlabel="step", ylabel="|loss difference| / loss", yscale="log",
                    title="twins' loss difference per step (0 not shown)")
        axes[2].axhline(TOLERANCE["lockstep"], color=COLORS["diff"], lw=0.8, ls=":")
        axes[2].legend(fontsize=7)
    seed = f", seed {results[next(iter(results))][0].seed}" if not lockstep else ""
    fig.suptitle(f"augmentation vs none, {ctx.mode}{seed}, {ctx.dtype}")
    fig.tight_layout()
    return ctx.savefig(fig, "accuracy_by_epoch", "accuracy by epoch per augmentation, both twins")
