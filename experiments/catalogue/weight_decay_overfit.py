"""Chapter 6.4: weight decay against overfitting (the book's overfit_weight_decay.py).

300 training images, 784 -> 6 x 100 ReLU -> 10 (He init), SGD lr 0.01, batch
100, 201 epochs, with weight decay lambda = 0.1 and without. The book writes the
decay into the loss,

    L = CE(scores, t) + 0.5 * lambda * sum_k sum(W_k^2),   dL/dW_k = backprop + lambda * W_k

over the weight matrices only. The twins here train PyTorch's way, the decay in
the optimizer: ``SGD(param_groups, lr=0.01)`` with ``weight_decay=lambda`` on the
weight group and 0 on the biases, whose step lr * (grad + lambda * W) is the
book's. A third training, in both twins, takes the book's form literally
(``model.loss`` with the L2 term, its backward, plain SGD) on the same batches,
and the report states how far its weights end from the optimizer form's.
"""
import numpy as np
import torch

from experiments.catalogue import experiment
from experiments.catalogue._data import mnist
from experiments.catalogue._overfit import accuracy_rows, decay_groups, headline, plot_accuracy, table
from experiments.compare import to_torch
from experiments.lockstep import Streams
from experiments.writing import fmt
from experiments.training import Recipe, param_difference, torch_dtype
from scratch.models.multilayer import MultiLayerNet
from scratch.optim import SGD
from torch_ref.models.multilayer import MultiLayerNet as TorchMultiLayerNet


def book_form(cfg, data, lam, seed, dtype, steps):
    """Both twins trained the book's way: L2 in the loss, plain SGD, the lockstep run's init and batches.

    Returns the scratch and torch state dicts after ``steps`` steps.
    """
    streams = Streams(seed)
    x, t = data.x_train.astype(dtype), data.t_train
    s_model = MultiLayerNet(784, [cfg["width"]] * cfg["depth"], 10, weight_decay_lambda=lam, dtype=dtype,
                            generator=streams.rng("init"))
    t_model = TorchMultiLayerNet(784, [cfg["width"]] * cfg["depth"], 10, weight_decay_lambda=lam,
                                 dtype=torch_dtype(dtype))
    t_model.load_state_dict(to_torch(s_model.state_dict()))
    s_opt = SGD(s_model.parameters(), lr=cfg["lr"])
    t_opt = torch.optim.SGD(t_model.parameters(), lr=cfg["lr"])
    order_rng = streams.rng("batches")
    bs, n, step = cfg["batch_size"], len(x), 0
    while step < steps:
        order = order_rng.permutation(n)
        for b in range(0, n, bs):
            if step == steps:
                break
            idx = order[b:b + bs]
            s_model.loss(x[idx], t[idx])
            s_model.loss_backward()
            s_opt.step()
            s_opt.zero_grad()
            t_opt.zero_grad()
            t_model.loss(torch.from_numpy(x[idx]), torch.from_numpy(t[idx])).backward()
            t_opt.step()
            step += 1
    return ({k: np.array(v) for k, v in s_model.state_dict().items()},
            {k: v.detach().numpy().copy() for k, v in t_model.state_dict().items()})


