"""What a run leaves behind: metrics.csv, summary.json, plots, report.md, and the index.

Layout (docs/design.md, "Reports"):

    reports/README.md                   one row per experiment, its headline figures
    reports/<name>/metrics.csv          long format: experiment, impl, mode, seed, step, epoch, metric, value
    reports/<name>/summary.json         config, environment, final metrics, parity, timings
    reports/<name>/*.png                the twins overlaid, their difference on a log scale
    reports/<name>/report.md            all of it, readable

metrics.csv holds only what the seed determines (no timings), written with
``repr`` floats, so a re-run with the same seed writes the same file byte for
byte. The runner writes a report inside ``experiments.writing.atomic_dir``: it
appears whole or not at all.
"""
import csv
import json
import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from experiments.shadow import AS_ACCURATE, claim, comparison, error_ratio_verdict, interval_text  # noqa: E402
from experiments.writing import MARKER, OutputError, environment_markdown, owns, write_text_atomic  # noqa: E402
from torch_ref.precision import describe as describe_device  # noqa: E402
from experiments.writing import markdown_table  # noqa: E402,F401  (the experiments take it from here too)

COLUMNS = ("experiment", "impl", "mode", "seed", "step", "epoch", "metric", "value")
DRIFT_MARKS = (1e-6, 1e-4, 1e-2)  # float32 lockstep: when the relative loss difference first passes each
COLORS = {"scratch": "tab:blue", "torch": "tab:orange", "diff": "tab:red", "book": "tab:green"}


# -- metrics -----------------------------------------------------------------------
class Recorder:
    """Rows of metrics.csv, in the order they were logged."""

    def __init__(self):
        self.rows = []

    def log(self, experiment, impl, mode, seed, step, epoch, metric, value):
        self.rows.append((experiment, impl, mode, seed, step, epoch, metric, value))

    def write_csv(self, path):
        with open(path, "w", newline="") as f:
            w = csv.writer(f, lineterminator="\n")
            w.writerow(COLUMNS)
            for row in self.rows:
                w.writerow([_cell(v) for v in row])


def _cell(v):
    if v is None:
        return ""
    if isinstance(v, (float, np.floating)):
        return repr(float(v))
    if isinstance(v, np.integer):
        return int(v)
    return v


def jsonable(obj):
    """NumPy scalars and arrays, tuples and non-finite floats made JSON-safe."""
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return jsonable(obj.tolist())
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        f = float(obj)
        return f if math.isfinite(f) else str(f)
    if isinstance(obj, np.dtype) or isinstance(obj, type):
        return str(obj)
    return obj


# -- numbers for tables ---------------------------------------------------------------
def fmt(v, digits=4) -> str:
    if v is None:
        return "-"
    if isinstance(v, str):
        return v
    v = float(v)
    if v == 0:
        return "0"
    if not math.isfinite(v):
        return str(v)
    if 1e-3 <= abs(v) < 1e5:
        return f"{v:.{digits}g}"
    return f"{v:.2e}"


def result_rows(results) -> list:
    """Side-by-side final metrics. Lockstep: one row per metric with both twins and |difference|;
    independent: mean +- standard deviation over the seeds."""
    rows = []
    by_label = {}
    for r in results:
        by_label.setdefault((r.label, r.mode), []).append(r)
    for (label, mode), rs in by_label.items():
        metrics = [k for k in rs[0].final.get("scratch", {})]
        for k in metrics:
            if mode == "lockstep":
                a, b = rs[0].final["scratch"].get(k), rs[0].final["torch"].get(k)
                diff = None if a is None or b is None else abs(a - b)
                rows.append({"model": label, "metric": k, "scratch": fmt(a, 6), "torch": fmt(b, 6),
                             "|difference|": fmt(diff)})
            else:
                cells = {}
                for impl in ("scratch", "torch"):
                    vals = np.array([r.final[impl][k] for r in rs], dtype=float)
                    cells[impl] = f"{fmt(vals.mean(), 5)} +- {fmt(vals.std(ddof=1) if len(vals) > 1 else 0.0, 2)}"
                rows.append({"model": label, "metric": k, "scratch (mean +- std)": cells["scratch"],
                             "torch (mean +- std)": cells["torch"], "seeds": len(rs)})
    return rows


