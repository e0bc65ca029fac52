"""Catalogue, second wave (issue 7, entries 1-3): numerical_diff, gradient_descent, activation_functions.

None of them trains a network; each runs end to end on its tiny profile into a
temporary folder, in float64 and float32, and must leave a complete report whose
parity figures are within their tolerances. The book's facts are checked from the
outside, by values written here, not by reading the code's own tables.
"""
import csv
import math

import numpy as np
import pytest

from experiments import catalogue
from experiments.runner import run_experiment
from experiments.summary import Summary

NAMES = ["numerical_diff", "gradient_descent", "activation_functions"]


def run(name, out, dtype="float64"):
    folder = run_experiment(catalogue.get(name), "tiny", out=out, dtype=dtype)
    summary = Summary.read(folder)
    with open(folder / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    return folder, summary, rows


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    out = tmp_path_factory.mktemp("reports")
    cache = {}

    def get(name, dtype="float64"):
        if (name, dtype) not in cache:
            cache[name, dtype] = run(name, out / dtype, dtype)
        return cache[name, dtype]
    return get


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("name", NAMES)
def test_tiny_report_complete_and_within_tolerance(name, dtype, runs):
    folder, summary, rows = runs(name, dtype)
    report = (folder / "report.md").read_text()
    for heading in ("## What was run", "## Parity", "## Environment"):
        assert heading in report
    assert summary.headline_text and not summary.trained
    assert summary.figures
    for f in summary.figures:
        assert (folder / f).stat().st_size > 1000 and f"({f})" in report
    assert rows, "metrics.csv is empty"
    checked = [p for p in summary.parity if p["tolerance"] is not None]
    assert checked
    for p in checked:
        assert float(p["value"]) <= float(p["tolerance"]), p["name"]


def test_numerical_diff_notes_facts(runs):
    _, summary, rows = runs("numerical_diff")
    notes = {(r["function"], r["dtype"]): r for r in summary.extra["notes_bad_derivative"]}
    book = notes["0.01x^2 + 0.1x at x = 5", "float64"]
    assert float(book["notes' code (h = 10e-50)"]) == 0.0  # x + h == x in float64
    assert math.isnan(float(notes["0.01x^2 + 0.1x at x = 5", "float32"]["notes' code (h = 10e-50)"]))  # h -> 0
    assert float(book["central, h = 1e-4"]) == pytest.approx(0.2, rel=1e-9)  # the book's 0.1999999999990898
    best = summary.extra["best_h"]
    # Truncation meets round-off near eps^(1/3) (central) and eps^(1/2) (forward): within a factor 30.
    for dtype, eps in (("float32", np.finfo(np.float32).eps), ("float64", np.finfo(np.float64).eps)):
        assert abs(math.log10(best[f"{dtype}/central"] / eps ** (1 / 3))) < 1.5
        assert abs(math.log10(best[f"{dtype}/forward"] / eps ** 0.5)) < 1.5
    assert best["float64/central"] < best["float32/central"]
    # The errors were recorded for every h of the sweep.
    hs = [float(r["value"]) for r in rows if r["impl"] == "input"]
    assert hs[0] == pytest.approx(1e-1) and hs[-1] == pytest.approx(1e-20)


def test_gradient_descent_book_values(runs):
    _, summary, _ = runs("gradient_descent")
    final = summary.extra["final_20"]
    # lr 0.1: x_k = 0.8^k x_0 exactly in real arithmetic.
    np.testing.assert_allclose(final["0.1"]["analytic (scratch SGD)"], 0.8 ** 20 * np.array([-3.0, 4.0]), rtol=1e-13)
    np.testing.assert_allclose(final["0.1"]["autograd (torch SGD)"], 0.8 ** 20 * np.array([-3.0, 4.0]), rtol=1e-13)
    # lr 10: the factor is -19 per step.
    np.testing.assert_allclose(final["10"]["autograd (torch SGD)"], 19.0 ** 20 * np.array([-3.0, 4.0]), rtol=1e-12)
    # The book's printed 100-step results, to the 9 digits it prints.
    assert summary.extra["book_gap"] < 1e-8


def test_activation_functions_conventions_at_zero(runs):
    folder, summary, rows = runs("activation_functions")
    names = {p["name"].split(":")[0] for p in summary.parity}
    assert names == {"step", "sigmoid", "tanh", "ReLU", "LeakyReLU", "softmax"}
    report = (folder / "report.md").read_text()
    # f(0) and f'(0), scratch / torch: sigmoid'(0) = 1/4, tanh'(0) = 1, ReLU'(0) = 0 as PyTorch.
    assert "| sigmoid | " in report and "0.5 / 0.5 | 0.25 / 0.25 |" in report
    assert "| ReLU | 0 | 0 | 0 / 0 | 0 / 0 |" in report
    assert "| LeakyReLU | 0 | 0 | 0 / 0 | 0.01 / 0.01 |" in report
