"""Check a whole network against its torch twin: ``check_network``, ``assert_network_matches_torch``.

A network, the book's way (chapter 5's ``TwoLayerNet``, ``MultiLayerNet(Extend)``, chapter 7's
``SimpleConvNet``, chapter 8's ``DeepConvNet``, or the same shape by another author), has
``params`` (a dict of arrays), ``loss(x, t)``, ``gradient(x, t)`` returning a dict of gradients keyed as
``params``, a ``layers`` sequence (OrderedDict or list) of layer objects with ``forward``/``backward``, and
a loss layer in an attribute of its own (``last_layer``, ``lastLayer``...).

What the check does, in order:

1. The twin: each layer of ``layers`` is mapped as the layer checker maps its class
   (``recognize.case_for``: Affine -> ``torch.nn.Linear`` taking the 4-D input flattened, Convolution ->
   ``Conv2d`` with the layer's stride and pad, Pooling -> ``MaxPool2d``, Relu, Sigmoid, Dropout (with the
   network's own masks), BatchNormalization -> ``BatchNorm1d``, SoftmaxWithLoss -> ``CrossEntropyLoss``),
   with the network's weights copied in (``params`` entries matched to layer attributes by identity).
   A layer with no known counterpart makes the check refused, never guessed.
2. Inputs: MNIST-shaped images with labels (``synthetic_mnist``: generated digits, exact zeros in the
   background; reshaped to the first layer's input), a batch of ``batch`` from the checker's stream.
   ``np.random`` is seeded from that stream before the network's calls (the book's dropout draws from it).
3. The network's ``gradient(x, t)`` and ``loss(x, t)`` run first, with every layer's forward and backward
   recorded; then the twin, on the same input, weights and dropout masks. The loss and each entry of the
   gradient dict are compared at the layer tolerance of docs/design.md.
4. On a difference, the fault is located: every layer is checked alone (``check_layer``) on the very
   input and upstream gradient it saw inside the network; walking back from the loss, the first layer that
   departs from torch is named with its own diagnosis. A difference no layer explains (the gradient dict
   built from the wrong layer, a wrong weight-decay term) is said so.
5. Beside it, chapter 5's check: the network's own ``numerical_gradient(x, t)`` when it has one and it is
   cheap enough, else central differences (h = 1e-4, the book's) at a sample of elements. It is shown, never
   a verdict: torch is the judge.
"""
import copy
import dataclasses
import inspect
import textwrap
from collections import OrderedDict
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from experiments.check.adapters import PARAM_NAMES, array_params, mode_arg
from experiments.check.inputs import checker_rng
from experiments.check.layer import check_layer
from experiments.check.recognize import case_for
from experiments.check.results import CheckResult, Refused, TensorRecord
from experiments.compare import compare_arrays, layer_tolerance
from torch_ref.nn import torch_dtype

# Constructor arguments the book leaves without default, given small MNIST-shaped values.
GUESSES = OrderedDict(input_size=784, hidden_size=10, hidden_size_list=[10, 10], output_size=10,
                      input_dim=(1, 28, 28))
# The attributes a loss layer is kept in, looked for first (any other layer-like attribute is found too).
LOSS_ATTRS = ("last_layer", "lastLayer", "loss_layer", "lossLayer", "criterion")
DROPOUT_RATES = ("dropout_ratio", "ratio", "p", "rate", "drop_rate")
DEFAULT_BATCH = 8
GRADIENT_FLOOR = 1e-3  # of the network's largest gradient: the smallest scale a gradient is measured against
WIDTH = 112  # long lines of the result's table are wrapped to this width
# The network's own numerical_gradient runs when it takes at most this many loss evaluations, else a sample.
NUMERICAL_BUDGET = 20_000
NUMERICAL_SAMPLE = 12  # elements per parameter when sampled
NUMERICAL_H = 1e-4  # the book's step
# Agreement of chapter 5's check: with h = 1e-4 a central difference is good to about h^2 = 1e-8 on smooth
# parts; the book's eps in the loss's log (1e-7 relative) and kinks stepped over cost more, so 1e-4 scaled.
NUMERICAL_AGREE = 1e-4


class NeedsArguments(Exception):
    """The network's constructor has arguments without default that cannot be guessed."""

    def __init__(self, cls, names, order=(), known=None):
        self.names = names
        known = known or {}
        example = ", ".join(f"{n}={known[n]!r}" if n in known else f"{n}=..." for n in (order or names)
                            if n in known or n in names)
        super().__init__(f"{cls.__name__} needs {', '.join(names)} (no default, not one of the book's names "
                         f"{', '.join(GUESSES)}); pass --args {' '.join(f'{n}=VALUE' for n in names)}, or from "
                         f"Python: check_network({cls.__name__}({example}))")


