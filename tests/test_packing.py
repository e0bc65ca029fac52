"""Data sent to workers in 8 bits where that is exact (experiments.packing)."""
import pickle

import numpy as np

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
