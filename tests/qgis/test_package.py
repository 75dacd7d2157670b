"""The plugin package: metadata, ZIP layout, import hygiene, provider and algorithm definitions."""

from __future__ import annotations

import ast
import configparser
import re
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


def test_provider_registers_four_algorithms_with_stable_ids(qgis_app):
    from qgis.core import QgsApplication

    provider = QgsApplication.processingRegistry().providerById("hyperldm")
    assert provider is not None and provider.name() == "HyperLDM"
    assert not provider.icon().isNull()
    ids = sorted(a.id() for a in provider.algorithms())
    assert ids == ["hyperldm:diversity", "hyperldm:setup_engine", "hyperldm:synthesize", "hyperldm:train"]


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
        ["INPUT", "INPUT_BANDS", "INPUT_SCALE", "MODEL", "SAMPLES", "SEED", "MODE", "STEPS", "EXTENT", "TILE_SIZE",
         "OVERLAP", "BATCH_SIZE", "INPUT_SENSOR", "RGB_CONSISTENCY", "RGB_CORRECTION", "HARMONISE",
         "OUTPUT_SENSOR", "DEVICE", "CREATION_OPTIONS", "ABUNDANCE_PRIOR", "ABUNDANCES", "OUTPUT"],
        {"INPUT_SCALE", "STEPS", "TILE_SIZE", "OVERLAP", "BATCH_SIZE", "RGB_CONSISTENCY", "RGB_CORRECTION", "HARMONISE",
         "OUTPUT_SENSOR", "DEVICE", "CREATION_OPTIONS", "ABUNDANCE_PRIOR"},
        {"OUTPUT": "outputRaster", "ABUNDANCES": "outputRaster"}),
    "hyperldm:diversity": (
        ["INPUT", "INPUT_BANDS", "INPUT_SCALE", "MODEL", "SAMPLES", "SEED", "STEPS", "EXTENT", "TILE_SIZE", "OVERLAP",
         "BATCH_SIZE", "INPUT_SENSOR", "RGB_CONSISTENCY", "RGB_CORRECTION", "HARMONISE", "DEVICE", "MEAN", "SPREAD",
         "SD_MAP", "SDM_MAP", "REPORT_FOLDER"],
        {"INPUT_SCALE", "STEPS", "TILE_SIZE", "OVERLAP", "BATCH_SIZE", "RGB_CONSISTENCY", "RGB_CORRECTION", "HARMONISE",
         "DEVICE"},
        {"MEAN": "outputRaster", "SPREAD": "outputRaster", "SD_MAP": "outputRaster", "SDM_MAP": "outputRaster",
         "REPORT_FOLDER": "outputFolder", "SD": "outputNumber", "SDM": "outputNumber", "REPORT": "outputHtml"}),
    "hyperldm:train": (
        ["HSI", "WAVELENGTHS", "RGB", "LABELS", "ITERATIONS", "INIT", "INPUT_SENSOR", "DEVICE", "OUTPUT"],
        {"INIT", "DEVICE"},
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
               if p.flags() & QgsProcessingParameterDefinition.Flag.FlagAdvanced}
    assert flagged == expert
    assert {o.name(): o.type() for o in alg.outputDefinitions()} == outputs
    assert "Example" in alg.shortHelpString() and "qgis_process run " + alg_id in alg.shortHelpString()
    assert alg.shortHelpString().endswith("run 'Set up or update the engine' once.")  # the base class's line
    assert (alg.name(), alg.displayName()) == (cls.ID, cls.DISPLAY_NAME) and alg_id == f"hyperldm:{cls.ID}"
    from qgis.core import QgsProcessingParameterFile

    for param in alg.parameterDefinitions():  # bundles are folders: a folder picker, "folder" said first
        if param.name() in ("MODEL", "INIT"):
            assert param.behavior() == QgsProcessingParameterFile.Behavior.Folder
            assert param.description().startswith(("Model bundle: a folder", "Initial model bundle"))


def test_setup_algorithm_parameters(qgis_app):
    from qgis.core import QgsApplication

    alg = QgsApplication.processingRegistry().algorithmById("hyperldm:setup_engine")
    assert [p.name() for p in alg.parameterDefinitions()] == ["SOURCE", "PYTHON", "VENV", "PIP_ARGS"]
    assert "~/.local/share/hyperldm/venv" in alg.shortHelpString()


def test_engine_defaults_are_shown_from_the_contract_not_copied(qgis_app):
    """Every "empty = engine default" says the value, and the value is the contract's."""
    from hyperldm.contract import DEFAULTS
    from qgis.core import QgsApplication

    registry = QgsApplication.processingRegistry()
    described = {(alg_id, p.name()): p.description() for alg_id in EXPECTED
                 for p in registry.algorithmById(alg_id).parameterDefinitions()}
    for text in described.values():
        assert "engine default)" not in text, text  # the value follows "engine default"
    assert f"engine default, {DEFAULTS['steps']})" in described[("hyperldm:synthesize", "STEPS")]
    assert f"engine default, {DEFAULTS['tile_size']})" in described[("hyperldm:synthesize", "TILE_SIZE")]
    assert f"engine default, {DEFAULTS['overlap']})" in described[("hyperldm:synthesize", "OVERLAP")]
    assert f"{DEFAULTS['iterations']} per stage" in described[("hyperldm:train", "ITERATIONS")]
    diversity = registry.algorithmById("hyperldm:diversity")
    assert diversity.parameterDefinition("SAMPLES").defaultValue() == DEFAULTS["diversity_samples"]
    text = "\n".join(p.read_text() for p in (PLUGIN / "algorithms").glob("*.py"))
    assert not re.search(r"engine default, \d", text), "a default copied by hand into the plugin"