def timing_rows(results) -> list:
    rows = []
    for r in results:
        s, t = r.time_per_step.get("scratch"), r.time_per_step.get("torch")
        rows.append({"model": r.label, "mode": r.mode, "seed": r.seed, "steps": r.steps,
                     "scratch ms/step": fmt(None if s is None else 1e3 * s),
                     "torch ms/step": fmt(None if t is None else 1e3 * t),
                     "scratch / torch": fmt(s / t if s and t else None, 3)})
    return rows


# -- plots ------------------------------------------------------------------------------
def _positive(a):
    a = np.asarray(a, dtype=float)
    return np.where(a > 0, a, np.nan)


def plot_lockstep(result, title=""):
    """Three panels: both twins' loss per step overlaid, their relative difference (log), accuracy."""
    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    ax = axes[0]
    for impl, ls in (("scratch", "-"), ("torch", "--")):
        h = result.history[impl]
        ax.plot(h["step"], h["loss"], ls, color=COLORS[impl], lw=1, label=impl)
    ax.set(xlabel="step", ylabel="training loss (batch)", title="loss, both twins")
    ax.legend()
    ax = axes[1]
    d = _positive(result.loss_rel_diff)
    ax.plot(result.history["scratch"]["step"], d, color=COLORS["diff"], lw=0.8,
            label="|loss difference| / max(loss, 1e-3 loss_1)")
    if result.param_diff:
        steps, vals = zip(*result.param_diff)
        ax.plot(steps, _positive(vals), "o-", color="tab:purple", ms=3, lw=1, label="max parameter difference")
    if result.control_loss_rel_diff is not None:
        ax.plot(result.history["scratch"]["step"], _positive(result.control_loss_rel_diff), color="gray", lw=0.8,
                alpha=0.8, label="control: scratch vs scratch 1 ulp apart")
    if np.all(np.isnan(d)) and not result.param_diff:
        ax.text(0.5, 0.5, "identical at every step", transform=ax.transAxes, ha="center")
    zeros = int(np.sum(np.asarray(result.loss_rel_diff) == 0))
    ax.set(xlabel="step", ylabel="difference (log)", title=f"twin difference ({zeros} steps exactly equal)")
    if not np.all(np.isnan(d)):
        ax.set_yscale("log")
    ax.legend(fontsize=8)
    _plot_evals(axes[2], [result])
    fig.suptitle(title or result.label)
    fig.tight_layout()
    return fig


def plot_shadow(result, title=""):
    """Float32 lockstep against its float64 shadow: the three losses, and each twin's error (log)."""
    shadow = result.shadow
    k = shadow["steps"]
    steps = np.arange(1, k + 1)
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    ax = axes[0]
    for impl, ls in (("scratch", "-"), ("torch", "--")):
        ax.plot(steps, result.history[impl]["loss"][:k], ls, color=COLORS[impl], lw=1, label=f"{impl} (float32)")
    ax.plot(steps, shadow["loss"], ":", color="black", lw=1, label="shadow (float64)")
    ax.set(xlabel="step", ylabel="training loss (batch)", title="loss: both float32 twins and the float64 shadow")
    ax.legend(fontsize=8)
    ax = axes[1]
    for impl in ("scratch", "torch"):
        ax.plot(steps, _positive(shadow["err"][impl]), color=COLORS[impl], lw=0.7, alpha=0.8,
                label=f"{impl}: |loss - shadow| / max(shadow, 1e-3 shadow_1)")
        if shadow["param_err"][impl]:
            at, vals = zip(*shadow["param_err"][impl])
            ax.plot(at, _positive(vals), "o", color=COLORS[impl], ms=3, label=f"{impl}: parameter error (scaled)")
    if not np.all(np.isnan(_positive(np.concatenate([shadow["err"]["scratch"], shadow["err"]["torch"]])))):
        ax.set_yscale("log")
    v = error_ratio_verdict(shadow["err"]["scratch"], shadow["err"]["torch"])
    ax.set(xlabel="step", ylabel="error against float64 (log)",
           title=f"{v['verdict']}: median error ratio scratch / torch {v['median_ratio']:.3g}{interval_text(v)}")
    ax.legend(fontsize=7)
    fig.suptitle(title or result.label)
    fig.tight_layout()
    return fig


