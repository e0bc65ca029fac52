"""``python -m experiments bench``: time the NumPy twin against the PyTorch twin, write reports/bench/.

Three contestants: the scratch twin on its fast path (the default, "scratch"),
the same code on its plain path ("plain": the formulas as written, no threads,
no layout tricks; docs/paths.md), and torch. plain / scratch is what the fast
path's engineering buys, measured. What is timed, in float32 and float64
(``--dtypes``) at batch 100 (``--batch``):

- layers, forward + backward (input gradient included): Linear(784, 100), the
  Conv2d of both CNNs at their own shapes, MaxPool2d 2x2, BatchNorm1d/2d;
- full training steps, forward + loss + backward + Adam update + zero_grad:
  the MLP 784-100-100-10, SimpleConvNet and DeepConvNet.

How: all in this process, with the same number of threads each
(``--threads``: torch's pool, scratch's batch parts; see experiments.threads;
the plain path uses none of its own), warm-up calls first, then ``--repeats``
rounds that time one call of each, the order rotating from round to round;
the report gives medians. Peak memory is measured per twin in a fresh
subprocess: the rise of the peak resident set size over a few calls, after
the model and data are built (Linux: /proc/self/clear_refs and VmHWM).

The roofline: the matrix-product FLOPs of a step (forward, weight gradients,
input gradients except the first layer's) divided by the float32 matrix-product
rate measured here (the faster of NumPy's and torch's on a 2048^3 product): the
time a step would take if it were only its matrix products at full speed.

With more than one thread the steps are timed once more with one thread per
twin (the report's last step column). The report also profiles the scratch
twin's steps layer by layer (where the time goes). No test asserts a time;
``--quick`` runs everything tiny.

OpenBLAS stays at one thread throughout. When it had two, each of its
multi-threaded products left a thread busy-waiting for about a tenth of a
second, which took one of the two cores from the torch call that followed:
torch's DeepConvNet step measured 107 ms against 62 ms alone, and the ratios
of the reports before scratch.fast.parallel flattered the scratch twin.
"""
import argparse
import csv
import json
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch

from experiments.writing import (OutputError, atomic_dir, check_target, environment, environment_markdown,
                                 markdown_table, runs_dir)
import scratch
import scratch.optim
from experiments.arguments import at_least, machine_count
from experiments.threads import get_threads, threads
from scratch.fast.parallel import blas_threads
from torch_ref.nn import torch_dtype

TARGETS = {"step MLP 784-100-100-10": 0.8, "step SimpleConvNet": 0.5, "step DeepConvNet": 1.0}


# -- cases --------------------------------------------------------------------
@dataclass
class Case:
    name: str
    kind: str  # "layer" or "step"
    build: Callable  # (twin: "scratch" | "plain" | "torch", batch, dtype) -> call; nothing runs before the first call
    flops: Callable  # batch -> matrix-product FLOPs of one call
    notes: str = ""
    model: Callable = field(default=None, repr=False)  # (batch) -> scratch model and inputs, for the profile


TWINS = ("scratch", "plain", "torch")  # scratch: its fast path; plain: its plain path
DTYPES = ("float32", "float64")


def _data(batch: int, shape, seed: int = 0, dtype=np.float32):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((batch,) + tuple(shape)).astype(dtype), rng.integers(0, 10, batch)


def _on_path(twin, call):
    """The call on scratch's plain path for the "plain" twin; as it is for the others."""
    if twin != "plain":
        return call

    def plain_call():
        with scratch.plain():
            call()
    return plain_call


def _layer_case(name, make_scratch, make_torch, in_shape, flops, notes=""):
    def build(twin, batch, dtype=np.float32):
        x, _ = _data(batch, in_shape, dtype=dtype)
        G = []  # the upstream gradient, made at the first call (so that building runs nothing)
        if twin in ("scratch", "plain"):
            m = make_scratch().to(dtype)

            def call():
                out = m(x)
                G or G.append(np.ones_like(out))
                m.backward(G[0])
                m.zero_grad()
        else:
            m = make_torch().to(torch_dtype(dtype))
            xt = torch.tensor(x, requires_grad=True)

            def call():
                out = m(xt)
                G or G.append(torch.ones_like(out))
                out.backward(G[0])
                xt.grad = None
                m.zero_grad()
        return _on_path(twin, call)
    return Case(name, "layer", build, flops, notes)


