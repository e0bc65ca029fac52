"""The ``list`` and ``run`` commands, and the ``Context`` an experiment runs in.

    python -m experiments list
    python -m experiments run two_layer_mnist --profile full --seed 1
    python -m experiments run all --profile quick
    python -m experiments run mlp_fit --mode independent --seeds 5 --dtype float32

A run of experiment NAME writes ``<out>/NAME/`` inside ``atomic_dir``: an
interrupted run leaves the previous report as it was, and a folder the runner
does not own is refused before anything trains (``experiments.writing``). ``<out>`` defaults to
``runs/`` (git ignores it; ``$DLSCRATCH_RUNS`` moves it), whose index sets each
experiment beside the committed reference report in ``reports/`` with a verdict;
``--out reports`` (``make reference``) regenerates the reference itself. The
index ``<out>/README.md`` is rewritten after each experiment, with its report.
"""
import argparse
import ast
import os
import sys
import time
import traceback
import warnings
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Optional

import numpy as np

import scratch
from experiments import catalogue
from experiments.arguments import at_least, folder, machine_count, seconds
from experiments.catalogue import PROFILES
from experiments.distributed import (CONNECT_TIMEOUT_S, WAIT_WORKERS_S, EngineError, SerialEngine, UnitFailure,
                                     UnitsFailed, align, dashboard_note, failures_markdown, keyed_unit,
                                     unit_seed_sequence)
from experiments.distributed import engine as make_engine
from experiments.packing import Packed, pack, unpack
from experiments.writing import (REPORTS, OutputError, atomic_dir, check_target, environment, is_reference,
                                 runs_dir)
from experiments.stats import plot_seeds, statistics_markdown, statistics_record, twin_statistics, verdict_text
from experiments.threads import threads as thread_limit
from experiments.compare import lockstep_tolerance
from experiments.index import reference_verdict, write_index
from experiments.plots import plot_independent, plot_lockstep, plot_shadow
from experiments.report_page import render_report
from experiments.results import Recorder
from experiments.summary import Summary
from experiments.shadow import shadow_steps, shadow_summary

MODES = ("lockstep", "independent", "both")
TWINS = ("serial", "parallel", "auto")  # --twins: the lockstep twins one after the other, side by side, or auto
DTYPES = ("float64", "float32")


@dataclass(frozen=True)
class RunSpec:
    """What one pass of a run is, settled by the runner before the experiment starts and never changed:
    ``experiment``, ``profile``, ``config`` (the profile's dict, with ``--set`` overrides), ``seed``,
    ``seeds`` (the independent mode's list), ``dtype`` (a NumPy dtype), ``mode`` ("lockstep" or
    "independent"), ``device`` (the torch twin's), ``dir`` (where files go; a temporary folder that
    becomes the report), ``engine`` (where units of work run: ``experiments.distributed``), ``threads``
    (per twin inside each unit), ``parallel_twins`` (lockstep: the twins take each step side by side),
    ``control`` (run the 1-ulp control when a lockstep training leaves the tolerance), ``prefix`` (in
    ``--mode both``, "lockstep_" or "independent_": the two passes' figures and sections keep apart)."""

    experiment: Any
    profile: str
    config: dict
    seed: int
    seeds: tuple
    dtype: np.dtype
    mode: str
    device: str
    dir: Path
    engine: Any
    threads: Optional[int] = None
    parallel_twins: bool = False
    control: bool = True
    prefix: str = ""

    @property
    def name(self) -> str:
        return self.experiment.name

    def passes(self) -> list:
        """One spec per pass of ``--mode``: itself, or for "both" its lockstep and its independent pass."""
        if self.mode != "both":
            return [self]
        return [replace(self, mode=m, prefix=f"{m}_") for m in ("lockstep", "independent")]


