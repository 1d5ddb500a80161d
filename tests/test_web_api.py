"""The playground's JSON API (FastAPI's test client): answers checked against closed forms and
torch.optim, every invalid input answered with a 422 naming it, the caps, and the serving side."""

from __future__ import annotations

import asyncio
import math
import re
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np
import pytest
import torch
from fastapi.testclient import TestClient

from optimlab.landscapes import LANDSCAPES
from optimlab.optim.registry import OPTIMIZERS
from optimlab.web.app import STATIC_DIR, create_app, plotly_js_path
from optimlab.web.models import MAX_OPTIMIZERS, MAX_STEPS

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def client() -> TestClient:
    return TestClient(create_app())


def trace(client: TestClient, **body) -> dict:
    response = client.post("/api/trace", json=body)
    assert response.status_code == 200, response.text
    return response.json()


def rejected(client: TestClient, body: dict | bytes, *, contains: str) -> str:
    if isinstance(body, bytes):
        response = client.post("/api/trace", content=body, headers={"content-type": "application/json"})
    else:
        response = client.post("/api/trace", json=body)
    assert response.status_code == 422, response.text
    message = response.json()["message"]
    assert contains in message, message
    assert "\n" not in message
    return message


# ---- catalogues ------------------------------------------------------------------------------

def test_landscapes_lists_every_landscape_with_its_domain(client):
    rows = client.get("/api/landscapes").json()
    assert [row["name"] for row in rows] == list(LANDSCAPES)
    assert {row["dim"] for row in rows} == {1, 2}
    for row in rows:
        assert len(row["domain"]) == row["dim"] and len(row["start"]) == row["dim"]
        assert all(low < high for low, high in row["domain"])


def test_optimizers_carry_torch_defaults(client):
    rows = {row["name"]: row for row in client.get("/api/optimizers").json()}
    assert set(rows) == set(OPTIMIZERS)
    adam = {hp["name"]: hp for hp in rows["adam"]["hyperparameters"]}
    reference = torch.optim.Adam([torch.zeros(1, requires_grad=True)]).defaults
    assert adam["betas"]["default"] == list(reference["betas"]) and adam["betas"]["kind"] == "pair"
    assert adam["eps"]["default"] == reference["eps"]
    assert rows["nesterov"]["hyperparameters"][[h["name"] for h in rows["nesterov"]["hyperparameters"]].index("nesterov")]["default"] is True
    assert not {"foreach", "capturable", "differentiable"} & {hp["name"] for row in rows.values() for hp in row["hyperparameters"]}


def test_schedules_list_their_arguments(client):
    rows = {row["name"]: row for row in client.get("/api/schedules").json()}
    assert {"constant", "exponential", "step"} <= set(rows)
    assert "gamma" in [hp["name"] for hp in rows["exponential"]["hyperparameters"]]
    milestones = {hp["name"]: hp for hp in rows["multistep"]["hyperparameters"]}["milestones"]
    assert milestones["kind"] == "list" and milestones["required"] is True


def test_multistep_schedule_with_a_list_argument(client):
    # torch's MultiStepLR(milestones=[3, 6], gamma=0.5): lr 0.1 for steps 0-2, 0.05 for 3-5, 0.025 after.
    point = torch.zeros(1, requires_grad=True)
    optimizer = torch.optim.SGD([point], lr=0.1)
    scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=[3, 6], gamma=0.5)
    expected = []
    for _ in range(8):
        expected.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    data = trace(client, landscape="bowl", steps=8, optimizers=[{"name": "gd", "hyperparameters": {"lr": 0.1}}],
                 schedule={"name": "multistep", "hyperparameters": {"milestones": [3, 6], "factor": 0.5}})
    assert data["traces"][0]["lr"][1:] == pytest.approx(expected)


# ---- the surface -----------------------------------------------------------------------------

def test_surface_grid_matches_the_formula(client):
    data = client.get("/api/surface", params={"landscape": "valley", "resolution": 31}).json()
    xs, ys, z = np.array(data["x"]), np.array(data["y"]), np.array(data["z"])
    (x0, x1), (y0, y1) = data["domain"]
    np.testing.assert_allclose(xs, np.linspace(x0, x1, 31))
    expected = 0.1 * xs[None, :] ** 2 + 2 * ys[:, None] ** 2  # z[j][i] = f(x[i], y[j])
    np.testing.assert_allclose(z, expected, rtol=1e-12, atol=1e-12)
    assert data["f_star"] == 0.0


