"""Chapter 2: perceptron logic gates, and XOR learned by a 2-2-1 network.

AND, NAND and OR are single perceptrons with the book's hand-set weights
(y = 1 if w.x + b > 0); XOR is not linearly separable, so the book stacks them:
XOR = AND(NAND, OR). Both twins compute all four truth tables. Then a 2-2-1
sigmoid network learns XOR from the four rows by gradient descent (MSE, SGD
with momentum, full batch), which the step function could not do: its
derivative is 0 wherever it exists.
"""
import matplotlib.pyplot as plt
import numpy as np
import torch

from experiments.catalogue import experiment
from experiments.writing import markdown_table
from experiments.training import Data, Recipe
from scratch.models.basics import Perceptron, XORNet
from scratch.models.mlp import MLP
from torch_ref.models.basics import Perceptron as TorchPerceptron
from torch_ref.models.basics import XORNet as TorchXORNet
from torch_ref.models.mlp import MLP as TorchMLP

X = np.array([[0, 0], [1, 0], [0, 1], [1, 1]], dtype=np.float64)
TRUTH = {"AND": [0, 0, 0, 1], "NAND": [1, 1, 1, 0], "OR": [0, 1, 1, 1], "XOR": [0, 1, 1, 0]}


@experiment(
    number=1, name="perceptron_gates", chapter="2",
    shows="AND, NAND, OR, XOR truth tables from the book's perceptrons in both twins; XOR learned by a "
          "2-2-1 sigmoid network",
    durations={"quick": 4, "full": 4},
    profiles={"tiny": dict(iterations=200, lr=0.5, momentum=0.9),
              "quick": dict(iterations=2000, lr=0.5, momentum=0.9),
              "full": dict(iterations=2000, lr=0.5, momentum=0.9)},
)
def run(ctx):
    dtype = ctx.dtype
    tdtype = torch.float64 if dtype == np.float64 else torch.float32
    x = X.astype(dtype)
    tables = {}
    for gate in ("AND", "NAND", "OR", "XOR"):
        if gate == "XOR":
            s_net, t_net = XORNet.from_book(dtype=dtype), TorchXORNet.from_book(dtype=tdtype)
        else:
            s_net, t_net = Perceptron.gate(gate, dtype=dtype), TorchPerceptron.gate(gate, dtype=tdtype)
        with torch.no_grad():
            tables[gate] = {"scratch": s_net(x)[:, 0].astype(int), "torch": t_net(torch.tensor(x))[:, 0].int().numpy()}
        for impl in ("scratch", "torch"):
            for k, v in enumerate(tables[gate][impl]):
                ctx.log(impl, f"{gate}/output", int(v), step=k)
    wrong = sum(int(np.sum(tables[g][i] != TRUTH[g])) for g in tables for i in ("scratch", "torch"))
    ctx.parity("truth-table rows differing from the truth (both twins, four gates)", wrong, 0)
    rows = [{"x1": int(a), "x2": int(b), **{f"{g} (scratch/torch)": f"{tables[g]['scratch'][k]} / "
                                                                     f"{tables[g]['torch'][k]}" for g in tables}}
            for k, (a, b) in enumerate(X)]

    # -- XOR learned by gradient descent --------------------------------------------------
    cfg = ctx.config
    recipe = Recipe(
        scratch_model=lambda dt, rand: MLP([2, 2, 1], "sigmoid", output_activation="sigmoid", dtype=dt,
                                           generator=rand.init),
        torch_model=lambda dt, rand: TorchMLP([2, 2, 1], "sigmoid", output_activation="sigmoid", dtype=dt),
        optimizer="SGD", optimizer_kwargs=dict(lr=cfg["lr"], momentum=cfg["momentum"]), loss="MSELoss",
        batch_size=None, iterations=cfg["iterations"], eval_every=max(1, cfg["iterations"] // 50),
        classification=False, tag="xor_mlp", label="XOR, 2-2-1 sigmoid net")
    target = np.array(TRUTH["XOR"], dtype=np.float64)[:, None]
    results = ctx.train(recipe, Data(X, target))
    solved = {"scratch": 0, "torch": 0}
    learned = []
    for r in results:
        out = {"scratch": r.models["scratch"](x)[:, 0]}
        with torch.no_grad():
            out["torch"] = r.models["torch"](torch.tensor(x, device=next(r.models["torch"].parameters()).device)
                                             ).cpu().numpy()[:, 0]
        for impl in out:
            ok = bool(np.all((out[impl] > 0.5) == np.array(TRUTH["XOR"], dtype=bool)))
            solved[impl] += ok
            ctx.log(impl, "xor_mlp/solved", int(ok), step=r.steps, seed=r.seed)
        learned.append((r, out))
    r0, out0 = learned[0]
    learned_rows = [{"x1": int(a), "x2": int(b), "XOR": TRUTH["XOR"][k], "scratch output": f"{out0['scratch'][k]:.6f}",
                     "torch output": f"{out0['torch'][k]:.6f}"} for k, (a, b) in enumerate(X)]

    g = np.linspace(-0.5, 1.5, 81)
    grid = np.array(np.meshgrid(g, g)).reshape(2, -1).T.astype(dtype)
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.2))
    surface = r0.models["scratch"](grid)[:, 0].reshape(len(g), len(g))
    with torch.no_grad():
        t_surface = r0.models["torch"](torch.tensor(grid, device=next(r0.models["torch"].parameters()).device)
                                       ).cpu().numpy()[:, 0].reshape(len(g), len(g))
    im = axes[0].contourf(g, g, surface, levels=20, cmap="coolwarm")
    axes[0].contour(g, g, surface, levels=[0.5], colors="k")
    axes[0].scatter(X[:, 0], X[:, 1], c=TRUTH["XOR"], cmap="coolwarm", edgecolors="k", s=80)
    axes[0].set(title="learned XOR (scratch), boundary at 0.5", xlabel="x1", ylabel="x2")
    fig.colorbar(im, ax=axes[0])
    im = axes[1].imshow(np.log10(np.maximum(np.abs(surface - t_surface), 1e-20)), origin="lower",
                        extent=(-0.5, 1.5, -0.5, 1.5), cmap="viridis")
    axes[1].set(title="log10 |scratch - torch| output", xlabel="x1", ylabel="x2")
    fig.colorbar(im, ax=axes[1])
    fig.tight_layout()
    plot = ctx.savefig(fig, "xor_surface", "the learned XOR network's output over the plane, and the twins' gap")

    n = len(results)
    ctx.headline(f"truth tables exact in both twins; XOR learned by 2-2-1 net: scratch {solved['scratch']}/{n}, "
                 f"torch {solved['torch']}/{n} seeds")
    ctx.section("Truth tables (the book's perceptrons)", (
        "AND, NAND, OR: one perceptron each with the book's weights; XOR = AND(NAND(x1, x2), OR(x1, x2)), "
        "two layers of perceptrons.\n\n" + markdown_table(rows)))
    ctx.section("XOR learned", (
        f"A 2-2-1 network with sigmoid units, PyTorch's default initialisation (from the init stream), "
        f"MSE, SGD lr {cfg['lr']} momentum {cfg['momentum']}, {cfg['iterations']} full-batch steps on the four "
        f"rows. Solved (all four rows on the right side of 0.5) in {solved['scratch']}/{n} (scratch) and "
        f"{solved['torch']}/{n} (torch) runs; a 2-2-1 net can also stall in a local minimum, which other "
        f"seeds show in independent mode.\n\n" + markdown_table(learned_rows) + f"\n![XOR surface]({plot})\n"))