def _conv_flops(cin, cout, k, out_hw):
    # Forward, weight gradient and input gradient: three products of the same size.
    return lambda n: 3 * 2 * n * out_hw[0] * out_hw[1] * cin * k * k * cout


def layer_cases() -> list:
    import scratch.nn as snn
    from scratch.nn.batchnorm import BatchNorm1d, BatchNorm2d

    cases = [_layer_case("Linear 784->100", lambda: snn.Linear(784, 100), lambda: torch.nn.Linear(784, 100),
                         (784,), lambda n: 3 * 2 * n * 784 * 100)]
    convs = [("SimpleConvNet conv1", 1, 30, 5, 0, 28)]
    channels, size = 1, 28
    for i, (cout, pad) in enumerate([(16, 1), (16, 1), (32, 1), (32, 2), (64, 1), (64, 1)], start=1):
        convs.append((f"DeepConvNet conv{i}", channels, cout, 3, pad, size))
        channels, size = cout, size + 2 * pad - 2
        if i % 2 == 0:
            size //= 2
    for label, cin, cout, k, pad, hw in convs:
        out = hw + 2 * pad - k + 1
        cases.append(_layer_case(
            f"Conv2d {label}", lambda cin=cin, cout=cout, k=k, pad=pad: snn.Conv2d(cin, cout, k, padding=pad),
            lambda cin=cin, cout=cout, k=k, pad=pad: torch.nn.Conv2d(cin, cout, k, padding=pad),
            (cin, hw, hw), _conv_flops(cin, cout, k, (out, out)), f"{cin}->{cout}, {k}x{k}, pad {pad}, {hw}x{hw}"))
    for label, shape in [("SimpleConvNet pool", (30, 24, 24)), ("DeepConvNet pool1", (16, 28, 28))]:
        cases.append(_layer_case(f"MaxPool2d {label}", lambda: snn.MaxPool2d(2), lambda: torch.nn.MaxPool2d(2),
                                 shape, lambda n: 0, f"2x2 on {shape}"))
    cases.append(_layer_case("BatchNorm1d 100", lambda: BatchNorm1d(100), lambda: torch.nn.BatchNorm1d(100),
                             (100,), lambda n: 0))
    cases.append(_layer_case("BatchNorm2d 16x28x28", lambda: BatchNorm2d(16), lambda: torch.nn.BatchNorm2d(16),
                             (16, 28, 28), lambda n: 0))
    return cases


def _models(name):
    from scratch.models import convnets as S
    from scratch.models import multilayer as SM
    from torch_ref.models import convnets as T
    from torch_ref.models import multilayer as TM

    if name == "MLP 784-100-100-10":
        return ((lambda: SM.MultiLayerNet(784, [100, 100], 10, generator=np.random.default_rng(0))),
                (lambda: TM.MultiLayerNet(784, [100, 100], 10)), (784,))
    if name == "SimpleConvNet":
        return ((lambda: S.SimpleConvNet(generator=np.random.default_rng(0))), T.SimpleConvNet, (1, 28, 28))
    return ((lambda: S.DeepConvNet(generator=np.random.default_rng(0))), T.DeepConvNet, (1, 28, 28))


