"""Security basics: bundles never execute code, zip members cannot escape, the plugin runs no shell."""

from __future__ import annotations

import ast
import pickle
import re
import shutil
import zipfile
from pathlib import Path

import pytest

from hyperldm_engine.errors import BundleError
from hyperldm_engine.models.bundle import load_bundle

from .cases import safetensors_bytes

ROOT = Path(__file__).resolve().parents[2]


class _Touch:
    """A pickle that, if ever unpickled, creates ``marker`` (what a malicious bundle would do)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def _payload(marker: Path) -> bytes:
    data = pickle.dumps(_Touch(marker))
    assert not marker.exists()
    return data


def test_the_pickle_payload_really_executes_when_unpickled(tmp_path):
    marker = tmp_path / "ran"
    pickle.loads(_payload(marker))  # the control: this is what the bundle loader must never do
    assert marker.exists()


@pytest.mark.parametrize("name", ["model.pt", "extra.pkl", "sub/opt.ckpt", "weights.bin"])
def test_folder_bundle_with_a_pickle_file_is_refused_without_running_it(tmp_path, tiny_bundle, name):
    bundle = shutil.copytree(tiny_bundle, tmp_path / "b")
    marker = tmp_path / "ran"
    (bundle / name).parent.mkdir(exist_ok=True)
    (bundle / name).write_bytes(_payload(marker))
    with pytest.raises(BundleError, match="may hold pickled code"):
        load_bundle(bundle)
    assert not marker.exists()


def test_pickle_disguised_as_safetensors_is_refused_without_running_it(tmp_path, tiny_bundle):
    bundle = shutil.copytree(tiny_bundle, tmp_path / "b")
    marker = tmp_path / "ran"
    import torch

    torch.save({"library.R": _Touch(marker)}, bundle / "weights.safetensors")  # a torch pickle archive
    with pytest.raises(BundleError, match="corrupt or truncated"):
        load_bundle(bundle)
    assert not marker.exists()


@pytest.mark.parametrize("header", [
    {"library.R": {"dtype": "F32", "shape": [48, 300], "data_offsets": [0, 1 << 40]}},  # beyond the file
    {"library.R": {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 16]},
     "x": {"dtype": "F32", "shape": [2, 2], "data_offsets": [8, 24]}},  # overlapping tensors
    {"library.R": {"dtype": "F32", "shape": [-1, 4], "data_offsets": [0, 16]}},  # negative shape
    {"library.R": {"dtype": "OBJ", "shape": [4], "data_offsets": [0, 16]}},  # unknown dtype
], ids=["beyond-end", "overlap", "negative-shape", "bad-dtype"])
def test_crafted_safetensors_headers_are_refused(tmp_path, tiny_bundle, header):
    bundle = shutil.copytree(tiny_bundle, tmp_path / "b")
    (bundle / "weights.safetensors").write_bytes(safetensors_bytes(header, b"\0" * 24))
    with pytest.raises(BundleError, match=r"weights\.safetensors is corrupt or truncated"):
        load_bundle(bundle)


@pytest.mark.parametrize("member", ["../evil.json", "../../x/config.json", "/etc/evil", "C:/evil.json",
                                    "a/../../evil"])
def test_zip_members_escaping_the_folder_are_refused_and_nothing_is_extracted(tmp_path, tiny_bundle, member):
    z = tmp_path / "b.zip"
    with zipfile.ZipFile(z, "w") as zf:
        for name in ("config.json", "weights.safetensors"):
            zf.write(tiny_bundle / name, name)
        zf.writestr(member, b"{}")
    before = sorted(p.name for p in tmp_path.rglob("*"))
    with pytest.raises(BundleError, match="escapes its folder"):
        load_bundle(z)
    assert sorted(p.name for p in tmp_path.rglob("*")) == before


def test_valid_zip_bundle_loads(tmp_path, tiny_bundle):
    """Control: the refusals above are about the added member, not about zips."""
    z = tmp_path / "b.zip"
    with zipfile.ZipFile(z, "w") as zf:
        for name in ("config.json", "weights.safetensors"):
            zf.write(tiny_bundle / name, f"model/{name}")
    assert load_bundle(z).config.n_bands == 48


_SHELL = re.compile(r"shell\s*=\s*True|os\.system\s*\(|os\.popen\s*\(|subprocess\.getoutput|"
                    r"subprocess\.getstatusoutput|commands\.getoutput|\bexec\s*\(|\beval\s*\(")


def _shell_calls(source: str) -> list[int]:
    """Lines of subprocess calls that could go through a shell: ``shell=`` not literally False, or a
    command given as one string (a literal or an f-string) instead of an argument list."""
    lines = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
        if name not in ("Popen", "run", "call", "check_call", "check_output"):
            continue
        if isinstance(func, ast.Attribute) and getattr(func.value, "id", "") == "processing":
            continue  # processing.run("gdal:translate", ...): a QGIS Processing algorithm id, not a command
        shell = [k for k in node.keywords if k.arg == "shell"]
        shell_on = bool(shell) and not (isinstance(shell[0].value, ast.Constant) and shell[0].value.value is False)
        one_string = bool(node.args) and isinstance(node.args[0], (ast.JoinedStr, ast.Constant))
        if shell_on or one_string:
            lines.append(node.lineno)
    return lines


def test_qgis_plugin_never_runs_a_shell():
    sources = sorted((ROOT / "qgis_plugin").rglob("*.py"))
    assert sources, "the QGIS plugin sources were not found"
    offenders = [f"{p.relative_to(ROOT)}:{i}: {line.strip()}" for p in sources
                 for i, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1) if _SHELL.search(line)]
    offenders += [f"{p.relative_to(ROOT)}:{i}" for p in sources for i in _shell_calls(p.read_text("utf-8"))]
    assert not offenders, "\n".join(offenders)


def test_shell_grep_catches_offenders():
    """Control for the grep above."""
    for bad in ('subprocess.run(cmd, shell=True)', 'os.system("rm -rf x")', "subprocess.getoutput(c)"):
        assert _SHELL.search(bad)
    assert not _SHELL.search('subprocess.Popen([exe, "synthesize", rgb], stdout=PIPE)')
    assert _shell_calls("import subprocess\nsubprocess.run(cmd, shell=flag)\n") == [2]
    assert _shell_calls("subprocess.Popen(f'{exe} synthesize {rgb}')") == [1]
    assert _shell_calls("subprocess.Popen([exe, 'synthesize', rgb], shell=False)") == []
