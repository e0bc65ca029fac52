"""Chapters 4-5: the book's two-layer net on MNIST, ReLU (chapter 5) and sigmoid (chapter 4).

784 -> 50 -> 10, W ~ 0.01 N(0, 1), b = 0, SGD lr 0.1, batch 100, 10,000
iterations (about 16.7 epochs); train and test accuracy on the whole sets at
every epoch. The book reports about 97% test accuracy with ReLU and about 94.5%
with sigmoid.
"""
from experiments.catalogue import experiment
from experiments.catalogue._data import mnist
from experiments.writing import markdown_table
from experiments.training import Recipe
from scratch.models.two_layer import TwoLayerNet
from torch_ref.models.two_layer import TwoLayerNet as TorchTwoLayerNet

BOOK = {"relu": 0.97, "sigmoid": 0.945}  # the book's test accuracies after 10,000 iterations


@experiment(
    number=5, name="two_layer_mnist", chapter="4-5",
    shows="784-50-10 net, ReLU and sigmoid, SGD lr 0.1, batch 100: train/test accuracy per epoch "
          "(book: ~97% and ~94.5% test)",
    durations={"quick": 25, "full": 90},
    profiles={
        "tiny": dict(synthetic=True, n_train=600, n_test=200, iterations=24, hidden=50,
                     activations=["relu", "sigmoid"]),
        "quick": dict(synthetic=False, n_train=None, n_test=None, iterations=2000, hidden=50,
                      activations=["relu", "sigmoid"]),
        "full": dict(synthetic=False, n_train=None, n_test=None, iterations=10000, hidden=50,
                     activations=["relu", "sigmoid"]),
    },
)
def run(ctx):
    data = mnist(ctx)
    cfg = ctx.config
    rows, headline = [], []
    recipes = [Recipe(
        scratch_model=lambda dtype, rand, act=act: TwoLayerNet(784, cfg["hidden"], 10, act, 0.01, dtype=dtype,
                                                               generator=rand.init),
        torch_model=lambda dtype, rand, act=act: TorchTwoLayerNet(784, cfg["hidden"], 10, act, 0.01, dtype=dtype),
        optimizer="SGD", optimizer_kwargs=dict(lr=0.1), loss="CrossEntropyLoss",
        batch_size=100, iterations=cfg["iterations"], tag=act, label=f"TwoLayerNet ({act})",
    ) for act in cfg["activations"]]
    # Both activations (and, in independent mode, every seed) are units of work: in parallel with --workers.
    for act, results in zip(cfg["activations"], ctx.train_each(recipes, data)):
        accs = {impl: sum(r.final[impl]["test_acc"] for r in results) / len(results) for impl in ("scratch", "torch")}
        rows.append({"activation": act, "book (10,000 iterations)": f"~{BOOK[act]:.1%}",
                     "scratch test accuracy": f"{accs['scratch']:.2%}", "torch test accuracy": f"{accs['torch']:.2%}",
                     "iterations": cfg["iterations"]})
        headline.append(f"{act} test {accs['scratch']:.2%} / {accs['torch']:.2%}")
    ctx.headline("; ".join(headline) + " (scratch / torch)")
    mean = " (mean over seeds)" if ctx.mode == "independent" else ""
    ctx.section("Against the book", (
        f"Test accuracy on the whole test set after the last iteration{mean}. The book samples each "
        "mini-batch with replacement; here every epoch is a fresh permutation (PyTorch's shuffling), so "
        "the numbers are comparable but not identical to the book's.\n\n" + markdown_table(rows)))
