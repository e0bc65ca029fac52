"""What a file holds and what each item is checked against: classes by behaviour and name, function pairs.

Recognition by behaviour, not spelling: class names are compared case-insensitively, without ``_`` and a
``Layer`` suffix, and through common aliases (ReLU/ReLu/Relu; Affine/Linear/Dense/FullyConnected;
MaxPooling...); constructor and mode arguments are matched by signature (``adapters.RATE_ARGS``,
``adapters.MODE_ARGS``). A class whose constructor takes torch's arguments (in_features, num_features,
in_channels, kernel_size) or that keeps ``named_parameters`` is built as torch's module is. CS231n-style
``<name>_forward`` / ``<name>_backward`` pairs (suffixes ``_naive``, ``_fast``...; ``_backward_alt``) and loss
functions returning ``(loss, dx)`` are checked through ``adapters.FunctionPair`` / ``adapters.LossFunction``.
"""
import inspect
import re
from collections import OrderedDict
from dataclasses import dataclass

import torch
from torch import nn

from experiments.check.adapters import ctor_args, is_scratch_style
from experiments.check.inputs import (SVM, book_affine, book_batchnorm, book_binary, book_conv, book_dropout,
                                      book_elementwise, book_pool, book_softmax_loss, fn_affine, fn_batchnorm,
                                      fn_conv, fn_dropout, fn_groupnorm, fn_layernorm, fn_loss, fn_max_pool, fn_relu,
                                      torch_style)


@dataclass
class Case:
    against: str
    build: object  # (target, rng, dtype, kind) -> (layer, torch module or function, inputs, check_layer keywords)
    modes: tuple = (True,)
    args: str = ""  # how the checker builds it, for messages


BOOK = OrderedDict(
    Relu=Case("torch.nn.ReLU", book_elementwise(nn.ReLU), args="()"),
    Sigmoid=Case("torch.nn.Sigmoid", book_elementwise(nn.Sigmoid), args="()"),
    Tanh=Case("torch.nn.Tanh", book_elementwise(nn.Tanh), args="()"),
    Affine=Case("torch.nn.Linear", book_affine, args="(W, b)"),
    SoftmaxWithLoss=Case("torch.nn.CrossEntropyLoss", book_softmax_loss, args="()"),
    Dropout=Case("torch.nn.Dropout", book_dropout, (True, False), args="(dropout_ratio)"),
    BatchNormalization=Case("torch.nn.BatchNorm1d", book_batchnorm, (True, False), args="(gamma, beta, momentum)"),
    Convolution=Case("torch.nn.Conv2d", book_conv, args="(W, b, stride, pad)"),
    Pooling=Case("torch.nn.MaxPool2d", book_pool, args="(pool_h, pool_w, stride, pad)"),
    MulLayer=Case("torch.mul", book_binary(torch.mul), args="()"),
    AddLayer=Case("torch.add", book_binary(torch.add), args="()"),
)
# Normalised class name (lower case, no "_", no "Layer" suffix) -> the book's name.
ALIASES = {
    "relu": "Relu", "sigmoid": "Sigmoid", "tanh": "Tanh",
    "affine": "Affine", "linear": "Affine", "dense": "Affine", "fullyconnected": "Affine", "fc": "Affine",
    "softmaxwithloss": "SoftmaxWithLoss", "softmaxloss": "SoftmaxWithLoss", "softmaxcrossentropy": "SoftmaxWithLoss",
    "softmaxcrossentropyloss": "SoftmaxWithLoss", "softmaxwithcrossentropy": "SoftmaxWithLoss",
    "dropout": "Dropout",
    "batchnormalization": "BatchNormalization", "batchnorm": "BatchNormalization", "bn": "BatchNormalization",
    "batchnorm1d": "BatchNormalization",
    "convolution": "Convolution", "conv": "Convolution", "conv2d": "Convolution", "convolution2d": "Convolution",
    "pooling": "Pooling", "maxpooling": "Pooling", "maxpool": "Pooling", "maxpool2d": "Pooling",
    "maxpooling2d": "Pooling",
    "mul": "MulLayer", "multiply": "MulLayer", "mult": "MulLayer", "add": "AddLayer", "addition": "AddLayer",
}
TORCH_STYLE = ("Linear", "ReLU", "Sigmoid", "Tanh", "Conv2d", "MaxPool2d", "AvgPool2d", "BatchNorm1d",
               "BatchNorm2d", "Dropout")
# The book's name -> torch's module, for a class built the torch way.
TORCH_FOR_BOOK = {"Affine": "Linear", "Relu": "ReLU", "Sigmoid": "Sigmoid", "Tanh": "Tanh", "Convolution": "Conv2d",
                  "Pooling": "MaxPool2d", "BatchNormalization": "BatchNorm1d", "Dropout": "Dropout"}
# Constructor arguments that say "built as torch's module is".
TORCH_CTOR_ARGS = ("in_features", "num_features", "in_channels", "kernel_size")