def plot_independent(results, title=""):
    """Each seed's curve, both twins: the distributions, not the steps, are compared."""
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    ax = axes[0]
    for r in results:
        for impl, ls in (("scratch", "-"), ("torch", "--")):
            h = r.history[impl]
            ax.plot(h["step"], h["loss"], ls, color=COLORS[impl], lw=0.7, alpha=0.7,
                    label=impl if r is results[0] else None)
    ax.set(xlabel="step", ylabel="training loss (batch)", title=f"loss, {len(results)} seeds per twin")
    ax.legend()
    _plot_evals(axes[1], results)
    fig.suptitle(title or results[0].label)
    fig.tight_layout()
    return fig


def _plot_evals(ax, results):
    key = "test_acc" if "test_acc" in results[0].evals["scratch"] else (
        "train_acc" if "train_acc" in results[0].evals["scratch"] else None)
    key = key or ("test_loss" if "test_loss" in results[0].evals["scratch"] else "train_loss")
    for r in results:
        for impl, ls, marker in (("scratch", "-", "o"), ("torch", "--", "x")):
            e = r.evals[impl]
            ax.plot(e["epoch"], e[key], ls, marker=marker, ms=4, color=COLORS[impl], lw=1,
                    label=impl if r is results[0] else None)
            other = key.replace("test", "train") if key.startswith("test") else None
            if other and other in e:
                ax.plot(e["epoch"], e[other], ls, color=COLORS[impl], lw=0.7, alpha=0.5,
                        label=f"{impl} ({other})" if r is results[0] else None)
    ax.set(xlabel="epoch", ylabel=key, title=f"{key} by epoch (whole set)")
    ax.legend(fontsize=8)


# -- report.md ----------------------------------------------------------------------------
def parity_rows(results, extra) -> list:
    """The parity figures: per lockstep model the largest loss and parameter differences,
    then the figures the experiment recorded itself."""
    rows = []
    for r in results:
        if r.mode != "lockstep":
            continue
        first = r.first_step_above(r.tolerance)
        worst = ""
        if r.loss_rel_diff is not None and len(r.loss_rel_diff):
            i = int(np.argmax(r.loss_rel_diff))
            a, b = r.history["scratch"]["loss"][i], r.history["torch"]["loss"][i]
            worst = f"; worst at step {i + 1}: loss {fmt(b)}, |difference| {fmt(abs(a - b))}"
        if r.tolerance is None:  # float32: no tolerance, so say when the drift reaches each mark
            marks = [f"above {m:g} from step {r.first_step_above(m)}" for m in DRIFT_MARKS
                     if r.first_step_above(m)]
            worst += "; " + (", ".join(marks) if marks else f"never above {DRIFT_MARKS[0]:g}")
        if r.shadow is not None:
            v = error_ratio_verdict(r.shadow["err"]["scratch"], r.shadow["err"]["torch"])
            settle = f"; about {v['steps_to_settle']} steps would settle it" if v["steps_to_settle"] else ""
            rows.append({"figure": f"{r.label}: float32 error against the float64 shadow, scratch / torch "
                                   f"(median over {v['steps']} steps{interval_text(v)}, block bootstrap, blocks of "
                                   f"{v['block']} steps; 90th percentile {fmt(v['p90_ratio'])}; median errors "
                                   f"{fmt(v['scratch_median_error'])} / {fmt(v['torch_median_error'])}{settle})",
                         "value": fmt(v["median_ratio"]),
                         "tolerance": f"interval within {AS_ACCURATE[0]:g} to {AS_ACCURATE[1]:g}: as accurate",
                         "within": v["verdict"]})
            worst += ("; the twins' raw difference is round-off amplified by training, each twin's distance from "
                      "the float64 shadow is the row above")
        rows.append({"figure": f"{r.label}: largest |loss difference| / max(loss, 1e-3 x first loss) over "
                               f"{r.steps} steps"
                               + (f" (first above tolerance at step {first})" if first else "") + worst,
                     "value": fmt(r.max_loss_rel_diff),
                     "tolerance": "reported" if r.tolerance is None else fmt(r.tolerance),
                     "within": _within(r.max_loss_rel_diff, r.tolerance)})
        rows.append({"figure": f"{r.label}: largest parameter difference (scaled)",
                     "value": fmt(r.max_param_diff), "tolerance": "reported", "within": ""})
        if r.control_loss_rel_diff is not None:
            c = r.control_loss_rel_diff
            cfirst = r.first_step_above(r.tolerance, c)
            rows.append({"figure": f"{r.label}: control, scratch vs itself 1 ulp apart: largest |loss difference|"
                                   f" / loss" + (f" (first above tolerance at step {cfirst})" if cfirst else ""),
                         "value": fmt(float(np.max(c))), "tolerance": "reported", "within": ""})
    for p in extra:
        rows.append({"figure": p["name"], "value": fmt(p["value"]), "tolerance": fmt(p.get("tolerance")),
                     "within": _within(p["value"], p.get("tolerance"))})
    return rows


