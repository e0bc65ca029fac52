"""Training data sent to Dask workers in 8 bits when that loses nothing (docs/paths.md, "Dask's scaling").

MNIST's images reach the trainers as float64 ``k / 255`` (``load_mnist``: ``x.astype(dtype); x /= 255``),
440 MB for the whole set, and the client sends them to every worker of a map
(``Client.scatter(broadcast=True)``): at 8 workers, 3.5 GB through the client before any unit can start.
The pixels themselves are 55 MB of ``uint8``. ``pack`` replaces each floating array of a ``Data`` whose
every value is exactly ``float64(k / 255)`` cast to the array's dtype (one correctly rounded division,
then the cast: the same bits on every machine) by its codes ``k``, after checking on the client that
decoding gives back the very same bits; any other array travels as it is. A worker decodes once per
map: the decoded ``Data`` is kept on the packed object, which Dask hands to every unit of the map, and
each decoded array is kept for later maps that send the same codes (``Codes.decode``).
"""
import collections
import dataclasses
import hashlib

import numpy as np

LEVELS = 255  # MNIST's pixels: 0..255


CHUNK = 1 << 20  # elements encoded at a time: the pass stays in the cache
DECODED_KEPT = 4  # decoded arrays a process keeps for later maps: a training and a test set, in two dtypes
_DECODED = collections.OrderedDict()  # (digest of the codes, shape, dtype) -> decoded array, oldest first


def _table(dtype) -> np.ndarray:
    """``float64(k / LEVELS)`` cast to ``dtype`` for k = 0..LEVELS: each code's value, one division each."""
    return (np.arange(LEVELS + 1, dtype=np.float64) / LEVELS).astype(dtype)


@dataclasses.dataclass
class Codes:
    """``k`` (uint8) standing for the array ``(k / LEVELS in float64).astype(dtype)``."""

    codes: np.ndarray
    dtype: str

    def decode(self) -> np.ndarray:
        """The array, read-only, on a 64-byte boundary (``experiments.distributed.align``).

        Kept for the next maps (``DECODED_KEPT``): the experiments of a run mostly train on the same MNIST,
        and a fresh 440 MB costs a worker more in page faults (0.8 s here) than the decoding itself
        (0.07 s). The key is the codes' digest, so only the same bits find it; read-only, so that a unit
        writing into its data fails there rather than changing another map's.
        """
        key = (hashlib.blake2b(np.ascontiguousarray(self.codes).data, digest_size=16).digest(),
               self.codes.shape, self.dtype)
        if key in _DECODED:
            _DECODED.move_to_end(key)
            return _DECODED[key]
        out = self._decode()
        out.flags.writeable = False
        _DECODED[key] = out
        while len(_DECODED) > DECODED_KEPT:
            _DECODED.popitem(last=False)
        return out

    def _decode(self) -> np.ndarray:
        from experiments.distributed import aligned_empty

        # The table's arithmetic, element by element (a lookup in the table is slower than dividing):
        # float64(k) / LEVELS, correctly rounded, then the cast, a chunk at a time into the output.
        out = aligned_empty(self.codes.shape, self.dtype)
        codes, flat = self.codes.reshape(-1), out.reshape(-1)
        for start in range(0, flat.size, CHUNK):
            part = slice(start, start + CHUNK)
            if self.dtype == "float64":
                np.divide(codes[part], LEVELS, out=flat[part], dtype=np.float64)
            else:
                flat[part] = np.divide(codes[part], LEVELS, dtype=np.float64)
        return out


def encode(a):
    """``Codes`` for ``a`` when they decode to ``a`` bit for bit, else ``a`` itself."""
    if not isinstance(a, np.ndarray) or a.dtype not in (np.float64, np.float32) or a.size == 0:
        return a
    flat = np.ascontiguousarray(a).reshape(-1)
    bits = np.uint64 if a.dtype == np.float64 else np.uint32
    table = _table(a.dtype)
    codes = np.empty(flat.size, dtype=np.uint8)
    for start in range(0, flat.size, CHUNK):
        part = flat[start:start + CHUNK]
        k = np.rint(part * LEVELS)
        if not (k.min() >= 0 and k.max() <= LEVELS):  # NaN fails both
            return a
        codes[start:start + CHUNK] = k
        # Bits, not values: -0.0 must not pass for 0.
        if not np.array_equal(table[codes[start:start + CHUNK]].view(bits), part.view(bits)):
            return a
    return Codes(codes.reshape(a.shape), a.dtype.name)


class Packed:
    """A dataclass of arrays (``Data``) with its arrays encoded where that is exact; ``unpack()`` decodes
    once and keeps the result."""

    def __init__(self, obj):
        self.cls = type(obj)
        self.fields = {f.name: encode(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
        self._unpacked = None

    def __getstate__(self):
        return {"cls": self.cls, "fields": self.fields}

    def __setstate__(self, state):
        self.cls, self.fields, self._unpacked = state["cls"], state["fields"], None

    @property
    def nbytes(self) -> int:
        return sum((v.codes if isinstance(v, Codes) else v).nbytes for v in self.fields.values()
                   if isinstance(v, (Codes, np.ndarray)))

    def unpack(self):
        if self._unpacked is None:
            self._unpacked = self.cls(**{k: v.decode() if isinstance(v, Codes) else v
                                         for k, v in self.fields.items()})
        return self._unpacked


def pack(obj):
    """``Packed(obj)`` for a dataclass instance (``Data``), anything else as it is."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return Packed(obj)
    return obj


def unpack(obj):
    return obj.unpack() if isinstance(obj, Packed) else obj
