"""Chapter 6.4: dropout against overfitting (the book's overfit_dropout.py).

The weight-decay set-up (300 training images, 784 -> 6 x 100 ReLU -> 10, He
init, SGD lr 0.01, batch 100), 301 epochs, with a Dropout(p=0.2) after every
hidden activation and without. PyTorch's inverted dropout (y = x * keep / (1 - p)
in training, y = x in eval) in both twins; in lockstep the torch twin's
``torch_ref.nn.NumpyDropout`` draws its masks from a NumPy stream seeded like the
scratch twin's, so both drop the same units at every step. Independent runs use
``torch.nn.Dropout`` and torch's own generator.

The book's Dropout is the non-inverted form (x * mask in training, x * (1 - p)
at test time), ``scratch.nn.BookDropout``; it is not what either twin trains
with here.
"""
from experiments.catalogue import experiment
from experiments.catalogue._data import mnist
from experiments.catalogue._overfit import accuracy_rows, headline, plot_accuracy, table
from experiments.training import Recipe
from scratch.models.multilayer import MultiLayerNetExtend
from torch_ref.models.multilayer import MultiLayerNetExtend as TorchMultiLayerNetExtend


@experiment(
    number=13, name="dropout_overfit", chapter="6",
    shows="300 training images, 6x100 ReLU net, SGD lr 0.01: dropout 0.2 vs none, train/test accuracy by "
          "epoch, the same dropout masks in both twins",
    durations={"quick": 20, "full": 150},
    profiles={
        "tiny": dict(synthetic=True, n_train=100, n_test=100, epochs=4, depth=6, width=100, lr=0.01,
                     batch_size=100, dropout=0.2),
        "quick": dict(synthetic=False, n_train=300, n_test=1000, epochs=101, depth=6, width=100, lr=0.01,
                      batch_size=100, dropout=0.2),
        "full": dict(synthetic=False, n_train=300, n_test=None, epochs=301, depth=6, width=100, lr=0.01,
                     batch_size=100, dropout=0.2),
    },
)
def run(ctx):
    cfg = ctx.config
    data = mnist(ctx)
    hidden = [cfg["width"]] * cfg["depth"]
    runs = []
    for p in (0.0, cfg["dropout"]):
        use = p > 0

        def scratch_model(dtype, rand, use=use, p=p):
            return MultiLayerNetExtend(784, hidden, 10, use_dropout=use, dropout_ration=p, dtype=dtype,
                                       generator=rand.init, dropout_generator=rand.dropout)

        def torch_model(dtype, rand, use=use, p=p):
            # rand.dropout: the shared NumPy stream in lockstep (NumpyDropout), None in independent (nn.Dropout)
            return TorchMultiLayerNetExtend(784, hidden, 10, use_dropout=use, dropout_ration=p, dtype=dtype,
                                            dropout_generator=rand.dropout)

        recipe = Recipe(scratch_model=scratch_model, torch_model=torch_model, optimizer="SGD",
                        optimizer_kwargs=dict(lr=cfg["lr"]), loss="CrossEntropyLoss", batch_size=cfg["batch_size"],
                        epochs=cfg["epochs"], tag=f"dropout_{p:g}",
                        label=f"dropout {p:g}" if use else "no dropout")
        runs.append((recipe.label, ctx.train(recipe, data)))

    fig = plot_accuracy(runs, f"{len(data.x_train)} training images, {cfg['depth']}x{cfg['width']} ReLU, "
                              f"SGD lr {cfg['lr']}: dropout ({ctx.mode}, {ctx.dtype})")
    plot = ctx.savefig(fig, "accuracy_by_epoch", "train (thin) and test (thick) accuracy by epoch, "
                                                 "scratch (solid) and torch (dashed)")
    rows = accuracy_rows(runs)
    ctx.headline(headline(rows))
    masks = ("In lockstep both twins draw each mask from their own copy of the run's dropout stream "
             "(`keep = generator.random(x.shape) >= p`, one draw per element, every training forward pass), "
             "so they drop the same units and their losses agree to round-off; evaluation runs in eval mode, "
             "without dropout." if ctx.mode == "lockstep" else
             "Independent: the torch twin uses `torch.nn.Dropout` with torch's generator; the scratch twin its "
             "own NumPy stream.")
    ctx.section("Overfitting and dropout", (
        f"![accuracy by epoch]({plot})\n\n" + table(rows) + "\n\n"
        "The book (Figure 6-23, 301 epochs, the whole test set): with dropout the gap between training and "
        "test accuracy narrows and the training accuracy no longer reaches 100%. "
        + ("" if ctx.profile == "full" else
           f"This is the `{ctx.profile}` profile ({cfg['epochs']} epochs, {cfg['n_test'] or 'all'} test images); "
           "the `full` profile runs the book's 301 epochs on the whole test set. ")
        + "The book's Dropout is the non-inverted form (`scratch.nn.BookDropout`: x * mask in training, "
          "x * (1 - p) at test); both twins here use PyTorch's inverted dropout, which scales by 1 / (1 - p) "
          "in training instead. The book samples mini-batches with replacement; here each epoch is a "
          "permutation of the training images.\n\n" + masks))
