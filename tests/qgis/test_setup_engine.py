"""hyperldm:setup_engine: venv + pip into the plugin's search location from QGIS, then an algorithm with it.

Offline: the engine source is a tiny stand-in package (stdlib only, console script ``hyperldm-engine``)
built with --no-build-isolation, so the test needs no network; the real engine's install is the same
pip call on the repository or its wheel.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
from qgis_helpers import RecordingFeedback

STAND_IN = '''
import json, sys
from pathlib import Path

def main():
    if sys.argv[1:] == ["--version"]:
        print("hyperldm-engine, version 0.0.test")
        return
    out = sys.argv[3]
    Path(out).write_bytes(Path(sys.argv[2]).read_bytes())
    print(json.dumps({"event": "done", "contract": VERSION, "command": "synthesize", "outputs": {"hsi": [out]}}))
'''


def _stand_in_package(root: Path, version: int) -> Path:
    pkg = root / "standin"
    (pkg / "hyperldm_standin").mkdir(parents=True)
    (pkg / "hyperldm_standin" / "__init__.py").write_text(STAND_IN.replace("VERSION", str(version)))
    (pkg / "setup.py").write_text(textwrap.dedent("""
        from setuptools import setup
        setup(name="hyperldm-standin", version="0.0.1", packages=["hyperldm_standin"],
              entry_points={"console_scripts": ["hyperldm-engine=hyperldm_standin:main"]})
        """))
    return pkg


@pytest.mark.timeout(300)
def test_setup_installs_into_the_searched_venv_and_an_algorithm_then_finds_it(qgis_app, tmp_path, monkeypatch):
    import processing
    from hyperldm import engine
    from hyperldm.contract import CONTRACT_VERSION
    from qgis.core import QgsSettings

    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("HYPERLDM_ENGINE", raising=False)
    QgsSettings().remove("Processing/Configuration/HYPERLDM_ENGINE_PATH")
    monkeypatch.setattr(engine, "_plugin_repo_root", lambda: None)  # as from the ZIP: no checkout
    source = _stand_in_package(tmp_path, CONTRACT_VERSION)
    fb = RecordingFeedback()
    res = processing.run("hyperldm:setup_engine", {
        "SOURCE": str(source), "PYTHON": "/usr/bin/python3",
        "PIP_ARGS": "--no-build-isolation --no-deps --no-index"}, feedback=fb)
    exe = home / ".local" / "share" / "hyperldm" / "venv" / "bin" / "hyperldm-engine"
    assert res["ENGINE"] == str(exe) and exe.is_file()
    assert res["VERSION"] == "hyperldm-engine, version 0.0.test"
    assert engine.find_engine("", {}) == str(exe)  # where the plugin looks, with nothing configured
    rgb = tmp_path / "rgb.tif"
    rgb.write_bytes(b"II*\x00")  # the stand-in only copies it
    from hyperldm.engine import run_engine

    done = run_engine(["synthesize", str(rgb), str(tmp_path / "out.tif")])
    assert done.paths("hsi") == [str(tmp_path / "out.tif")]
    assert json.dumps(fb.progress) and fb.progress[-1] == 100


def test_setup_without_a_source_says_what_to_choose(qgis_app, monkeypatch):
    import processing
    from hyperldm.algorithms import setup_engine
    from qgis.core import QgsProcessingException

    monkeypatch.setattr(setup_engine, "default_source", lambda: None)
    with pytest.raises(QgsProcessingException, match="choose a hyperldm_engine wheel"):
        processing.run("hyperldm:setup_engine", {})
