import numpy as np
import a_module_that_does_not_exist  # noqa: F401


class Relu:
    def forward(self, x):
        return np.maximum(x, 0)
