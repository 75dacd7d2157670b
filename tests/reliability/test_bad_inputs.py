"""Drive every row of docs/bad-inputs.md through the CLI (in-process) and check code, message, files."""

from __future__ import annotations

import hashlib
import os
import shlex
from pathlib import Path

import numpy as np
import pytest
import torch

from hyperldm_engine.io.atomic import TMP_MARK

from .cases import CHECKS, OUTPUTS, SETUPS, write_hsi
from .conftest import FAST_SYNTH, rgb_data, write_raster
from .table import read_table

CASES = read_table()
FAST_TRAIN = {"--iterations": "1", "--patch-size": "32", "--batch-size": "1", "--device": "cpu",
              "--progress": "none"}
#: options each command gets unless the row gives them (a fast tiny run, no progress bar)
DEFAULTS = {"synthesize": FAST_SYNTH, "diversity": FAST_SYNTH, "train": FAST_TRAIN}


def snapshot(root: Path) -> dict[str, str]:
    """Relative path -> sha256 (or 'dir') of everything under ``root``."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for d in dirnames:
            out[os.path.relpath(os.path.join(dirpath, d), root)] = "dir"
        for f in filenames:
            p = os.path.join(dirpath, f)
            out[os.path.relpath(p, root)] = hashlib.sha256(Path(p).read_bytes()).hexdigest()
    return out


def with_defaults(argv: list[str], defaults: dict[str, str]) -> list[str]:
    extra = [x for k, v in defaults.items() if k not in argv for x in (k, v)]
    return argv + extra


def test_table_is_large_and_every_row_has_a_setup():
    ids = [c.id for c in CASES]
    assert len(ids) >= 90 and len(set(ids)) == len(ids)  # issue 25: at least 90 rows
    assert set(ids) == set(SETUPS), f"rows without setup: {set(ids) - set(SETUPS)}; " \
                                    f"setups without row: {set(SETUPS) - set(ids)}"
    assert set(CHECKS) <= {c.id for c in CASES if c.exit == 0}
    assert set(OUTPUTS) <= {c.id for c in CASES if c.exit == 0}
    assert all(c.exit in (0, 2, 3, 4, 5) for c in CASES)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input(case, tmp_path, tiny_bundle, cli):
    if case.id == "device-cuda-missing" and torch.cuda.is_available():
        pytest.skip("this machine has a CUDA GPU")
    if case.id == "out-readonly-dir" and os.geteuid() == 0:
        pytest.skip("root can write into read-only folders")
    ws = tmp_path / "case"
    (ws / "in").mkdir(parents=True)
    (ws / "out").mkdir()
    write_raster(ws / "in" / "rgb.tif", rgb_data())
    write_hsi(ws / "in" / "hsi.tif")
    values = {"dir": str(ws), "rgb": str(ws / "in" / "rgb.tif"), "hsi": str(ws / "in" / "hsi.tif"),
              "labels": str(ws / "in" / "labels.tif"), "out": str(ws / "out" / "hsi.tif"),
              "bundle": str(tiny_bundle)}
    values.update(SETUPS[case.id](ws, tiny_bundle))
    before = snapshot(ws)
    argv = shlex.split(case.command.format(**values))
    argv = with_defaults(argv, DEFAULTS.get(argv[0], {"--progress": "none"}))
    try:
        result = cli(argv)
    finally:
        os.chmod(ws / "out", 0o755)
    after = snapshot(ws)

    assert "Traceback" not in result.stderr
    assert result.code == case.exit, f"exit {result.code}, stderr:\n{result.stderr}"
    assert not [p for p in after if TMP_MARK in p], f"temporaries left: {sorted(after)}"
    if case.exit != 0:
        assert len(result.error_lines) == 1, result.stderr
        line = result.error_lines[0]
        assert case.message.lower() in line.lower(), line
        if case.names:
            assert case.names.format(**values) in line, line
        assert after == before, f"files changed: {set(after) ^ set(before)}"
        return
    assert not result.error_lines, result.stderr
    if case.message:
        warned = [ln for ln in result.warning_lines if case.message.lower() in ln.lower()]
        assert warned, result.stderr
        if case.names:
            assert case.names.format(**values) in warned[0]
    new = sorted(set(after) - set(before))
    assert new == sorted(OUTPUTS.get(case.id, ["out/hsi.tif"])), new
    changed = [p for p, h in before.items() if after.get(p) != h]
    assert not changed, f"files outside the command's outputs changed: {changed}"
    outputs = [ws / p for p in new]
    if new == ["out/hsi.tif"]:
        with __import__("rasterio").open(outputs[0]) as ds:
            assert ds.count == 48 and (ds.width, ds.height) == (64, 64)
            assert np.isfinite(ds.read(1)).all()
    if case.id in CHECKS:
        CHECKS[case.id](ws, outputs)
