"""`optimlab trace` and `optimlab analyze`: tables, JSON, figures that are real images, one-line errors."""

import json
import struct

import pytest

from optimlab.cli import main

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _png_size(path):
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE and data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def test_trace_table_and_png_and_svg(tmp_path, capsys):
    png, svg = tmp_path / "trace.png", tmp_path / "trace.svg"
    code = main(["trace", "valley", "--opt", "gd:lr=0.4", "--opt", "momentum:lr=0.4,momentum=0.5",
                 "--steps", "40", "--out", str(png), "--out", str(svg)])
    out = capsys.readouterr().out
    assert code == 0
    lines = out.splitlines()
    assert lines[0].startswith("valley: f = 0.1*x1^2 + 2*x2^2, start (-5, -2), 40 steps")
    assert lines[1].split() == ["optimizer", "final", "x", "f", "to", "nearest", "min", "steps", "to", "tol", "outcome"]
    gd_row = next(line for line in lines if line.startswith("gd:lr=0.4"))
    momentum_row = next(line for line in lines if line.startswith("momentum:"))
    assert gd_row.endswith("still descending (slow)") and momentum_row.endswith("converged")
    width, height = _png_size(png)
    assert width > 800 and height > 400
    import matplotlib.image

    pixels = matplotlib.image.imread(png)
    assert pixels.shape[:2] == (height, width) and pixels.std() > 0.05  # not a blank canvas
    assert svg.read_text().lstrip().startswith(("<?xml", "<svg")) and "</svg>" in svg.read_text()
    assert f"wrote {png}" in out


def test_trace_1d_png(tmp_path, capsys):
    png = tmp_path / "xcos.png"
    assert main(["trace", "xcos", "--opt", "gd:lr=0.1", "--start=0.6", "--steps", "20", "--out", str(png)]) == 0
    assert "converged" in capsys.readouterr().out
    assert _png_size(png)[0] > 800


def test_trace_json_reports_d2l_numbers(capsys):
    assert main(["trace", "square", "--opt", "gd:lr=0.2", "--opt", "gd:lr=1.1", "--steps", "50", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    first, second = data["rows"]
    assert first["optimizer"] == "gd:lr=0.2" and first["outcome"] == "converged" and first["steps_to_tol"] == 19
    assert second["outcome"] == "diverged at step 38"
    trace = data["traces"][0]
    assert f"{trace['steps'][10]['x'][0]:f}" == "0.060466"  # D2L: epoch 10, x: 0.060466


def test_trace_json_is_strict_when_a_run_blows_up(capsys):
    assert main(["trace", "cosh", "--opt", "gd:lr=100", "--steps", "5", "--json"]) == 0
    text = capsys.readouterr().out
    data = json.loads(text, parse_constant=lambda name: pytest.fail(f"non-standard JSON constant {name}"))
    assert data["rows"][0]["outcome"] == "diverged at step 1" and data["rows"][0]["f"] is None


def test_trace_noise_and_schedule_options(capsys):
    args = ["trace", "bowl", "--opt", "sgd:lr=0.1", "--steps", "30", "--noise", "1", "--seed", "2",
            "--schedule", "exponential:gamma=0.9", "--json"]
    assert main(args) == 0
    first = json.loads(capsys.readouterr().out)
    assert main(args) == 0
    assert json.loads(capsys.readouterr().out)["rows"][0]["final_x"] == first["rows"][0]["final_x"]
    lrs = [row["lr"] for row in first["traces"][0]["steps"][1:4]]
    assert lrs == pytest.approx([0.1, 0.09, 0.081])


@pytest.mark.parametrize("args, message", [
    (["trace", "nowhere", "--opt", "gd"], "unknown landscape 'nowhere'"),
    (["trace", "bowl", "--opt", "gd:lr"], "malformed optimizer spec"),
    (["trace", "bowl", "--opt", "nope"], "unknown optimizer 'nope'"),
    (["trace", "bowl", "--opt", "gd:lr=-1"], "lr=-1 must be >= 0"),
    (["trace", "bowl", "--opt", "gd", "--start", "1,x"], "--start '1,x'"),
    (["trace", "bowl", "--opt", "gd", "--start", "1,2,3"], "must be 2 finite number(s)"),
    (["trace", "cosh:c=-2", "--opt", "gd"], "c=-2 must be a number from 1e-06 to 1e+06"),
    (["trace", "bowl", "--opt", "gd", "--out", "x.jpg"], "must end in .png, .svg or .pdf"),
    (["trace", "bowl", "--opt", "gd", "--schedule", "sometimes"], "unknown schedule 'sometimes'"),
    (["analyze", "nowhere"], "unknown landscape or task 'nowhere'"),
    (["analyze", "quadratic:kappa=abc"], "kappa='abc'"),
])
def test_bad_input_is_one_line_and_exit_2(args, message, capsys):
    code = main(args)
    err = capsys.readouterr().err
    assert code == 2
    assert message in err and err.count("\n") == 1, err


def test_analyze_table(capsys):
    assert main(["analyze", "himmelblau"]) == 0
    out = capsys.readouterr().out
    assert "4 minima, 1 maximum, 4 saddles" in out
    assert out.count("global minimum") == 4 and "not convex: Jensen fails" in out


def test_analyze_json(capsys):
    assert main(["analyze", "quadratic:kappa=100", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    (cp,) = data["critical_points"]
    assert cp["kind"] == "minimum" and cp["is_global_min"] and cp["condition_number"] == pytest.approx(100)
    assert data["convexity"]["convex"] is True and data["counts"] == {"minimum": 1}


def test_analyze_delegates_other_names_to_the_task_analysis(monkeypatch, capsys):
    """A name that is not a landscape goes to optimlab.commands._analyze_task (a stand-in here)."""
    import sys
    import types

    calls = []
    fake = types.ModuleType("optimlab.commands._analyze_task")
    fake.add_arguments = lambda parser: parser.add_argument("--top-k", type=int, default=3)
    fake.run = lambda args: calls.append((args.name, args.top_k)) or 0
    monkeypatch.setitem(sys.modules, "optimlab.commands._analyze_task", fake)
    assert main(["analyze", "airfoil", "--top-k", "5"]) == 0
    assert calls == [("airfoil", 5)]
    assert main(["analyze", "saddle", "--json"]) == 0  # landscapes still analyzed here
    assert calls == [("airfoil", 5)] and json.loads(capsys.readouterr().out)["counts"] == {"saddle": 1}


def test_landscapes_verb_lists_every_landscape(capsys):
    from optimlab.landscapes import LANDSCAPES

    assert main(["landscapes"]) == 0
    out = capsys.readouterr().out
    assert all(f"f = {landscape.formula}" in out for landscape in LANDSCAPES.values())
    assert main(["landscapes", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [row["name"] for row in rows] == list(LANDSCAPES)
    assert next(row for row in rows if row["name"] == "himmelblau")["global_min"] == 0.0


def test_figures_redraw_from_stored_traces(tmp_path, capsys):
    """A figure needs only Traces: redraw one from the JSON that `trace --json` printed."""
    from optimlab.report.landscape import plot_traces, save_figure
    from optimlab.trace import Trace

    assert main(["trace", "himmelblau", "--opt", "gd:lr=0.01", "--opt", "lbfgs", "--steps", "30", "--json"]) == 0
    traces = [Trace.from_dict(data) for data in json.loads(capsys.readouterr().out)["traces"]]
    path = save_figure(plot_traces(traces), tmp_path / "redrawn.png")
    assert _png_size(path)[0] > 800
