"""Chapter 3: the notes' fit of y = x1*x2 + x1 + x2, as written, and a corrected fit.

As written (notes, section 3): 1,000 samples on [-10, 10]^2, the fixed-weight
2-3-2-2 sigmoid network of chapter 3 as the starting point, MSE, lr 0.01, 1,000
full-batch epochs. Its two outputs are compared with a one-column target, so
the target is broadcast to both columns (NumPy does it silently, PyTorch and
scratch with a warning). Three implementations run: the notes' own NumPy code,
the scratch twin and the torch twin.

Corrected: one output, inputs scaled to [-1, 1], target standardised, a wider
tanh net (2-64-64-1), Adam; it fits, and its error surface shows where.

Both trainings are unstable enough (loss spikes; Adam near convergence) that
round-off differences grow: the runner's 1-ulp control shows the scratch twin
drifting from itself as early and as far as from the torch twin.
"""
import warnings

import matplotlib.pyplot as plt
import numpy as np
import torch

from experiments.catalogue import experiment
from experiments.compare import lockstep_tolerance
from experiments.writing import markdown_table
from experiments.training import Data, Recipe, relative_difference
from scratch.models.basics import BOOK_WEIGHTS, ThreeLayerNet
from scratch.models.mlp import MLP
from torch_ref.models.basics import ThreeLayerNet as TorchThreeLayerNet
from torch_ref.models.mlp import MLP as TorchMLP


def target(x):
    return x[:, 0] * x[:, 1] + x[:, 0] + x[:, 1]


def notes_training(x, y, epochs, lr=0.01):
    """The notes' ``backpropagation`` loop, as written (W of shape (in, out)); returns the loss per epoch."""
    net = {k: np.array(v, dtype=x.dtype) for k, v in BOOK_WEIGHTS.items()}

    def sigmoid(a):
        return 1 / (1 + np.exp(-a))

    losses = np.empty(epochs)
    for epoch in range(epochs):
        W1, W2, W3, b1, b2, b3 = (net[k] for k in ("W1", "W2", "W3", "b1", "b2", "b3"))
        z1 = sigmoid(np.dot(x, W1) + b1)
        z2 = sigmoid(np.dot(z1, W2) + b2)
        y_pred = np.dot(z2, W3) + b3
        losses[epoch] = np.mean((y - y_pred) ** 2)
        d_z2 = y_pred - y  # (N, 2) - (N, 1): broadcast, as in the notes
        d_W3 = np.dot(z2.T, d_z2) / len(x)
        d_b3 = np.mean(d_z2, axis=0)
        d_a2 = np.dot(d_z2, W3.T) * (z2 * (1 - z2))
        d_W2 = np.dot(z1.T, d_a2) / len(x)
        d_b2 = np.mean(d_a2, axis=0)
        d_z1 = np.dot(d_a2, W2.T) * (z1 * (1 - z1))
        d_W1 = np.dot(x.T, d_z1) / len(x)
        d_b1 = np.mean(d_z1, axis=0)
        for k, g in (("W1", d_W1), ("b1", d_b1), ("W2", d_W2), ("b2", d_b2), ("W3", d_W3), ("b3", d_b3)):
            net[k] -= lr * g
    return losses


