"""hyperldm:setup_engine: create the engine's virtual environment and pip-install the engine into it,
from QGIS, without a terminal (pip's output in the log, cancellable, ends with ``--version``)."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

from qgis.core import (
    QgsProcessingException,
    QgsProcessingOutputString,
    QgsProcessingParameterFile,
    QgsProcessingParameterString,
    QgsSettings,
)

from ..engine import (
    EXECUTABLE,
    SETTING_ENGINE_PATH,
    USER_VENV,
    EngineError,
    _plugin_repo_root,
    clean_environment,
    run_process,
    user_venv,
)
from .base import HyperLDMAlgorithm, advanced

#: a wheel shipped inside the plugin ZIP (scripts/build_plugin_zip.py --wheel puts it here)
WHEEL_FOLDER = Path(__file__).resolve().parent.parent / "wheels"
_COLLECTING = re.compile(r"^\s*(Collecting|Processing|Downloading|Building|Installing|Successfully)\b")


def default_source() -> str | None:
    """What to install when SOURCE is empty: the plugin's own wheel, else the checkout it runs from."""
    wheels = sorted(WHEEL_FOLDER.glob("hyperldm_engine-*.whl")) if WHEEL_FOLDER.is_dir() else []
    if wheels:
        return str(wheels[-1])
    repo = _plugin_repo_root()
    return str(repo) if repo is not None else None


def venv_bin(venv: Path, name: str) -> Path:
    return venv / ("Scripts" if os.name == "nt" else "bin") / (f"{name}.exe" if os.name == "nt" else name)