def is_network_class(cls) -> bool:
    """A class with ``gradient`` and ``loss`` methods (the book's networks), not a layer."""
    return inspect.isclass(cls) and all(callable(getattr(cls, a, None)) for a in ("gradient", "loss")) \
        and not callable(getattr(cls, "backward", None))


def build_network(cls, args: dict | None = None, seed: int = 0):
    """``cls(**kwargs)``: the given ``args``, the book's names guessed, defaults for the rest; np.random seeded."""
    args = dict(args or {})
    kwargs, missing = {}, []
    for p in list(inspect.signature(cls.__init__).parameters.values())[1:]:
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        if p.name in args:
            kwargs[p.name] = args.pop(p.name)
        elif p.default is p.empty:
            if p.name in GUESSES:
                kwargs[p.name] = copy.deepcopy(GUESSES[p.name])
            else:
                missing.append(p.name)
    if missing:
        order = [p for p in list(inspect.signature(cls.__init__).parameters)[1:]]
        raise NeedsArguments(cls, missing, order, kwargs)
    if args:
        raise ValueError(f"{cls.__name__} takes no argument {', '.join(args)}")
    saved = np.random.get_state()
    np.random.seed(int(checker_rng(seed).integers(2**32)))
    try:
        return cls(**kwargs), kwargs
    finally:
        np.random.set_state(saved)


# -- the network's parts ----------------------------------------------------------------------------------
def _is_layer(obj) -> bool:
    return callable(getattr(obj, "forward", None)) and callable(getattr(obj, "backward", None))


def network_layers(net):
    """([(name, layer)...] in forward order, (name, loss layer)) or Refused naming what is missing."""
    layers = getattr(net, "layers", None)
    if isinstance(layers, dict):
        seq = list(layers.items())
    elif isinstance(layers, (list, tuple)):
        seq = [(f"layers[{i}]", layer) for i, layer in enumerate(layers)]
    else:
        raise Refused(f"{type(net).__name__} has no layers sequence (an OrderedDict or list of layer objects in "
                      "self.layers): the twin cannot be built from it")
    bad = [n for n, layer in seq if not _is_layer(layer)]
    if bad:
        raise Refused(f"{', '.join(bad)} in {type(net).__name__}.layers has no forward/backward")
    inside = {id(layer) for _, layer in seq}
    found = [(a, getattr(net, a)) for a in LOSS_ATTRS if _is_layer(getattr(net, a, None))]
    found += [(a, v) for a, v in vars(net).items() if _is_layer(v) and id(v) not in inside
              and a not in LOSS_ATTRS]
    if not found:
        raise Refused(f"{type(net).__name__} keeps no loss layer outside its layers (looked for "
                      f"{', '.join(LOSS_ATTRS)})")
    return seq, found[0]


class _FlatLinear(nn.Linear):
    """torch.nn.Linear on the input flattened to (N, -1), as the book's Affine takes a 4-D input."""

    def forward(self, x):
        return super().forward(x.flatten(1))


class _FlatBatchNorm1d(nn.BatchNorm1d):
    """torch.nn.BatchNorm1d on the input flattened to (N, -1), as the book's BatchNormalization does."""

    def forward(self, x):
        return super().forward(x.flatten(1)).reshape(x.shape)


def _rate(layer):
    for a in DROPOUT_RATES:
        v = getattr(layer, a, None)
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            return float(v)
    raise Refused(f"{type(layer).__name__}: no dropout rate attribute ({', '.join(DROPOUT_RATES)})")


def twin_module(name, layer, dtype):
    """The torch module a layer of the network is compared with, its weights copied from the layer."""
    case = case_for(type(layer).__name__, type(layer))
    against = case.against if case is not None else None
    td = torch_dtype(dtype)
    if against == "torch.nn.Linear":
        W = np.asarray(layer.W)
        m = _FlatLinear(W.shape[0], W.shape[1]).to(td)
        _set(m, weight=W.T, bias=layer.b)
    elif against == "torch.nn.Conv2d":
        W = np.asarray(layer.W)
        m = nn.Conv2d(W.shape[1], W.shape[0], W.shape[2:], stride=layer.stride, padding=layer.pad).to(td)
        _set(m, weight=W, bias=layer.b)
    elif against == "torch.nn.MaxPool2d":
        m = nn.MaxPool2d((layer.pool_h, layer.pool_w), stride=layer.stride, padding=getattr(layer, "pad", 0))
    elif against in ("torch.nn.ReLU", "torch.nn.Sigmoid"):
        m = getattr(nn, against.rsplit(".", 1)[1])()
    elif against == "torch.nn.Dropout":
        m = nn.Dropout(_rate(layer))
    elif against == "torch.nn.BatchNorm1d":
        gamma = np.asarray(layer.gamma)
        mom = getattr(layer, "momentum", 0.9)
        m = _FlatBatchNorm1d(gamma.size, momentum=1 - mom).to(td)
        _set(m, weight=gamma, bias=layer.beta)
    elif against == "torch.nn.CrossEntropyLoss":
        m = nn.CrossEntropyLoss()
    else:
        raise Refused(f"layer {name} ({type(layer).__name__}) has no torch counterpart known to the layer "
                      "checker, so the network's twin cannot be built")
    return m


