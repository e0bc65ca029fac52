"""Chapter 8: the book's DeepConvNet on MNIST, and the test images it gets wrong.

Six 3x3 convolutions (16, 16, 32, 32, 64, 64 filters) with ReLU and a 2x2 max
pool after every second one, Affine(1024, 50) -> ReLU -> Dropout(0.5) ->
Affine(50, 10) -> Dropout(0.5); He initialisation, Adam lr 0.001, batch 100,
20 epochs (the book's train_deepnet.py: 99.38% test accuracy). The book then
shows the misclassified test images (misclassified_mnist.py); so does the report,
with each twin's prediction.

In lockstep both twins draw the same dropout masks: the torch twin's dropout is
``torch_ref.nn.NumpyDropout`` fed by a copy of the scratch twin's stream.
The trained weights are kept (``data/trained/``) for ``half_precision``.
"""
import matplotlib.pyplot as plt
import numpy as np

from experiments.catalogue import experiment
from experiments.catalogue._cnn import book_table, image_grid, predict, save_trained
from experiments.catalogue._data import mnist
from experiments.writing import markdown_table
from experiments.training import Recipe
from scratch.models.convnets import DeepConvNet
from torch_ref.models.convnets import DeepConvNet as TorchDeepConvNet

BOOK = 0.9938  # the book's test accuracy after 20 epochs


def recipe_for(cfg, label="DeepConvNet") -> Recipe:
    """DeepConvNet, He init, Adam lr 0.001: lockstep masks from the shared dropout stream."""
    return Recipe(
        scratch_model=lambda dtype, rand: DeepConvNet(dtype=dtype, generator=rand.init,
                                                      dropout_generator=rand.dropout),
        torch_model=lambda dtype, rand: TorchDeepConvNet(dtype=dtype, dropout_generator=rand.dropout),
        optimizer="Adam", optimizer_kwargs=dict(lr=0.001), loss="CrossEntropyLoss", batch_size=cfg["batch_size"],
        iterations=cfg["iterations"], epochs=cfg["epochs"], eval_train=cfg["eval_train"],
        param_every=max(1, (cfg["iterations"] or 600) // 10), label=label)


@experiment(
    number=17, name="deep_convnet", chapter="8",
    shows="DeepConvNet (6 conv 3x3, He init, dropout 0.5), Adam lr 0.001, batch 100 (book: 99.38% test after "
          "20 epochs); the first misclassified test images with label and each twin's prediction",
    durations={"quick": 45, "full": 5 * 3600},
    profiles={
        "tiny": dict(synthetic=True, n_train=40, n_test=40, iterations=3, epochs=None, batch_size=20,
                     eval_train=False, shown=20, keep_weights=False),
        "quick": dict(synthetic=False, n_train=3000, n_test=500, iterations=30, epochs=None, batch_size=100,
                      eval_train=False, shown=20, keep_weights=True),
        "full": dict(synthetic=False, n_train=None, n_test=None, iterations=None, epochs=20, batch_size=100,
                     eval_train=True, shown=20, keep_weights=True),
    },
)
def run(ctx):
    cfg = ctx.config
    data = mnist(ctx, flatten=False)
    results = ctx.train(recipe_for(cfg), data)
    first = results[0]
    x_test = np.ascontiguousarray(data.x_test, dtype=ctx.dtype)
    pred = {impl: predict(impl, first.models[impl], x_test).argmax(axis=1) for impl in ("scratch", "torch")}
    wrong = {impl: np.flatnonzero(p != data.t_test) for impl, p in pred.items()}
    disagree = int(np.sum(pred["scratch"] != pred["torch"]))
    if ctx.mode == "lockstep":
        ctx.parity("test images the twins classify differently", disagree)
    ctx.log("scratch", "misclassified", len(wrong["scratch"]))
    ctx.log("torch", "misclassified", len(wrong["torch"]))

    shown = wrong["scratch"][:cfg["shown"]]
    cols = 10
    rows = max(1, -(-len(shown) // cols))
    fig, axes = plt.subplots(rows, cols, figsize=(1.3 * cols, 1.6 * rows), squeeze=False)
    titles = [f"#{i}: {data.t_test[i]} -> {pred['scratch'][i]} / {pred['torch'][i]}" for i in shown]
    colors = ["black" if pred["scratch"][i] == pred["torch"][i] else "tab:red" for i in shown]
    image_grid(axes, data.x_test[shown], titles, colors)
    fig.suptitle(f"the first {len(shown)} misclassified test images (of {len(wrong['scratch'])}): "
                 "test index: label -> scratch / torch prediction", fontsize=10)
    fig.tight_layout()
    picture = ctx.savefig(fig, "misclassified", "the first misclassified test images, label and both predictions")

    text, accs = book_table(ctx, BOOK, results, "Test accuracy on the test set after the last step")
    ctx.headline(f"test accuracy {accs['scratch']:.2%} / {accs['torch']:.2%} (scratch / torch; book 99.38% after "
                 f"20 epochs; {ctx.profile} profile)")
    ctx.section("Against the book", text)
    seed_note = f" of seed {first.seed}" if ctx.mode == "independent" else ""
    table = markdown_table([{"test index": int(i), "label": int(data.t_test[i]), "scratch": int(pred["scratch"][i]),
                             "torch": int(pred["torch"][i])} for i in shown])
    ctx.section("Misclassified test images", f"""\
The scratch twin{seed_note} gets {len(wrong['scratch'])} of {len(data.t_test)} test images wrong, the torch twin
{len(wrong['torch'])}; the twins' predictions differ on {disagree} images. The first {len(shown)} the scratch twin
gets wrong, with the true label and both predictions (a red title: the twins disagree). The book remarks
that many of the images its network misses are hard for a person too.

![misclassified]({picture})

<details><summary>the same as a table</summary>

{table}
</details>
""")
    ctx.keep(test_acc=accs, misclassified={k: len(v) for k, v in wrong.items()}, twins_disagree=disagree)
    if cfg["keep_weights"] and ctx.mode == "lockstep":
        path = save_trained(ctx, "deep_convnet", first.models["scratch"])
        ctx.keep(trained_weights=str(path))
