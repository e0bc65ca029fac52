"""Catalogue entries of chapters 3, 7 and 8 (simple_convnet, deep_convnet, augmentation, mnist_inference,
half_precision, residual_net) on their tiny profiles, and the residual layer against torch autograd.

Each experiment runs end to end through the runner into a temporary folder and must leave a complete
report; trained ones must keep both twins' losses within 1e-9 relative at every step in float64
(the runner's parity record, checked here against metrics.csv too).
"""
import csv

import numpy as np
import pytest
import torch

import scratch.nn as snn
from experiments import catalogue
from experiments.compare import TOLERANCE, compare_module, copy_weights
from experiments.runner import run_experiment
from torch_ref.models import resnet as tres
from experiments.summary import Summary

LOCKSTEP_TOL = TOLERANCE["lockstep"]


def _run(name, tmp_path, **kwargs):
    folder = run_experiment(catalogue.get(name), profile="tiny", out=tmp_path, **kwargs)
    summary = Summary.read(folder)
    report = (folder / "report.md").read_text()
    for f in summary.figures:
        assert (folder / f).stat().st_size > 0, f
        assert f in report, f"{f} not shown in report.md"
    with open(folder / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    assert rows, "metrics.csv is empty"
    assert (tmp_path / "README.md").exists()
    return folder, summary, report, rows


def _check_lockstep(summary, rows, trainings):
    models = [m for m in summary.models if m["mode"] == "lockstep"]
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
    assert figures <= set(summary.figures)
    assert "Against the book" in report and "## Parity" in report
    _check_lockstep(summary, rows, trainings)
    for p in summary.parity:
        if p["name"].startswith("test images the twins classify differently"):
            assert p["value"] == 0
        elif "scratch vs torch" in p["name"] or "pixel difference" in p["name"]:
            assert p["value"] < 1e-9, p


def test_augmentation_tiny_lockstep(tmp_path):
    folder, summary, report, rows = _run("augmentation", tmp_path)
    assert {"accuracy_by_epoch.png", "augmented_samples.png"} <= set(summary.figures)
    _check_lockstep(summary, rows, trainings=4)  # none, rotation, shift, rotation+shift
    [warp] = [p for p in summary.parity if "augmented batch" in p["name"]]
    assert warp["value"] <= 1e-10
    assert set(summary.extra["test_acc"]) == {"none", "rotation", "shift", "rotation+shift"}


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
    assert "time_per_image.png" in summary.figures
    _check_lockstep(summary, rows, trainings=1)
    parity = {p["name"]: p["value"] for p in summary.parity}
    assert parity["scratch: images where one-by-one and batched predictions differ"] == 0
    assert parity["torch: images where one-by-one and batched predictions differ"] == 0
    assert parity["test images the twins predict differently"] == 0
    assert parity["test scores, scratch vs torch (scaled)"] <= 1e-10
    # the accuracy count agrees with the accuracy the trainer measured on the same test set
    final = summary.models[0]["final"]
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
    logits = model(x)
    expected = np.argmax(logits, axis=1)
    # batches of 1 go through BLAS's matrix-vector kernel, other sizes its matrix product: their round-off
    # differs, so equal predictions are machine-independent only away from near-ties of the two best logits
    top2 = np.sort(logits, axis=1)[:, -2:]
    assert np.all(top2[:, 1] - top2[:, 0] > 1e-9)
    for b in (1, 7, 100, 1000):
        preds, count = batched("scratch", model, x, t, b)
        assert np.array_equal(preds, expected) and count == int(np.sum(expected == t))
    assert np.array_equal(one_by_one("scratch", model, x[:20]), expected[:20])


def test_half_precision_tiny(tmp_path):
    folder, summary, report, rows = _run("half_precision", tmp_path)
    _check_lockstep(summary, rows, trainings=1)  # tiny never reuses kept weights: it trains its own
    assert "accuracy_and_logits.png" in summary.figures
    for p in summary.parity:
        if p["tolerance"] is not None:
            assert p["value"] <= p["tolerance"], p
    # float16 really computed in float16, in both twins; the book's way computed in float64
    table = report.split("## Inference per dtype")[1]
    for impl in ("scratch", "torch"):
        assert f"| {impl} | float16 | float16 |" in table
    assert "| torch | bfloat16 | bfloat16 |" in table
    assert "| scratch | book float16 | float64 |" in table
    assert summary.extra["float16_matmul_of_4096_ones"] == {"numpy": 4096.0, "torch": 4096.0}


def test_half_precision_sees_float16_rounding():
    """The scratch float16 pass differs from float64 by float16 round-off, not by nothing and not by more."""
    from experiments.catalogue.half_precision import scratch_scores, torch_scores
    from scratch.models.convnets import DeepConvNet
    from torch_ref.models.convnets import DeepConvNet as TorchDeepConvNet
    from experiments.compare import to_torch

    rng = np.random.default_rng(2)
    weights = DeepConvNet(dtype=np.float64, generator=rng).state_dict()
    x = rng.random((6, 1, 28, 28))
    out = {}
    for dt in (np.float64, np.float16):
        m = DeepConvNet(dtype=dt, generator=rng)
        m.load_state_dict(weights)
        out[dt], seen = scratch_scores(m, x.astype(dt))
        assert seen == {np.dtype(dt).name}
    scale = np.abs(out[np.float64]).max()
    gap = np.abs(out[np.float16].astype(np.float64) - out[np.float64]).max() / scale
    assert 1e-5 < gap < 3e-2
    t = TorchDeepConvNet(dtype=torch.float16)
    t.load_state_dict(to_torch(weights))
    scores, seen = torch_scores(t, torch.from_numpy(x).half())
    assert seen == {"float16"}
    assert np.abs(scores - out[np.float64]).max() / scale < 3e-2


def test_residual_net_tiny(tmp_path):
    folder, summary, report, rows = _run("residual_net", tmp_path)
    _check_lockstep(summary, rows, trainings=1)
    checks = [p for p in summary.parity if p["name"].startswith("Residual")]
    assert len(checks) == 2 * 3 * 2  # two layers, three checks, largest error and count out of tolerance
    for p in checks:
        if p["tolerance"] is not None:
            assert p["value"] <= p["tolerance"], p
    assert "The residual layers against autograd" in report


# -- the residual layer itself -----------------------------------------------------------------------------
def _block_twins(rng, cin, cout, stride, dtype):
    s = snn.ResidualBlock(cin, cout, stride, dtype=np.float64, generator=rng)
    for m in s.modules():
        if isinstance(m, snn.BatchNorm2d):
            m.weight.data[...] = rng.uniform(0.5, 2.0, cout)
            m.bias.data[...] = rng.standard_normal(cout)
    t = tres.ResidualBlock(cin, cout, stride, dtype=torch.float64)
    s.to(dtype)
    return s, t


@pytest.mark.parametrize("dtype, tol", [(np.float64, 1e-10), (np.float32, 1e-5)], ids=["float64", "float32"])
def test_residual_block_matches_autograd(dtype, tol):
    rng = np.random.default_rng(0)
    for cin, cout, stride, train in ((2, 2, 1, True), (2, 3, 1, True), (3, 4, 2, True), (2, 2, 2, False),
                                     (3, 3, 1, False)):
        s, t = _block_twins(rng, cin, cout, stride, dtype)
        s.train(train)
        x = rng.standard_normal((3, cin, 6, 5)).astype(dtype)
        records = compare_module(s, t, x)
        names = {r.tensor for r in records}
        assert {"output", "grad_input", "grad_body.conv1.weight", "grad_body.bn2.bias"} <= names
        if stride != 1 or cin != cout:
            assert "grad_shortcut.conv.weight" in names
        bad = [str(r) for r in records if not r.ok(tol)]
        assert not bad, bad
        assert s(x).dtype == dtype  # keeps the input's dtype


def test_residual_backward_is_the_sum_of_both_paths():
    rng = np.random.default_rng(1)
    body = snn.Linear(4, 4, dtype=np.float64, generator=rng)
    res = snn.Residual(body)
    x, g = rng.standard_normal((5, 4)), rng.standard_normal((5, 4))
    np.testing.assert_array_equal(res(x), body(x) + x)
    res.zero_grad()
    dx = res.backward(g)
    np.testing.assert_allclose(dx, g @ body.weight.data + g, rtol=1e-14)  # identity path passes g unchanged
    np.testing.assert_allclose(body.weight.grad, g.T @ x, rtol=1e-14)
    # a projection shortcut gets its own gradient
    proj = snn.Linear(4, 3, bias=False, dtype=np.float64, generator=rng)
    res2 = snn.Residual(snn.Linear(4, 3, dtype=np.float64, generator=rng), proj)
    g2 = rng.standard_normal((5, 3))
    res2(x)
    res2.backward(g2)
    np.testing.assert_allclose(proj.weight.grad, g2.T @ x, rtol=1e-14)


def test_residual_shape_mismatch_is_a_clear_error():
    res = snn.Residual(snn.Linear(4, 3, dtype=np.float64))
    with pytest.raises(RuntimeError, match=r"Residual: the body's output \(2, 3\) and the shortcut's output "
                                           r"\(2, 4\) must have the same shape"):
        res(np.zeros((2, 4)))


def test_resnet_twins_share_keys_and_agree():
    from scratch.models.resnet import ResNet

    rng = np.random.default_rng(4)
    s = ResNet(1, (4, 8, 8), blocks=1, dtype=np.float64, generator=rng)
    t = tres.ResNet(1, (4, 8, 8), blocks=1, dtype=torch.float64)
    assert list(s.state_dict()) == list(t.state_dict())
    copy_weights(s, t)
    x = rng.random((4, 1, 12, 12))
    for train in (True, False):
        s.train(train)
        t.train(train)
        s.zero_grad()
        out = s(x)
        g = rng.standard_normal(out.shape)
        s.backward(g)
        xt = torch.tensor(x)
        ot = t(xt)
        t.zero_grad()
        ot.backward(torch.tensor(g))
        assert np.abs(out - ot.detach().numpy()).max() <= 1e-12 * np.abs(out).max()
        tp = dict(t.named_parameters())
        for name, p in s.named_parameters():
            ref = tp[name].grad.numpy()
            assert np.abs(p.grad - ref).max() <= 1e-10 * max(np.abs(ref).max(), 1e-300), name


def test_resnet_stem_stride_halves_the_image():
    from scratch.models.resnet import ResNet

    rng = np.random.default_rng(6)
    s = ResNet(1, (4, 8, 8), stem_stride=2, dtype=np.float64, generator=rng)
    t = tres.ResNet(1, (4, 8, 8), stem_stride=2, dtype=torch.float64)
    copy_weights(s, t)
    x = rng.random((3, 1, 28, 28))
    s.eval()  # in training mode the stem's batch norm would update its running statistics
    t.eval()
    assert s.layers.stem(x).shape == (3, 4, 14, 14)
    out = s(x)
    with torch.no_grad():
        ref = t(torch.tensor(x)).numpy()
    assert out.shape == (3, 10) and np.abs(out - ref).max() <= 1e-12 * np.abs(ref).max()


def test_augmentation_rerun_writes_the_same_metrics(tmp_path):
    """Same seed, same metrics.csv byte for byte: every random draw (weights, batches, angles, shifts) comes
    from the seed's streams."""
    a = run_experiment(catalogue.get("augmentation"), profile="tiny", out=tmp_path / "a",
                       overrides={"variants": ["none", "rotation+shift"]})
    b = run_experiment(catalogue.get("augmentation"), profile="tiny", out=tmp_path / "b",
                       overrides={"variants": ["none", "rotation+shift"]})
    assert (a / "metrics.csv").read_bytes() == (b / "metrics.csv").read_bytes()
