"""MNIST idx and CIFAR-10 pickle loaders, on tiny files written here from the published formats."""

import gzip
import pickle
import struct

import numpy as np
import pytest
import torch

from optimlab.engine.training import train
from optimlab.tasks import get_task
from optimlab.tasks.files import load_cifar10, load_mnist, read_idx


def write_idx(path, array: np.ndarray, compress: bool) -> None:
    # LeCun: magic = 0x00 0x00 <type 0x08 ubyte> <ndim>, then ndim big-endian int32 sizes, then data
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(struct.pack(">i", n) for n in array.shape)
    payload = header + array.astype(np.uint8).tobytes()
    if compress:
        path = path.with_name(path.name + ".gz")
        payload = gzip.compress(payload)
    path.write_bytes(payload)


def make_mnist_dir(folder, n_train=30, n_test=10, compress=True):
    rng = np.random.default_rng(0)
    arrays = {}
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        labels = np.arange(n) % 10
        write_idx(folder / f"{prefix}-images-idx3-ubyte", images, compress)
        write_idx(folder / f"{prefix}-labels-idx1-ubyte", labels, compress)
        arrays[prefix] = (images, labels)
    return arrays


@pytest.mark.parametrize("compress", [True, False])
def test_mnist_idx_roundtrip(tmp_path, compress):
    arrays = make_mnist_dir(tmp_path, compress=compress)
    data = load_mnist(tmp_path)
    assert data.x.shape == (30, 1, 28, 28) and data.x_test.shape == (10, 1, 28, 28)
    np.testing.assert_allclose(data.x[:, 0].numpy() * 255, arrays["train"][0], atol=1e-6)
    assert data.y.tolist() == arrays["train"][1].tolist() and data.num_classes == 10


def test_fashion_mnist_in_torchvision_layout_and_task(tmp_path):
    raw = tmp_path / "FashionMNIST" / "raw"
    raw.mkdir(parents=True)
    make_mnist_dir(raw, n_train=40, compress=False)
    task = get_task("fashion-mnist-cnn", data_dir=str(tmp_path), val_fraction=0.25)
    assert task.num_train == 30 and len(task.split.x_val) == 10 and len(task.split.x_test) == 10
    trace = train("sgd:lr=0.01", task, epochs=1, batch_size=8)
    assert trace.meta["steps"] == 4


def test_bad_idx_files(tmp_path):
    (tmp_path / "bad").write_bytes(b"\x00\x01\x08\x01abc")
    with pytest.raises(ValueError, match="not an idx file"):
        read_idx(tmp_path / "bad")
    write_idx(tmp_path / "short", np.zeros((4, 2), dtype=np.uint8), compress=False)
    (tmp_path / "short").write_bytes((tmp_path / "short").read_bytes()[:-1])
    with pytest.raises(ValueError, match="header says shape"):
        read_idx(tmp_path / "short")
    with pytest.raises(FileNotFoundError, match="train-images-idx3-ubyte"):
        load_mnist(tmp_path)


def write_cifar_batch(path, n, offset):
    rng = np.random.default_rng(offset)
    batch = {b"batch_label": b"tiny", b"labels": [(i + offset) % 10 for i in range(n)],
             b"data": rng.integers(0, 256, size=(n, 3072), dtype=np.uint8), b"filenames": [b"x.png"] * n}
    with open(path, "wb") as handle:
        pickle.dump(batch, handle, protocol=2)
    return batch


def test_cifar10_pickles(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    first = write_cifar_batch(folder / "data_batch_1", 6, 0)
    write_cifar_batch(folder / "data_batch_2", 4, 1)
    test = write_cifar_batch(folder / "test_batch", 5, 2)
    data = load_cifar10(tmp_path)
    assert data.x.shape == (10, 3, 32, 32) and data.x_test.shape == (5, 3, 32, 32)
    # row layout: 1024 red, then 1024 green, then 1024 blue values of a 32 x 32 image
    green = first[b"data"][2, 1024:2048].reshape(32, 32)
    np.testing.assert_allclose(data.x[2, 1].numpy() * 255, green, atol=1e-6)
    assert data.y[:6].tolist() == first[b"labels"] and data.y_test.tolist() == test[b"labels"]
    model = get_task("cifar10-cnn", data_dir=str(tmp_path)).make_model()
    assert model(torch.zeros(2, 3, 32, 32)).shape == (2, 10)


def test_cifar_refuses_code_in_pickles(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    folder = tmp_path
    with open(folder / "data_batch_1", "wb") as handle:
        pickle.dump({b"data": Evil(), b"labels": []}, handle)
    (folder / "test_batch").write_bytes((folder / "data_batch_1").read_bytes())
    with pytest.raises(pickle.UnpicklingError, match="refusing"):
        load_cifar10(folder)
