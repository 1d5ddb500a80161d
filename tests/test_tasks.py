"""Tasks: names, splits, standardization, the airfoil data exactly as D2L prepares it, inits."""

import hashlib
from importlib import resources

import numpy as np
import pytest
import torch

from optimlab.tasks import get_task, task_names
from optimlab.tasks.datasets import make_synthetic_linear

AIRFOIL_SHA1 = "76e5be1548fd8222e5074cf0faae75edff8cf93f"  # from data/README.md (the D2L file)


def test_shipped_airfoil_file_is_the_published_one():
    raw = resources.files("optimlab").joinpath("data/airfoil_self_noise.dat").read_bytes()
    assert hashlib.sha1(raw).hexdigest() == AIRFOIL_SHA1
    assert resources.files("optimlab").joinpath("data/README.md").read_text().count("Creative Commons") == 1


def test_airfoil_linear_is_d2l_get_data_ch11():
    # D2L: data = (data - data.mean(axis=0)) / data.std(axis=0); first 1500 rows; X = data[:, :-1], y = data[:, -1]
    path = resources.files("optimlab").joinpath("data/airfoil_self_noise.dat")
    table = np.genfromtxt(str(path), dtype=np.float64, delimiter="\t")  # D2L: float32; we standardize in float64
    table = (table - table.mean(axis=0)) / table.std(axis=0)
    task = get_task("airfoil-linear")
    assert task.num_train == 1500 and len(task.split.x_val) == 0
    np.testing.assert_allclose(task.split.x_train.numpy(), table[:1500, :-1], atol=1e-6)
    np.testing.assert_allclose(task.split.y_train.numpy(), table[:1500, -1], atol=1e-6)
    model = task.make_model()  # D2L: w ~ N(0, 0.01^2), b = 0
    assert model.linear.bias.item() == 0 and model.linear.weight.abs().max() < 0.06
    y_hat = model(task.split.x_train)
    expected = ((y_hat - task.split.y_train) ** 2 / 2).mean()
    assert torch.isclose(task.objective(model, task.split.x_train, task.split.y_train), expected)


def test_names_and_unknown_name():
    for name in ("airfoil-linear", "digits-mlp", "digits-softmax", "digits-cnn", "diabetes-linear",
                 "breast_cancer-softmax", "wine-softmax", "synthetic-linear", "mnist-mlp", "cifar10-cnn"):
        assert name in task_names()
    with pytest.raises(ValueError, match="unknown task 'digits-resnet'.*digits-mlp"):
        get_task("digits-resnet")
    with pytest.raises(ValueError, match="unknown option 'foo'"):
        get_task("digits-mlp:foo=1")
    with pytest.raises(ValueError, match="--data-dir"):
        get_task("mnist-mlp")
    with pytest.raises(ValueError, match="unknown init"):
        get_task("digits-mlp", init="huge")


def test_split_is_seeded_and_disjoint():
    a, b, c = get_task("wine-softmax", seed=1), get_task("wine-softmax", seed=1), get_task("wine-softmax", seed=2)
    assert torch.equal(a.split.x_train, b.split.x_train)
    assert not torch.equal(a.split.x_train, c.split.x_train)
    digits = get_task("digits-softmax", standardize=False)
    sizes = [len(digits.split.x_train), len(digits.split.x_val), len(digits.split.x_test)]
    assert sum(sizes) == 1797 and sizes[1] == round(0.2 * 1797) and sizes[2] == round(0.1 * 1797)
    rows = {tuple(r.flatten().tolist()) for x in (digits.split.x_train, digits.split.x_val) for r in x}
    assert len(rows) > 0.99 * (sizes[0] + sizes[1])  # almost no duplicates across splits


def test_standardize_uses_training_statistics():
    task = get_task("breast_cancer-softmax")
    x = task.split.x_train.double()
    assert torch.allclose(x.mean(0), torch.zeros(30, dtype=torch.float64), atol=1e-6)
    assert torch.allclose(x.std(0, unbiased=False), torch.ones(30, dtype=torch.float64), atol=1e-4)
    raw = get_task("breast_cancer-softmax", standardize=False)
    assert raw.split.x_train.max() > 100  # raw units: badly scaled features
    diabetes = get_task("diabetes-linear")
    assert abs(diabetes.split.y_train.mean().item()) < 1e-5


def test_synthetic_condition_number():
    data = make_synthetic_linear(n=20000, d=5, noise=0.0, kappa=100.0, seed=0)
    eigenvalues = torch.linalg.eigvalsh(data.x.T @ data.x / len(data.x))
    assert 80 < (eigenvalues.max() / eigenvalues.min()).item() < 125
    task = get_task("synthetic-linear:n=500,d=3,noise=0.5", standardize=False)
    assert task.num_train == 400 and task.input_shape == (3,)
    with pytest.raises(ValueError, match="kappa"):
        get_task("synthetic-linear:kappa=0.5")


@pytest.mark.parametrize("init, low, high", [("too-small", 0.5e-3, 2e-3), ("too-large", 0.5, 2.0)])
def test_init_scales(init, low, high):
    torch.manual_seed(0)
    model = get_task("digits-mlp", init=init).make_model()
    std = model.net[1].weight.std().item()
    assert low < std < high


def test_kaiming_and_xavier_variances():
    torch.manual_seed(0)
    task = get_task("digits-mlp:hidden=256", init="kaiming")
    weight = task.make_model().net[1].weight  # fan_in 64
    assert abs(weight.var().item() - 2 / 64) < 0.1 * 2 / 64
    weight = get_task("digits-mlp:hidden=256", init="xavier").make_model().net[1].weight
    assert abs(weight.var().item() - 2 / (64 + 256)) < 0.1 * 2 / (64 + 256)


def test_models_output_shapes():
    x = get_task("digits-cnn").split.x_train[:5]
    for name in ("digits-cnn", "digits-mlp", "digits-softmax"):
        assert get_task(name).make_model()(x).shape == (5, 10)
    assert get_task("diabetes-mlp").make_model()(get_task("diabetes-mlp").split.x_train[:5]).shape == (5,)
