"""Chapter 3: the activation functions and their derivatives, scratch against torch.

Step, sigmoid, tanh, ReLU and LeakyReLU on a grid of x in [-5, 5] (0 included),
each through the scratch layer (forward, then ``backward(ones)`` for the
derivative) and through ``torch.nn`` (forward, then autograd); softmax on one
vector, with its whole Jacobian (scratch: one ``backward`` per unit vector;
torch: ``torch.autograd.functional.jacobian``). One figure per function, with
the largest difference printed on it.

    step(x)       = 1 if x > 0 else 0                 step'(x) = 0 (undefined at 0)
    sigmoid(x)    = 1 / (1 + exp(-x))                  sigmoid' = sigmoid (1 - sigmoid)
    tanh(x)                                            tanh'    = 1 - tanh^2
    relu(x)       = max(x, 0)                          relu'    = [x > 0]  (0 at x = 0, as PyTorch)
    leaky_relu(x) = x if x > 0 else 0.01 x             leaky'   = 1 if x > 0 else 0.01
    softmax(a)_i  = exp(a_i) / sum_j exp(a_j)          d y_i / d a_j = y_i ([i = j] - y_j)
"""
import matplotlib.pyplot as plt
import numpy as np
import torch

import scratch.nn as snn
from experiments.catalogue import experiment
from experiments.compare import TOLERANCE, compare_arrays
from experiments.plots import COLORS
from experiments.writing import fmt, markdown_table
from scratch.models.basics import Step
from torch_ref.models.basics import Step as TorchStep

TORCH = {np.float32: torch.float32, np.float64: torch.float64}


def pairs():
    """name -> (scratch layer, torch layer)."""
    return {
        "step": (Step(), TorchStep()),
        "sigmoid": (snn.Sigmoid(), torch.nn.Sigmoid()),
        "tanh": (snn.Tanh(), torch.nn.Tanh()),
        "ReLU": (snn.ReLU(), torch.nn.ReLU()),
        "LeakyReLU": (snn.LeakyReLU(0.01), torch.nn.LeakyReLU(0.01)),
    }


def scratch_pass(layer, x):
    y = layer(x)
    return y, layer.backward(np.ones_like(y))


def torch_pass(layer, x):
    t = torch.tensor(x, requires_grad=True)
    y = layer(t)
    if not y.requires_grad:  # the step is a comparison: no graph, autograd's derivative is zero
        return y.detach().numpy(), np.zeros_like(x)
    y.backward(torch.ones_like(y))
    return y.detach().numpy(), t.grad.numpy()


def softmax_jacobians(a):
    layer = snn.Softmax(dim=-1)
    y = layer(a)
    eye = np.eye(len(a), dtype=a.dtype)
    # Row i of the Jacobian is d y_i / d a = backward(e_i).
    jac = np.stack([layer.backward(eye[i]) for i in range(len(a))])
    t = torch.tensor(a)
    y_t = torch.softmax(t, dim=-1)
    jac_t = torch.autograd.functional.jacobian(lambda v: torch.softmax(v, dim=-1), t)
    return y, jac, y_t.numpy(), jac_t.numpy()


