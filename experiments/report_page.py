"""report.md: the run's description, the final metrics side by side, the parity table, the sections
the experiment wrote, the time per step, the plots and the environment."""
import json

import numpy as np

from experiments.compare import lockstep_tolerance
from experiments.results import jsonable
from experiments.shadow import AS_ACCURATE, error_ratio_verdict, interval_text, settle_text
from experiments.writing import environment_markdown, fmt, markdown_table, tolerance_text
from torch_ref.precision import describe as describe_device

DRIFT_MARKS = (1e-6, 1e-4, 1e-2)  # float32 lockstep: when the relative loss difference first passes each


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
            settle = f"; {settle_text(v['steps_to_settle'])}" if v["steps_to_settle"] else ""
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


def units_text(summary) -> str:
    """"serial (this process): 6 units", "local cluster, 2 workers: 6 units in 2 worker processes, busy 91%
    of the time" (the units' seconds over the worker processes' share of the maps' wall time), or the
    engine alone for a summary written before units were counted."""
    engine = summary.engine
    units = summary.units
    if not units:
        return engine
    text = f"{engine}: {units['ran']} unit{'s' if units['ran'] != 1 else ''}"
    where = [w for w in units.get("where", {}) if w != "this process"]
    if where:
        text += f" in {len(where)} worker process{'es' if len(where) != 1 else ''}"
    if units.get("failed"):
        text += f", {units['failed']} failed"
    if where and units.get("busy") is not None:
        text += f", busy {units['busy']:.0%} of the time"
    return text


def render_report(s, results, sections, figures) -> str:
    """report.md from the run's summary (experiments.summary.Summary), its training results, sections
    and figures."""
    lines = [f"# {s.number}. `{s.experiment}`: chapter {s.chapter}", "", s.shows, ""]
    if s.headline_text:
        lines += [f"**Headline:** {s.headline_text}", ""]
    lines += ["## What was run", "",
              markdown_table([{"profile": s.profile, "mode": s.mode, "seed": s.seed,
                               "seeds (independent)": ", ".join(map(str, s.seeds)),
                               "dtype": s.dtype, "torch device": describe_device(s.torch_twin) or s.device,
                               "threads per twin": s.threads,
                               "twins' steps": s.twins,
                               "scratch path": s.scratch_path,
                               "units ran on": units_text(s)}]),
              "", "Configuration (profile `" + s.profile + "`):", "", "```json",
              json.dumps(jsonable(s.config), indent=1), "```", "",
              f"Command: `python -m experiments run {s.experiment} --profile {s.profile} "
              f"--mode {s.mode} --seed {s.seed}"
              + (f" --seeds {len(s.seeds)}" if s.mode != "lockstep" else "") + f" --dtype {s.dtype}"
              + (" --plain`" if s.scratch_path == "plain" else "`"), ""]
    if results:
        lines += ["## Final metrics, side by side", "", markdown_table(result_rows(results)), ""]
    rows = parity_rows(results, s.parity)
    if rows:
        lines += ["## Parity", ""]
        if any(r.mode == "lockstep" for r in results):
            lines += ["Lockstep: both twins start from the same weights and see the same batches, so in float64 "
                      "their losses must agree to "
                      f"{tolerance_text(lockstep_tolerance(np.float64))} relative at every step (relative to the larger of the torch "
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
    lines += ["## Environment", "", environment_markdown(s.environment),
              f"Wall time of the whole run: {s.wall_time_s:.1f} s.", ""]
    return "\n".join(lines)
