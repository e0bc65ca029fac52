"""Chapter 3: the three-layer network with the notes' fixed weights.

x = [1.0, 0.5] -> [0.31682708, 0.69627909] (the notes print 8 decimals). Three
implementations: the notes' own NumPy code (``init_network``/``forward``), the
scratch twin and the torch twin, on the book's input and on a random batch;
then the backward pass of both twins against each other (no training here).
"""
import matplotlib.pyplot as plt
import numpy as np
import torch

from experiments.catalogue import experiment
from experiments.compare import TOLERANCE, compare_arrays, compare_module
from experiments.writing import markdown_table
from scratch.models.basics import BOOK_WEIGHTS, ThreeLayerNet
from torch_ref.models.basics import ThreeLayerNet as TorchThreeLayerNet

BOOK_X = [1.0, 0.5]
BOOK_Y = [0.31682708, 0.69627909]  # printed to 8 decimals: exact to within 5e-9


def notes_forward(x):
    """The notes' code (p. 62), as written: x @ W + b, sigmoid, identity output."""
    w = {k: np.array(v, dtype=x.dtype) for k, v in BOOK_WEIGHTS.items()}
    z1 = 1 / (1 + np.exp(-(np.dot(x, w["W1"]) + w["b1"])))
    z2 = 1 / (1 + np.exp(-(np.dot(z1, w["W2"]) + w["b2"])))
    return np.dot(z2, w["W3"]) + w["b3"]


@experiment(
    number=2, name="forward_3layer", chapter="3", trained=False,
    shows="the fixed-weight 2-3-2-2 network: x = [1.0, 0.5] -> [0.31682708, 0.69627909] in the notes' code "
          "and both twins, forward and backward",
    durations={"quick": 2, "full": 2},
    profiles={"tiny": dict(batch=8), "quick": dict(batch=1000), "full": dict(batch=1000)},
)
def run(ctx):
    dtype = ctx.dtype
    tol = TOLERANCE["layer"][dtype.type]
    s_net = ThreeLayerNet.from_book(dtype=dtype)
    t_net = TorchThreeLayerNet.from_book().to(torch.float64 if dtype == np.float64 else torch.float32)

    x = np.array(BOOK_X, dtype=dtype)
    outs = {"notes": notes_forward(x), "scratch": s_net(x[None])[0]}
    with torch.no_grad():
        outs["torch"] = t_net(torch.tensor(x[None]))[0].numpy()
    rows = [{"implementation": "book (printed)", "y[0]": f"{BOOK_Y[0]:.8f}", "y[1]": f"{BOOK_Y[1]:.8f}"}]
    for impl, y in outs.items():
        rows.append({"implementation": impl, "y[0]": f"{y[0]:.17g}", "y[1]": f"{y[1]:.17g}"})
        for i in range(2):
            ctx.log(impl, f"y{i}", float(y[i]), step=0)
    book_tol = 5e-9 if dtype == np.float64 else 1e-6  # the book rounds to 8 decimals; float32 has ~7 digits
    for impl in ("notes", "scratch", "torch"):
        ctx.parity(f"{impl} vs the book's printed output (max |difference|)",
                   float(np.max(np.abs(outs[impl] - np.array(BOOK_Y)))), book_tol)
    ctx.parity("scratch vs torch, book input (scaled)", compare_arrays("y", outs["scratch"], outs["torch"]).scaled, tol)
    ctx.parity("scratch vs notes' code, book input (scaled)",
               compare_arrays("y", outs["scratch"], outs["notes"]).scaled, tol)

    # A random batch through all three, then backward through both twins.
    batch = ctx.streams.rng("data").uniform(-10, 10, (ctx.config["batch"], 2)).astype(dtype)
    worst = compare_arrays("y", s_net(batch), notes_forward(batch)).scaled
    ctx.parity(f"scratch vs notes' code, {len(batch)} random inputs in [-10, 10]^2 (scaled)", worst, tol)
    records = compare_module(s_net, t_net, batch, seed=ctx.seed)
    for r in records:
        ctx.parity(f"scratch vs torch autograd, {len(batch)} random inputs: {r.tensor} (scaled)", r.scaled, tol)
        ctx.log("diff", f"{r.tensor}/scaled_error", r.scaled, step=0)

    g = np.linspace(-10, 10, 81)
    grid = np.array(np.meshgrid(g, g)).reshape(2, -1).T.astype(dtype)
    ys = s_net(grid)
    with torch.no_grad():
        yt = t_net(torch.tensor(grid)).numpy()
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    for j in range(2):
        im = axes[j].imshow(ys[:, j].reshape(len(g), len(g)), origin="lower", extent=(-10, 10, -10, 10))
        axes[j].plot(*BOOK_X, "r+", ms=12)
        axes[j].set(title=f"y[{j}] (scratch); + marks x = [1.0, 0.5]", xlabel="x1", ylabel="x2")
        fig.colorbar(im, ax=axes[j])
    im = axes[2].imshow(np.log10(np.maximum(np.abs(ys - yt).max(axis=1), 1e-20)).reshape(len(g), len(g)),
                        origin="lower", extent=(-10, 10, -10, 10), cmap="viridis")
    axes[2].set(title="log10 max |scratch - torch| (1e-20 where equal)", xlabel="x1", ylabel="x2")
    fig.colorbar(im, ax=axes[2])
    fig.tight_layout()
    ctx.savefig(fig, "outputs", "the fixed-weight network's two outputs over [-10, 10]^2 and the twins' difference")

    ctx.headline(f"y = [{outs['scratch'][0]:.8f}, {outs['scratch'][1]:.8f}] (book [0.31682708, 0.69627909]); "
                 f"worst twin difference {max(r.scaled for r in records):.1e}")
    ctx.section("Output for x = [1.0, 0.5]", (
        "The notes multiply x @ W with W of shape (in, out); Linear stores weight as (out, in), so the twins "
        "hold the notes' matrices transposed. All three agree with the printed result to its 8 decimals.\n\n"
        + markdown_table(rows)))
    ctx.section("Backward, both twins", (
        f"A batch of {len(batch)} random inputs, a random upstream gradient, the same weights: the scratch "
        "backprop against torch autograd, tensor by tensor (scaled error = max |difference| / max |torch|).\n\n"
        + markdown_table([{"tensor": r.tensor, "shape": r.shape, "max abs": r.max_abs, "scaled": r.scaled,
                           "tolerance": tol} for r in records])))
    if ctx.mode == "independent":
        ctx.section("Modes", "Nothing is random or trained here: lockstep and independent runs are the same.")
