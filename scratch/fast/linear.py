"""Linear's fast path: the rows of the batch (and of dW) split over threads, products written in place."""
import numpy as np

from scratch.fast import parallel
from scratch.nn.module import check_grad_output


def forward(m, x: np.ndarray) -> np.ndarray:
    m.x = xm = x.reshape(-1, m.in_features)
    w, b = m.weight.data, None if m.bias is None else m.bias.data
    out = np.empty((xm.shape[0], m.out_features), dtype=x.dtype)

    def rows(start, stop):  # rows of the batch are independent: parts of it on several cores
        np.matmul(xm[start:stop], w.T, out=out[start:stop])  # F.linear, written in place
        if b is not None:
            out[start:stop] += b

    parallel.parts(rows, xm.shape[0], nbytes=xm.nbytes + w.nbytes, blas=True)
    m.output_shape = x.shape[:-1] + (m.out_features,)
    return out.reshape(m.output_shape)


def backward(m, grad_output: np.ndarray) -> np.ndarray:
    grad_output = check_grad_output(m, grad_output, m.output_shape)
    g, x, w = grad_output.reshape(-1, m.out_features), m.x, m.weight.data
    # Split over the input features (columns of dW and x), so that no part needs another's sum.
    dw = np.empty(w.shape, dtype=np.result_type(g, x))
    parallel.parts(lambda a, b: np.matmul(g.T, x[:, a:b], out=dw[:, a:b]), x.shape[1],
                   nbytes=x.nbytes + w.nbytes, blas=True)
    m.weight.accumulate_grad(dw)
    if m.bias is not None:
        m.bias.accumulate_grad(g.sum(axis=0))
    if not m.needs_input_grad:
        return None
    dx = np.empty(x.shape, dtype=np.result_type(g, w))
    parallel.parts(lambda a, b: np.matmul(g[a:b], w, out=dx[a:b]), x.shape[0],
                   nbytes=x.nbytes + w.nbytes, blas=True)
    return dx.reshape(grad_output.shape[:-1] + (m.in_features,))
