"""Chapter 6: std 0.01 vs Xavier vs He initial weights, the book's 5-layer ReLU net on MNIST.

The book's ``weight_init_compare.py``: MultiLayerNet(784, [100, 100, 100, 100], 10),
ReLU, SGD lr 0.01, batch 128, 2,000 iterations, W ~ std * N(0, 1) with std 0.01,
Xavier (the book's sqrt(1/n)) or He (sqrt(2/n)). The book's figure 6-15: with std
0.01 the loss does not move at all (the signal vanishes through the layers, so
do the gradients); He learns fastest, Xavier a little behind.
"""
from experiments.catalogue import experiment
from experiments.catalogue._ch6 import final_value, loss_curves, mean_history, mlp_recipe
from experiments.catalogue._data import mnist
from experiments.writing import markdown_table

INITS = {"std=0.01": 0.01, "Xavier": "xavier", "He": "he"}


@experiment(
    number=10, name="weight_init_compare", chapter="6",
    shows="std 0.01 vs Xavier vs He initial weights on the book's 5-layer ReLU net, SGD lr 0.01, batch 128: "
          "smoothed training loss, both twins (book: std 0.01 does not learn)",
    durations={"quick": 14, "full": 120},
    profiles={
        "tiny": dict(synthetic=True, n_train=512, n_test=200, iterations=20, hidden=[32, 32, 32, 32]),
        "quick": dict(synthetic=False, n_train=None, n_test=None, iterations=500, hidden=[100, 100, 100, 100]),
        "full": dict(synthetic=False, n_train=None, n_test=None, iterations=2000, hidden=[100, 100, 100, 100]),
    },
)
def run(ctx):
    cfg = ctx.config
    data = mnist(ctx)
    groups, rows, last = [], [], {}
    tail = max(1, min(100, cfg["iterations"] // 10))
    recipes = [mlp_recipe(name, f"{name} (weight_init_std={std!r})", cfg["hidden"], std, optimizer="SGD",
                          optimizer_kwargs=dict(lr=0.01), batch_size=128, iterations=cfg["iterations"],
                          eval_train=False) for name, std in INITS.items()]
    # One unit of work per initial scale (and seed): in parallel with --workers.
    for (name, std), results in zip(INITS.items(), ctx.train_each(recipes, data, plot=False)):
        groups.append((name, results))
        first = {impl: mean_history(results, impl)[:tail].mean() for impl in ("scratch", "torch")}
        end = {impl: mean_history(results, impl)[-tail:].mean() for impl in ("scratch", "torch")}
        last[name] = float(end["scratch"])
        row = {"init": name, "std of W": f"{std}" if isinstance(std, float) else
               {"xavier": "sqrt(1/fan_in)", "he": "sqrt(2/fan_in)"}[std]}
        for impl in ("scratch", "torch"):
            row[f"{impl}: loss, first / last {tail} iterations"] = f"{first[impl]:.4f} / {end[impl]:.4f}"
        for impl in ("scratch", "torch"):
            row[f"{impl}: test accuracy"] = f"{final_value(results, impl, 'test_acc'):.2%}"
        rows.append(row)
    fig = loss_curves(groups, f"initial weights on MNIST, {len(cfg['hidden']) + 1}-layer ReLU net, SGD lr 0.01, "
                              f"{cfg['iterations']} iterations, {ctx.mode}", ylim=(0, 2.5))
    plot = ctx.savefig(fig, "weight_init_compare", "smoothed training loss per initial scale (the "
                                                                 "book's figure 6-15), scratch solid, torch dashed")
    ctx.keep(**{f"final_loss_{ctx.mode}": last})
    ctx.headline(", ".join(f"{k} {v:.3f}" for k, v in last.items())
                 + f": training loss after {cfg['iterations']} iterations (book: std 0.01 stays at ~2.30)")
    runs = "the book's 2,000 iterations" if cfg["iterations"] >= 2000 else (
        f"{cfg['iterations']} iterations, a shorter run than the book's 2,000 (profile `{ctx.profile}`)")
    ctx.section("Against the book", (
        f"The three nets start from the same N(0, 1) draws scaled three ways (lockstep: one init stream) and see "
        f"the same batches for {runs}. The book (figure 6-15): with std 0.01 the loss stays at ln 10 = 2.30, "
        "nothing is learnt, since the forward signal and so the gradients shrink about tenfold per layer; "
        "He and Xavier learn, He faster. Mean training loss of the first and last iterations:\n\n"
        + markdown_table(rows) + f"\n![loss curves]({plot})\n"))