class Report:
    """What a run leaves for its report, gathered as the experiment goes: metrics.csv's rows, the training
    results, sections, figures, parity rows, the headline, the values kept for summary.json, the units'
    failures and places. Only its own methods change it; what it hands out are copies."""

    def __init__(self, name: str):
        self.name = name
        self._recorder = Recorder()
        self._results, self._sections, self._figures, self._parities, self._failures = [], [], [], [], []
        self._headlines = {}  # mode -> the last headline that pass gave
        self._extra = {}
        self._placements = {}  # where units ran ("this process", "HOST pid N") -> how many
        self._unit_seconds = 0.0  # the units' own wall time, each measured where it ran
        self._map_seconds = 0.0  # the wall time of the maps that ran them, from sending to the last result

    # -- recording --------------------------------------------------------------------
    def log(self, impl, mode, seed, step, epoch, metric, value) -> None:
        self._recorder.log(self.name, impl, mode, seed, step, epoch, metric, value)

    def add_results(self, results) -> None:
        self._results.extend(results)

    def add_section(self, title: str, markdown: str) -> None:
        self._sections.append((title, markdown))

    def add_figure(self, filename: str, caption: str) -> None:
        self._figures.append((filename, caption))

    def add_parity(self, name: str, value: float, tolerance=None) -> None:
        self._parities.append({"name": name, "value": float(value), "tolerance": tolerance})

    def set_headline(self, mode: str, text: str) -> None:
        self._headlines[mode] = text

    def keep(self, **values) -> None:
        self._extra.update(values)

    def add_failure(self, failure) -> None:
        self._failures.append(failure)

    def place(self, where: str, seconds: float) -> None:
        self._placements[where] = self._placements.get(where, 0) + 1
        self._unit_seconds += seconds

    def mapped(self, seconds: float) -> None:
        self._map_seconds += seconds

    # -- reading ----------------------------------------------------------------------
    @property
    def results(self) -> list:
        return list(self._results)

    @property
    def sections(self) -> list:
        return list(self._sections)

    @property
    def figures(self) -> list:
        return list(self._figures)

    @property
    def parities(self) -> list:
        return [dict(p) for p in self._parities]

    @property
    def extra(self) -> dict:
        return dict(self._extra)

    @property
    def failures(self) -> list:
        return list(self._failures)

    @property
    def headline_text(self) -> str:
        """The lockstep pass's headline where there is one (its results are the parity), else the independent's."""
        return self._headlines.get("lockstep") or self._headlines.get("independent", "")

    def units_summary(self, engine) -> dict:
        """summary.json's ``units``: how many units of work ran, how many failed, on what and where, and how
        busy the places that ran them were (``busy``: the units' seconds / (places x the maps' seconds),
        1.0 when no time was lost between and around units; docs/paths.md, "Dask's scaling")."""
        places = len(self._placements)
        busy = self._unit_seconds / (places * self._map_seconds) if places and self._map_seconds > 0 else None
        return {"ran": sum(self._placements.values()), "failed": len(self._failures),
                "engine": engine.description, "where": dict(sorted(self._placements.items())),
                "unit_seconds": round(self._unit_seconds, 3), "map_seconds": round(self._map_seconds, 3),
                "busy": None if busy is None else round(busy, 3)}

    def write_csv(self, path) -> None:
        self._recorder.write_csv(path)