def _within(value, tol):
    if tol is None or value is None:
        return ""
    return "yes" if value <= tol else "**NO**"


CONTROL_NOTE = """\
**When a lockstep run leaves the tolerance**, the runner repeats it with the scratch twin against
itself, the second copy's weights moved by one unit in the last place (`np.nextafter`), same batches.
If that control drifts apart as much and as early as the two twins, the drift is the training's own
sensitivity to round-off: an unstable or chaotic trajectory (loss spikes, a large learning rate, Adam
near convergence) amplifies differences of 1e-16 exponentially, whatever computes the sums. Up to the
first step above the tolerance, the twins agree to round-off."""


def units_text(info) -> str:
    """"serial (this process): 6 units", "local cluster, 2 workers: 6 units in 2 processes", or the engine
    alone for a summary written before units were counted."""
    engine = info.get("engine", "serial (this process)")
    units = info.get("units")
    if not units:
        return engine
    text = f"{engine}: {units['ran']} unit{'s' if units['ran'] != 1 else ''}"
    where = [w for w in units.get("where", {}) if w != "this process"]
    if where:
        text += f" in {len(where)} worker process{'es' if len(where) != 1 else ''}"
    if units.get("failed"):
        text += f", {units['failed']} failed"
    return text


def render_report(info, results, sections, figures, parity, env) -> str:
    """report.md from the run's description, training results, sections and figures."""
    lines = [f"# {info['number']}. `{info['experiment']}`: chapter {info['chapter']}", "", info["shows"], ""]
    if info.get("headline_text"):
        lines += [f"**Headline:** {info['headline_text']}", ""]
    lines += ["## What was run", "",
              markdown_table([{"profile": info["profile"], "mode": info["mode"], "seed": info["seed"],
                               "seeds (independent)": ", ".join(map(str, info["seeds"])),
                               "dtype": info["dtype"], "torch device": describe_device(info.get("torch_twin"))
                               or info["device"],
                               "threads per twin": info.get("threads"),
                               "twins' steps": info.get("twins", "serial"),
                               "scratch path": info.get("scratch_path", "fast"),
                               "units ran on": units_text(info)}]),
              "", "Configuration (profile `" + info["profile"] + "`):", "", "```json",
              json.dumps(jsonable(info["config"]), indent=1), "```", "",
              f"Command: `python -m experiments run {info['experiment']} --profile {info['profile']} "
              f"--mode {info['mode']} --seed {info['seed']}"
              + (f" --seeds {len(info['seeds'])}" if info["mode"] != "lockstep" else "") + f" --dtype {info['dtype']}"
              + (" --plain`" if info.get("scratch_path") == "plain" else "`"), ""]
    if results:
        lines += ["## Final metrics, side by side", "", markdown_table(result_rows(results)), ""]
    rows = parity_rows(results, parity)
    if rows:
        lines += ["## Parity", ""]
        if any(r.mode == "lockstep" for r in results):
            lines += ["Lockstep: both twins start from the same weights and see the same batches, so in float64 "
                      "their losses must agree to 1e-9 relative at every step (relative to the larger of the torch "
                      "twin's loss and 1e-3 x its first step's loss; docs/design.md, \"Tolerances\").", ""]
        lines += [markdown_table(rows), ""]
        if any(r.control_loss_rel_diff is not None for r in results):
            lines += [CONTROL_NOTE, ""]
    for title, text in sections:
        lines += [f"## {title}", "", text.rstrip(), ""]
    if results:
        lines += ["## Time per step", "",
                  "Wall time of one training step (forward, loss, backward, update) of each twin, "
                  "measured in the same process.", "", markdown_table(timing_rows(results)), ""]
    referenced = "\n".join(t for _, t in sections)
    rest = [(f, c) for f, c in figures if f not in referenced]
    if rest:
        lines += ["## Plots", ""]
        for name, caption in rest:
            lines += [f"![{caption or name}]({name})", "", f"*{caption}*" if caption else "", ""]
    lines += ["## Environment", "", environment_markdown(env),
              f"Wall time of the whole run: {info['wall_time_s']:.1f} s.", ""]
    return "\n".join(lines)


