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


def test_float32_rows_verdicts_on_constructed_records():
    def row(ratio):
        return {"layer": "L", "check": "torch float32", "ratio_vs_float64": ratio, "float64_error": ratio * 1e-7,
                "torch_float64_error": 1e-7}
    assert gradcheck.float32_rows([row(1.0), row(1.2)])[0]["verdict"] == "as accurate"
    assert gradcheck.float32_rows([row(10.0)] * 3)[0]["verdict"] == "less accurate"
    assert gradcheck.float32_rows([row(0.1)] * 3)[0]["verdict"] == "more accurate"


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
