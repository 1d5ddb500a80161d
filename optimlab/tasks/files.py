"""MNIST / Fashion-MNIST (idx files) and CIFAR-10 (python pickles) from a user's directory.

Written against the published formats, without torchvision and without any download:

- idx (LeCun's MNIST page): 2 zero bytes, a type byte (0x08 = unsigned byte), a byte with the
  number of dimensions, one big-endian int32 per dimension, then the data in C order. Files may
  be gzip-compressed (``.gz``). Names: ``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``,
  ``t10k-images-idx3-ubyte``, ``t10k-labels-idx1-ubyte``.
- CIFAR-10 python version (Krizhevsky's page): ``data_batch_1`` .. ``data_batch_5`` and
  ``test_batch``, each a pickled dict with ``b"data"`` (10000 x 3072 uint8, rows of R, G, B planes
  of 32 x 32) and ``b"labels"``. Unpickling is restricted to numpy arrays and plain containers,
  so a crafted file cannot run code.
"""

from __future__ import annotations

import gzip
import io
import pickle
from pathlib import Path

import numpy as np
import torch

from .datasets import CLASSIFICATION, Dataset

_IDX_TYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: np.dtype(">i2"), 0x0C: np.dtype(">i4"),
              0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}


def read_idx(path: str | Path) -> np.ndarray:
    """The array stored in one idx file (gzip or raw)."""
    path = Path(path)
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_TYPES:
        raise ValueError(f"{path} is not an idx file (bad magic number {raw[:4].hex()})")
    ndim = raw[3]
    header_end = 4 + 4 * ndim
    shape = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    dtype = np.dtype(_IDX_TYPES[raw[2]])
    expected = int(np.prod(shape)) * dtype.itemsize
    if len(raw) - header_end != expected:
        raise ValueError(f"{path}: header says shape {shape} ({expected} bytes) but {len(raw) - header_end} bytes follow")
    return np.frombuffer(raw, dtype=dtype, offset=header_end).reshape(shape)


def _find_file(folders: list[Path], stem: str) -> Path:
    for folder in folders:
        for candidate in (folder / stem, folder / f"{stem}.gz"):
            if candidate.is_file():
                return candidate
        # some mirrors name the files train-images.idx3-ubyte
        dotted = stem.replace("-idx", ".idx")
        for candidate in (folder / dotted, folder / f"{dotted}.gz"):
            if candidate.is_file():
                return candidate
    searched = ", ".join(str(f) for f in folders)
    raise FileNotFoundError(f"{stem}[.gz] not found in {searched}")


def load_mnist(data_dir: str | Path, fashion: bool = False) -> Dataset:
    """MNIST or Fashion-MNIST from ``data_dir`` (or its MNIST/raw, FashionMNIST/raw, ... subfolders)."""
    root = Path(data_dir).expanduser()
    if not root.is_dir():
        raise FileNotFoundError(f"data directory {root} does not exist")
    names = ["fashion-mnist", "FashionMNIST/raw", "FashionMNIST"] if fashion else ["mnist", "MNIST/raw", "MNIST"]
    folders = [root] + [root / name for name in names]
    arrays = {}
    for split, prefix in (("train", "train"), ("test", "t10k")):
        images = read_idx(_find_file(folders, f"{prefix}-images-idx3-ubyte"))
        labels = read_idx(_find_file(folders, f"{prefix}-labels-idx1-ubyte"))
        if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
            raise ValueError(f"{root}: {prefix} images {images.shape} and labels {labels.shape} do not match")
        arrays[split] = (images, labels)
    name = "fashion-mnist" if fashion else "mnist"
    return _image_dataset(name, arrays, f"{name} from {root}")


class _ArrayUnpickler(pickle.Unpickler):
    """Unpickles only numpy arrays/dtypes and builtin containers (CIFAR batches need nothing else)."""

    _ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
                ("numpy", "ndarray"), ("numpy", "dtype"), ("codecs", "encode"), ("_codecs", "encode"),
                ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar")}

    def find_class(self, module: str, name: str):  # noqa: ANN201 (pickle's signature)
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a data file")
        return super().find_class(module, name)


def read_cifar_batch(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """(images N x 3 x 32 x 32 uint8, labels N) from one CIFAR-10 python batch file."""
    with open(path, "rb") as handle:
        batch = _ArrayUnpickler(io.BytesIO(handle.read()), encoding="bytes").load()
    data = np.asarray(batch[b"data"] if b"data" in batch else batch["data"], dtype=np.uint8)
    labels = np.asarray(batch[b"labels"] if b"labels" in batch else batch["labels"], dtype=np.int64)
    if data.ndim != 2 or data.shape[1] != 3 * 32 * 32 or len(data) != len(labels):
        raise ValueError(f"{path}: expected data N x 3072 and N labels, got {data.shape} and {labels.shape}")
    return data.reshape(-1, 3, 32, 32), labels


def load_cifar10(data_dir: str | Path) -> Dataset:
    """CIFAR-10 from ``data_dir`` or its ``cifar-10-batches-py`` subfolder."""
    root = Path(data_dir).expanduser()
    folder = root / "cifar-10-batches-py" if (root / "cifar-10-batches-py").is_dir() else root
    train_files = sorted(folder.glob("data_batch_*"))
    if not train_files or not (folder / "test_batch").is_file():
        raise FileNotFoundError(f"CIFAR-10 python batches (data_batch_1..5, test_batch) not found in {folder}")
    parts = [read_cifar_batch(path) for path in train_files]
    train = (np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]))
    return _image_dataset("cifar10", {"train": train, "test": read_cifar_batch(folder / "test_batch")},
                          f"CIFAR-10 from {folder}")


def _image_dataset(name: str, arrays: dict[str, tuple[np.ndarray, np.ndarray]], description: str) -> Dataset:
    def images(array: np.ndarray) -> torch.Tensor:
        tensor = torch.as_tensor(np.array(array, dtype=np.float64)) / 255.0
        return tensor.unsqueeze(1) if tensor.dim() == 3 else tensor

    (x_train, y_train), (x_test, y_test) = arrays["train"], arrays["test"]
    y_train_t = torch.as_tensor(np.array(y_train, dtype=np.int64))
    y_test_t = torch.as_tensor(np.array(y_test, dtype=np.int64))
    num_classes = max(10, int(max(y_train_t.max().item(), y_test_t.max().item())) + 1)  # 10 in all three
    return Dataset(name, images(x_train), y_train_t, CLASSIFICATION, num_classes, description,
                   x_test=images(x_test), y_test=y_test_t)


__all__ = ["read_idx", "load_mnist", "read_cifar_batch", "load_cifar10"]
