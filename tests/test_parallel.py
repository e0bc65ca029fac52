"""scratch.fast.parallel: a batch split over threads, and every split layer still equal to torch.

The layers split only work of a megabyte or more; here MIN_PART_BYTES is 0 and
three threads are used, so that the small random configurations of the parity
cases run split (uneven parts, parts of one sample) and are held to the same
tolerances as the serial code.
"""
import threading
import warnings

import numpy as np
import pytest
import torch

import scratch
import scratch.nn as snn
import scratch.optim
from scratch.fast import parallel
from experiments.compare import compare_module
from experiments.layer_cases import CASES, check_against_torch

# torch warns that it pads a copy for even kernels with padding="same"; that is its business, not a failure.
pytestmark = pytest.mark.filterwarnings("ignore:Using padding=.same.:UserWarning")


@pytest.fixture
def split_everything(monkeypatch):
    monkeypatch.setattr(parallel, "MIN_PART_BYTES", 0)
    before = parallel.get_num_threads()
    parallel.set_num_threads(3)
    yield
    parallel.set_num_threads(before)


def test_thread_count_is_torchs_api():
    before = scratch.get_num_threads()
    try:
        scratch.set_num_threads(2)
        assert scratch.get_num_threads() == 2
        for bad in (0, -1, 1.5, True, "2"):
            with pytest.raises(RuntimeError, match="set_num_threads expects a positive integer"):
                scratch.set_num_threads(bad)
        assert scratch.get_num_threads() == 2
    finally:
        scratch.set_num_threads(before)


def test_parts_cover_the_range_in_order_on_several_threads(split_everything):
    seen = []

    def record(a, b):
        seen.append((a, b, threading.get_ident()))
        return (a, b)

    assert parallel.parts(record, 10) == [(0, 3), (3, 6), (6, 10)]
    where = {(a, b): t for a, b, t in seen}
    me = threading.get_ident()
    assert where[(0, 3)] == me and where[(3, 6)] != me and where[(6, 10)] != me, "parts 1, 2 on pool threads"
    assert parallel.parts(record, 2) == [(0, 1), (1, 2)], "never more parts than items"
    assert parallel.summed(lambda a, b: np.arange(a, b).sum(), 100, 7) == 4950
    assert parallel.chunks(lambda a, b: (a, b), 10, 4) == [(0, 4), (4, 8), (8, 10)]


def test_small_work_nested_calls_and_one_thread_stay_serial(monkeypatch):
    monkeypatch.setattr(parallel, "MIN_PART_BYTES", 1000)
    before = parallel.get_num_threads()
    parallel.set_num_threads(2)
    try:
        assert parallel.parts(lambda a, b: (a, b), 10, nbytes=1999) == [(0, 10)]
        assert parallel.parts(lambda a, b: (a, b), 10, nbytes=2000) == [(0, 5), (5, 10)]
        nested = parallel.parts(lambda a, b: parallel.parts(lambda c, d: (c, d), 4), 2, nbytes=2000)
        assert nested == [[(0, 4)], [(0, 4)]], "a part does not split again"
        parallel.set_num_threads(1)
        assert parallel.parts(lambda a, b: threading.get_ident(), 10) == [threading.get_ident()]
    finally:
        parallel.set_num_threads(before)


def test_openblas_runs_one_thread_inside_parts_and_is_set_back(split_everything):
    before = parallel.get_blas_threads()
    if before is None:
        pytest.skip("NumPy uses a BLAS other than OpenBLAS")
    with parallel.blas_threads(2):
        assert parallel.parts(lambda a, b: parallel.get_blas_threads(), 4) == [1, 1, 1]
        assert parallel.get_blas_threads() == 2
    assert parallel.get_blas_threads() == before


def test_an_exception_in_a_part_reaches_the_caller(split_everything):
    def fail(a, b):
        if a > 0:
            raise ValueError("part failed")

    with pytest.raises(ValueError, match="part failed"):
        parallel.parts(fail, 6)
    assert parallel.parts(lambda a, b: b - a, 6) == [2, 2, 2], "the pool still works"


