"""What every command shares: the ``--progress`` option and the last word of a run (:func:`finish`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

from hyperldm_engine.progress import emit_done

PROGRESS_MODES = ("bar", "json", "none")

F = TypeVar("F", bound=Callable[..., Any])


def progress_option(f: F) -> F:
    """``--progress bar|json|none`` as ``progress_mode`` (json: the engine-plugin contract's events)."""
    return click.option("--progress", "progress_mode", type=click.Choice(PROGRESS_MODES), default="bar",
                        show_default=True,
                        help="bar: a progress bar on stderr; json: one JSON event per line on stdout "
                             "(the last one the 'done' event); none: no progress.")(f)


def finish(command: str, progress_mode: str, outputs: dict[str, Any], *, values: dict[str, Any] | None = None,
           seconds: float | None = None, text: str | None = None, note: str | None = None) -> None:
    """End a command: with ``--progress json`` the contract's ``done`` event (``outputs`` by role,
    ``values``, ``seconds``); otherwise ``text`` on stdout (results to read or pipe) and, with the
    progress bar, ``note`` on stderr (what was written, how fast)."""
    if progress_mode == "json":
        emit_done(command, outputs, values=values, seconds=seconds)
        return
    if text is not None:
        click.echo(text)
    if note is not None and progress_mode == "bar":
        click.echo(note, err=True)
