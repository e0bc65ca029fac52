"""Dask's scaling curve beside the machine's own (docs/paths.md, "Dask's scaling").

For each N of ``--workers``, on ``two_layer_mnist --profile quick --mode independent`` (two variants, so
two units a seed, each about 6 s on one core):

- **Dask:** ``experiments run ... --seeds S --workers N`` (S = ``--seeds``, 8 by default as in the issue):
  the experiment time the runner records, its speed-up and efficiency against the serial run's time per
  seed, and from summary.json's ``units`` how busy the workers were and a unit's mean time in them.
- **The machine:** N plain processes at once (no Dask), each running ``experiments run ... --seeds 2``
  serially: a unit's mean time when N processes share the cores, caches and memory, against one process
  alone. That ratio bounds what any scheduler can reach: efficiency <= busy x (unit time alone / unit time
  with N at once), less the client's own serial part (loading the data, writing the report).

The serial baseline: ``--workers 1`` with ``--seeds`` ``--serial-seeds`` (4). Worker start-up (imports,
``experiments.worker``) is outside the experiment time and printed apart (``cluster start``). Prints a
Markdown table. Needs the MNIST cache (``python -m experiments data``); about 3 minutes at N = 1, 2 on two
cores, about 6 at N = 1, 2, 4, 8 on sixteen.

    python tools/dask_scaling.py [--workers 2 4 8] [--seeds 8] [--serial-seeds 4] [--repeats 3]
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

NAME = "two_layer_mnist"


def run(out: Path, seeds: int, workers: int = 1) -> dict:
    """One ``experiments run``; its summary.json with the command's own wall time added."""
    cmd = [sys.executable, "-m", "experiments", "run", NAME, "--profile", "quick", "--mode", "independent",
           "--seeds", str(seeds), "--workers", str(workers), "--out", str(out)]
    start = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    summary = json.loads((out / NAME / "summary.json").read_text())
    summary["command_s"] = time.perf_counter() - start
    return summary


def unit_mean(summary: dict) -> float:
    units = summary["units"]
    return units["unit_seconds"] / units["ran"]


def plain_processes(n: int, tmp: Path) -> float:
    """A unit's mean time with ``n`` serial runs at once, each in its own process (no Dask)."""
    cmd = [sys.executable, "-m", "experiments", "run", NAME, "--profile", "quick", "--mode", "independent",
           "--seeds", "2"]
    procs = [subprocess.Popen(cmd + ["--out", str(tmp / f"plain{n}_{i}")], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL) for i in range(n)]
    for p in procs:
        if p.wait() != 0:
            raise SystemExit(f"a plain run failed (exit {p.returncode})")
    summaries = [json.loads((tmp / f"plain{n}_{i}" / NAME / "summary.json").read_text()) for i in range(n)]
    return sum(s["units"]["unit_seconds"] for s in summaries) / sum(s["units"]["ran"] for s in summaries)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", nargs="+", type=int, default=[2, 4, 8])
    parser.add_argument("--seeds", type=int, default=8)
    parser.add_argument("--serial-seeds", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=1,
                        help="rounds, each running every point once in turn; the table gives medians")
    args = parser.parse_args(argv)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    workers = [n for n in args.workers if n <= cores]
    rows = {n: [] for n in [1] + workers}  # per point, one dict a round
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        for _ in range(args.repeats):  # interleaved: a slow minute of a shared machine spoils one round, not a point
            serial = run(tmp / "serial", args.serial_seeds)
            rows[1].append(dict(experiment=serial["wall_time_s"], per_seed=serial["wall_time_s"] / args.serial_seeds,
                                unit=unit_mean(serial), plain=plain_processes(1, tmp), busy=float("nan"),
                                command=serial["command_s"]))
            for n in workers:
                dask = run(tmp / f"dask{n}", args.seeds, n)
                rows[n].append(dict(experiment=dask["wall_time_s"], unit=unit_mean(dask), busy=dask["units"]["busy"],
                                    plain=plain_processes(n, tmp), command=dask["command_s"]))

    def median(n, key):
        return statistics.median(r[key] for r in rows[n])

    per_seed, alone = median(1, "per_seed"), median(1, "plain")
    print(f"{cores} cores; medians of {args.repeats} round(s); serially {per_seed:.2f} s a seed "
          f"({args.serial_seeds} seeds); one plain process alone: a unit {alone:.2f} s\n")
    print("| workers | seeds | experiment (s) | speed-up | efficiency | workers busy | unit in workers (s) "
          "| N plain processes: unit (s) | machine ceiling | command (s) |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    print(f"| 1 (serial) | {args.serial_seeds} | {median(1, 'experiment'):.1f} | 1.00x | 100% | | "
          f"{median(1, 'unit'):.2f} | {alone:.2f} | 100% | {median(1, 'command'):.1f} |")
    for n in workers:
        speedup = per_seed * args.seeds / median(n, "experiment")
        print(f"| {n} | {args.seeds} | {median(n, 'experiment'):.1f} | {speedup:.2f}x | {speedup / n:.0%} | "
              f"{median(n, 'busy'):.0%} | {median(n, 'unit'):.2f} | {median(n, 'plain'):.2f} | "
              f"{alone / median(n, 'plain'):.0%} | {median(n, 'command'):.1f} |")


if __name__ == "__main__":
    main()
