"""The built-in workloads: MNIST-1D (against the mnist1d package and hand-counted parameters),
shakespeare-char (the shipped text, windows, causality, bits per character) and cifar10-resnet
(on tiny fake CIFAR files written here)."""

import math
import pickle
import random

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from optimlab.engine.training import train
from optimlab.tasks import get_task, task_names
from optimlab.tasks.mnist1d import load_mnist1d
from optimlab.tasks.text import CharTransformer, char_windows, read_shakespeare


@pytest.fixture(scope="module")
def mnist1d_reference():
    """The package's own generator with its default arguments (seed 42): the independent reference."""
    from mnist1d.data import get_dataset_args, make_dataset

    return make_dataset(get_dataset_args())


def test_mnist1d_is_the_packages_default_data(mnist1d_reference):
    data = load_mnist1d()
    assert data.x.shape == (4000, 40) and data.x_test.shape == (1000, 40)
    assert data.y.shape == (4000,) and data.y_test.shape == (1000,) and data.num_classes == 10
    np.testing.assert_array_equal(data.x.numpy(), mnist1d_reference["x"])
    np.testing.assert_array_equal(data.y.numpy(), mnist1d_reference["y"])
    np.testing.assert_array_equal(data.x_test.numpy(), mnist1d_reference["x_test"])
    np.testing.assert_array_equal(data.y_test.numpy(), mnist1d_reference["y_test"])


def test_mnist1d_generation_is_deterministic_and_leaves_global_generators_alone():
    np.random.seed(7)
    random.seed(7)
    expected_np, expected_py = np.random.rand(), random.random()
    np.random.seed(7)
    random.seed(7)
    from optimlab.tasks import mnist1d

    mnist1d._generate.cache_clear()
    first = load_mnist1d(seed=3)
    assert (np.random.rand(), random.random()) == (expected_np, expected_py)
    mnist1d._generate.cache_clear()
    second = load_mnist1d(seed=3)
    assert torch.equal(first.x, second.x) and torch.equal(first.y, second.y)
    assert not torch.equal(first.x, load_mnist1d(seed=4).x)


def test_mnist1d_tasks_split_sizes_and_paper_defaults():
    task = get_task("mnist1d-mlp")
    assert (task.num_train, len(task.split.x_val), len(task.split.x_test)) == (4000, 0, 1000)
    assert task.default_batch_size == 100 and task.default_epochs * 4000 // 100 == 6000  # the paper's 6000 steps
    held = get_task("mnist1d-mlp", val_fraction=0.1, seed=1)
    assert (held.num_train, len(held.split.x_val), len(held.split.x_test)) == (3600, 400, 1000)
    again = get_task("mnist1d-mlp", val_fraction=0.1, seed=1)
    assert torch.equal(held.split.x_val, again.split.x_val)
    assert all(name in task_names() for name in ("mnist1d-logistic", "mnist1d-mlp", "mnist1d-cnn", "mnist1d-gru"))


@pytest.mark.parametrize("model, count", [
    ("logistic", 40 * 10 + 10),
    ("mlp", (40 * 100 + 100) + (100 * 100 + 100) + (100 * 10 + 10)),
    ("cnn", (1 * 25 * 5 + 25) + 2 * (25 * 25 * 3 + 25) + (25 * 5 * 10 + 10)),  # lengths 40 -> 19 -> 10 -> 5
    ("gru", 2 * 3 * (6 * 1 + 6 * 6 + 6 + 6) + (40 * 12 * 10 + 10)),  # bidirectional, 3 gates, 2 bias sets
])
def test_mnist1d_models_have_the_papers_sizes(model, count):
    task = get_task(f"mnist1d-{model}")
    net = task.make_model()
    assert sum(p.numel() for p in net.parameters()) == count
    assert net(task.split.x_train[:5]).shape == (5, 10)


def test_mnist1d_mlp_is_the_residual_formula():
    torch.manual_seed(0)
    net = get_task("mnist1d-mlp").make_model().double()
    x = torch.randn(3, 40, dtype=torch.float64)
    h1 = torch.relu(x @ net.linear1.weight.T + net.linear1.bias)
    h2 = h1 + torch.relu(h1 @ net.linear2.weight.T + net.linear2.bias)
    torch.testing.assert_close(net(x), h2 @ net.linear3.weight.T + net.linear3.bias)


