"""Parse the Markdown table of docs/bad-inputs.md into cases."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

DOC = Path(__file__).resolve().parents[2] / "docs" / "bad-inputs.md"
COLUMNS = ["id", "command", "situation", "exit", "message", "names"]


@dataclass(frozen=True)
class BadInput:
    id: str
    command: str
    situation: str
    exit: int
    message: str | None  # None: "-" (no message expected)
    names: str | None


def _cell(text: str) -> str:
    text = text.strip()
    if len(text) >= 2 and text[0] == text[-1] == "`":
        text = text[1:-1]
    return text


def read_table(path: Path = DOC) -> list[BadInput]:
    """Every row of the first table whose header is exactly ``COLUMNS``."""
    rows: list[BadInput] = []
    lines = path.read_text(encoding="utf-8").splitlines()
    header_at = next(i for i, ln in enumerate(lines)
                     if [c.strip() for c in ln.strip().strip("|").split("|")] == COLUMNS)
    for line in lines[header_at + 2:]:
        if not line.startswith("|"):
            break
        cells = [_cell(c) for c in line.strip().strip("|").split("|")]
        if len(cells) != len(COLUMNS):
            raise ValueError(f"{path}: row {line!r} has {len(cells)} cells, expected {len(COLUMNS)}")
        case_id, command, situation, code, message, names = cells
        rows.append(BadInput(case_id, command, situation, int(code), None if message == "-" else message,
                             None if names == "-" else names))
    return rows
