"""ReLU's fast path: one pass over the output for the mask, samples split over threads, outputs in place."""
import numpy as np

from scratch.fast import parallel
from scratch.nn.module import check_grad_output


def relu_forward(m, x: np.ndarray) -> np.ndarray:
    # not (x <= 0) is y != 0, one pass over y: np.maximum passes nan on, and maps -0.0 and all x < 0 to zero.
    m.mask = np.empty_like(x, dtype=bool)  # in x's memory order, as is out
    out = x if m.inplace else np.empty_like(x)
    xs, mask, outs = (a if a.ndim else a[None] for a in (x, m.mask, out))

    def samples(a, b):
        np.maximum(xs[a:b], 0, out=outs[a:b])
        np.not_equal(outs[a:b], 0, out=mask[a:b])

    parallel.parts(samples, len(xs), nbytes=x.nbytes)
    return out


def relu_backward(m, grad_output: np.ndarray) -> np.ndarray:
    g = check_grad_output(m, grad_output, m.mask.shape)
    grad = np.empty_like(m.mask, dtype=g.dtype if g.dtype.kind == "f" else np.float64)
    gs, mask, grads = (a if a.ndim else a[None] for a in (g, m.mask, grad))

    def samples(a, b):
        with np.errstate(invalid="ignore", over="ignore"):  # inf * 0, repaired below; a sum's overflow
            np.multiply(gs[a:b], mask[a:b], out=grads[a:b])  # np.where(mask, g, 0) is the same but ~9x slower
            finite = np.isfinite(grads[a:b].sum())  # one pass, no temporary; a nan or inf makes the sum one
        if not finite:
            # nan or inf upstream times a 0 of the mask is nan; torch's threshold_backward
            # gives 0 wherever x <= 0, whatever flows in. (A sum that merely overflowed lands here too.)
            grads[a:b][~mask[a:b]] = 0

    parallel.parts(samples, len(gs), nbytes=grad.nbytes)
    return grad
