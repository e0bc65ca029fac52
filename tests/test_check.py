"""experiments.check: the book's layers, broken variants and each diagnosis, measured against torch."""
import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from experiments.check import (ADJOINT_TOL, CHECK_STREAM, assert_matches_torch, check_class, check_layer,
                               checker_rng, dot_product_test)

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "check_corpus"))
import float32_inside  # noqa: E402
import planted_book  # noqa: E402

_spec = importlib.util.spec_from_file_location("book_layers", ROOT / "examples" / "book_layers.py")
B = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(B)


def codes(result):
    return {d.code for d in result.diagnoses}


def affine(rng, n=5, i=3, o=4, dtype=np.float64):
    lin = nn.Linear(i, o).to(torch.float64 if dtype == np.float64 else torch.float32)
    return lin, rng.standard_normal((n, i)).astype(dtype)


# -- the book's layers, as written in examples/book_layers.py ----------------------------------------------
@pytest.mark.parametrize("name", ["Relu", "Sigmoid", "Affine", "Convolution", "Pooling"])
def test_book_layers_that_match_torch(name):
    record, results = check_class(name, getattr(B, name), np.dtype(np.float64), configs=4, seed=1)
    assert record["ok"] and record["diagnosis"] == "", [str(r) for r in results if not r.ok]
    assert all(r.verdict == "ok" and r.records for r in results)


def test_book_softmax_with_loss_differs_by_design():
    rng = np.random.default_rng(3)
    x, t = rng.standard_normal((6, 4)), rng.integers(0, 4, 6)
    r = check_layer(B.SoftmaxWithLoss(), nn.CrossEntropyLoss(), x, t)
    assert r.verdict.startswith("differs by design: ")
    assert codes(r) == {"log-eps", "loss-dout-1"}
    assert "eps = 1e-07" in r.verdict
    # with dout = 1, the way the book calls it, only the log's epsilon remains
    r1 = check_layer(B.SoftmaxWithLoss(), nn.CrossEntropyLoss(), x, t, grad_output=np.float64(1.0))
    assert codes(r1) == {"log-eps"} and {x.name: x.ok for x in r1.records} == {"out": False, "dx": True}


def test_book_softmax_with_loss_takes_one_hot_targets_through_nondiff():
    rng = np.random.default_rng(4)
    x, labels = rng.standard_normal((5, 3)), rng.integers(0, 3, 5)
    t = np.eye(3)[labels]
    r = check_layer(B.SoftmaxWithLoss(), nn.CrossEntropyLoss(), x, t, nondiff=("t",))
    assert codes(r) == {"log-eps", "loss-dout-1"}, str(r)
    unmarked = check_layer(B.SoftmaxWithLoss(), nn.CrossEntropyLoss(), x, t)
    assert unmarked.refused and "nondiff=" in unmarked.refused


@pytest.mark.parametrize("train", [True, False])
def test_book_dropout_is_non_inverted(train):
    rng = np.random.default_rng(5)
    x = rng.standard_normal((6, 5))
    r = check_layer(B.Dropout(0.3), nn.Dropout(0.3).train(train), x)
    assert codes(r) == {"non-inverted-dropout"}, str(r)
    assert "(1 - p) = 0.7" in r.verdict and r.verdict.startswith("differs by design")
    if not train:  # the book's Dropout has no backward at test time: forward compared, and said so
        assert [x.name for x in r.records] == ["out"] and r.notes


def test_dropout_mask_read_from_the_output_when_the_layer_keeps_none():
    class InvertedNoMask:
        def forward(self, x, train_flg=True):
            keep = np.random.rand(*x.shape) > 0.4
            self._m = keep / 0.6
            return x * self._m

        def backward(self, dout):
            return dout * self._m

    x = np.random.default_rng(6).standard_normal((7, 4))
    assert check_layer(InvertedNoMask(), nn.Dropout(0.4), x).ok


