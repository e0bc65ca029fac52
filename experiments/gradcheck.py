"""``python -m experiments gradcheck``: every scratch layer against torch autograd and central differences.

For each layer of ``experiments.layer_cases`` it draws random configurations
(shapes, options, values), compares forward, input gradient, parameter
gradients and buffers with PyTorch in float64 and float32, and compares the
backprop with central differences in float64: on the fast path and on the
plain one, and the two paths with each other. It prints one line per layer and
check, writes ``reports/gradcheck/`` (report.md, records.csv with every tensor
of every configuration) and exits with 1 if anything is out of tolerance.
"""
import csv
import time
import warnings

import numpy as np

from experiments import layer_cases
from experiments.compare import TOLERANCE, layer_tolerance
from experiments.shadow import (AS_ACCURATE, CONFIDENCE, FLOAT32_RESOLUTION, INCONCLUSIVE, RESAMPLES,
                                error_ratio, interval_verdict, median_interval, settle_text, steps_to_settle)
from experiments.writing import (OutputError, atomic_dir, check_target, environment_markdown, markdown_table,
                                 runs_dir, tolerance_text)
from experiments.arguments import at_least

# name: (what against, dtype, scratch's path: True the fast one, False the plain one; docs/paths.md)
CHECKS = {
    "torch float64": ("torch", np.float64, True),
    "torch float32": ("torch", np.float32, True),
    "numerical float64": ("numerical", np.float64, True),
    "plain: torch float64": ("torch", np.float64, False),
    "plain: torch float32": ("torch", np.float32, False),
    "plain: numerical float64": ("numerical", np.float64, False),
    "plain = fast float64": ("paths", np.float64, None),
}


def add_arguments(parser):
    parser.add_argument("--layers", nargs="+", metavar="NAME",
                        help="layers to check (default: all); valid: " + ", ".join(layer_cases.CASES))
    parser.add_argument("--configs", type=at_least(1), default=10,
                        help="random configurations per layer and check (10)")
    parser.add_argument("--seed", type=at_least(0), default=0, help="seed of the random configurations (0)")
    parser.add_argument("--dtype", choices=("float64", "float32"), default=None,
                        help="only the checks in this dtype (default: both); float32 reports each twin's error "
                             "against torch float64 and their ratio")
    parser.add_argument("--out", default=None,
                        help="reports folder (default runs/, ignored by git; --out reports regenerates the reference)")


def run_checks(names, configs: int, seed: int, dtype=None) -> list:
    """One row per (layer, check, configuration, tensor); ``dtype`` ("float64", "float32") keeps those checks."""
    with warnings.catch_warnings():
        # torch warns that padding='same' with an even kernel copies the input: the Conv2d cases draw that
        # configuration on purpose, and the warning would read as a problem found by the check
        warnings.filterwarnings("ignore", message="Using padding='same' with even kernel", category=UserWarning)
        return _run_checks(names, configs, seed, dtype)


def _run_checks(names, configs, seed, dtype) -> list:
    rows = []
    for name in names:
        case = layer_cases.CASES[name]
        for check, (against, check_dtype, fast) in CHECKS.items():
            if (against == "numerical" and not case.numerical) or (dtype and np.dtype(check_dtype) != dtype):
                continue
            rng = np.random.default_rng([seed, len(rows)])
            for i in range(configs):
                row = dict(layer=name, check=check, config=i)
                if against == "numerical":
                    description, records = layer_cases.check_against_numerical(case, rng, fast=fast)
                    rows += [dict(row, description=description, tensor=r["name"], shape=str(r["shape"]),
                                  max_abs=r["max_abs"], error=r["scaled"], tolerance=TOLERANCE["numerical"],
                                  where=str(r["where"])) for r in records]
                elif against == "paths":
                    description, records = layer_cases.check_paths(case, rng, check_dtype)
                    rows += [dict(row, description=description, tensor=r.tensor, shape=str(r.shape),
                                  max_abs=r.max_abs, error=r.scaled, tolerance=layer_cases.PATHS_TOLERANCE,
                                  where=str(r.where)) for r in records]
                else:
                    description, records, tol = layer_cases.check_against_torch(case, rng, check_dtype, fast=fast)
                    rows += [dict(row, description=description, tensor=r.tensor, shape=str(r.shape),
                                  max_abs=r.max_abs, error=r.scaled, tolerance=tol, where=str(r.where),
                                  float64_error=r.float64_error, torch_float64_error=r.torch_float64_error,
                                  ratio_vs_float64=float32_error_ratio(r) if check_dtype == np.float32 else float("nan"),
                                  ok=r.ok(tol)) for r in records]
    for r in rows:
        r.setdefault("ok", r["error"] <= r["tolerance"])
    return rows


def float32_error_ratio(record) -> float:
    """float32: scratch's error against torch float64 / torch's float32 error against it, each counted as at
    least float32's eps times the tensor's scale (below that two float32 results cannot be told apart)."""
    if record.scaled == 0:
        return 1.0  # the same values as torch's float32, so the same distance from the exact answer
    scale = record.max_abs / record.scaled
    return float(error_ratio(record.float64_error, record.torch_float64_error, FLOAT32_RESOLUTION * scale))


