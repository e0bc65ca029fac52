"""experiments.check.optimizers: book-style and CS231n-style optimizers, written here, against torch.optim.

The optimizers below are written fresh in the two styles a learner meets (the book's chapter-6 classes with
``update(params, grads)``, CS231n's ``f(w, dw, config) -> (next_w, config)``); each planted bug must be named.
"""
import numpy as np
import pytest

from experiments.check.optimizers import (assert_optimizer_matches_torch, check_optimizer, family_of,
                                          variant_trajectory, torch_trajectory, gradient_stream)


# -- book style ---------------------------------------------------------------------------------------------
class SGD:
    def __init__(self, lr=0.01):
        self.lr = lr

    def update(self, params, grads):
        for k in params:
            params[k] -= self.lr * grads[k]


class Momentum:
    def __init__(self, lr=0.01, momentum=0.9, sign=1.0):
        self.lr, self.momentum, self.v, self.sign = lr, momentum, None, sign

    def update(self, params, grads):
        if self.v is None:
            self.v = {k: np.zeros_like(p) for k, p in params.items()}
        for k in params:
            self.v[k] = self.momentum * self.v[k] - self.lr * grads[k]
            params[k] += self.sign * self.v[k]


class Nesterov:
    """velocity_first=True: the velocity updated before the parameter step (scratch.optim.book's order)."""

    def __init__(self, lr=0.01, momentum=0.9, velocity_first=False):
        self.lr, self.momentum, self.v, self.first = lr, momentum, None, velocity_first

    def update(self, params, grads):
        if self.v is None:
            self.v = {k: np.zeros_like(p) for k, p in params.items()}
        m = self.momentum
        for k in params:
            if self.first:
                self.v[k] = m * self.v[k] - self.lr * grads[k]
            params[k] += m * m * self.v[k]
            params[k] -= (1 + m) * self.lr * grads[k]
            if not self.first:
                self.v[k] = m * self.v[k] - self.lr * grads[k]


class AdaGrad:
    def __init__(self, lr=0.01, eps=1e-10, inside=False):
        self.lr, self.eps, self.h, self.inside = lr, eps, None, inside

    def update(self, params, grads):
        if self.h is None:
            self.h = {k: np.zeros_like(p) for k, p in params.items()}
        for k in params:
            self.h[k] += grads[k] * grads[k]
            denom = np.sqrt(self.h[k] + self.eps) if self.inside else np.sqrt(self.h[k]) + self.eps
            params[k] -= self.lr * grads[k] / denom


class RMSprop:
    def __init__(self, lr=0.01, decay_rate=0.99, eps=1e-8):
        self.lr, self.decay_rate, self.eps, self.h = lr, decay_rate, eps, None

    def update(self, params, grads):
        if self.h is None:
            self.h = {k: np.zeros_like(p) for k, p in params.items()}
        for k in params:
            self.h[k] = self.decay_rate * self.h[k] + (1 - self.decay_rate) * grads[k] ** 2
            params[k] -= self.lr * grads[k] / (np.sqrt(self.h[k]) + self.eps)


class Adam:
    """bias: "torch" (m_hat, v_hat), "folded" (into lr_t, the book's), "none"; start: the counter's first value."""

    def __init__(self, lr=0.001, beta1=0.9, beta2=0.999, eps=1e-8, bias="torch", start=0, inside=False):
        self.lr, self.beta1, self.beta2, self.eps = lr, beta1, beta2, eps
        self.bias, self.iter, self.inside, self.m, self.v = bias, start, inside, None, None

    def update(self, params, grads):
        if self.m is None:
            self.m = {k: np.zeros_like(p) for k, p in params.items()}
            self.v = {k: np.zeros_like(p) for k, p in params.items()}
        self.iter += 1
        b1, b2, t = self.beta1, self.beta2, self.iter
        for k in params:
            self.m[k] = b1 * self.m[k] + (1 - b1) * grads[k]
            self.v[k] = b2 * self.v[k] + (1 - b2) * grads[k] ** 2
            if self.bias == "torch":
                m, v, lr = self.m[k] / (1 - b1 ** t), self.v[k] / (1 - b2 ** t), self.lr
            elif self.bias == "folded":
                m, v, lr = self.m[k], self.v[k], self.lr * np.sqrt(1 - b2 ** t) / (1 - b1 ** t)
            else:
                m, v, lr = self.m[k], self.v[k], self.lr
            denom = np.sqrt(v + self.eps) if self.inside else np.sqrt(v) + self.eps
            params[k] -= lr * m / denom