def test_book_batchnorm_eps_and_biased_running_var():
    rng = np.random.default_rng(7)
    d = 4
    x = rng.standard_normal((8, d)) * np.array([0.3, 1.0, 2.0, 4.0])
    layer = B.BatchNormalization(np.ones(d), np.zeros(d), 0.9)
    r = check_layer(layer, nn.BatchNorm1d(d).double(), x)
    assert codes(r) == {"bn-eps", "biased-running-var"}, str(r)
    assert "eps = 1e-06" in r.verdict and "biased" in r.verdict and "0.875" in r.verdict


def test_book_convolution_float32_is_promoted_to_float64():
    rng = np.random.default_rng(8)
    conv = nn.Conv2d(2, 3, 3, padding=1)
    layer = B.Convolution(np.zeros((3, 2, 3, 3), np.float32), np.zeros(3, np.float32), 1, 1)
    r = check_layer(layer, conv, rng.standard_normal((2, 2, 5, 5)).astype(np.float32))
    assert codes(r) == {"float64-inside"} and "float32 in, float64 out" in r.verdict
    assert all(x.scaled <= 1e-5 for x in r.records)  # the values agree; the dtype does not


# -- deliberately broken variants, each with its diagnosis ----------------------------------------------------
# the planted bugs of tests/check_corpus/planted_book.py, under this file's older names
AffineSignOfdW, AffineMissingTranspose, AffineMeanInDb = (planted_book.AffineSignOfdW, planted_book.AffineTransposedW,
                                                          planted_book.AffineMeanDb)
ReluWrongMask, SigmoidWrongFormula = planted_book.ReluComplementMask, planted_book.SigmoidMissingFactor
DropoutNewMaskInBackward = planted_book.DropoutNewMaskInBackward


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("cls, code, tensor", [(AffineSignOfdW, "sign", "dW"),
                                               (AffineMissingTranspose, "transpose", "dW"),
                                               (AffineMeanInDb, "averaged", "db")])
def test_broken_affine_is_diagnosed(cls, code, tensor, dtype):
    rng = np.random.default_rng(9)
    for n, i, o in [(5, 3, 4), (4, 3, 3), (7, 2, 6)]:
        lin, x = affine(rng, n, i, o, dtype)
        r = check_layer(cls(np.zeros((i, o), dtype), np.zeros(o, dtype)), lin, x)
        assert r.verdict.startswith("mismatch: "), str(r)
        bug = [d for d in r.diagnoses if d.kind == "bug"]
        assert [d.code for d in bug] == [code] and bug[0].tensors == (tensor,), str(r)
        if code == "averaged":
            assert f"N = {n}" in r.verdict


def test_broken_masks_are_diagnosed():
    rng = np.random.default_rng(10)
    r = check_layer(ReluWrongMask(), nn.ReLU(), rng.standard_normal((6, 5)))
    assert [d.code for d in r.diagnoses] == ["mask"] and r.diagnoses[0].tensors == ("dx",), str(r)
    r = check_layer(DropoutNewMaskInBackward(0.5), nn.Dropout(0.5), rng.standard_normal((8, 6)))
    assert {d.code for d in r.diagnoses if d.kind == "bug"} == {"mask"}, str(r)
    assert r.verdict.startswith("mismatch")


def test_a_backward_that_is_not_the_adjoint_is_caught_with_and_without_torch():
    rng = np.random.default_rng(11)
    x = rng.standard_normal((4, 5))
    r = check_layer(SigmoidWrongFormula(), nn.Sigmoid(), x)
    assert [d.code for d in r.diagnoses] == ["adjoint"], str(r)
    assert set(dot_product_test(SigmoidWrongFormula(), x)) == {"dx"}
    assert dot_product_test(B.Sigmoid(), x) == {}
    lin, x = affine(rng)
    bad = AffineSignOfdW(rng.standard_normal((3, 4)), rng.standard_normal(4))
    assert set(dot_product_test(bad, x)) == {"dW"}


class TorchBatchNorm(B.BatchNormalization):
    """The book's API with torch's rules: eps 1e-5 and the unbiased running variance (correct)."""

    def forward(self, x, train_flg=True):
        self.input_shape = x.shape
        if train_flg:
            mu = x.mean(axis=0)
            self.xc = x - mu
            var = np.mean(self.xc ** 2, axis=0)
            self.std = np.sqrt(var + 1e-5)
            self.batch_size = n = x.shape[0]
            self.xn = self.xc / self.std
            self.running_mean = self.momentum * self.running_mean + (1 - self.momentum) * mu
            self.running_var = self.momentum * self.running_var + (1 - self.momentum) * var * (n / (n - 1))
        else:
            self.xn = (x - self.running_mean) / np.sqrt(self.running_var + 1e-5)
        return self.gamma * self.xn + self.beta


