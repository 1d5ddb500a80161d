"""What an experiment returns, and the one writer that turns it into figures + Markdown + HTML."""

from __future__ import annotations

import html
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from matplotlib.figure import Figure

from ..report.landscape import save_figure


@dataclass
class Table:
    title: str
    header: Sequence[str]
    rows: list[Sequence[Any]]

    def formatted_rows(self) -> list[list[str]]:
        return [[_cell(value) for value in row] for row in self.rows]


@dataclass
class ExperimentResult:
    """An experiment's outcome: printed lines (as the notes print them), tables, figures, findings.

    ``findings`` are sentences that state what this run measured (numbers included); the page
    shows them under "What it shows". ``numbers`` is the machine-readable record (numbers.json).
    """

    name: str
    title: str
    source: str
    question: str
    printed: list[str] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    figures: list[tuple[str, Figure | Callable[[Path], Any]]] = field(default_factory=list)
    findings: list[str] = field(default_factory=list)
    numbers: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0

    def print_line(self, line: str) -> None:
        self.printed.append(line)

    def add_figure(self, filename: str, figure: Figure | Callable[[Path], Any]) -> None:
        """A matplotlib Figure, or a function that writes the figure to the path it is given."""
        self.figures.append((filename, figure))


def _cell(value: Any) -> str:
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        return f"{value:.4g}" if abs(value) >= 1e-3 or value == 0 else f"{value:.3e}"
    return str(value)


def _markdown_table(table: Table) -> str:
    lines = [f"**{table.title}**", "", "| " + " | ".join(table.header) + " |",
             "|" + "---|" * len(table.header)]
    lines += ["| " + " | ".join(row) + " |" for row in table.formatted_rows()]
    return "\n".join(lines)


def _html_table(table: Table) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in table.header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>"
                   for row in table.formatted_rows())
    return f"<h3>{html.escape(table.title)}</h3><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def write_markdown(result: ExperimentResult, figure_names: list[str]) -> str:
    parts = [f"# {result.title}", "", f"*Source: {result.source}.*", "", f"**Question.** {result.question}", ""]
    parts += ["## What it shows", ""] + [f"- {finding}" for finding in result.findings] + [""]
    if result.printed:
        parts += ["## Printed numbers", "", "```", *result.printed, "```", ""]
    for table in result.tables:
        parts += [_markdown_table(table), ""]
    parts += [f"![{name}]({name})" for name in figure_names]
    parts += ["", f"*Ran in {result.seconds:.1f} s (`optimlab reproduce {result.name}`).*", ""]
    return "\n".join(parts)


_STYLE = """body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222;line-height:1.45}
table{border-collapse:collapse;margin:0.5em 0 1.5em}td,th{border:1px solid #ccc;padding:4px 10px;text-align:right}
th{background:#f2f2f2}pre{background:#f7f7f7;padding:0.8em;overflow-x:auto}img{max-width:100%;border:1px solid #eee;margin:0.5em 0}
.source{color:#666}"""


def write_html(result: ExperimentResult, figure_names: list[str]) -> str:
    findings = "".join(f"<li>{html.escape(f)}</li>" for f in result.findings)
    printed = f"<h2>Printed numbers</h2><pre>{html.escape(chr(10).join(result.printed))}</pre>" if result.printed else ""
    tables = "".join(_html_table(table) for table in result.tables)
    images = "".join(f'<img src="{html.escape(name)}" alt="{html.escape(name)}">' for name in figure_names)
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(result.title)}</title>"
            f"<style>{_STYLE}</style></head><body><h1>{html.escape(result.title)}</h1>"
            f"<p class='source'>Source: {html.escape(result.source)}</p>"
            f"<p><b>Question.</b> {html.escape(result.question)}</p><h2>What it shows</h2><ul>{findings}</ul>"
            f"{printed}{tables}{images}<p class='source'>Ran in {result.seconds:.1f} s "
            f"(<code>optimlab reproduce {html.escape(result.name)}</code>).</p></body></html>")


def write_result(result: ExperimentResult, out_dir: Path) -> Path:
    """Write figures (PNG), index.md, index.html and numbers.json under ``out_dir/<name>/``."""
    folder = Path(out_dir) / result.name
    folder.mkdir(parents=True, exist_ok=True)
    names = []
    for filename, figure in result.figures:
        if isinstance(figure, Figure):
            save_figure(figure, folder / filename)
        else:
            figure(folder / filename)
        names.append(filename)
    (folder / "index.md").write_text(write_markdown(result, names))
    (folder / "index.html").write_text(write_html(result, names))
    record = {"name": result.name, "title": result.title, "printed": result.printed, "findings": result.findings,
              "numbers": result.numbers, "seconds": result.seconds,
              "tables": [{"title": t.title, "header": list(t.header), "rows": t.formatted_rows()} for t in result.tables]}
    (folder / "numbers.json").write_text(json.dumps(record, indent=2, default=str))
    return folder