class Context:
    """What an experiment's ``run(ctx)`` sees: one pass's :class:`RunSpec`, read through its attributes
    (``ctx.name``, ``ctx.profile``, ``ctx.config``, ``ctx.seed``, ``ctx.seeds``, ``ctx.dtype``, ``ctx.mode``,
    ``ctx.device``, ``ctx.dir``, ``ctx.engine``...), ``ctx.streams`` (``lockstep.Streams(seed)``), and the
    ways to record into the run's :class:`Report` (train, log, savefig, section, parity, headline, keep).
    Nothing can be set on it: a pass's settings are the spec's."""

    __slots__ = ("spec", "report", "streams")

    def __init__(self, spec: RunSpec, report: Optional[Report] = None):
        from experiments.lockstep import Streams

        object.__setattr__(self, "spec", spec)
        object.__setattr__(self, "report", report if report is not None else Report(spec.name))
        object.__setattr__(self, "streams", Streams(spec.seed))

    def __getattr__(self, name):
        return getattr(self.spec, name)

    def __setattr__(self, name, value):
        raise AttributeError(f"ctx.{name} cannot be set: a run's settings are its RunSpec, its results go "
                             "through ctx's methods")

    # -- training ----------------------------------------------------------------
    def train(self, recipe, data, plot=True) -> list:
        """Train ``recipe`` on ``data`` in this run's mode: a list with one ``TrainResult`` (lockstep)
        or one per seed (independent). Metrics, tables and the standard plot follow."""
        return self.train_each([recipe], data, plot)[0]

    def train_each(self, recipes, data, plot=True, record=True) -> list:
        """``ctx.train`` for several recipes (variants) at once: one list of results per recipe.

        Every (recipe, seed) is a unit of work (``experiments.distributed``), so with ``--workers`` or
        ``--scheduler`` the variants and seeds train in parallel; the metrics are recorded in the order
        of ``recipes`` and seeds, as if trained one after another. A unit that fails twice is left out
        of its list and recorded in ``ctx.failures`` (the report names it); when all of a recipe's
        units fail, ``UnitsFailed`` is raised. ``record=False``: the results stay out of the report's
        standard tables (the experiment picks which to show, as a search does with its best trials).
        """
        from experiments.lockstep import TrainUnit, train_unit

        seeds = [self.seed] if self.mode == "lockstep" else self.seeds
        light = not isinstance(self.engine, SerialEngine)
        shadow = shadow_steps(self.profile)
        units = [TrainUnit(recipe, self.mode, s, str(self.dtype), self.device, self.control, light, shadow,
                           self.parallel_twins) for recipe in recipes for s in seeds]
        # A float32 lockstep run's float64 shadow needs the data as given (float64), not rounded to float32.
        with_shadow = self.mode == "lockstep" and self.dtype == np.float32 and shadow != 0
        # Aligned here as in the workers (experiments.distributed.align): MKL's sums depend on alignment.
        data = align(data if with_shadow else data.astype(self.dtype))
        if not isinstance(self.engine, SerialEngine):
            data = pack(data)  # to the workers in 8 bits where that is exact (experiments.packing)
        outcomes = self._run_units(train_unit, units, [u.key for u in units], (data,))
        grouped = []
        for k, recipe in enumerate(recipes):
            results = []
            for outcome in outcomes[k * len(seeds):(k + 1) * len(seeds)]:
                if isinstance(outcome, UnitFailure):
                    continue
                result, rows = outcome
                for impl, metric, value, step, epoch, seed in rows:
                    self.log(impl, metric, value, step=step, epoch=epoch, seed=seed)
                results.append(result)
            if not results:
                mine = [o for o in outcomes[k * len(seeds):(k + 1) * len(seeds)] if isinstance(o, UnitFailure)]
                raise UnitsFailed(f"every unit of {recipe.label or recipe.tag or 'the training'} failed: "
                                  + "; ".join(f.describe() for f in mine))
            if record:
                self.report.add_results(results)
            if plot:
                self._plot_training(recipe, results)
            grouped.append(results)
        return grouped

    def map(self, fn, items, keys=None, shared=(), label="units") -> list:
        """Run ``fn(item, rng, *shared)`` for every item as a unit of work; their values, in item order.

        ``rng``: a ``numpy.random.Generator`` on the unit's own ``SeedSequence``, chosen by its key
        (``experiments.distributed.unit_seed_sequence(ctx.seed, (ctx.name, key))``), never by the order
        units run in. ``keys``: one per item (str, int or tuples of them; default: the items
        themselves). ``shared``: large read-only arguments (data), sent to each worker once. ``fn``
        must not rely on side effects in this process: with workers, it runs in another one.
        A unit that fails twice is left out of the values and recorded in ``ctx.failures``.
        """
        items = list(items)
        keys = items if keys is None else list(keys)
        if len(keys) != len(items) or len(set(map(repr, keys))) != len(keys):
            raise ValueError(f"ctx.map: keys must be distinct, one per item; got {len(keys)} keys "
                             f"for {len(items)} items")
        seqs = [unit_seed_sequence(self.seed, (self.name, k)) for k in keys]
        outcomes = self._run_units(keyed_unit, [(fn, item, seq) for item, seq in zip(items, seqs)], keys,
                                   tuple(shared), label)
        return [o for o in outcomes if not isinstance(o, UnitFailure)]

    def _run_units(self, fn, items, keys, shared, label="training") -> list:
        start = time.perf_counter()
        outcomes = self.engine.map(placed_unit, [(fn, item) for item in items], keys, shared, self.threads,
                                   label=f"{self.name} {label}")
        self.report.mapped(time.perf_counter() - start)
        here = process_name()
        values = []
        for o in outcomes:
            if isinstance(o, UnitFailure):
                print(f"  {self.name}: {o.describe()}", file=sys.stderr, flush=True)
                self.report.add_failure(o)
                values.append(o)
                continue
            where, seconds, value = o
            self.report.place("this process" if where == here else where, seconds)
            values.append(value)
        return values

    def _plot_training(self, recipe, results):
        name = f"{recipe.tag or 'training'}_{self.mode}"
        if self.mode == "lockstep":
            fig = plot_lockstep(results[0], f"{results[0].label}: lockstep, seed {self.seed}, {self.dtype}")
            caption = (f"{results[0].label}: both twins' loss per step (left), their difference on a log "
                       "scale (middle), accuracy by epoch (right)")
        else:
            fig = plot_independent(results, f"{results[0].label}: independent, seeds {[r.seed for r in results]}")
            caption = f"{results[0].label}: each twin on its own initialisation, {len(results)} seeds"
        self.savefig(fig, name, caption)
        if self.mode == "lockstep" and results[0].shadow is not None:
            self.savefig(plot_shadow(results[0], f"{results[0].label}: float32 twins against the float64 shadow, "
                                                 f"seed {self.seed}"),
                         f"{recipe.tag or 'training'}_float64_shadow",
                         f"{results[0].label}: the three losses (left) and each float32 twin's error against the "
                         "float64 shadow (right, log scale)")

    def add_results(self, results) -> None:
        """Put ``results`` (trained with ``record=False``) into the report's standard tables after all."""
        self.report.add_results(results)

    # -- recording ----------------------------------------------------------------
    def log(self, impl, metric, value, step=None, epoch=None, seed=None):
        """One row of metrics.csv (``impl``: scratch, torch, diff, book...)."""
        self.report.log(impl, self.mode, self.seed if seed is None else seed, step, epoch, metric, value)

    def savefig(self, fig, name: str, caption: str = "") -> str:
        """Save a matplotlib figure as ``<name>.png`` in the report; returns the file name."""
        import matplotlib.pyplot as plt

        filename = f"{self.prefix}{name}.png"
        # The tiny profile (the test suite's) draws small pictures: same content, less time.
        fig.savefig(self.dir / filename, dpi=50 if self.profile == "tiny" else 90, metadata={"Software": None})
        plt.close(fig)
        self.report.add_figure(filename, caption)
        return filename

    def section(self, title: str, markdown: str) -> None:
        """A section of report.md (Markdown), after the parity table."""
        self.report.add_section(f"{title} ({self.mode})" if self.prefix else title, markdown)

    def parity(self, name: str, value: float, tolerance=None) -> None:
        """A parity figure of the experiment's own (e.g. a forward pass vs the book's numbers)."""
        self.report.add_parity(name, value, tolerance)

    def headline(self, text: str) -> None:
        """The one-line result shown in reports/README.md (in --mode both, the lockstep pass's)."""
        self.report.set_headline(self.mode, text)

    def keep(self, **values) -> None:
        """Values for summary.json's ``extra`` (JSON-able: numbers, strings, lists, dicts)."""
        self.report.keep(**values)


