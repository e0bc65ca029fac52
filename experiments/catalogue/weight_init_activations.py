"""Chapter 6: histograms of five hidden layers' activations under four initial weight scales.

The book's ``weight_init_activation_histogram.py``: 1,000 inputs x ~ N(0, 1) of
100 features go through five layers of 100 units, a = z W, z = activation(a), with
W ~ std * N(0, 1) for std 1, 0.01, Xavier (sqrt(1/n), the book's form) and He
(sqrt(2/n)); a 30-bin histogram of each layer's outputs shows whether they
saturate (sigmoid at 0 and 1 with std 1: vanishing gradients), collapse (std
0.01: every unit says the same, "limited expressiveness") or stay spread (Xavier
for sigmoid and tanh, He for ReLU).

Both twins build the same network (the book's MultiLayerNet, biases 0, so
a = z W exactly) from the same weights: the scratch twin draws them, the torch
twin gets them through the state dict; their activations must agree to a layer's
tolerance and their histograms count for count.
"""
import matplotlib.pyplot as plt
import numpy as np
import torch

from experiments.catalogue import experiment
from experiments.compare import TOLERANCE, compare_arrays, to_torch
from experiments.writing import markdown_table
from experiments.shadow import error_ratio
from scratch.models.multilayer import MultiLayerNet
from torch_ref.models.multilayer import MultiLayerNet as TorchMultiLayerNet

INITS = {"std=1": 1.0, "std=0.01": 0.01, "Xavier": "xavier", "He": "he"}
ACTIVATIONS = ("sigmoid", "tanh", "relu")
RANGES = {"sigmoid": (0.0, 1.0), "tanh": (-1.0, 1.0), "relu": (0.0, 1.0)}  # the book's range=(0, 1), tanh's own
BINS = 30


def saturated(a, activation):
    """Share of outputs where the activation's gradient (almost) vanishes."""
    if activation == "sigmoid":
        return float(np.mean((a < 0.01) | (a > 0.99)))
    if activation == "tanh":
        return float(np.mean(np.abs(a) > 0.99))
    return float(np.mean(a == 0))


def hidden_outputs_scratch(model, x, layers):
    out = []
    z = x
    for name, m in model.layers.named_children():
        z = m(z)
        if name.startswith("Activation_function"):
            out.append(z)
            if len(out) == layers:
                break
    return out


@torch.no_grad()
def hidden_outputs_torch(model, x, layers):
    out = []
    z = torch.from_numpy(x)
    for name, m in model.layers.named_children():
        z = m(z)
        if name.startswith("Activation_function"):
            out.append(z.numpy())
            if len(out) == layers:
                break
    return out


def float32_error_ratio(s_net, net_args, s_out, t_out, x, layers) -> float:
    """Largest over the layers of error(scratch) / error(torch), each against torch float64 (scaled, and
    counted as at least float32's eps: below it two float32 results cannot be told apart).

    Five layers of std=1 tanh amplify float32 round-off to ~5e-5 in both twins (docs/design.md, "Machine
    independence"): how close the twins land to each other depends on the BLAS kernel, how close each
    lands to the exact answer does not.
    """
    exact_net = TorchMultiLayerNet(*net_args, dtype=torch.float64)
    exact_net.load_state_dict(to_torch({k: np.asarray(v, np.float64) for k, v in s_net.state_dict().items()}))
    exact = hidden_outputs_torch(exact_net, x.astype(np.float64), layers)
    return max(float(error_ratio(compare_arrays("s", a, e).scaled, compare_arrays("t", b, e).scaled))
               for a, b, e in zip(s_out, t_out, exact))