class BatchNormStartsAtZero(TorchBatchNorm):
    def forward(self, x, train_flg=True):
        if not getattr(self, "started", False):
            self.running_mean, self.running_var = np.zeros(x.shape[1]), np.zeros(x.shape[1])
            self.started = True
        return super().forward(x, train_flg)


def test_running_var_started_at_zero():
    rng = np.random.default_rng(12)
    x = rng.standard_normal((6, 3))
    r = check_layer(BatchNormStartsAtZero(np.ones(3), np.zeros(3), 0.9), nn.BatchNorm1d(3).double(), x)
    assert codes(r) == {"running-var-from-0"} and "started at 0" in r.verdict, str(r)
    assert check_layer(TorchBatchNorm(np.ones(3), np.zeros(3), 0.9), nn.BatchNorm1d(3).double(), x).ok


# -- no false alarm: the correct layers over 20 random shapes, float64 and float32 ------------------------------
class TorchSoftmaxWithLoss(B.SoftmaxWithLoss):
    def forward(self, x, t):
        self.t = t
        z = x - x.max(axis=1, keepdims=True)
        logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
        self.y = np.exp(logp)
        labels = t.argmax(axis=1) if t.size == self.y.size else t
        return -logp[np.arange(len(x)), labels].mean()

    def backward(self, dout=1):
        return super().backward() * dout


class InvertedDropout(B.Dropout):
    def forward(self, x, train_flg=True):
        if train_flg:
            self.mask = np.random.rand(*x.shape) > self.dropout_ratio
            return x * self.mask / (1 - self.dropout_ratio)
        return x

    def backward(self, dout):
        return dout * self.mask / (1 - self.dropout_ratio)


def _keep_dtype(cls):
    class Kept(cls):  # the book's im2col works in float64: give back the input's dtype
        def forward(self, x):
            self.dtype = x.dtype
            return super().forward(x).astype(x.dtype)

        def backward(self, dout):
            dx = super().backward(dout).astype(self.dtype)
            for name in ("dW", "db"):
                if getattr(self, name, None) is not None:
                    setattr(self, name, getattr(self, name).astype(self.dtype))
            return dx
    return Kept


CORRECT = {"Relu": B.Relu, "Sigmoid": B.Sigmoid, "Affine": B.Affine, "SoftmaxWithLoss": TorchSoftmaxWithLoss,
           "Dropout": InvertedDropout, "BatchNormalization": TorchBatchNorm,
           "Convolution": _keep_dtype(B.Convolution), "Pooling": _keep_dtype(B.Pooling)}


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("name", list(CORRECT))
def test_no_false_alarm_over_20_random_shapes(name, dtype):
    record, results = check_class(name, CORRECT[name], np.dtype(dtype), configs=20, seed=2)
    assert len({r.inputs for r in results}) > 5  # the shapes do vary
    alarms = [str(r) for r in results if r.diagnoses or r.unexplained or r.refused
              or any(n.startswith("dot-product") for n in r.notes)]
    assert record["ok"] and not alarms, alarms[:2]


# -- weights: copied or refused, never a mismatch ------------------------------------------------------------
class AffineInADict:
    """A correct Affine that keeps its weights where the checker cannot find them."""

    def __init__(self, W, b):
        self.params = {"W": W, "b": b}

    def forward(self, x):
        self.x = x
        return x @ self.params["W"] + self.params["b"]

    def backward(self, dout):
        self.grads = {"W": self.x.T @ dout, "b": dout.sum(axis=0)}
        return dout @ self.params["W"].T