def test_mnist1d_logistic_trains_through_the_engine():
    task = get_task("mnist1d-logistic", val_fraction=0.1)
    trace = train("adam:lr=0.01", task, epochs=3, seed=0)
    assert trace.epochs[-1]["train_loss"] < trace.epochs[0]["train_loss"]
    assert trace.epochs[-1]["val_metric"] > 0.15  # chance is 0.1


def test_shakespeare_text_is_shipped_plain():
    text = read_shakespeare()
    assert len(text) == 1_006_384 and text.isascii()
    assert "gutenberg" not in text.lower()
    assert "To be, or not to be" in text


def test_char_windows_shift_by_one():
    codes = torch.arange(23)
    x, y = char_windows(codes, 5)
    assert x.shape == y.shape == (4, 5)
    assert torch.equal(x[1], torch.arange(5, 10)) and torch.equal(y[1], torch.arange(6, 11))


def test_shakespeare_task_split_and_determinism():
    task = get_task("shakespeare-char:block=32,chars=64000")
    n_train, n_val = int(0.8 * 64000), int(0.1 * 64000)
    assert task.num_train == (n_train - 1) // 32 and len(task.split.x_val) == (n_val - 1) // 32
    text = read_shakespeare()
    vocab = sorted(set(text))
    decoded = "".join(vocab[c] for c in task.split.x_train[0].tolist())
    assert decoded == text[:32]
    other = get_task("shakespeare-char:block=32,chars=64000")
    assert torch.equal(task.split.x_val, other.split.x_val) and task.metric_name == "bpc"


def test_transformer_is_causal():
    torch.manual_seed(0)
    net = CharTransformer(vocab=11, block=8, width=16, depth=2, heads=2)
    codes = torch.randint(0, 11, (2, 8))
    changed = codes.clone()
    changed[:, 5] = (changed[:, 5] + 1) % 11
    torch.testing.assert_close(net(codes)[:, :5], net(changed)[:, :5])
    assert not torch.allclose(net(codes)[:, 5:], net(changed)[:, 5:])


def test_shakespeare_evaluation_is_cross_entropy_in_bits():
    task = get_task("shakespeare-char:block=16,width=16,depth=1,heads=2,chars=20000")
    torch.manual_seed(0)
    net = task.make_model()
    loss, bpc = task.evaluate(net, "val")
    x, y = task.split.x_val, task.split.y_val
    with torch.no_grad():
        reference = F.cross_entropy(net(x).reshape(-1, task.num_classes), y.reshape(-1)).item()
    assert loss == pytest.approx(reference, rel=1e-5)
    assert bpc == pytest.approx(reference / math.log(2), rel=1e-5)
    assert reference == pytest.approx(math.log(task.num_classes), rel=0.05)  # N(0, 0.02) weights: near uniform


def _write_cifar(folder, n_per_batch=12):
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    for name in [f"data_batch_{i}" for i in range(1, 3)] + ["test_batch"]:
        batch = {b"data": rng.integers(0, 256, (n_per_batch, 3072), dtype=np.uint8),
                 b"labels": rng.integers(0, 10, n_per_batch).tolist()}
        with open(folder / name, "wb") as handle:
            pickle.dump(batch, handle, protocol=2)


def test_cifar10_resnet_on_fake_files(tmp_path):
    _write_cifar(tmp_path / "cifar-10-batches-py")
    task = get_task("cifar10-resnet", data_dir=str(tmp_path), val_fraction=0.25)
    assert (task.num_train, len(task.split.x_val), len(task.split.x_test)) == (18, 6, 12)
    net = task.make_model()
    assert net(task.split.x_train[:4]).shape == (4, 10)
    trace = train("sgd:lr=0.05", task, epochs=1, batch_size=6, seed=0)
    assert trace.meta["steps"] == 3 and math.isfinite(trace.epochs[-1]["train_loss"])
    deeper = get_task("cifar10-resnet:blocks=3", data_dir=str(tmp_path), val_fraction=0.25).make_model()
    convs = sum(isinstance(m, torch.nn.Conv2d) and m.kernel_size == (3, 3) for m in deeper.modules())
    assert convs == 19  # ResNet-20: 19 conv3x3 + the linear layer


def test_cifar10_resnet_without_files_is_one_clear_error(tmp_path):
    with pytest.raises(ValueError, match="--data-dir"):
        get_task("cifar10-resnet")
    with pytest.raises(FileNotFoundError, match="CIFAR-10"):
        get_task("cifar10-resnet", data_dir=str(tmp_path))
