"""Progress reporting for long work: a tqdm bar on terminals, JSON lines for machines.

JSON mode prints one object per line on stdout, flushed, for consumers such as the QGIS plugin:
``{"event": "progress", "fraction": 0.25, "done": 3, "total": 12, "message": "tile 3/12"}``,
``{"event": "info" | "warning", "message": "..."}``, the ``done`` event of
:mod:`hyperldm_engine.contract` (one versioned shape for every command, see :func:`emit_done`) and,
from the CLI on failure, ``{"event": "error", "message": "..."}``.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any, Literal, TextIO

Mode = Literal["bar", "json", "none"]


def emit_json(event: str, stream: TextIO | None = None, **fields: Any) -> None:
    """Write one JSON event line and flush, so a reading process sees it at once."""
    stream = stream or sys.stdout
    stream.write(json.dumps({"event": event, **fields}, default=str) + "\n")
    stream.flush()


def emit_done(command: str, outputs: dict[str, Any], values: dict[str, Any] | None = None,
              seconds: float | None = None, stream: TextIO | None = None) -> None:
    """The contract's ``done`` event: every output path by declared role, numbers in ``values``."""
    from hyperldm_engine.contract import done_payload

    payload = done_payload(command, outputs, values, seconds)
    emit_json(payload.pop("event"), stream=stream, **payload)


class Progress:
    """Counts units of work (tiles, iterations) and reports them in the chosen mode."""

    def __init__(self, total: float, description: str = "", mode: Mode = "bar", unit: str = "it",
                 min_interval_s: float = 0.2) -> None:
        self.total = max(float(total), 1e-12)
        self.done = 0.0
        self.description = description
        self.mode = mode
        self.min_interval_s = min_interval_s
        self._last_emit = 0.0
        self._bar = None
        if mode == "bar":
            from tqdm.auto import tqdm

            self._bar = tqdm(total=total, desc=description, unit=unit, file=sys.stderr,
                             dynamic_ncols=True, disable=None)

    @property
    def fraction(self) -> float:
        return min(1.0, self.done / self.total)

    def advance(self, n: float = 1.0, message: str | None = None, **postfix: Any) -> None:
        """Mark ``n`` more units done; postfix values (e.g. loss, MPix/s) go on the bar or line."""
        self.done += n
        if self._bar is not None:
            self._bar.update(n)
            if postfix:
                self._bar.set_postfix(postfix, refresh=False)
        elif self.mode == "json":
            now = time.monotonic()
            if now - self._last_emit >= self.min_interval_s or self.done >= self.total:
                self._last_emit = now
                emit_json("progress", fraction=round(self.fraction, 5), done=self.done,
                          total=self.total, message=message or self.description, **postfix)

    def info(self, message: str) -> None:
        report_info(message, self.mode)

    def warning(self, message: str) -> None:
        report_warning(message, self.mode)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def report_warning(message: str, mode: Mode = "bar") -> None:
    """A warning the user should see: a JSON event in json mode, else one line on stderr."""
    if mode == "json":
        emit_json("warning", message=message)
    else:
        print(f"warning: {message}", file=sys.stderr, flush=True)


def report_info(message: str, mode: Mode = "bar") -> None:
    if mode == "json":
        emit_json("info", message=message)
    elif mode == "bar":
        print(message, file=sys.stderr, flush=True)
