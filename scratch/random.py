"""The default random stream, as ``torch.manual_seed`` gives PyTorch one.

Every function that draws random numbers takes an explicit
``generator: numpy.random.Generator``; when it is ``None`` the module-level
default below is used. Lockstep runs always pass their own generators.
"""
import numpy as np

_default = np.random.default_rng(0)


def manual_seed(seed: int) -> np.random.Generator:
    """Reseed the default generator, like ``torch.manual_seed``; returns it."""
    global _default
    _default = np.random.default_rng(seed)
    return _default


def default_generator() -> np.random.Generator:
    return _default


def resolve(generator) -> np.random.Generator:
    """``generator`` if given, else the default stream."""
    if generator is None:
        return _default
    if not isinstance(generator, np.random.Generator):
        raise TypeError(
            f"generator must be a numpy.random.Generator or None, got {type(generator).__name__}"
        )
    return generator