def float32_rows(rows) -> list:
    """Per layer and float32 check: each twin against torch float64, the median ratio, its ``CONFIDENCE``
    interval and the verdict it supports (experiments.shadow's rule: the interval within [0.5, 2] "as
    accurate", straddling 0.5 or 2 "inconclusive"), keyed in the order of the report's table.

    The interval is ``shadow.median_interval``'s cluster bootstrap over configurations: configurations
    are independent draws, while a configuration's tensors share its shapes, options and input values
    and their log ratios can be correlated (in the committed reports/gradcheck the variance of the
    per-configuration means is up to ~4x what independent tensors would give, BatchNorm1d's); resampling
    tensors one by one would make the interval too narrow there. ``configs_to_settle``: for an
    inconclusive row, about how many configurations would settle it (``shadow.steps_to_settle``, None
    otherwise). One configuration has no interval (NaN) and reads inconclusive.
    """
    groups = {}
    for r in rows:
        if not np.isnan(r.get("ratio_vs_float64", float("nan"))):
            groups.setdefault((r["layer"], r["check"]), []).append(r)
    out = []
    for (layer, check), group in groups.items():
        ratios = np.array([r["ratio_vs_float64"] for r in group])
        configs = [r["config"] for r in group]
        median = float(np.median(ratios))
        n = len(set(configs))
        if n > 1:
            low, high, _ = median_interval(ratios, clusters=configs)
            word = interval_verdict(low, high)
        else:  # resampling one configuration gives it back: no interval, and no verdict without one
            low, high, word = float("nan"), float("nan"), INCONCLUSIVE
        out.append(dict(layer=layer, check=check, configs=n, tensors=len(group),
                        scratch_vs_float64=max(r["float64_error"] for r in group),
                        torch_vs_float64=max(r["torch_float64_error"] for r in group),
                        median_ratio=median, ci_low=low, ci_high=high, worst_ratio=float(ratios.max()),
                        verdict=word,
                        configs_to_settle=steps_to_settle(median, low, high, n) if word == INCONCLUSIVE and n > 1
                        else None))
    return out


def verdict_text(row) -> str:
    """A float32 row's verdict, an inconclusive one with how many configurations would settle it."""
    if row["verdict"] != INCONCLUSIVE:
        return row["verdict"]
    if row["configs"] < 2:
        return f"{INCONCLUSIVE}: one configuration has no interval (--configs 2 or more)"
    return f"{INCONCLUSIVE}: {settle_text(row['configs_to_settle'], 'configurations')}"


def interval_cell(row, digits: int = 3) -> str:
    """A float32 row's interval, "[low, high]", or "none" (one configuration)."""
    if np.isnan(row["ci_low"]):
        return "none"
    return f"[{row['ci_low']:.{digits}g}, {row['ci_high']:.{digits}g}]"


def float32_table(f32) -> str:
    """The float32 rows as the reports show them (gradcheck's report.md, the gradient_check experiment)."""
    interval = f"{CONFIDENCE:.0%} interval"
    return markdown_table([dict(r, **{interval: interval_cell(r), "verdict": verdict_text(r)}) for r in f32],
                          ["layer", "check", "configs", "tensors", "scratch_vs_float64", "torch_vs_float64",
                           "median_ratio", interval, "worst_ratio", "verdict"])


FLOAT32_VERDICT_RULE = (
    f"The verdict rests on a {CONFIDENCE:.0%} interval of the median ratio: a bootstrap over the "
    f"configurations ({RESAMPLES} resamples, each drawing as many configurations as were run, with "
    "replacement, and taking the median of their tensors' ratios; the tensors of one configuration are "
    f"correlated, the configurations independent). Within [{AS_ACCURATE[0]:g}, {AS_ACCURATE[1]:g}] it reads "
    f"\"as accurate\", above {AS_ACCURATE[1]:g} \"less accurate\", below {AS_ACCURATE[0]:g} \"more accurate\"; an "
    f"interval that straddles {AS_ACCURATE[0]:g} or {AS_ACCURATE[1]:g} reads \"inconclusive\", with about how "
    "many configurations would settle it (docs/design.md, \"Float32 parity\").")


def summarise(rows) -> list:
    """One line per (layer, check): its worst row, its configurations and its verdict."""
    groups = {}
    for r in rows:
        groups.setdefault((r["layer"], r["check"]), []).append(r)
    summary = []
    for (layer, check), group in groups.items():
        w = max(group, key=lambda r: r["error"])
        summary.append(dict(layer=layer, check=check, configs=len({r["config"] for r in group}),
                            worst_tensor=w["tensor"], max_abs=w["max_abs"], error=w["error"],
                            tolerance=w["tolerance"], result="ok" if all(r["ok"] for r in group) else "FAIL",
                            beyond_scale=sum(not (r["error"] <= r["tolerance"]) for r in group)))
    return summary


