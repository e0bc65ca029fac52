"""im2col and col2im: a convolution as one matrix product.

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
and output pixels. A convolution's backward uses ``col2im_product``, the same
sums with the column gradient computed one tap at a time (never stored whole).

``im2col_book`` / ``col2im_book`` are the book's teaching versions (channels
first, (C, KH, KW) column order, loops over the kernel offsets), kept for
reading and tested equal to the fast ones.
"""
import numpy as np
from numpy.lib.stride_tricks import as_strided


def conv_output_size(size: int, kernel: int, stride: int = 1, padding: int = 0, dilation: int = 1) -> int:
    """PyTorch's formula: floor((size + 2 padding - dilation (kernel - 1) - 1) / stride) + 1."""
    return (size + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1


def pad_channels_last(x: np.ndarray, pads, value=0.0) -> np.ndarray:
    """(N, C, H, W) -> padded (N, top+H+bottom, left+W+right, C), in one copy.

    ``pads`` = (top, bottom, left, right). Transposing and padding in the same
    write means a channels-first input is reordered once, and a channels-last
    one (the output of a previous layer) is read in memory order.
    """
    top, bottom, left, right = pads
    N, C, H, W = x.shape
    xt = x.transpose(0, 2, 3, 1)
    if not (top or bottom or left or right):
        return np.ascontiguousarray(xt)
    out = np.empty((N, top + H + bottom, left + W + right, C), dtype=x.dtype)
    # Only the border is filled with the pad value; the interior is written once.
    out[:, :top] = value
    out[:, top + H:] = value
    out[:, top:top + H, :left] = value
    out[:, top:top + H, left + W:] = value
    out[:, top:top + H, left:left + W] = xt
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
    N, H, W, C = x.shape
    (kh, kw), (sh, sw), (dh, dw) = kernel, stride, dilation
    oh, ow = conv_output_size(H, kh, sh, 0, dh), conv_output_size(W, kw, sw, 0, dw)
    M, K = N * oh * ow, kh * kw * C
    view = windows(x, kernel, stride, dilation, (oh, ow))  # (N, OH, OW, KH, KW, C)
    tap_major = C <= TAP_MAJOR_MAX_CHANNELS
    width = K + 1 if ones else K
    reusable = out is not None and out.shape == (M, width) and out.dtype == x.dtype and (
        out.T.flags.c_contiguous if tap_major else out.flags.c_contiguous)
    if tap_major:
        store = out.T if reusable else np.empty((width, M), dtype=x.dtype)
        np.copyto(store[:K].reshape(kh, kw, C, N, oh, ow), view.transpose(3, 4, 5, 0, 1, 2))
        if ones:
            store[K] = 1
        return out if reusable else store.T
    store = out if reusable else np.empty((M, width), dtype=x.dtype)
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

    With stride 1 the adds are made contiguous: number the padded pixels of the
    whole batch 0, 1, ... in memory order; output pixel (i, j) of tap (p, q)
    reads pixel f + (p dh W + q dw), f = its own number on the padded grid. So
    with g laid out on the padded grid (zeros where no output is), each tap
    adds one product onto one contiguous slab, shifted by that offset.
    """
    N, H, W, C = shape
    (kh, kw), (sh, sw), (dh, dw) = kernel, stride, dilation
    oh, ow = conv_output_size(H, kh, sh, 0, dh), conv_output_size(W, kw, sw, 0, dw)
    O = g.shape[-1]
    g = g.reshape(N, oh, ow, O)
    taps = np.ascontiguousarray(w.transpose(2, 3, 0, 1))  # (KH, KW, O, C); BLAS needs unit-stride rows
    target = out
    if out is None or not out.flags.c_contiguous:
        out = np.zeros(shape, dtype=g.dtype)
    if (sh, sw) == (1, 1):
        grid = np.zeros((N, H, W, O), dtype=g.dtype)
        grid[:, :oh, :ow] = g
        grid, flat = grid.reshape(-1, O), out.reshape(-1, C)
        rows = N * H * W - ((kh - 1) * dh * W + (kw - 1) * dw)  # the last tap's slab must end inside the batch
        if C <= TAP_MAJOR_MAX_CHANNELS:
            # With one to three channels a per-tap product is a matrix-vector product and its
            # (rows, C) result too narrow to add quickly: one product for all taps, transposed so
            # that each (tap, channel) is a contiguous row, then one long 1-D add per row.
            every = taps.reshape(kh * kw, O, C).transpose(0, 2, 1).reshape(-1, O) @ grid[:rows].T
            for k, row in enumerate(every):
                (p, q), c = divmod(k // C, kw), k % C
                offset = p * dh * W + q * dw
                flat[offset:offset + rows, c] += row
        else:
            for p in range(kh):
                for q in range(kw):
                    offset = p * dh * W + q * dw
                    flat[offset:offset + rows] += grid[:rows] @ taps[p, q]
    else:
        for p in range(kh):
            for q in range(kw):
                out[:, p * dh:p * dh + sh * (oh - 1) + 1:sh, q * dw:q * dw + sw * (ow - 1) + 1:sw] += g @ taps[p, q]
    if target is not None and target is not out:
        target += out
        return target
    return out


# -- the book's teaching versions (channels first) ---------------------------
def im2col_book(input_data: np.ndarray, filter_h: int, filter_w: int, stride: int = 1, pad: int = 0) -> np.ndarray:
    """The book's im2col: (N, C, H, W) -> (N*OH*OW, C*FH*FW), columns in (c, kh, kw) order.

    For each kernel offset (y, x), the pixels that offset sees in every window
    are one strided slice of the padded image.
    """
    N, C, H, W = input_data.shape
    out_h = (H + 2 * pad - filter_h) // stride + 1
    out_w = (W + 2 * pad - filter_w) // stride + 1
    img = np.pad(input_data, [(0, 0), (0, 0), (pad, pad), (pad, pad)], "constant")
    col = np.zeros((N, C, filter_h, filter_w, out_h, out_w), dtype=input_data.dtype)
    for y in range(filter_h):
        y_max = y + stride * out_h
        for x in range(filter_w):
            x_max = x + stride * out_w
            col[:, :, y, x, :, :] = img[:, :, y:y_max:stride, x:x_max:stride]
    return col.transpose(0, 4, 5, 1, 2, 3).reshape(N * out_h * out_w, -1)


def col2im_book(col: np.ndarray, input_shape, filter_h: int, filter_w: int, stride: int = 1,
                pad: int = 0) -> np.ndarray:
    """The book's col2im: (N*OH*OW, C*FH*FW) -> (N, C, H, W), overlapping windows summed."""
    N, C, H, W = input_shape
    out_h = (H + 2 * pad - filter_h) // stride + 1
    out_w = (W + 2 * pad - filter_w) // stride + 1
    col = col.reshape(N, out_h, out_w, C, filter_h, filter_w).transpose(0, 3, 4, 5, 1, 2)
    img = np.zeros((N, C, H + 2 * pad + stride - 1, W + 2 * pad + stride - 1), dtype=col.dtype)
    for y in range(filter_h):
        y_max = y + stride * out_h
        for x in range(filter_w):
            x_max = x + stride * out_w
            img[:, :, y:y_max:stride, x:x_max:stride] += col[:, :, y, x, :, :]
    return img[:, :, pad:H + pad, pad:W + pad]
