"""Catalogue entries of chapters 3, 7 and 8 (simple_convnet, deep_convnet, augmentation, mnist_inference,
half_precision, residual_net) on their tiny profiles, and the residual layer against torch autograd.

Each experiment runs end to end through the runner into a temporary folder and must leave a complete
report; trained ones must keep both twins' losses within 1e-9 relative at every step in float64
(the runner's parity record, checked here against metrics.csv too).
"""
import csv
import json

import numpy as np
import pytest
import torch

import scratch.nn as snn
from experiments import catalogue
from experiments.compare import compare_module, copy_weights
from experiments.runner import run_experiment
from torch_ref.models import resnet as tres

LOCKSTEP_TOL = 1e-9


def _run(name, tmp_path, **kwargs):
    folder = run_experiment(catalogue.get(name), profile="tiny", out=tmp_path, **kwargs)
    summary = json.loads((folder / "summary.json").read_text())
    report = (folder / "report.md").read_text()
    for f in summary["figures"]:
        assert (folder / f).stat().st_size > 0, f
        assert f in report, f"{f} not shown in report.md"
    with open(folder / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    assert rows, "metrics.csv is empty"
    assert (tmp_path / "README.md").exists()
    return folder, summary, report, rows


def _check_lockstep(summary, rows, trainings):
    models = [m for m in summary["models"] if m["mode"] == "lockstep"]
    assert len(models) == trainings
    for m in models:
        assert m["max_loss_rel_diff"] <= LOCKSTEP_TOL, m
        assert m["steps"] > 0
        assert m["max_param_diff"] < 1e-9
    diffs = [float(r["value"]) for r in rows if r["impl"] == "diff" and r["metric"].endswith("loss_rel_diff")]
    assert len(diffs) == sum(m["steps"] for m in models)
    assert max(diffs) <= LOCKSTEP_TOL


@pytest.mark.parametrize("name, trainings, figures", [
    ("simple_convnet", 1, {"filters.png", "training_lockstep.png"}),
    ("deep_convnet", 1, {"misclassified.png", "training_lockstep.png"}),
])
def test_cnn_entries_tiny_lockstep(name, trainings, figures, tmp_path):
    folder, summary, report, rows = _run(name, tmp_path)
    assert figures <= set(summary["figures"])
    assert "Against the book" in report and "## Parity" in report
    _check_lockstep(summary, rows, trainings)
    for p in summary["parity"]:
        if p["name"].startswith("test images the twins classify differently"):
            assert p["value"] == 0
        elif "scratch vs torch" in p["name"] or "pixel difference" in p["name"]:
            assert p["value"] < 1e-9, p


def test_augmentation_tiny_lockstep(tmp_path):
    folder, summary, report, rows = _run("augmentation", tmp_path)
    assert {"accuracy_by_epoch.png", "augmented_samples.png"} <= set(summary["figures"])
    _check_lockstep(summary, rows, trainings=4)  # none, rotation, shift, rotation+shift
    [warp] = [p for p in summary["parity"] if "augmented batch" in p["name"]]
    assert warp["value"] <= 1e-10
    assert set(summary["extra"]["test_acc"]) == {"none", "rotation", "shift", "rotation+shift"}


def test_augmentation_twins_draw_the_same_warps():
    """What lockstep relies on: each twin's transform, fed a copy of one stream, warps a batch alike,
    call after call; a different stream gives a different warp."""
    from experiments.catalogue.augmentation import transforms
    import scratch.transforms as st
    import torch_ref.transforms as tt

    x = np.random.default_rng(3).random((6, 1, 28, 28))
    for kind in ("rotation", "shift", "rotation+shift"):
        s, t = transforms(kind, st, np.random.default_rng(11)), transforms(kind, tt, np.random.default_rng(11))
        for _ in range(3):
            a, b = s(x), t(torch.from_numpy(x)).numpy()
            assert np.abs(a - b).max() <= 1e-12
            assert np.abs(a - x).max() > 0.1  # it did warp
        other = transforms(kind, st, np.random.default_rng(12))(x)
        assert np.abs(other - a).max() > 0.1
    assert transforms("none", st, None) is None
    with pytest.raises(ValueError, match="unknown variant"):
        transforms("flip", st, None)


def test_mnist_inference_tiny(tmp_path):
    folder, summary, report, rows = _run("mnist_inference", tmp_path)
    assert "time_per_image.png" in summary["figures"]
    _check_lockstep(summary, rows, trainings=1)
    parity = {p["name"]: p["value"] for p in summary["parity"]}
    assert parity["scratch: images where one-by-one and batched predictions differ"] == 0
    assert parity["torch: images where one-by-one and batched predictions differ"] == 0
    assert parity["test images the twins predict differently"] == 0
    assert parity["test scores, scratch vs torch (scaled)"] <= 1e-10
    # the accuracy count agrees with the accuracy the trainer measured on the same test set
    final = summary["models"][0]["final"]
    counts = {r["impl"]: int(float(r["value"])) for r in rows if r["metric"] == "accuracy_cnt"}
    assert counts["scratch"] == round(final["scratch"]["test_acc"] * 150)
    assert counts["torch"] == counts["scratch"]
    # timings stay out of metrics.csv (a re-run with the same seed writes the same file)
    assert not any("time" in r["metric"] for r in rows)


def test_notes_batch_loop_counts_like_a_plain_comparison():
    from experiments.catalogue.mnist_inference import batched, one_by_one
    from scratch.models.mlp import MLP

    rng = np.random.default_rng(5)
    model = MLP([784, 50, 100, 10], "sigmoid", dtype=np.float64, generator=rng)
    x, t = rng.random((250, 784)), rng.integers(0, 10, 250)
    expected = np.argmax(model(x), axis=1)
    for b in (1, 7, 100, 1000):
        preds, count = batched("scratch", model, x, t, b)
        assert np.array_equal(preds, expected) and count == int(np.sum(expected == t))
    assert np.array_equal(one_by_one("scratch", model, x[:20]), expected[:20])
