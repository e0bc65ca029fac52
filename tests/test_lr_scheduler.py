"""scratch.optim.lr_scheduler against torch.optim.lr_scheduler: the same rates, epoch by epoch.

Each scheduler runs 100 epochs beside its torch twin on optimizers with two
parameter groups of different base rates; every epoch's rates must agree to
1e-15 relative (they are the same float64 arithmetic, so in practice exactly).
"""
import copy

import numpy as np
import pytest
import torch

from scratch import optim as soptim
from scratch.nn import Parameter
from scratch.optim import lr_scheduler as ssched

EPOCHS = 100
LR_TOL = 1e-15
BASE_LRS = (0.1, 0.03)


def _pair(opt_name="SGD", **kw):
    """A scratch and a torch optimizer over two groups with different base rates."""
    rng = np.random.default_rng(0)
    arrays = [rng.standard_normal((3, 2)), rng.standard_normal(4)]
    sp = [Parameter(a.copy()) for a in arrays]
    tp = [torch.tensor(a.copy(), requires_grad=True) for a in arrays]
    s_groups = [{"params": [p], "lr": lr} for p, lr in zip(sp, BASE_LRS)]
    t_groups = [{"params": [p], "lr": lr} for p, lr in zip(tp, BASE_LRS)]
    s_opt = getattr(soptim, opt_name)(s_groups, **kw)
    t_opt = getattr(torch.optim, opt_name)(t_groups, foreach=False, **kw)
    return (s_opt, sp), (t_opt, tp)


def _assert_lrs_equal(s_lrs, t_lrs, where):
    assert len(s_lrs) == len(t_lrs)
    for a, b in zip(s_lrs, t_lrs):
        assert abs(a - b) <= LR_TOL * abs(b), f"{where}: scratch {a!r} vs torch {b!r}"


SCHEDULERS = {
    "StepLR": dict(step_size=7, gamma=0.5),
    "MultiStepLR": dict(milestones=[10, 25, 25, 60], gamma=0.3),
    "ExponentialLR": dict(gamma=0.95),
    "CosineAnnealingLR": dict(T_max=30, eta_min=1e-3),  # 100 epochs: past T_max, the cosine climbs back
    "LinearLR": dict(start_factor=0.25, end_factor=0.9, total_iters=40),
    "LambdaLR": dict(lr_lambda=lambda epoch: 1.0 / (1 + 0.1 * epoch)),
    "ConstantLR": dict(factor=0.4, total_iters=12),
    "PolynomialLR": dict(total_iters=70, power=2.0),
    "MultiplicativeLR": dict(lr_lambda=lambda epoch: 0.99 if epoch % 2 else 0.97),
    "OneCycleLR": dict(max_lr=[0.5, 0.2], total_steps=EPOCHS),
    "OneCycleLR-three-phase-linear": dict(max_lr=0.4, total_steps=EPOCHS, three_phase=True,
                                          anneal_strategy="linear", pct_start=0.25),
}


def _make(name, opt, kw):
    return getattr(ssched if isinstance(opt, soptim.Optimizer) else torch.optim.lr_scheduler,
                   name.split("-")[0])(opt, **kw)


@pytest.mark.parametrize("name", list(SCHEDULERS))
def test_scheduler_rates_match_torch(name):
    kw = SCHEDULERS[name]
    (s_opt, _), (t_opt, _) = _pair(momentum=0.9)
    s, t = _make(name, s_opt, kw), _make(name, t_opt, kw)
    _assert_lrs_equal(s.get_last_lr(), t.get_last_lr(), "epoch 0")
    for epoch in range(1, EPOCHS + 1):
        s_opt.step()  # no gradients: a no-op that keeps torch's step-order check quiet
        t_opt.step()
        s.step()
        t.step()
        _assert_lrs_equal(s.get_last_lr(), t.get_last_lr(), f"{name} epoch {epoch}")
        _assert_lrs_equal([g["lr"] for g in s_opt.param_groups], [g["lr"] for g in t_opt.param_groups], name)
        if name.startswith("OneCycleLR"):
            _assert_lrs_equal([g["momentum"] for g in s_opt.param_groups],
                              [g["momentum"] for g in t_opt.param_groups], f"{name} momentum epoch {epoch}")


def test_lambda_lr_one_function_per_group():
    fns = [lambda e: 0.9**e, lambda e: 1.0 / (e + 1)]
    (s_opt, _), (t_opt, _) = _pair()
    s, t = ssched.LambdaLR(s_opt, fns), torch.optim.lr_scheduler.LambdaLR(t_opt, fns)
    for _ in range(EPOCHS):
        s_opt.step(), t_opt.step(), s.step(), t.step()
        _assert_lrs_equal(s.get_last_lr(), t.get_last_lr(), "LambdaLR")
    with pytest.raises(ValueError, match="Expected 2 lr_lambdas, but got 1"):
        ssched.LambdaLR(s_opt, [fns[0]])


