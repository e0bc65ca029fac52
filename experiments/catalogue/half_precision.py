"""Chapter 8: inference of the trained DeepConvNet in float64, float32, float16 (and bfloat16 in torch).

The book's half_float_network.py converts the trained weights with
``param[...] = param.astype(np.float16)``: the values are rounded to float16
but written back into the float64 arrays, so the network still computes in
float64 with rounded weights (and rounded images). Here each twin really runs
in each dtype: weights, images and every layer's output are arrays of that
dtype (checked layer by layer: a forward hook on every torch module, each
layer of the scratch Sequential in turn). Like any float16 hardware path, the
matrix products multiply float16 values and accumulate in float32 before the
result is rounded to float16 (NumPy's float16 matmul and torch's CPU kernels
both do; the report measures it on a sum of 4,096 ones, which a float16
accumulator would stop at 2,048).

NumPy has no float16 BLAS: its float16 matrix product is a plain loop, tens of
times slower than float32, so the scratch float16 pass is what sets the number
of test images (``n_eval``) of each profile. All dtypes and both twins see the
same images.

The weights: those ``deep_convnet`` kept for this profile, seed and dtype
(``data/trained/``) when it ran before, else a DeepConvNet trained here in
lockstep with the same recipe.
"""
import sys

import matplotlib.pyplot as plt
import numpy as np
import torch

from experiments.catalogue import experiment
from experiments.catalogue._cnn import load_trained
from experiments.catalogue._data import mnist
from experiments.catalogue.deep_convnet import recipe_for
from experiments.compare import to_torch
from experiments.writing import markdown_table
from scratch.models.convnets import DeepConvNet
from torch_ref.models.convnets import DeepConvNet as TorchDeepConvNet

SCRATCH_DTYPES = ("float64", "float32", "float16")
TORCH_DTYPES = {"float64": torch.float64, "float32": torch.float32, "float16": torch.float16,
                "bfloat16": torch.bfloat16}


def scratch_scores(model, x, chunk=100):
    """Scores of the scratch model in eval mode, layer by layer; also the set of dtypes the layers produced."""
    model.eval()
    seen = set()
    outs = []
    for i in range(0, len(x), chunk):
        h = x[i:i + chunk]
        for layer in model.layers:
            h = layer(h)
            seen.add(str(h.dtype))
        outs.append(h)
    return np.concatenate(outs), seen


def torch_scores(model, x, chunk=500):
    """Scores of the torch model in eval mode (as float64 NumPy), and the dtypes every module's output had."""
    model.eval()
    seen = set()
    hooks = [m.register_forward_hook(lambda m, i, o: seen.add(str(o.dtype).replace("torch.", "")))
             for m in model.modules()]
    try:
        with torch.no_grad():
            outs = [model(x[i:i + chunk]).double().numpy() for i in range(0, len(x), chunk)]
    finally:
        for h in hooks:
            h.remove()
    return np.concatenate(outs), seen


def accumulator_check():
    """What a float16 matrix product of 4,096 ones returns in each twin: 4096 with a float32
    accumulator, 2048 with a float16 one (2048 + 1 rounds back to 2048)."""
    a = np.ones((1, 4096), dtype=np.float16)
    t = torch.ones(1, 4096, dtype=torch.float16)
    return float((a @ a.T)[0, 0]), float((t @ t.T)[0, 0])