@experiment(
    number=12, name="weight_decay_overfit", chapter="6",
    shows="300 training images, 6x100 ReLU net, SGD lr 0.01: weight decay lambda 0.1 vs none, train/test "
          "accuracy by epoch; the book's L2-in-the-loss equals SGD's weight_decay on the weights",
    durations={"quick": 20, "full": 100},
    profiles={
        "tiny": dict(synthetic=True, n_train=100, n_test=100, epochs=4, depth=6, width=100, lr=0.01,
                     batch_size=100, lambdas=[0.0, 0.1]),
        "quick": dict(synthetic=False, n_train=300, n_test=1000, epochs=101, depth=6, width=100, lr=0.01,
                      batch_size=100, lambdas=[0.0, 0.1]),
        "full": dict(synthetic=False, n_train=300, n_test=None, epochs=201, depth=6, width=100, lr=0.01,
                     batch_size=100, lambdas=[0.0, 0.1]),
    },
)
def run(ctx):
    cfg = ctx.config
    data = mnist(ctx)
    hidden = [cfg["width"]] * cfg["depth"]
    recipes = [
        Recipe(
            scratch_model=lambda dtype, rand: MultiLayerNet(784, hidden, 10, dtype=dtype, generator=rand.init),
            torch_model=lambda dtype, rand: TorchMultiLayerNet(784, hidden, 10, dtype=dtype),
            optimizer="SGD", optimizer_kwargs=dict(lr=cfg["lr"]), param_groups=decay_groups(lam),
            loss="CrossEntropyLoss", batch_size=cfg["batch_size"], epochs=cfg["epochs"],
            tag=f"lambda_{lam:g}", label=f"weight decay {lam:g}" if lam else "no weight decay")
        for lam in cfg["lambdas"]]
    # Every variant (and seed) a unit of work: with --workers they train at once.
    runs = [(recipe.label, results, lam)
            for recipe, results, lam in zip(recipes, ctx.train_each(recipes, data), cfg["lambdas"])]

    named = [(name, results) for name, results, _ in runs]
    fig = plot_accuracy(named, f"{len(data.x_train)} training images, {cfg['depth']}x{cfg['width']} ReLU, "
                               f"SGD lr {cfg['lr']}: "
                               f"weight decay ({ctx.mode}, {ctx.dtype})")
    plot = ctx.savefig(fig, "accuracy_by_epoch", "train (thin) and test (thick) accuracy by epoch, "
                                                 "scratch (solid) and torch (dashed)")
    rows = accuracy_rows(named)

    book_text = ""
    decayed = [(name, results, lam) for name, results, lam in runs if lam]
    if ctx.mode == "lockstep" and decayed:
        name, results, lam = decayed[0]
        r = results[0]
        s_book, t_book = book_form(cfg, data, lam, ctx.seed, ctx.dtype, r.steps)
        s_opt = {k: np.array(v) for k, v in r.models["scratch"].state_dict().items()}
        vs_scratch = param_difference(s_book, s_opt)
        vs_torch = param_difference(t_book, s_opt)
        book_twins = param_difference(s_book, t_book)
        ctx.parity(f"{name}: book's L2-in-the-loss (scratch) vs SGD weight_decay (scratch), largest parameter "
                   f"difference after {r.steps} steps", vs_scratch)
        ctx.parity(f"{name}: book's L2-in-the-loss, scratch vs torch twin, largest parameter difference",
                   book_twins)
        ctx.keep(book_form_param_diff={"scratch_vs_optimizer": vs_scratch, "torch_vs_optimizer": vs_torch,
                                       "scratch_vs_torch": book_twins})
        book_text = (
            f"\n\nThe book's form, trained separately in both twins from the same weights on the same batches "
            f"(`MultiLayerNet(weight_decay_lambda={lam:g}).loss` and its backward, plain SGD), ends "
            f"{fmt(vs_scratch)} (scratch) and {fmt(vs_torch)} (torch) away from the optimizer form's scratch "
            "weights (largest difference scaled by each tensor's largest value): with plain SGD the two forms "
            "are one update rule, W <- W - lr * (grad + lambda * W). The loss the book prints includes "
            "0.5 * lambda * sum W^2; the losses recorded here are the cross entropy alone. With Adam the two "
            "forms are again one rule by definition (`Adam(weight_decay=...)` adds lambda * W to the gradient "
            "before the moments), and both differ from AdamW's decoupled decay W <- W - lr * lambda * W.")

    ctx.headline(headline(rows))
    ctx.section("Overfitting and weight decay", (
        f"![accuracy by epoch]({plot})\n\n" + table(rows) + "\n\n"
        "The book (Figures 6-20 and 6-21, 201 epochs, the whole test set): without weight decay the training "
        "accuracy reaches about 100% while the test accuracy stays far below it; with lambda = 0.1 the gap "
        "narrows and the training accuracy no longer reaches 100%. "
        + ("" if ctx.profile == "full" else
           f"This is the `{ctx.profile}` profile ({cfg['epochs']} epochs, "
           f"{cfg['n_test'] or 'all'} test images); the `full` profile runs the book's 201 epochs on the whole "
           "test set. ")
        + "The book samples mini-batches with replacement; here each epoch is a permutation of the "
          f"{len(data.x_train)} images." + book_text))