@experiment(
    number=9, name="weight_init_activations", chapter="6", trained=False,
    shows="histograms of 5 hidden layers' activations (sigmoid, tanh, ReLU) under std 1, 0.01, Xavier, He: "
          "saturation, collapse or spread; both twins from the same weights, count for count",
    durations={"quick": 6, "full": 6},
    profiles={"tiny": dict(samples=200, nodes=50, layers=5),
              "quick": dict(samples=1000, nodes=100, layers=5),
              "full": dict(samples=1000, nodes=100, layers=5)},
)
def run(ctx):
    cfg = ctx.config
    dtype = ctx.dtype
    tol = TOLERANCE["layer"][dtype.type]
    n, layers = cfg["nodes"], cfg["layers"]
    x = ctx.streams.rng("data").standard_normal((cfg["samples"], n)).astype(dtype)
    acts, hists, worst, hist_diff = {}, {}, {}, 0
    edges = {a: np.histogram_bin_edges([], BINS, range=RANGES[a]) for a in ACTIVATIONS}
    for activation in ACTIVATIONS:
        for init, std in INITS.items():
            # The same N(0, 1) draws for every configuration (a fresh copy of the init stream):
            # only the scale and the activation change between the histograms.
            s_net = MultiLayerNet(n, [n] * layers, 10, activation, std, dtype=dtype,
                                  generator=ctx.streams.rng("init"))
            t_net = TorchMultiLayerNet(n, [n] * layers, 10, activation, std, dtype=dtype)
            t_net.load_state_dict(to_torch(s_net.state_dict()))
            s_out = hidden_outputs_scratch(s_net, x, layers)
            t_out = hidden_outputs_torch(t_net, x, layers)
            acts[activation, init] = (s_out, t_out)
            if dtype == np.float64:
                worst[activation, init] = max(compare_arrays(f"layer {k + 1}", a, b).scaled
                                              for k, (a, b) in enumerate(zip(s_out, t_out)))
            else:
                worst[activation, init] = float32_error_ratio(s_net, (n, [n] * layers, 10, activation, std),
                                                              s_out, t_out, x, layers)
            for k, (a, b) in enumerate(zip(s_out, t_out)):
                hs = np.histogram(a, BINS, range=RANGES[activation])[0]
                ht = np.histogram(b, BINS, range=RANGES[activation])[0]
                hist_diff += int(np.abs(hs - ht).sum())
                hists[activation, init, k] = (hs, ht)
                for impl, h, z in (("scratch", hs, a), ("torch", ht, b)):
                    tag = f"{activation}/{init}/layer{k + 1}"
                    for j, c in enumerate(h):
                        ctx.log(impl, f"{tag}/hist", int(c), step=j)
                    ctx.log(impl, f"{tag}/std", float(np.std(z)))
                    ctx.log(impl, f"{tag}/saturated", saturated(z, activation))
    for (activation, init), w in worst.items():
        if dtype == np.float64:
            ctx.parity(f"{activation}, {init}: scratch vs torch activations, largest over the {layers} layers "
                       "(scaled)", w, tol)
        else:  # float32: five layers amplify round-off beyond the one-layer bound in both twins alike
            ctx.parity(f"{activation}, {init}: scratch's float32 error / torch's, both against torch float64 on the "
                       f"same weights and inputs, largest over the {layers} layers", w, 2.0)
    ctx.parity("histogram counts differing between the twins (all configurations and layers)", hist_diff,
               0 if dtype == np.float64 else None)

    # -- the book's figures, one per activation: rows = initial scales, columns = layers -------------
    plots = {}
    for activation in ACTIVATIONS:
        fig, axes = plt.subplots(len(INITS), layers, figsize=(3 * layers, 2.4 * len(INITS)), sharex=True,
                                 sharey="row")
        for r, init in enumerate(INITS):
            for k in range(layers):
                ax = axes[r, k]
                hs, ht = hists[activation, init, k]
                ax.stairs(hs, edges[activation], fill=True, color="tab:blue", alpha=0.6, label="scratch")
                ax.stairs(ht, edges[activation], color="tab:orange", lw=1.2, ls="--", label="torch")
                if activation == "relu":
                    ax.set_ylim(0, 7 * cfg["samples"])  # as the book: the spike of zeros is cut off
                ax.set_title(f"{init}: layer {k + 1}", fontsize=9)
                ax.tick_params(labelsize=7)
                ax.locator_params(nbins=4)
        axes[0, 0].legend(fontsize=7)
        fig.suptitle(f"{activation}: activations of {layers} layers of {n} units, {cfg['samples']} inputs, "
                     f"{BINS} bins over {RANGES[activation]} ({dtype})")
        # Fixed margins: tight_layout over 20 panels costs seconds and gains nothing here.
        fig.subplots_adjust(left=0.05, right=0.98, bottom=0.05, top=0.9, wspace=0.12, hspace=0.35)
        plots[activation] = ctx.savefig(fig, f"histograms_{activation}",
                                        f"{activation}: histogram of each layer's outputs per initial scale, "
                                        "scratch filled, torch dashed")

    rows = []
    for activation in ACTIVATIONS:
        for init in INITS:
            s_out, _ = acts[activation, init]
            row = {"activation": activation, "init": init}
            for k, a in enumerate(s_out):
                row[f"layer {k + 1}: std / saturated"] = f"{np.std(a):.3g} / {saturated(a, activation):.0%}"
            row["twins' largest difference"] = f"{worst[activation, init]:.1e}"
            rows.append(row)

    sat = {a: saturated(acts["sigmoid", a][0][-1], "sigmoid") for a in INITS}
    spread = {(act, a): float(np.std(acts[act, a][0][-1])) for act in ACTIVATIONS for a in INITS}
    ctx.keep(last_layer_std={f"{act}/{a}": v for (act, a), v in spread.items()})
    ctx.headline(f"sigmoid, last layer: std=1 {sat['std=1']:.0%} saturated; std 0.01 spread "
                 f"{spread['sigmoid', 'std=0.01']:.3f}, Xavier {spread['sigmoid', 'Xavier']:.3f}; twins' "
                 f"histograms {'identical' if hist_diff == 0 else f'{hist_diff} counts apart'}")
    ctx.section("Against the book", (
        "The book's figures 6-10 to 6-14: with std 1 the sigmoid outputs pile up at 0 and 1 (their gradient "
        "vanishes), with std 0.01 they crowd around 0.5 (every unit outputs nearly the same: limited "
        "expressiveness), with Xavier they stay spread over all five layers; tanh with Xavier spreads "
        "symmetrically about 0; ReLU with std 0.01 shrinks layer by layer towards 0, with Xavier it leans "
        "towards 0, with He it keeps the same spread in every layer. The standard deviation of each layer's "
        "outputs and the share of saturated units (sigmoid below 0.01 or above 0.99, tanh |a| > 0.99, ReLU "
        "exactly 0) make this measurable (scratch twin; the torch twin's are the same to the parity figures "
        "above):\n\n" + markdown_table(rows) + "\n"
        + "\n".join(f"![{a}]({p})\n" for a, p in plots.items())))
    ctx.section("How the twins are compared", (
        f"Each configuration builds the book's MultiLayerNet({n}, [{n}] * {layers}, 10) with zero biases; the "
        "scratch twin draws W = std * N(0, 1) from the init stream (a fresh copy for each configuration, so all "
        "twelve share the same normal draws), the torch twin loads the same weights through the state dict, and "
        f"both run the same {cfg['samples']} inputs. The histograms use the same bins in both; "
        f"{hist_diff} counts differ. Both modes run this same comparison: nothing is trained, and the point "
        "is that the same weights give the same histograms. Xavier is the book's sqrt(1/n) (LeCun's form), not PyTorch's "
        "xavier_normal_ sqrt(2/(n_in + n_out)), which equals it here since n_in = n_out."))
