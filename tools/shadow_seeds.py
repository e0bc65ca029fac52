"""How much a float32 run's early error ratio depends on the seed (docs/design.md, "Float32 parity").

The float32 verdict is the median over the shadow's steps of error(scratch) /
error(torch). One might take only the first steps, before chaos carries both
twins away from the float64 shadow. This script measures what that figure is
worth: residual_net's full-profile model, Adam and cosine schedule (T_max of
the full run, 12,000 steps) and shift augmentation, in float32 lockstep with
the float64 shadow, for the first STEPS steps on MNIST, for several seeds, and
prints per seed the median ratio over the steps before either twin's error
passes 1e-4 and 1e-3, and over all STEPS.

    python tools/shadow_seeds.py [--seeds 10] [--steps 100]

About 25 s a seed on one core. Needs the MNIST cache (``python -m experiments data``).
"""
import argparse
import dataclasses
import statistics

import numpy as np

from experiments import catalogue
from experiments.catalogue.residual_net import recipe_for
from experiments.data import load_mnist
from experiments.lockstep import train_lockstep
from experiments.runner import make_config
from experiments.shadow import error_ratio_verdict
from experiments.threads import threads
from experiments.training import Data, Recipe

FULL_STEPS = 12000  # residual_net's full profile: 20 epochs of 600 batches


def recipe(steps: int) -> Recipe:
    """residual_net's full-profile recipe (its cosine over all 12,000 steps), cut to the first ``steps``."""
    full = recipe_for(make_config(catalogue.get("residual_net"), "full"), FULL_STEPS)
    return dataclasses.replace(full, iterations=steps, epochs=None, eval_train=False, param_every=steps)


def main(argv=None) -> dict:
    """Prints a line per seed and the spread; returns {figure: [median ratio per seed]}."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--steps", type=int, default=100)
    args = parser.parse_args(argv)
    (x, t), (xt, tt) = load_mnist(flatten=False, dtype=np.float64)
    data = Data(x, t, xt[:100], tt[:100])
    figures = {"before 1e-4": [], "before 1e-3": [], f"all {args.steps}": []}
    with threads(1):
        for seed in range(args.seeds):
            result = train_lockstep(recipe(args.steps), data, seed=seed, dtype=np.float32)
            a, b = (np.asarray(result.shadow["err"][impl], dtype=np.float64) for impl in ("scratch", "torch"))
            line = []
            for name, mark in (("before 1e-4", 1e-4), ("before 1e-3", 1e-3), (f"all {args.steps}", None)):
                above = np.flatnonzero((a > mark) | (b > mark)) if mark else np.array([], dtype=int)
                k = int(above[0]) if above.size else len(a)
                v = error_ratio_verdict(a[:k], b[:k])
                figures[name].append(v["median_ratio"])
                line.append(f"{name}: {v['median_ratio']:.3g} over {v['steps']} steps")
            print(f"seed {seed}: " + "; ".join(line), flush=True)
    for name, values in figures.items():
        print(f"{name}: median ratio from {min(values):.3g} to {max(values):.3g} between seeds, "
              f"median over seeds {statistics.median(values):.3g}")
    return figures


if __name__ == "__main__":
    main()
