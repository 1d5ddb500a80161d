"""The streamed real-network endpoint POST /api/live/eos: what it streams and its caps.

References: the stability thresholds in closed form (2/lr for GD, 2(1+mu)/lr for heavy ball,
(2+2 b1)/((1-b1) lr) for Adam: 38/lr at b1 = 0.9), and the sharpness of a softmax regression
measured independently by torch.autograd.functional.hessian on the same model and data.
"""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient

from optimlab.web.app import create_app


@pytest.fixture(scope="module")
def client() -> TestClient:
    return TestClient(create_app())


def stream(client: TestClient, **body) -> list[dict]:
    with client.stream("POST", "/api/live/eos", json=body) as response:
        assert response.status_code == 200, response.read()
        assert response.headers["content-type"].startswith("application/x-ndjson")
        return [json.loads(line) for line in response.iter_lines() if line.strip()]


@pytest.mark.parametrize("optimizer,extra,threshold,compared", [
    ("gd", {}, 2 / 0.5, "sharpness"),
    ("momentum", {"momentum": 0.5}, 2 * (1 + 0.5) / 0.5, "sharpness"),
    ("adam", {"beta1": 0.9}, (2 + 2 * 0.9) / ((1 - 0.9) * 0.5), "preconditioned"),
])
def test_stream_reports_each_measurement_with_its_threshold(client, optimizer, extra, threshold, compared):
    messages = stream(client, optimizer=optimizer, lr=0.5, task="digits-softmax", steps=6, every=3, examples=64,
                      iterations=8, **extra)
    start, *steps, end = messages
    assert start["type"] == "start" and start["compared"] == compared
    assert start["threshold"] == pytest.approx(threshold, rel=1e-12)
    assert [m["step"] for m in steps] == [1, 3, 6] and all(m["type"] == "step" for m in steps)
    for message in steps:
        assert message["threshold"] == pytest.approx(threshold, rel=1e-12)
        assert message["sharpness"] > 0 and message["loss"] > 0
        assert (message["preconditioned_sharpness"] is not None) == (compared == "preconditioned")
    assert end["type"] == "end" and end["steps"] == 6 and end["stopped"] is None


def test_first_sharpness_equals_the_autograd_hessian(client):
    """Softmax regression on the first 64 digits: lambda_max of the full Hessian by autograd."""
    import torch

    from optimlab.tasks import get_task

    messages = stream(client, optimizer="gd", lr=0.1, task="digits-softmax", steps=1, every=1, examples=64,
                      iterations=40)
    task = get_task("digits-softmax")
    torch.manual_seed(0)
    model = task.make_model()
    inputs, targets = task.data("train")
    inputs, targets = inputs[:64], targets[:64]
    # the model after one GD step (the stream's step-1 row is measured after the update)
    params = list(model.parameters())
    shapes = [p.shape for p in params]
    full_inputs, full_targets = task.data("train")
    grads = torch.autograd.grad(task.loss_fn(model(full_inputs), full_targets), params)
    flat = torch.cat([(p - 0.1 * g).detach().reshape(-1) for p, g in zip(params, grads)]).double()

    def objective(vector: torch.Tensor) -> torch.Tensor:
        pieces, offset = {}, 0
        for (name, param), shape in zip(model.named_parameters(), shapes):
            count = param.numel()
            pieces[name] = vector[offset:offset + count].reshape(shape)
            offset += count
        output = torch.func.functional_call(model.double(), pieces, (inputs.double(),))
        return task.loss_fn(output, targets)

    hessian = torch.autograd.functional.hessian(objective, flat)
    expected = float(torch.linalg.eigvalsh(hessian)[-1])
    assert messages[1]["step"] == 1
    assert messages[1]["sharpness"] == pytest.approx(expected, rel=1e-3)


def test_requests_over_the_caps_are_refused(client):
    too_many = client.post("/api/live/eos", json={"steps": 2000, "every": 1})
    assert too_many.status_code == 422 and "at most 200" in too_many.json()["message"]
    for body, field in (({"optimizer": "lbfgs"}, "optimizer"), ({"task": "cifar10-cnn"}, "task"),
                        ({"lr": -1}, "lr"), ({"steps": 10**6}, "steps"), ({"unknown": 1}, "unknown")):
        response = client.post("/api/live/eos", json=body)
        assert response.status_code == 422 and field in response.json()["message"], body


def test_time_budget_ends_the_stream():
    budget_client = TestClient(create_app(max_seconds=0.5))
    messages = stream(budget_client, optimizer="gd", lr=0.5, task="digits-mlp", steps=1990, every=10)
    end = messages[-1]
    assert end["type"] == "end" and end["stopped"] == "time budget" and end["steps"] < 2000
