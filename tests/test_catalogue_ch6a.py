"""Catalogue entries 7-11 (chapter 6, first half) on the tiny profile: complete reports, lockstep parity.

Each experiment runs end to end through the runner into a temporary folder and
must leave report.md, metrics.csv, summary.json and the plots its report names;
trained ones must keep the twins' losses within 1e-9 relative at every step
(float64 lockstep), read from the runner's own parity record in summary.json.
"""
import csv
import json
import re

import numpy as np
import pytest

from experiments import catalogue
from experiments.compare import TOLERANCE
from experiments.runner import run_experiment
from experiments.summary import Summary

LOCKSTEP_TOL = TOLERANCE["lockstep"]


def run_tiny(name, tmp_path, **kwargs):
    folder = run_experiment(catalogue.get(name), profile="tiny", out=tmp_path, **kwargs)
    summary = Summary.read(folder)
    report = (folder / "report.md").read_text()
    with open(folder / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    return folder, summary, report, rows


def assert_complete(folder, summary, report, rows, parity=True):
    assert rows, "metrics.csv is empty"
    assert summary.headline_text
    for png in summary.figures:
        assert (folder / png).stat().st_size > 1000, png
    for link in re.findall(r"!\[[^\]]*\]\(([^)]+)\)", report):
        assert (folder / link).exists(), link
    assert "## Environment" in report and ("## Parity" in report or not parity)
    assert "**NO**" not in report  # every parity figure with a tolerance is within it


def assert_lockstep(summary, n_models):
    models = [m for m in summary.models if m["mode"] == "lockstep"]
    assert len(models) == n_models
    for m in models:
        assert m["max_loss_rel_diff"] is not None
        assert m["max_loss_rel_diff"] <= LOCKSTEP_TOL, (m["label"], m["max_loss_rel_diff"])
        assert m["first_step_above_tolerance"] is None
        for impl in ("scratch", "torch"):
            assert np.isfinite(m["final"][impl]["last_batch_loss"])
    assert summary.worst_loss_rel_diff <= LOCKSTEP_TOL


# -- 7. optimizer_paths --------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_optimizer_paths(tmp_path, dtype):
    folder, summary, report, rows = run_tiny("optimizer_paths", tmp_path, dtype=dtype)
    assert_complete(folder, summary, report, rows)
    tol = 1e-12 if dtype == "float64" else 1e-5
    twin = [p for p in summary.parity if "vs torch.optim" in p["name"] and "book" not in p["name"]]
    assert len(twin) == 5 and all(p["value"] <= tol and p["tolerance"] == tol for p in twin)
    # The book's SGD is PyTorch's; its Nesterov is not (the velocity after the update, not before).
    book = summary.extra["book_vs_torch"]
    assert book["SGD"] <= tol and book["Momentum"] <= 1e3 * tol
    assert book["Nesterov"] > 1e-3
    # Every path starts at (-7, 2) and SGD with lr 0.95 flips the sign of y at every step (the zig-zag).
    ys = [float(r["value"]) for r in rows if r["impl"] == "torch" and r["metric"] == "SGD/y"]
    assert ys[0] == 2.0 and len(ys) == 31
    assert all(a * b < 0 for a, b in zip(ys, ys[1:]))


# -- 8. optimizer_compare_mnist ------------------------------------------------------------------------
def test_optimizer_compare_mnist(tmp_path):
    folder, summary, report, rows = run_tiny("optimizer_compare_mnist", tmp_path)
    assert_complete(folder, summary, report, rows)
    assert_lockstep(summary, 5)
    steps = {r["step"] for r in rows if r["metric"] == "Adam/loss" and r["impl"] == "torch"}
    assert len(steps) == summary.config["iterations"]


# -- 9. weight_init_activations ------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_weight_init_activations(tmp_path, dtype):
    folder, summary, report, rows = run_tiny("weight_init_activations", tmp_path, dtype=dtype)
    assert_complete(folder, summary, report, rows)
    if dtype == "float64":  # the twins against each other
        acts = [p for p in summary.parity if "scratch vs torch activations" in p["name"]]
        assert len(acts) == 12 and all(p["value"] <= 1e-10 for p in acts)
    else:  # each twin against torch float64: five layers amplify round-off beyond the one-layer 1e-5
        acts = [p for p in summary.parity if "float32 error / torch's" in p["name"]]
        assert len(acts) == 12 and all(p["tolerance"] == 2.0 and p["value"] <= 2.0 for p in acts)
    counts = [p for p in summary.parity if p["name"].startswith("histogram counts")]
    if dtype == "float64":
        assert counts[0]["value"] == 0
    # Same bins, same counts: every histogram of each twin sums to the number of outputs in range.
    hist = {}
    for r in rows:
        if r["metric"].endswith("/hist"):
            hist.setdefault((r["impl"], r["metric"]), []).append(int(r["value"]))
    assert len(hist) == 2 * 12 * 5 and all(len(h) == 30 for h in hist.values())
    cells = summary.config["samples"] * summary.config["nodes"]
    assert all(sum(h) == cells for (impl, m), h in hist.items() if m.startswith("sigmoid/"))
    # The book's observations, measured: sigmoid with std 1 saturates, std 0.01 collapses towards 0.5,
    # and He keeps ReLU's spread where std 0.01 lets it vanish.
    spread = summary.extra["last_layer_std"]
    assert spread["sigmoid/std=0.01"] < 0.05 < spread["sigmoid/Xavier"] < spread["sigmoid/std=1"]
    assert spread["relu/std=0.01"] < 1e-4 < 0.3 < spread["relu/He"]


# -- 10. weight_init_compare ---------------------------------------------------------------------------
def test_weight_init_compare(tmp_path):
    folder, summary, report, rows = run_tiny("weight_init_compare", tmp_path)
    assert_complete(folder, summary, report, rows)
    assert_lockstep(summary, 3)
    labels = [m["label"] for m in summary.models]
    assert [label.split(" ")[0] for label in labels] == ["std=0.01", "Xavier", "He"]
    # The three nets start from the same normal draws: their first losses are all close to ln 10.
    first = [float(r["value"]) for r in rows if r["impl"] == "scratch" and r["metric"].endswith("/loss")
             and r["step"] == "1"]
    assert len(first) == 3 and all(abs(v - np.log(10)) < 0.5 for v in first)


# -- 11. batchnorm_compare -----------------------------------------------------------------------------
def test_batchnorm_compare(tmp_path):
    folder, summary, report, rows = run_tiny("batchnorm_compare", tmp_path)
    assert_complete(folder, summary, report, rows)
    n = summary.config["scales"]
    assert_lockstep(summary, 2 * n)
    labels = [m["label"] for m in summary.models]
    assert labels[0] == "w=1, BatchNorm" and labels[-1] == "w=0.0001, Normal"
    # Accuracy is measured on the training images after every epoch (and before the first).
    acc = [r for r in rows if r["metric"] == "w0/BatchNorm/train_acc" and r["impl"] == "torch"]
    assert len(acc) == summary.config["epochs"] + 1
    parity = {p["name"]: p for p in summary.parity}
    assert parity["runs whose twins' losses turned non-finite at different steps"]["value"] == 0
    gap = [p for name, p in parity.items() if name.startswith("final parameters: largest")][0]
    assert gap["value"] <= 1e-10


def _result(a, b):
    from experiments.training import TrainResult

    a, b = np.array(a, dtype=float), np.array(b, dtype=float)
    with np.errstate(invalid="ignore"):
        rel = np.where(a == b, 0.0, np.abs(a - b) / np.abs(b))
    steps = np.arange(1, len(a) + 1)
    return TrainResult("m", "", "lockstep", 0, len(a), {}, {"scratch": {"step": steps, "loss": a},
                                                         "torch": {"step": steps, "loss": b}}, {},
                       loss_rel_diff=rel)


def test_batchnorm_breakdown_counts_only_when_both_twins_break_down():
    from experiments.catalogue.batchnorm_compare import diverged_together

    together = _result([2.3, 1e4, np.nan, np.nan], [2.3, 1e4 * (1 + 1e-15), np.nan, np.nan])
    assert diverged_together(together) == {"scratch": 3, "torch": 3}
    assert np.nanmax(together.loss_rel_diff) < 1e-14 and not np.isnan(together.loss_rel_diff).any()
    apart = _result([2.3, np.nan, np.nan], [2.3, 5.0, np.nan])
    assert diverged_together(apart) == {"scratch": 2, "torch": 3}
    assert np.isnan(apart.loss_rel_diff[1])  # one twin broke down: the difference stays undefined, not 0
    inf = _result([2.3, np.inf, -np.inf], [2.3, np.inf, np.inf])
    diverged_together(inf)
    assert inf.loss_rel_diff[1] == 0 and np.isnan(inf.loss_rel_diff[2])


# -- both modes ------------------------------------------------------------------------------------------
def test_independent_mode_reports_distributions(tmp_path):
    folder, summary, report, rows = run_tiny("weight_init_compare", tmp_path, mode="independent", seeds=2)
    assert_complete(folder, summary, report, rows, parity=False)
    assert [m["mode"] for m in summary.models] == ["independent"] * 6  # 3 inits x 2 seeds
    assert "mean +- std" in report
    assert {r["seed"] for r in rows if r["metric"] == "He/loss"} == {"0", "1"}


def test_same_seed_same_metrics(tmp_path):
    a = run_tiny("batchnorm_compare", tmp_path / "a", seed=3)
    b = run_tiny("batchnorm_compare", tmp_path / "b", seed=3)
    assert (a[0] / "metrics.csv").read_bytes() == (b[0] / "metrics.csv").read_bytes()
