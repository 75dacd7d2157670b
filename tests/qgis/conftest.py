"""Fixtures for the QGIS plugin tests: Debian's QGIS in-process, qgis_process, engine, scenes.

Run by ``scripts/test_qgis.sh`` with Debian's python. Elsewhere (the engine venv has no ``qgis``)
this folder is not collected, except with CI=true, where a missing QGIS fails the run.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
IN_CI = os.environ.get("CI", "").lower() not in ("", "0", "false", "no")

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("QGIS_CUSTOM_CONFIG_PATH", tempfile.mkdtemp(prefix="qgis-profile-"))
if "/usr/share/qgis/python/plugins" not in sys.path:
    sys.path.insert(0, "/usr/share/qgis/python/plugins")  # 'processing' lives here on Debian
try:
    import qgis.core  # noqa: F401

    HAVE_QGIS = True
except ImportError:
    if IN_CI:
        raise ImportError("CI=true but QGIS's Python bindings are missing: run scripts/test_qgis.sh "
                          "after apt-get install python3-qgis qgis gdal-bin xvfb xauth") from None
    HAVE_QGIS = False
    collect_ignore_glob = ["*.py"]

if HAVE_QGIS:
    sys.path.insert(0, str(HERE))
    sys.path.insert(0, str(ROOT / "qgis_plugin"))  # the plugin from the checkout, as QGIS imports it
    from qgis.core import QgsApplication
    from qgis_helpers import engine_path, require_engine_command

    @pytest.fixture(scope="session")
    def qgis_app():
        """QGIS with Processing and the plugin loaded the way QGIS loads it."""
        QgsApplication.setPrefixPath("/usr", True)
        app = QgsApplication([], False)
        app.initQgis()
        from processing.core.Processing import Processing

        Processing.initialize()
        import qgis.utils

        assert qgis.utils.loadPlugin("hyperldm"), "the plugin did not import"
        assert qgis.utils.startProcessingPlugin("hyperldm"), "initProcessing() failed"
        yield app
        qgis.utils.unloadPlugin("hyperldm")
        app.exitQgis()

    @pytest.fixture(scope="session")
    def scene(tmp_path_factory):
        """A small simulated scene (hsi.tif, rgb.tif, labels.tif) from the real engine."""
        require_engine_command("simulate")
        from hyperldm.engine import clean_environment

        out = tmp_path_factory.mktemp("scene") / "scene"
        proc = subprocess.run([str(engine_path()), "simulate", str(out), "--size", "64", "128", "--seed", "3"],
                              capture_output=True, text=True, timeout=300, env=clean_environment())
        assert proc.returncode == 0, proc.stdout + proc.stderr
        for name in ("hsi.tif", "rgb.tif", "labels.tif"):
            assert (out / name).is_file(), name
        return out

    @pytest.fixture(scope="session")
    def bundle(scene, tmp_path_factory):
        """A tiny model bundle trained by the real engine on the scene (seconds, not quality)."""
        require_engine_command("train")
        from hyperldm.engine import clean_environment

        out = tmp_path_factory.mktemp("bundle") / "tiny_model"
        args = [str(engine_path()), "train", str(scene / "hsi.tif"), str(out), "--labels",
                str(scene / "labels.tif"), "--iterations", "1", "--classifier-iterations", "2",
                "--patch-size", "32", "--batch-size", "1", "--checkpoint-every", "0", "--progress", "none"]
        proc = subprocess.run(args, capture_output=True, text=True, timeout=600, env=clean_environment())
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert (out / "config.json").is_file()
        return out

    @pytest.fixture(scope="session")
    def plugin_dir(tmp_path_factory):
        """The plugin as users install it: the built ZIP extracted into a plugin folder."""
        zip_path = os.environ.get("HYPERLDM_PLUGIN_ZIP")
        if not zip_path:
            zip_path = tmp_path_factory.mktemp("zip") / "hyperldm.zip"
            subprocess.run([sys.executable, str(ROOT / "scripts" / "build_plugin_zip.py"), "--out",
                            str(zip_path)], check=True, capture_output=True)
        target = tmp_path_factory.mktemp("plugins")
        with zipfile.ZipFile(zip_path) as zf:
            zf.extractall(target)
        return target

    @pytest.fixture(scope="session")
    def qgis_process_env(plugin_dir, tmp_path_factory):
        """Environment for qgis_process.bin: its own profile with the plugin enabled, no leaks."""
        profile = tmp_path_factory.mktemp("qp-profile")
        ini = profile / "profiles" / "default" / "QGIS" / "QGIS3.ini"
        ini.parent.mkdir(parents=True)
        ini.write_text("[PythonPlugins]\nhyperldm=true\n")
        env = {k: v for k, v in os.environ.items() if k not in (
            "PYTHONPATH", "PYTHONHOME", "GDAL_DATA", "PROJ_LIB", "PROJ_DATA", "QGIS_PLUGINPATH")}
        env.update(QT_QPA_PLATFORM="offscreen", QGIS_CUSTOM_CONFIG_PATH=str(profile),
                   QGIS_PLUGINPATH=str(plugin_dir), HYPERLDM_ENGINE=str(engine_path()))
        return env
