"""The fast im2col and col2im: channels-last, chunked, threaded (the plain ones: scratch/nn/im2col.py).

A convolution slides a (KH, KW) window over the image and takes a dot product
with the filter at every position. im2col copies every window into one row of a
matrix, so that all those dot products become a single BLAS matrix product:

    col (N*OH*OW, KH*KW*C) @ weight (KH*KW*C, O) -> out (N*OH*OW, O)

The fast version works channels-last, on (N, H, W, C) arrays: there a window
row of KW pixels by C channels is one contiguous run of memory, so the copy is
cheap, and the product's output (N, OH, OW, O) is channels-last again. The
windows themselves are a strided *view* of the padded input (no copy): moving
one output pixel moves ``stride`` input pixels, moving one kernel tap moves
``dilation`` pixels.

col2im is im2col's adjoint (its transpose): it adds every row of a column
gradient back onto the pixels that row was copied from. The loop runs over the
KH*KW kernel offsets only; each step is one vectorised add over all samples
and output pixels. ``col2im_product`` gives the same sums with the column
gradient computed one tap at a time (never stored whole).

With more than a few channels Conv2d never holds a whole batch's col:
``conv_product`` and ``weight_product`` build it a few samples at a time,
small enough to stay in the cache between im2col's write and the product's
read. A stride-1 convolution's input gradient is another convolution
(``transposed_input``). The samples are split over ``scratch.fast.parallel``'s
threads: each thread builds and multiplies its own samples' chunks.

The plain im2col and col2im (channels first, the book's) are in
``scratch/nn/im2col.py``; these are tested equal to them.
"""
import threading

import numpy as np
from numpy.lib.stride_tricks import as_strided

from scratch.fast import parallel
from scratch.nn.im2col import conv_output_size


def pad_channels_last(x: np.ndarray, pads, value=0.0) -> np.ndarray:
    """(N, C, H, W) -> padded (N, top+H+bottom, left+W+right, C), in one copy.

    ``pads`` = (top, bottom, left, right). Transposing and padding in the same
    write means a channels-first input is reordered once, and a channels-last
    one (the output of a previous layer) is read in memory order.
    """
    top, bottom, left, right = pads
    N, C, H, W = x.shape
    xt = x.transpose(0, 2, 3, 1)
    if not (top or bottom or left or right) and xt.flags.c_contiguous:
        return xt
    out = np.empty((N, top + H + bottom, left + W + right, C), dtype=x.dtype)

    def samples(a, b):
        # Only the border is filled with the pad value; the interior is written once.
        out[a:b, :top] = value
        out[a:b, top + H:] = value
        out[a:b, top:top + H, :left] = value
        out[a:b, top:top + H, left + W:] = value
        out[a:b, top:top + H, left:left + W] = xt[a:b]

    parallel.parts(samples, N, nbytes=2 * out.nbytes)
    return out


def windows(x: np.ndarray, kernel, stride, dilation, out_size) -> np.ndarray:
    """The (N, OH, OW, KH, KW, C) view of all windows of a channels-last (N, H, W, C) array.

    A read-only view: nothing is copied. Element [n, i, j, p, q, c] is
    x[n, i*sh + p*dh, j*sw + q*dw, c].
    """
    (kh, kw), (sh, sw), (dh, dw), (oh, ow) = kernel, stride, dilation, out_size
    sN, sH, sW, sC = x.strides
    return as_strided(x, shape=(x.shape[0], oh, ow, kh, kw, x.shape[3]),
                      strides=(sN, sH * sh, sW * sw, sH * dh, sW * dw, sC), writeable=False)


# Up to this many channels, im2col copies tap by tap (see below).
TAP_MAJOR_MAX_CHANNELS = 3


def im2col(x: np.ndarray, kernel, stride=(1, 1), dilation=(1, 1), out=None, ones: bool = False) -> np.ndarray:
    """Channels-last windows as a matrix: (N, H, W, C) -> col (N*OH*OW, KH*KW*C), a fresh array.

    ``x`` is already padded. Row m is window m; column order is (kh, kw, c),
    matching a weight (O, C, KH, KW) transposed to (O, KH, KW, C).

    The copy runs along whichever side is long in memory. With many channels a
    window is KW runs of KW*C contiguous values, so col is filled row by row
    (C order). With a few channels (an image's 1 or 3) those runs are too short
    to copy efficiently; then col is filled tap by tap, each (N, OH, OW) plane
    in one sweep, which stores col column-major (its transpose is C-contiguous).
    BLAS takes either layout as it is, so the caller never needs to know.

    ``ones``: append a column of ones, (N*OH*OW, KH*KW*C + 1). A bias is a
    weight on a constant input 1, so with it the product gives out + bias, and
    g^T col gives the bias gradient beside the weight gradient, without a
    separate pass over the output for either.

    ``out``: a matrix an earlier call of the same geometry returned, to be
    overwritten. A fresh col of tens of megabytes costs the kernel a page
    fault and a zeroing per 4 KiB before the copy even starts; reusing one
    roughly halves the time of im2col.
    """
    return windows_to_col(_windows_of(x, kernel, stride, dilation), out, ones)


