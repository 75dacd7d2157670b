"""Run the ``hyperldm-engine`` command line program as a subprocess and follow its JSON progress.

The plugin never imports the engine (QGIS's Python is not the engine's Python). This module finds
the executable, starts it without a shell in its own session with a clean environment, forwards its
``--progress json`` events to a Processing feedback and kills the whole process group on cancel.
Only the standard library and ``qgis`` are imported here.
"""

from __future__ import annotations

import contextlib
import glob
import json
import os
import queue
import shlex
import shutil
import signal
import subprocess
import threading
import time
from collections import deque
from pathlib import Path

from . import contract

SETTING_ENGINE_PATH = "HYPERLDM_ENGINE_PATH"
ENV_ENGINE = "HYPERLDM_ENGINE"
EXECUTABLE = "hyperldm-engine"

#: Variables of QGIS's own environment that break the engine's venv (its rasterio wheel bundles
#: its own GDAL and PROJ; Debian's PYTHONPATH would pull QGIS's numpy into it).
STRIPPED_ENV = (
    "PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "PYTHONUSERBASE", "PYTHONEXECUTABLE",
    "GDAL_DATA", "GDAL_DRIVER_PATH", "GDAL_PLUGINS", "GDAL_SKIP", "GDAL_FILENAME_IS_UTF8",
    "PROJ_LIB", "PROJ_DATA", "PROJ_NETWORK", "LD_LIBRARY_PATH", "LD_PRELOAD", "DYLD_LIBRARY_PATH",
    "DYLD_FALLBACK_LIBRARY_PATH", "QGIS_PREFIX_PATH", "QGIS_PLUGINPATH", "QGIS_CUSTOM_CONFIG_PATH",
    "QT_PLUGIN_PATH", "QT_QPA_PLATFORM_PLUGIN_PATH", "PYQGIS_STARTUP", "VIRTUAL_ENV", "CONDA_PREFIX",
    "OSGEO4W_ROOT", "CPL_ZIP_ENCODING",
)

POLL_S = 0.1
TERM_GRACE_S = 3.0

#: where the "Set up or update the engine" algorithm and ``scripts/install_engine.sh --user`` put it
USER_VENV = Path("~/.local/share/hyperldm/venv")

HOW_TO_FIX = (
    "run the Processing algorithm HyperLDM > 'Set up or update the engine' (it installs the engine into "
    f"{USER_VENV}), or set the engine executable in Processing > Options > Providers > HyperLDM > "
    f"'HyperLDM engine executable' ({SETTING_ENGINE_PATH}) or the environment variable {ENV_ENGINE}"
)


class EngineError(Exception):
    """The engine could not be found or started, or it reported a failure (one-line message)."""


def _configured_setting() -> str:
    """The provider setting, read straight from QgsSettings so that it also works without the
    Processing plugin's ProcessingConfig (which stores settings under this key)."""
    try:
        from qgis.core import QgsSettings
    except ImportError:  # only outside QGIS, e.g. linting
        return ""
    value = QgsSettings().value(f"Processing/Configuration/{SETTING_ENGINE_PATH}", "")
    return str(value or "").strip()


def _plugin_repo_root() -> Path | None:
    """The repository checkout this plugin runs from (``<repo>/qgis_plugin/hyperldm``), if any."""
    here = Path(__file__).resolve().parent
    repo = here.parent.parent
    if here.parent.name == "qgis_plugin" and (repo / "pyproject.toml").is_file():
        return repo
    return None


def default_candidates() -> list[Path]:
    """Where the README's set-up puts the engine: the repo's ``.venv`` when the plugin runs from
    the checkout, then the per-user venv."""
    candidates = []
    repo = _plugin_repo_root()
    if repo is not None:
        candidates += [repo / ".venv" / "bin" / EXECUTABLE,
                       repo / ".venv" / "Scripts" / f"{EXECUTABLE}.exe"]
    venv = user_venv()
    candidates += [venv / "bin" / EXECUTABLE, venv / "Scripts" / f"{EXECUTABLE}.exe"]
    return candidates


def user_venv() -> Path:
    """The per-user engine venv (``~/.local/share/hyperldm/venv``), expanded for this user."""
    return Path(os.path.expanduser(str(USER_VENV)))


def _usable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)


def find_engine(setting: str | None = None, environ: dict | None = None) -> str:
    """The engine executable: provider setting, then $HYPERLDM_ENGINE, then the README venvs, then
    PATH. An explicitly configured path that is not an executable file is an error, not skipped."""
    environ = os.environ if environ is None else environ
    setting = _configured_setting() if setting is None else setting.strip()
    for origin, value in (("the provider setting " + SETTING_ENGINE_PATH, setting),
                          ("the environment variable " + ENV_ENGINE, environ.get(ENV_ENGINE, "").strip())):
        if value:
            path = Path(os.path.expanduser(value))
            if path.is_dir():
                for sub in (Path("bin") / EXECUTABLE, Path(EXECUTABLE)):
                    if _usable(path / sub):
                        return str(path / sub)
            if not _usable(path):
                raise EngineError(f"HyperLDM engine not usable: {origin} points to '{value}', which is "
                                  f"not an executable file; {HOW_TO_FIX}")
            return str(path)
    for path in default_candidates():
        if _usable(path):
            return str(path)
    found = shutil.which(EXECUTABLE)
    if found:
        return found
    looked = [str(p) for p in default_candidates() if p.parent.name == "bin"]
    where = f"in {', '.join(looked)} and on PATH" if looked else "on PATH"
    raise EngineError(f"HyperLDM engine not found (looked {where}); {HOW_TO_FIX}")


