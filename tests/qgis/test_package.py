"""The plugin package: metadata, ZIP layout, import hygiene, provider and algorithm definitions."""

from __future__ import annotations

import ast
import configparser
import subprocess
import sys
import zipfile

import pytest
from qgis_helpers import ROOT

PLUGIN = ROOT / "qgis_plugin" / "hyperldm"
ALLOWED_THIRD_PARTY = {"qgis", "processing"}  # processing: QGIS's own Processing plugin


def _metadata(path):
    parser = configparser.ConfigParser(interpolation=None)
    parser.optionxform = str
    parser.read(path, encoding="utf-8")
    return parser["general"]


def test_root_metadata_has_every_required_key_and_is_copied_into_the_plugin():
    meta = _metadata(ROOT / "metadata.txt")
    for key in ("name", "qgisMinimumVersion", "description", "about", "version", "author", "email",
                "repository", "tags"):
        assert meta.get(key, "").strip(), key
    assert meta["qgisMinimumVersion"] == "3.22"
    assert meta["hasProcessingProvider"] == "yes"
    assert (PLUGIN / meta["icon"]).is_file()
    assert (PLUGIN / "metadata.txt").read_bytes() == (ROOT / "metadata.txt").read_bytes(), \
        "qgis_plugin/hyperldm/metadata.txt is stale: run scripts/build_plugin_zip.py"


def test_zip_holds_one_hyperldm_folder_with_root_metadata_and_icons(tmp_path):
    out = tmp_path / "hyperldm.zip"
    subprocess.run([sys.executable, str(ROOT / "scripts" / "build_plugin_zip.py"), "--out", str(out)],
                   check=True, capture_output=True)
    with zipfile.ZipFile(out) as zf:
        names = zf.namelist()
        assert {n.split("/")[0] for n in names} == {"hyperldm"}
        for needed in ("metadata.txt", "__init__.py", "plugin.py", "provider.py", "engine.py", "icon.svg",
                       "icon.png", "algorithms/synthesize.py", "algorithms/diversity.py",
                       "algorithms/train.py"):
            assert f"hyperldm/{needed}" in names, needed
        assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]
        assert zf.read("hyperldm/metadata.txt") == (ROOT / "metadata.txt").read_bytes()


def _python_files():
    return sorted(PLUGIN.rglob("*.py"))


@pytest.mark.parametrize("path", _python_files(), ids=lambda p: str(p.relative_to(PLUGIN)))
def test_plugin_imports_only_qgis_and_the_standard_library(path):
    tree = ast.parse(path.read_text(), str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots = [alias.name.split(".")[0] for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            roots = [node.module.split(".")[0]]
        else:
            continue
        for root in roots:
            assert root in sys.stdlib_module_names or root in ALLOWED_THIRD_PARTY, f"{path}: imports {root}"


@pytest.mark.parametrize("path", _python_files(), ids=lambda p: str(p.relative_to(PLUGIN)))
def test_plugin_never_uses_a_shell_or_sys_executable(path):
    tree = ast.parse(path.read_text(), str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            assert not any(k.arg == "shell" for k in node.keywords), f"{path}:{node.lineno} shell="
            func = ast.unparse(node.func)
            assert func not in ("os.system", "os.popen", "subprocess.getoutput"), f"{path}:{node.lineno}"
        if isinstance(node, ast.Attribute) and node.attr == "executable":
            assert ast.unparse(node.value) != "sys", f"{path}:{node.lineno} uses sys.executable"


def test_provider_registers_three_algorithms_with_stable_ids(qgis_app):
    from qgis.core import QgsApplication

    provider = QgsApplication.processingRegistry().providerById("hyperldm")
    assert provider is not None and provider.name() == "HyperLDM"
    assert not provider.icon().isNull()
    ids = sorted(a.id() for a in provider.algorithms())
    assert ids == ["hyperldm:diversity", "hyperldm:synthesize", "hyperldm:train"]


def test_unload_removes_the_provider_and_init_processing_adds_it_back(qgis_app):
    import qgis.utils
    from qgis.core import QgsApplication

    registry = QgsApplication.processingRegistry()
    plugin = qgis.utils.plugins["hyperldm"]
    assert plugin.provider is registry.providerById("hyperldm")  # the plugin keeps its reference
    qgis.utils.unloadPlugin("hyperldm")
    assert registry.providerById("hyperldm") is None
    assert qgis.utils.loadPlugin("hyperldm") and qgis.utils.startProcessingPlugin("hyperldm")
    plugin = qgis.utils.plugins["hyperldm"]
    assert registry.providerById("hyperldm") is plugin.provider
    plugin.initGui()  # as in the desktop: initGui() calls initProcessing(), which adds no second copy
    assert [p.id() for p in registry.providers()].count("hyperldm") == 1


EXPECTED = {
    "hyperldm:synthesize": (
        ["INPUT", "MODEL", "SAMPLES", "SEED", "STEPS", "EXTENT", "TILE_SIZE", "OVERLAP", "BATCH_SIZE",
         "INPUT_SENSOR", "DEVICE", "CREATION_OPTIONS", "ABUNDANCES", "OUTPUT"],
        {"STEPS", "TILE_SIZE", "OVERLAP", "BATCH_SIZE", "DEVICE", "CREATION_OPTIONS"},
        {"OUTPUT": "outputRaster", "ABUNDANCES": "outputRaster"}),
    "hyperldm:diversity": (
        ["INPUT", "MODEL", "SAMPLES", "SEED", "STEPS", "INPUT_SENSOR", "DEVICE", "SPREAD", "SD_MAP", "SDM_MAP"],
        {"STEPS", "DEVICE"},
        {"SPREAD": "outputRaster", "SD_MAP": "outputRaster", "SDM_MAP": "outputRaster",
         "SD": "outputNumber", "SDM": "outputNumber", "REPORT": "outputHtml"}),
    "hyperldm:train": (
        ["HSI", "RGB", "LABELS", "ITERATIONS", "INIT", "INPUT_SENSOR", "DEVICE", "OUTPUT"], {"INIT", "DEVICE"},
        {"OUTPUT": "outputFolder"}),
}


@pytest.mark.parametrize("alg_id", sorted(EXPECTED))
def test_parameters_outputs_advanced_flags_and_help(qgis_app, alg_id):
    from qgis.core import QgsApplication, QgsProcessingParameterDefinition

    alg = QgsApplication.processingRegistry().algorithmById(alg_id)
    names, expert, outputs = EXPECTED[alg_id]
    assert [p.name() for p in alg.parameterDefinitions()] == names
    cls = type(alg)
    assert all(getattr(cls, n) == n for n in names + list(outputs)), "keys are class constants"
    flagged = {p.name() for p in alg.parameterDefinitions()
               if p.flags() & QgsProcessingParameterDefinition.FlagAdvanced}
    assert flagged == expert
    assert {o.name(): o.type() for o in alg.outputDefinitions()} == outputs
    assert "Example" in alg.shortHelpString() and "qgis_process run " + alg_id in alg.shortHelpString()