def _set(module, **values):
    with torch.no_grad():
        for k, v in values.items():
            getattr(module, k).copy_(torch.from_numpy(np.ascontiguousarray(v)))


@dataclass
class _Call:
    inputs: list = None
    kwargs: dict = None
    out: object = None
    dout: object = None
    dx: object = None
    mask: object = None


class _Recorder:
    """Wraps each layer's forward and backward (on the instance) to record what it saw and returned."""

    def __init__(self, named):
        self.named, self.calls = named, {n: _Call() for n, _ in named}

    def __enter__(self):
        for n, layer in self.named:
            call = self.calls[n]
            fwd, bwd = layer.forward, layer.backward

            def forward(*a, _f=fwd, _c=call, _l=layer, **kw):
                _c.inputs, _c.kwargs = [np.array(v, copy=True) if isinstance(v, np.ndarray) else v for v in a], kw
                out = _f(*a, **kw)
                _c.out = np.array(out, copy=True)
                m = getattr(_l, "mask", None)
                _c.mask = np.array(m, copy=True) if isinstance(m, np.ndarray) else None
                return out

            def backward(dout, *a, _b=bwd, _c=call, **kw):
                _c.dout = np.array(dout, copy=True)
                dx = _b(dout, *a, **kw)
                _c.dx = np.array(dx, copy=True) if dx is not None else None
                return dx

            layer.forward, layer.backward = forward, backward
        return self

    def __exit__(self, *exc):
        for _, layer in self.named:
            del layer.forward, layer.backward


# -- the result -------------------------------------------------------------------------------------------
@dataclass
class NetworkResult(CheckResult):
    """``CheckResult`` of a network: records loss and every gradient; ``layers`` the per-layer checks."""

    located: str = ""
    layer_results: list = field(default_factory=list)
    numerical: str = ""
    not_checked: bool = False  # the network could not even be built (constructor arguments missing)

    def as_dict(self) -> dict:
        d = super().as_dict()
        d.update(located=self.located, numerical=self.numerical,
                 layers=[dict(layer=r.layer, against=r.against, ok=r.ok, verdict=r.verdict)
                         for r in self.layer_results])
        return d

    def __str__(self) -> str:
        lines = [super().__str__()]
        shown = [r for r in self.layer_results if _departs(r)]
        if shown:
            lines.append("  each layer alone, on the input and upstream gradient it saw in the network:")
            for r in shown:
                head, *table = str(r).splitlines()
                lines += textwrap.wrap(head, WIDTH, initial_indent="    ", subsequent_indent="      ")
                lines += ["    " + s for s in table]
        if self.numerical:
            lines += textwrap.wrap(f"numerical gradient (chapter 5's check, shown beside, not judged): "
                                   f"{self.numerical}", WIDTH, initial_indent="  ", subsequent_indent="    ")
        return "\n".join(lines)


# -- the check --------------------------------------------------------------------------------------------
def mnist_batch(net_layers, batch: int, seed: int, dtype):
    """MNIST-shaped images and labels for the network's first layer and number of classes."""
    from experiments.data import synthetic_mnist

    first = next((layer for _, layer in net_layers if array_params(layer)), None)
    last = next((layer for _, layer in reversed(net_layers) if array_params(layer)), None)
    if first is None:
        raise Refused("the network has no layer with weights to take the input's shape from; pass x and t")
    W = np.asarray(first.W if hasattr(first, "W") else getattr(first, array_params(first)[0]))
    classes = int(np.shape(last.W)[1]) if hasattr(last, "W") and np.ndim(last.W) == 2 else 10
    x, labels = synthetic_mnist(batch, seed=int(checker_rng(seed).integers(2**31)), flatten=False,
                                dtype=np.float64)
    if W.ndim == 4:
        c = W.shape[1]
        x = np.repeat(x, c, axis=1) if c > 1 else x
    elif W.shape[0] != 784:
        rng = checker_rng(seed)
        x = rng.random((batch, W.shape[0]))
        x[x < 0.5] = 0.0  # MNIST's background: exact zeros
    else:
        x = x.reshape(batch, 784)
    return x.astype(dtype), labels % classes


