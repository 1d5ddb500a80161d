"""POST /api/live/slice: the engine's training and the slice checked against a hand-written reference
(full-batch SGD by torch.optim from the same init, the directions normalized by hand with numpy),
and its caps."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from fastapi.testclient import TestClient

from optimlab.tasks import get_task
from optimlab.web.app import create_app


@pytest.fixture(scope="module")
def client() -> TestClient:
    return TestClient(create_app())


@pytest.fixture(scope="module")
def answer(client) -> dict:
    body = {"optimizers": [{"optimizer": "gd", "lr": 0.5}, {"optimizer": "momentum", "lr": 0.1, "momentum": 0.9}],
            "task": "digits-softmax", "steps": 12, "every": 5, "resolution": 5, "span": 0.5, "seed": 3}
    response = client.post("/api/live/slice", json=body)
    assert response.status_code == 200, response.text
    return response.json()


def reference_gd(steps: int, lr: float, seed: int):
    """Full-batch torch.optim.SGD on digits-softmax from the engine's init (torch.manual_seed(seed))."""
    task = get_task("digits-softmax")
    torch.manual_seed(seed)
    model = task.make_model()
    inputs, targets = task.data("train")
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    for _ in range(steps):
        optimizer.zero_grad()
        task.objective(model, inputs, targets).backward()
        optimizer.step()
    return task, model, inputs, targets


def hand_direction(weights: list[np.ndarray], generator: torch.Generator) -> list[np.ndarray]:
    direction = []
    for weight in weights:
        noise = torch.randn(weight.shape, generator=generator, dtype=torch.float64).numpy()
        if weight.ndim == 1:
            direction.append(np.zeros_like(noise))
        else:
            scale = np.linalg.norm(weight, axis=1, keepdims=True) / np.linalg.norm(noise, axis=1, keepdims=True)
            direction.append(noise * scale)
    return direction


def test_slice_center_and_corner_match_a_hand_reference(answer):
    task, model, inputs, targets = reference_gd(12, 0.5, seed=3)
    with torch.no_grad():
        expected_center = float(task.objective(model, inputs, targets))
    assert answer["center_loss"] == pytest.approx(expected_center, rel=1e-5)  # float32 training
    assert answer["runs"][0]["final_loss"] == pytest.approx(expected_center, rel=1e-5)
    assert answer["losses"][2][2] == pytest.approx(expected_center, rel=1e-5)  # (0, 0): the middle of 5 x 5
    assert answer["alphas"] == pytest.approx([-0.5, -0.25, 0.0, 0.25, 0.5], abs=1e-15)
    # the corner alpha = beta = 0.5, with the directions drawn from seed 3 and normalized by hand
    weights = [p.detach().double().numpy() for p in model.parameters()]
    generator = torch.Generator().manual_seed(3)
    d1, d2 = hand_direction(weights, generator), hand_direction(weights, generator)
    with torch.no_grad():
        for parameter, w, u, v in zip(model.parameters(), weights, d1, d2):
            parameter.copy_(torch.from_numpy(w + 0.5 * u + 0.5 * v))
        corner = float(task.objective(model, inputs, targets))
    assert answer["losses"][4][4] == pytest.approx(corner, rel=1e-5)
    assert answer["losses"][4][4] > answer["losses"][2][2]


def test_paths_start_at_the_shared_init_and_end_where_projected(answer):
    gd, momentum = answer["runs"]
    assert gd["steps"] == [0, 5, 10, 12] and momentum["steps"] == [0, 5, 10, 12]
    assert len(gd["alpha"]) == len(gd["beta"]) == 4
    assert (gd["alpha"][-1], gd["beta"][-1]) == pytest.approx((0.0, 0.0), abs=1e-6)  # the center itself
    # the same init: both paths start at the same projected point
    assert (gd["alpha"][0], gd["beta"][0]) == pytest.approx((momentum["alpha"][0], momentum["beta"][0]), rel=1e-9)
    assert momentum["optimizer"] == "momentum:lr=0.1,momentum=0.9" and momentum["final_loss"] > 0
    assert answer["stopped"] is None and gd["outcome"] == "completed"


def test_requests_over_the_caps_are_refused(client):
    gd = [{"optimizer": "gd", "lr": 0.5}]
    too_many = client.post("/api/live/slice", json={"optimizers": gd, "steps": 2000, "every": 1})
    assert too_many.status_code == 422 and "at most 200" in too_many.json()["message"]
    for body, field in (({"optimizers": gd * 4}, "optimizers"), ({"optimizers": []}, "optimizers"),
                        ({"optimizers": gd, "resolution": 42}, "resolution"),
                        ({"optimizers": gd, "steps": 2001}, "steps"),
                        ({"optimizers": gd, "task": "cifar10-cnn"}, "task"),
                        ({"optimizers": [{"optimizer": "lbfgs"}]}, "optimizer"),
                        ({"optimizers": [{"optimizer": "gd", "lr": -1}]}, "lr"),
                        ({"optimizers": gd, "span": 0}, "span"), ({"optimizers": gd, "unknown": 1}, "unknown")):
        response = client.post("/api/live/slice", json=body)
        assert response.status_code == 422 and field in response.json()["message"], body
        assert "\n" not in response.json()["message"]


def test_time_budget_stops_training():
    budget_client = TestClient(create_app(max_seconds=0.3))
    body = {"optimizers": [{"optimizer": "gd", "lr": 0.5}] * 3, "task": "digits-softmax", "steps": 2000,
            "every": 20, "resolution": 3}
    answer = budget_client.post("/api/live/slice", json=body).json()
    assert answer["stopped"] == "time budget"
    first = answer["runs"][0]
    assert first["stopped"] == "time budget" and first["steps"][-1] < 2000
    assert answer["runs"][-1]["outcome"] == "not run" and answer["runs"][-1]["alpha"] == []