def test_surface_marks_the_saddle_and_the_xcos_minima(client):
    saddle = client.get("/api/surface", params={"landscape": "saddle", "resolution": 20}).json()
    kinds = {(p["kind"], tuple(round(v, 6) + 0.0 for v in p["x"])) for p in saddle["critical_points"]}
    assert ("saddle", (0.0, 0.0)) in kinds  # Hessian diag(2, -2) at the origin
    assert saddle["f_star"] is None  # unbounded below: no log gap to plot
    xcos = client.get("/api/surface", params={"landscape": "xcos", "resolution": 50}).json()
    assert xcos["y"] is None and len(xcos["z"]) == 50
    # Independent reference: roots of f'(x) = cos(pi x) - pi x sin(pi x) by scipy's brentq.
    from scipy.optimize import brentq
    derivative = lambda x: math.cos(math.pi * x) - math.pi * x * math.sin(math.pi * x)
    local, global_ = brentq(derivative, -0.5, -0.1), brentq(derivative, 0.8, 1.4)
    points = {p["kind"]: p["x"][0] for p in xcos["critical_points"]}
    assert points["minimum"] == pytest.approx(local, abs=1e-6)
    assert points["global minimum"] == pytest.approx(global_, abs=1e-6)
    assert xcos["f_star"] == pytest.approx(global_ * math.cos(math.pi * global_), abs=1e-9)


# ---- trajectories against independent references ---------------------------------------------

def test_gd_on_the_valley_follows_the_closed_form(client):
    data = trace(client, landscape="valley", start=[-5.0, -2.0], steps=15,
                 optimizers=[{"name": "gd", "hyperparameters": {"lr": 0.4}}])
    path = np.array(data["traces"][0]["x"])
    k = np.arange(16)
    # f = 0.1 x1^2 + 2 x2^2: each GD step multiplies x1 by (1 - 0.2 lr) and x2 by (1 - 4 lr).
    np.testing.assert_allclose(path[:, 0], -5.0 * (1 - 0.2 * 0.4) ** k, rtol=1e-10)
    np.testing.assert_allclose(path[:, 1], -2.0 * (1 - 4 * 0.4) ** k, rtol=1e-10)
    assert data["traces"][0]["label"] == "gd:lr=0.4"


def torch_reference(optimizer_class, kwargs, start, steps, gradient):
    point = torch.tensor(start, dtype=torch.float64, requires_grad=True)
    optimizer = optimizer_class([point], **kwargs)
    path = [point.detach().clone()]
    for _ in range(steps):
        optimizer.zero_grad()
        point.grad = gradient(point.detach())
        optimizer.step()
        path.append(point.detach().clone())
    return torch.stack(path).numpy()


@pytest.mark.parametrize("name, hyperparameters, reference, kwargs", [
    ("momentum", {"lr": 0.001, "momentum": 0.9}, torch.optim.SGD, {"lr": 0.001, "momentum": 0.9}),
    ("adam", {"lr": 0.1, "betas": [0.8, 0.99]}, torch.optim.Adam, {"lr": 0.1, "betas": (0.8, 0.99)}),
    ("rmsprop", {"lr": 0.01, "alpha": 0.9}, torch.optim.RMSprop, {"lr": 0.01, "alpha": 0.9}),
])
def test_trajectories_match_torch_optim(client, name, hyperparameters, reference, kwargs):
    data = trace(client, landscape="rosenbrock", start=[-1.5, 2.0], steps=40,
                 optimizers=[{"name": name, "hyperparameters": hyperparameters}])
    # Rosenbrock's gradient written out by hand (not autograd, not optimlab).
    def gradient(p):
        x, y = p
        return torch.stack([-2 * (1 - x) - 400 * x * (y - x**2), 200 * (y - x**2)])
    expected = torch_reference(reference, kwargs, [-1.5, 2.0], 40, gradient)
    np.testing.assert_allclose(np.array(data["traces"][0]["x"]), expected, rtol=1e-9, atol=1e-12)