def check_network(net, x=None, t=None, *, batch: int = DEFAULT_BATCH, seed: int = 0, numerical: bool = True,
                  name: str | None = None) -> NetworkResult:
    """Compare a network's ``loss`` and ``gradient`` with its torch twin and locate the layer at fault.

    Args:
        net: the book's network shape: ``params`` (dict of arrays), ``loss(x, t)``, ``gradient(x, t)``
            returning a dict keyed as ``params``, ``layers`` (OrderedDict or list), a loss layer attribute.
        x, t: input and labels (default: ``batch`` MNIST-shaped generated images and their labels).
        batch: batch size of the generated input.
        seed: seed of the checker's stream (input, np.random before the network's calls).
        numerical: also run chapter 5's numerical-gradient check, shown beside (never a verdict).
        name: the network's name in the result (default: its class name).

    Returns:
        ``NetworkResult`` (a ``CheckResult``): records ``loss`` and one per gradient key; ``located``, the
        layer found at fault; ``layer_results``, the layer checks; ``numerical``, the chapter-5 comparison.
    """
    result = NetworkResult(name or type(net).__name__, "torch twin")
    try:
        _check_network(result, net, x, t, batch, seed, numerical)
    except Refused as e:
        result.refused = str(e)
    return result


def assert_network_matches_torch(net, *args, **kwargs) -> NetworkResult:
    """``check_network`` for pytest: raises AssertionError carrying the table unless the network matches torch."""
    result = check_network(net, *args, **kwargs)
    if not result.ok:
        raise AssertionError("\n" + str(result))
    return result


def train_loss(net, x, t) -> float:
    """The loss in training mode, the one ``gradient`` differentiates: ``loss(x, t, train_flg=True)`` where
    ``loss`` takes a mode (the book's MultiLayerNetExtend: False by default), else ``loss(x, t)``."""
    flag = mode_arg(net.loss)
    return float(net.loss(x, t, **{flag: True}) if flag else net.loss(x, t))


def network_params(net, seq=None) -> dict:
    """The network's parameters by name: its ``params`` dict, else its array attributes that are its layers'
    weights (``self.W1 = ...; Affine(self.W1, self.b1)``), keyed by attribute name as ``gradient`` keys them."""
    params = getattr(net, "params", None)
    if isinstance(params, dict) and params:
        return params
    seq = network_layers(net)[0] if seq is None else seq
    held = {id(getattr(layer, a)) for _, layer in seq for a in array_params(layer)}
    found = {a: v for a, v in vars(net).items() if isinstance(v, np.ndarray) and id(v) in held}
    if not found:
        raise Refused(f"{type(net).__name__} has no params dict, nor array attributes that its layers hold as "
                      "weights")
    return found


