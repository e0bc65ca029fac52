"""Float32 accuracy against the exact answer (docs/design.md, "Float32 parity"), layer by layer."""
import argparse

import numpy as np
import torch

import scratch
import scratch.nn as snn
from experiments import gradcheck
from experiments.summary import Summary


def test_tanh_backward_near_saturation_is_as_accurate_as_torchs():
    # 1 - y*y cancels near |y| = 1 (its relative error was ~30x torch's there); (1 - y)(1 + y) does not
    x = np.random.default_rng(0).uniform(1.5, 4.0, 100_000).astype(np.float32)
    g = np.ones_like(x)
    for fast in (True, False):
        with scratch.paths.using(fast=fast):
            layer = snn.Tanh()
            y = layer(x)
            ours = layer.backward(g)
        exact = 1 - y.astype(np.float64) ** 2  # the exact derivative at the float32 output both twins hold
        theirs = torch.ops.aten.tanh_backward(torch.from_numpy(g), torch.from_numpy(y)).numpy()
        rel = lambda v: np.abs(v - exact) / np.abs(exact)  # noqa: E731
        assert np.median(rel(ours)) <= 2 * np.median(rel(theirs)) and rel(ours).max() <= 2 * rel(theirs).max()


def test_gradcheck_float32_reports_each_twin_against_float64(tmp_path, capsys):
    args = argparse.Namespace(layers=["Linear", "Tanh"], configs=2, seed=0, dtype="float32", out=str(tmp_path))
    assert gradcheck.main(args) == 0
    printed = capsys.readouterr().out
    assert "vs float64, scratch / torch:" in printed
    report = (tmp_path / "gradcheck" / "report.md").read_text()
    assert "## Float32: each twin against the exact answer" in report
    table = report.split("## Float32")[1]
    rows = [line for line in table.splitlines() if line.startswith("| Tanh |")]
    assert len(rows) == 2 and all(line.rstrip().endswith("| as accurate |") for line in rows)  # fast and plain
    assert "torch float64" not in report.split("## Results")[1].split("## Float32")[0]  # float32 checks only
    assert "| median_ratio | 95% interval | worst_ratio | verdict |" in table


def test_float32_rows_of_a_real_run_hold_their_medians_in_their_intervals():
    rows = gradcheck.float32_rows(gradcheck.run_checks(["Linear", "Tanh", "LogSoftmax"], 4, 0, dtype="float32"))
    assert len(rows) == 6 and all(r["configs"] == 4 for r in rows)
    for r in rows:
        assert r["ci_low"] <= r["median_ratio"] <= r["ci_high"], r
        assert r["verdict"] != "less accurate", r  # scratch's layers are as accurate as torch's (the default run)


def _records(ratios_per_config, check="torch float32"):
    """float32 records of one layer: configuration i's tensors get the ratios ratios_per_config[i]."""
    return [{"layer": "L", "check": check, "config": i, "ratio_vs_float64": ratio, "float64_error": ratio * 1e-7,
             "torch_float64_error": 1e-7} for i, ratios in enumerate(ratios_per_config) for ratio in ratios]


def test_float32_rows_verdicts_on_constructed_records():
    rng = np.random.default_rng(0)

    def spread(center, configs=10):  # 3 tensors a configuration, within a factor 1.3 of center
        return [center * rng.uniform(1 / 1.3, 1.3, 3) for _ in range(configs)]

    for center, word in ((1.0, "as accurate"), (10.0, "less accurate"), (0.1, "more accurate")):
        (row,) = gradcheck.float32_rows(_records(spread(center)))
        assert row["verdict"] == word and row["configs_to_settle"] is None, row
        assert gradcheck.verdict_text(row) == word and row["configs"] == 10 and row["tensors"] == 30
        assert row["ci_low"] <= row["median_ratio"] <= row["ci_high"]


