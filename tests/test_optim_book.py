"""The book's optimizers (scratch.optim.book) beside torch.optim: where they are the same rule,
and where (and by how much) they are not."""
import copy
import math

import numpy as np
import pytest
import torch

from experiments.compare import compare_arrays
from scratch.nn import Parameter
from scratch.optim import book
from scratch.optim import lr_scheduler as ssched

TOL = {np.float64: 1e-12, np.float32: 1e-5}
SHAPES = [(5, 3), (4,), ()]


def _twins(dtype, seed=0):
    rng = np.random.default_rng(seed)
    arrays = [rng.standard_normal(s).astype(dtype) for s in SHAPES]
    return [Parameter(a.copy()) for a in arrays], [torch.tensor(a.copy(), requires_grad=True) for a in arrays]


def _lockstep(b_opt, sp, t_opt, tp, steps, dtype, scale=1.0, seed=1, before_torch_step=None):
    rng = np.random.default_rng(seed)
    for step in range(1, steps + 1):
        for a, b in zip(sp, tp):
            g = (scale * rng.standard_normal(a.shape)).astype(dtype)
            a.grad, b.grad = g.copy(), torch.tensor(g)
        b_opt.step()
        if before_torch_step is not None:
            before_torch_step(step)
        t_opt.step()


def _scaled(sp, tp):
    return max(compare_arrays("p", a.data, b.detach()).scaled for a, b in zip(sp, tp))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_book_sgd_is_torch_sgd(dtype):
    sp, tp = _twins(dtype)
    _lockstep(book.SGD(sp, lr=0.05), sp, torch.optim.SGD(tp, lr=0.05, foreach=False), tp, 200, dtype)
    assert _scaled(sp, tp) <= TOL[dtype]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_book_momentum_is_torch_sgd_momentum_up_to_velocity_scale(dtype):
    """Sutskever's v = m v - lr g against PyTorch's b = m b + g: same path, v = -lr b (constant lr)."""
    sp, tp = _twins(dtype)
    b_opt = book.Momentum(sp, lr=0.01, momentum=0.9)
    t_opt = torch.optim.SGD(tp, lr=0.01, momentum=0.9, dampening=0, foreach=False)
    _lockstep(b_opt, sp, t_opt, tp, 200, dtype)
    assert _scaled(sp, tp) <= TOL[dtype]
    for a, b in zip(sp, tp):
        v = b_opt.state[a]["v"]
        buf = t_opt.state[b]["momentum_buffer"]
        assert compare_arrays("v", v, -0.01 * buf).ok(TOL[dtype])


def test_book_momentum_and_torch_part_when_the_rate_changes():
    """With StepLR halving the rate, the book's velocity keeps the old rate in it; torch's buffer does not."""
    dtype = np.float64
    sp, tp = _twins(dtype)
    b_opt = book.Momentum(sp, lr=0.02, momentum=0.9)
    t_opt = torch.optim.SGD(tp, lr=0.02, momentum=0.9, foreach=False)
    b_sched = ssched.StepLR(b_opt, step_size=1, gamma=0.5)
    t_sched = torch.optim.lr_scheduler.StepLR(t_opt, step_size=1, gamma=0.5)
    _lockstep(b_opt, sp, t_opt, tp, 20, dtype)
    assert _scaled(sp, tp) <= TOL[dtype]  # same so far: the rate has not moved
    b_sched.step(), t_sched.step()
    _lockstep(b_opt, sp, t_opt, tp, 1, dtype, seed=2)
    # One step later: torch moves by lr/2 * (m b + g); the book by m v - lr/2 g = -lr m b - lr/2 g.
    assert _scaled(sp, tp) > 1e-4


def test_book_nesterov_is_not_torch_nesterov():
    """The book updates with the new velocity: param += m^3 v_old - (1 + m + m^2) lr g.
    torch (Bengio's form, v = -lr b): param += m^2 v_old - (1 + m) lr g."""
    dtype, lr, m = np.float64, 0.01, 0.9
    sp, tp = _twins(dtype)
    b_opt = book.Nesterov(sp, lr=lr, momentum=m)
    t_opt = torch.optim.SGD(tp, lr=lr, momentum=m, nesterov=True, foreach=False)
    # the two closed forms, stepped independently of either optimizer
    book_form = [a.data.copy() for a in sp]
    torch_form = [a.data.copy() for a in sp]
    v_book = [np.zeros(s) for s in SHAPES]
    v_torch = [np.zeros(s) for s in SHAPES]
    rng = np.random.default_rng(1)
    for _ in range(100):
        for i, (a, b) in enumerate(zip(sp, tp)):
            g = rng.standard_normal(a.shape)
            a.grad, b.grad = g.copy(), torch.tensor(g)
            book_form[i] += m**3 * v_book[i] - (1 + m + m * m) * lr * g
            v_book[i] = m * v_book[i] - lr * g
            torch_form[i] += m * m * v_torch[i] - (1 + m) * lr * g
            v_torch[i] = m * v_torch[i] - lr * g
        b_opt.step()
        t_opt.step()
    for a, b, f_book, f_torch in zip(sp, tp, book_form, torch_form):
        assert compare_arrays("book", a.data, f_book).ok(1e-12)
        assert compare_arrays("torch", b.detach(), f_torch).ok(1e-12)
    assert _scaled(sp, tp) > 1e-3


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_book_adagrad_is_torch_adagrad_with_eps_1e_7(dtype):
    sp, tp = _twins(dtype)
    _lockstep(book.AdaGrad(sp, lr=0.1), sp, torch.optim.Adagrad(tp, lr=0.1, eps=1e-7, foreach=False), tp,
              200, dtype)
    assert _scaled(sp, tp) <= TOL[dtype]