def test_one_cycle_cycles_adam_beta1():
    (s_opt, _), (t_opt, _) = _pair("Adam")
    kw = dict(max_lr=0.01, epochs=10, steps_per_epoch=10, base_momentum=0.8, max_momentum=0.9)
    s, t = ssched.OneCycleLR(s_opt, **kw), torch.optim.lr_scheduler.OneCycleLR(t_opt, **kw)
    for _ in range(EPOCHS):
        s_opt.step(), t_opt.step(), s.step(), t.step()
        _assert_lrs_equal(s.get_last_lr(), t.get_last_lr(), "OneCycleLR(Adam)")
        for gs, gt in zip(s_opt.param_groups, t_opt.param_groups):
            assert gs["betas"] == gt["betas"]
    with pytest.raises(ValueError, match="Tried to step 101 times"):
        s.step()


@pytest.mark.parametrize("mode,threshold_mode,cooldown,min_lr", [
    ("min", "rel", 0, 0), ("min", "abs", 3, [1e-3, 2e-3]), ("max", "rel", 2, 1e-4), ("max", "abs", 0, 0)])
def test_reduce_lr_on_plateau_matches_torch(mode, threshold_mode, cooldown, min_lr):
    rng = np.random.default_rng(1)
    # A metric that improves, then wanders on plateaus, so reductions and cooldowns happen.
    trend = np.concatenate([np.linspace(1.0, 0.5, 20), np.full(80, 0.5)])
    metrics = trend + 0.05 * rng.standard_normal(EPOCHS)
    if mode == "max":
        metrics = -metrics
    kw = dict(mode=mode, factor=0.5, patience=3, threshold=0.01, threshold_mode=threshold_mode,
              cooldown=cooldown, min_lr=min_lr)
    (s_opt, _), (t_opt, _) = _pair()
    s = ssched.ReduceLROnPlateau(s_opt, **kw)
    t = torch.optim.lr_scheduler.ReduceLROnPlateau(t_opt, **kw)
    changes = 0
    for epoch, m in enumerate(metrics):
        before = s.get_last_lr()
        s.step(float(m))
        t.step(float(m))
        changes += s.get_last_lr() != before
        _assert_lrs_equal(s.get_last_lr(), t.get_last_lr(), f"ReduceLROnPlateau epoch {epoch}")
        assert (s.num_bad_epochs, s.cooldown_counter, s.best) == (t.num_bad_epochs, t.cooldown_counter, t.best)
    assert changes >= 2  # the test exercises reductions, not just a constant rate


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("name", ["StepLR", "CosineAnnealingLR", "OneCycleLR"])
def test_scheduler_chained_with_optimizer_steps(name, dtype):
    """One SGD step per epoch on the same gradients, then the scheduler: rates and parameters agree."""
    kw = SCHEDULERS[name]
    (s_opt, sp), (t_opt, tp) = _pair(momentum=0.9, nesterov=True)
    for a, b in zip(sp, tp):
        a.data = a.data.astype(dtype)
        b.data = b.data.to(torch.float64 if dtype == np.float64 else torch.float32)
    s, t = _make(name, s_opt, kw), _make(name, t_opt, kw)
    rng = np.random.default_rng(2)
    for epoch in range(EPOCHS):
        for a, b in zip(sp, tp):
            g = rng.standard_normal(a.shape).astype(dtype)
            a.grad = g.copy()
            b.grad = torch.tensor(g)
        s_opt.step(), t_opt.step(), s.step(), t.step()
        _assert_lrs_equal(s.get_last_lr(), t.get_last_lr(), f"{name} epoch {epoch}")
    tol = 1e-12 if dtype == np.float64 else 1e-5
    for a, b in zip(sp, tp):
        ref = b.detach().numpy()
        assert np.abs(a.data - ref).max() <= tol * np.abs(ref).max()
        assert a.data.dtype == dtype


@pytest.mark.parametrize("name", ["StepLR", "MultiStepLR", "ExponentialLR", "CosineAnnealingLR", "LinearLR"])
def test_state_dict_resume(name):
    """Stop at epoch 40, save, rebuild (optimizer then scheduler), load: the rest of the rates match."""
    kw = SCHEDULERS[name]
    (opt, _), _ = _pair()
    sched = _make(name, opt, kw)
    for _ in range(40):
        opt.step(), sched.step()
    saved_opt, saved_sched = copy.deepcopy(opt.state_dict()), copy.deepcopy(sched.state_dict())
    reference = []
    for _ in range(60):
        opt.step(), sched.step()
        reference.append(sched.get_last_lr())

    (opt2, _), _ = _pair()
    sched2 = _make(name, opt2, kw)
    opt2.load_state_dict(saved_opt)
    sched2.load_state_dict(saved_sched)
    for epoch in range(60):
        opt2.step(), sched2.step()
        _assert_lrs_equal(sched2.get_last_lr(), reference[epoch], f"{name} resumed epoch {40 + epoch}")