def process_name() -> str:
    """"HOST pid N": the process a unit ran in."""
    import socket

    return f"{socket.gethostname()} pid {os.getpid()}"


def placed_unit(job, *shared):
    """Run ``fn(item, *shared)`` for ``job = (fn, item)``; ``(process_name(), seconds, value)``: where it ran,
    for how long (decoding its data included), and what."""
    fn, item = job
    start = time.perf_counter()
    # Packed data (train_each on workers): decoded once per worker and map (the decoded arrays already on
    # 64-byte boundaries, and kept for later maps), its other arrays aligned as align() says.
    value = fn(item, *(align(unpack(s)) if isinstance(s, Packed) else s for s in shared))
    return process_name(), time.perf_counter() - start, value


# -- running ------------------------------------------------------------------------
class ConfigError(ValueError):
    """A bad profile or setting: reported as a usage error, before anything runs."""


def make_config(exp, profile: str, overrides=None) -> dict:
    """The profile's settings of ``exp`` with ``overrides`` applied; unknown names are errors."""
    if profile not in exp.profiles:
        raise ConfigError(f"unknown profile {profile!r}; valid profiles are: {', '.join(exp.profiles)}")
    config = dict(exp.profiles[profile])
    for key, value in (overrides or {}).items():
        if key not in config:
            raise ConfigError(f"{exp.name}: unknown setting {key!r}; the {profile} profile has: "
                              f"{', '.join(config) or '(none)'}")
        config[key] = value
    return config


