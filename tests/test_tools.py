"""The scripts in tools/ that back a figure in the docs."""
import importlib.util
from pathlib import Path

import numpy as np

from experiments.lockstep import train_lockstep
from experiments.shadow import error_ratio_verdict
from experiments.threads import threads

TOOLS = Path(__file__).resolve().parent.parent / "tools"


def load(name):
    spec = importlib.util.spec_from_file_location(name, TOOLS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_shadow_seeds_reports_each_seeds_early_and_whole_ratios(small_mnist, capsys):
    tool = load("shadow_seeds")
    figures = tool.main(["--seeds", "2", "--steps", "3"])
    printed = capsys.readouterr().out.splitlines()
    assert [line.split(":")[0] for line in printed[:2]] == ["seed 0", "seed 1"]
    assert printed[-1].startswith("all 3: median ratio from ")
    assert list(figures) == ["before 1e-4", "before 1e-3", "all 3"] and all(len(v) == 2 for v in figures.values())
    # the whole-prefix figure is the run's own verdict: the same training, measured independently here
    from experiments.data import load_mnist
    from experiments.training import Data
    (x, t), (xt, tt) = load_mnist(flatten=False, dtype=np.float64)
    with threads(1):  # as the tool trains: the same process and threads, so the same bits on any machine
        result = train_lockstep(tool.recipe(3), Data(x, t, xt[:100], tt[:100]), seed=1, dtype=np.float32)
    v = error_ratio_verdict(result.shadow["err"]["scratch"], result.shadow["err"]["torch"])
    assert figures["all 3"][1] == v["median_ratio"]