def test_plugin_and_engine_share_one_contract_file():
    """The plugin reads output roles and file names from its vendored contract.py; a copy that
    differs from the engine's (a name changed on one side only) fails here and in tests/test_contract.py."""
    engine_copy = ROOT / "hyperldm_engine" / "contract.py"
    assert (PLUGIN / "contract.py").read_bytes() == engine_copy.read_bytes(), \
        "qgis_plugin/hyperldm/contract.py differs from hyperldm_engine/contract.py: run scripts/build_plugin_zip.py"
    source = "\n".join(p.read_text() for p in PLUGIN.rglob("*.py") if p.name != "contract.py")
    for guessed in ('"spread.tif"', '"sd_map.tif"', '"report.json"', '"outputs"', "_s{", '"done"'):
        assert guessed not in source, f"the plugin guesses {guessed} instead of reading the contract"


# --- QGIS versions: Qt5 (QGIS 3.22+) and Qt6 (QGIS 4) ---------------------------------------------

def _imported_qgis_names(tree):
    """Names imported from qgis.* (QGIS and Qt classes)."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "qgis":
            names |= {alias.asname or alias.name for alias in node.names}
    return names


@pytest.mark.parametrize("path", _python_files(), ids=lambda p: str(p.relative_to(PLUGIN)))
def test_qt_only_through_qgis_pyqt_and_enums_fully_qualified(path):
    """PyQt5/PyQt6/sip are never imported directly; enum members of QGIS and Qt classes are written
    ``Class.Enum.Member`` (the only form PyQt6 has; PyQt5 and QGIS 3.22 accept it too), and no
    Qt5-only spelling (exec_, QVariant.Int style types) is used."""
    text = path.read_text()
    tree = ast.parse(text, str(path))
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            modules = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
            for module in modules:
                assert module.split(".")[0] not in ("PyQt5", "PyQt6", "sip", "PySide2", "PySide6"), \
                    f"{path}:{node.lineno} imports {module}; use qgis.PyQt"
                if module.startswith("qgis.") and module.split(".")[1].startswith("Qt"):
                    pytest.fail(f"{path}:{node.lineno}: Qt modules come from qgis.PyQt, not {module}")
    qgis_names = _imported_qgis_names(tree)
    parents = {child: parent for parent in ast.walk(tree) for child in ast.iter_child_nodes(parent)}
    for node in ast.walk(tree):
        if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in qgis_names
                and node.attr[:1].isupper() and not node.attr.isupper()):
            parent = parents.get(node)
            qualified = isinstance(parent, ast.Attribute) and parent.value is node
            assert qualified, (f"{path}:{node.lineno}: {node.value.id}.{node.attr} is an unscoped enum member; "
                               f"write {node.value.id}.<EnumName>.{node.attr} (Qt6 / QGIS 4)")
    assert ".exec_(" not in text and "QVariant." not in text, f"{path}: Qt5-only spelling"


def test_fully_qualified_enums_resolve_in_this_qgis(qgis_app):
    """The scoped spellings the static test asks for exist in QGIS 3.22 (the minimum version)."""
    import qgis.core as core

    pattern = re.compile(r"\b(Qgs\w+)\.([A-Z]\w+)\.([A-Z]\w+)\b")
    seen = set()
    for path in _python_files():
        for cls, enum, member in pattern.findall(path.read_text()):
            if hasattr(core, cls):
                assert hasattr(getattr(getattr(core, cls), enum), member), f"{cls}.{enum}.{member} in {path.name}"
                seen.add(f"{cls}.{enum}.{member}")
    assert "QgsProcessingParameterNumber.Type.Integer" in seen


@pytest.mark.parametrize("path", sorted((PLUGIN / "algorithms").glob("*.py")), ids=lambda p: p.name)
def test_user_visible_strings_go_through_tr(path):
    """displayName, shortHelpString and every parameter or output description is translated."""
    tree = ast.parse(path.read_text(), str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef) and node.name in ("displayName", "shortHelpString"):
            for ret in [n for n in ast.walk(node) if isinstance(n, ast.Return)]:
                assert "tr(" in ast.unparse(ret.value), f"{path.name}:{ret.lineno} {node.name} without tr()"
        if isinstance(node, ast.Call):
            func = ast.unparse(node.func)
            if (re.match(r"(QgsProcessing(Parameter|Output)\w+|int_parameter)$", func) and len(node.args) >= 2
                    and not isinstance(node.args[1], ast.Name)):  # a variable: its callers are checked
                assert "tr(" in ast.unparse(node.args[1]), f"{path.name}:{node.lineno} {func} description without tr()"


def test_metadata_declares_the_qgis_versions_it_supports():
    """3.22 is what the tests run; QGIS 4 (Qt6) is not claimed until tested there (no supportsQt6),
    so the maximum is the last 3.x."""
    meta = _metadata(ROOT / "metadata.txt")
    assert meta["qgisMinimumVersion"] == "3.22" and meta["qgisMaximumVersion"] == "3.99"
    assert meta.get("supportsQt6", "no").lower() in ("no", "false")