def run_experiment(exp, profile="quick", mode="lockstep", seed=0, seeds=3, dtype="float64", device="cpu",
                   out=None, overrides=None, threads=1, engine=None, twins="serial") -> Path:
    """Run one experiment and write ``<out>/<name>/`` atomically; returns that folder.

    ``out``: default :func:`experiments.writing.runs_dir` (``runs/``), never the
    reference reports unless asked for by name.

    ``threads``: threads for each twin during the run (see experiments.threads);
    None leaves them as they are. ``engine``: where its units of work run
    (``experiments.distributed``; default: serially, in this process). ``twins``: "parallel", "serial"
    or "auto" (``parallel_twins``): whether the lockstep twins take each step side by side.
    """
    with thread_limit(threads):
        return _run_experiment(exp, profile, mode, seed, seeds, dtype, device, out, overrides, threads, engine,
                               parallel_twins(twins, threads, engine))


def parallel_twins(choice: str, threads, engine=None) -> bool:
    """Whether the lockstep twins step side by side: ``choice`` "parallel" or "serial", or "auto".

    "auto": side by side when this process may use at least 2 x ``threads`` cores and runs the units
    itself (a local or remote Dask cluster already keeps the cores busy with one unit per worker).
    Why it is not always on: docs/paths.md, "The twins side by side".
    """
    if choice not in TWINS:
        raise ConfigError(f"unknown --twins {choice!r}; valid: {', '.join(TWINS)}")
    if choice != "auto":
        return choice == "parallel"
    from scratch.fast.parallel import _cores

    return isinstance(engine or SerialEngine(), SerialEngine) and _cores() >= 2 * (threads or 1)


def _run_experiment(exp, profile, mode, seed, seeds, dtype, device, out, overrides, threads, engine,
                    parallel=False) -> Path:
    if mode not in MODES:
        raise ConfigError(f"unknown mode {mode!r}; valid modes are: {', '.join(MODES)}")
    config = make_config(exp, profile, overrides)
    seed_list = [seed + i for i in range(seeds)]
    out = Path(out) if out is not None else runs_dir()
    start = time.perf_counter()
    # Taken before the run: a full run outlives commits made meanwhile, and the report
    # must name the code that ran (and when it started), not the code at the end.
    env = environment()

    def index():
        write_index(out, [e.name for e in catalogue.all_experiments()],
                    reference=None if is_reference(out) else REPORTS)

    with atomic_dir(out / exp.name, then=index) as tmp:
        spec = RunSpec(exp, profile, config, seed, tuple(seed_list), np.dtype(dtype), mode, device, tmp,
                       engine or SerialEngine(), threads, parallel)
        report = Report(exp.name)
        for one_pass in spec.passes():
            exp.run(Context(one_pass, report))
        twin_stats = twin_statistics(report.results)
        if twin_stats:
            # the statistics are the independent pass's: its figure name and section title
            independent = Context(replace(spec, mode="independent", prefix="independent_" if mode == "both" else ""),
                                  report)
            picture = independent.savefig(plot_seeds(twin_stats), "seeds", "each seed's final metric, both twins")
            independent.section("Do the twins differ?", statistics_markdown(twin_stats)
                                + f"\n![each seed's final metric]({picture})\n")
        if report.failures:
            report.add_section("Failed units", failures_markdown(report.failures))
        report.write_csv(tmp / "metrics.csv")
        results = report.results
        lockstep = [r for r in results if r.mode == "lockstep"]
        worst = max((r.max_loss_rel_diff for r in lockstep if r.max_loss_rel_diff is not None), default=None)
        summary = Summary(
            experiment=exp.name, number=exp.number, chapter=exp.chapter, shows=exp.shows,
            profile=profile, mode=mode, seed=seed, seeds=seed_list, dtype=str(spec.dtype),
            device=device, threads=threads, twins="parallel" if parallel else "serial",
            scratch_path="fast" if scratch.is_fast() else "plain",
            config=config, headline_text=report.headline_text,
            wall_time_s=time.perf_counter() - start, engine=spec.engine.description,
            torch_twin=torch_twin_record(results, device), units=report.units_summary(spec.engine),
            environment=env, trained=exp.trained, worst_loss_rel_diff=worst,
            lockstep_tolerance=lockstep_tolerance(spec.dtype),
            models=[model_summary(r) for r in results], parity=report.parities,
            extra=report.extra, figures=[f for f, _ in report.figures],
            twin_statistics=statistics_record(twin_stats), verdict=verdict_text(twin_stats),
            failed_units=[{"unit": repr(f.key), "error": f.error, "attempts": f.attempts,
                           "lost": f.lost, "traceback": f.traceback} for f in report.failures])
        summary.write(tmp)
        (tmp / "report.md").write_text(render_report(summary, results, report.sections, report.figures))
    return out / exp.name


