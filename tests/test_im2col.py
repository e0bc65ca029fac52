"""im2col / col2im: the fast channels-last versions against the plain ones, and col2im as im2col's adjoint."""
import numpy as np
import pytest

from scratch.fast.im2col import col2im, col2im_product, im2col, pad_channels_last, windows
from scratch.nn import im2col as plain
from scratch.nn.im2col import conv_output_size


def _plain_order(col, N, oh, ow, kh, kw, C):
    """The fast (kh, kw, c) column order -> the plain one's (c, kh, kw)."""
    return col.reshape(N * oh * ow, kh, kw, C).transpose(0, 3, 1, 2).reshape(N * oh * ow, C * kh * kw)


def _book_im2col(input_data, filter_h, filter_w, stride=1, pad=0):
    """The book's im2col (chapter 7.4), word for word: the plain one must give the same matrix."""
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


@pytest.mark.parametrize("seed", range(40))
def test_fast_im2col_equals_plain_and_plain_equals_book(seed):
    rng = np.random.default_rng(seed)
    N, C = int(rng.integers(1, 4)), int(rng.choice([1, 2, 3, 4, 7]))  # both sides of the tap-major switch
    kernel = tuple(int(v) for v in rng.integers(1, 5, 2))
    stride, dilation = tuple(int(v) for v in rng.integers(1, 4, 2)), tuple(int(v) for v in rng.integers(1, 3, 2))
    pad = int(rng.integers(0, 3))
    H, W = (d * (k - 1) + 1 + int(rng.integers(0, 6)) for k, d in zip(kernel, dilation))
    dtype = [np.float64, np.float32][seed % 2]
    x = rng.standard_normal((N, C, H, W)).astype(dtype)
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    oh, ow = (conv_output_size(n, k, s, pad, d) for n, k, s, d in zip((H, W), kernel, stride, dilation))
    col = plain.im2col(xp, kernel, stride, dilation)
    assert col.shape == (N * oh * ow, C * kernel[0] * kernel[1]) and col.dtype == dtype
    fast = im2col(pad_channels_last(x, (pad, pad, pad, pad)), kernel, stride, dilation)
    np.testing.assert_array_equal(_plain_order(fast, N, oh, ow, *kernel, C), col)  # copies: equal bits
    if kernel[0] == kernel[1] and stride[0] == stride[1] and dilation == (1, 1):
        np.testing.assert_array_equal(col, _book_im2col(x, kernel[0], kernel[1], stride[0], pad))

    g = rng.standard_normal(col.shape).astype(dtype)
    g_fast = g.reshape(N * oh * ow, C, *kernel).transpose(0, 2, 3, 1).reshape(g.shape)
    Hp, Wp = H + 2 * pad, W + 2 * pad
    back = plain.col2im(g, xp.shape, kernel, stride, dilation)
    back_fast = col2im(g_fast, (N, Hp, Wp, C), kernel, stride, dilation).transpose(0, 3, 1, 2)
    # Sums of the same terms in the same tap order: equal to round-off.
    np.testing.assert_allclose(back_fast, back, rtol=1e-12 if dtype == np.float64 else 1e-5,
                               atol=1e-12 if dtype == np.float64 else 1e-5)
    assert np.isclose(np.sum(col.astype(np.float64) * g), np.sum(xp.astype(np.float64) * back),
                      rtol=1e-4 if dtype == np.float32 else 1e-12), "plain col2im is im2col's adjoint"


@pytest.mark.parametrize("seed", range(20))
def test_col2im_is_the_adjoint_and_product_form_agrees(seed):
    """<im2col(x), y> = <x, col2im(y)> for any x, y, with dilation and uneven strides; col2im_product = col2im(g W)."""
    rng = np.random.default_rng(100 + seed)
    N, C, O = int(rng.integers(1, 3)), int(rng.integers(1, 6)), int(rng.integers(1, 5))
    kernel = tuple(int(v) for v in rng.integers(1, 4, 2))
    stride, dilation = tuple(int(v) for v in rng.integers(1, 3, 2)), tuple(int(v) for v in rng.integers(1, 3, 2))
    H, W = (d * (k - 1) + 1 + int(rng.integers(0, 5)) for k, d in zip(kernel, dilation))
    x = rng.standard_normal((N, H, W, C))
    col = im2col(x, kernel, stride, dilation)
    y = rng.standard_normal(col.shape)
    back = col2im(y, x.shape, kernel, stride, dilation)
    assert np.isclose(np.sum(col * y), np.sum(x * back), rtol=1e-12, atol=1e-12)

    g = rng.standard_normal((col.shape[0], O))
    w = rng.standard_normal((O, C) + kernel)
    w_cols = w.transpose(0, 2, 3, 1).reshape(O, -1)
    np.testing.assert_allclose(col2im_product(g, w, x.shape, kernel, stride, dilation),
                               col2im(g @ w_cols, x.shape, kernel, stride, dilation), rtol=1e-12, atol=1e-12)


def test_windows_is_a_view_and_pad_keeps_layout():
    x = np.arange(2 * 5 * 6 * 3, dtype=np.float32).reshape(2, 5, 6, 3)
    v = windows(x, (2, 3), (1, 2), (2, 1), (3, 2))
    assert np.shares_memory(v, x) and not v.flags.writeable
    assert v[1, 2, 1, 1, 2, 0] == x[1, 2 * 1 + 1 * 2, 1 * 2 + 2 * 1, 0]
    nchw = np.random.default_rng(0).standard_normal((2, 3, 4, 5))
    padded = pad_channels_last(nchw, (1, 2, 0, 3))
    assert padded.shape == (2, 7, 8, 3) and padded.flags.c_contiguous
    np.testing.assert_array_equal(padded[:, 1:5, 0:5], nchw.transpose(0, 2, 3, 1))
    assert padded[:, 0].sum() == 0 and padded[:, 5:].sum() == 0 and padded[:, :, 5:].sum() == 0


@pytest.mark.parametrize("C", [1, 5])
def test_im2col_reuses_a_buffer_of_the_same_geometry(C):
    rng = np.random.default_rng(C)
    a, b = rng.standard_normal((2, 2, 7, 6, C))
    first = im2col(a, (3, 2), (2, 1), (1, 2))
    again = im2col(b, (3, 2), (2, 1), (1, 2), out=first)
    assert again is first
    np.testing.assert_array_equal(again, im2col(b, (3, 2), (2, 1), (1, 2)))
    other = im2col(b[:, :5], (3, 2), (2, 1), (1, 2), out=first)  # another geometry: a fresh array
    assert other is not first and other.shape != first.shape


@pytest.mark.parametrize("C", [1, 5])
def test_im2col_ones_column(C):
    """The bias column: col with ones appended, in both layouts, reusable too."""
    x = np.random.default_rng(C).standard_normal((2, 6, 5, C))
    plain = im2col(x, (2, 3))
    with_ones = im2col(x, (2, 3), ones=True)
    assert with_ones.shape == (plain.shape[0], plain.shape[1] + 1)
    np.testing.assert_array_equal(with_ones[:, :-1], plain)
    assert (with_ones[:, -1] == 1).all()
    assert im2col(2 * x, (2, 3), out=with_ones, ones=True) is with_ones
    np.testing.assert_array_equal(with_ones[:, :-1], 2 * plain)
