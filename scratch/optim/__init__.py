"""Optimizers and learning-rate schedulers with ``torch.optim``'s names, defaults and update rules.

``scratch.optim.SGD``, ``Adagrad``, ``RMSprop``, ``Adam``, ``AdamW`` follow
PyTorch's documented rules operation by operation; ``scratch.optim.book``
holds the book's own formulations (its SGD, Momentum, Nesterov, AdaGrad,
RMSprop, Adam) and says where each differs; ``scratch.optim.lr_scheduler``
holds the schedulers.
"""
from scratch.optim.optimizer import Optimizer
from scratch.optim.sgd import SGD
from scratch.optim.adam import Adam
from scratch.optim.adamw import AdamW
from scratch.optim.adagrad import Adagrad
from scratch.optim.rmsprop import RMSprop
from scratch.optim import book, lr_scheduler

__all__ = ["Optimizer", "SGD", "Adagrad", "RMSprop", "Adam", "AdamW", "book", "lr_scheduler"]
