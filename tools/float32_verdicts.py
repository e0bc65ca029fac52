"""The float32 verdict of several seeds, with its interval (docs/design.md, "Float32 parity"; issue 26).

Runs ``experiments run NAME --profile quick --dtype float32 --seed K --twins parallel`` (the twins side
by side: the same numbers as one after the other) for each name and seed, and prints per run the median
error ratio against the float64 shadow (scratch / torch), its 95% interval, the verdict and the accuracy
of both twins, as a Markdown table. The verdict of one seed is a statement about that seed's trajectory;
the table shows how far it carries to the next.

    python tools/float32_verdicts.py [--names simple_convnet deep_convnet] [--seeds 0 1 2 3 4]

About 30 s a run for simple_convnet, 45 s for deep_convnet on two cores. Needs the MNIST cache.
"""
import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--names", nargs="+", default=["simple_convnet", "deep_convnet"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3, 4])
    parser.add_argument("--profile", default="quick")
    args = parser.parse_args(argv)
    print("| experiment | seed | steps | median ratio | 95% interval | verdict | test accuracy, scratch / torch |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.names:
            for seed in args.seeds:
                out = Path(tmp) / f"{name}{seed}"
                subprocess.run([sys.executable, "-m", "experiments", "run", name, "--profile", args.profile,
                                "--dtype", "float32", "--seed", str(seed), "--twins", "parallel", "--out", str(out)],
                               check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                summary = json.loads((out / name / "summary.json").read_text())
                for m in summary["models"]:
                    v = m.get("float32_vs_shadow")
                    if not v:
                        continue
                    word = v["verdict"]
                    if v.get("steps_to_settle"):
                        word += f" (about {v['steps_to_settle']:,} steps would settle it)"
                    final = m.get("final", {})
                    accuracy = " / ".join(f"{final[t]['test_acc']:.2%}" for t in ("scratch", "torch")
                                          if "test_acc" in final.get(t, {}))
                    print(f"| {name} | {seed} | {v['steps']} | {v['median_ratio']:.3g} | "
                          f"[{v['ci_low']:.3g}, {v['ci_high']:.3g}] | {word} | {accuracy} |", flush=True)


if __name__ == "__main__":
    main()