def torch_twin_record(results, device) -> dict:
    """The torch twin's device and float32 settings as its units trained (torch_ref.precision), or as this
    process holds them where nothing was trained."""
    from torch_ref import precision

    recorded = [r.torch_twin for r in results if r.torch_twin]
    if recorded:
        return recorded[0]
    if str(device).startswith("cuda"):
        precision.exact_float32()
    return precision.settings(device)


def model_summary(r) -> dict:
    """One trained model's entry of summary.json's ``models`` (experiments.summary)."""
    return {"label": r.label, "tag": r.tag, "mode": r.mode, "seed": r.seed, "steps": r.steps, "final": r.final,
            "max_loss_rel_diff": r.max_loss_rel_diff, "max_param_diff": r.max_param_diff,
            "first_step_above_tolerance": r.first_step_above(r.tolerance),
            "control_max_loss_rel_diff": None if r.control_loss_rel_diff is None else float(
                np.max(r.control_loss_rel_diff)),
            "control_first_step_above_tolerance": None if r.control_loss_rel_diff is None else r.first_step_above(
                r.tolerance, r.control_loss_rel_diff),
            "float32_vs_shadow": None if r.shadow is None else shadow_summary(r.shadow),
            "tolerance": r.tolerance, "time_per_step_s": r.time_per_step}


def resolve_device(device: str) -> str:
    """The torch twin's device; CUDA falls back to the CPU, with a warning, when absent."""
    if device == "cuda":
        import torch

        if not torch.cuda.is_available():
            warnings.warn("--device cuda: CUDA is not available here; the torch twin runs on the CPU",
                          stacklevel=2)
            return "cpu"
    return device


# -- command line ------------------------------------------------------------------------
def add_list_arguments(parser) -> None:
    parser.add_argument("--names", action="store_true", help="print only the names, one per line")


def main_list(args) -> int:
    exps = catalogue.all_experiments()
    if args.names:
        print("\n".join(e.name for e in exps))
        return 0
    rows = [(str(e.number), e.name, e.chapter, _duration(e.durations.get("quick")),
             _duration(e.durations.get("full")), e.shows) for e in exps]
    head = ("#", "name", "chapter", "quick", "full", "what it shows")
    widths = [max(len(r[i]) for r in rows + [head]) for i in range(5)]
    for r in [head] + rows:
        print("  ".join(c.ljust(w) for c, w in zip(r[:5], widths)) + "  " + r[5])
    return 0


def _duration(seconds) -> str:
    if seconds is None:
        return "?"
    return f"~{seconds:.0f} s" if seconds < 120 else f"~{seconds / 60:.0f} min"


