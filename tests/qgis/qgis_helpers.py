"""Helpers shared by the QGIS plugin tests (imported only where Debian's QGIS is available)."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from qgis.core import QgsProcessingFeedback

ROOT = Path(__file__).resolve().parents[2]
IN_CI = os.environ.get("CI", "").lower() not in ("", "0", "false", "no")
QGIS_PROCESS = "/usr/bin/qgis_process.bin"


def engine_path() -> Path:
    return Path(os.environ.get("HYPERLDM_ENGINE") or ROOT / ".venv" / "bin" / "hyperldm-engine")


def _engine_commands() -> set[str]:
    """Sub-commands the installed engine offers (parsed from its --help)."""
    engine = engine_path()
    if not os.access(engine, os.X_OK):
        return set()
    from hyperldm.engine import clean_environment

    text = subprocess.run([str(engine), "--help"], capture_output=True, text=True, timeout=120,
                          env=clean_environment()).stdout
    commands, in_section = set(), False
    for line in text.splitlines():
        if line.strip().lower().startswith("commands:"):
            in_section = True
        elif in_section and line.startswith("  ") and line.strip():
            commands.add(line.split()[0])
    return commands


ENGINE_COMMANDS = _engine_commands()


def require_engine_command(name: str) -> None:
    """Skip (fail under CI) when the real engine lacks a command a test needs."""
    if name not in ENGINE_COMMANDS:
        message = (f"the engine {engine_path()} has no '{name}' command "
                   f"(it offers: {', '.join(sorted(ENGINE_COMMANDS)) or 'nothing'})")
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)


def run_qgis_process(env: dict, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([QGIS_PROCESS, *args], capture_output=True, text=True, env=env, timeout=timeout)


def write_fake_engine(path: Path, body: str) -> Path:
    """An executable stand-in for hyperldm-engine: a stdlib Python script (Debian's python)."""
    path.write_text(f"#!{sys.executable}\n" + textwrap.dedent(body))
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return path


def pid_alive(pid: int) -> bool:
    """True while a process exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


class RecordingFeedback(QgsProcessingFeedback):
    """Keeps progress values and messages; cancels itself at the ``cancel_after``-th progress call."""

    def __init__(self, cancel_after: int | None = None):
        super().__init__()
        self.progress: list[float] = []
        self.infos: list[str] = []
        self.warnings: list[str] = []
        self.commands: list[str] = []
        self.cancel_after = cancel_after
        self.progressChanged.connect(self._on_progress)

    def _on_progress(self, value):
        self.progress.append(value)
        if self.cancel_after is not None and len(self.progress) >= self.cancel_after:
            self.cancel()

    def pushInfo(self, info):  # noqa: N802 (QGIS API name)
        self.infos.append(info)
        super().pushInfo(info)

    def pushCommandInfo(self, info):  # noqa: N802 (QGIS API name)
        self.commands.append(info)
        super().pushCommandInfo(info)

    def pushWarning(self, warning):  # noqa: N802 (QGIS API name)
        self.warnings.append(warning)
        super().pushWarning(warning)
