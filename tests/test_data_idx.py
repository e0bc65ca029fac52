"""IDX files: round trips, bad files named in the error, MNIST directories, torchvision's reader agrees."""
import gzip

import numpy as np
import pytest
import torch

from experiments.data import idx

DTYPES = [np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64]


@pytest.mark.parametrize("gz", [False, True])
def test_round_trip_random_shapes_and_dtypes(tmp_path, gz):
    rng = np.random.default_rng(0)
    for i in range(24):
        dtype = DTYPES[i % len(DTYPES)]
        shape = tuple(rng.integers(1, 6, size=rng.integers(1, 5)))
        a = (rng.normal(0, 50, shape)).astype(dtype)
        path = idx.write_idx(tmp_path / f"a{i}-idx{len(shape)}{'.gz' if gz else ''}", a)
        b = idx.read_idx(path)
        assert b.dtype == np.dtype(dtype) and b.dtype.isnative and b.shape == a.shape
        np.testing.assert_array_equal(a, b)


def test_bytes_follow_the_format(tmp_path):
    labels = np.array([5, 0, 4], dtype=np.uint8)
    raw = idx.write_idx(tmp_path / "labels-idx1-ubyte", labels).read_bytes()
    assert raw == bytes([0, 0, 8, 1, 0, 0, 0, 3, 5, 0, 4])  # magic 0x00000801, size 3 big-endian, values
    ints = idx.write_idx(tmp_path / "i", np.array([[1, -2]], dtype=np.int32)).read_bytes()
    assert ints == bytes([0, 0, 0x0C, 2, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 1, 255, 255, 255, 254])


def test_agrees_with_torchvision_reader(tmp_path):
    from torchvision.datasets.mnist import read_sn3_pascalvincent_tensor

    rng = np.random.default_rng(1)
    for dtype in (np.uint8, np.int16, np.int32, np.float32, np.float64):
        a = (rng.normal(0, 100, (3, 4, 5))).astype(dtype)
        path = idx.write_idx(tmp_path / f"t-{np.dtype(dtype).name}", a)
        theirs = read_sn3_pascalvincent_tensor(str(path), strict=False).numpy()
        np.testing.assert_array_equal(theirs, a)


def test_bad_files_give_errors_naming_the_file(tmp_path):
    good = idx.write_idx(tmp_path / "good-idx3-ubyte", np.zeros((2, 3, 3), np.uint8)).read_bytes()
    cases = {
        "wrong-magic": (b"\x01\x02" + good[2:], "not an IDX file: magic number 0102"),
        "unknown-type": (good[:2] + b"\x07" + good[3:], "not an IDX file"),
        "zero-dims": (good[:3] + b"\x00" + good[4:], "not an IDX file"),
        "empty": (b"", "not an IDX file"),
        "short-header": (good[:9], "truncated IDX header"),
        "truncated": (good[:-1], r"wrong length: the header says \(2, 3, 3\) values of uint8 \(18 bytes"),
        "too-long": (good + b"\x00", r"wrong length.*the file has 19"),
    }
    for name, (data, message) in cases.items():
        path = tmp_path / name
        path.write_bytes(data)
        with pytest.raises(ValueError, match=f"{name}.*{message}"):
            idx.read_idx(path)
    broken_gz = tmp_path / "broken.gz"
    broken_gz.write_bytes(gzip.compress(good)[:-8])
    with pytest.raises(ValueError, match="broken.gz: cannot read"):
        idx.read_idx(broken_gz)
    with pytest.raises(ValueError, match="cannot store dtype"):
        idx.write_idx(tmp_path / "c", np.zeros(3, np.complex64))


def mnist_like(rng, n_train=12, n_test=5):
    return {
        "train_images": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "train_labels": rng.integers(0, 10, n_train).astype(np.uint8),
        "test_images": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "test_labels": rng.integers(0, 10, n_test).astype(np.uint8),
    }


def test_torchvision_mnist_reads_the_written_layout(tmp_path):
    from torchvision.datasets import MNIST

    arrays = mnist_like(np.random.default_rng(2))
    raw = idx.write_torchvision_layout(tmp_path, arrays)
    assert raw == tmp_path / "MNIST" / "raw"
    for train, split in ((True, "train"), (False, "test")):
        ds = MNIST(str(tmp_path), train=train, download=False)
        assert ds.data.dtype == torch.uint8
        np.testing.assert_array_equal(ds.data.numpy(), arrays[f"{split}_images"])
        np.testing.assert_array_equal(ds.targets.numpy(), arrays[f"{split}_labels"])
    # and our reader finds them from the root, the MNIST/raw folder itself, or gzip-compressed
    for where in (tmp_path, raw):
        got = idx.read_mnist_dir(where)
        for k in arrays:
            np.testing.assert_array_equal(got[k], arrays[k])
    gz_dir = tmp_path / "gz"
    for split, (images, labels) in idx.FILES.items():
        idx.write_idx(gz_dir / f"{images}.gz", arrays[f"{split}_images"])
        idx.write_idx(gz_dir / f"{labels}.gz", arrays[f"{split}_labels"])
    got = idx.read_mnist_dir(gz_dir)
    np.testing.assert_array_equal(got["test_images"], arrays["test_images"])


def test_mnist_dir_checks(tmp_path):
    rng = np.random.default_rng(3)
    arrays = mnist_like(rng)
    with pytest.raises(FileNotFoundError, match="no train-images-idx3-ubyte"):
        idx.read_mnist_dir(tmp_path)
    bad = dict(arrays, train_labels=arrays["train_labels"][:-1])
    idx.write_torchvision_layout(tmp_path / "a", bad)
    with pytest.raises(ValueError, match="12 images but .*train-labels-idx1-ubyte has 11 labels"):
        idx.read_mnist_dir(tmp_path / "a")
    bad = dict(arrays, test_labels=np.full(5, 10, np.uint8))
    idx.write_torchvision_layout(tmp_path / "b", bad)
    with pytest.raises(ValueError, match="t10k-labels-idx1-ubyte: labels must be 0..9"):
        idx.read_mnist_dir(tmp_path / "b")
    bad = dict(arrays, train_images=np.zeros((12, 28, 27), np.uint8))
    idx.write_torchvision_layout(tmp_path / "c", bad)
    with pytest.raises(ValueError, match=r"train-images-idx3-ubyte: expected uint8 images \(N, 28, 28\)"):
        idx.read_mnist_dir(tmp_path / "c")


def test_the_data_command_reports_a_missing_or_bad_idx_folder_in_one_line(tmp_path, capsys):
    from experiments.__main__ import main

    with pytest.raises(SystemExit, match=r"experiments data: error: .*: no train-images-idx3-ubyte"):
        main(["data", "--root", str(tmp_path / "cache"), "--idx", str(tmp_path)])
    for name in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
                 "t10k-labels-idx1-ubyte"):
        (tmp_path / name).write_bytes(b"\x00\x00\x08")  # truncated headers
    with pytest.raises(SystemExit, match=r"experiments data: error: .*-ubyte: "):
        main(["data", "--root", str(tmp_path / "cache"), "--idx", str(tmp_path)])
