"""Train a learner's network and its torch twin in lockstep: ``train_network``, ``experiments check FILE --train``.

The network (with the learner's optimizer, or plain SGD) and its torch twin (``networks.Twin``: the network's
own layers mapped to torch, its weights copied) take the same steps on the same batches, the twin keeping the
dropout masks the network drew. The loop, the lockstep measure and the float64 shadow are the experiment
runner's own (``experiments.training.fit``, ``experiments.shadow``): the learner's network stands where the
scratch twin stands in the catalogue's runs.

Before training, the network is checked on the first batch (``check_network``) and the optimizer on the
checker's gradient stream (``check_optimizer``). Differences they name as by design (the book's eps in the
loss's log, non-inverted dropout, BatchNormalization's eps; the book's Adam, AdaGrad's eps...) are applied to
the twin, so that the run measures what is left; a bug found there is the located cause when the runs part.

Verdicts. float64: "lockstep parity holds" when the loss difference stays within docs/design.md's lockstep
bound (1e-9 relative to max(|loss|, 1e-3 x the first step's loss)) at every step; otherwise the first step
above it, with the located layer or optimizer. float32: the twins drift apart by round-off (reported, not
asserted); the float64 shadow says whether the learner's float32 run is as accurate as torch's.
"""
import copy
import json
from pathlib import Path

import numpy as np
import torch

from experiments.check.adapters import call_forward
from experiments.check.networks import (Twin, _param_owners, _Recorder, check_network, design_variants,
                                        network_layers, network_params, train_loss, twin_module)
from experiments.check.optimizers import (TorchRule, _adapter, check_optimizer, default_eps, torch_optimizer)
from experiments.check.results import Refused
from experiments.compare import TOLERANCE
from experiments.shadow import comparison, error_ratio_verdict
from experiments.threads import threads
from experiments.training import Data, Recipe, Shadow, fit

DEFAULT_STEPS = 200
DEFAULT_BATCH = 100
DEFAULT_LR = 0.1  # plain SGD, when the learner names no optimizer
TEST_IMAGES = 1000  # evaluated at each epoch's end


class PlainSGD:
    """``params[k] -= lr * grads[k]``: the optimizer a network trains with when the learner names none."""

    def __init__(self, lr=DEFAULT_LR):
        self.lr = lr

    def update(self, params, grads):
        for k in params:
            params[k] -= self.lr * grads[k]


class UserTwin:
    """The learner's network and optimizer behind ``fit``'s twin interface (``step``, ``predict``...)."""

    impl = "yours"
    scheduler = None

    def __init__(self, net, named, optimizer, replay=None):
        self.net, self.named, self.adapter = net, named, _adapter(optimizer, None)
        self.calls, self.state, self.replay = None, None, replay

    def step(self, x, t) -> float:
        if self.replay is not None:  # the shadow: np.random as the float32 network had it, the same masks
            np.random.set_state(self.replay.state)
        before = np.random.get_state()
        with _Recorder(self.named) as rec:
            grads = self.net.gradient(x, t)
        self.calls, self.state = rec.calls, before
        after = np.random.get_state()
        np.random.set_state(before)  # the loss with the masks gradient() drew
        loss = train_loss(self.net, x, t)
        np.random.set_state(after)
        params = network_params(self.net)
        new = self.adapter.step(dict(params), {k: np.asarray(g) for k, g in grads.items()})
        for k in params:  # an optimizer returning new arrays: written back where the layers hold them
            if new[k] is not params[k]:
                np.copyto(params[k], new[k])
        return loss

    def train(self, mode=True):
        pass

    def predict(self, x):
        if callable(getattr(self.net, "predict", None)):
            return np.asarray(self.net.predict(x))
        for _, layer in self.named[:-1]:  # no predict: the layers in eval mode, as the book's predict runs them
            x = call_forward(layer, [x], False)
        return np.asarray(x)

    def loss_of(self, out, t) -> float:
        return _cross_entropy(out, t)

    def state_dict(self) -> dict:
        return {k: np.array(v) for k, v in network_params(self.net).items()}