@experiment(
    number=3, name="mlp_fit", chapter="3",
    shows="the notes' fit of y = x1*x2 + x1 + x2 as written (2 outputs broadcast against 1 target, sigmoid "
          "2-3-2-2, SGD lr 0.01) in the notes' code and both twins, and a corrected fit (1 output, scaled "
          "inputs, 2-64-64-1 tanh, Adam) with its error surface",
    durations={"quick": 12, "full": 25},
    profiles={
        "tiny": dict(samples=200, epochs=40, corrected_width=16, corrected_steps=40, lr_adam=0.003, grid=21),
        "quick": dict(samples=1000, epochs=1000, corrected_width=32, corrected_steps=1500, lr_adam=0.003, grid=101),
        "full": dict(samples=1000, epochs=1000, corrected_width=64, corrected_steps=4000, lr_adam=0.003, grid=201),
    },
)
def run(ctx):
    cfg = ctx.config
    rng = ctx.streams.rng("data")
    x = rng.random((cfg["samples"], 2)) * 20 - 10  # the notes' generate_data
    y = target(x).reshape(-1, 1)
    x_test = rng.random((cfg["samples"], 2)) * 20 - 10
    y_test = target(x_test).reshape(-1, 1)
    every = max(1, cfg["epochs"] // 20)

    # -- as written --------------------------------------------------------------------
    recipe = Recipe(
        scratch_model=lambda dtype, rand: ThreeLayerNet.from_book(dtype=dtype),
        torch_model=lambda dtype, rand: TorchThreeLayerNet.from_book().to(dtype),
        optimizer="SGD", optimizer_kwargs=dict(lr=0.01), loss="MSELoss", batch_size=None,
        iterations=cfg["epochs"], eval_every=every, classification=False, tag="as_written",
        label="notes' net as written (2 outputs, broadcast)")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        written = ctx.train(recipe, Data(x, y, x_test, y_test))
    messages = sorted({f"{w.category.__name__} ({w.filename.split('site-packages/')[-1].split('/work/main/')[-1]}): "
                       f"{w.message}" for w in caught if "target size" in str(w.message)})

    xd = x.astype(ctx.dtype)
    notes_losses = notes_training(xd, y.astype(ctx.dtype), cfg["epochs"])
    for k, loss in enumerate(notes_losses):
        ctx.log("notes", "as_written/loss", float(loss), step=k + 1, epoch=float(k + 1))
    r0 = written[0]
    notes_vs_scratch = max(relative_difference(a, b) for a, b in zip(r0.history["scratch"]["loss"], notes_losses))
    if ctx.mode == "lockstep":
        ctx.parity("notes' code vs scratch twin: largest |loss difference| / loss, every epoch", notes_vs_scratch,
                   lockstep_tolerance(ctx.dtype))

    # -- corrected ---------------------------------------------------------------------
    y_mean, y_std = float(y.mean()), float(y.std())
    width = cfg["corrected_width"]
    fixed = Recipe(
        scratch_model=lambda dtype, rand: MLP([2, width, width, 1], "tanh", dtype=dtype, generator=rand.init),
        torch_model=lambda dtype, rand: TorchMLP([2, width, width, 1], "tanh", dtype=dtype),
        optimizer="Adam", optimizer_kwargs=dict(lr=cfg["lr_adam"]), loss="MSELoss", batch_size=None,
        iterations=cfg["corrected_steps"], eval_every=max(1, cfg["corrected_steps"] // 20), classification=False,
        tag="corrected", label=f"corrected (1 output, 2-{width}-{width}-1 tanh, Adam)")
    corrected = ctx.train(fixed, Data(x / 10, (y - y_mean) / y_std, x_test / 10, (y_test - y_mean) / y_std))
    r1 = corrected[0]

    # -- predictions ---------------------------------------------------------------------
    def predict(result, impl, inputs, kind):
        model = result.models[impl]
        z = inputs.astype(ctx.dtype) if kind == "as_written" else (inputs / 10).astype(ctx.dtype)
        if impl == "torch":
            with torch.no_grad():
                out = model(torch.from_numpy(z).to(next(model.parameters()).device)).cpu().numpy()
        else:
            model.eval()
            out = model(z)
        return out if kind == "as_written" else out * y_std + y_mean

    line = np.linspace(-10, 10, 100)
    xl = np.column_stack([line, line])
    fig, axes = plt.subplots(1, 2, figsize=(13, 4.5))
    for ax, (result, kind) in zip(axes, ((r0, "as_written"), (r1, "corrected"))):
        ax.plot(line, target(xl), color="tab:blue", label="true: y = x1*x2 + x1 + x2")
        for impl, marker in (("scratch", "o"), ("torch", "x")):
            out = predict(result, impl, xl, kind)
            for j in range(out.shape[1]):
                ax.scatter(line, out[:, j], s=6, marker=marker, label=f"{impl} output {j}")
        ax.set(xlabel="x1 = x2", ylabel="y", title=result.label)
        ax.grid(True)
        ax.legend(fontsize=7)
    fig.tight_layout()
    line_plot = ctx.savefig(fig, "fit_along_diagonal", "true function and network outputs along x1 = x2 "
                                                       "(the notes' plot), as written and corrected")

    g = np.linspace(-10, 10, cfg["grid"])
    gx = np.array(np.meshgrid(g, g)).reshape(2, -1).T
    truth = target(gx)
    err_written = np.abs(predict(r0, "scratch", gx, "as_written")[:, 0] - truth)
    err_fixed = np.abs(predict(r1, "scratch", gx, "corrected")[:, 0] - truth)
    twin_gap = np.abs(predict(r1, "scratch", gx, "corrected") - predict(r1, "torch", gx, "corrected"))[:, 0]
    fig, axes = plt.subplots(1, 3, figsize=(16, 4.5))
    for ax, data, title in ((axes[0], err_written, "as written: |output 0 - y|"),
                            (axes[1], err_fixed, "corrected: |output - y|"),
                            (axes[2], np.log10(np.maximum(twin_gap, 1e-20)), "corrected: log10 |scratch - torch|")):
        im = ax.imshow(data.reshape(len(g), len(g)), origin="lower", extent=(-10, 10, -10, 10), cmap="viridis")
        fig.colorbar(im, ax=ax)
        ax.set(xlabel="x1", ylabel="x2", title=title)
    fig.tight_layout()
    surface = ctx.savefig(fig, "error_surface", "absolute error over [-10, 10]^2, as written and corrected; "
                                                "the twins' difference (log10)")

    mse_written = float(np.mean(err_written ** 2))
    mse_fixed = float(np.mean(err_fixed ** 2))
    var = float(truth.var())
    for name, v in (("as_written/grid_mse", mse_written), ("corrected/grid_mse", mse_fixed), ("grid_var_y", var)):
        ctx.log("scratch", name, v)
    ctx.keep(grid_mse_as_written=mse_written, grid_mse_corrected=mse_fixed, grid_var_y=var)
    ctx.headline(f"as written: grid MSE {mse_written:.3g} (var y {var:.3g}); corrected: {mse_fixed:.3g}")

    warn_text = "\n".join(f"- `{m}`" for m in messages) or "- (no warning was raised)"
    ctx.section("Reproduced as written", f"""\
The notes' network has **two** outputs and the target **one** column: `y_pred - y` broadcasts the
(N, 1) target against the (N, 2) output, so both outputs are trained towards the same target, as two
separate fits sharing the hidden layers. This run reproduces that faithfully. Both frameworks warn
about it (the scratch twin copies PyTorch's warning):

{warn_text}

The sigmoid units see raw inputs in [-10, 10] and saturate, and each output is a weighted sum of two
numbers in (0, 1): a bounded function cannot follow a quadratic that ranges over
[{truth.min():.0f}, {truth.max():.0f}]. Over the grid the as-written net's mean squared error is
{mse_written:.4g}, against {var:.4g} for always predicting the mean.

**Gradient of the notes vs MSELoss.** The notes write `d_loss = y_pred - y` (no factor 2) and divide
each weight gradient by `len(x)`. `MSELoss(reduction='mean')` averages over all N x 2 broadcast elements,
so its gradient is 2 (y_pred - y) / (2N) = (y_pred - y) / N: *exactly* the notes' gradient, because
the factor 2 of the square is cancelled by the two output columns. The notes' loop therefore is plain
SGD on MSELoss, and the three implementations agree to round-off (largest relative loss difference,
notes' code vs scratch twin: {notes_vs_scratch:.2e}). With a single output the mean runs over N
elements and MSELoss's gradient is 2 (y_pred - y) / N, twice the notes' rule: the notes' update with
learning rate lr is MSELoss with lr / 2 (or SGD on half the MSE).
""")
    ctx.section("Corrected", f"""\
One output (no broadcasting), inputs divided by 10 (to [-1, 1]), target standardised with the training
mean {y_mean:.3g} and standard deviation {y_std:.3g}, a 2-{width}-{width}-1 tanh network with PyTorch's
default initialisation (drawn from the init stream), Adam lr {cfg['lr_adam']}, {cfg['corrected_steps']}
full-batch steps. Grid MSE {mse_fixed:.4g} (as written: {mse_written:.4g}).

![along the diagonal]({line_plot})

![error surface]({surface})
""")
    rows = [{"model": "as written (scratch, output 0)", "grid MSE": f"{mse_written:.5g}"},
            {"model": "corrected (scratch)", "grid MSE": f"{mse_fixed:.5g}"},
            {"model": "predicting the mean", "grid MSE": f"{var:.5g}"}]
    ctx.section("Error over the grid", markdown_table(rows))
