"""The bench command on tiny sizes: it runs, writes a whole report, and counts FLOPs right. No time is asserted."""
import csv

import numpy as np
import pytest

from experiments import bench
from experiments.__main__ import main
from scratch.models.convnets import SimpleConvNet


def test_bench_smoke(tmp_path):
    out = tmp_path / "bench"
    assert main(["bench", "--quick", "--threads", "1", "--only", "Linear", "MaxPool2d SimpleConvNet",
                 "step MLP", "--out", str(out)]) == 0
    assert {p.name for p in out.iterdir()} == {"report.md", "bench.csv", "ratios.png", ".experiments-report"}
    rows = list(csv.DictReader(open(out / "bench.csv")))
    assert [(r["case"], r["dtype"]) for r in rows] == [
        (case, dtype) for case in ("Linear 784->100", "MaxPool2d SimpleConvNet pool", "step MLP 784-100-100-10")
        for dtype in ("float32", "float64")]
    for r in rows:
        assert float(r["scratch_ms"]) > 0 and float(r["plain_ms"]) > 0 and float(r["torch_ms"]) > 0
        assert np.isclose(float(r["ratio"]), float(r["scratch_ms"]) / float(r["torch_ms"]))
        assert np.isclose(float(r["fast_speedup"]), float(r["plain_ms"]) / float(r["scratch_ms"]))
    report = (out / "report.md").read_text()
    for heading in ("Training steps: plain, fast and torch", "Layers: plain, fast and torch", "Roofline",
                    "Where the scratch time goes", "numpy_blas"):
        assert heading in report


def test_steps_are_timed_again_on_one_thread_when_the_bench_has_more(tmp_path):
    out = tmp_path / "bench"
    assert main(["bench", "--quick", "--threads", "2", "--only", "step MLP", "--dtypes", "float64",
                 "--out", str(out)]) == 0
    (row,) = list(csv.DictReader(open(out / "bench.csv")))
    assert row["dtype"] == "float64"
    assert float(row["ratio_1_thread"]) > 0 and float(row["plain_ratio_1_thread"]) > 0
    assert "ratio, 1 thread each" in (out / "report.md").read_text()


def test_every_case_builds_every_contestant_in_both_dtypes():
    import scratch

    names = [c.name for c in bench.all_cases()]
    assert len(names) == len(set(names))
    fast = scratch.is_fast()
    for case in bench.all_cases():
        for twin in ("scratch", "plain", "torch"):
            for dtype in (np.float32, np.float64):
                call = case.build(twin, 2, np.dtype(dtype))  # BatchNorm1d needs two samples
                call()
                call()
                assert scratch.is_fast() == fast, "the plain contestant leaves the path as it was"


def test_matmul_flops_of_simpleconvnet():
    n = 3
    x = np.zeros((n, 1, 28, 28), dtype=np.float32)
    conv = 2 * n * 24 * 24 * 30 * 25  # forward product and weight gradient; no input gradient for the images
    affine = 2 * n * 4320 * 100 + 2 * n * 100 * 10
    assert bench.matmul_flops(SimpleConvNet(), x) == 2 * conv + 3 * affine


def test_memory_child_reports_bytes():
    assert bench.memory_child("Linear 784->100", "scratch", 2, 1) >= 0


@pytest.mark.parametrize("argv, message", [
    (["--threads", "0"], "argument --threads: expected a positive integer, got '0'"),
    (["--batch", "-2"], "argument --batch: expected a positive integer"),
    (["--repeats", "0"], "argument --repeats: expected a positive integer"),
    (["--warmup", "-1"], "argument --warmup: expected an integer >= 0, got '-1'"),
])
def test_bad_counts_are_refused(argv, message, capsys):
    with pytest.raises(SystemExit):
        main(["bench", "--quick", *argv])
    assert message in capsys.readouterr().err


def test_only_matching_nothing_leaves_the_last_report_alone(tmp_path):
    out = tmp_path / "bench"
    out.mkdir()
    (out / "report.md").write_text("the last report")
    with pytest.raises(SystemExit, match="--only Linaer matches no case; the cases are: Linear 784->100"):
        main(["bench", "--quick", "--only", "Linaer", "--out", str(out)])
    assert (out / "report.md").read_text() == "the last report"