@pytest.mark.parametrize("name", ["StepLR", "MultiStepLR", "ExponentialLR", "CosineAnnealingLR", "LinearLR",
                                  "ConstantLR", "PolynomialLR"])
def test_closed_form_step_epoch_matches_torch(name):
    kw = SCHEDULERS[name]
    (s_opt, _), (t_opt, _) = _pair()
    s, t = _make(name, s_opt, kw), _make(name, t_opt, kw)
    for epoch in [3, 17, 50, 99]:
        with pytest.warns(UserWarning, match="epoch parameter"):
            s.step(epoch)
        with pytest.warns(UserWarning):
            t.step(epoch)
        _assert_lrs_equal(s.get_last_lr(), t.get_last_lr(), f"{name} step({epoch})")


def test_validation_messages():
    (opt, _), _ = _pair()
    with pytest.raises(TypeError, match="is not an Optimizer"):
        ssched.StepLR(object(), step_size=3)
    with pytest.raises(ValueError, match="Starting multiplicative factor expected to be greater than 0"):
        ssched.LinearLR(opt, start_factor=0)
    with pytest.raises(ValueError, match="Ending multiplicative factor expected to be between 0 and 1"):
        ssched.LinearLR(opt, end_factor=1.5)
    with pytest.raises(ValueError, match="Factor should be < 1.0"):
        ssched.ReduceLROnPlateau(opt, factor=1.0)
    with pytest.raises(ValueError, match="mode median is unknown"):
        ssched.ReduceLROnPlateau(opt, mode="median")
    with pytest.raises(ValueError, match="expected 2 min_lrs, got 3"):
        ssched.ReduceLROnPlateau(opt, min_lr=[0, 0, 0])
    with pytest.raises(ValueError, match="You must define either total_steps OR"):
        ssched.OneCycleLR(opt, max_lr=0.1)
    with pytest.raises(ValueError, match="max_lr must have the same length as optimizer.param_groups"):
        ssched.OneCycleLR(opt, max_lr=[0.1], total_steps=10)
    with pytest.raises(KeyError, match="initial_lr"):
        (fresh, _), _ = _pair()
        ssched.StepLR(fresh, step_size=3, last_epoch=5)


def _sequential(module, opt):
    warmup = module.LinearLR(opt, start_factor=0.1, total_iters=5)
    cosine = module.CosineAnnealingLR(opt, T_max=40, eta_min=1e-4)
    tail = module.ExponentialLR(opt, gamma=0.9)
    return module.SequentialLR(opt, [warmup, cosine, tail], milestones=[5, 45])


def test_sequential_lr_matches_torch():
    """Warm-up, cosine, then exponential decay, switching at the milestones; and resumed from a checkpoint."""
    (s_opt, _), (t_opt, _) = _pair()
    s, t = _sequential(ssched, s_opt), _sequential(torch.optim.lr_scheduler, t_opt)
    _assert_lrs_equal(s.get_last_lr(), t.get_last_lr(), "epoch 0")
    saved = None
    for epoch in range(1, EPOCHS + 1):
        s_opt.step(), t_opt.step(), s.step(), t.step()
        _assert_lrs_equal(s.get_last_lr(), t.get_last_lr(), f"SequentialLR epoch {epoch}")
        if epoch == 30:
            saved = (copy.deepcopy(s_opt.state_dict()), copy.deepcopy(s.state_dict()), epoch)
    # resume from epoch 30 and replay
    (s_opt2, _), (t_opt2, _) = _pair()
    s2, t2 = _sequential(ssched, s_opt2), _sequential(torch.optim.lr_scheduler, t_opt2)
    s_opt2.load_state_dict(saved[0])
    s2.load_state_dict(saved[1])
    t_ref = []
    for _ in range(EPOCHS):
        t_opt2.step(), t2.step()
        t_ref.append(t2.get_last_lr())
    for epoch in range(saved[2] + 1, EPOCHS + 1):
        s_opt2.step()
        s2.step()
        _assert_lrs_equal(s2.get_last_lr(), t_ref[epoch - 1], f"resumed SequentialLR epoch {epoch}")


def test_sequential_lr_validation():
    (opt, _), (other, _) = _pair()
    with pytest.raises(ValueError, match="expects at least one scheduler"):
        ssched.SequentialLR(opt, [], milestones=[])
    with pytest.raises(ValueError, match="expects number of schedulers provided to be one more"):
        ssched.SequentialLR(opt, [ssched.StepLR(opt, 3)], milestones=[4])
    with pytest.raises(ValueError, match="does not support `ReduceLROnPlateau`"):
        ssched.SequentialLR(opt, [ssched.ReduceLROnPlateau(opt)], milestones=[])
    with pytest.raises(TypeError, match="lr_lambda should be a function, but got int"):
        ssched.MultiplicativeLR(opt, 3)
    with pytest.raises(ValueError, match="Constant multiplicative factor expected to be between 0 and 1"):
        ssched.ConstantLR(opt, factor=2.0)
