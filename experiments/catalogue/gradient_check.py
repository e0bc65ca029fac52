"""Chapter 5: gradient check, numerical vs backprop vs torch autograd.

The book's ``gradient_check.py``: the two-layer net (784-50-10, ReLU, W ~ 0.01
N(0, 1)) on the first 3 training images; the gradient of the loss with respect
to every parameter by central differences (h = 1e-4, the book's, in float64), by
the scratch twin's backprop and by torch autograd. The book prints the mean
|backprop - numerical| per parameter; the docs/design.md measures are the largest
difference relative to the largest gradient. Then every layer of the scratch
library, in random configurations, against both references (the per-layer table
of ``python -m experiments gradcheck``).
"""
import matplotlib.pyplot as plt
import numpy as np
import torch

import scratch.nn as snn
from experiments import gradcheck, layer_cases
from experiments.catalogue import experiment
from experiments.catalogue._data import mnist
from experiments.compare import TOLERANCE, compare_arrays, to_torch
from experiments.writing import markdown_table
from experiments.shadow import AS_ACCURATE, CONFIDENCE
from experiments.training import torch_dtype
from scratch.models.two_layer import TwoLayerNet
from scratch.numerical import numerical_gradient
from torch_ref.models.two_layer import TwoLayerNet as TorchTwoLayerNet


FLOAT32_CONFIGS = 10  # at least this many random configurations per layer for the float32 accuracy verdict