def test_parts_on_the_pool_obey_the_callers_numpy_error_settings(split_everything):
    """np.errstate is a context variable: each part runs in a copy of the caller's context, so an overflow
    raises (or stays quiet) in every part, not only in the one on the calling thread."""
    def overflow(start, stop):
        return np.exp(np.full(stop - start, 1000.0))

    with np.errstate(over="raise"):
        for k in range(3):  # whichever part overflows first, the error reaches the caller
            with pytest.raises(FloatingPointError):
                parallel.parts(lambda a, b, k=k: overflow(a, b) if a == 3 * k else np.zeros(b - a), 9)
    with np.errstate(over="ignore"), warnings.catch_warnings():
        warnings.simplefilter("error")
        assert all(np.isinf(p).all() for p in parallel.parts(overflow, 9))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize("name", ["Conv2d", "MaxPool2d", "ReLU", "Linear"])
def test_split_layers_match_torch(name, seed, dtype, split_everything):
    description, records, tol = check_against_torch(CASES[name], np.random.default_rng(900 + seed), dtype)
    bad = [str(r) for r in records if not r.ok(tol)]
    assert not bad, f"{description}: " + "; ".join(bad)


@pytest.mark.parametrize("seed", range(8))
def test_split_maxpool_ties_route_like_torch(seed, split_everything):
    """Tied maxima in every window, a batch of 7 in parts of 2, 2 and 3: the same exact routing."""
    rng = np.random.default_rng(seed)
    x = rng.integers(-1, 2, (7, 3, 8, 6)).astype(np.float64)
    cfg = [dict(kernel_size=2), dict(kernel_size=3, stride=2, padding=1, ceil_mode=True)][seed % 2]
    G = rng.integers(-3, 4, snn.MaxPool2d(**cfg)(x).shape).astype(np.float64)
    records = compare_module(snn.MaxPool2d(**cfg), torch.nn.MaxPool2d(**cfg), x, grad_output=G)
    assert all(r.max_abs == 0 for r in records), "; ".join(map(str, records))


def test_split_relu_passes_nan_and_blocks_inf_where_x_is_negative(split_everything):
    x = np.array([[-1.0, 2.0, np.nan], [0.0, 3.0, -4.0], [5.0, -6.0, 7.0]])
    g = np.array([[np.inf, np.nan, 1.0], [np.nan, np.inf, -np.inf], [1.0, 2.0, 3.0]])
    relu = snn.ReLU()
    relu(x)
    xt = torch.tensor(x, requires_grad=True)
    torch.relu(xt).backward(torch.tensor(g))
    np.testing.assert_array_equal(relu.backward(g), xt.grad.numpy())


@pytest.mark.parametrize("amsgrad", [False, True])
def test_split_adam_matches_torch(amsgrad, split_everything):
    rng = np.random.default_rng(0)
    w0 = rng.standard_normal((37, 11))
    p = snn.Parameter(w0.copy())
    pt = torch.nn.Parameter(torch.tensor(w0))
    opt = scratch.optim.Adam([p], lr=0.01, amsgrad=amsgrad)
    ref = torch.optim.Adam([pt], lr=0.01, amsgrad=amsgrad)
    for _ in range(5):
        g = rng.standard_normal(w0.shape)
        p.grad = g.copy()
        pt.grad = torch.tensor(g)
        opt.step()
        ref.step()
    np.testing.assert_allclose(p.data, pt.detach().numpy(), rtol=1e-12, atol=1e-14)