def _check_network(result, net, x, t, batch, seed, numerical):
    seq, (loss_name, loss_layer) = network_layers(net)
    params = network_params(net, seq)
    dtype = np.asarray(next(iter(params.values()))).dtype
    if dtype not in (np.float32, np.float64):
        raise Refused(f"params are {dtype}, not float32 or float64")
    if x is None:
        x, t = mnist_batch(seq, batch, seed, dtype)
    x, t = np.asarray(x), np.asarray(t)
    result.dtype, result.inputs = str(dtype), f"x {x.shape}, t {t.shape}"
    tol = layer_tolerance(dtype)
    twins = [(n, layer, twin_module(n, layer, dtype)) for n, layer in seq]
    loss_twin = twin_module(loss_name, loss_layer, dtype)
    result.against = "torch twin: " + " - ".join(type(m).__name__.lstrip("_").replace("Flat", "")
                                                  for _, _, m in twins) + f" + {type(loss_twin).__name__}"
    owner = _param_owners(params, seq)
    np_state = np.random.get_state()
    np.random.seed(int(checker_rng(seed).integers(2**32)))
    replay = np.random.get_state()
    named = seq + [(loss_name, loss_layer)]
    try:
        with _Recorder(named) as rec:
            try:
                grads = net.gradient(x.copy(), t.copy())
            except Exception as e:  # noqa: BLE001 - the user's code raised: that is the finding
                result.error = f"gradient(x, t) raised {type(e).__name__}: {e}"
                return
        np.random.set_state(replay)  # the same dropout masks as gradient's forward
        try:
            loss = train_loss(net, x.copy(), t.copy())
        except Exception as e:  # noqa: BLE001
            result.error = f"loss(x, t) raised {type(e).__name__}: {e}"
            return
    finally:
        np.random.set_state(np_state)
    if not isinstance(grads, dict):
        raise Refused(f"gradient(x, t) returned {type(grads).__name__}, not a dict keyed as params")
    calls = rec.calls
    twin = Twin(net, twins, loss_twin, owner, dtype)
    loss_t = twin.loss(twin.forward(x, True, calls), t)
    ref_grads = twin.backward(loss_t)
    ref_loss = float(loss_t.detach())
    e = compare_arrays("loss", np.float64(loss), np.float64(ref_loss))
    result.records.append(TensorRecord("loss", "loss", (), str(dtype), e.max_abs, e.scaled, (), tol,
                                       "ok" if e.scaled <= tol else "FAIL"))
    # A gradient that is 0 in exact arithmetic (the bias of a layer followed by batch norm, whose dx sums to 0
    # over the batch) is round-off on both sides: scaled by itself it would fail. It passes within
    # tol x GRADIENT_FLOOR x the network's largest gradient, absolute (also given to each layer's check).
    atol = tol * GRADIENT_FLOOR * max((float(np.max(np.abs(v), initial=0.0)) for v in ref_grads.values()),
                                      default=0.0)
    for key in params:
        if key not in grads:
            result.unexplained.append(f"gradient() returned no {key!r} (params has it)")
            continue
        if key not in owner:
            result.notes.append(f"params[{key!r}] is not an attribute of any layer: its gradient is not compared")
            continue
        lname, attr = owner[key]
        against = f"{lname}.{_torch_param(attr)}.grad" + (".T" if _transposed(seq, lname, attr) else "")
        g, ref = np.asarray(grads[key]), ref_grads[key]
        if g.shape != ref.shape:
            result.records.append(TensorRecord(key, against, g.shape, str(g.dtype), float("inf"), float("inf"),
                                               (), tol, "shape"))
            continue
        e = compare_arrays(key, g, ref)
        result.records.append(TensorRecord(key, against, e.shape, e.dtype, e.max_abs, e.scaled, e.where, tol,
                                           "ok" if e.scaled <= tol or e.max_abs <= atol else "FAIL"))
    if numerical:
        grads_ok = all(r.ok for r in result.records if r.name != "loss")
        result.numerical = _numerical(net, x, t, grads, params, seq, grads_ok)
    if all(r.ok for r in result.records) and not result.unexplained:
        return
    _locate(result, named, twins + [(loss_name, loss_layer, loss_twin)], calls, grads, params, owner, seed, atol)
    if result.diagnoses and not result.unexplained and not result.located:
        _confirm_variants(result, net, seq, loss_name, loss_layer, owner, dtype, calls, x, t, loss, grads, tol, atol)


def _confirm_variants(result, net, seq, loss_name, loss_layer, owner, dtype, calls, x, t, loss, grads, tol, atol):
    """"differs by design" only if the twin with the named variants applied reproduces the loss and every
    gradient; otherwise the variants do not explain the network and the verdict is a mismatch."""
    variants, left = design_variants(result)
    if left:
        result.unexplained.append("by-design variants the twin cannot apply (" + "; ".join(left) + "): the network "
                                  "as a whole is not confirmed")
        return
    twins = [(n, layer, twin_module(n, layer, dtype)) for n, layer in seq]
    twin = Twin(net, twins, twin_module(loss_name, loss_layer, dtype), owner, dtype, variants)
    loss_t = twin.loss(twin.forward(x, True, calls), t)
    ref = twin.backward(loss_t)
    apart = [] if compare_arrays("loss", np.float64(loss), np.float64(float(loss_t.detach()))).scaled <= tol \
        else ["loss"]
    for k, g in ref.items():
        if k in grads and np.shape(grads[k]) == g.shape:
            e = compare_arrays(k, grads[k], g)
            if not (e.scaled <= tol or e.max_abs <= atol):
                apart.append(k)
    if apart:
        result.unexplained.append(f"the twin with these variants applied still differs in {', '.join(apart)}: "
                                  "they do not explain the network; cause not located")
    else:
        result.notes.append("the torch twin with these variants applied reproduces the loss and every gradient")


