"""Modules, losses, initialisation and functional forms with ``torch.nn``'s names.

Each layer's file shows its formula as plain NumPy, forward and backward side by side (the plain
path); a layer with a fast path enters ``scratch.fast`` through one call at the top of its forward.
"""
from scratch.nn import functional, init
from scratch.nn.activation import LeakyReLU, LogSoftmax, ReLU, Sigmoid, Softmax, Tanh
from scratch.nn.batchnorm import BatchNorm1d, BatchNorm2d, BookBatchNorm
from scratch.nn.conv import Conv2d
from scratch.nn.dropout import BookDropout, Dropout
from scratch.nn.linear import Flatten, Identity, Linear
from scratch.nn.loss import CrossEntropyLoss, MSELoss
from scratch.nn.module import Module, ModuleList, Sequential
from scratch.nn.parameter import Parameter
from scratch.nn.pooling import AdaptiveAvgPool2d, AvgPool2d, MaxPool2d
from scratch.nn.regularization import L2Penalty, l2_penalty
from scratch.nn.residual import Residual, ResidualBlock
