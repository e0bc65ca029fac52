"""The torch twin on a GPU (docs/design.md, "The torch twin on a GPU"): exact float32, recorded.

Tests marked ``cuda`` are skipped where torch sees no CUDA device (tests/conftest.py); the others check the
record and the settings on any machine.
"""

import numpy as np
import pytest
import torch

from experiments import catalogue
from experiments.lockstep import train_lockstep
from experiments.runner import run_experiment
from experiments.training import Data, Recipe
from scratch.models.mlp import MLP
from torch_ref import precision
from torch_ref.models.mlp import MLP as TorchMLP
from experiments.summary import Summary


def blobs(n=160, d=6, classes=3, seed=0):
    rng = np.random.default_rng(seed)
    t = rng.integers(0, classes, n)
    x = rng.normal(0, 0.7, (classes, d))[t] + rng.normal(0, 1, (n, d))
    return Data(x[:120], t[:120], x[120:], t[120:])


def recipe():
    return Recipe(scratch_model=lambda dtype, rand: MLP([6, 32, 3], "relu", dtype=dtype, generator=rand.init),
                  torch_model=lambda dtype, rand: TorchMLP([6, 32, 3], "relu", dtype=dtype),
                  optimizer="SGD", optimizer_kwargs=dict(lr=0.1, momentum=0.9), batch_size=16, epochs=5,
                  param_every=4)


@pytest.fixture
def restore_precision():
    """Put PyTorch's global float32 settings back as they were after the test."""
    new = precision._new_api()
    saved = ((torch.backends.cuda.matmul.fp32_precision, torch.backends.cudnn.conv.fp32_precision,
              torch.backends.cudnn.rnn.fp32_precision) if new
             else (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32))
    reduced = (torch.backends.cuda.matmul.allow_fp16_reduced_precision_reduction,
               torch.backends.cuda.matmul.allow_bf16_reduced_precision_reduction)
    yield
    if new:
        (torch.backends.cuda.matmul.fp32_precision, torch.backends.cudnn.conv.fp32_precision,
         torch.backends.cudnn.rnn.fp32_precision) = saved
    else:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved
    (torch.backends.cuda.matmul.allow_fp16_reduced_precision_reduction,
     torch.backends.cuda.matmul.allow_bf16_reduced_precision_reduction) = reduced


def test_exact_float32_turns_tf32_and_reduced_reductions_off(restore_precision):
    if precision._new_api():
        torch.backends.cudnn.conv.fp32_precision = "tf32"  # PyTorch's default for convolutions
    else:
        torch.backends.cudnn.allow_tf32 = True
    assert precision.tf32_allowed()["conv"]
    precision.exact_float32()
    assert precision.tf32_allowed() == {"matmul": False, "conv": False}
    assert not torch.backends.cuda.matmul.allow_fp16_reduced_precision_reduction
    assert not torch.backends.cuda.matmul.allow_bf16_reduced_precision_reduction


def test_a_cpu_report_records_the_torch_twins_device(tmp_path):
    folder = run_experiment(catalogue.get("two_layer_mnist"), profile="tiny", out=tmp_path)
    summary = Summary.read(folder)
    assert summary.torch_twin == {"device": "cpu", "device_name": "cpu", "tf32_matmul": False,
                                     "tf32_conv": False, "reduced_precision_reduction": False,
                                     "exact_float32": True}
    assert precision.describe(summary.torch_twin) == "cpu"


@pytest.mark.cuda
def test_float64_lockstep_on_the_gpu_agrees_to_round_off():
    result = train_lockstep(recipe(), blobs(), seed=0, dtype=np.float64, device="cuda")
    assert result.max_loss_rel_diff <= 1e-9, result.max_loss_rel_diff
    assert result.max_param_diff <= 1e-9, result.max_param_diff
    record = result.torch_twin
    assert record["device"].startswith("cuda") and record["exact_float32"], record
    assert not (record["tf32_matmul"] or record["tf32_conv"] or record["reduced_precision_reduction"])


@pytest.mark.cuda
def test_a_float32_cuda_report_records_exact_float32_and_the_interval(tmp_path):
    folder = run_experiment(catalogue.get("two_layer_mnist"), profile="tiny", dtype="float32", device="cuda",
                            out=tmp_path)
    summary = Summary.read(folder)
    assert summary.torch_twin["device"].startswith("cuda") and summary.torch_twin["exact_float32"]
    report = (folder / "report.md").read_text()
    assert "TF32 products off, TF32 convolutions off, reduced-precision reductions off" in report
    for m in summary.models:
        v = m["float32_vs_shadow"]
        assert v["ci_low"] <= v["median_ratio"] <= v["ci_high"], v
