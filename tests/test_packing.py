"""Data sent to workers in 8 bits where that is exact (experiments.packing)."""
import pickle

import numpy as np
import pytest

from experiments.packing import Codes, Packed, pack, unpack
from experiments.training import Data


def pixels(n, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, 784), dtype=np.uint8)


def test_mnist_like_images_travel_as_codes_and_come_back_bit_for_bit():
    k = pixels(50)
    x64 = k.astype(np.float64)
    x64 /= 255  # as load_mnist normalises
    x32 = x64.astype(np.float32)  # as a float32 run casts
    labels = np.arange(50) % 10
    for x in (x64, x32):
        data = Data(x, labels, x[:10], labels[:10])
        packed = pack(data)
        assert isinstance(packed.fields["x_train"], Codes) and packed.fields["t_train"] is labels
        wire = pickle.loads(pickle.dumps(packed))
        assert len(pickle.dumps(packed)) < x.nbytes / 3
        back = unpack(wire)
        assert back.x_train.dtype == x.dtype
        assert back.x_train.tobytes() == x.tobytes() and back.x_test.tobytes() == x[:10].tobytes()
        assert unpack(wire) is back  # decoded once, then kept


def test_anything_else_travels_as_it_is():
    k = pixels(20)
    x = k / 255.0
    for other in (x * 1.0000001, x - 0.5, np.where(x == 0, -0.0, x), np.full_like(x, np.nan),
                  k.astype(np.float64)):  # not k / 255, out of range, -0.0, NaN, 0..255 unscaled
        packed = Packed(Data(other, np.zeros(20)))
        assert packed.fields["x_train"] is other
        assert unpack(packed).x_train is other
    assert pack((1, 2)) == (1, 2)


def test_decoded_arrays_are_aligned_read_only_and_kept_for_the_next_map():
    """A worker decodes each distinct array once: a later map sending the same codes (another experiment on the
    same MNIST) gets the same array; a unit writing into it fails instead of changing the next map's data."""
    from experiments.distributed import ALIGNMENT
    from experiments.packing import DECODED_KEPT

    x = pixels(64, seed=1) / 255.0
    first = unpack(pickle.loads(pickle.dumps(pack(Data(x, np.zeros(64))))))
    again = unpack(pickle.loads(pickle.dumps(pack(Data(x.copy(), np.zeros(64))))))
    assert again.x_train is first.x_train  # a new map, the same bits: kept
    assert first.x_train.ctypes.data % ALIGNMENT == 0
    with pytest.raises(ValueError, match="read-only"):
        first.x_train[0, 0] = 1.0
    other = x.copy()
    other[0, 0] = 1 / 255 if x[0, 0] != 1 / 255 else 2 / 255  # one pixel differs: decoded afresh
    changed = unpack(pickle.loads(pickle.dumps(pack(Data(other, np.zeros(64))))))
    assert changed.x_train is not first.x_train and changed.x_train.tobytes() == other.tobytes()
    for seed in range(2, 2 + DECODED_KEPT):  # only the most recent few are kept
        unpack(pack(Data(pixels(8, seed) / 255.0, np.zeros(8))))
    assert unpack(pack(Data(x, np.zeros(64)))).x_train is not first.x_train
