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
with, but the report adds it, scratch only, trained from the same weights on
the same batches with the same masks (``book_variant``).
"""

from experiments.catalogue import experiment
from experiments.catalogue._data import mnist
from experiments.catalogue._overfit import accuracy_rows, headline, plot_accuracy, table
from experiments.lockstep import Streams
from experiments.plots import COLORS
from experiments.training import Recipe
from scratch.models.multilayer import MultiLayerNetExtend
from scratch.optim import SGD
from torch_ref.models.multilayer import MultiLayerNetExtend as TorchMultiLayerNetExtend


def book_dropout_run(ctx, cfg, data, hidden):
    """The scratch twin with the book's non-inverted dropout (``book_layers=True``), on the lockstep run's
    initial weights, batches and masks: train and test accuracy at every epoch (the torch twin has no such
    layer, so this one runs alone)."""
    streams = Streams(ctx.seed)
    dtype = ctx.dtype
    x, t = data.x_train.astype(dtype), data.t_train
    x_test = data.x_test.astype(dtype)
    model = MultiLayerNetExtend(784, hidden, 10, use_dropout=True, dropout_ration=cfg["dropout"], book_layers=True,
                                dtype=dtype, generator=streams.rng("init"), dropout_generator=streams.rng("dropout"))
    opt = SGD(model.parameters(), lr=cfg["lr"])
    order_rng = streams.rng("batches")
    curve = {"epoch": [0], "train_acc": [model.accuracy(x, t)], "test_acc": [model.accuracy(x_test, data.t_test)]}
    bs, step = cfg["batch_size"], 0
    for epoch in range(1, cfg["epochs"] + 1):
        order = order_rng.permutation(len(x))
        for b in range(0, len(x), bs):
            idx = order[b:b + bs]
            loss = model.loss(x[idx], t[idx])
            model.loss_backward()
            opt.step()
            opt.zero_grad()
            step += 1
            ctx.log("book", "book_dropout/loss", float(loss), step=step, epoch=float(epoch))
        curve["epoch"].append(epoch)
        for key, xs, ts in (("train_acc", x, t), ("test_acc", x_test, data.t_test)):
            curve[key].append(model.accuracy(xs, ts))
            ctx.log("book", f"book_dropout/{key}", curve[key][-1], step=step, epoch=float(epoch))
    return curve


@experiment(
    number=13, name="dropout_overfit", chapter="6",
    shows="300 training images, 6x100 ReLU net, SGD lr 0.01: dropout 0.2 vs none, train/test accuracy by "
          "epoch, the same dropout masks in both twins",
    durations={"quick": 25, "full": 190},
    profiles={
        "tiny": dict(synthetic=True, n_train=100, n_test=100, epochs=4, depth=6, width=100, lr=0.01,
                     batch_size=100, dropout=0.2, book_variant=True),
        "quick": dict(synthetic=False, n_train=300, n_test=1000, epochs=101, depth=6, width=100, lr=0.01,
                      batch_size=100, dropout=0.2, book_variant=True),
        "full": dict(synthetic=False, n_train=300, n_test=None, epochs=301, depth=6, width=100, lr=0.01,
                     batch_size=100, dropout=0.2, book_variant=True),
    },
)
def run(ctx):
    cfg = ctx.config
    data = mnist(ctx)
    hidden = [cfg["width"]] * cfg["depth"]
    recipes = []
    for p in (0.0, cfg["dropout"]):
        use = p > 0

        def scratch_model(dtype, rand, use=use, p=p):
            return MultiLayerNetExtend(784, hidden, 10, use_dropout=use, dropout_ration=p, dtype=dtype,
                                       generator=rand.init, dropout_generator=rand.dropout)

        def torch_model(dtype, rand, use=use, p=p):
            # rand.dropout: the shared NumPy stream in lockstep (NumpyDropout), None in independent (nn.Dropout)
            return TorchMultiLayerNetExtend(784, hidden, 10, use_dropout=use, dropout_ration=p, dtype=dtype,
                                            dropout_generator=rand.dropout)

        recipes.append(Recipe(scratch_model=scratch_model, torch_model=torch_model, optimizer="SGD",
                              optimizer_kwargs=dict(lr=cfg["lr"]), loss="CrossEntropyLoss",
                              batch_size=cfg["batch_size"], epochs=cfg["epochs"], tag=f"dropout_{p:g}",
                              label=f"dropout {p:g}" if use else "no dropout"))
    # Both variants (and every seed) units of work: with --workers they train at once.
    runs = [(recipe.label, results) for recipe, results in zip(recipes, ctx.train_each(recipes, data))]

    fig = plot_accuracy(runs, f"{len(data.x_train)} training images, {cfg['depth']}x{cfg['width']} ReLU, "
                              f"SGD lr {cfg['lr']}: dropout ({ctx.mode}, {ctx.dtype})")
    book_text = ""
    if cfg["book_variant"] and ctx.mode == "lockstep":
        curve = book_dropout_run(ctx, cfg, data, hidden)
        ax = fig.axes[-1]
        ax.plot(curve["epoch"], curve["train_acc"], ":", color=COLORS["book"], lw=1.0, label="book's dropout train")
        ax.plot(curve["epoch"], curve["test_acc"], ":", color=COLORS["book"], lw=1.8, label="book's dropout test")
        ax.legend(fontsize=8, loc="lower right")
        final = {k: curve[k][-1] for k in ("train_acc", "test_acc")}
        ctx.keep(book_dropout=final)
        inverted = runs[-1][1][0].final["scratch"]
        book_text = (
            "\n\nThe book's own dropout (`scratch.nn.BookDropout`, green dotted in the right panel; scratch only, "
            "torch has no such layer) trained from the same weights with the same batches and masks ends at "
            f"train {final['train_acc']:.2%} / test {final['test_acc']:.2%}, against {inverted['train_acc']:.2%} / "
            f"{inverted['test_acc']:.2%} with the inverted form. Same masks, different scale: the inverted form "
            "multiplies the kept activations by 1 / (1 - p) during training, so the layers above see larger "
            "inputs, and the updates differ from the first step on.")
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
          "permutation of the training images.\n\n" + masks + book_text))