def test_book_adagrad_differs_from_torch_default_eps_on_tiny_gradients():
    sp, tp = _twins(np.float64)
    _lockstep(book.AdaGrad(sp, lr=0.1), sp, torch.optim.Adagrad(tp, lr=0.1, foreach=False), tp, 50, np.float64,
              scale=1e-8)
    assert _scaled(sp, tp) > 1e-3


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_book_rmsprop_is_torch_rmsprop_with_alpha_decay_rate_and_eps_1e_7(dtype):
    sp, tp = _twins(dtype)
    t_opt = torch.optim.RMSprop(tp, lr=0.01, alpha=0.99, eps=1e-7, foreach=False)
    _lockstep(book.RMSprop(sp, lr=0.01, decay_rate=0.99), sp, t_opt, tp, 200, dtype)
    assert _scaled(sp, tp) <= TOL[dtype]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_book_adam_is_torch_adam_with_step_dependent_eps(dtype):
    """Folding the bias correction into lr_t puts eps inside it: eps_t = 1e-7 / sqrt(1 - beta2^t)."""
    sp, tp = _twins(dtype)
    t_opt = torch.optim.Adam(tp, lr=0.01, betas=(0.9, 0.999), foreach=False)

    def set_eps(t):
        t_opt.param_groups[0]["eps"] = 1e-7 / math.sqrt(1 - 0.999**t)

    _lockstep(book.Adam(sp, lr=0.01), sp, t_opt, tp, 200, dtype, scale=1e-6, before_torch_step=set_eps)
    assert _scaled(sp, tp) <= TOL[dtype]


def test_book_adam_and_torch_adam_eps_placement_difference():
    """Gradients of order 1: eps hardly matters, the two agree to about 1e-6 (not to round-off);
    gradients near eps: the book's larger effective eps gives clearly smaller steps."""
    sp, tp = _twins(np.float64)
    _lockstep(book.Adam(sp, lr=0.01), sp, torch.optim.Adam(tp, lr=0.01, eps=1e-7, foreach=False), tp, 100,
              np.float64)
    assert 1e-12 < _scaled(sp, tp) < 1e-4
    sp, tp = _twins(np.float64)
    start = [a.data.copy() for a in sp]
    _lockstep(book.Adam(sp, lr=0.01), sp, torch.optim.Adam(tp, lr=0.01, eps=1e-7, foreach=False), tp, 5,
              np.float64, scale=1e-7)
    book_move = sum(np.abs(a.data - s).sum() for a, s in zip(sp, start))
    torch_move = sum(np.abs(b.detach().numpy() - s).sum() for b, s in zip(tp, start))
    assert book_move < 0.5 * torch_move


def test_book_optimizers_descend_the_chapter_6_function():
    """f(x, y) = x^2 / 20 + y^2 from (-7, 2), 30 steps, with the book's learning rates."""
    def f(p):
        return p[0] ** 2 / 20 + p[1] ** 2

    for cls, lr in [(book.SGD, 0.95), (book.Momentum, 0.1), (book.Nesterov, 0.1), (book.AdaGrad, 1.5),
                    (book.RMSprop, 0.1), (book.Adam, 0.3)]:
        xy = Parameter(np.array([-7.0, 2.0]))
        opt = cls([xy], lr=lr)
        for _ in range(30):
            xy.grad = np.array([xy.data[0] / 10.0, 2.0 * xy.data[1]])
            opt.step()
        assert f(xy.data) < 0.1 * f(np.array([-7.0, 2.0])), cls.__name__


@pytest.mark.parametrize("cls", [book.SGD, book.Momentum, book.Nesterov, book.AdaGrad, book.RMSprop, book.Adam])
def test_book_state_dict_resume(cls):
    sp, _ = _twins(np.float32)
    opt = cls(sp)
    rng = np.random.default_rng(3)
    for _ in range(10):
        for p in sp:
            p.grad = rng.standard_normal(p.shape).astype(np.float32)
        opt.step()
    saved, saved_params = copy.deepcopy(opt.state_dict()), [p.data.copy() for p in sp]
    grads = [[rng.standard_normal(p.shape).astype(np.float32) for p in sp] for _ in range(10)]
    for gs in grads:
        for p, g in zip(sp, gs):
            p.grad = g
        opt.step()
    sp2 = [Parameter(a) for a in saved_params]
    opt2 = cls(sp2)
    opt2.load_state_dict(saved)
    for gs in grads:
        for p, g in zip(sp2, gs):
            p.grad = g
        opt2.step()
    for a, b in zip(sp, sp2):
        np.testing.assert_array_equal(a.data, b.data)
        assert b.data.dtype == np.float32


def test_book_validation():
    p = [Parameter(np.zeros(2))]
    with pytest.raises(ValueError, match="Invalid learning rate: -0.1"):
        book.Momentum(p, lr=-0.1)
    with pytest.raises(ValueError, match="Invalid beta parameter at index 1: 1.0"):
        book.Adam(p, beta2=1.0)
