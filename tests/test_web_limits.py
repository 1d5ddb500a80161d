"""The web API's door: hyperparameter allowlist with ranges, capped landscape arguments, a body-size
cap (413), and short 422 messages (one per bad field, never an echo of the input); then
property-based tests (Hypothesis) of the request models: random texts, numbers at and past every
bound, NaN/inf, huge sizes -> never a 500, never accepted out of range, the response bounded."""

from __future__ import annotations

import json
import math

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from optimlab.landscapes import LANDSCAPES
from optimlab.optim.registry import OPTIMIZERS
from optimlab.web.allowlist import OPTIMIZER_HYPERPARAMETERS, Flag, Number, Numbers, optimizer_hyperparameters
from optimlab.web.app import create_app
from optimlab.web.models import MAX_BODY_BYTES, TraceRequest

HIDDEN = ("fused", "foreach", "capturable", "differentiable", "maximize")
MAX_ERROR_BYTES = 2000  # a 422/413 body is a few short lines, whatever the input


@pytest.fixture(scope="module")
def client() -> TestClient:
    return TestClient(create_app(max_seconds=0.2), raise_server_exceptions=False)


def post(client: TestClient, body) -> tuple[int, dict, int]:
    if isinstance(body, (bytes, str)):
        response = client.post("/api/trace", content=body, headers={"content-type": "application/json"})
    else:
        response = client.post("/api/trace", json=body)
    return response.status_code, response.json(), len(response.content)


def one(name: str, **hyperparameters) -> dict:
    return {"landscape": "bowl", "steps": 3, "optimizers": [{"name": name, "hyperparameters": hyperparameters}]}


# ---- hidden hyperparameters and ranges ---------------------------------------------------------

@pytest.mark.parametrize("name", HIDDEN)
def test_torch_plumbing_flags_are_refused(client, name):
    status, body, _ = post(client, one("adam", **{name: True}))
    assert status == 422 and f"unknown hyperparameter '{name}' for adam" in body["message"]


@pytest.mark.parametrize("name, key, value", [
    ("lbfgs", "history_size", 10**9), ("lbfgs", "history_size", 1e9), ("lbfgs", "max_iter", 1000),
    ("lbfgs", "max_eval", 10**6), ("newton", "max_params", 10**7), ("adam", "lr", 1e300),
    ("momentum", "momentum", 50.0), ("adagrad", "initial_accumulator_value", 1e30), ("lbfgs", "history_size", 2.5),
])
def test_values_past_their_range_are_refused(client, name, key, value):
    status, body, _ = post(client, one(name, **{key: value}))
    assert status == 422 and body["message"].startswith(f"optimizers.0.hyperparameters: {key}=")
    assert "must be" in body["message"]


@pytest.mark.parametrize("value", ["no", "yes", "maybe", 0, 1, "false"])
def test_booleans_are_json_booleans(client, value):
    status, body, _ = post(client, one("adam", amsgrad=value))
    assert status == 422 and "amsgrad=" in body["message"] and "must be true or false" in body["message"]


def test_every_listed_hyperparameter_is_accepted_at_its_default(client):
    """What /api/optimizers offers the page, the allowlist accepts (the page sends edited values),
    and it offers none of torch's plumbing flags."""
    rows = client.get("/api/optimizers").json()
    assert {row["name"] for row in rows} == set(OPTIMIZERS)
    for row in rows:
        for hp in row["hyperparameters"]:
            assert hp["name"] not in HIDDEN
            if hp["default"] is None:
                continue
            status, body, _ = post(client, one(row["name"], **{hp["name"]: hp["default"]}))
            assert status == 200, (row["name"], hp, body)


def test_allowlisted_names_are_arguments_of_the_registered_classes():
    for name, entry in OPTIMIZERS.items():
        accepted = entry.accepted_arguments()
        assert set(optimizer_hyperparameters(name)) <= set(accepted), name
    assert {"lbfgs", "newton", "adam"} <= set(OPTIMIZER_HYPERPARAMETERS)


# ---- landscape arguments -----------------------------------------------------------------------

@pytest.mark.parametrize("spec, key", [("bowl:noise=1e300", "noise"), ("bowl:noise=101", "noise"),
                                       ("quadratic:kappa=1e308", "kappa"), ("xcos:c=1e-9", "c"),
                                       ("cosh:c=1000", "c")])
def test_landscape_arguments_are_capped(client, spec, key):
    status, body, _ = post(client, {"landscape": spec, "steps": 3, "optimizers": [{"name": "gd"}]})
    assert status == 422 and f"landscape: {key}=" in body["message"]
    response = client.get("/api/surface", params={"landscape": spec})
    assert response.status_code == 422 and f"{key}=" in response.json()["message"]


