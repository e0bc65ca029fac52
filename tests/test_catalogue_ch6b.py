"""Catalogue entries 12-15 (chapter 6, second half): weight_decay_overfit, dropout_overfit,
hyperparam_search, lr_schedules.

Each runs end to end on its tiny profile (generated data) into a temporary folder
and must leave a complete report; in lockstep, float64, the twins' losses agree to
1e-9 relative at every step of every training (read back from metrics.csv, not
only from the summary).
"""
import csv

import pytest

from experiments import catalogue
from experiments.compare import TOLERANCE
from experiments.runner import run_experiment
from experiments.summary import Summary

NAMES = ["weight_decay_overfit", "dropout_overfit", "hyperparam_search", "lr_schedules"]


def run(name, tmp_path, **kw):
    folder = run_experiment(catalogue.get(name), "tiny", out=tmp_path, **kw)
    summary = Summary.read(folder)
    with open(folder / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    return folder, summary, rows


def assert_complete(folder, summary):
    report = (folder / "report.md").read_text()
    headings = ["## What was run", "## Environment"] + (["## Parity"] if summary.mode == "lockstep" else [])
    for heading in headings:
        assert heading in report, heading
    assert summary.headline_text
    assert summary.figures, "no plot"
    for name in summary.figures:
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


def assert_lockstep(summary, rows, tol=TOLERANCE["lockstep"]):
    trained = [m for m in summary.models if m["mode"] == "lockstep"]
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
    assert summary.trained
    assert_lockstep(summary, rows)
    for p in summary.parity:
        if p["tolerance"] is not None:
            assert float(p["value"]) <= float(p["tolerance"]), p["name"]


def test_weight_decay_book_form_equals_optimizer_form(lockstep_runs):
    """The book's L2 term in the loss and SGD's weight_decay on the weights are one update rule."""
    folder, summary, _ = lockstep_runs("weight_decay_overfit")
    diffs = summary.extra["book_form_param_diff"]
    assert diffs["scratch_vs_optimizer"] < 1e-12
    assert diffs["torch_vs_optimizer"] < 1e-12
    assert diffs["scratch_vs_torch"] < 1e-12


def test_lr_schedules_rates_equal_torch(lockstep_runs):
    """The replayed schedules: every rate (and one-cycle's momentum) equal to torch's within 1e-12."""
    folder, summary, rows = lockstep_runs("lr_schedules")
    rates = [p for p in summary.parity if "rate" in p["name"] or "momentum" in p["name"]]
    assert len(rates) == 4
    assert all(float(p["value"]) <= 1e-12 for p in rates)
    logged = [r for r in rows if r["metric"] == "one_cycle/lr"]
    scratch = [float(r["value"]) for r in logged if r["impl"] == "scratch"]
    torch_ = [float(r["value"]) for r in logged if r["impl"] == "torch"]
    assert len(scratch) == len(torch_) == summary.models[-1]["steps"]
    assert scratch[0] == pytest.approx(summary.config["max_lr"] / 25, rel=1e-12)  # starts at max_lr / div_factor
    assert max(scratch) <= summary.config["max_lr"] and scratch[-1] < scratch[0]


def test_hyperparam_search_independent(tmp_path):
    """Independent mode: each twin on its own initialisation, every trial, a complete report."""
    folder, summary, rows = run("hyperparam_search", tmp_path, mode="independent", seeds=2)
    assert_complete(folder, summary)
    assert {m["mode"] for m in summary.models} == {"independent"}
    assert len(summary.extra["trials"]) == summary.config["trials"]
    lrs = [t["lr"] for t in summary.extra["trials"]]
    assert all(1e-6 <= lr <= 1e-2 for lr in lrs)
    assert all(1e-8 <= t["weight_decay"] <= 1e-4 for t in summary.extra["trials"])


@pytest.mark.slow
@pytest.mark.parametrize("name", ["weight_decay_overfit", "dropout_overfit", "lr_schedules"])
def test_tiny_independent_and_float32(name, tmp_path):
    folder, summary, _ = run(name, tmp_path / "independent", mode="independent", seeds=2)
    assert_complete(folder, summary)
    folder, summary, rows = run(name, tmp_path / "float32", dtype="float32")
    assert_complete(folder, summary)
    # float32 lockstep: reported, not asserted by docs/design.md; a few steps stay within float32 round-off.
    assert all(m["max_loss_rel_diff"] < 1e-5 for m in summary.models)


def test_same_seed_same_metrics(lockstep_runs, tmp_path):
    """A re-run with the same seed writes the same metrics.csv, byte for byte (the trial draws included)."""
    folder, _, _ = lockstep_runs("hyperparam_search")
    again, _, _ = run("hyperparam_search", tmp_path)
    assert (again / "metrics.csv").read_bytes() == (folder / "metrics.csv").read_bytes()
    other = run_experiment(catalogue.get("hyperparam_search"), "tiny", out=tmp_path / "seed1", seed=1)
    assert Summary.read(other).extra["trials"] != \
        Summary.read(folder).extra["trials"]


def test_dropout_book_variant_recorded(lockstep_runs):
    """The book's non-inverted dropout runs beside the twins (scratch only) and is logged under impl 'book'."""
    folder, summary, rows = lockstep_runs("dropout_overfit")
    final = summary.extra["book_dropout"]
    assert 0 <= final["train_acc"] <= 1 and 0 <= final["test_acc"] <= 1
    book = [r for r in rows if r["impl"] == "book" and r["metric"] == "book_dropout/loss"]
    steps = [m["steps"] for m in summary.models if m["label"].startswith("dropout")][0]
    assert len(book) == steps and all(float(r["value"]) > 0 for r in book)
    assert "book's own dropout" in (folder / "report.md").read_text()