def _control(summary) -> str:
    """' (1-ulp control: x)' when the runner had to run the sensitivity control."""
    values = [m.get("control_max_loss_rel_diff") for m in summary.get("models", [])]
    values = [v for v in values if v is not None]
    return f" (1-ulp control: {fmt(max(values))})" if values else ""


# -- comparison with the reference ---------------------------------------------------------
COMPARED_ON = ("profile", "seed", "mode", "dtype")


def reference_verdict(summary: dict, reference) -> str:
    """How a run's final metrics compare with the reference report's (its summary.json, or None).

    Comparable only when the profile, seed, mode and dtype are the same; then every
    final metric of every trained model must agree with the reference's to the
    tolerance the reference's parity section states: the lockstep bound (1e-9
    relative in float64), or where the reference's own twins (or its 1-ulp control)
    drifted further apart, that drift, since another machine's round-off is
    amplified alike. Timings and round-off figures are not metrics and are not compared.
    """
    if reference is None:
        return "no reference report"
    differs = [f"{k} {summary.get(k)} vs {reference.get(k)}" for k in COMPARED_ON
               if summary.get(k) != reference.get(k)]
    if differs:
        if summary.get("profile") != reference.get("profile"):
            return (f"{summary.get('profile')} profile: not comparable with the {reference.get('profile')} "
                    "reference")
        return "not comparable with the reference: " + ", ".join(differs)
    ours, theirs = summary.get("models") or [], reference.get("models") or []
    if not theirs:
        return "same settings as the reference; nothing trained to compare (see the headlines)"
    if [_model_key(m) for m in ours] != [_model_key(m) for m in theirs]:
        return "DIFFERS from the reference: not the same trained models"
    tolerance = max([1e-9 if summary.get("dtype") == "float64" else 1e-5]
                    + [v for m in theirs for v in (m.get("max_loss_rel_diff"), m.get("control_max_loss_rel_diff"))
                       if isinstance(v, (int, float)) and math.isfinite(v)])
    worst, where = 0.0, ""
    for m, r in zip(ours, theirs):
        for impl, metrics in (r.get("final") or {}).items():
            for name, ref_value in metrics.items():
                value = (m.get("final") or {}).get(impl, {}).get(name)
                if value is None:
                    return f"DIFFERS from the reference: {impl} {name} of {m.get('label')} missing"
                rel = _rel_diff(value, ref_value)
                if rel > worst:
                    worst, where = rel, f"{m.get('label')} {impl} {name} {value:.10g} vs {ref_value:.10g}"
    if worst <= tolerance:
        return f"reproduces the reference (largest relative difference {fmt(worst)}, tolerance {fmt(tolerance)})"
    return f"DIFFERS from the reference: {where} (relative {fmt(worst)} > tolerance {fmt(tolerance)})"


def _model_key(m: dict) -> tuple:
    return m.get("label"), m.get("tag"), m.get("mode"), m.get("seed")


def _rel_diff(a, b) -> float:
    a, b = float(a), float(b)
    if a == b or (math.isnan(a) and math.isnan(b)):
        return 0.0
    return abs(a - b) / max(abs(a), abs(b))


def _read_summary(path):
    try:
        return json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError):
        return None