# -- CS231n style -------------------------------------------------------------------------------------------
def sgd(w, dw, config=None):
    if config is None:
        config = {}
    config.setdefault("learning_rate", 1e-2)
    w -= config["learning_rate"] * dw
    return w, config


def sgd_momentum(w, dw, config=None):
    if config is None:
        config = {}
    config.setdefault("learning_rate", 1e-2)
    config.setdefault("momentum", 0.9)
    v = config.get("velocity", np.zeros_like(w))
    v = config["momentum"] * v - config["learning_rate"] * dw
    config["velocity"] = v
    return w + v, config


def rmsprop(w, dw, config=None):
    if config is None:
        config = {}
    config.setdefault("learning_rate", 1e-2)
    config.setdefault("decay_rate", 0.99)
    config.setdefault("epsilon", 1e-8)
    config.setdefault("cache", np.zeros_like(w))
    c = config["decay_rate"] * config["cache"] + (1 - config["decay_rate"]) * dw ** 2
    config["cache"] = c
    return w - config["learning_rate"] * dw / (np.sqrt(c) + config["epsilon"]), config


def adam(w, dw, config=None):
    if config is None:
        config = {}
    config.setdefault("learning_rate", 1e-3)
    config.setdefault("beta1", 0.9)
    config.setdefault("beta2", 0.999)
    config.setdefault("epsilon", 1e-8)
    config.setdefault("m", np.zeros_like(w))
    config.setdefault("v", np.zeros_like(w))
    config.setdefault("t", 0)
    b1, b2 = config["beta1"], config["beta2"]
    config["t"] += 1
    config["m"] = b1 * config["m"] + (1 - b1) * dw
    config["v"] = b2 * config["v"] + (1 - b2) * dw ** 2
    mt = config["m"] / (1 - b1 ** config["t"])
    vt = config["v"] / (1 - b2 ** config["t"])
    return w - config["learning_rate"] * mt / (np.sqrt(vt) + config["epsilon"]), config


def adam_counter_from_one(w, dw, config=None):
    """A learner's Adam whose counter starts at 1 (``setdefault("t", 1)``) and is incremented before use."""
    config = {} if config is None else config
    config.setdefault("t", 1)
    return adam(w, dw, config)


# -- correct ones pass --------------------------------------------------------------------------------------
@pytest.mark.parametrize("opt", [SGD(), SGD(lr=0.3), Momentum(), Nesterov(), AdaGrad(), RMSprop(), Adam(),
                                 Adam(lr=0.01, beta1=0.8, beta2=0.99, eps=1e-6)], ids=lambda o: type(o).__name__)
def test_correct_book_style_optimizers_match_torch(opt):
    r = assert_optimizer_matches_torch(opt)
    assert r.verdict == "ok" and len(r.records) == 4 and all(x.scaled <= 1e-12 for x in r.records)
    assert r.against.startswith("torch.optim.")


@pytest.mark.parametrize("fn", [sgd, sgd_momentum, rmsprop, adam])
def test_cs231n_functions_match_torch_with_their_own_defaults(fn):
    r = check_optimizer(fn)
    assert r.ok, str(r)
    # the hyperparameters came from the function's config defaults
    expected = {"sgd": "lr=0.01", "sgd_momentum": "momentum=0.9", "rmsprop": "eps=1e-08", "adam": "lr=0.001"}
    assert expected[fn.__name__] in r.against


def test_cs231n_config_given_by_the_caller_is_used():
    r = check_optimizer(adam, config={"learning_rate": 0.05, "epsilon": 1e-6})
    assert r.ok and "lr=0.05" in r.against and "eps=1e-06" in r.against


def test_float32_is_held_to_float32_tolerance():
    r = check_optimizer(Adam(), dtype=np.float32)
    assert r.ok and r.records[0].tolerance == 1e-5 and r.dtype == "float32"


# -- variants named exactly ---------------------------------------------------------------------------------
def test_book_adam_form_differs_by_design():
    r = check_optimizer(Adam(eps=1e-7, bias="folded"), name="Adam")
    assert r.verdict.startswith("differs by design: "), r.verdict
    assert [d.code for d in r.diagnoses] == ["optim-bias"]
    assert "folded into the learning rate" in r.verdict and "reproduces the trajectory over all 200" in r.verdict
    assert "the trajectories part at step 1 of 200" in r.notes


