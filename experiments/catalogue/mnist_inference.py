"""Chapter 3: batch inference on MNIST, as in the notes, with a network the suite trains itself.

The notes load the book's ``sample_weight.pkl`` (a 784-50-100-10 sigmoid
network, 93.52% on the test set) and count correct predictions, first one
image at a time, then in batches of 100:

    for i in range(0, len(x), batch_size):
        y_batch = predict(network, x[i:i + batch_size])
        p = np.argmax(y_batch, axis=1)
        accuracy_cnt += np.sum(p == t[i:i + batch_size])

The pickle is not shipped here, so the suite trains the same architecture
(sigmoid hidden layers of 50 and 100, PyTorch's default init, Adam lr 0.001,
batch 100) in both twins, then runs the notes' two loops in each twin. Batched
and one-by-one predictions must agree; the softmax of the notes' ``predict`` is
left out, since it does not change the argmax. Last, the time per image for
batch sizes from 1 to 10,000: the notes' remark that batching relieves the
data bus (one large matrix product instead of many small ones, and far fewer
calls through Python).
"""
import time

import matplotlib.pyplot as plt
import numpy as np
import torch

from experiments.catalogue import experiment
from experiments.catalogue._cnn import predict as predict_chunked
from experiments.catalogue._data import mnist
from experiments.compare import compare_arrays, layer_tolerance
from experiments.plots import COLORS
from experiments.writing import markdown_table
from experiments.training import Recipe
from scratch.models.mlp import MLP
from torch_ref.models.mlp import MLP as TorchMLP

SIZES = [784, 50, 100, 10]
BOOK = 0.9352  # the notes' accuracy with sample_weight.pkl


def forward(impl, model, x):
    """Scores of one batch, the notes' ``predict`` without the softmax."""
    if impl == "torch":
        with torch.no_grad():
            return model(torch.from_numpy(x)).numpy()
    return model(x)


def batched(impl, model, x, t, batch_size):
    """The notes' batch loop: (predictions, number correct)."""
    preds = []
    accuracy_cnt = 0
    for i in range(0, len(x), batch_size):
        p = np.argmax(forward(impl, model, x[i:i + batch_size]), axis=1)
        accuracy_cnt += int(np.sum(p == t[i:i + batch_size]))
        preds.append(p)
    return np.concatenate(preds), accuracy_cnt


def one_by_one(impl, model, x):
    """The notes' first loop: one image (784,) at a time."""
    return np.array([np.argmax(forward(impl, model, x[i])) for i in range(len(x))])


def seconds_per_image(impl, model, x, batch_size, budget):
    """Wall time per image of the batch loop over as many images as ``budget`` allows (at least one batch)."""
    n = min(len(x), max(batch_size, int(budget)))
    n -= n % batch_size
    forward(impl, model, x[:batch_size])  # warm-up: first-call allocations
    t0 = time.perf_counter()
    for i in range(0, n, batch_size):
        forward(impl, model, x[i:i + batch_size])
    return (time.perf_counter() - t0) / n