class SetupEngineAlgorithm(HyperLDMAlgorithm):
    """Create (or reuse) the engine venv and install or update the engine into it."""

    SOURCE = "SOURCE"
    PYTHON = "PYTHON"
    VENV = "VENV"
    PIP_ARGS = "PIP_ARGS"
    ENGINE = "ENGINE"
    VERSION = "VERSION"

    def name(self):
        return "setup_engine"

    def displayName(self):  # noqa: N802 (QGIS API name)
        return self.tr("Set up or update the engine")

    def shortHelpString(self):  # noqa: N802 (QGIS API name)
        return self.tr(
            "Installs the hyperldm-engine program that the other HyperLDM algorithms run, with no terminal: "
            "creates a Python virtual environment in {} (where the plugin looks for the engine), installs "
            "the engine and its pinned dependencies (PyTorch among them) with pip, and runs "
            "'hyperldm-engine --version'. Run it again to update. pip's output appears in the log; Cancel "
            "stops it. With PyTorch's CPU build the environment takes about 1.6 GB; on Linux PyPI's PyTorch "
            "is the CUDA build, several GB more (see pip arguments).\n\n"
            "Source: a hyperldm_engine wheel (.whl) or the repository folder; empty = the wheel shipped with "
            "the plugin, else the repository this plugin runs from.\n"
            "Python (advanced): the Python 3.11 or newer (the engine needs it) to create the environment "
            "with; empty = python3 on PATH (QGIS's own Python is not used: its libraries would clash with "
            "the engine's).\n"
            "pip arguments (advanced): e.g. '--extra-index-url https://download.pytorch.org/whl/cpu' for "
            "PyTorch's CPU build on Linux, '--index-url https://download.pytorch.org/whl/cu124 "
            "--extra-index-url https://pypi.org/simple' for a CUDA 12.4 build, or '--no-index --find-links "
            "/wheels' offline.\n\n"
            "Needs internet access to PyPI unless the pip arguments point elsewhere."
        ).format(USER_VENV)

    def initAlgorithm(self, config=None):  # noqa: N802 (QGIS API name)
        # Folder behaviour: QGIS 3.22's File behaviour refuses paths without a suffix (a repository, a
        # python3 executable); a typed .whl path is valid here too.
        self.addParameter(QgsProcessingParameterFile(
            self.SOURCE, self.tr("Engine source: repository folder or wheel (.whl) path (empty = shipped with the "
                                 "plugin)"), behavior=QgsProcessingParameterFile.Behavior.Folder, optional=True))
        self.addParameter(advanced(QgsProcessingParameterString(
            self.PYTHON, self.tr("Python interpreter for the environment (empty = python3 on PATH)"), "",
            optional=True)))
        self.addParameter(advanced(QgsProcessingParameterString(
            self.VENV, self.tr("Environment folder (empty = {}, where the plugin looks)").format(USER_VENV), "",
            optional=True)))
        self.addParameter(advanced(QgsProcessingParameterString(
            self.PIP_ARGS, self.tr("Extra pip arguments"), "", optional=True)))
        self.addOutput(QgsProcessingOutputString(self.ENGINE, self.tr("Engine executable")))
        self.addOutput(QgsProcessingOutputString(self.VERSION, self.tr("Engine version")))

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802 (QGIS API name)
        source = self.parameterAsFile(parameters, self.SOURCE, context) or default_source()
        if not source:
            raise QgsProcessingException(self.tr(
                "No engine source: this plugin ships no engine wheel and does not run from a repository "
                "checkout; choose a hyperldm_engine wheel (.whl) or the repository folder as Source"))
        if not Path(source).exists():
            raise QgsProcessingException(self.tr("Engine source not found: {}").format(source))
        custom_venv = (self.parameterAsString(parameters, self.VENV, context) or "").strip()
        venv = Path(os.path.expanduser(custom_venv)) if custom_venv else user_venv()
        python = (self.parameterAsString(parameters, self.PYTHON, context) or "").strip() or _find_python()
        if not python:
            raise QgsProcessingException(self.tr(
                "No python3 found on PATH to create the environment with; install Python 3.11 or newer "
                "(with its venv module) or choose it as 'Python interpreter'"))
        env = clean_environment()
        steps = [("venv", 0, 10), ("pip", 10, 95), ("version", 95, 100)]
        try:
            venv_python = venv_bin(venv, "python")
            if not venv_python.is_file():
                feedback.pushInfo(self.tr("Creating the environment {} with {}").format(venv, python))
                venv.parent.mkdir(parents=True, exist_ok=True)
                rc = run_process([python, "-m", "venv", str(venv)], feedback, env=env)
                if rc is None:
                    return {}
                if rc != 0 or not venv_python.is_file():
                    raise QgsProcessingException(self.tr(
                        "Could not create the environment {} with {} (exit status {}); on Debian or Ubuntu "
                        "install python3-venv").format(venv, python, rc))
            else:
                feedback.pushInfo(self.tr("Updating the environment {}").format(venv))
            feedback.setProgress(steps[0][2])
            counter = {"n": 0}

            def on_pip_line(line):
                if _COLLECTING.match(line):
                    counter["n"] += 1  # pip gives no total: creep towards 95 %
                    low, high = steps[1][1], steps[1][2]
                    # no setProgressText: the 3.22 dialog writes it into the log too, where pip's line
                    # already is (every package appeared twice)
                    feedback.setProgress(high - (high - low) * 0.93 ** counter["n"])

            pip = [str(venv_python), "-m", "pip", "install", "--upgrade", "--progress-bar", "off",
                   "--disable-pip-version-check", *_split(self.parameterAsString(parameters, self.PIP_ARGS, context)),
                   source]
            rc = run_process(pip, feedback, on_line=on_pip_line, env=env)
            if rc is None:
                feedback.pushInfo(self.tr("Cancelled: pip was stopped; run the set-up again to finish."))
                return {}
            if rc != 0:
                raise QgsProcessingException(self.tr(
                    "pip could not install the engine (exit status {}); the log shows pip's message").format(rc))
            engine = venv_bin(venv, EXECUTABLE)
            versions = []
            rc = run_process([str(engine), "--version"], feedback, on_line=versions.append, env=env)
            if rc is None:
                return {}
            if rc != 0 or not versions:
                raise QgsProcessingException(self.tr("The installed engine {} does not start (exit status {})").format(
                    engine, rc))
        except EngineError as exc:
            raise QgsProcessingException(str(exc)) from None
        if custom_venv:  # not a place the plugin searches: remember it
            QgsSettings().setValue(f"Processing/Configuration/{SETTING_ENGINE_PATH}", str(engine))
            feedback.pushInfo(self.tr("Set {} to {}").format(SETTING_ENGINE_PATH, engine))
        feedback.setProgress(100)
        feedback.pushInfo(self.tr("Engine ready: {} ({})").format(engine, versions[-1]))
        return {self.ENGINE: str(engine), self.VERSION: versions[-1]}


def _find_python() -> str | None:
    """python3 on PATH (never QGIS's own interpreter: under qgis_process it is whatever python3 comes
    first, and inside QGIS on Windows its libraries would clash with the engine's)."""
    for name in ("python3", "python"):
        found = shutil.which(name)
        if found:
            return found
    return None


def _split(text: str) -> list[str]:
    import shlex

    return shlex.split(text or "")