FUNCTIONS = OrderedDict(
    affine=Case("torch.nn.functional.linear", fn_affine),
    relu=Case("torch.nn.ReLU", fn_relu),
    conv=Case("torch.nn.functional.conv2d", fn_conv),
    max_pool=Case("torch.nn.MaxPool2d", fn_max_pool),
    batchnorm=Case("torch.nn.functional.batch_norm", fn_batchnorm(False), (True, False)),
    spatial_batchnorm=Case("torch.nn.functional.batch_norm", fn_batchnorm(True), (True, False)),
    layernorm=Case("torch.nn.functional.layer_norm", fn_layernorm),
    spatial_groupnorm=Case("torch.nn.functional.group_norm", fn_groupnorm),
    dropout=Case("torch.nn.Dropout", fn_dropout, (True, False)),
)
FUNCTION_ALIASES = {"groupnorm": "spatial_groupnorm", "maxpool": "max_pool", "batch_norm": "batchnorm",
                    "layer_norm": "layernorm", "spatial_batch_norm": "spatial_batchnorm"}
LOSSES = OrderedDict(softmax_loss=Case("torch.nn.CrossEntropyLoss", fn_loss(nn.CrossEntropyLoss())),
                     svm_loss=Case(SVM.label, fn_loss(SVM)))
# Suffixes of a CS231n pair's names: conv_forward_naive / conv_backward_naive ...
PAIR = re.compile(r"^(?P<base>\w+?)_backward(?P<suffix>(_\w+)?)$")

API_CLASS = ("from experiments.check import assert_matches_torch\n"
             "assert_matches_torch({name}(...), torch.nn.<Module>(...), x)  # or a torch function")
API_PAIR = ("from experiments.check import check_functions\n"
            "check_functions({fwd}, {bwd}, <torch function of the same arrays>, x, w, ...)")


def normal(name: str) -> str:
    n = re.sub(r"[^a-z0-9]", "", name.lower())
    return n[:-5] if n.endswith("layer") and len(n) > 5 else n


def case_for(name, cls):
    """The Case a class is checked by, or None."""
    key = ALIASES.get(normal(name))
    exact = next((t for t in TORCH_STYLE if t.lower() == normal(name)), None)
    args = ctor_args(cls)
    torch_like = is_scratch_style(cls) or bool(args[:1]) and args[0] in TORCH_CTOR_ARGS or (
        key == "Dropout" and args[:1] == ["p"] and exact is not None and is_scratch_style(cls))
    if torch_like and (exact or TORCH_FOR_BOOK.get(key)):
        torch_name = exact or TORCH_FOR_BOOK[key]
        modes = (True, False) if torch_name.startswith(("BatchNorm", "Dropout")) else (True,)
        return Case(f"torch.nn.{torch_name}", torch_style(torch_name), modes, args="(torch's arguments)")
    if key is None and exact in TORCH_STYLE and exact not in ("Tanh", "AvgPool2d", "BatchNorm2d"):
        key = ALIASES.get(exact.lower())
    return BOOK.get(key)


def unmapped_reason(name, cls) -> str:
    try:
        sig = f"forward{inspect.signature(cls.forward)}".replace("(self, ", "(").replace("(self)", "()")
    except (TypeError, ValueError):
        sig = "forward(...)"
    return (f"no torch counterpart known for a class named {name} ({sig}); check it in a test:\n"
            + API_CLASS.format(name=name))


def items(module) -> list:
    """What the file defines that could be checked, in the file's order: [(name, kind, target, case, reason)].

    kind is "class" (forward and backward methods), "pair" ((forward, backward) functions), "loss" (a function
    returning (loss, dx)) or "unmapped" (listed, not checked, with the reason).
    """
    found = []
    names = vars(module)
    own = {n: f for n, f in names.items() if inspect.isfunction(f) and f.__module__ == module.__name__
           and not n.startswith("_")}  # the file's own public functions: helpers and imports are not layers
    for n, obj in names.items():
        if inspect.isclass(obj) and hasattr(obj, "forward") and hasattr(obj, "backward") and not n.startswith("_"):
            case = case_for(n, obj)
            found.append((n, "class", obj, case, "" if case else unmapped_reason(n, obj)))
    paired = set()
    for n, f in own.items():
        m = PAIR.match(n)
        if not m:
            continue
        base, suffix = m["base"], m["suffix"]
        if suffix == "_alt":
            fwd = f"{base}_forward" if f"{base}_forward" in own else f"{base}_forward_alt"
        else:
            fwd = f"{base}_forward{suffix}"
        label = f"{fwd}/{n}" if not n.startswith(fwd.replace("_forward", "_backward")) else \
            f"{base}_forward{suffix}/backward{suffix}"
        if fwd not in own:
            found.append((n, "unmapped", f, None, f"no {fwd} to pair it with"))
            paired.add(n)
            continue
        paired |= {n, fwd}
        case = FUNCTIONS.get(FUNCTION_ALIASES.get(base, base))
        reason = "" if case else (f"no torch counterpart known for {base}_forward/{base}_backward; check it in a "
                                  "test:\n" + API_PAIR.format(fwd=fwd, bwd=n))
        found.append((label, "pair" if case else "unmapped", (own[fwd], f), case, reason))
    for n, f in own.items():
        if n in paired:
            continue
        if n in LOSSES:
            found.append((n, "loss", f, LOSSES[n], ""))
        elif re.search(r"_forward(_\w+)?$", n):
            found.append((n, "unmapped", f, None, f"no {n.replace('_forward', '_backward', 1)} to pair it with"))
        elif n.endswith("_loss"):
            found.append((n, "unmapped", f, None, "no torch counterpart known for this loss; check it in a test:\n"
                          "from experiments.check import check_layer, LossFunction\n"
                          f"check_layer(LossFunction({n}), torch.nn.<Loss>(), x, y, nondiff=(1,), "
                          "grad_output=np.float64(1.0))"))
    return found