@experiment(
    number=6, name="gradient_check", chapter="5", trained=False,
    shows="the book's gradient check on the two-layer net: central differences vs scratch backprop vs torch "
          "autograd per parameter, and every scratch layer against torch and central differences",
    durations={"quick": 12, "full": 30},
    profiles={"tiny": dict(synthetic=True, n_train=3, n_test=1, hidden=10, samples=3, layer_configs=1),
              "quick": dict(synthetic=False, n_train=3, n_test=1, hidden=50, samples=3, layer_configs=3),
              "full": dict(synthetic=False, n_train=3, n_test=1, hidden=50, samples=3, layer_configs=10)},
)
def run(ctx):
    cfg = ctx.config
    data = mnist(ctx)
    x = np.ascontiguousarray(data.x_train[:cfg["samples"]], dtype=np.float64)
    t = data.t_train[:cfg["samples"]]

    # -- the book's check, in float64 ----------------------------------------------------
    net = TwoLayerNet(784, cfg["hidden"], 10, "relu", 0.01, dtype=np.float64, generator=ctx.streams.rng("init"))
    crit = snn.CrossEntropyLoss()
    crit(net(x), t)
    net.zero_grad()
    net.backward(crit.backward())
    backprop = {name: p.grad.copy() for name, p in net.named_parameters()}

    def loss(_):
        return float(crit(net(x), t))

    numeric = {name: numerical_gradient(loss, p.data, h=1e-4) for name, p in net.named_parameters()}

    # -- torch autograd, in the run's dtype ------------------------------------------------
    dtype = ctx.dtype
    twin = TwoLayerNet(784, cfg["hidden"], 10, "relu", 0.01, dtype=np.float64).to(dtype)
    twin.load_state_dict(net.state_dict())
    crit(twin(x.astype(dtype)), t)
    twin.zero_grad()
    twin.backward(crit.backward())
    t_net = TorchTwoLayerNet(784, cfg["hidden"], 10, "relu", 0.01, dtype=torch_dtype(dtype))
    t_net.load_state_dict(to_torch(twin.state_dict()))
    torch.nn.CrossEntropyLoss()(t_net(torch.tensor(x.astype(dtype))), torch.tensor(t)).backward()
    autograd = {name: p.grad.numpy() for name, p in t_net.named_parameters()}

    tol_num, tol_twin = TOLERANCE["numerical"], TOLERANCE["layer"][dtype.type]
    rows = []
    for name, p in twin.named_parameters():
        num_err = compare_arrays(name, backprop[name], numeric[name])
        twin_err = compare_arrays(name, p.grad, autograd[name])
        book_mean = float(np.mean(np.abs(backprop[name] - numeric[name])))
        rows.append({"parameter": name, "shape": str(p.shape),
                     "mean |backprop - numerical| (book)": f"{book_mean:.2e}",
                     "backprop vs numerical (scaled)": f"{num_err.scaled:.2e}",
                     f"scratch vs autograd, {dtype} (scaled)": f"{twin_err.scaled:.2e}"})
        ctx.log("scratch", f"{name}/book_mean_abs_vs_numerical", book_mean)
        ctx.log("scratch", f"{name}/scaled_vs_numerical", num_err.scaled)
        ctx.log("diff", f"{name}/scaled_vs_autograd", twin_err.scaled)
        ctx.parity(f"TwoLayerNet {name}: scratch backprop vs central differences (float64, scaled)",
                   num_err.scaled, tol_num)
        ctx.parity(f"TwoLayerNet {name}: scratch backprop vs torch autograd ({dtype}, scaled)",
                   twin_err.scaled, tol_twin)

    # -- every layer ----------------------------------------------------------------------
    names = list(layer_cases.CASES)
    checks = gradcheck.run_checks(names, cfg["layer_configs"], ctx.seed)
    summary = gradcheck.summarise(checks)
    layer_rows = [{"layer": s["layer"], "check": s["check"], "configs": s["configs"], "worst tensor": s["worst_tensor"],
                   "error": f"{s['error']:.2e}", "tolerance": f"{s['tolerance']:.0e}", "result": s["result"]}
                  for s in summary]
    for s in summary:
        ctx.log("diff", f"layers/{s['layer']}/{s['check']}/worst_error", float(s["error"]))
    failed = [s for s in summary if s["result"] != "ok"]
    ctx.parity(f"layer checks out of tolerance (of {len(summary)}: {len(names)} layers x checks)", len(failed), 0)
    # float32's question is not "how close to torch's float32" but "as close to the exact answer as torch's".
    # Its verdict is a median over tensors, so it gets configurations of its own (float32 only, ~1 s): with the
    # tiny profile's one, an elementwise layer has two tensors, and one noisy gradient (a ratio of 3.5 beside
    # 1.0) made LogSoftmax read "less accurate".
    accuracy = gradcheck.float32_rows(gradcheck.run_checks(names, max(cfg["layer_configs"], FLOAT32_CONFIGS),
                                                           ctx.seed, dtype="float32"))
    for a in accuracy:
        ctx.log("diff", f"layers/{a['layer']}/{a['check']}/median_error_ratio_vs_float64", a["median_ratio"])
    less = [a for a in accuracy if a["verdict"] == "less accurate"]
    # an inconclusive row is not a failure (its interval holds "as accurate" too); the table says which
    ctx.parity(f"float32 layer checks less accurate than torch's float32 against torch float64 (of "
               f"{len(accuracy)}; median error ratio scratch / torch above {AS_ACCURATE[1]:g}, its whole "
               f"{CONFIDENCE:.0%} interval)", len(less), 0)

    fig, axes = plt.subplots(1, 2, figsize=(15, 5), gridspec_kw={"width_ratios": [1, 2.2]})
    names_p = [n for n, _ in twin.named_parameters()]
    pos = np.arange(len(names_p))
    num = [compare_arrays(n, backprop[n], numeric[n]).scaled for n in names_p]
    auto = [compare_arrays(n, p.grad, autograd[n]).scaled for n, p in twin.named_parameters()]
    axes[0].bar(pos - 0.2, np.maximum(num, 1e-20), 0.4, label="backprop vs numerical (float64)")
    axes[0].bar(pos + 0.2, np.maximum(auto, 1e-20), 0.4, label=f"scratch vs autograd ({dtype})")
    axes[0].axhline(tol_num, color="tab:blue", ls="--", lw=0.8)
    axes[0].axhline(tol_twin, color="tab:orange", ls="--", lw=0.8)
    axes[0].set(yscale="log", xticks=pos, ylabel="scaled error (dashed: tolerances)", title="TwoLayerNet")
    axes[0].set_xticklabels(names_p, rotation=30)
    axes[0].legend(fontsize=8)
    ratio = [max(s["error"], 1e-20) / s["tolerance"] for s in summary]
    colors = {"torch float64": "tab:blue", "torch float32": "tab:orange", "numerical float64": "tab:green",
              "plain: torch float64": "lightsteelblue", "plain: torch float32": "navajowhite",
              "plain: numerical float64": "lightgreen", "plain = fast float64": "tab:purple"}
    axes[1].bar(np.arange(len(summary)), ratio, color=[colors.get(s["check"], "gray") for s in summary])
    axes[1].axhline(1.0, color="tab:red", lw=1)
    axes[1].set(yscale="log", ylabel="worst error / tolerance (below the red line: ok)",
                title="every layer: " + ", ".join(f"{c} ({k})" for k, c in colors.items()),
                xticks=np.arange(len(summary)))
    axes[1].set_xticklabels([s["layer"] for s in summary], rotation=90, fontsize=7)
    fig.tight_layout()
    ctx.savefig(fig, "gradient_errors", "gradient errors of the two-layer net and of every layer, against tolerances")

    worst_num = max(compare_arrays(n, backprop[n], numeric[n]).scaled for n in backprop)
    ctx.headline(f"backprop vs numerical {worst_num:.1e}, vs autograd "
                 f"{max(compare_arrays(n, p.grad, autograd[n]).scaled for n, p in twin.named_parameters()):.1e}; "
                 f"{len(summary) - len(failed)}/{len(summary)} layer checks ok")
    ctx.section("The two-layer net (the book's gradient_check)", (
        f"TwoLayerNet(784, {cfg['hidden']}, 10), ReLU, on the first {len(x)} training images. Numerical "
        "gradients: central differences with h = 1e-4 in float64 (the book's). The book prints the mean "
        "absolute difference (its run: about 1e-10 to 1e-13); *scaled* = largest |difference| / largest "
        "|reference|, the docs/design.md measure (tolerance 1e-7 against central differences, 1e-10 in float64 / "
        "1e-5 in float32 against torch).\n\n" + markdown_table(rows)))
    ctx.section("Every layer of the library", (
        f"Each layer of `experiments.layer_cases` in {cfg['layer_configs']} random configuration(s) per "
        "check: against torch autograd in float64 and float32, and against central differences (h = 1e-6) "
        "in float64, on scratch's fast path and on its plain path ('plain:'), and the two paths against each "
        "other ('plain = fast', tolerance 1e-12 scaled; docs/paths.md). The worst tensor of each; "
        "`python -m experiments gradcheck --configs N` gives every tensor.\n\n" + markdown_table(layer_rows)))
    ctx.section("Float32: each twin against the exact answer", (
        "The float32 rows above say how close scratch comes to torch's float32 result; what matters is whether "
        f"it is as close to the exact answer. In {max(cfg['layer_configs'], FLOAT32_CONFIGS)} random "
        "configurations per layer, both twins run in float32 on the same float32 inputs and "
        "weights, and torch in float64 on those rounded values is the exact answer: the largest absolute error of "
        "each twin against it (`scratch_vs_float64`, `torch_vs_float64`) and, tensor by tensor, scratch's error "
        "/ torch's, each counted as at least float32's eps times the tensor's scale (below that two float32 "
        "results cannot be told apart), their median and worst. " + gradcheck.FLOAT32_VERDICT_RULE + "\n\n"
        + gradcheck.float32_table(accuracy)))
