"""The output plan: no output may be an input, hold one, share a path or replace a device."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from hyperldm_engine.errors import OutputError
from hyperldm_engine.io.output_paths import check_file_name, check_outputs, file_output, folder_output


def test_outputs_are_checked_against_inputs(tmp_path: Path) -> None:
    inp = tmp_path / "in" / "rgb.tif"
    inp.parent.mkdir()
    inp.write_bytes(b"x")
    os.link(inp, tmp_path / "hard.tif")
    with pytest.raises(OutputError, match="same file as the input"):
        check_outputs([file_output(tmp_path / "hard.tif")], [inp], overwrite=True)
    with pytest.raises(OutputError, match="contains the input"):
        check_outputs([folder_output(tmp_path / "in")], [inp], overwrite=True)
    with pytest.raises(OutputError, match="contains the input"):
        check_outputs([folder_output(tmp_path)], [inp], overwrite=True)
    with pytest.raises(OutputError, match="inside the input folder"):
        check_outputs([file_output(tmp_path / "in" / "o.tif")], [tmp_path / "in"], overwrite=True)
    check_outputs([file_output(tmp_path / "in" / "o.tif")], [inp, None], overwrite=False)  # beside is fine


def test_two_outputs_one_path_and_special_files(tmp_path: Path) -> None:
    out = tmp_path / "o.tif"
    with pytest.raises(OutputError, match=r"two outputs .*\(the output and --abundances\)"):
        check_outputs([file_output(out), file_output(tmp_path / "." / "o.tif", "--abundances")], [], False)
    fifo = tmp_path / "fifo.tif"
    os.mkfifo(fifo)
    with pytest.raises(OutputError, match="not a regular file"):
        check_outputs([file_output(fifo)], [], overwrite=True)
    with pytest.raises(OutputError, match="ends with '/'"):
        check_file_name("results/")


def test_folder_outputs(tmp_path: Path) -> None:
    d = tmp_path / "d"
    d.mkdir()
    with pytest.raises(OutputError, match="already exists"):
        check_outputs([folder_output(d), file_output(d / "a.tif")], [], overwrite=False)
    check_outputs([folder_output(d), file_output(d / "a.tif")], [], overwrite=True)
    check_outputs([folder_output(d, existing_ok=True), file_output(d / "a.tif")], [], overwrite=False)
    check_outputs([folder_output(tmp_path / "new"), file_output(tmp_path / "new" / "a.tif")], [], False)
    (tmp_path / "f").write_text("x")
    with pytest.raises(OutputError, match="not a folder"):
        check_outputs([folder_output(tmp_path / "f")], [], overwrite=True)