def _param_owners(params, seq) -> dict:
    """{params key: (layer name, attribute)}: the layer attribute holding that very array."""
    owner = {}
    for key, value in params.items():
        for lname, layer in seq:
            for attr in array_params(layer):
                a = getattr(layer, attr)
                if a is value or (isinstance(a, np.ndarray) and isinstance(value, np.ndarray) and a.shape == value.shape
                                  and np.shares_memory(a, value)):
                    owner.setdefault(key, (lname, attr))
    return owner


def _torch_param(attr) -> str:
    return next(t for t, names in PARAM_NAMES.items() if attr in names)


def _transposed(seq, lname, attr) -> bool:
    layer = dict(seq)[lname]
    return _torch_param(attr) == "weight" and np.ndim(getattr(layer, attr)) == 2 and \
        case_for(type(layer).__name__, type(layer)).against == "torch.nn.Linear"


class Twin:
    """The torch twin of a book-style network: its layers' modules, loss and weight decay, the network's masks.

    ``variants`` applies the book's by-design differences found by ``check_network`` (``design_variants``):
    ``log_eps`` (eps inside the loss's log), ``book_dropout`` (no 1/(1-p) in training, x(1-p) at eval) and
    ``bn_eps`` ({layer: eps}); the lockstep trainer uses them, the network check compares with plain torch.
    """

    def __init__(self, net, twins, loss_twin, owner, dtype, variants=None):
        self.twins, self.loss_twin, self.owner, self.dtype = twins, loss_twin, owner, dtype
        self.td = torch_dtype(dtype)
        self.variants = dict(variants or {})
        self.lam = float(getattr(net, "weight_decay_lambda", 0) or 0)
        self.modules = {n: m for n, _, m in twins}
        for n, eps in self.variants.get("bn_eps", {}).items():
            self.modules[n].eps = eps
        self.params = OrderedDict((k, getattr(self.modules[lname], _torch_param(attr)))
                                  for k, (lname, attr) in owner.items())

    def forward(self, x, train: bool, calls=None):
        """Logits for ``x``; in training, each dropout keeps what the network's dropout kept (``calls``)."""
        td, book = self.td, self.variants.get("book_dropout", False)
        h = torch.as_tensor(np.asarray(x), dtype=td)
        for name, layer, module in self.twins:
            if isinstance(module, nn.Dropout):
                p = module.p
                call = calls[name] if calls else None
                if call is not None and _train_flag(call) and train:
                    keep = call.mask if call.mask is not None else (call.out != 0)
                    scale = 1.0 if book else (0.0 if p == 1 else 1 / (1 - p))
                    h = h * torch.tensor(np.asarray(keep != 0), dtype=td) * scale
                elif book:
                    h = h * (1 - p)
            elif isinstance(module, nn.modules.batchnorm._BatchNorm):
                module.train(train if call_flag(calls, name) is None else call_flag(calls, name))
                h = module(h)
            else:
                h = module(h)
        return h

    def loss(self, h, t):
        t = np.asarray(t)
        eps = self.variants.get("log_eps")
        tt = torch.as_tensor(t) if np.issubdtype(t.dtype, np.integer) else torch.as_tensor(t, dtype=self.td)
        loss = self.loss_twin(h, tt)
        if eps is not None:
            # The book's value, -log(softmax + eps) averaged over the batch, with torch's gradient: the book's
            # SoftmaxWithLoss.backward returns (y - t) / N, the gradient of the loss without eps.
            logp = torch.log(torch.softmax(h.detach(), dim=1) + eps)
            value = -(logp[torch.arange(len(t)), tt].mean() if tt.ndim == 1 else (tt * logp).sum() / len(t))
            loss = loss + (value - loss.detach())
        if self.lam:  # the book's weight decay: 0.5 * lambda * sum of the squared weights W1, W2 ... in the loss
            for k, p in self.params.items():
                if k.startswith("W"):
                    loss = loss + 0.5 * self.lam * (p ** 2).sum()
        return loss

    def backward(self, loss) -> dict:
        """Gradients of ``loss``, {params key: array in the network's layout}."""
        for p in self.params.values():
            p.grad = None
        loss.backward()
        return {k: self._layout(k, p.grad.numpy() if p.grad is not None else np.zeros(tuple(p.shape)))
                for k, p in self.params.items()}

    def _layout(self, key, value):
        lname, _ = self.owner[key]
        return value.T if isinstance(self.modules[lname], nn.Linear) and value.ndim == 2 else value

    def state_dict(self) -> dict:
        return {k: self._layout(k, p.detach().numpy()).copy() for k, p in self.params.items()}


def call_flag(calls, name):
    """The mode a layer was called in inside the network, or None when it was not recorded."""
    return _train_flag(calls[name]) if calls and calls.get(name) is not None and calls[name].inputs is not None \
        else None