def matmul_flops(model, x) -> int:
    """Matrix-product FLOPs of one training step of a scratch model on ``x``.

    Per Linear/Conv2d layer, the forward product, the weight gradient and (for
    every layer but the first, whose input needs no gradient) the input gradient.
    """
    from scratch.nn import Conv2d, Linear

    total, first = 0, True
    for layer in model.layers:
        y = layer(x)
        if isinstance(layer, Linear):
            one = 2 * x.shape[0] * layer.in_features * layer.out_features
        elif isinstance(layer, Conv2d):
            kh, kw = layer.kernel_size
            one = 2 * y.size * (layer.in_channels // layer.groups) * kh * kw
        else:
            x = y
            continue
        total += one * (2 if first else 3)
        first = False
        x = y
    return total


def _step_case(name):
    make_scratch, make_torch, in_shape = _models(name)

    def build(twin, batch, dtype=np.float32):
        x, t = _data(batch, in_shape, dtype=dtype)
        if twin in ("scratch", "plain"):
            model = make_scratch().to(dtype)
            opt = scratch.optim.Adam(model.parameters(), lr=1e-3)

            def call():
                model.loss(x, t)
                model.loss_backward()
                opt.step()
                opt.zero_grad()
        else:
            model = make_torch().to(torch_dtype(dtype))
            opt = torch.optim.Adam(model.parameters(), lr=1e-3)
            xt, tt = torch.tensor(x), torch.tensor(t)

            def call():
                opt.zero_grad()
                model.loss(xt, tt).backward()
                opt.step()
        return _on_path(twin, call)

    def scratch_model(batch):
        x, t = _data(batch, in_shape)
        return make_scratch(), x, t

    def flops(batch):
        model, x, _ = scratch_model(batch)
        return matmul_flops(model, x)

    return Case(f"step {name}", "step", build, flops, "forward, loss, backward, Adam, zero_grad", scratch_model)


def all_cases() -> list:
    return layer_cases() + [_step_case(n) for n in ("MLP 784-100-100-10", "SimpleConvNet", "DeepConvNet")]


# -- measuring ----------------------------------------------------------------
def time_calls(calls: dict, repeats: int, warmup: int):
    """Median and best seconds per call of each of ``calls`` (name -> call), the order rotating each round.

    The median is the figure of record; the best is shown beside it, because on
    a shared machine it is the one least touched by other processes.
    """
    for _ in range(warmup):
        for call in calls.values():
            call()
    times = {name: [] for name in calls}
    order = list(calls.items())
    for r in range(repeats):
        for name, call in order[r % len(order):] + order[:r % len(order)]:
            t0 = time.perf_counter()
            call()
            times[name].append(time.perf_counter() - t0)
    return ({name: statistics.median(ts) for name, ts in times.items()},
            {name: min(ts) for name, ts in times.items()})


def matmul_rate(n: int = 2048, repeats: int = 5) -> dict:
    """Float32 matrix-product rate (FLOP/s) of NumPy and of torch, best of ``repeats``."""
    a = np.random.default_rng(0).standard_normal((n, n)).astype(np.float32)
    at = torch.tensor(a)
    rates = {}
    for lib, fn in (("numpy", lambda: a @ a), ("torch", lambda: at @ at)):
        fn()
        best = min(_timed(fn) for _ in range(repeats))
        rates[lib] = 2 * n ** 3 / best
    return rates


def _timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def _status_kib(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise OSError(f"{field} not in /proc/self/status")


def memory_child(case_name: str, twin: str, batch: int, n_threads: int) -> int:
    """Peak RSS growth (bytes) over 3 calls of one twin's case, in this process (run it in a fresh one).

    Linux keeps the peak resident set (VmHWM) and resets it to the current
    one when "5" is written to /proc/self/clear_refs: the peak during the calls
    minus the resident set before them is what the calls needed on top of the
    model and data (imports and setup, with their own peaks, are left out).
    """
    with threads(n_threads):
        case = next(c for c in all_cases() if c.name == case_name)
        call = case.build(twin, batch)
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        before = _status_kib("VmRSS")
        for _ in range(3):
            call()
        # The kernel refreshes VmHWM when memory is unmapped; memory still held counts through VmRSS.
        peak = max(_status_kib("VmHWM"), _status_kib("VmRSS"))
    return max(peak - before, 0) * 1024


def peak_memory(case_name: str, twin: str, batch: int, n_threads: int):
    code = ("import sys; from experiments.bench import memory_child; "
            f"print(memory_child({case_name!r}, {twin!r}, {batch}, {n_threads}))")
    try:
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
        return int(out.stdout.strip().splitlines()[-1])
    except (subprocess.SubprocessError, ValueError, IndexError):  # no /proc (not Linux): no figure
        return None


def profile_scratch(case: Case, batch: int, repeats: int) -> list:
    """Median milliseconds per top-level layer (forward and backward) and for the Adam step, scratch twin."""
    model, x, t = case.model(batch)
    opt = scratch.optim.Adam(model.parameters(), lr=1e-3)
    spent = {}

    def wrap(name, fn):
        def timed(*a):
            t0 = time.perf_counter()
            out = fn(*a)
            spent.setdefault(name, []).append(time.perf_counter() - t0)
            return out
        return timed

    for name, layer in model.layers.named_children():
        object.__setattr__(layer, "forward", wrap(f"{name} forward", layer.forward))
        object.__setattr__(layer, "backward", wrap(f"{name} backward", layer.backward))
    loss_layer = model.last_layer
    object.__setattr__(loss_layer, "forward", wrap("loss forward", loss_layer.forward))
    object.__setattr__(loss_layer, "backward", wrap("loss backward", loss_layer.backward))
    step = wrap("Adam step", opt.step)
    for _ in range(repeats + 1):
        model.loss(x, t)
        model.loss_backward()
        step()
        opt.zero_grad()
    rows = [(name, statistics.median(ts[1:]) * 1e3) for name, ts in spent.items()]
    total = sum(ms for _, ms in rows)
    rows.sort(key=lambda r: -r[1])
    return [{"part": name, "ms": ms, "share": ms / total} for name, ms in rows]


# -- the command --------------------------------------------------------------
def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--batch", type=at_least(1), default=100, help="batch size (default 100)")
    parser.add_argument("--threads", type=machine_count, default=None,
                        help="threads for each twin, torch and NumPy's OpenBLAS alike (default: torch's default)")
    parser.add_argument("--repeats", type=at_least(1), default=21, help="timed rounds per case; medians reported")
    parser.add_argument("--warmup", type=at_least(0), default=3, help="untimed calls of each twin first")
    parser.add_argument("--only", nargs="*", default=None, help="case names containing any of these words")
    parser.add_argument("--dtypes", nargs="+", choices=DTYPES, default=list(DTYPES),
                        help="the dtypes to time every case in (default: float32 float64)")
    parser.add_argument("--no-memory", action="store_true", help="skip the peak-memory subprocesses")
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: batch 2, 2 repeats, 1 warm-up, no memory, short profile")
    parser.add_argument("--out", default=None, help="report folder (default runs/bench, ignored by git; "
                                                    "--out reports/bench regenerates the reference)")


def main(args) -> int:
    if args.quick:
        args.batch, args.repeats, args.warmup, args.no_memory = 2, 2, 1, True
    out = args.out or runs_dir() / "bench"
    try:
        check_target(out)  # before the timings run: a folder this tool does not own is refused
    except OutputError as e:
        raise SystemExit(f"experiments bench: error: {e}") from None
    n_threads = args.threads or torch.get_num_threads()
    cases = all_cases()
    if args.only:
        chosen = [c for c in cases if any(w.lower() in c.name.lower() for w in args.only)]
        if not chosen:  # rather than an empty report in place of the last one
            raise SystemExit(f"experiments bench: --only {' '.join(args.only)} matches no case; the cases are: "
                             + ", ".join(c.name for c in cases))
        cases = chosen
    rows, profiles = [], {}
    with threads(n_threads):
        used = get_threads()
        env = environment()  # inside, so that torch_threads says what the timings ran with
        with blas_threads(n_threads):  # the machine's rate, on as many cores as torch's
            rates = matmul_rate(256 if args.quick else 2048)
        peak = max(rates.values())
        for case in cases:
            flops = case.flops(args.batch)
            for dtype in args.dtypes:
                med, best = time_calls({twin: case.build(twin, args.batch, np.dtype(dtype)) for twin in TWINS},
                                       args.repeats, args.warmup)
                row = {"case": case.name, "dtype": dtype, "kind": case.kind, "notes": case.notes,
                       "scratch_ms": med["scratch"] * 1e3, "plain_ms": med["plain"] * 1e3,
                       "torch_ms": med["torch"] * 1e3, "ratio": med["scratch"] / med["torch"],
                       "plain_ratio": med["plain"] / med["torch"], "fast_speedup": med["plain"] / med["scratch"],
                       "target": TARGETS.get(case.name, "") if dtype == "float32" else "",
                       "scratch_best_ms": best["scratch"] * 1e3, "torch_best_ms": best["torch"] * 1e3,
                       "best_ratio": best["scratch"] / best["torch"],
                       "gflop": flops / 1e9 if flops else 0.0,
                       "roofline_ms": flops / peak * 1e3 if flops and dtype == "float32" else 0.0}
                if row["roofline_ms"]:
                    row["scratch_x_roofline"] = row["scratch_ms"] / row["roofline_ms"]
                    row["torch_x_roofline"] = row["torch_ms"] / row["roofline_ms"]
                rows.append(row)
                print(f"{case.name:34s} {dtype}  scratch {row['scratch_ms']:8.2f} ms  plain {row['plain_ms']:8.2f} ms"
                      f"  torch {row['torch_ms']:8.2f} ms  ratio {row['ratio']:.2f}", flush=True)
            if case.kind == "step" and "float32" in args.dtypes:
                profiles[case.name] = profile_scratch(case, args.batch, 2 if args.quick else 7)
    if n_threads > 1:
        # The steps once more with one thread each: how much of a ratio is the twins' use of a second core.
        with threads(1):
            by_name = {c.name: c for c in cases}
            for row in rows:
                if row["kind"] == "step":
                    build = by_name[row["case"]].build
                    med, _ = time_calls({twin: build(twin, args.batch, np.dtype(row["dtype"])) for twin in TWINS},
                                        args.repeats, args.warmup)
                    row["ratio_1_thread"] = med["scratch"] / med["torch"]
                    row["plain_ratio_1_thread"] = med["plain"] / med["torch"]
                    row["scratch_ms_1_thread"], row["plain_ms_1_thread"], row["torch_ms_1_thread"] = (
                        med[t] * 1e3 for t in TWINS)
                    print(f"{row['case']:34s} {row['dtype']} on one thread: ratio {row['ratio_1_thread']:.2f}, "
                          f"plain {row['plain_ratio_1_thread']:.2f}", flush=True)
    if not args.no_memory:
        for row in rows:
            if row["dtype"] != "float32":
                continue
            for twin in ("scratch", "torch"):
                mem = peak_memory(row["case"], twin, args.batch, n_threads)
                row[f"{twin}_peak_MiB"] = mem / 2**20 if mem is not None else ""
    write_report(args, rows, profiles, rates, used, env)
    return 0


def _blas() -> str:
    try:
        blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        return f"{blas.get('name')} {blas.get('version')} ({blas.get('openblas configuration', '').strip()})"
    except Exception:  # noqa: BLE001 - the description is best effort
        return "unknown"


def write_report(args, rows, profiles, rates, used, env) -> None:
    env = dict(env)
    env.update({
        "numpy_blas": _blas(),
        "torch_parallel": torch.__config__.parallel_info().splitlines()[-1].strip(),
        "torch_mkldnn": torch.backends.mkldnn.is_available(),
        "threads_used": json.dumps(used),
        "float32_matmul_GFLOPs": json.dumps({k: round(v / 1e9, 1) for k, v in rates.items()}),
    })
    columns = ["case", "dtype", "kind", "notes", "scratch_ms", "plain_ms", "torch_ms", "ratio", "plain_ratio",
               "fast_speedup", "target", "scratch_best_ms", "torch_best_ms", "best_ratio", "ratio_1_thread",
               "plain_ratio_1_thread", "scratch_ms_1_thread", "plain_ms_1_thread", "torch_ms_1_thread", "gflop",
               "roofline_ms", "scratch_x_roofline", "torch_x_roofline", "scratch_peak_MiB", "torch_peak_MiB"]
    with atomic_dir(args.out or runs_dir() / "bench") as tmp:
        with open(tmp / "bench.csv", "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=columns, extrasaction="ignore")
            writer.writeheader()
            writer.writerows(rows)
        _bar_chart(rows, tmp / "ratios.png")
        (tmp / "report.md").write_text(_markdown(args, rows, profiles, env, columns))


def _bar_chart(rows, path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(15, 0.3 * len(rows) / 2 + 2), sharey=True)
    for ax, dtype in zip(axes, DTYPES):
        mine = [r for r in rows if r["dtype"] == dtype][::-1]
        y = np.arange(len(mine))
        ax.barh(y + 0.2, [r["plain_ratio"] for r in mine], 0.4, color="tab:gray", label="plain path / torch")
        ax.barh(y - 0.2, [r["ratio"] for r in mine], 0.4, label="fast path / torch",
                color=["tab:green" if r["ratio"] <= (r["target"] or 1.0) else "tab:red" for r in mine])
        for i, r in enumerate(mine):
            if r["target"]:
                ax.plot([r["target"]] * 2, [i - 0.4, i + 0.4], color="tab:blue", lw=2)
        ax.axvline(1.0, color="black", lw=1)
        ax.set_yticks(y, [r["case"] for r in mine])
        ax.set_xscale("log")
        ax.set_xlabel("scratch time / torch time (log; < 1: NumPy twin faster; blue ticks: targets)")
        ax.set_title(f"{dtype}, same threads")
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _three_way(r) -> dict:
    """A row's plain, fast and torch times and ratios, for the report's tables."""
    return {"case": r["case"], "dtype": r["dtype"], "plain ms": r["plain_ms"], "scratch ms": r["scratch_ms"],
            "torch ms": r["torch_ms"], "ratio": r["ratio"], "plain ratio": r["plain_ratio"],
            "fast speedup": r["fast_speedup"]}


def _markdown(args, rows, profiles, env, columns) -> str:
    steps = [r for r in rows if r["kind"] == "step"]
    lines = [
        "# Benchmark: the NumPy twin against PyTorch on the CPU",
        "",
        f"{' and '.join(args.dtypes)}, batch {args.batch}, median of {args.repeats} interleaved rounds after "
        f"{args.warmup} warm-up calls, everything in one process with the same threads. Three contestants: "
        "scratch on its fast path ('scratch', the default), scratch on its plain path ('plain': each layer's "
        "formula as written, no threads, no layout tricks; docs/paths.md) and torch; 'fast speedup' = plain / "
        "scratch is what the fast path's engineering buys. Layers: forward + backward (input gradient "
        "included). Steps: forward, loss, backward, Adam update, zero_grad. Peak memory (float32): rise of the "
        "peak resident set over 3 calls in a fresh process (model and data already built).",
        "",
        f"Threads: {env.get('threads_used')} — torch's pool, scratch's batch parts (scratch.fast.parallel), NumPy's "
        "OpenBLAS. OpenBLAS stays on one thread: on more, its idle threads busy-wait after every product and "
        "take cores from the twin timed next (reports before 2026-11-28 timed torch up to twice as slow as it "
        "runs alone).",
        "",
        "## Training steps: plain, fast and torch",
        "",
        markdown_table([dict(_three_way(r), **{
            "target": r["target"], "met": ("yes" if r["ratio"] <= r["target"] else "no") if r["target"] else "",
            "best-of ratio": r["best_ratio"], "ratio, 1 thread each": r.get("ratio_1_thread", ""),
            "plain ratio, 1 thread": r.get("plain_ratio_1_thread", "")}) for r in steps]),
        "(Medians; ratios divide by torch's time. 'best-of ratio' divides the fastest calls, the figure least "
        "disturbed by other processes on a shared machine; the last two columns time the steps again with one "
        "thread each. The float32 targets of the CNN issue (#8) are out of NumPy's reach: see the README's "
        "performance section; today's ratios are the regression bounds.)",
        "",
        "## Layers: plain, fast and torch",
        "",
        markdown_table([_three_way(r) for r in rows if r["kind"] == "layer"]),
        "",
        "## Roofline",
        "",
        "Matrix-product FLOPs of a step / the measured float32 matmul rate "
        f"({env['float32_matmul_GFLOPs']} GFLOP/s; the faster is used): the time of the products alone at full "
        "speed. 'x roofline' is how many times that each twin takes; the rest is memory traffic "
        "(im2col, pooling, elementwise layers, the optimizer) and overhead.",
        "",
        markdown_table([{"case": r["case"], "GFLOP": r["gflop"], "roofline ms": r["roofline_ms"],
                         "scratch x roofline": r.get("scratch_x_roofline", ""),
                         "torch x roofline": r.get("torch_x_roofline", "")} for r in rows if r["roofline_ms"]]),
        "## All cases",
        "",
        markdown_table(rows, [c for c in columns if c not in ("kind",)]),
        "![scratch/torch time ratios, plain and fast path](ratios.png)",
        "",
        "## Where the scratch time goes",
        "",
        "Median ms per part of one float32 training step on the fast path, largest first (the layers' own "
        "forward and backward, the loss, the Adam update).",
        "",
    ]
    for name, prof in profiles.items():
        kinds = {}
        for part in prof:
            kind = part["part"].split()[0].rstrip("0123456789").replace("Activation_function", "activation")
            kinds[kind] = kinds.get(kind, 0.0) + part["share"]
        summary = ", ".join(f"{kind} {share:.0%}" for kind, share in sorted(kinds.items(), key=lambda kv: -kv[1]))
        lines += [f"### {name}", "", f"By kind of layer: {summary}.", "", markdown_table(prof[:12]), ""]
    lines += ["## Environment", "", environment_markdown(env)]
    return "\n".join(lines)