@experiment(
    number=23, name="half_precision", chapter="8",
    shows="the trained DeepConvNet's inference with weights and activations in float64, float32, float16 "
          "(and bfloat16 in torch), both twins, checked to really compute in that dtype; accuracy and largest "
          "logit difference per dtype, against the book's float16 rounding in float64",
    durations={"quick": 15, "full": 420},
    profiles={
        "tiny": dict(synthetic=True, n_train=40, n_test=20, iterations=2, epochs=None, batch_size=20,
                     eval_train=False, reuse=False),
        "quick": dict(synthetic=False, n_train=3000, n_test=100, iterations=30, epochs=None, batch_size=100,
                      eval_train=False, reuse=True),
        "full": dict(synthetic=False, n_train=None, n_test=2000, iterations=None, epochs=20, batch_size=100,
                     eval_train=False, reuse=True),
    },
)
def run(ctx):
    cfg = ctx.config
    data = mnist(ctx, flatten=False)
    weights, path = load_trained(ctx, "deep_convnet") if cfg["reuse"] else (None, None)
    if weights is not None:
        source = (f"the weights `deep_convnet` trained and kept for this profile, seed and dtype "
                  f"(`{path.relative_to(path.parents[2]) if len(path.parents) > 2 else path}`)")
    else:
        if cfg["reuse"]:  # say so now: at the full profile the training below takes hours
            print(f"half_precision: no weights kept by deep_convnet at {path}; training a DeepConvNet first. "
                  "Run deep_convnet first with the same --profile, --seed and --dtype to reuse its weights.",
                  file=sys.stderr)
        results = ctx.train(recipe_for(cfg, label="DeepConvNet (trained here)"), data)
        weights = {k: np.array(v) for k, v in results[0].models["scratch"].state_dict().items()}
        source = (f"a DeepConvNet trained here ({ctx.mode}, {cfg['iterations'] or cfg['epochs']} "
                  f"{'iterations' if cfg['iterations'] else 'epochs'}, the recipe of `deep_convnet`)"
                  + ("; run `deep_convnet` first with the same profile, seed and dtype to use its weights"
                     if cfg["reuse"] else ""))
    x64 = np.ascontiguousarray(data.x_test, dtype=np.float64)
    t = data.t_test

    scores, seen = {}, {}
    for name in SCRATCH_DTYPES:
        dt = np.dtype(name)
        model = DeepConvNet(dtype=dt, generator=np.random.default_rng(0))
        model.load_state_dict(weights)  # rounds to dt
        scores["scratch", name], seen["scratch", name] = scratch_scores(model, x64.astype(dt))
    # The book's way: weights and images rounded to float16, kept in float64 arrays, computed in float64.
    book = DeepConvNet(dtype=np.float64, generator=np.random.default_rng(0))
    book.load_state_dict({k: np.asarray(v).astype(np.float16).astype(np.float64) if np.issubdtype(
        np.asarray(v).dtype, np.floating) else v for k, v in weights.items()})
    scores["scratch", "book float16"], seen["scratch", "book float16"] = scratch_scores(
        book, x64.astype(np.float16).astype(np.float64))
    for name, tdt in TORCH_DTYPES.items():
        model = TorchDeepConvNet(dtype=tdt)
        model.load_state_dict(to_torch(weights))  # copy_ rounds to tdt
        scores["torch", name], seen["torch", name] = torch_scores(model, torch.from_numpy(x64).to(tdt))

    ref = scores["scratch", "float64"]
    scale = float(np.abs(ref).max())
    pred_ref = ref.argmax(axis=1)
    rows = []
    for (impl, name), s in scores.items():
        acc = float(np.mean(s.argmax(axis=1) == t))
        diff = float(np.abs(s - ref).max())
        twin = None
        if impl == "torch" and ("scratch", name) in scores:
            twin = float(np.abs(s - scores["scratch", name]).max())
        computes = ", ".join(sorted(seen[impl, name]))
        rows.append({"twin": impl, "dtype": name, "layer outputs": computes, "accuracy": f"{acc:.2%}",
                     "predictions changed vs float64": int(np.sum(s.argmax(axis=1) != pred_ref)),
                     "largest logit difference vs scratch float64": f"{diff:.2e}",
                     "relative to the logits' scale": f"{diff / scale:.1e}",
                     "scratch vs torch, same dtype": "-" if twin is None else f"{twin:.2e}"})
        ctx.log(impl, f"{name}/accuracy", acc)
        ctx.log(impl, f"{name}/max_logit_diff_vs_float64", diff)
        if name in ("float64", "float32", "float16", "bfloat16"):
            if seen[impl, name] != {name}:
                raise RuntimeError(f"half_precision: the {impl} twin in {name} produced layer outputs of "
                                   f"{sorted(seen[impl, name])}: it did not compute in {name}")
    for name in SCRATCH_DTYPES:
        twin = float(np.abs(scores["torch", name] - scores["scratch", name]).max()) / scale
        tol = {"float64": 1e-10, "float32": 1e-5, "float16": None}[name]
        ctx.parity(f"{name} inference: largest logit difference scratch vs torch (relative to the logits' scale)",
                   twin, tol)
    acc16 = accumulator_check()

    fig, axes = plt.subplots(1, 2, figsize=(13, 4.2))
    labels = [f"{impl}\n{name}" for impl, name in scores]
    accs = [float(np.mean(s.argmax(axis=1) == t)) for s in scores.values()]
    diffs = [max(float(np.abs(s - ref).max()), 1e-18) for s in scores.values()]
    colors = ["tab:blue" if impl == "scratch" else "tab:orange" for impl, _ in scores]
    axes[0].bar(range(len(accs)), accs, color=colors)
    axes[0].set(xticks=range(len(accs)), ylim=(max(0.0, min(accs) - 0.05), 1.0), ylabel="test accuracy",
                title=f"accuracy on {len(t)} test images")
    axes[0].set_xticklabels(labels, fontsize=7)
    axes[1].bar(range(len(diffs)), diffs, color=colors)
    axes[1].set(xticks=range(len(diffs)), yscale="log", ylabel="max |logit - scratch float64 logit|",
                title="largest logit difference (float64 vs itself: 0, drawn at 1e-18)")
    axes[1].set_xticklabels(labels, fontsize=7)
    fig.tight_layout()
    plot = ctx.savefig(fig, "accuracy_and_logits", "accuracy and largest logit difference per twin and dtype")

    a16 = {impl: float(np.mean(scores[impl, "float16"].argmax(axis=1) == t)) for impl in ("scratch", "torch")}
    a64 = float(np.mean(pred_ref == t))
    changed = {impl: int(np.sum(scores[impl, "float16"].argmax(axis=1) != pred_ref)) for impl in ("scratch", "torch")}
    ctx.headline(f"float64 {a64:.2%}; float16 {a16['scratch']:.2%} / {a16['torch']:.2%} (scratch / torch) on "
                 f"{len(t)} test images; float16 changed {changed['scratch']} / {changed['torch']} predictions")
    note = {"full": "", "quick": " The quick profile uses a short DeepConvNet training (unless `deep_convnet` "
                                 "kept longer-trained weights) and 100 test images.",
            "tiny": " The tiny profile (the test suite's) uses a network trained two steps on generated images: "
                    "its accuracies mean nothing."}[ctx.profile]
    ctx.section("Inference per dtype", f"""\
Weights: {source}. The same {len(t)} test images for every row.{note} The book finds that float16
inference keeps the accuracy of float64; here, the number of predictions float16 changes and the
largest logit difference say how much precision the network needs.

{markdown_table(rows)}

"layer outputs" lists the dtypes of every layer's output seen during the pass: one dtype means the pass
computed in it. "book float16" is the book's script: weights and images rounded to float16, then computed
in float64 (its layer outputs are float64), which misses the rounding of every intermediate result.

**How float16 arithmetic is done.** A float16 matrix product of 4,096 ones gives {acc16[0]:.0f} in NumPy and
{acc16[1]:.0f} in torch: both accumulate in float32 and round the result once to float16 (a float16
accumulator would stop at 2,048), as float16 hardware does. Elementwise layers (ReLU, pooling) and every
stored activation are float16. bfloat16 (8 bits of mantissa against float16's 11, float32's exponent range)
exists only on the torch side: NumPy has no bfloat16.

![accuracy and logits]({plot})
""")
    ctx.keep(accuracy={f"{i}/{n}": float(np.mean(s.argmax(axis=1) == t)) for (i, n), s in scores.items()},
                     float16_matmul_of_4096_ones={"numpy": acc16[0], "torch": acc16[1]}, weights=source)