# By-design variants that leave a float64 training step's loss and gradients as torch's: a loss backward that
# assumes dout = 1 (the network passes 1), running statistics (used at eval only), float64 buffers inside.
NO_STEP_EFFECT = ("loss-dout-1", "biased-running-var", "running-var-from-0", "float64-inside")


def design_variants(result) -> tuple:
    """({variant: value} for ``Twin``, [by-design texts it cannot apply]) from a network check's diagnoses."""
    import re

    variants, left = {}, []
    for d in result.diagnoses:
        if d.kind == "bug":
            continue
        layer, _, text = d.text.partition(": ")
        number = re.search(r"eps = ([0-9.eE+-]+)", text)
        if d.code == "log-eps" and number:
            variants["log_eps"] = float(number.group(1))
        elif d.code == "non-inverted-dropout":
            variants["book_dropout"] = True
        elif d.code == "bn-eps" and number:
            variants.setdefault("bn_eps", {})[layer] = float(number.group(1))
        elif d.code not in NO_STEP_EFFECT:
            left.append(d.text)
    return variants, left


def _train_flag(call) -> bool:
    """The mode a layer was called in: its train_flg / train / training argument, True when none was given."""
    kw = call.kwargs or {}
    for k in ("train_flg", "train", "training", "is_training"):
        if k in kw:
            return bool(kw[k])
    extra = (call.inputs or [])[1:]
    return bool(extra[0]) if extra and isinstance(extra[0], (bool, np.bool_, int)) else True


def _locate(result, named, twins, calls, grads, params, owner, seed, atol=0.0):
    """Each layer alone on what it saw; the first one departing from torch, walking back from the loss."""
    layers = dict(named)
    checks = []
    for name, layer, module in reversed(twins):
        call = calls[name]
        if call.inputs is None or call.dout is None:
            continue
        inputs = [v for v in call.inputs if isinstance(v, np.ndarray)]
        is_loss = isinstance(module, nn.CrossEntropyLoss)
        kw = dict(nondiff=(1,)) if is_loss else {}
        module = copy.deepcopy(module)
        if hasattr(module, "train"):
            module.train(_train_flag(call))
        copy_layer = copy.deepcopy(layers[name])
        if call.mask is not None:
            np.random.seed(0)  # a dropout copy draws its own mask; check_layer compares through it
        r = check_layer(copy_layer, module, *inputs, grad_output=np.asarray(call.dout, dtype=inputs[0].dtype),
                        seed=seed, name=name, atol=atol, **kw)
        case = case_for(type(layers[name]).__name__, type(layers[name]))
        r.against = case.against if case is not None else r.against  # torch.nn.Linear, not the flattening wrapper
        checks.append(r)
    result.layer_results = checks
    # Torch is the judge: a layer departs when one of its tensors differs from torch's, or it could not be run;
    # a dot-product failure on tensors torch agrees with is shown in the layer's table, not made a fault here.
    bad = [r for r in checks if _departs(r)]
    bugs = [r for r in bad if r.refused or r.error or r.unexplained or any(
        d.kind == "bug" and set(d.tensors) & {x.name for x in r.records if not x.ok} for d in r.diagnoses)]
    for r in bad:  # by-design variants are named (and applied by the lockstep trainer) beside a bug too
        for d in r.diagnoses:
            if d.kind != "bug":
                result.diagnoses.append(dataclasses.replace(d, text=f"{r.layer}: {d.text}"))
    if bugs:
        first = bugs[0]
        result.located = first.layer
        result.unexplained.append(f"{first.layer} ({type(layers[first.layer]).__name__}, the first layer walking "
                                  f"back from the loss that departs from torch): {first.diagnosis}")
        return
    failing = [r for r in result.records if not r.ok]
    if not failing or bad:
        return
    # Every layer matches torch on what it saw, yet the network does not: the gradient dict or the loss is at fault.
    for r in failing:
        hint = _wrong_source(r.name, grads, params, owner, calls, layers)
        result.unexplained.append(hint or f"{r.name} differs from the twin's ({r.scaled:.2g} scaled) although every "
                                  "layer matches torch on the input and upstream gradient it saw: the network "
                                  "combines them wrongly (gradient() or loss())")


def _departs(r) -> bool:
    """A layer departs from torch when a tensor differs from torch's, or it could not be checked at all."""
    return bool(r.refused or r.error or r.unexplained or any(not x.ok for x in r.records))


