"""The engine's own split of a run's wall time by phase (``hyperldm-engine --timings ...``).

Phases are recorded by :func:`timed` (a decorator) and :func:`phase` (a ``with`` block) around the
engine's own steps: model load, scene statistics, window reads, denoising, decoding, blending,
writing. Times are *exclusive*: a phase that runs inside another (the writer called from the
blender's flush) is subtracted from its parent, so the phases add up to at most the wall time and
the rest is reported as "other". Always on: one ``perf_counter`` pair per call (about a
microsecond; a tile costs seconds), and nothing is printed unless asked.

Per process: tiles computed in dask workers are timed there and do not appear in this split. On
CUDA, kernels run asynchronously, so the split between denoise and decode is only indicative there.
"""

from __future__ import annotations

import functools
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])

#: the order in which the report lists phases; others follow in the order they were first seen
ORDER = ("start-up: interpreter", "start-up: imports", "model load", "statistics", "read",
         "tile: denoise", "tile: decode", "tile: other", "blend", "write")

_lock = threading.Lock()
_totals: dict[str, float] = {}
_counts: dict[str, int] = {}
_local = threading.local()


def _stack() -> list[list[float]]:
    stack = getattr(_local, "stack", None)
    if stack is None:
        stack = _local.stack = []
    return stack


def add(name: str, seconds: float, count: int = 1) -> None:
    """Add ``seconds`` to phase ``name`` (thread-safe)."""
    with _lock:
        _totals[name] = _totals.get(name, 0.0) + float(seconds)
        _counts[name] = _counts.get(name, 0) + int(count)


@contextmanager
def phase(name: str) -> Iterator[None]:
    """Time the block as phase ``name``, less the time of phases nested inside it (same thread)."""
    stack = _stack()
    frame = [0.0]  # seconds spent in nested phases
    stack.append(frame)
    t0 = time.perf_counter()
    try:
        yield
    finally:
        elapsed = time.perf_counter() - t0
        stack.pop()
        if stack:
            stack[-1][0] += elapsed
        add(name, elapsed - frame[0])


def timed(name: str) -> Callable[[F], F]:
    """Decorator: every call of the function is timed as phase ``name`` (see :func:`phase`)."""

    def wrap(fn: F) -> F:
        @functools.wraps(fn)
        def inner(*args: Any, **kwargs: Any) -> Any:
            with phase(name):
                return fn(*args, **kwargs)

        return inner  # type: ignore[return-value]

    return wrap


def reset() -> None:
    """Forget all recorded phases (tests, or several runs in one process)."""
    with _lock:
        _totals.clear()
        _counts.clear()


def snapshot() -> dict[str, tuple[float, int]]:
    """Phase -> (seconds, calls), in report order."""
    with _lock:
        items = dict(_totals), dict(_counts)
    names = [n for n in ORDER if n in items[0]] + [n for n in items[0] if n not in ORDER]
    return {n: (items[0][n], items[1][n]) for n in names}


def process_age() -> float | None:
    """Seconds since this process started (Linux ``/proc``), or None where that cannot be read."""
    try:
        with open("/proc/self/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        with open("/proc/uptime") as f:
            uptime = float(f.read().split()[0])
        return uptime - int(fields[19]) / os.sysconf("SC_CLK_TCK")  # field 22: starttime in clock ticks
    except (OSError, ValueError, IndexError):
        return None


def report(total_s: float | None = None) -> str:
    """Lines ``timing <phase>: <seconds> s (<share> %, <calls> calls)``, then ``other`` and ``total``.

    ``total_s``: the wall time to split (default: the process's age, start-up included).
    """
    total = process_age() if total_s is None else total_s
    parts = snapshot()
    lines = []
    for name, (seconds, calls) in parts.items():
        share = f"{100 * seconds / total:5.1f} %, " if total else ""
        lines.append(f"timing {name}: {seconds:.3f} s ({share}{calls} calls)")
    if total:
        rest = total - sum(s for s, _ in parts.values())
        lines.append(f"timing other: {rest:.3f} s ({100 * rest / total:5.1f} %)")
        lines.append(f"timing total: {total:.3f} s")
    return "\n".join(lines)


def parse_report(text: str) -> dict[str, float]:
    """Phase -> seconds from the lines of :func:`report` (other lines ignored): for the benchmarks."""
    out: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("timing ") and ": " in line:
            name, rest = line[len("timing "):].rsplit(": ", 1)
            out[name] = float(rest.split()[0])
    return out