def test_a_layer_whose_weights_cannot_be_copied_is_refused():
    rng = np.random.default_rng(13)
    lin, x = affine(rng)
    r = check_layer(AffineInADict(rng.standard_normal((3, 4)), np.zeros(4)), lin, x)
    assert not r.ok and r.verdict.startswith("refused: ") and not r.records
    assert "weight" in r.refused and "params=" in r.refused
    with pytest.raises(AssertionError, match="refused"):
        assert_matches_torch(AffineInADict(np.zeros((3, 4)), np.zeros(4)), lin, x)
    # a function counterpart cannot give a layer with W its weights either
    r = check_layer(B.Affine(np.zeros((3, 4)), np.zeros(4)), lambda t: t @ torch.ones(3, 4, dtype=t.dtype), x)
    assert r.refused and "function" in r.refused
    # W of a wrong shape: refused, not compared
    r = check_layer(B.Affine(np.zeros((2, 4)), np.zeros(4)), lin, x)
    assert r.refused and "cannot be copied" in r.refused


def test_params_mapping_names_what_the_checker_does_not_know():
    class Mine:
        def forward(self, x):
            self.x = x
            return x @ self.kernel.T + self.offset

        def backward(self, dout):
            self.dkernel, self.doffset = dout.T @ self.x, dout.sum(axis=0)
            return dout @ self.kernel

    rng = np.random.default_rng(14)
    lin, x = affine(rng)
    layer = Mine()
    layer.kernel, layer.offset = np.zeros((4, 3)), np.zeros(4)
    r = check_layer(layer, lin, x, params={"kernel": "weight", "offset": "bias"})
    assert r.ok, str(r)
    assert [x.name for x in r.records] == ["out", "dx", "dkernel", "doffset"]
    assert np.array_equal(layer.kernel, lin.weight.detach().numpy())
    assert check_layer(layer, lin, x, params={"kernel": "nope"}).refused


def test_weights_are_copied_in_the_layers_layout():
    rng = np.random.default_rng(15)
    lin, x = affine(rng, i=3, o=3)  # square: W is torch's weight transposed, by the book's name
    layer = B.Affine(np.zeros((3, 3)), np.zeros(3))
    r = check_layer(layer, lin, x)
    assert r.ok and np.array_equal(layer.W, lin.weight.detach().numpy().T)
    assert [(x.name, x.against) for x in r.records] == [("out", "output"), ("dx", "x.grad"),
                                                        ("dW", "weight.grad.T"), ("db", "bias.grad")]


def test_compare_module_and_gradcheck_refuse_book_layers():
    from experiments.compare import compare_module
    from scratch.numerical import gradcheck

    x = np.random.default_rng(16).standard_normal((4, 3))
    with pytest.raises(TypeError, match=r"Affine has no __call__.*state_dict.*check_layer"):
        compare_module(B.Affine(np.zeros((3, 2)), np.zeros(2)), nn.Linear(3, 2), x)

    class CallableAffine(B.Affine):
        __call__ = B.Affine.forward

    with pytest.raises(TypeError, match=r"cannot be copied into it.*experiments.check.check_layer"):
        compare_module(CallableAffine(np.zeros((3, 2)), np.zeros(2)), nn.Linear(3, 2), x)
    with pytest.raises(TypeError, match=r"Sigmoid has no __call__, zero_grad, named_parameters.*check_layer"):
        gradcheck(B.Sigmoid(), x)


# -- the checker's own stream, scratch.nn-style modules, pytest form ------------------------------------------
def test_upstream_gradient_comes_from_the_checkers_stream():
    """The issue's trap: x from default_rng(0) and dout from default_rng(0) made BatchNorm's dx vanish."""
    assert CHECK_STREAM == int.from_bytes(b"check", "big")
    x = np.random.default_rng(0).standard_normal((4, 3))
    G = checker_rng(0).standard_normal((4, 3))
    assert not np.allclose(G, x)
    r = check_layer(TorchBatchNorm(np.ones(3), np.zeros(3), 0.9), nn.BatchNorm1d(3).double(), x)
    assert r.ok, str(r)
    dx = next(x for x in r.records if x.name == "dx")
    assert dx.max_abs < 1e-12  # a meaningful gradient compared, not round-off of a vanishing one