# -- the index ----------------------------------------------------------------------------
def write_index(out, catalogue_order=(), reference=None) -> Path:
    """``<out>/README.md``: one row per experiment folder that has a summary.json.

    ``reference``: the folder of the reference reports to set each row beside (its
    headline and :func:`reference_verdict`); None for the reference index itself.
    """
    out = Path(out)
    summaries = []
    for p in sorted(out.glob("*/summary.json")):
        if p.parent.name.startswith("."):
            continue  # a run in progress or an interrupted one
        s = _read_summary(p)
        if s is not None:
            summaries.append(s)
    order = {name: i for i, name in enumerate(catalogue_order)}
    summaries.sort(key=lambda s: (order.get(s.get("experiment"), len(order)), s.get("number", 0),
                                  s.get("experiment", "")))
    rows = []
    for s in summaries:
        name = s.get("experiment", "?")
        row = {"#": s.get("number", ""), "experiment": f"[{name}]({name}/report.md)",
               "chapter": s.get("chapter", ""), "headline": s.get("headline_text", ""),
               "lockstep parity": _parity_cell(s),
               "twins over seeds (independent)": s.get("verdict") or "",
               "profile": s.get("profile", ""), "mode": s.get("mode", ""), "dtype": s.get("dtype", ""),
               "date": s.get("environment", {}).get("date", "")}
        if reference is not None:
            ref = _read_summary(Path(reference) / name / "summary.json")
            row["reference headline"] = "-" if ref is None else (
                f"{ref.get('headline_text', '')} ({ref.get('profile')}, {ref.get('dtype')})")
            row["against the reference"] = reference_verdict(s, ref)
        rows.append(row)
    columns = ["#", "experiment", "chapter", "headline", "lockstep parity", "twins over seeds (independent)",
               "profile", "mode", "dtype", "date"]
    if reference is None:
        intro = ("# Reports\n\nThe reference reports (full profile), quoted by the project's README: one folder per "
                 "experiment of the catalogue, written by `python -m experiments run NAME|all --out reports` "
                 "(`make reference`). Each holds report.md, metrics.csv, summary.json and plots.\n\n")
    else:
        columns[4:4] = ["reference headline", "against the reference"]
        intro = ("# Runs\n\nOne folder per experiment, written by `python -m experiments run NAME|all`; each row "
                 f"is set beside the reference report in `{_relative(reference)}` (a run is comparable with it "
                 "only at the same profile, seed, mode and dtype). Each folder holds report.md, metrics.csv, "
                 "summary.json and plots.\n\n")
    path = out / "README.md"
    # README.md is a common name: the index goes only into a folder that is the runner's own.
    if not owns(out):
        raise OutputError(f"refusing to write the index {path}: {out} is not an output folder of this tool "
                          f"(no {MARKER} in it)")
    write_text_atomic(path, intro + markdown_table(rows, columns))
    return path


def _parity_cell(summary) -> str:
    """float64: the worst twin loss difference (and the control's); float32: the shadow's verdict."""
    verdicts = [m["float32_vs_shadow"] for m in summary.get("models", []) if m.get("float32_vs_shadow")]
    if verdicts:
        worst = max(verdicts, key=lambda v: v["median_ratio"])
        models = f", the least accurate of {len(verdicts)} models" if len(verdicts) > 1 else ""
        return (f"float32 vs float64 shadow: {claim(worst['verdict'])} (median error ratio "
                f"{fmt(worst['median_ratio'])}{interval_text(worst)}{models})")
    return fmt(summary.get("worst_loss_rel_diff")) + _control(summary)


def _relative(path) -> str:
    from experiments.writing import REPO

    try:
        return str(Path(path).resolve().relative_to(REPO)) + "/"
    except ValueError:
        return str(path)


def report_problems(folder) -> list:
    """What is missing or inconsistent in a report folder (an empty list: it is complete).

    Checks the docs/design.md layout: metrics.csv with the long-format columns and at
    least one row, summary.json with the run's description, report.md with its
    sections, and every plot that report.md or summary.json names.
    """
    import re

    folder = Path(folder)
    problems = []
    for name in ("metrics.csv", "summary.json", "report.md"):
        if not (folder / name).is_file():
            problems.append(f"{name} is missing")
    if problems:
        return problems
    with open(folder / "metrics.csv", newline="") as f:
        rows = list(csv.reader(f))
    if not rows or tuple(rows[0]) != COLUMNS:
        problems.append(f"metrics.csv header is {rows[:1]}, expected {list(COLUMNS)}")
    elif len(rows) < 2:
        problems.append("metrics.csv has no rows")
    summary = json.loads((folder / "summary.json").read_text())
    for key in ("experiment", "profile", "mode", "seed", "dtype", "config", "environment", "headline_text"):
        if key not in summary:
            problems.append(f"summary.json lacks {key!r}")
    text = (folder / "report.md").read_text()
    for heading in ("## What was run", "## Environment"):
        if heading not in text:
            problems.append(f"report.md lacks the section {heading!r}")
    for env_key in ("python", "numpy", "torch", "git_commit", "date"):
        if f"- {env_key}:" not in text:
            problems.append(f"report.md's environment lacks {env_key}")
    images = set(re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text)) | set(summary.get("figures", []))
    if not images:
        problems.append("no plot")
    for image in images:
        if not (folder / image).is_file():
            problems.append(f"plot {image} is named but missing")
    if summary.get("models") and "## Time per step" not in text:
        problems.append("report.md lacks the time per step of the twins")
    if summary.get("models") and "## Final metrics, side by side" not in text:
        problems.append("report.md lacks the side-by-side final metrics")
    return problems