@experiment(
    number=22, name="mnist_inference", chapter="3",
    shows="the notes' batch inference (batch 100, argmax, accuracy count) with a 784-50-100-10 sigmoid net "
          "trained by the suite, both twins; batched = one-by-one predictions; time per image by batch size",
    durations={"quick": 15, "full": 40},
    profiles={
        "tiny": dict(synthetic=True, n_train=200, n_test=150, epochs=1, batch_size=100,
                     timing_batches=[1, 10, 100], timing_images=150),
        "quick": dict(synthetic=False, n_train=None, n_test=None, epochs=1, batch_size=100,
                      timing_batches=[1, 10, 100, 1000, 10000], timing_images=2000),
        "full": dict(synthetic=False, n_train=None, n_test=None, epochs=5, batch_size=100,
                     timing_batches=[1, 3, 10, 30, 100, 300, 1000, 3000, 10000], timing_images=10000),
    },
)
def run(ctx):
    cfg = ctx.config
    data = mnist(ctx)
    recipe = Recipe(
        scratch_model=lambda dtype, rand: MLP(SIZES, "sigmoid", dtype=dtype, generator=rand.init),
        torch_model=lambda dtype, rand: TorchMLP(SIZES, "sigmoid", dtype=dtype),
        optimizer="Adam", optimizer_kwargs=dict(lr=0.001), loss="CrossEntropyLoss", batch_size=100,
        epochs=cfg["epochs"], eval_train=False, label="784-50-100-10 sigmoid")
    results = ctx.train(recipe, data)
    first = results[0]
    models = {impl: first.models[impl].eval() for impl in ("scratch", "torch")}
    models["torch"].cpu()  # inference timing is about this machine's CPU, whatever the training used
    x = np.ascontiguousarray(data.x_test, dtype=ctx.dtype)
    t = data.t_test

    preds, counts, single = {}, {}, {}
    for impl, model in models.items():
        preds[impl], counts[impl] = batched(impl, model, x, t, cfg["batch_size"])
        single[impl] = one_by_one(impl, model, x)
        ctx.log(impl, "accuracy_cnt", counts[impl])
        ctx.log(impl, "batched_vs_one_by_one_mismatches", int(np.sum(preds[impl] != single[impl])))
    logits = {impl: predict_chunked(impl, m, x) for impl, m in models.items()}
    twin_logits = compare_arrays("scores", logits["scratch"], logits["torch"]).scaled
    twin_preds = int(np.sum(preds["scratch"] != preds["torch"]))
    for impl in models:
        ctx.parity(f"{impl}: images where one-by-one and batched predictions differ",
                   int(np.sum(preds[impl] != single[impl])), 0)
    if ctx.mode == "lockstep":
        ctx.parity("test scores, scratch vs torch (scaled)", twin_logits,
                   layer_tolerance(ctx.dtype))
        ctx.parity("test images the twins predict differently", twin_preds, 0)

    # -- time per image by batch size (not in metrics.csv: timings are not determined by the seed) ------
    timing = {impl: {} for impl in models}
    for b in cfg["timing_batches"]:
        if b > len(x):
            continue
        for impl, model in models.items():
            timing[impl][b] = seconds_per_image(impl, model, x, b, cfg["timing_images"])
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for impl, marker in (("scratch", "o-"), ("torch", "x--")):
        bs = sorted(timing[impl])
        ax.plot(bs, [1e6 * timing[impl][b] for b in bs], marker, color=COLORS[impl], label=impl)
    ax.set(xscale="log", yscale="log", xlabel="batch size", ylabel="microseconds per image",
           title=f"inference time per image, 784-50-100-10 sigmoid, {ctx.dtype}, 1 thread")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    plot = ctx.savefig(fig, "time_per_image", "inference time per image by batch size, both twins")
    one = timing["scratch"][min(timing["scratch"])]
    rows = [{"batch size": b, **{f"{impl} us/image": f"{1e6 * timing[impl][b]:.2f}" for impl in models},
             "scratch speed-up over batch 1": f"{one / timing['scratch'][b]:.0f}x"} for b in sorted(timing["scratch"])]

    n = len(t)
    acc = {impl: counts[impl] / n for impl in models}
    ctx.headline(f"accuracy {acc['scratch']:.2%} / {acc['torch']:.2%} (scratch / torch; notes 93.52% with the "
                 f"book's weights); batched = one-by-one; batch 100 is "
                 f"{timing['scratch'][min(timing['scratch'])] / timing['scratch'].get(100, np.nan):.0f}x faster "
                 "per image than batch 1 (scratch)")
    count_rows = [{"": "notes (book's sample_weight.pkl)", "accuracy_cnt": "9352 of 10000", "accuracy": "93.52%"}]
    count_rows += [{"": f"{impl} (trained here, {cfg['epochs']} epoch(s))", "accuracy_cnt": f"{counts[impl]} of {n}",
                    "accuracy": f"{acc[impl]:.2%}"} for impl in models]
    tiny = " The tiny profile trains on generated images: its accuracy means nothing." if ctx.profile == "tiny" else ""
    ctx.section("The notes' accuracy count", f"""\
Batch size {cfg['batch_size']}, argmax of the scores, correct predictions counted, in each twin. The network
is not the book's pickle but the same architecture trained here ({cfg['epochs']} epoch(s) of Adam); the book's
number is quoted for reference.{tiny}

{markdown_table(count_rows)}

**Batched vs one by one.** Each twin's batch loop and its one-image-at-a-time loop predict the same class
for all {n} test images (mismatches: scratch {int(np.sum(preds['scratch'] != single['scratch']))}, torch
{int(np.sum(preds['torch'] != single['torch']))}). The scores themselves can differ in the last bits (a
matrix product and a matrix-vector product add in different orders), never enough to move an argmax here.
The twins' batched predictions differ on {twin_preds} images.
""")
    ctx.section("Time per image by batch size", f"""\
One thread per twin, the whole batch loop timed over at least {cfg['timing_images']} images (one
warm-up batch first). Small batches pay a fixed cost per call (Python, dispatch, allocating the
outputs) and multiply a matrix by a vector; large ones amortise it and let BLAS reuse each weight across
many images: the notes' point that batching relieves the data bus. Timings depend on the machine and
its load and are not in metrics.csv.

{markdown_table(rows)}

![time per image]({plot})
""")
    ctx.keep(accuracy=acc, seconds_per_image={k: {str(b): v for b, v in d.items()} for k, d in timing.items()})