def test_scratch_style_modules_by_their_torch_names():
    import scratch.nn as snn

    rng = np.random.default_rng(17)
    x = rng.standard_normal((5, 3))
    r = check_layer(snn.Linear(3, 4), nn.Linear(3, 4).double(), x)
    assert r.ok and [x.name for x in r.records] == ["out", "dx", "weight.grad", "bias.grad"], str(r)
    r = check_layer(snn.BatchNorm1d(3), nn.BatchNorm1d(3).double(), x)
    assert r.ok and "running_var" in [x.name for x in r.records], str(r)
    r = check_layer(snn.BookBatchNorm(3), nn.BatchNorm1d(3).double(), x)
    assert r.refused or not r.ok  # the book's formulation under torch's names is never a silent pass


def test_assert_matches_torch_for_a_students_test_file():
    rng = np.random.default_rng(18)
    lin, x = affine(rng)
    assert assert_matches_torch(B.Affine(np.zeros((3, 4)), np.zeros(4)), lin, x).ok
    with pytest.raises(AssertionError, match=r"dW +weight.grad.T"):
        assert_matches_torch(AffineSignOfdW(np.zeros((3, 4)), np.zeros(4)), lin, x)


def test_adjoint_tolerance_is_far_from_round_off():
    """ADJOINT_TOL must sit between central-difference error (~1e-9 relative) and any real bug (>= 1e-3)."""
    assert 1e-9 < ADJOINT_TOL < 1e-3


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("name", ["Linear", "ReLU", "Conv2d", "MaxPool2d", "BatchNorm1d", "BatchNorm2d", "Dropout"])
def test_no_false_alarm_on_scratch_modules_over_20_random_shapes(name, dtype):
    import scratch.nn as snn

    record, results = check_class(name, getattr(snn, name), np.dtype(dtype), configs=20, seed=3)
    alarms = [str(r) for r in results if r.diagnoses or r.unexplained or r.refused]
    # torch agrees everywhere, so no secondary test runs; only torch's convention at a kink is noted
    assert not [n for r in results for n in r.notes if "torch's convention" not in n]
    assert record["ok"] and record["against"] == f"torch.nn.{name}" and not alarms, alarms[:2]


def test_numpy_dropout_draws_the_books_mask_from_a_random_state():
    """torch_ref's NumpyDropout takes the RandomState the book's code draws from (np.random.rand)."""
    from torch_ref.nn import NumpyDropout

    x = np.random.default_rng(0).standard_normal((6, 7))
    saved = np.random.get_state()
    try:
        np.random.seed(5)
        layer = B.Dropout(0.3)
        y = layer.forward(x)
    finally:
        np.random.set_state(saved)
    t = NumpyDropout(0.3, np.random.RandomState(5))(torch.tensor(x)).numpy()
    assert np.array_equal(t != 0, layer.mask) and 0 < layer.mask.sum() < x.size
    np.testing.assert_allclose(t * 0.7, y, rtol=1e-15, atol=0)
    with pytest.raises(TypeError, match="Generator or RandomState, got int"):
        NumpyDropout(0.3, 5)


def test_what_the_checker_cannot_compare_is_refused():
    rng = np.random.default_rng(19)
    x = rng.standard_normal((4, 3))

    class AffineForgetsdW(B.Affine):
        def backward(self, dout):
            self.db = dout.sum(axis=0)
            return dout @ self.W.T

    lin, _ = affine(rng)
    layer = AffineForgetsdW(np.zeros((3, 4)), np.zeros(4))
    layer.dW = np.zeros((3, 4))  # an earlier call's gradient must not be compared
    r = check_layer(layer, lin, x)
    assert r.refused.startswith("the layer has no dW after backward")
    r = check_layer(B.Affine(np.zeros((3, 3)), np.zeros(3)), nn.ReLU(), x)
    assert r.refused.startswith("the layer's W, b has no counterpart in torch's ReLU")
    r = check_layer(B.Sigmoid(), nn.Softmax2d(), x)
    assert r.refused.startswith("torch.nn.Softmax2d raised")
    r = check_layer(B.Sigmoid(), nn.Sigmoid(), x, grad_output=np.ones(3))
    assert r.refused == "grad_output has shape (3,), the layer's output (4, 3)"
    r = check_layer(B.Sigmoid(), nn.Sigmoid(), x, nondiff=("y",))
    assert r.refused.startswith("nondiff=['y'] names no input")
    assert not r.ok and not r.records