def test_split_convnet_step_equals_the_serial_one(monkeypatch):
    """A SimpleConvNet step split three ways gives the serial step's loss and gradients (to round-off)."""
    from scratch.models.convnets import SimpleConvNet

    rng = np.random.default_rng(0)
    x = rng.standard_normal((5, 1, 28, 28))
    t = rng.integers(0, 10, 5)
    results = []
    before = parallel.get_num_threads()
    for threads, min_bytes in ((1, 1 << 20), (3, 0)):
        monkeypatch.setattr(parallel, "MIN_PART_BYTES", min_bytes)
        parallel.set_num_threads(threads)
        net = SimpleConvNet(dtype=np.float64, generator=np.random.default_rng(1))
        loss = net.loss(x, t)
        net.loss_backward()
        results.append((float(loss), {k: p.grad.copy() for k, p in net.named_parameters()}))
    parallel.set_num_threads(before)
    (l1, g1), (l2, g2) = results
    assert abs(l1 - l2) <= 1e-14 * abs(l1)
    for k in g1:
        np.testing.assert_allclose(g2[k], g1[k], rtol=1e-11, atol=1e-14, err_msg=k)


def test_experiment_threads_give_both_twins_n_and_openblas_one():
    """experiments.threads: torch's pool and scratch's parts get n; OpenBLAS one (no idle spinning); all set back."""
    from experiments.threads import get_threads, threads

    before = get_threads()
    with threads(2):
        now = get_threads()
        assert now["torch"] == now["scratch"] == 2
        assert now["numpy"] in (1, None)
    assert get_threads() == before


@pytest.mark.parametrize("channels", [6, 2])  # chunked im2col, and the whole tap-major col
def test_convolution_gradients_do_not_depend_on_the_thread_count(channels, monkeypatch):
    """Chunks are shared out as threads come free, but their partial sums are added in chunk order."""
    from scratch.fast import im2col

    monkeypatch.setattr(im2col, "CHUNK_BYTES", 1)  # one sample per chunk: 9 chunks to share out
    monkeypatch.setattr(parallel, "MIN_PART_BYTES", 0)
    rng = np.random.default_rng(3)
    x = rng.standard_normal((9, channels, 7, 8)).astype(np.float32)
    g = rng.standard_normal((9, 5, 7, 8)).astype(np.float32)
    grads = []
    before = parallel.get_num_threads()
    with parallel.blas_threads(1):
        for threads in (1, 3, 3):
            parallel.set_num_threads(threads)
            conv = snn.Conv2d(channels, 5, 3, padding=1, generator=np.random.default_rng(0))
            conv(x)
            dx = conv.backward(g)
            grads.append((conv.weight.grad.copy(), conv.bias.grad.copy(), dx.copy()))
    parallel.set_num_threads(before)
    for other in grads[1:]:
        for a, b in zip(grads[0], other):
            np.testing.assert_array_equal(a, b)


def test_small_work_keeps_openblas_to_one_thread_only_when_scratch_has_threads(monkeypatch):
    if parallel.get_blas_threads() is None:
        pytest.skip("NumPy uses a BLAS other than OpenBLAS")
    before = parallel.get_num_threads()
    try:
        with parallel.blas_threads(2):
            parallel.set_num_threads(2)
            assert parallel.parts(lambda a, b: parallel.get_blas_threads(), 4, nbytes=0, blas=True) == [1]
            # element-wise work (no BLAS) does not pay for setting OpenBLAS's threads and back
            assert parallel.parts(lambda a, b: parallel.get_blas_threads(), 4, nbytes=0) == [2]
            assert parallel.chunks(lambda a, b: parallel.get_blas_threads(), 4, 4) == [1]
            parallel.set_num_threads(1)
            assert parallel.parts(lambda a, b: parallel.get_blas_threads(), 4, blas=True) == [2], "as the user set it"
            assert parallel.get_blas_threads() == 2
    finally:
        parallel.set_num_threads(before)


def test_threadpoolctl_finds_numpys_blas():
    """Without it the fast path cannot hold OpenBLAS to one thread inside its parts (threadpoolctl before 3.5
    does not know NumPy 2's libscipy_openblas and finds nothing)."""
    from scratch.fast.parallel import blas_threads, get_blas_threads

    before = get_blas_threads()
    assert before is not None, "threadpoolctl finds no BLAS library in this process"
    with blas_threads(1):
        assert get_blas_threads() == 1
    assert get_blas_threads() == before
