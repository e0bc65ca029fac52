"""The gradcheck command writes a complete report and fails when a layer is wrong."""
import csv

import numpy as np

import scratch.nn as snn
from experiments import layer_cases
from experiments.__main__ import main


def test_gradcheck_writes_report(tmp_path, capsys):
    code = main(["gradcheck", "--layers", "Linear", "ReLU", "--configs", "2", "--out", str(tmp_path)])
    assert code == 0
    report = (tmp_path / "gradcheck" / "report.md").read_text()
    assert "| Linear | torch float64 | 2 |" in report and "all within tolerance" in report
    with open(tmp_path / "gradcheck" / "records.csv") as f:
        rows = list(csv.DictReader(f))
    # Both of scratch's paths against torch and central differences, and the paths against each other
    assert {r["check"] for r in rows} == {"torch float64", "torch float32", "numerical float64",
                                          "plain: torch float64", "plain: torch float32", "plain: numerical float64",
                                          "plain = fast float64"}
    assert "| Linear | plain = fast float64 | 2 |" in report
    assert "14/14 checks within tolerance" in capsys.readouterr().out  # 2 layers x 7
    assert not list(tmp_path.glob(".gradcheck.tmp*"))


def test_gradcheck_fails_a_wrong_layer(tmp_path, monkeypatch):
    import torch

    class Wrong(snn.Sigmoid):
        def backward(self, grad_output):
            return grad_output * self.out  # missing (1 - y)

    def build(rng):
        return Wrong(), torch.nn.Sigmoid(), (rng.standard_normal((3, 4)),), "x=(3, 4)"

    monkeypatch.setitem(layer_cases.CASES, "WrongSigmoid", layer_cases.LayerCase("WrongSigmoid", build))
    code = main(["gradcheck", "--layers", "WrongSigmoid", "--configs", "1", "--out", str(tmp_path)])
    assert code == 1
    assert "FAIL" in (tmp_path / "gradcheck" / "report.md").read_text()


def test_gradcheck_unknown_layer_lists_valid_ones(tmp_path):
    import pytest

    with pytest.raises(SystemExit, match="unknown layer.*Nope.*valid: Linear"):
        main(["gradcheck", "--layers", "Nope", "--out", str(tmp_path)])
    assert np is not None