def clean_environment(environ: dict | None = None) -> dict:
    """A copy of the environment without QGIS's Python, GDAL, PROJ and Qt paths, for the engine."""
    env = dict(os.environ if environ is None else environ)
    for key in STRIPPED_ENV:
        env.pop(key, None)
    env["PYTHONUNBUFFERED"] = "1"
    env["PYTHONIOENCODING"] = "utf-8"
    return env


def remove_outputs(paths) -> None:
    """Delete outputs of a cancelled or failed run, with the engine's atomic temporaries beside them."""
    for raw in paths:
        if not raw:
            continue
        path = Path(raw)
        targets = [path]
        if path.parent.is_dir():
            targets += [Path(p) for p in glob.glob(str(path.parent / f".{glob.escape(path.name)}.hyperldm-tmp-*"))]
        for target in targets:
            try:
                if target.is_dir() and not target.is_symlink():
                    shutil.rmtree(target, ignore_errors=True)
                elif target.exists() or target.is_symlink():
                    target.unlink()
            except OSError:
                pass


def _reader(stream, lines: queue.Queue) -> None:
    """Thread body: push each decoded output line, then None at end of stream."""
    try:
        for raw in iter(stream.readline, b""):
            lines.put(raw.decode("utf-8", errors="replace").rstrip("\r\n"))
    finally:
        lines.put(None)


def _stop(proc: subprocess.Popen, term_grace_s: float | None = None) -> None:
    """SIGTERM the engine's process group (the engine removes its temporaries, train writes a
    checkpoint), SIGKILL it if it lingers past the grace period."""
    grace_s = TERM_GRACE_S if term_grace_s is None else term_grace_s
    for sig, grace in ((signal.SIGTERM, grace_s), (signal.SIGKILL, 5.0)):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, sig)
        try:
            proc.wait(timeout=grace)
            break
        except subprocess.TimeoutExpired:
            continue
    with contextlib.suppress(ProcessLookupError, PermissionError):  # children that outlived the leader
        os.killpg(proc.pid, signal.SIGKILL)