def _wrong_source(key, grads, params, owner, calls, layers):
    """grads[key] is another layer's gradient (or another attribute's): name which."""
    if key not in owner or key not in grads:
        return None
    g = np.asarray(grads[key])
    for lname, layer in layers.items():
        for attr in array_params(layer):
            d = getattr(layer, "d" + attr, None)
            if isinstance(d, np.ndarray) and d.shape == g.shape and np.array_equal(d, g) and \
                    (lname, attr) != owner[key]:
                return (f"grads[{key!r}] is {lname}.d{attr}, but params[{key!r}] is {owner[key][0]}.{owner[key][1]}: "
                        "gradient() takes it from the wrong layer")
    return None


def _numerical(net, x, t, grads, params, seq, grads_ok=True) -> str:
    """Chapter 5's check: the network's numerical_gradient (or sampled central differences) against gradient()."""
    size = sum(np.size(v) for v in params.values())
    drop = [n for n, layer in seq if case_for(type(layer).__name__, type(layer)) is not None
            and case_for(type(layer).__name__, type(layer)).against == "torch.nn.Dropout"]
    if drop:
        return f"not run: the loss draws new dropout masks at every call ({', '.join(drop)})"
    saved = np.random.get_state()
    try:
        if callable(getattr(net, "numerical_gradient", None)) and 2 * size <= NUMERICAL_BUDGET:
            num = net.numerical_gradient(x.copy(), t.copy())
            how = "its numerical_gradient(x, t)"
            sample = None
        else:
            num, sample = _sampled(net, x, t, params)
            how = (f"central differences (h = {NUMERICAL_H:g}) at {NUMERICAL_SAMPLE} elements per parameter "
                   f"({size:,} parameters: its own numerical_gradient would take {2 * size:,} loss evaluations)")
    except Exception as e:  # noqa: BLE001
        return f"not run: {type(e).__name__}: {e}"
    finally:
        np.random.set_state(saved)
    worst, where = 0.0, ""
    for k in params:
        if k not in num or k not in grads or np.shape(num[k]) != np.shape(grads[k]):
            continue
        a, b = np.asarray(grads[k], np.float64), np.asarray(num[k], np.float64)
        if sample is not None:
            a, b = a.reshape(-1)[sample[k]], b.reshape(-1)[sample[k]]
        err = float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), np.finfo(float).tiny)) if b.size else 0.0
        if err >= worst:
            worst, where = err, k
    if worst <= NUMERICAL_AGREE:
        digits = int(np.floor(-np.log10(max(worst, 1e-16))))
        return f"{how} agrees with gradient() to about {digits} digits (largest difference {worst:.2g} scaled, at {where})"
    text = f"{how} disagrees with gradient(): largest difference {worst:.2g} (scaled, at {where})"
    if grads_ok:  # torch agrees with gradient(): the central differences are what is off
        text += (f"; torch agrees with gradient(), and with the book's step h = {NUMERICAL_H:g} central "
                 "differences step over ReLU and max-pooling kinks")
    return text


def _sampled(net, x, t, params):
    rng = checker_rng(1)
    num, sample = {}, {}
    for k, p in params.items():
        idx = rng.choice(p.size, size=min(NUMERICAL_SAMPLE, p.size), replace=False)
        g = np.zeros(p.size)
        for i in idx:
            at = np.unravel_index(i, p.shape)  # in place in the network's own array, as the book's loop does
            old = p[at]
            p[at] = old + NUMERICAL_H
            up = train_loss(net, x, t)
            p[at] = old - NUMERICAL_H
            down = train_loss(net, x, t)
            p[at] = old
            g[i] = (up - down) / (2 * NUMERICAL_H)
        num[k], sample[k] = g.reshape(p.shape), idx
    return num, sample


def networks_in(namespace: dict) -> "OrderedDict[str, type]":
    """The network classes of a module's namespace (``is_network_class``), in definition order."""
    return OrderedDict((n, v) for n, v in namespace.items() if not n.startswith("_") and is_network_class(v))


def check_network_named(name, cls, args=None, *, seed: int = 0, batch: int = DEFAULT_BATCH):
    """The command line's check of one network class: built from its signature (``build_network``), checked.

    Returns (result, constructor keywords used); a constructor that needs arguments nobody can guess gives a
    result "not checked" that names them and the ``--args`` that supplies them.
    """
    result = NetworkResult(name, "torch twin")
    try:
        net, kwargs = build_network(cls, args, seed)
    except NeedsArguments as e:
        result.refused = str(e)
        result.not_checked = True
        return result, {}
    except Exception as e:  # noqa: BLE001 - the user's constructor raised
        result.error = f"{name}(...) raised {type(e).__name__}: {e}"
        return result, {}
    return check_network(net, batch=batch, seed=seed, name=name), kwargs
