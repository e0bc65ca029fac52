"""Imports the case modules of the other layer families so they register themselves.

Add one line here per file of cases (``experiments/layer_cases_<family>.py``).
"""
from experiments import layer_cases_conv  # noqa: E402,F401  Conv2d, MaxPool2d, AvgPool2d, AdaptiveAvgPool2d
from experiments import layer_cases_norm  # noqa: E402,F401  BatchNorm1d, BatchNorm2d, Dropout
from experiments import layer_cases_residual  # noqa: E402,F401  Residual, ResidualBlock
