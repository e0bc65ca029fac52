"""Lockstep wall time with the twins one after the other and side by side (docs/paths.md).

For each experiment, runs ``experiments run NAME --profile quick`` with ``--twins serial`` and
``--twins parallel``, interleaved (serial, parallel, serial, ...), ``--repeats`` times each, at each
``--threads`` count, and prints the median of the experiment's wall time (summary.json's
``wall_time_s``) and of each twin's time per step, and checks that both modes wrote the same
metrics.csv (the same numbers, bit for bit, on one machine).

    python tools/lockstep_timing.py [--names simple_convnet deep_convnet] [--threads 1 2] [--repeats 3]
"""
import argparse
import filecmp
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path


def run(name, twins, threads, out, extra):
    cmd = [sys.executable, "-m", "experiments", "run", name, "--profile", "quick", "--twins", twins,
           "--threads", str(threads), "--out", str(out), *extra]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    summary = json.loads((out / name / "summary.json").read_text())
    steps = [m["time_per_step_s"] for m in summary["models"] if m["mode"] == "lockstep"]
    per_step = {impl: sum(s.get(impl, 0.0) for s in steps) for impl in ("scratch", "torch")}
    return summary["wall_time_s"], per_step


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--names", nargs="+", default=["two_layer_mnist", "simple_convnet", "deep_convnet",
                                                        "dropout_overfit"])
    parser.add_argument("--threads", nargs="+", type=int, default=[1, 2])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--dtype", default=None, help="--dtype for every run (default: each experiment's own)")
    args = parser.parse_args(argv)
    extra = ["--dtype", args.dtype] if args.dtype else []
    print("| experiment | threads per twin | serial (s) | parallel (s) | parallel / serial | "
          "scratch step, serial / parallel (ms) | torch step, serial / parallel (ms) | same metrics |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.names:
            for threads in args.threads:
                times = {"serial": [], "parallel": []}
                steps = {"serial": [], "parallel": []}
                for i in range(args.repeats):
                    for twins in ("serial", "parallel"):
                        wall, per_step = run(name, twins, threads, Path(tmp) / f"{twins}{i}", extra)
                        times[twins].append(wall)
                        steps[twins].append(per_step)
                same = all(filecmp.cmp(Path(tmp) / f"serial{i}" / name / "metrics.csv",
                                       Path(tmp) / f"parallel{i}" / name / "metrics.csv", shallow=False)
                           for i in range(args.repeats))
                s, p = statistics.median(times["serial"]), statistics.median(times["parallel"])
                ms = {k: {impl: 1000 * statistics.median(d[impl] for d in v) for impl in ("scratch", "torch")}
                      for k, v in steps.items()}
                print(f"| {name} | {threads} | {s:.1f} | {p:.1f} | {p / s:.2f} | "
                      f"{ms['serial']['scratch']:.2f} / {ms['parallel']['scratch']:.2f} | "
                      f"{ms['serial']['torch']:.2f} / {ms['parallel']['torch']:.2f} | {'yes' if same else 'NO'} |",
                      flush=True)


if __name__ == "__main__":
    main()