class TorchTwin:
    """The torch twin behind ``fit``'s interface: ``networks.Twin`` and torch.optim (or ``TorchRule``)."""

    impl = "torch"
    scheduler = None

    def __init__(self, twin: Twin, leader: UserTwin, family, hyper, variant):
        self.twin, self.leader = twin, leader
        if variant:
            self.rule = TorchRule(family, hyper, variant, default_eps(family, hyper))
            self.opt = None
        else:
            self.rule, self.opt = None, torch_optimizer(family, hyper, list(twin.params.values()))

    def step(self, x, t) -> float:
        loss = self.twin.loss(self.twin.forward(x, True, self.leader.calls), t)
        for p in self.twin.params.values():
            p.grad = None
        loss.backward()
        if self.rule is not None:
            self.rule.step({k: p.data for k, p in self.twin.params.items()},
                           {k: p.grad for k, p in self.twin.params.items()})
        else:
            self.opt.step()
        return loss.item()

    def train(self, mode=True):
        pass

    def predict(self, x):
        with torch.no_grad():
            return self.twin.forward(x, False).numpy()

    def loss_of(self, out, t) -> float:
        return _cross_entropy(out, t)

    def state_dict(self) -> dict:
        return self.twin.state_dict()


def _cross_entropy(out, t) -> float:
    z = np.asarray(out, np.float64)
    z = z - z.max(axis=1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    t = np.asarray(t)
    return float(-np.mean(logp[np.arange(len(t)), t]))


def training_data(kind: str, n_train: int, seq, seed: int = 0) -> Data:
    """MNIST (``kind="mnist"``, the cached set) or ``synthetic_mnist``, shaped for the network's first layer."""
    from experiments.data import load_mnist, synthetic_mnist

    if kind == "mnist":
        (x, t), (xt, tt) = load_mnist(flatten=False, dtype=np.float64)
        x, t = x[:n_train], t[:n_train]
        xt, tt = xt[:TEST_IMAGES], tt[:TEST_IMAGES]
    elif kind == "synthetic":
        x, t = synthetic_mnist(n_train, seed=seed, flatten=False, dtype=np.float64)
        xt, tt = synthetic_mnist(TEST_IMAGES, seed=seed + 1, flatten=False, dtype=np.float64)
    else:
        raise ValueError(f"data must be 'mnist' or 'synthetic', got {kind!r}")
    return Data(_shaped(x, seq), t, _shaped(xt, seq), tt)


def _shaped(x, seq):
    first = next((layer for _, layer in seq if isinstance(getattr(layer, "W", None), np.ndarray)), None)
    if first is None:
        raise Refused("the network's first layer has no W to take the input's shape from")
    W = first.W
    if W.ndim == 4:
        return np.repeat(x, W.shape[1], axis=1) if W.shape[1] > 1 else x
    if W.shape[0] != 784:
        raise Refused(f"the network's first layer takes {W.shape[0]} inputs, not an MNIST image's 784: "
                      "--train needs an MNIST-shaped network")
    return x.reshape(len(x), 784)


def _cast(net, dtype):
    """The network's params (and the layers holding them) in ``dtype``, replaced where they are held."""
    params = network_params(net)
    for k, v in list(params.items()):
        new = v.astype(dtype)
        for holder in [net] + [layer for layer in _all_layers(net)]:
            for a, value in list(vars(holder).items()):
                if value is v:
                    setattr(holder, a, new)
        if params is getattr(net, "params", None):
            params[k] = new


def _all_layers(net):
    seq, (_, loss_layer) = network_layers(net)
    return [layer for _, layer in seq] + [loss_layer]


def train_network(net, *, steps: int = DEFAULT_STEPS, batch: int = DEFAULT_BATCH, optimizer=None,
                  data: str = "mnist", dtype=np.float64, seed: int = 0, name: str | None = None,
                  progress: bool = False) -> dict:
    """Train ``net`` and its torch twin in lockstep; a summary dict (``report_markdown`` writes it out).

    Args:
        net: a book-style network (see ``check_network``), freshly built; its params are trained in place.
        steps, batch: training steps and batch size.
        optimizer: the learner's optimizer (``update(params, grads)`` object or CS231n function); default
            ``PlainSGD(lr=0.1)``.
        data: "mnist" (the cached MNIST; downloaded once if absent) or "synthetic" (generated, no files).
        dtype: float64 (parity asserted at 1e-9) or float32 (reported, with the float64 shadow's verdict).
        seed: batch order and np.random (the network's dropout masks).

    Returns:
        dict with ``verdict``, ``ok``, ``first_above``, ``located``, ``history``, ``tolerance`` ... (JSON-able
        except ``result``, the ``TrainResult``).
    """
    name = name or type(net).__name__
    dtype = np.dtype(dtype)
    optimizer = PlainSGD() if optimizer is None else optimizer
    seq, (loss_name, loss_layer) = network_layers(net)
    d = training_data(data, steps * batch, seq, seed).astype(np.float64)
    saved = np.random.get_state()
    np.random.seed(int(np.random.default_rng((seed, 23)).integers(2**32)))
    try:
        shadow_net = copy.deepcopy(net) if dtype == np.float32 else None
        if dtype == np.float32:
            _cast(net, np.float32)
        pre = check_network(copy.deepcopy(net), d.x_train[:batch].astype(dtype), d.t_train[:batch],
                            numerical=False, seed=seed, name=name)
        if pre.refused:
            raise Refused(pre.refused)
        opt_check = check_optimizer(copy.deepcopy(optimizer), dtype=dtype, family=_family(optimizer))
        if opt_check.refused:
            raise Refused(f"the optimizer: {opt_check.refused}")
        variants, unapplied = design_variants(pre)
        opt_variant = opt_check.variant if opt_check.diagnoses and all(
            x.kind != "bug" for x in opt_check.diagnoses) else {}
        user = UserTwin(net, seq + [(loss_name, loss_layer)], optimizer)
        owner = _param_owners(network_params(net, seq), seq)
        twins = [(n, layer, twin_module(n, layer, dtype)) for n, layer in seq]
        twin = Twin(net, twins, twin_module(loss_name, loss_layer, dtype), owner, dtype, variants)
        torch_twin = TorchTwin(twin, user, opt_check.family, opt_check.hyper, opt_variant)
        recipe = Recipe(scratch_model=None, torch_model=None, batch_size=batch, iterations=steps,
                        param_every=max(1, steps // 20), eval_train=False, label=name)
        shadow = None
        if shadow_net is not None:
            s_seq, (s_loss_name, s_loss) = network_layers(shadow_net)
            shadow = Shadow(UserTwin(shadow_net, s_seq + [(s_loss_name, s_loss)], copy.deepcopy(optimizer),
                                     replay=user), d, steps)
        order = np.random.default_rng((seed, 1)).permutation
        with threads(1):  # as the runner trains: two thread pools taking turns spin against each other
            result = fit([user, torch_twin], d.astype(dtype), recipe, [order], lambda *a: None, seed=seed,
                         progress=progress, shadow=shadow)
    finally:
        np.random.set_state(saved)
    return _summary(name, result, pre, opt_check, variants, unapplied, opt_variant, dtype, steps, batch, data)


def _family(optimizer):
    from experiments.check.optimizers import family_of, _name
    return family_of(_name(optimizer)) or ("sgd" if isinstance(optimizer, PlainSGD) else None)


def _summary(name, result, pre, opt_check, variants, unapplied, opt_variant, dtype, steps, batch, data):
    tol = TOLERANCE["lockstep"]
    diffs = np.asarray(result.loss_rel_diff, dtype=np.float64)
    first = result.first_step_above(tol)
    located = pre.diagnosis if pre.located else ""
    if not located and not opt_check.ok and not opt_variant:
        located = f"the optimizer {opt_check.layer}: {opt_check.diagnosis}"
    applied = []
    if variants.get("log_eps") is not None:
        applied.append(f"eps = {variants['log_eps']:g} inside the loss's log")
    if variants.get("book_dropout"):
        applied.append("non-inverted dropout (the book's)")
    for layer, eps in variants.get("bn_eps", {}).items():
        applied.append(f"{layer}: batch-norm eps = {eps:g}")
    if opt_variant:
        applied.append(f"the optimizer's by-design form ({opt_check.diagnosis.split(': torch with')[0]})")
    summary = dict(network=name, dtype=str(dtype), steps=steps, batch=batch, data=data,
                   optimizer=("plain SGD, lr = {:g} (no --optimizer named)".format(opt_check.hyper.get("lr", DEFAULT_LR))
                              if opt_check.layer == "PlainSGD" else f"{opt_check.layer}, against {opt_check.against}"),
                   network_check=pre.verdict, optimizer_check=opt_check.verdict, applied=applied,
                   unapplied=unapplied, tolerance=tol, max_loss_rel_diff=float(np.max(diffs)) if diffs.size else None,
                   first_above=first, located=located or "",
                   final_loss={k: float(v["loss"][-1]) for k, v in result.history.items()},
                   max_param_diff=result.max_param_diff)
    if dtype == np.float64:
        ok = first is None and not (pre.located or located)
        if first is None:
            verdict = (f"lockstep parity holds: the loss difference stays within {tol:g} (relative) over all "
                       f"{steps} steps (largest {summary['max_loss_rel_diff']:.2g})")
        else:
            verdict = (f"the runs part at step {first}: loss difference {diffs[first - 1]:.2g} > {tol:g}; "
                       + (f"located: {located}" if located else "the network and the optimizer each match torch at "
                          "the start; cause not located"))
    else:
        err = result.shadow["err"]
        v = error_ratio_verdict(err["yours"], err["torch"])
        summary["shadow"] = dict({k: v[k] for k in ("median_ratio", "p90_ratio", "verdict", "steps")},
                                 yours_median_error=v["scratch_median_error"], torch_median_error=v["torch_median_error"])
        ok = not (pre.located or located)
        verdict = (f"float32 (parity reported, not asserted: largest loss difference {summary['max_loss_rel_diff']:.2g}"
                   f"{'' if first is None else f', above {tol:g} from step {first}'}); against the float64 shadow "
                   f"your float32 run is {comparison(v['verdict'])} torch's (error ratio yours / torch: median "
                   f"{v['median_ratio']:.3g} over {v['steps']} steps)")
        if located:
            verdict += f"; located: {located}"
    summary.update(verdict=verdict, ok=bool(ok))
    summary["history"] = {k: [float(x) for x in h["loss"]] for k, h in result.history.items()}
    summary["loss_rel_diff"] = [float(x) for x in diffs]
    return summary


def write_report(summary: dict, out) -> Path:
    """report.md, losses.png and summary.json in ``out``, written whole or not at all (``atomic_dir``)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from experiments.writing import atomic_dir, environment_markdown

    out = Path(out)
    with atomic_dir(out) as tmp:
        steps = np.arange(1, summary["steps"] + 1)
        fig, (a, b) = plt.subplots(1, 2, figsize=(10, 3.6))
        for impl, label in (("yours", "your network"), ("torch", "torch twin")):
            a.plot(steps, summary["history"][impl], label=label, lw=1.2 if impl == "yours" else 0.8,
                   ls="-" if impl == "yours" else "--")
        a.set(xlabel="step", ylabel="training loss", title=summary["network"])
        a.legend()
        diffs = np.maximum(np.asarray(summary["loss_rel_diff"]), 1e-18)
        b.semilogy(steps, diffs, lw=0.8, label="loss difference (relative)")
        b.axhline(summary["tolerance"], color="r", lw=0.8, ls=":", label=f"tolerance {summary['tolerance']:g}")
        b.set(xlabel="step", title="your network vs torch twin")
        b.legend()
        fig.tight_layout()
        fig.savefig(tmp / "losses.png", dpi=110)
        plt.close(fig)
        lines = [f"# Lockstep training: {summary['network']}", "", f"**Verdict:** {summary['verdict']}", "",
                 "## What was run", "",
                 f"{summary['steps']} steps, batch {summary['batch']}, {summary['data']} data, {summary['dtype']}; "
                 f"optimizer {summary['optimizer']}.", "",
                 f"- network check at step 1: {summary['network_check']}",
                 f"- optimizer check: {summary['optimizer_check']}"]
        if summary["applied"]:
            lines.append("- applied to the torch twin (by design, named by the checks): "
                         + "; ".join(summary["applied"]))
        if summary["unapplied"]:
            lines.append("- by-design differences the twin cannot apply: " + "; ".join(summary["unapplied"]))
        lines += ["", "## Parity", "", "| figure | value |", "|---|---|",
                  f"| largest loss difference (relative, lockstep measure) | {summary['max_loss_rel_diff']:.3g} |",
                  f"| tolerance (docs/design.md, float64) | {summary['tolerance']:g} |",
                  f"| first step above it | {summary['first_above'] or '-'} |",
                  f"| largest parameter difference (scaled) | {summary['max_param_diff']:.3g} |",
                  f"| final training loss: yours / torch | {summary['final_loss']['yours']:.6g} / "
                  f"{summary['final_loss']['torch']:.6g} |"]
        if "shadow" in summary:
            s = summary["shadow"]
            lines.append(f"| float64 shadow: error ratio yours / torch, median (p90) | {s['median_ratio']:.3g} "
                         f"({s['p90_ratio']:.3g}): {s['verdict']} |")
        if summary["located"]:
            lines += ["", f"**Located:** {summary['located']}"]
        lines += ["", "![losses](losses.png)", "", "## Environment", "", environment_markdown()]
        (tmp / "report.md").write_text("\n".join(lines) + "\n")
        kept = {k: v for k, v in summary.items() if k not in ("history", "loss_rel_diff")}
        (tmp / "summary.json").write_text(json.dumps(kept, indent=1) + "\n")
    return out