class EngineRun:
    """One engine invocation. ``run()`` returns the ``done`` event parsed by the engine-plugin
    contract (:class:`contract.Done`: every output path by role, numbers in ``values``), or None if
    the feedback was cancelled (outputs in ``cleanup`` are then removed)."""

    def __init__(self, args: list[str], feedback=None, cleanup=(), executable: str | None = None,
                 keep_on_cancel=(), term_grace_s: float | None = None):
        self.executable = executable or find_engine()
        self.args = [str(a) for a in args]
        self.feedback = feedback
        self.cleanup = list(cleanup)
        self.keep_on_cancel = list(keep_on_cancel)
        self.term_grace_s = term_grace_s
        self.done: contract.Done | None = None
        self.contract_error: str | None = None
        self.error_message: str | None = None
        self.returncode: int | None = None
        self.tail: deque[str] = deque(maxlen=20)

    @property
    def command(self) -> list[str]:
        return [self.executable, *self.args, "--progress", "json"]

    def _cancelled(self) -> bool:
        return self.feedback is not None and self.feedback.isCanceled()

    def _handle(self, line: str) -> None:
        fb = self.feedback
        event = None
        if line.startswith("{"):
            try:
                event = json.loads(line)
            except ValueError:
                event = None
        if not isinstance(event, dict) or "event" not in event:
            if line.strip():
                self.tail.append(line)
                # "error: ..." (stderr) repeats the error event: it is said once, as the run's failure
                if fb is not None and not line.startswith("error: "):
                    fb.pushConsoleInfo(line)
            return
        kind = event.get("event")
        message = str(event.get("message", "") or "")
        if kind == contract.EVENT_PROGRESS:
            try:
                fraction = float(event.get("fraction", 0.0))
            except (TypeError, ValueError):
                fraction = 0.0
            if fb is not None:
                fb.setProgress(max(0.0, min(100.0, 100.0 * fraction)))
                if message:
                    fb.setProgressText(message)
        elif kind == contract.EVENT_INFO:
            if fb is not None:
                fb.pushInfo(message)
        elif kind == contract.EVENT_WARNING:
            if fb is not None:
                fb.pushWarning(message)
        elif kind == contract.EVENT_ERROR:
            self.error_message = message or self.error_message
        elif kind == contract.EVENT_DONE:
            try:
                self.done = contract.parse_done(event, command=self.args[0] if self.args else None)
            except contract.ContractError as exc:
                self.contract_error = str(exc)
        elif fb is not None and message:
            fb.pushInfo(message)

    def run(self) -> contract.Done | None:
        if self.feedback is not None:
            self.feedback.pushCommandInfo(" ".join(_quote(a) for a in self.command))
        try:
            proc = subprocess.Popen(self.command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                    stderr=subprocess.STDOUT, env=clean_environment(),
                                    start_new_session=True, close_fds=True)
        except OSError as exc:
            raise EngineError(f"HyperLDM engine '{self.executable}' could not be started "
                              f"({exc.strerror or exc}); {HOW_TO_FIX}") from exc
        lines: queue.Queue = queue.Queue()
        reader = threading.Thread(target=_reader, args=(proc.stdout, lines), daemon=True)
        reader.start()
        cancelled = False
        try:
            eof = False
            while not eof:
                if self._cancelled():
                    cancelled = True
                    break
                try:
                    line = lines.get(timeout=POLL_S)
                except queue.Empty:
                    continue
                if line is None:
                    eof = True
                else:
                    self._handle(line)
            if cancelled:
                _stop(proc, self.term_grace_s)
            else:
                while proc.poll() is None:  # output closed; wait for exit, still honouring cancel
                    if self._cancelled():
                        cancelled = True
                        _stop(proc, self.term_grace_s)
                        break
                    time.sleep(POLL_S)
        except BaseException:
            _stop(proc)
            remove_outputs(self.cleanup)
            raise
        finally:
            reader.join(timeout=2.0)
            if proc.stdout is not None:
                proc.stdout.close()
        self.returncode = proc.returncode
        if cancelled:
            self.error_message = None
            while True:  # what the engine said while stopping (e.g. where it left a checkpoint)
                try:
                    line = lines.get_nowait()
                except queue.Empty:
                    break
                if line is not None and not line.startswith("error: "):
                    self._handle(line)
            remove_outputs(p for p in self.cleanup if p not in self.keep_on_cancel)
            if self.feedback is not None:
                if self.error_message:
                    self.feedback.pushInfo(f"Engine: {self.error_message}")
                self.feedback.pushInfo("Cancelled: the engine was stopped and no partial output was kept.")
            return None
        if self.returncode != 0:
            remove_outputs(self.cleanup)
            raise EngineError(self._failure_message())
        if self.done is None:
            remove_outputs(self.cleanup)
            why = self.contract_error or "it ended without the 'done' event that lists its outputs"
            raise EngineError(f"HyperLDM engine '{self.executable}' does not match this plugin: {why}; "
                              "update the engine (HyperLDM > 'Set up or update the engine') or the plugin")
        return self.done

    def _failure_message(self) -> str:
        if self.error_message:
            return self.error_message
        for line in reversed(self.tail):
            if line.startswith("error: "):
                return line[len("error: "):]
        last = self.tail[-1] if self.tail else "no output"
        return (f"HyperLDM engine '{self.executable}' failed (exit status {self.returncode}): {last}; "
                f"if the engine is broken, reinstall it or {HOW_TO_FIX}")


def run_process(command: list[str], feedback=None, on_line=None, env: dict | None = None) -> int | None:
    """Run a helper program (python -m venv, pip) without a shell: each output line goes to the
    feedback's console (and ``on_line``), cancel kills its process group. Exit status, or None
    when cancelled."""
    if feedback is not None:
        feedback.pushCommandInfo(" ".join(_quote(a) for a in command))
    try:
        proc = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                env=env or clean_environment(), start_new_session=True, close_fds=True)
    except OSError as exc:
        raise EngineError(f"'{command[0]}' could not be started ({exc.strerror or exc})") from exc
    lines: queue.Queue = queue.Queue()
    reader = threading.Thread(target=_reader, args=(proc.stdout, lines), daemon=True)
    reader.start()
    try:
        while True:
            if feedback is not None and feedback.isCanceled():
                _stop(proc, 1.0)
                return None
            try:
                line = lines.get(timeout=POLL_S)
            except queue.Empty:
                continue
            if line is None:
                break
            if line.strip():
                if feedback is not None:
                    feedback.pushConsoleInfo(line)
                if on_line is not None:
                    on_line(line)
        while proc.poll() is None:
            if feedback is not None and feedback.isCanceled():
                _stop(proc, 1.0)
                return None
            time.sleep(POLL_S)
    except BaseException:
        _stop(proc)
        raise
    finally:
        reader.join(timeout=2.0)
        if proc.stdout is not None:
            proc.stdout.close()
    return proc.returncode


def _quote(arg: str) -> str:
    """Shell-like quoting for the log line only; the command itself never goes through a shell."""
    return shlex.quote(arg)


def run_engine(args: list[str], feedback=None, cleanup=(), keep_on_cancel=(),
               term_grace_s: float | None = None) -> contract.Done | None:
    """Run ``hyperldm-engine ARGS --progress json``; see :class:`EngineRun`."""
    return EngineRun(args, feedback=feedback, cleanup=cleanup, keep_on_cancel=keep_on_cancel,
                     term_grace_s=term_grace_s).run()