def write_report(out, rows, summary, args, seconds) -> None:
    failures = [r for r in rows if not r["ok"]]
    with atomic_dir(out) as tmp:
        with open(tmp / "records.csv", "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(dict.fromkeys(k for r in rows for k in r)))
            writer.writeheader()
            writer.writerows(rows)
        text = [
            "# Gradient check: every scratch layer against torch autograd and central differences\n",
            f"{len(summary)} layer checks, {len(rows)} tensors compared in {seconds:.1f} s: "
            + ("**all within tolerance**." if not failures else f"**{len(failures)} out of tolerance**.") + "\n",
            "Each layer runs on both of scratch's paths (docs/paths.md): the fast one (the checks without a "
            "prefix) and the plain one ('plain:'), and 'plain = fast' compares the two paths with each other "
            f"(every tensor, float64, tolerance {tolerance_text(layer_cases.PATHS_TOLERANCE)} scaled: the same formula, "
            "sums in other orders).\n",
            "Error measure: against torch, the largest absolute difference divided by the largest |value| of the "
            f"reference tensor (docs/design.md tolerances {tolerance_text(layer_tolerance(np.float64))} in float64, "
            f"{tolerance_text(layer_tolerance(np.float32))} in float32); against central "
            "differences (h = 1e-6, float64), the largest absolute difference divided by the largest |numerical "
            f"gradient| (tolerance {tolerance_text(TOLERANCE['numerical'])}). Each row is the worst tensor over all random configurations. In float32, "
            "where a result is a small difference of large terms (a saturated softmax), both twins return round-off; "
            "such a tensor also passes when its error against the exact answer (torch in float64 on the same "
            "rounded inputs) is within twice PyTorch's own float32 error (`records.csv`: float64_error, "
            "torch_float64_error).\n",
            f"Configurations per check: {args.configs}; seed: {args.seed}. Every tensor of every configuration "
            "is in `records.csv`.\n",
            "## Results\n",
            markdown_table(summary, ["layer", "check", "configs", "worst_tensor", "max_abs", "error", "tolerance",
                                     "beyond_scale", "result"]),
        ]
        f32 = float32_rows(rows)
        if f32:
            text += ["\n## Float32: each twin against the exact answer\n",
                     "Both twins in float32 against torch in float64 on the same float32 inputs and weights: the "
                     "largest absolute error of each (`scratch_vs_float64`, `torch_vs_float64`) and, tensor by "
                     "tensor, scratch's error / torch's (each at least float32's eps times the tensor's scale), "
                     "their median and worst. " + FLOAT32_VERDICT_RULE + "\n",
                     float32_table(f32)]
        if failures:
            text += ["\n## Out of tolerance\n", markdown_table(failures[:50], ["layer", "check", "description",
                                                                                 "tensor", "error", "where"])]
        text += ["\n## Environment\n", environment_markdown(),
                 "\nRegenerate with `python -m experiments gradcheck`.\n"]
        (tmp / "report.md").write_text("\n".join(text))


def main(args) -> int:
    from pathlib import Path

    names = args.layers or list(layer_cases.CASES)
    unknown = [n for n in names if n not in layer_cases.CASES]
    if unknown:
        raise SystemExit(f"experiments gradcheck: unknown layer(s) {', '.join(unknown)}; "
                         f"valid: {', '.join(layer_cases.CASES)}; for your own layers: "
                         "python -m experiments check PATH.py")
    if args.configs < 1:
        raise SystemExit("experiments gradcheck: --configs must be >= 1")
    out = Path(args.out or runs_dir()) / "gradcheck"
    try:
        check_target(out)  # before the checks run: a folder this tool does not own is refused
    except OutputError as e:
        raise SystemExit(f"experiments gradcheck: error: {e}") from None
    start = time.perf_counter()
    rows = run_checks(names, args.configs, args.seed, args.dtype)
    seconds = time.perf_counter() - start
    summary = summarise(rows)
    f32 = {(r["layer"], r["check"]): r for r in float32_rows(rows)}
    print(f"{'layer':20s} {'check':24s} {'configs':>7s} {'worst tensor':16s} {'error':>9s} {'tol':>7s}  result")
    for s in summary:
        f = f32.get((s["layer"], s["check"]))
        vs64 = "" if f is None else (f"   vs float64, scratch / torch: {f['median_ratio']:.2f} "
                                     f"{interval_cell(f)} ({verdict_text(f)})")
        print(f"{s['layer']:20s} {s['check']:24s} {s['configs']:7d} {s['worst_tensor']:16s} "
              f"{s['error']:9.2e} {s['tolerance']:7.0e}  {s['result']}{vs64}")
    write_report(out, rows, summary, args, seconds)
    bad = sum(s["result"] != "ok" for s in summary)
    verdicts = [f["verdict"] for f in f32.values()]
    float32 = "" if not verdicts else ("; float32 against torch float64, scratch / torch: " + ", ".join(
        f"{verdicts.count(v)} {v}" for v in dict.fromkeys(sorted(verdicts))))
    print(f"\n{len(summary) - bad}/{len(summary)} checks within tolerance{float32}; report written to {out}/report.md")
    return 1 if bad else 0