SHOWN = [("Affine", AffineSignOfdW, "sign", "both"), ("Affine", AffineMissingTranspose, "transpose", "both"),
         ("Affine", AffineMeanInDb, "averaged", "both"), ("Relu", ReluWrongMask, "mask", "both"),
         ("Sigmoid", SigmoidWrongFormula, "adjoint", "both"), ("Dropout", B.Dropout, "non-inverted-dropout", "both"),
         ("BatchNormalization", B.BatchNormalization, "biased-running-var", "both"),
         ("BatchNormalization", BatchNormStartsAtZero, "running-var-from-0", "both"),
         ("BatchNormalization", B.BatchNormalization, "bn-eps", np.float64),
         ("SoftmaxWithLoss", B.SoftmaxWithLoss, "loss-dout-1", "both"),
         ("SoftmaxWithLoss", B.SoftmaxWithLoss, "log-eps", np.float64),
         ("Convolution", B.Convolution, "float64-inside", np.float32),
         ("Pooling", B.Pooling, "float64-inside", np.float32)]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("name, cls, code, dtypes", SHOWN, ids=[f"{c.__name__}-{code}" for _, c, code, _ in SHOWN])
def test_each_diagnosis_fires_over_20_random_shapes(name, cls, code, dtypes, dtype):
    """The book's two epsilons move float32 results by less than the tolerance; float64 im2col is float64's dtype."""
    if dtypes not in ("both", dtype):
        pytest.skip(f"{code} does not show in {np.dtype(dtype)}")
    _, results = check_class(name, cls, np.dtype(dtype), configs=20, seed=4)
    if code.endswith("running-var") or code.startswith("running-var"):  # the statistics move in training only
        results = [r for r in results if r.mode == "train"]
    hits = [r for r in results if code in codes(r)]
    assert all(code in codes(r) or r.ok for r in results), [str(r) for r in results if code not in codes(r)][:1]
    assert len(hits) >= 0.75 * len(results)  # a 1 x 1 Affine's transposed dW is right, for one


# -- torch is the judge: no false alarm at kinks and ties (the false alarms) --------------------------------
def mnist_like_relu_input(rng, shape=(16, 30)):
    """A batch as a ReLU after an Affine sees it on MNIST: many exact zeros (the pixels of the border)."""
    x = rng.standard_normal(shape)
    x[rng.random(shape) < 0.5] = 0.0
    return x


def test_correct_relu_and_pooling_at_kinks_and_ties_match_torch():
    rng = np.random.default_rng(30)
    x = mnist_like_relu_input(rng)
    r = assert_matches_torch(B.Relu(), nn.ReLU(), x)
    assert r.ok and any("relu'(0) = 0" in n for n in r.notes)  # the report says which convention was used
    fmap = np.maximum(np.round(rng.standard_normal((2, 3, 6, 6)) * 2) / 2, 0)  # a ReLU'd map: tied maxima
    r = assert_matches_torch(B.Pooling(2, 2, 2), nn.MaxPool2d(2, 2), fmap)
    assert r.ok and any("tied maxima" in n for n in r.notes)
    r = assert_matches_torch(B.Pooling(3, 3, 1), nn.MaxPool2d(3, 1), fmap)  # overlapping windows
    assert r.ok


def test_the_dot_product_test_skips_directions_across_a_kink():
    rng = np.random.default_rng(31)
    assert dot_product_test(B.Relu(), mnist_like_relu_input(rng)) == {}
    fmap = np.maximum(np.round(rng.standard_normal((2, 2, 4, 4)) * 2) / 2, 0)
    assert dot_product_test(B.Pooling(2, 2, 2), fmap) == {}
    assert set(dot_product_test(SigmoidWrongFormula(), rng.standard_normal((4, 5)))) == {"dx"}  # still finds


def test_a_correct_layer_computing_in_float32_passes_in_float32():
    x = np.random.default_rng(32).standard_normal((16, 30)).astype(np.float32)
    r = assert_matches_torch(float32_inside.Sigmoid(), nn.Sigmoid(), x)
    assert all(rec.ratio <= 2 for rec in r.records)  # as accurate as torch's float32 against torch's float64


