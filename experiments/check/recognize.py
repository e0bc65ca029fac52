"""Which torch counterpart a class of the user's file is checked against, and how it is built."""
from collections import OrderedDict
from dataclasses import dataclass

from experiments.check.adapters import ctor_args, is_scratch_style
from experiments.check.inputs import (book_affine, book_batchnorm, book_conv, book_dropout, book_elementwise, book_pool,
                                      book_softmax_loss, torch_style)
from torch import nn


@dataclass
class Case:
    against: str
    build: object  # (cls, rng, dtype) -> (layer, torch module, inputs, check_layer keywords)
    modes: tuple = (True,)



BOOK = OrderedDict(
    Relu=Case("torch.nn.ReLU", book_elementwise(nn.ReLU)),
    Sigmoid=Case("torch.nn.Sigmoid", book_elementwise(nn.Sigmoid)),
    Affine=Case("torch.nn.Linear", book_affine),
    SoftmaxWithLoss=Case("torch.nn.CrossEntropyLoss", book_softmax_loss),
    Dropout=Case("torch.nn.Dropout", book_dropout, (True, False)),
    BatchNormalization=Case("torch.nn.BatchNorm1d", book_batchnorm, (True, False)),
    Convolution=Case("torch.nn.Conv2d", book_conv),
    Pooling=Case("torch.nn.MaxPool2d", book_pool),
)



TORCH_STYLE = ("Linear", "ReLU", "Sigmoid", "Tanh", "Conv2d", "MaxPool2d", "AvgPool2d", "BatchNorm1d",
               "BatchNorm2d", "Dropout")


def case_for(name, cls):
    params = ctor_args(cls)
    torch_like = is_scratch_style(cls) or (name == "Dropout" and params[:1] == ["p"])
    if name in TORCH_STYLE and (torch_like or name not in BOOK):
        modes = (True, False) if name.startswith(("BatchNorm", "Dropout")) else (True,)
        return Case(f"torch.nn.{name}", torch_style(name), modes)
    return BOOK.get(name)
