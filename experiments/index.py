"""The index of an output folder (its README.md: one row per report, each parity figure beside its
tolerance and verdict), a run set beside the reference report, and the check that a report folder is
complete."""
import csv
import math
import re
from pathlib import Path
from typing import Optional

import numpy as np

from experiments.compare import TOLERANCE
from experiments.results import COLUMNS
from experiments.shadow import AS_ACCURATE, claim, interval_text
from experiments.summary import FILE, Summary
from experiments.writing import (MARKER, REPO, OutputError, fmt, markdown_table, owns, tolerance_text,
                                 write_text_atomic)


# -- comparison with the reference ---------------------------------------------------------
COMPARED_ON = ("profile", "seed", "mode", "dtype")


def reference_verdict(summary: Summary, reference: Optional[Summary]) -> str:
    """How a run's final metrics compare with the reference report's (its summary, or None).

    Comparable only when the profile, seed, mode and dtype are the same; then every
    final metric of every trained model must agree with the reference's to the
    tolerance the reference's parity section states: ``TOLERANCE["reproduce"]`` (the
    lockstep bound in float64), or where the reference's own twins (or its 1-ulp control)
    drifted further apart, that drift, since another machine's round-off is
    amplified alike. Timings and round-off figures are not metrics and are not compared.
    """
    if reference is None:
        return "no reference report"
    differs = [f"{k} {getattr(summary, k)} vs {getattr(reference, k)}" for k in COMPARED_ON
               if getattr(summary, k) != getattr(reference, k)]
    if differs:
        if summary.profile != reference.profile:
            return f"{summary.profile} profile: not comparable with the {reference.profile} reference"
        return "not comparable with the reference: " + ", ".join(differs)
    ours, theirs = summary.models or [], reference.models or []
    if not theirs:
        return "same settings as the reference; nothing trained to compare (see the headlines)"
    if [_model_key(m) for m in ours] != [_model_key(m) for m in theirs]:
        return "DIFFERS from the reference: not the same trained models"
    tolerance = max(TOLERANCE["reproduce"][np.dtype(summary.dtype).type], reference.drift_bound())
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


# -- the parity verdict ---------------------------------------------------------------------
HOLDS = "holds"
ROUND_OFF_FLOOR = "at the round-off floor of training, as the 1-ulp control shows"
DIFFERS = "**differs**"


def parity_cells(summary: Summary) -> dict:
    """The index's three parity cells of one report: the figure, its tolerance and the verdict.

    float64 lockstep: the twins' largest relative loss difference against ``TOLERANCE["lockstep"]``:
    within it the parity holds; beyond it, where for every training beyond it the runner's 1-ulp control
    (the scratch twin against itself, one weight an ulp apart) left the tolerance too, the training
    amplifies any round-off that far and the figure is the round-off floor of training; otherwise (no
    control, or a control that stayed within) the twins differ. float32: the
    median ratio of the twins' errors against the float64 shadow (the least accurate model) against
    ``AS_ACCURATE``. Nothing trained in lockstep: empty cells.
    """
    verdicts = summary.shadow_verdicts()
    if verdicts:
        worst = max(verdicts, key=lambda v: v["median_ratio"])
        models = f", the least accurate of {len(verdicts)} models" if len(verdicts) > 1 else ""
        word = {"as accurate": HOLDS, "more accurate": HOLDS, "less accurate": DIFFERS}.get(
            worst["verdict"], worst["verdict"])
        # A report written before the interval existed says so rather than read as if its median were settled.
        interval = interval_text(worst) or " (median alone: the report predates its interval)"
        return {"lockstep parity": f"float32 vs float64 shadow: median error ratio scratch / torch "
                                   f"{fmt(worst['median_ratio'])}{interval}{models}",
                "tolerance": f"{AS_ACCURATE[0]:g} to {AS_ACCURATE[1]:g}",
                "parity verdict": word if word == worst["verdict"] else f"{word} ({claim(worst['verdict'])})"}
    value = summary.worst_loss_rel_diff
    if value is None:
        return {"lockstep parity": "-", "tolerance": "", "parity verdict": ""}
    tol = summary.lockstep_tolerance
    control = summary.control_worst()
    figure = fmt(value) + ("" if control is None else f" (1-ulp control: {fmt(control)})")
    if tol is None:
        word = "reported"
    elif value <= tol:
        word = HOLDS
    elif all(_beyond(m.get("control_max_loss_rel_diff"), tol) for m in summary.models
             if _beyond(m.get("max_loss_rel_diff"), tol)):
        word = ROUND_OFF_FLOOR
    else:
        word = DIFFERS
    return {"lockstep parity": figure, "tolerance": tolerance_text(tol),
            "parity verdict": word}