def test_eps_value_hard_coded_is_named():
    class AdaGradBookEps(AdaGrad):  # no eps attribute: torch's default is the comparison, 1e-7 the variant
        def __init__(self):
            super().__init__(eps=1e-7)
            del self.eps
            self._e = 1e-7

        def update(self, params, grads):
            self.eps = self._e
            super().update(params, grads)
            del self.eps

    r = check_optimizer(AdaGradBookEps(), name="AdaGrad")
    assert r.verdict.startswith("differs by design: eps = 1e-07 (torch's default is 1e-10"), r.verdict


@pytest.mark.parametrize("opt,family", [(AdaGrad(inside=True), "adagrad"), (Adam(inside=True), "adam")])
def test_eps_inside_the_square_root_is_named(opt, family):
    r = check_optimizer(opt, family=family)
    assert [d.code for d in r.diagnoses] == ["optim-place"], r.verdict
    assert "eps inside the square root" in r.verdict and r.verdict.startswith("differs by design")


def test_missing_bias_correction_is_a_mismatch_named_exactly():
    r = check_optimizer(Adam(bias="none"))
    assert r.verdict.startswith("mismatch: no bias correction"), r.verdict
    assert not r.ok and all(x.verdict == "FAIL" for x in r.records)


@pytest.mark.parametrize("opt", [Adam(start=1), adam_counter_from_one], ids=["book-style", "cs231n"])
def test_off_by_one_step_counter_is_named(opt):
    r = check_optimizer(opt, family="adam")
    assert r.verdict.startswith("mismatch: bias-correction step counter off by one: step t is corrected as t + 1"), \
        r.verdict


def test_momentum_sign_is_a_mismatch():
    r = check_optimizer(Momentum(sign=-1.0))
    assert r.verdict.startswith("mismatch: the velocity is applied with the wrong sign"), r.verdict


def test_velocity_first_nesterov_is_named_and_the_books_order_matches_torch():
    assert check_optimizer(Nesterov()).ok
    r = check_optimizer(Nesterov(velocity_first=True))
    assert [d.code for d in r.diagnoses] == ["optim-nesterov"], r.verdict
    assert "velocity-first Nesterov" in r.verdict


def test_unexplained_difference_reports_the_first_step_and_the_closest_variant():
    class LateBug(Adam):
        def update(self, params, grads):
            super().update(params, grads)
            if self.iter == 37:  # a one-off slip: no named variant reproduces it
                params["b1"] += 1e-3

    r = check_optimizer(LateBug(), name="Adam")
    assert r.verdict.startswith("mismatch: parts from torch.optim.Adam"), r.verdict
    assert "at step 37" in r.verdict and "the trajectories part at step 37 of 200" in r.notes
    assert {x.name: x.ok for x in r.records} == {"W1": True, "b1": False, "W2": True, "b2": True}


def test_user_error_is_reported_not_passed():
    class Broken:
        lr = 0.1

        def update(self, params, grads):
            raise ZeroDivisionError("oops")

    r = check_optimizer(Broken(), family="sgd")
    assert r.verdict.startswith("error: the optimizer's step 1 raised ZeroDivisionError: oops"), r.verdict


def test_unknown_family_is_refused_with_the_way_to_name_it():
    r = check_optimizer(SGD(), name="Lion")
    assert r.verdict.startswith("refused:") and "family='adam'" in r.verdict


def test_variant_rules_without_changes_are_torch_optim():
    """The torch-operation rules the variants are built on reproduce torch.optim itself (no variant applied)."""
    params0, stream = gradient_stream(50, np.float64, seed=3)
    hyper = {"lr": 0.01, "momentum": 0.9, "alpha": 0.9, "beta1": 0.8, "beta2": 0.99}
    for family, eps in [("sgd", None), ("momentum", None), ("nesterov", None), ("adagrad", 1e-10),
                        ("rmsprop", 1e-8), ("adam", 1e-8)]:
        ref, _ = torch_trajectory(family, hyper, params0, stream, np.float64)
        ours = variant_trajectory(family, hyper, {}, params0, stream, np.float64, torch_eps=eps)
        for k in ref:
            assert np.max(np.abs(ours[k] - ref[k])) <= 1e-12 * np.max(np.abs(ref[k])), (family, k)


def test_family_names():
    assert [family_of(n) for n in ("AdaGrad", "sgd_momentum", "RMSProp", "NAG", "Lion")] == \
        ["adagrad", "momentum", "rmsprop", "nesterov", None]
