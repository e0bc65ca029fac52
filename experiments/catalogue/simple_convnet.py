"""Chapter 7: the book's SimpleConvNet on MNIST, and its first-layer filters before and after training.

Conv(30, 5x5) -> ReLU -> MaxPool(2x2) -> Affine(4320, 100) -> ReLU -> Affine(100, 10),
W ~ 0.01 N(0, 1), b = 0, Adam lr 0.001, batch 100, 20 epochs (the book's
train_convnet.py: 98.9% test accuracy). The 30 filters of the first layer are
noise at the start and edge and blob detectors after training (the book's
picture of the first layer's weights); both twins' filters are drawn with their own
``filter_grid`` (NumPy and ``torchvision.utils.make_grid``).
"""
import matplotlib.pyplot as plt
import numpy as np
import torch

from experiments.catalogue import experiment
from experiments.catalogue._cnn import book_table
from experiments.catalogue._data import mnist
from experiments.compare import compare_arrays
from experiments.training import Recipe
from scratch.models.convnets import SimpleConvNet, filter_grid
from torch_ref.models.convnets import SimpleConvNet as TorchSimpleConvNet
from torch_ref.models.convnets import filter_grid as torch_filter_grid

BOOK = 0.989  # the book's test accuracy after 20 epochs


@experiment(
    number=16, name="simple_convnet", chapter="7",
    shows="SimpleConvNet (conv 30x5x5, pool, 100, 10), std 0.01, Adam lr 0.001, batch 100 (book: 98.9% test "
          "after 20 epochs); the 30 first-layer filters before and after training",
    durations={"quick": 30, "full": 1.5 * 3600},
    profiles={
        "tiny": dict(synthetic=True, n_train=60, n_test=40, iterations=4, epochs=None, batch_size=20,
                     eval_train=False),
        "quick": dict(synthetic=False, n_train=6000, n_test=2000, iterations=120, epochs=None, batch_size=100,
                      eval_train=False),
        "full": dict(synthetic=False, n_train=None, n_test=None, iterations=None, epochs=20, batch_size=100,
                     eval_train=True),
    },
)
def run(ctx):
    cfg = ctx.config
    data = mnist(ctx, flatten=False)

    def scratch_model(dtype, rand):
        return SimpleConvNet(weight_init_std=0.01, dtype=dtype, generator=rand.init)

    def torch_model(dtype, rand):
        return TorchSimpleConvNet(weight_init_std=0.01, dtype=dtype)

    recipe = Recipe(scratch_model=scratch_model, torch_model=torch_model, optimizer="Adam",
                    optimizer_kwargs=dict(lr=0.001), loss="CrossEntropyLoss", batch_size=cfg["batch_size"],
                    iterations=cfg["iterations"], epochs=cfg["epochs"], eval_train=cfg["eval_train"],
                    param_every=max(1, (cfg["iterations"] or 600) // 10), label="SimpleConvNet")
    results = ctx.train(recipe, data)

    # -- the filters ----------------------------------------------------------------------------
    first = results[0]
    # What each twin started from (lockstep: the torch twin received the scratch twin's weights). Taken from
    # the result, not from the builders: with --workers they run in another process.
    initial = {impl: first.initial[impl]["layers.Conv1.weight"] for impl in ("scratch", "torch")}
    s_after = first.models["scratch"].layers.Conv1.weight.data
    t_after = first.models["torch"].layers.Conv1.weight.detach().cpu()
    grids = {("scratch", "before"): filter_grid(initial["scratch"], nrow=10),
             ("scratch", "after"): filter_grid(s_after, nrow=10),
             ("torch", "before"): torch_filter_grid(torch.from_numpy(initial["torch"]), nrow=10).numpy(),
             ("torch", "after"): torch_filter_grid(t_after, nrow=10).numpy()}
    fig, axes = plt.subplots(2, 2, figsize=(12, 4.8))
    for (impl, when), ax in zip(grids, axes.T.flat):
        ax.imshow(grids[impl, when][0], cmap="gray", vmin=0, vmax=1)  # the 3 channels are copies
        ax.set_title(f"{impl}: {when} training", fontsize=10)
        ax.axis("off")
    fig.suptitle("the 30 filters (5x5) of Conv1, each scaled to its own range (dark: negative weights)")
    fig.tight_layout()
    picture = ctx.savefig(fig, "filters", "Conv1's 30 filters before and after training, both twins")
    weight_gap = compare_arrays("Conv1.weight", s_after, t_after.numpy()).scaled
    grid_gap = float(np.abs(grids["scratch", "after"] - grids["torch", "after"]).max())
    change = float(np.linalg.norm(s_after - initial["scratch"]) / np.linalg.norm(initial["scratch"]))
    if ctx.mode == "lockstep":
        ctx.parity("Conv1 weights after training, scratch vs torch (scaled)", weight_gap)
        ctx.parity("filter pictures after training: largest pixel difference (scratch filter_grid vs "
                   "torchvision make_grid, values in [0, 1])", grid_gap)
    ctx.log("scratch", "conv1_relative_change", change)

    text, accs = book_table(ctx, BOOK, results, "Test accuracy on the test set after the last step")
    ctx.headline(f"test accuracy {accs['scratch']:.2%} / {accs['torch']:.2%} (scratch / torch; book 98.9% after "
                 f"20 epochs; {ctx.profile} profile)")
    ctx.section("Against the book", text)
    seed_note = f" (seed {first.seed})" if ctx.mode == "independent" else ""
    same = ("The twins start from the same filters (lockstep) and end with the same ones: the largest weight "
            f"difference is {weight_gap:.2e} of the weights' scale." if ctx.mode == "lockstep" else
            "Each twin starts from its own random filters (independent mode).")
    ctx.section("The first layer's filters", f"""\
Before training the 30 filters are Gaussian noise (std 0.01); after training{seed_note} they have
moved by {change:.0%} of their initial norm; trained long enough (the full profile) they turn into
the book's oriented edge and blob detectors. Each picture is one filter scaled to its own
minimum (black) and maximum (white), as the book draws them. {same}

![filters]({picture})
""")
    ctx.keep(test_acc=accs, conv1_relative_change=change)