def add_run_arguments(parser) -> None:
    parser.add_argument("names", nargs="+", metavar="NAME",
                        help="experiments to run (see `python -m experiments list`), or 'all'")
    parser.add_argument("--profile", choices=PROFILES, default="quick",
                        help="quick: minutes for the whole catalogue; full: the book's numbers; "
                             "tiny: seconds, generated data (the test suite's) (default: quick)")
    parser.add_argument("--mode", choices=MODES, default="lockstep",
                        help="lockstep: shared seed, weights and batches (default); independent: each twin "
                             "its own initialisation and random numbers over --seeds seeds; both")
    parser.add_argument("--seed", type=at_least(0), default=0, help="the seed, an integer >= 0 (default 0)")
    parser.add_argument("--seeds", type=at_least(1), default=None,
                        help="independent and both modes: number of seeds, --seed, --seed+1, ... (default 3); "
                             "lockstep mode trains --seed alone and refuses it")
    parser.add_argument("--dtype", choices=DTYPES, default="float64", help="both twins' dtype (default float64)")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu",
                        help="the torch twin's device; cuda falls back to cpu with a warning (default cpu)")
    parser.add_argument("--out", type=folder, default=None,
                        help="reports folder (default runs/, ignored by git, or $DLSCRATCH_RUNS; each report is "
                             "compared with the reference in reports/; --out reports regenerates the reference)")
    parser.add_argument("--threads", type=machine_count, default=1,
                        help="threads for each twin (torch's pool; scratch's batch parts, OpenBLAS kept to one "
                             "thread); the twins take turns, and a spinning thread pool slows the other twin "
                             "down (default 1)")
    parser.add_argument("--twins", choices=TWINS, default="serial",
                        help="lockstep: the twins take each step one after the other (serial), side by side on "
                             "two threads (parallel; the same numbers), or side by side where this process has "
                             "2 x --threads cores and no Dask workers (auto) (default serial; docs/paths.md, "
                             "'The twins side by side')")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a setting of the profile, e.g. --set iterations=500 (repeatable)")
    parser.add_argument("--plain", action="store_true",
                        help="run the scratch twin on its plain path (the formulas as written, no threads or "
                             "layout tricks; slower), as SCRATCH_PLAIN=1 does (default: the fast path)")
    dist = parser.add_argument_group("units of work (seeds, variants) on Dask; README, 'Beyond one machine'")
    dist.add_argument("--workers", type=machine_count, default=1,
                      help="run the units on a local Dask cluster of N worker processes (one thread each, "
                           "listening on 127.0.0.1 only); 1 runs them one after another in this process "
                           "(default 1)")
    dist.add_argument("--scheduler", metavar="ADDRESS",
                      help="run the units on an existing Dask cluster: tls://HOST:PORT (with --tls-*) or "
                           "tcp://HOST:PORT (unencrypted: only on a network you trust)")
    dist.add_argument("--connect-timeout", type=seconds, default=CONNECT_TIMEOUT_S, metavar="SECONDS",
                      help="give up on a --scheduler that has not answered within this time, connection and "
                           f"handshake included (default {CONNECT_TIMEOUT_S})")
    dist.add_argument("--wait-workers", type=seconds, default=WAIT_WORKERS_S, metavar="SECONDS",
                      help="wait this long for a worker to join when the cluster has none, at the start or "
                           "after every worker was lost, saying so every 10 s; then give up "
                           f"(default {WAIT_WORKERS_S})")
    dist.add_argument("--tls-ca-file", type=Path, metavar="FILE", help="CA certificate of a tls:// cluster")
    dist.add_argument("--tls-cert", type=Path, metavar="FILE", help="this client's certificate (PEM)")
    dist.add_argument("--tls-key", type=Path, metavar="FILE", help="this client's private key (PEM)")



def parse_overrides(items) -> dict:
    out = {}
    for item in items:
        if "=" not in item:
            raise ValueError(f"--set expects KEY=VALUE, got {item!r}")
        key, value = item.split("=", 1)
        try:
            out[key.strip()] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            out[key.strip()] = value
    return out


def main_run(args) -> int:
    if not args.plain:
        return _main_run(args)
    # The environment too, so that processes started from here take the plain path as well.
    before = os.environ.get("SCRATCH_PLAIN")
    os.environ["SCRATCH_PLAIN"] = "1"
    try:
        with scratch.plain():
            return _main_run(args)
    finally:
        if before is None:
            del os.environ["SCRATCH_PLAIN"]
        else:
            os.environ["SCRATCH_PLAIN"] = before