def test_exponential_schedule_shrinks_each_step_in_closed_form(client):
    gamma, lr = 0.8, 0.4
    data = trace(client, landscape="valley", start=[-5.0, -2.0], steps=10,
                 schedule={"name": "exponential", "hyperparameters": {"gamma": gamma}},
                 optimizers=[{"name": "gd", "hyperparameters": {"lr": lr}}])
    result = data["traces"][0]
    assert result["lr"][1:] == pytest.approx([lr * gamma**j for j in range(10)])
    x2 = -2.0 * np.cumprod([1.0] + [1 - 4 * lr * gamma**j for j in range(10)])
    np.testing.assert_allclose([p[1] for p in result["x"]], x2, rtol=1e-10)
    assert data["schedule"] == "exponential:gamma=0.8"


def test_divergence_is_an_outcome_with_nulls_not_a_crash(client):
    # On f = x^2 (square) GD multiplies x by (1 - 2 lr) = -2.4 per step: it must diverge.
    data = trace(client, landscape="square", steps=200, optimizers=[{"name": "gd", "hyperparameters": {"lr": 1.7}}])
    result = data["traces"][0]
    assert result["outcome"] == "diverged"
    assert result["outcome_text"] == f"diverged at step {result['diverged_at']}"
    assert result["steps_run"] == result["diverged_at"] < 200
    assert abs(result["x"][1][0]) == pytest.approx(2.4 * 10.0)


def test_noise_is_seeded_and_one_dimensional_landscapes_run(client):
    body = dict(landscape="bowl", steps=20, noise=0.5, optimizers=[{"name": "sgd", "hyperparameters": {"lr": 0.1}}])
    first, again = trace(client, seed=3, **body), trace(client, seed=3, **body)
    other = trace(client, seed=4, **body)
    assert first["traces"][0]["x"] == again["traces"][0]["x"]
    assert first["traces"][0]["x"] != other["traces"][0]["x"]
    one_d = trace(client, landscape="cosh", start=[2.0], steps=5, optimizers=[{"name": "gd"}])
    assert one_d["dim"] == 1 and all(len(p) == 1 for p in one_d["traces"][0]["x"])


# ---- invalid input: 422 with one clear line ---------------------------------------------------

GD = [{"name": "gd"}]


def test_unknown_landscape(client):
    rejected(client, {"landscape": "everest", "optimizers": GD}, contains="unknown landscape 'everest'")
    response = client.get("/api/surface", params={"landscape": "everest"})
    assert response.status_code == 422 and "unknown landscape" in response.json()["message"]


def test_negative_lr(client):
    rejected(client, {"landscape": "bowl", "optimizers": [{"name": "adam", "hyperparameters": {"lr": -0.1}}]},
             contains="lr=-0.1 must be a finite number in [0, 1000]")


def test_steps_above_the_cap_and_below_one(client):
    rejected(client, {"landscape": "bowl", "steps": MAX_STEPS + 1, "optimizers": GD},
             contains=f"steps: Input should be less than or equal to {MAX_STEPS}")
    rejected(client, {"landscape": "bowl", "steps": 0, "optimizers": GD}, contains="steps")


def test_too_many_and_too_few_optimizers(client):
    rejected(client, {"landscape": "bowl", "optimizers": GD * (MAX_OPTIMIZERS + 1)},
             contains=f"at most {MAX_OPTIMIZERS} items")
    rejected(client, {"landscape": "bowl", "optimizers": []}, contains="optimizers")


@pytest.mark.parametrize("body, contains", [
    ({"landscape": "bowl", "optimizers": [{"name": "gd", "hyperparameters": {"lr": "1e-3x"}}]}, "lr='1e-3x' must be a finite number"),
    ({"landscape": "bowl", "steps": "many", "optimizers": GD}, "steps: Input should be a valid integer"),
    ({"landscape": "bowl", "steps": 10.5, "optimizers": GD}, "steps"),
    ({"landscape": "bowl", "start": [1.0, "a"], "optimizers": GD}, "start.1"),
    ({"landscape": "bowl", "noise": -1, "optimizers": GD}, "noise: Input should be greater than or equal to 0"),
    ({"landscape": "bowl", "optimizers": [{"name": "adam", "hyperparameters": {"betas": [0.9, 1.5]}}]}, "betas[1]=1.5 must be a finite number in [0, 1]"),
])
def test_malformed_numbers(client, body, contains):
    rejected(client, body, contains=contains)