def windows_to_col(view: np.ndarray, out=None, ones: bool = False) -> np.ndarray:
    """im2col's copy: a (N, OH, OW, KH, KW, C) ``windows`` view -> col (N*OH*OW, KH*KW*C [+1]).

    For callers that make one view of a whole batch and copy it a few samples
    at a time (a view's slice costs nothing; making a view costs ~20 us).
    """
    N, oh, ow, kh, kw, C = view.shape
    M, K = N * oh * ow, kh * kw * C
    tap_major = C <= TAP_MAJOR_MAX_CHANNELS
    width = K + 1 if ones else K
    reusable = out is not None and out.shape == (M, width) and out.dtype == view.dtype and (
        out.T.flags.c_contiguous if tap_major else out.flags.c_contiguous)
    if tap_major:
        store = out.T if reusable else np.empty((width, M), dtype=view.dtype)
        planes, source = store[:K].reshape(kh, kw, C, N, oh, ow), view.transpose(3, 4, 5, 0, 1, 2)
        parallel.parts(lambda a, b: np.copyto(planes[:, :, :, a:b], source[:, :, :, a:b]), N,
                       nbytes=M * K * view.itemsize)
        if ones:
            store[K] = 1
        return out if reusable else store.T
    store = out if reusable else np.empty((M, width), dtype=view.dtype)
    np.copyto(store.reshape(N, oh, ow, width)[..., :K].reshape(view.shape), view)
    if ones:
        store[:, K] = 1
    return store


def col2im(col: np.ndarray, shape, kernel, stride=(1, 1), dilation=(1, 1), out=None) -> np.ndarray:
    """im2col's adjoint: (N*OH*OW, KH*KW*C) -> (N, H, W, C), summing overlapping windows.

    ``shape`` is the padded input's (N, H, W, C). With ``out`` the sums are
    added into it (it must be zeroed by the caller if a fresh result is wanted).
    """
    N, H, W, C = shape
    (kh, kw), (sh, sw), (dh, dw) = kernel, stride, dilation
    oh, ow = conv_output_size(H, kh, sh, 0, dh), conv_output_size(W, kw, sw, 0, dw)
    col = col.reshape(N, oh, ow, kh, kw, C)
    if out is None:
        out = np.zeros(shape, dtype=col.dtype)
    for p in range(kh):
        for q in range(kw):
            # The pixels tap (p, q) of every window touched: a strided slice, hit once per output pixel.
            out[:, p * dh:p * dh + sh * (oh - 1) + 1:sh, q * dw:q * dw + sw * (ow - 1) + 1:sw] += col[:, :, :, p, q]
    return out


def col2im_product(g: np.ndarray, w: np.ndarray, shape, kernel, stride=(1, 1), dilation=(1, 1),
                   out=None) -> np.ndarray:
    """``col2im(g @ w)`` computed tap by tap, without ever storing the (N*OH*OW, KH*KW*C) product.

    ``g`` (N*OH*OW, O) is the gradient of a convolution's output, ``w`` its
    weight (O, C, KH, KW); the result is dL/dx of the padded channels-last input
    (N, H, W, C), added into ``out`` when given. Per kernel tap (p, q) the
    product g @ w[:, :, p, q] is (N*OH*OW, C), and it is added onto the pixels
    that tap saw: the same sums as col2im(g @ w), but the column gradient
    (KH*KW times larger than the image) never goes through memory.
    Conv2d uses it for strided convolutions; with stride 1 the input gradient
    is itself a convolution (``transposed_input``), which is faster.
    """
    N, H, W, C = shape
    (kh, kw), (sh, sw), (dh, dw) = kernel, stride, dilation
    oh, ow = conv_output_size(H, kh, sh, 0, dh), conv_output_size(W, kw, sw, 0, dw)
    g = g.reshape(N, oh, ow, g.shape[-1])
    taps = np.ascontiguousarray(w.transpose(2, 3, 0, 1))  # (KH, KW, O, C); BLAS needs unit-stride rows
    if out is None:
        out = np.zeros(shape, dtype=g.dtype)
    for p in range(kh):
        for q in range(kw):
            out[:, p * dh:p * dh + sh * (oh - 1) + 1:sh, q * dw:q * dw + sw * (ow - 1) + 1:sw] += g @ taps[p, q]
    return out


# -- convolution products in cache-sized chunks ------------------------------
# A whole batch's col is tens of megabytes: written once by im2col and read
# again by the product, it goes out to memory and back. A few samples' col
# (about this many bytes) stays in the core's cache (2 MiB of L2 here) between
# the two, which halves the time of a convolution with many channels.
CHUNK_BYTES = 1 << 20


def _windows_of(x: np.ndarray, kernel, stride, dilation) -> np.ndarray:
    (kh, kw), (sh, sw), (dh, dw) = kernel, stride, dilation
    out_size = conv_output_size(x.shape[1], kh, sh, 0, dh), conv_output_size(x.shape[2], kw, sw, 0, dw)
    return windows(x, kernel, stride, dilation, out_size)