@experiment(
    number=21, name="activation_functions", chapter="3", trained=False,
    shows="step, sigmoid, tanh, ReLU, LeakyReLU and softmax with their derivatives, the scratch layers' "
          "backward against torch autograd, one figure each with the largest difference",
    durations={"quick": 5, "full": 6},
    profiles={"tiny": dict(points=101), "quick": dict(points=1001), "full": dict(points=10001)},
)
def run(ctx):
    dtype = ctx.dtype.type
    tol = TOLERANCE["layer"][dtype]
    x = np.linspace(-5, 5, ctx.config["points"]).astype(dtype)
    x[np.argmin(np.abs(x))] = 0  # the kink and the jump: the convention at exactly 0 matters
    rows, figures, checks = [], [], []  # checks: (name, scaled error), held to tol
    for name, (s_layer, t_layer) in pairs().items():
        t_layer = t_layer.to(TORCH[dtype])
        ys, gs = scratch_pass(s_layer, x)
        yt, gt = torch_pass(t_layer, x)
        fwd = compare_arrays(f"{name} forward", ys, yt)
        bwd = compare_arrays(f"{name} derivative", gs, gt)
        checks += [(f"{name}: forward, scratch vs torch (scaled)", fwd.scaled),
                   (f"{name}: derivative, scratch backward vs torch autograd (scaled)", bwd.scaled)]
        for k in range(0, len(x), max(1, len(x) // 200)):
            for impl, y, g in (("scratch", ys, gs), ("torch", yt, gt)):
                ctx.log(impl, f"{name}/y", float(y[k]), step=k)
                ctx.log(impl, f"{name}/dy_dx", float(g[k]), step=k)
        zero = int(np.flatnonzero(x == 0)[0])
        rows.append({"function": name, "largest |forward difference|": fmt(float(np.max(np.abs(ys - yt)))),
                     "largest |derivative difference|": fmt(float(np.max(np.abs(gs - gt)))),
                     "f(0)": f"{ys[zero]:g} / {yt[zero]:g}", "f'(0)": f"{gs[zero]:g} / {gt[zero]:g}"})
        fig = plot_pair(name, x, ys, yt, gs, gt, ctx)
        figures.append((name, ctx.savefig(fig, f"activation_{name.lower()}",
                                          f"{name}: scratch and torch, the function and its derivative")))

    a = np.array([0.3, 2.9, 4.0, -1.0, 0.0], dtype=dtype)  # the notes' softmax example, plus two values
    y, jac, y_t, jac_t = softmax_jacobians(a)
    fwd = compare_arrays("softmax", y, y_t)
    bwd = compare_arrays("softmax Jacobian", jac, jac_t)
    exact = np.diag(y) - np.outer(y, y)
    checks += [("softmax: forward, scratch vs torch (scaled)", fwd.scaled),
               ("softmax: Jacobian, scratch backward vs torch autograd (scaled)", bwd.scaled),
               ("softmax: scratch Jacobian vs the formula y_i([i = j] - y_j) (scaled)",
                compare_arrays("softmax Jacobian formula", jac, exact).scaled)]
    rows.append({"function": "softmax (vector of 5)", "largest |forward difference|": fmt(float(np.max(np.abs(y - y_t)))),
                 "largest |derivative difference|": fmt(float(np.max(np.abs(jac - jac_t)))) + " (Jacobian)",
                 "f(0)": "-", "f'(0)": "-"})
    for k in range(len(a)):
        ctx.log("scratch", "softmax/y", float(y[k]), step=k)
        ctx.log("torch", "softmax/y", float(y_t[k]), step=k)
    figures.append(("softmax", ctx.savefig(plot_softmax(a, y, y_t, jac, jac_t, ctx), "activation_softmax",
                                           "softmax of one vector and its Jacobian, scratch and torch")))

    for name, error in checks:
        ctx.parity(name, error, tol)
    worst = max(error for _, error in checks)
    ctx.headline(f"6 functions and their derivatives: scratch = torch to {fmt(worst)} (scaled, {ctx.dtype})")
    ctx.section("Functions and derivatives", (
        f"{len(x)} points in [-5, 5], 0 among them, in {ctx.dtype}. Values at 0 are given as scratch / torch: "
        "both twins take the step as 0 at 0 and ReLU's derivative at 0 as 0 (PyTorch's choice). The step's "
        "derivative is 0 where it exists; torch has no gradient through a comparison at all.\n\n"
        + markdown_table(rows) + "\n\n" + "\n\n".join(f"![{n}]({f})" for n, f in figures)))


def plot_pair(name, x, ys, yt, gs, gt, ctx):
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    for ax, s, t, what in ((axes[0], ys, yt, f"{name}(x)"), (axes[1], gs, gt, f"d {name}(x) / dx")):
        ax.plot(x, s, "-", color=COLORS["scratch"], lw=2.2, label="scratch")
        ax.plot(x, t, "--", color=COLORS["torch"], lw=1.2, label="torch")
        ax.set(xlabel="x", title=f"{what}: largest |difference| {fmt(float(np.max(np.abs(s - t))))}")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(f"{name} ({ctx.dtype}): forward (left), derivative from backward / autograd (right)")
    fig.tight_layout()
    return fig


def plot_softmax(a, y, y_t, jac, jac_t, ctx):
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
    idx = np.arange(len(a))
    axes[0].bar(idx - 0.2, y, 0.4, color=COLORS["scratch"], label="scratch")
    axes[0].bar(idx + 0.2, y_t, 0.4, color=COLORS["torch"], label="torch")
    axes[0].set_xticks(idx, [f"{v:g}" for v in a])
    axes[0].set(xlabel="input a_i", ylabel="softmax(a)_i",
                title=f"softmax: largest |difference| {fmt(float(np.max(np.abs(y - y_t))))}")
    axes[0].legend(fontsize=8)
    im = axes[1].imshow(jac, cmap="RdBu_r", vmin=-0.25, vmax=0.25)
    axes[1].set(title="Jacobian d y_i / d a_j (scratch)", xlabel="j", ylabel="i")
    fig.colorbar(im, ax=axes[1])
    diff = np.abs(jac - jac_t)
    im = axes[2].imshow(np.where(diff > 0, diff, np.nan), cmap="viridis")
    axes[2].set(title=f"|scratch - torch|: largest {fmt(float(diff.max()))} (blank: equal)", xlabel="j", ylabel="i")
    fig.colorbar(im, ax=axes[2])
    fig.suptitle(f"softmax of one vector ({ctx.dtype})")
    fig.tight_layout()
    return fig