def test_float32_rows_straddling_2_read_inconclusive_with_the_configurations_that_would_settle_it():
    # configurations' ratios spread from 1.0 to 3.2 around a median of about 1.8: the median alone reads
    # "as accurate", its interval straddles 2
    configs = [[r, r * 1.05] for r in np.geomspace(1.0, 3.2, 10)]
    (row,) = gradcheck.float32_rows(_records(configs))
    assert row["median_ratio"] < 2 < row["ci_high"] and row["ci_low"] > 0.5, row
    assert row["verdict"] == "inconclusive" and row["configs_to_settle"] > 10
    settle = row["configs_to_settle"]
    assert gradcheck.verdict_text(row) == f"inconclusive: about {settle} configurations would settle it"
    # one configuration has no interval, so no verdict
    (one,) = gradcheck.float32_rows(_records(configs[:1]))
    assert one["verdict"] == "inconclusive" and np.isnan(one["ci_low"]) and "no interval" in gradcheck.verdict_text(one)


def test_more_configurations_settle_an_inconclusive_float32_row():
    def draw(n, seed):  # a configuration's two tensors share its draw; median ratio 1.5
        rng = np.random.default_rng(seed)
        return [1.5 * np.exp(rng.normal(0, 0.5) + rng.normal(0, 0.2, 2)) for _ in range(n)]

    (row,) = gradcheck.float32_rows(_records(draw(10, seed=0)))
    assert row["verdict"] == "inconclusive" and row["ci_low"] > 0.5, row
    (more,) = gradcheck.float32_rows(_records(draw(3 * row["configs_to_settle"], seed=100)))  # fresh draws
    assert more["verdict"] == "as accurate", more


def test_float32_rows_take_their_interval_from_shadows_cluster_bootstrap(monkeypatch):
    from experiments import shadow
    assert gradcheck.median_interval is shadow.median_interval  # one bootstrap, not a copy
    calls = []

    def spy(values, **kw):
        calls.append((list(values), kw))
        return shadow.median_interval(values, **kw)

    monkeypatch.setattr(gradcheck, "median_interval", spy)
    records = _records([[1.0, 1.5], [0.9], [1.2, 1.1, 1.0]])
    (row,) = gradcheck.float32_rows(records)
    # resampled by configuration (a configuration's tensors are correlated), with shadow's seed: deterministic
    assert calls == [([1.0, 1.5, 0.9, 1.2, 1.1, 1.0], {"clusters": [0, 0, 1, 2, 2, 2]})]
    monkeypatch.undo()
    again = gradcheck.float32_rows(records)[0]
    assert (row["ci_low"], row["ci_high"]) == (again["ci_low"], again["ci_high"])


def _gradient_check_tiny(tmp_path):
    from experiments import catalogue
    from experiments.runner import run_experiment
    folder = run_experiment(catalogue.get("gradient_check"), "tiny", out=tmp_path)
    summary = Summary.read(folder)
    parity = [p for p in summary.parity if p["name"].startswith("float32 layer checks less accurate")]
    return (folder / "report.md").read_text(), parity


def test_the_default_runs_gradient_check_gives_the_float32_accuracy_of_every_layer(tmp_path):
    from experiments import layer_cases
    report, parity = _gradient_check_tiny(tmp_path)
    assert len(parity) == 1 and parity[0]["value"] == 0 and parity[0]["tolerance"] == 0
    table = report.split("## Float32: each twin against the exact answer")[1]
    for name in layer_cases.CASES:  # both paths of every layer, each with a verdict
        for check in ("torch float32", "plain: torch float32"):
            assert any(line.startswith(f"| {name} | {check} |") and line.rstrip().endswith("| as accurate |")
                       for line in table.splitlines()), (name, check)


def test_a_degraded_float32_layer_fails_the_default_runs_gradient_check(tmp_path, monkeypatch):
    def to_float16(method):  # a Tanh that rounds what it returns to float16 when it works in float32
        def degraded(self, x):
            out = method(self, x)
            return out.astype(np.float16).astype(np.float32) if out.dtype == np.float32 else out
        return degraded

    monkeypatch.setattr(snn.Tanh, "forward", to_float16(snn.Tanh.forward))
    monkeypatch.setattr(snn.Tanh, "backward", to_float16(snn.Tanh.backward))
    report, parity = _gradient_check_tiny(tmp_path)
    assert parity[0]["value"] >= 1
    rows = [line for line in report.split("## Float32")[1].splitlines() if line.startswith("| Tanh |")]
    assert rows and all(line.rstrip().endswith("| less accurate |") for line in rows), rows
