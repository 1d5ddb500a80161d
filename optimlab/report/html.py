"""A self-contained HTML page: tables and PNG figures embedded as base64 (one file to mail or open)."""

from __future__ import annotations

import base64
import html
from pathlib import Path
from typing import Sequence

from .tables import is_numeric

Table = tuple[str, Sequence[str], Sequence[Sequence[str]]]  # caption, headers, rows

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1200px; color: #222; }
h1 { font-size: 1.5em; } h2 { font-size: 1.15em; margin-top: 1.6em; }
table { border-collapse: collapse; margin: 0.5em 0 1em; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.3em 0.6em; text-align: left; }
th { background: #f3f3f3; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
td.spec { font-family: monospace; }
figure { margin: 1em 0; } figcaption { color: #555; font-size: 0.9em; }
img { max-width: 100%; border: 1px solid #eee; }
.meta { color: #555; font-size: 0.9em; } code { background: #f5f5f5; padding: 0 0.2em; }
"""


def _cell(header: str, value: str) -> str:
    css = "spec" if header == "optimizer" else "num" if is_numeric(value) else ""
    return f"<td class='{css}'>{html.escape(value)}</td>" if css else f"<td>{html.escape(value)}</td>"


def table_html(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in headers)
    body = "".join("<tr>" + "".join(_cell(str(h), str(c)) for h, c in zip(headers, row)) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def image_html(path: str | Path, caption: str) -> str:
    data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
    return (f'<figure><img alt="{html.escape(caption)}" src="data:image/png;base64,{data}">'
            f"<figcaption>{html.escape(caption)}</figcaption></figure>")


def write_html(path: str | Path, title: str, intro: Sequence[str], tables: Sequence[Table],
               figures: Sequence[tuple[str, str | Path]]) -> Path:
    """Write the page: title, intro lines (plain text), tables, then the figures (caption, png path)."""
    parts = [f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>{html.escape(title)}</title>",
             f"<style>{STYLE}</style></head><body><h1>{html.escape(title)}</h1>"]
    parts += [f"<p class='meta'>{html.escape(line)}</p>" for line in intro]
    for caption, headers, rows in tables:
        parts.append(f"<h2>{html.escape(caption)}</h2>{table_html(headers, rows)}")
    if figures:
        parts.append("<h2>Figures</h2>")
        parts += [image_html(png, caption) for caption, png in figures]
    parts.append("</body></html>")
    path = Path(path)
    path.write_text("\n".join(parts), encoding="utf-8")
    return path


__all__ = ["write_html", "table_html", "image_html"]
