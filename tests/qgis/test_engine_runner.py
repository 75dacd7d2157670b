"""engine.py: finding the engine, the child's environment, JSON events, failures and cancel."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest
from hyperldm import engine
from hyperldm.contract import CONTRACT_VERSION, done_payload
from hyperldm.engine import EngineError, EngineRun, clean_environment, find_engine
from qgis_helpers import RecordingFeedback, pid_alive, write_fake_engine


@pytest.fixture
def exe(tmp_path):
    def make(name="hyperldm-engine", folder="a"):
        d = tmp_path / folder
        d.mkdir(parents=True, exist_ok=True)
        return write_fake_engine(d / name, "print('hi')\n")
    return make


def test_find_engine_prefers_setting_then_env_then_readme_venvs_then_path(exe, tmp_path, monkeypatch):
    setting, env_exe, venv_exe, path_exe = exe(folder="s"), exe(folder="e"), exe(folder="v"), exe(folder="p")
    monkeypatch.setattr(engine, "default_candidates", lambda: [tmp_path / "missing", venv_exe])
    monkeypatch.setenv("PATH", str(path_exe.parent))
    assert find_engine(str(setting), {"HYPERLDM_ENGINE": str(env_exe)}) == str(setting)
    assert find_engine("", {"HYPERLDM_ENGINE": str(env_exe)}) == str(env_exe)
    assert find_engine("", {}) == str(venv_exe)
    monkeypatch.setattr(engine, "default_candidates", lambda: [])
    assert find_engine("", {}) == str(path_exe)
    # a venv folder is accepted for the setting too
    (tmp_path / "venv" / "bin").mkdir(parents=True)
    inside = write_fake_engine(tmp_path / "venv" / "bin" / "hyperldm-engine", "")
    assert find_engine(str(tmp_path / "venv"), {}) == str(inside)


def test_readme_venv_candidates_include_the_checkout_and_the_user_venv(monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path))
    candidates = engine.default_candidates()
    root = Path(__file__).resolve().parents[2]
    assert candidates[0] == root / ".venv" / "bin" / "hyperldm-engine"  # plugin runs from the checkout
    assert tmp_path / ".local/share/hyperldm/venv/bin/hyperldm-engine" in candidates


def test_missing_or_unusable_engine_says_how_to_fix(tmp_path, monkeypatch):
    monkeypatch.setattr(engine, "default_candidates", lambda: [])
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(EngineError) as info:
        find_engine("", {})
    message = str(info.value)
    assert "not found" in message and "HYPERLDM_ENGINE_PATH" in message and "HYPERLDM_ENGINE" in message
    assert "Set up or update the engine" in message and "\n" not in message
    not_executable = tmp_path / "hyperldm-engine"
    not_executable.write_text("#!/bin/sh\n")
    with pytest.raises(EngineError, match=r"environment variable HYPERLDM_ENGINE points to .* not an executable"):
        find_engine("", {"HYPERLDM_ENGINE": str(not_executable)})
    with pytest.raises(EngineError, match="provider setting HYPERLDM_ENGINE_PATH"):
        find_engine(str(tmp_path / "nope"), {})


def test_child_environment_drops_qgis_python_gdal_and_proj_paths():
    env = clean_environment({"PATH": "/usr/bin", "HOME": "/h", "PYTHONPATH": "/usr/lib/python3/dist-packages",
                             "PYTHONHOME": "/usr", "GDAL_DATA": "/usr/share/gdal", "PROJ_LIB": "/usr/share/proj",
                             "PROJ_DATA": "/usr/share/proj", "GDAL_DRIVER_PATH": "/x",
                             "LD_LIBRARY_PATH": "/usr/lib/qgis", "QGIS_PREFIX_PATH": "/usr"})
    assert env == {"PATH": "/usr/bin", "HOME": "/h", "PYTHONUNBUFFERED": "1", "PYTHONIOENCODING": "utf-8"}


def test_json_events_reach_the_feedback_and_done_outputs_are_returned(tmp_path, monkeypatch):
    monkeypatch.setenv("PYTHONPATH", "/leak")
    monkeypatch.setenv("PROJ_LIB", "/leak")
    fake = write_fake_engine(tmp_path / "eng", """
        import json, os, sys
        def emit(**e): print(json.dumps(e), flush=True)
        emit(event="info", message="args " + " ".join(sys.argv[1:]))
        emit(event="info", message="env " + str([k for k in ("PYTHONPATH", "PROJ_LIB") if k in os.environ]))
        for i in range(1, 5):
            emit(event="progress", fraction=i / 4, done=i, total=4, message=f"tile {i}/4")
        print("plain text line")
        emit(event="warning", message="model trained at 1 m, input is 0.3 m")
        print(DONE, flush=True)
        """.replace("DONE", repr(json.dumps(done_payload("synthesize", {"hsi": "x.tif"}, values={"tiles": 4})))))
    fb = RecordingFeedback()
    run = EngineRun(["synthesize", "in put.tif", "out;rm -rf x.tif"], feedback=fb, executable=str(fake))
    done = run.run()
    assert done.paths("hsi") == ["x.tif"] and done.values == {"tiles": 4}
    assert fb.progress == [25.0, 50.0, 75.0, 100.0]
    # arguments arrive verbatim (no shell), --progress json is appended, the environment is clean
    assert fb.infos[0] == "args synthesize in put.tif out;rm -rf x.tif --progress json"
    assert fb.infos[1] == "env []"
    assert fb.warnings == ["model trained at 1 m, input is 0.3 m"]


def test_engine_error_event_becomes_the_message_and_outputs_are_removed(tmp_path):
    out = tmp_path / "out.tif"
    fake = write_fake_engine(tmp_path / "eng", f"""
        import json, sys
        open({str(out)!r}, "w").write("partial")
        print(json.dumps({{"event": "error", "message": "in.tif: not a raster GDAL can open"}}), flush=True)
        print("error: in.tif: not a raster GDAL can open", file=sys.stderr)
        sys.exit(2)
        """)
    from qgis.core import QgsProcessingFeedback

    lines: list[str] = []

    class Console(QgsProcessingFeedback):
        def pushConsoleInfo(self, info):  # noqa: N802 (QGIS API name)
            lines.append(info)
            super().pushConsoleInfo(info)

    console = Console()
    with pytest.raises(EngineError) as info:
        EngineRun(["synthesize"], feedback=console, cleanup=[str(out)], executable=str(fake)).run()
    assert str(info.value) == "in.tif: not a raster GDAL can open"
    assert not out.exists()
    assert not [line for line in lines if "not a raster" in line], "the error is said once, not twice"


def test_broken_engine_reports_exit_status_last_line_and_fix(tmp_path):
    fake = write_fake_engine(tmp_path / "eng", """
        import sys
        print("Traceback (most recent call last):", file=sys.stderr)
        print("ModuleNotFoundError: No module named 'torch'", file=sys.stderr)
        sys.exit(1)
        """)
    with pytest.raises(EngineError) as info:
        EngineRun(["synthesize"], executable=str(fake)).run()
    message = str(info.value)
    assert "exit status 1" in message and "No module named 'torch'" in message
    assert "Set up or update the engine" in message
    bad_interpreter = tmp_path / "eng2"
    bad_interpreter.write_text("#!/nonexistent/python\n")
    bad_interpreter.chmod(0o755)
    with pytest.raises(EngineError, match=r"could not be started .*Set up or update the engine"):
        EngineRun(["synthesize"], executable=str(bad_interpreter)).run()


@pytest.mark.timeout(30)
def test_cancel_kills_a_silent_engine_and_its_children_and_removes_outputs(tmp_path):
    out = tmp_path / "out.tif"
    tmp_sibling = tmp_path / ".out.tif.hyperldm-tmp-1-abc.tif"
    pids = tmp_path / "pids"
    fake = write_fake_engine(tmp_path / "eng", f"""
        import os, signal, subprocess, time
        signal.signal(signal.SIGTERM, signal.SIG_IGN)      # a stubborn engine: only SIGKILL stops it
        child = subprocess.Popen(["sleep", "60"])
        open({str(pids)!r}, "w").write(f"{{os.getpid()}} {{child.pid}}")
        open({str(out)!r}, "w").write("partial")
        open({str(tmp_sibling)!r}, "w").write("partial")
        time.sleep(60)                                     # silent: no output at all
        """)
    fb = RecordingFeedback()
    run = EngineRun(["synthesize"], feedback=fb, cleanup=[str(out)], executable=str(fake))
    engine.TERM_GRACE_S, grace = 0.5, engine.TERM_GRACE_S
    try:
        timer = threading.Timer(1.0, fb.cancel)
        timer.start()
        start = time.monotonic()
        assert run.run() is None
        elapsed = time.monotonic() - start
    finally:
        engine.TERM_GRACE_S = grace
    assert elapsed < 5.0
    assert run.returncode == -9
    engine_pid, child_pid = map(int, pids.read_text().split())
    deadline = time.monotonic() + 2
    while pid_alive(child_pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not pid_alive(engine_pid) and not pid_alive(child_pid)
    assert not out.exists() and not tmp_sibling.exists()


@pytest.mark.timeout(30)
def test_cancel_sends_sigterm_first_so_the_engine_can_clean_up(tmp_path):
    marker = tmp_path / "got-sigterm"
    fake = write_fake_engine(tmp_path / "eng", f"""
        import json, signal, sys, time
        def stop(*_):
            open({str(marker)!r}, "w").write("1")
            sys.exit(143)
        signal.signal(signal.SIGTERM, stop)
        for i in range(1, 1000):
            print(json.dumps({{"event": "progress", "fraction": i / 1000}}), flush=True)
            time.sleep(0.05)
        """)
    fb = RecordingFeedback(cancel_after=2)
    run = EngineRun(["train"], feedback=fb, executable=str(fake))
    assert run.run() is None
    assert run.returncode == 143 and marker.exists()


@pytest.mark.parametrize("change, message", [
    ({"contract": CONTRACT_VERSION + 1}, "contract version"),
    ({"outputs": {"output": ["x.tif"]}}, "role 'output' is not declared"),
    ({"command": "diversity"}, "done event of 'diversity' where 'synthesize' was run"),
    (None, "ended without the 'done' event"),
])
def test_an_engine_that_disagrees_with_the_contract_is_refused_in_one_line(tmp_path, change, message):
    """A renamed role, another contract version or a missing done event on the engine's side only:
    the plugin says engine and plugin do not match instead of guessing file names."""
    event = done_payload("synthesize", {"hsi": "x.tif"})
    line = "" if change is None else json.dumps({**event, **change})
    fake = write_fake_engine(tmp_path / "eng", f"""
        print({line!r}, flush=True)
        """)
    with pytest.raises(EngineError, match="does not match this plugin") as info:
        EngineRun(["synthesize", "a.tif", "b.tif"], executable=str(fake), cleanup=[str(tmp_path / "b.tif")]).run()
    assert message in str(info.value)