def chunk_samples(sample_bytes: int) -> int:
    """How many samples of ``sample_bytes`` of col each make one chunk (at least one)."""
    return max(1, CHUNK_BYTES // sample_bytes)


def _chunked_cols(x: np.ndarray, kernel, stride, dilation) -> tuple:
    """(cols, samples per chunk, output pixels per sample) for a chunk loop over im2col of x (N, H, W, C).

    ``cols(s, e)`` is im2col of samples s:e, copied from one windows view of the
    whole batch into a col that each thread reuses from chunk to chunk.
    """
    view = _windows_of(x, kernel, stride, dilation)
    _, oh, ow, kh, kw, C = view.shape
    local = threading.local()

    def cols(s, e):
        local.col = windows_to_col(view[s:e], out=getattr(local, "col", None))
        return local.col

    return cols, chunk_samples(oh * ow * kh * kw * C * x.itemsize), oh * ow


def conv_product(x: np.ndarray, weight_t: np.ndarray, kernel, stride=(1, 1), dilation=(1, 1),
                 out=None, bias=None) -> np.ndarray:
    """A convolution's forward: ``im2col(x, ...) @ weight_t [+ bias]``, col built a few samples at a time.

    ``x`` (N, H, W, C) padded channels-last; ``weight_t`` (KH*KW*C, O), im2col's
    column order; result (N*OH*OW, O), written into ``out`` when given (then
    C-contiguous if ``bias`` is given). Each chunk's rows of the product are its
    samples' rows of the result, so nothing is copied after the products; the
    bias (O,) is added to them while they are still in the cache.
    """
    cols, n, pixels = _chunked_cols(x, kernel, stride, dilation)
    N = x.shape[0]
    if out is None:
        out = np.empty((N * pixels, weight_t.shape[1]), dtype=x.dtype)
    # One sample's worth of bias, (OH*OW*O,): adding it to a (samples, OH*OW*O) view runs long loops.
    tiled = None if bias is None else np.tile(bias, pixels)

    def chunk(s, e):
        rows = out[s * pixels:e * pixels]
        np.matmul(cols(s, e), weight_t, out=rows)
        if tiled is not None:
            rows.reshape(e - s, -1)[...] += tiled  # a view: rows is C-contiguous

    parallel.chunks(chunk, N, n)
    return out


def weight_product(x: np.ndarray, g: np.ndarray, kernel, stride=(1, 1), dilation=(1, 1)) -> np.ndarray:
    """A convolution's weight gradient: ``g^T im2col(x, ...)``, (O, KH*KW*C), col built chunk by chunk.

    ``x`` (N, H, W, C) padded channels-last, ``g`` (N*OH*OW, O) the output's
    gradient. The chunks' products are summed.
    """
    cols, n, pixels = _chunked_cols(x, kernel, stride, dilation)
    # Added in chunk order, whichever thread made each.
    return parallel.summed(lambda s, e: g[s * pixels:e * pixels].T @ cols(s, e), x.shape[0], n)


def transposed_input(g: np.ndarray, w: np.ndarray, size, pads, kernel, dilation=(1, 1), out=None) -> np.ndarray:
    """A stride-1 convolution's input gradient, as a convolution of the output gradient.

    ``g`` (N, OH, OW, O) channels-last gradient of the output, ``w`` (O, C, KH, KW),
    ``size`` = (H, W) of the unpadded input, ``pads`` its (top, bottom, left, right).
    Returns dL/dx (N*H*W, C), pixels in channels-last order (written into ``out`` when given).

    With stride 1, dL/dx_pad[n, y, x, c] = sum_{p,q,o} g[n, y - p dh, x - q dw, o] w[o, c, p, q]
    (terms outside g are zero). Put g on a grid with e = d (K - 1) rows of zeros
    on either side and flip the kernel, p' = KH-1-p: then
        dL/dx_pad[n, y, x, c] = sum_{p',q',o} g_grid[n, y + p' dh, x + q' dw, o] w[o, c, KH-1-p', KW-1-q'],
    a forward convolution from O channels to C. Only the unpadded pixels are
    computed: the grid starts at the padding's top-left corner, so the zeros
    are e - top rows (rows of g are cut instead where the padding is wider).
    """
    (kh, kw), (dh, dw) = kernel, dilation
    (H, W), (top, bottom, left, right) = size, pads
    eh, ew = dh * (kh - 1), dw * (kw - 1)
    N, oh, ow, O = g.shape
    # Rows of g that only ever reach padding are dropped; the rest sit e - top rows into the grid.
    g = g[:, max(0, top - eh):oh - max(0, bottom - eh), max(0, left - ew):ow - max(0, right - ew)]
    grid = pad_channels_last(g.transpose(0, 3, 1, 2), (max(0, eh - top), max(0, eh - bottom),
                                                       max(0, ew - left), max(0, ew - right)))
    flipped = w[:, :, ::-1, ::-1].transpose(2, 3, 0, 1).reshape(kh * kw * O, w.shape[1])
    return conv_product(grid, flipped, kernel, (1, 1), dilation, out=out)