def _beyond(value, tol) -> bool:
    return isinstance(value, (int, float)) and not value <= tol  # nan is beyond


LEGEND = f"""Columns: **headline**, the experiment's own summary of what it shows. **lockstep parity**, the largest
relative loss difference of the twins over every step of every lockstep training (both twins from the same
weights on the same batches; |loss_s - loss_t| / max(|loss_t|, 1e-3 x the first loss), docs/design.md,
"Tolerances"), with, in brackets, that of the 1-ulp control where the runner ran it; in float32, the median
ratio of the twins' errors against a float64 shadow of the same training, with its 95% interval.
**tolerance**, the bound that figure is held to (`experiments/compare.py: TOLERANCE`; float32: the range of
the ratio that reads "as accurate"). **parity verdict**: *{HOLDS}* (within the tolerance), *{ROUND_OFF_FLOOR}*
(beyond it, but for each training beyond it the scratch twin against itself, one weight moved by one unit in
the last place, left the tolerance too: the training amplifies round-off, whatever computes the sums), or
*differs* (beyond it, and no control or a control that stayed within); "-" where the
experiment trains nothing in lockstep (its own parity figures are in its report). **twins over seeds
(independent)**, each twin trained on its own seeds, the difference of the means tested for equivalence
(experiments/stats.py). **profile**, **mode**, **dtype**, **date**: how and when the report was written.
"""


# -- the index ----------------------------------------------------------------------------
def write_index(out, catalogue_order=(), reference=None) -> Path:
    """``<out>/README.md``: one row per experiment folder that has a summary.json, and the legend.

    ``reference``: the folder of the reference reports to set each row beside (its
    headline and :func:`reference_verdict`); None for the reference index itself.
    """
    out = Path(out)
    summaries = []
    for p in sorted(out.glob(f"*/{FILE}")):
        if p.parent.name.startswith("."):
            continue  # a run in progress or an interrupted one
        s = Summary.read_or_none(p)
        if s is not None:
            summaries.append(s)
    order = {name: i for i, name in enumerate(catalogue_order)}
    summaries.sort(key=lambda s: (order.get(s.experiment, len(order)), s.number, s.experiment))
    rows = []
    for s in summaries:
        name = s.experiment
        row = {"#": s.number, "experiment": f"[{name}]({name}/report.md)", "chapter": s.chapter,
               "headline": s.headline_text, **parity_cells(s),
               "twins over seeds (independent)": s.verdict or "",
               "profile": s.profile, "mode": s.mode, "dtype": s.dtype, "date": s.environment.get("date", "")}
        if reference is not None:
            ref = Summary.read_or_none(Path(reference) / name)
            row["reference headline"] = "-" if ref is None else f"{ref.headline_text} ({ref.profile}, {ref.dtype})"
            row["against the reference"] = reference_verdict(s, ref)
        rows.append(row)
    columns = ["#", "experiment", "chapter", "headline", "lockstep parity", "tolerance", "parity verdict",
               "twins over seeds (independent)", "profile", "mode", "dtype", "date"]
    legend = LEGEND
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
        legend += ("**reference headline**, **against the reference**: the reference report's headline, and whether "
                   "this run's final metrics reproduce it (same profile, seed, mode and dtype only; tolerance "
                   "`TOLERANCE[\"reproduce\"]`, or the reference's own drift where it is larger).\n")
    path = out / "README.md"
    # README.md is a common name: the index goes only into a folder that is the runner's own.
    if not owns(out):
        raise OutputError(f"refusing to write the index {path}: {out} is not an output folder of this tool "
                          f"(no {MARKER} in it)")
    write_text_atomic(path, intro + markdown_table(rows, columns) + "\n" + legend)
    return path


def _relative(path) -> str:
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
    folder = Path(folder)
    problems = []
    for name in ("metrics.csv", FILE, "report.md"):
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
    try:
        summary = Summary.read(folder)
    except ValueError as e:  # not JSON, or not a summary: the message names what is wrong
        problems.append(str(e))
        summary = Summary(experiment="?")
    text = (folder / "report.md").read_text()
    for heading in ("## What was run", "## Environment"):
        if heading not in text:
            problems.append(f"report.md lacks the section {heading!r}")
    for env_key in ("python", "numpy", "torch", "git_commit", "date"):
        if f"- {env_key}:" not in text:
            problems.append(f"report.md's environment lacks {env_key}")
    images = set(re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text)) | set(summary.figures)
    if not images:
        problems.append("no plot")
    for image in images:
        if not (folder / image).is_file():
            problems.append(f"plot {image} is named but missing")
    if summary.models and "## Time per step" not in text:
        problems.append("report.md lacks the time per step of the twins")
    if summary.models and "## Final metrics, side by side" not in text:
        problems.append("report.md lacks the side-by-side final metrics")
    return problems