@pytest.mark.parametrize("raw, contains", [
    (b'{"landscape": "bowl", "noise": NaN, "optimizers": [{"name": "gd"}]}', "noise: Input should be a finite number"),
    (b'{"landscape": "bowl", "start": [Infinity, 0], "optimizers": [{"name": "gd"}]}', "start.0: Input should be a finite number"),
    (b'{"landscape": "bowl", "optimizers": [{"name": "gd", "hyperparameters": {"lr": NaN}}]}', "lr"),
    (b'{"landscape": "bowl", "steps": 1e400, "optimizers": [{"name": "gd"}]}', "steps"),
    (b'{"landscape": "bowl", "optimizers": [', "JSON"),
])
def test_non_finite_and_broken_json(client, raw, contains):
    rejected(client, raw, contains=contains)


@pytest.mark.parametrize("body, contains", [
    ({"landscape": "bowl", "optimizers": [{"name": "sgdx"}]}, "unknown optimizer 'sgdx'"),
    ({"landscape": "bowl", "optimizers": [{"name": "gd", "hyperparameters": {"speed": 1}}]}, "unknown hyperparameter 'speed'"),
    ({"landscape": "bowl", "start": [1.0], "optimizers": GD}, "start=[1.0] has 1 coordinates; landscape 'bowl' is 2-D"),
    ({"landscape": "bowl", "schedule": {"name": "sometimes"}, "optimizers": GD}, "unknown schedule 'sometimes'"),
    ({"landscape": "bowl", "schedule": {"name": "exponential", "hyperparameters": {"gamma": 2}}, "optimizers": GD}, "gamma=2"),
    ({"landscape": "quadratic:kappa=-1", "optimizers": GD}, "kappa=-1"),
    ({"landscape": "bowl", "optimizers": GD, "colour": "red"}, "colour: Extra inputs are not permitted"),
])
def test_unknown_names_and_bad_arguments(client, body, contains):
    rejected(client, body, contains=contains)


def test_surface_resolution_is_capped(client):
    response = client.get("/api/surface", params={"landscape": "bowl", "resolution": 100000})
    assert response.status_code == 422 and "resolution" in response.json()["message"]


# ---- caps on work and concurrency -------------------------------------------------------------

def test_time_budget_stops_runs_early_with_the_steps_done_so_far():
    budget = 0.3
    budget_client = TestClient(create_app(max_seconds=budget))
    data = trace(budget_client, landscape="valley", start=[-5.0, -2.0], steps=MAX_STEPS,
                 optimizers=[{"name": "newton"}, {"name": "gd", "hyperparameters": {"lr": 0.01}}])
    assert data["truncated"] is True
    assert data["elapsed_seconds"] < budget + 1.0  # the budget is checked after every step
    # Newton (the engine's closure path, ~1 ms a step) cannot do 5000 steps in its share; GD (the
    # fast path) may finish them: the budget stops only what would overrun it.
    assert data["traces"][0]["stopped_early"]
    for result in data["traces"]:
        assert 0 < result["steps_run"] <= MAX_STEPS and len(result["x"]) == result["steps_run"] + 1
        assert None not in result["f"]
        if result["stopped_early"]:
            assert result["steps_run"] < MAX_STEPS
            assert f"(stopped at step {result['steps_run']} of {MAX_STEPS}: time budget)" in result["outcome_text"]
    # The steps done before the deadline are those of an unbounded run: GD's closed form.
    path = np.array(data["traces"][1]["x"])
    k = np.arange(len(path))
    np.testing.assert_allclose(path[:, 0], -5.0 * (1 - 0.2 * 0.01) ** k, rtol=1e-9)
    np.testing.assert_allclose(path[:, 1], -2.0 * (1 - 4 * 0.01) ** k, rtol=1e-9, atol=1e-300)
    newton = data["traces"][0]  # Newton on a quadratic lands on the minimum in one step
    assert newton["x"][1] == pytest.approx([0.0, 0.0], abs=1e-12) and newton["outcome"] == "converged"


def test_no_time_left_means_skipped():
    data = trace(TestClient(create_app(max_seconds=1e-9)), landscape="bowl", optimizers=GD * 2)
    assert [t["outcome"] for t in data["traces"]] == ["skipped", "skipped"]
    assert "time budget" in data["traces"][0]["outcome_text"] and data["truncated"] is True


def long_request() -> dict:
    return {"landscape": "rosenbrock", "steps": 1200, "optimizers": [{"name": "adam", "hyperparameters": {"lr": 0.01}}]}


