"""Catalogue entries 12-15 (chapter 6, second half): weight_decay_overfit, dropout_overfit,
hyperparam_search, lr_schedules.

Each runs end to end on its tiny profile (generated data) into a temporary folder
and must leave a complete report; in lockstep, float64, the twins' losses agree to
1e-9 relative at every step of every training (read back from metrics.csv, not
only from the summary).
"""
import csv
import json

import numpy as np
import pytest

from experiments import catalogue
from experiments.runner import run_experiment

NAMES = ["weight_decay_overfit", "dropout_overfit", "hyperparam_search", "lr_schedules"]


def run(name, tmp_path, **kw):
    folder = run_experiment(catalogue.get(name), "tiny", out=tmp_path, **kw)
    summary = json.loads((folder / "summary.json").read_text())
    with open(folder / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    return folder, summary, rows


def assert_complete(folder, summary):
    report = (folder / "report.md").read_text()
    for heading in ("## What was run", "## Parity", "## Environment"):
        assert heading in report, heading
    assert summary["headline_text"]
    assert summary["figures"], "no plot"
    for name in summary["figures"]:
        assert (folder / name).stat().st_size > 1000, name
        assert f"({name})" in report, f"{name} is not shown in report.md"
    assert (folder.parent / "README.md").exists()


def loss_rel_diffs(rows):
    """Every recorded per-step relative loss difference between the twins, by metric."""
    out = {}
    for r in rows:
        if r["impl"] == "diff" and r["metric"].endswith("loss_rel_diff"):
            out.setdefault(r["metric"], []).append(float(r["value"]))
    return out


def assert_lockstep(summary, rows, tol=1e-9):
    trained = [m for m in summary["models"] if m["mode"] == "lockstep"]
    assert trained, "no lockstep training recorded"
    for m in trained:
        assert m["max_loss_rel_diff"] is not None and m["max_loss_rel_diff"] <= tol, m["label"]
        assert m["max_param_diff"] is not None and m["max_param_diff"] < 1e-10, m["label"]
    diffs = loss_rel_diffs(rows)
    assert sum(len(v) for v in diffs.values()) >= sum(m["steps"] for m in trained)
    for metric, values in diffs.items():
        assert max(values) <= tol, metric
    # Each twin's losses were recorded at every step, and they are not all trivially equal to zero.
    losses = [float(r["value"]) for r in rows if r["impl"] == "scratch" and r["metric"].endswith("loss")
              and r["step"] and r["metric"].split("/")[-1] == "loss"]
    assert losses and min(losses) > 0


@pytest.fixture(scope="module")
def lockstep_runs(tmp_path_factory):
    """Each experiment's tiny lockstep float64 run, run once for the tests that read it."""
    out = tmp_path_factory.mktemp("reports")
    cache = {}

    def get(name):
        if name not in cache:
            cache[name] = run(name, out)
        return cache[name]
    return get


@pytest.mark.parametrize("name", NAMES)
def test_tiny_lockstep_float64(name, lockstep_runs):
    folder, summary, rows = lockstep_runs(name)
    assert_complete(folder, summary)
    assert summary["trained"]
    assert_lockstep(summary, rows)
    for p in summary["parity"]:
        if p["tolerance"] is not None:
            assert float(p["value"]) <= float(p["tolerance"]), p["name"]


def test_weight_decay_book_form_equals_optimizer_form(lockstep_runs):
    """The book's L2 term in the loss and SGD's weight_decay on the weights are one update rule."""
    folder, summary, _ = lockstep_runs("weight_decay_overfit")
    diffs = summary["extra"]["book_form_param_diff"]
    assert diffs["scratch_vs_optimizer"] < 1e-12
    assert diffs["torch_vs_optimizer"] < 1e-12
    assert diffs["scratch_vs_torch"] < 1e-12