# -- pytest ergonomics -------------------------------------------------------------------------------------------
def test_assert_matches_torch_first_line_names_layer_tensor_and_diagnosis():
    rng = np.random.default_rng(33)
    lin, x = affine(rng)
    with pytest.raises(AssertionError) as info:
        assert_matches_torch(AffineSignOfdW(np.zeros((3, 4)), np.zeros(4)), lin, x)
    first = str(info.value).splitlines()[0]
    assert first == "AffineSignOfdW vs torch.nn.Linear (dW): mismatch: dW has the wrong sign (dW = -1 x torch's)"


def test_accept_names_the_by_design_variants_a_test_accepts():
    rng = np.random.default_rng(34)
    x, t = rng.standard_normal((6, 4)), rng.integers(0, 4, 6)
    with pytest.raises(AssertionError, match="differs by design"):
        assert_matches_torch(B.SoftmaxWithLoss(), nn.CrossEntropyLoss(), x, t, grad_output=np.float64(1.0))
    assert assert_matches_torch(B.SoftmaxWithLoss(), nn.CrossEntropyLoss(), x, t, grad_output=np.float64(1.0),
                                accept=["log-eps"]).ok
    with pytest.raises(AssertionError, match="differs by design"):  # dout = 0.4...: loss-dout-1 not accepted
        assert_matches_torch(B.SoftmaxWithLoss(), nn.CrossEntropyLoss(), x, t, accept=["log-eps"])
    with pytest.raises(ValueError, match="unknown variant.*'eps'.*known: log-eps"):
        assert_matches_torch(B.SoftmaxWithLoss(), nn.CrossEntropyLoss(), x, t, accept=["eps"])
    # a bug on top of an accepted variant still fails
    with pytest.raises(AssertionError, match="mismatch: dW has the wrong sign"):
        lin, x = affine(rng)
        assert_matches_torch(AffineSignOfdW(np.zeros((3, 4)), np.zeros(4)), lin, x, accept=["log-eps"])


def test_rtol_and_atol_override_the_tolerance():
    class SigmoidRough(B.Sigmoid):
        def forward(self, x):
            return super().forward(x) + 1e-8  # off by 1e-8: beyond float64's 1e-10, within a test's 1e-6

    x = np.random.default_rng(35).standard_normal((4, 3))
    with pytest.raises(AssertionError, match="mismatch"):
        assert_matches_torch(SigmoidRough(), nn.Sigmoid(), x)
    assert assert_matches_torch(SigmoidRough(), nn.Sigmoid(), x, rtol=1e-6).ok
    assert assert_matches_torch(SigmoidRough(), nn.Sigmoid(), x, atol=2e-8).ok
    assert check_layer(SigmoidRough(), nn.Sigmoid(), x, rtol=1e-12).records[0].tolerance == 1e-12


def test_pytest_shows_the_test_line_not_the_checkers_frames(tmp_path):
    import os
    import subprocess
    import sys

    test = tmp_path / "test_student.py"
    test.write_text(LOAD_FOR_STUDENT + """
import numpy as np
from torch import nn
from experiments.check import assert_matches_torch


class Sigmoid(B.Sigmoid):
    def backward(self, dout):
        return dout * (1.0 - self.out)


def test_sigmoid():
    assert_matches_torch(Sigmoid(), nn.Sigmoid(), np.linspace(-2, 2, 12).reshape(3, 4))
""")
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    p = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(test)],
                       capture_output=True, text=True, cwd=tmp_path, timeout=300, env=env)
    assert p.returncode == 1
    assert "assert_matches_torch(Sigmoid(), nn.Sigmoid()" in p.stdout
    assert "experiments/check/layer.py" not in p.stdout
    assert "AssertionError: Sigmoid vs torch.nn.Sigmoid (dx): mismatch: backward is not the adjoint" in p.stdout


LOAD_FOR_STUDENT = f"""
import importlib.util
_spec = importlib.util.spec_from_file_location("book_layers", {str(ROOT / "examples" / "book_layers.py")!r})
B = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(B)
"""