def _main_run(args) -> int:
    if args.seeds is not None and args.mode == "lockstep":
        print("experiments run: error: --seeds applies to --mode independent or both; lockstep mode trains one "
              "seed (--seed)", file=sys.stderr)
        return 2
    args = argparse.Namespace(**dict(vars(args), seeds=3 if args.seeds is None else args.seeds))
    exps = catalogue.all_experiments()
    valid = [e.name for e in exps]
    names = valid if args.names == ["all"] else args.names
    unknown = [n for n in names if n not in valid]
    if unknown or ("all" in names and len(args.names) > 1):
        bad = ", ".join(repr(n) for n in unknown) or "'all' together with names"
        print(f"experiments run: error: unknown experiment {bad}; valid experiments are: "
              f"{', '.join(valid)} (or 'all')", file=sys.stderr)
        return 2
    try:
        overrides = parse_overrides(args.overrides)
    except ValueError as e:
        print(f"experiments run: error: {e}", file=sys.stderr)
        return 2
    # Settings are checked before anything runs: with several experiments, a setting applies to
    # those whose profile has it, and must belong to at least one.
    plan = []
    for name in names:
        exp = catalogue.get(name)
        own = {k: v for k, v in overrides.items() if k in exp.profiles.get(args.profile, {}) or len(names) == 1}
        try:
            make_config(exp, args.profile, own)
        except ConfigError as e:
            print(f"experiments run: error: {e}", file=sys.stderr)
            return 2
        plan.append((exp, own))
    used = {k for _, own in plan for k in own}
    if set(overrides) - used:
        print(f"experiments run: error: no experiment among {', '.join(names)} has the setting(s) "
              f"{', '.join(sorted(set(overrides) - used))}", file=sys.stderr)
        return 2

    if args.scheduler and args.workers > 1:
        print("experiments run: error: --workers starts a local cluster, --scheduler uses an existing one: "
              "give one of them", file=sys.stderr)
        return 2
    tls = {"--tls-ca-file": args.tls_ca_file, "--tls-cert": args.tls_cert, "--tls-key": args.tls_key}
    if any(tls.values()) and not args.scheduler:
        print("experiments run: error: --tls-* options go with --scheduler tls://HOST:PORT", file=sys.stderr)
        return 2
    missing = [f"{k} {v}" for k, v in tls.items() if v is not None and not v.is_file()]
    if missing:
        print(f"experiments run: error: no such file: {', '.join(missing)}", file=sys.stderr)
        return 2
    # Where the reports go is checked before anything trains: a folder the runner does not own is refused.
    out = args.out if args.out is not None else runs_dir()
    try:
        for exp, _ in plan:
            check_target(out / exp.name)
    except OutputError as e:
        print(f"experiments run: error: {e}", file=sys.stderr)
        return 2
    device = resolve_device(args.device)
    try:
        with make_engine(args.workers, args.scheduler, args.tls_ca_file, args.tls_cert, args.tls_key,
                         connect_timeout=args.connect_timeout, wait_workers=args.wait_workers) as engine:
            if engine.dashboard:
                print(f"Dask: {engine.description}; dashboard {engine.dashboard}{dashboard_note()}",
                      file=sys.stderr, flush=True)
            return _run_plan(plan, args, device, engine)
    except EngineError as e:
        print(f"experiments run: error: {e}", file=sys.stderr)
        return 1


def _run_plan(plan, args, device, engine) -> int:
    # torch.optim imports torch._dynamo (1.4 s here) when it builds its first optimizer. Imported here, before
    # the first experiment: its time is not the first report's, and a Ctrl-C cannot cut it in half (a half-done
    # import of it made the interpreter die of the signal, exit -2, after the clean message and exit 130).
    import torch._dynamo  # noqa: F401

    failed = []
    for exp, own in plan:
        t0 = time.perf_counter()
        print(f"[{exp.number}] {exp.name} ({args.profile}, {args.mode}, seed {args.seed}, {args.dtype}) ...",
              file=sys.stderr, flush=True)
        try:
            folder = run_experiment(exp, args.profile, args.mode, args.seed, args.seeds, args.dtype, device,
                                    args.out, own, args.threads, engine, args.twins)
        except OutputError as e:  # the message says what is where
            print(f"  FAILED: {exp.name}: {e}", file=sys.stderr)
            failed.append(exp.name)
            continue
        except EngineError as e:  # no worker within the deadline: the experiments after it cannot run either
            rest = [e.name for e, _ in plan[plan.index((exp, own)) + 1:]]
            print(f"  FAILED: {exp.name} (its previous report, if any, is untouched): {e}", file=sys.stderr)
            print(f"failed: {', '.join(failed + [exp.name])}" + (f"; not run: {', '.join(rest)}" if rest else ""),
                  file=sys.stderr)
            return 1
        except Exception:  # one broken experiment must not lose the others' reports
            traceback.print_exc()
            print(f"  FAILED: {exp.name} (its previous report, if any, is untouched)", file=sys.stderr)
            failed.append(exp.name)
            continue
        summary = Summary.read(folder)
        print(f"  {summary.headline_text or 'done'} [{time.perf_counter() - t0:.1f} s] -> {folder}/report.md",
              file=sys.stderr, flush=True)
        if not is_reference(folder.parent):
            print(f"  against the reference: {reference_verdict(summary, Summary.read_or_none(REPORTS / exp.name))}",
                  file=sys.stderr, flush=True)
        if summary.verdict:
            print(f"  twins over {args.seeds} seeds: {summary.verdict}", file=sys.stderr, flush=True)
        if summary.failed_units:
            print(f"  FAILED units of {exp.name}: {', '.join(u['unit'] for u in summary.failed_units)} "
                  "(recorded in its report)", file=sys.stderr)
            failed.append(exp.name)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0