def test_landscape_noise_is_used_and_reported(client):
    from_spec = post(client, {"landscape": "bowl:noise=0.5", "steps": 5, "optimizers": [{"name": "gd"}]})[1]
    from_field = post(client, {"landscape": "bowl", "noise": 0.5, "steps": 5, "optimizers": [{"name": "gd"}]})[1]
    assert from_spec["noise"] == 0.5
    assert from_spec["traces"][0]["x"] == from_field["traces"][0]["x"]  # the same seeded noise draws


# ---- body size and message size ----------------------------------------------------------------

def test_a_huge_body_is_413_with_a_short_message(client):
    huge = json.dumps({"landscape": "bowl", "optimizers": [{"name": "gd"}], "start": [0.5] * 2_000_000})
    status, body, size = post(client, huge)
    assert status == 413 and body["message"] == f"request body too large: the limit is {MAX_BODY_BYTES} bytes"
    assert size < MAX_ERROR_BYTES


def test_a_streamed_body_without_length_is_cut_at_the_cap(client):
    def chunks():
        yield b'{"landscape": "bowl", "start": ['
        for _ in range(MAX_BODY_BYTES // 1000 + 2):
            yield b"0.5, " * 200
        yield b'0.5], "optimizers": [{"name": "gd"}]}'

    response = client.post("/api/trace", content=chunks(), headers={"content-type": "application/json"})
    assert response.status_code == 413 and len(response.content) < MAX_ERROR_BYTES


def test_422_never_echoes_the_input(client):
    long_start = {"landscape": "bowl", "optimizers": [{"name": "gd"}], "start": [0.25] * 5000}
    long_key = one("gd", **{"k" * 20000: 1})
    long_text = one("gd", lr="x" * 20000)
    long_landscape = {"landscape": "bowl:" + "a=1," * 10000, "optimizers": [{"name": "gd"}]}
    for body in (long_start, long_key, long_text, long_landscape):
        status, answer, size = post(client, body)
        assert status in (413, 422) and size < MAX_ERROR_BYTES, (status, size)


def test_one_message_per_bad_field(client):
    raw = b'{"landscape": "bowl", "optimizers": [{"name": "gd", "hyperparameters": {"lr": NaN}}]}'
    status, body, _ = post(client, raw)
    assert status == 422 and ";" not in body["message"] and len(body["detail"]) == 1
    assert body["message"].startswith("optimizers.0.hyperparameters: lr=nan must be")
    two = {"landscape": "bowl", "steps": 0, "noise": -1, "optimizers": [{"name": "gd"}]}
    status, body, _ = post(client, two)
    assert status == 422 and body["message"].count(";") == 1 and len(body["detail"]) == 2


# ---- property-based ----------------------------------------------------------------------------

NAMES = sorted(OPTIMIZERS) + ["", "sgdx", "ADAM", "a" * 50, "lbfgs;drop", "newton\n"]
KEYS = sorted({k for table in OPTIMIZER_HYPERPARAMETERS.values() for k in table}) + list(HIDDEN) + ["", "k" * 60]
EDGE_NUMBERS = [0, -0.0, 1, -1, 1e-300, 1e300, 1e308, -1e308, 2**31, 2**63, 10**400, math.nan, math.inf, -math.inf,
                100, 100.0001, 1000, 1000.5, 2000, 2001, 5000, 5001, 0.999999, 1.000001]
numbers = st.one_of(st.sampled_from(EDGE_NUMBERS), st.floats(allow_nan=True, allow_infinity=True),
                    st.integers(min_value=-(10**30), max_value=10**30))
values = st.one_of(numbers, st.booleans(), st.text(max_size=80), st.none(),
                   st.lists(numbers, max_size=20), st.dictionaries(st.text(max_size=5), numbers, max_size=2))
landscapes = st.one_of(
    st.sampled_from(sorted(LANDSCAPES)),
    st.builds(lambda name, key, value: f"{name}:{key}={value}", st.sampled_from(sorted(LANDSCAPES)),
              st.sampled_from(["noise", "kappa", "c", "zoom"]), numbers),
    st.text(max_size=130))
optimizer = st.fixed_dictionaries({"name": st.sampled_from(NAMES)},
                                  optional={"hyperparameters": st.dictionaries(st.sampled_from(KEYS), values, max_size=4),
                                            "label": st.text(max_size=70)})
near_valid_optimizer = st.sampled_from(sorted(OPTIMIZERS)).flatmap(lambda name: st.fixed_dictionaries({
    "name": st.just(name),
    "hyperparameters": st.dictionaries(st.sampled_from(sorted(optimizer_hyperparameters(name)) + ["fused"]),
                                       st.one_of(numbers, st.booleans(), st.lists(numbers, min_size=2, max_size=3),
                                                 st.sampled_from(["strong_wolfe", "plain", "saddle_free"])),
                                       max_size=3)}))
near_valid = st.fixed_dictionaries(
    {"landscape": st.one_of(st.sampled_from(sorted(LANDSCAPES)), st.builds("bowl:noise={}".format, numbers)),
     "optimizers": st.lists(near_valid_optimizer, min_size=1, max_size=2),
     "steps": st.integers(min_value=-1, max_value=6)},
    optional={"noise": numbers})
random_bodies = st.fixed_dictionaries(
    {"landscape": landscapes, "optimizers": st.lists(optimizer, min_size=0, max_size=9)},
    optional={"steps": st.one_of(numbers, st.text(max_size=5)), "noise": numbers,
              "start": st.one_of(st.lists(numbers, max_size=4), st.none()), "seed": numbers, "tol": numbers,
              "schedule": st.one_of(st.none(), st.fixed_dictionaries(
                  {"name": st.sampled_from(["exponential", "step", "multistep", "cosine", "nope"])},
                  optional={"hyperparameters": st.dictionaries(st.sampled_from(["gamma", "step_size", "milestones",
                                                                                "total", "warmup", "x"]),
                                                               values, max_size=3)}))})


bodies = st.one_of(random_bodies, near_valid)


def assert_within_allowlist(request: TraceRequest) -> None:
    """An accepted request sets only allowlisted hyperparameters, each within its range."""
    assert 0 <= request.noise <= 100 and 1 <= request.steps <= 5000
    for opt in request.optimizers:
        table = optimizer_hyperparameters(opt.name)
        for key, value in opt.hyperparameters.items():
            assert key in table and key not in HIDDEN
            bound = table[key]
            for low_high, v in ([(bound, value)] if isinstance(bound, Number) else
                                list(zip(bound.entries, value)) if isinstance(bound, Numbers) else []):
                assert low_high.low <= v <= low_high.high and math.isfinite(v)
            if isinstance(bound, Flag):
                assert isinstance(value, bool)
    if opt.name.lower() == "lbfgs":
        assert opt.hyperparameters.get("history_size", 1) <= 100


def json_text(body: dict) -> str:
    return json.dumps(body, allow_nan=True, default=str)  # NaN/Infinity as JSON5-ish literals, as a client may send


@settings(max_examples=300, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(bodies)
def test_request_model_accepts_only_in_range_values(body):
    from pydantic import ValidationError

    try:
        request = TraceRequest.model_validate_json(json_text(body))
    except ValidationError as error:
        assert error.errors()  # a validation error, never another exception
        return
    assert_within_allowlist(request)


@settings(max_examples=120, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow,
                                                                   HealthCheck.function_scoped_fixture])
@given(body=bodies)
def test_the_api_never_answers_500_and_errors_stay_short(client, body):
    status, answer, size = post(client, json_text(body))
    assert status in (200, 413, 422), (status, answer)
    if status != 200:
        assert "\n" not in answer["message"] and size < MAX_ERROR_BYTES
    else:
        assert answer["noise"] <= 100 and len(answer["traces"]) <= 8


@settings(max_examples=60, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(size=st.integers(min_value=MAX_BODY_BYTES - 200, max_value=4 * MAX_BODY_BYTES))
def test_body_sizes_around_the_cap(client, size):
    head = b'{"landscape": "bowl", "optimizers": [{"name": "gd"}], "label": "'
    body = head + b"x" * max(0, size - len(head) - 2) + b'"}'
    status, answer, reply = post(client, body)
    assert status == (413 if len(body) > MAX_BODY_BYTES else 422) and reply < MAX_ERROR_BYTES


def test_every_preset_scene_is_accepted(client):
    """The page's scenes (static/presets.js) pass the allowlist."""
    import re
    from pathlib import Path

    from optimlab.spec import parse_spec
    from optimlab.web.app import STATIC_DIR

    text = Path(STATIC_DIR / "presets.js").read_text()
    specs = re.findall(r'spec: "([^"]+)"', text)
    assert len(specs) > 10
    for spec in specs:
        parsed = parse_spec(spec)
        hyperparameters = {k: list(v) if isinstance(v, tuple) else v for k, v in parsed.kwargs.items()}
        status, body, _ = post(client, one(parsed.name, **hyperparameters))
        assert status == 200, (spec, body)


def test_five_long_messages_still_fit_the_error_budget(client):
    """Found by the property test in a clean clone: an unknown landscape and optimizer (each message
    lists every name) plus bad hyperparameters gave a 422 of exactly 2000 bytes. The long messages
    are now cut shorter until the whole body fits."""
    bad_hyperparameters = {"adamw_betas": 0, "adamw_eps": 0,
                           "precondition_frequency": {"0": 1.0000000000000002e+16, "0000": 0}}
    body = {"landscape": "A000000", "optimizers": [{"name": "sgdx", "hyperparameters": bad_hyperparameters},
                                                   {"name": "lbfgs;drop", "hyperparameters": bad_hyperparameters}]}
    status, answer, size = post(client, json_text(body))
    assert status == 422 and size < MAX_ERROR_BYTES
    assert "\n" not in answer["message"] and "unknown landscape 'A000000'" in answer["message"]
    assert [".".join(map(str, error["loc"])) for error in answer["detail"]][:2] == ["landscape", "optimizers.0.name"]