def test_event_loop_keeps_serving_while_a_trace_computes():
    async def scenario() -> tuple[float, float]:
        transport = httpx.ASGITransport(app=create_app())
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
            began = time.perf_counter()
            slow = asyncio.create_task(http.post("/api/trace", json=long_request()))
            await asyncio.sleep(0.05)
            quick = [await http.get("/api/optimizers") for _ in range(3)]
            quick_done = time.perf_counter() - began
            assert all(r.status_code == 200 for r in quick)
            response = await slow
            assert response.status_code == 200
            return quick_done, time.perf_counter() - began

    quick_done, slow_done = asyncio.run(scenario())
    assert quick_done < slow_done


def test_busy_server_answers_503_instead_of_queueing_forever():
    async def scenario() -> list[int]:
        transport = httpx.ASGITransport(app=create_app(workers=1, queue_seconds=0.05))
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
            responses = await asyncio.gather(*(http.post("/api/trace", json=long_request()) for _ in range(2)))
            busy = [r for r in responses if r.status_code == 503]
            assert all("server busy" in r.json()["message"] for r in busy)
            return sorted(r.status_code for r in responses)

    assert asyncio.run(scenario()) == [200, 503]


# ---- the page, the schema, the command -------------------------------------------------------

def test_page_and_its_scripts_are_served_without_network(client):
    page = client.get("/")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert "http://" not in page.text and "https://" not in page.text  # no CDN
    for src in re.findall(r'(?:src|href)="(/[^"]+)"', page.text):
        assert client.get(src).status_code == 200, src
    for script in STATIC_DIR.glob("*.js"):
        for module in re.findall(r'from "\./([^"]+)"', script.read_text()):
            assert (STATIC_DIR / module).is_file(), f"{script.name} imports missing {module}"
    plotly_js = client.get("/vendor/plotly.min.js")
    assert plotly_js.status_code == 200 and "javascript" in plotly_js.headers["content-type"]
    assert plotly_js.content == plotly_js_path().read_bytes()
    import plotly
    assert Path(plotly.__file__).parent in plotly_js_path().parents


def test_openapi_schema_states_the_limits(client):
    schema = client.get("/openapi.json").json()
    assert {"/api/landscapes", "/api/surface", "/api/optimizers", "/api/schedules", "/api/trace"} <= set(schema["paths"])
    assert client.get("/docs").status_code == 404  # Swagger UI would load from a CDN
    request = schema["components"]["schemas"]["TraceRequest"]["properties"]
    assert request["steps"]["maximum"] == MAX_STEPS
    assert request["optimizers"]["maxItems"] == MAX_OPTIMIZERS


def test_serve_binds_localhost_by_default_and_prints_the_url():
    from optimlab.cli import build_parser
    assert build_parser().parse_args(["serve"]).host == "127.0.0.1"
    process = subprocess.Popen([sys.executable, "-m", "optimlab", "serve", "--port", "0"], cwd=ROOT,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        line = process.stdout.readline()
        match = re.search(r"http://127\.0\.0\.1:(\d+)/", line)
        assert match, line
        response = httpx.get(f"http://127.0.0.1:{match.group(1)}/api/landscapes", timeout=30)
        assert response.status_code == 200 and len(response.json()) == len(LANDSCAPES)
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_serve_rejects_a_bad_port():
    from optimlab.cli import main
    assert main(["serve", "--port", "70000"]) == 2


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(")")[-1].split()[0] != "Z"  # a zombie has exited
    except FileNotFoundError:
        return False


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads /proc to see the workers")
def test_scene_workers_exit_when_the_server_is_killed():
    """A server killed with SIGKILL (no atexit, no shutdown) must not leave its scene workers behind."""
    script = (
        "import sys, time\n"
        "from optimlab.web.compute import ScenePool\n"
        "pool = ScenePool(2); pool.start()\n"
        "print(*pool.executor()._processes, flush=True)\n"
        "time.sleep(600)\n"
    )
    server = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        workers = [int(pid) for pid in server.stdout.readline().split()]
        assert len(workers) == 2 and all(_alive(pid) for pid in workers)
    finally:
        server.kill()
        server.wait()
    deadline = time.monotonic() + 15
    while any(_alive(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not any(_alive(pid) for pid in workers), "scene workers outlived their server"
