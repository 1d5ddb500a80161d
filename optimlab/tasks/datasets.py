"""Datasets that need no network: the airfoil file shipped in the package, scikit-learn's bundled
data, synthetic linear regression, and MNIST / Fashion-MNIST / CIFAR-10 files from a user's folder.

Every loader returns a :class:`Dataset`: features ``x`` (N, ...) and targets ``y`` (N,), both
float64 tensors except class labels (int64). Images keep their shape (N, C, H, W).
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from typing import Callable

import numpy as np
import torch

from ..optim.validate import check_finite, check_nonnegative, check_positive_int

REGRESSION = "regression"
CLASSIFICATION = "classification"


@dataclass
class Dataset:
    name: str
    x: torch.Tensor
    y: torch.Tensor
    kind: str  # REGRESSION or CLASSIFICATION
    num_classes: int = 0
    description: str = ""
    x_test: torch.Tensor | None = None  # a published test split (MNIST, CIFAR), kept apart
    y_test: torch.Tensor | None = None

    @property
    def is_image(self) -> bool:
        return self.x.dim() == 4


def _labelled(name: str, x: np.ndarray, y: np.ndarray, kind: str, description: str) -> Dataset:
    x_tensor = torch.as_tensor(np.asarray(x, dtype=np.float64))
    if kind == CLASSIFICATION:
        y_tensor = torch.as_tensor(np.asarray(y, dtype=np.int64))
        num_classes = int(y_tensor.max().item()) + 1
    else:
        y_tensor = torch.as_tensor(np.asarray(y, dtype=np.float64))
        num_classes = 0
    return Dataset(name, x_tensor, y_tensor, kind, num_classes, description)


def read_airfoil_table() -> np.ndarray:
    """The 1503 x 6 airfoil table exactly as shipped (last column: sound pressure level, dB)."""
    text = resources.files("optimlab").joinpath("data/airfoil_self_noise.dat").read_text()
    return np.loadtxt(text.splitlines(), delimiter="\t", dtype=np.float64)


def load_airfoil(standardize: bool = True) -> Dataset:
    """D2L's ``get_data_ch11``: standardize every column (features AND target) over all 1503 rows
    with the population std, then keep the first 1500 rows. ``standardize=False``: raw units."""
    table = read_airfoil_table()
    if standardize:
        table = (table - table.mean(axis=0)) / table.std(axis=0)
    table = table[:1500]
    return _labelled("airfoil", table[:, :-1], table[:, -1], REGRESSION,
                     "NASA airfoil self-noise (1500 rows, 5 features, target: sound pressure level)")


def load_sklearn(name: str) -> Dataset:
    """scikit-learn's bundled data sets: digits (8x8 images), breast_cancer, wine, diabetes."""
    from sklearn import datasets as sk

    if name == "digits":
        bunch = sk.load_digits()
        images = bunch.images.reshape(-1, 1, 8, 8)
        return _labelled("digits", images, bunch.target, CLASSIFICATION,
                         "handwritten digits, 1797 images 8x8, 10 classes (scikit-learn)")
    loaders: dict[str, tuple[Callable, str, str]] = {
        "breast_cancer": (sk.load_breast_cancer, CLASSIFICATION, "breast cancer Wisconsin, 569 x 30, 2 classes"),
        "wine": (sk.load_wine, CLASSIFICATION, "wine recognition, 178 x 13, 3 classes"),
        "diabetes": (sk.load_diabetes, REGRESSION, "diabetes progression, 442 x 10, regression"),
    }
    if name not in loaders:
        raise ValueError(f"unknown scikit-learn data set {name!r}; choose one of: digits, {', '.join(loaders)}")
    loader, kind, description = loaders[name]
    bunch = loader(scaled=False) if name == "diabetes" else loader()
    return _labelled(name, bunch.data, bunch.target, kind, description + " (scikit-learn)")


MAX_SYNTHETIC_KAPPA = 1e12  # beyond it the small feature scales underflow float32 training
MAX_SYNTHETIC_NOISE = 1e6


def make_synthetic_linear(n: int = 1000, d: int = 10, noise: float = 0.1, kappa: float = 1.0,
                          seed: int = 0) -> Dataset:
    """y = X w* + noise * e with X = Z diag(s), Z and e standard normal, w* ~ N(0, I).

    The feature scales s_j fall geometrically from 1 to 1/sqrt(kappa), so the Hessian of the
    squared loss, E[x x^T] = diag(s^2), has condition number ``kappa``.
    """
    check_positive_int("n", n)
    check_positive_int("d", d)
    if check_nonnegative("noise", noise) > MAX_SYNTHETIC_NOISE:
        raise ValueError(f"noise={noise!r} must be at most {MAX_SYNTHETIC_NOISE:g}")
    if not 1 <= check_finite("kappa", kappa) <= MAX_SYNTHETIC_KAPPA:
        raise ValueError(f"kappa={kappa!r} must be from 1 to {MAX_SYNTHETIC_KAPPA:g} (a condition number)")
    generator = torch.Generator().manual_seed(seed)
    exponents = torch.linspace(0, 1, d, dtype=torch.float64) if d > 1 else torch.zeros(1, dtype=torch.float64)
    scales = float(kappa) ** (-0.5 * exponents)
    x = torch.randn(n, d, generator=generator, dtype=torch.float64) * scales
    w_true = torch.randn(d, generator=generator, dtype=torch.float64)
    y = x @ w_true + noise * torch.randn(n, generator=generator, dtype=torch.float64)
    return Dataset("synthetic", x, y, REGRESSION, 0,
                   f"synthetic linear regression: {n} x {d}, noise {noise:g}, condition number {kappa:g}")


__all__ = ["Dataset", "REGRESSION", "CLASSIFICATION", "load_airfoil", "read_airfoil_table",
           "load_sklearn", "make_synthetic_linear"]
