"""Atomic outputs: final names are complete or absent; temporaries never survive errors."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from hyperldm_engine.errors import Interrupted, OutputError
from hyperldm_engine.io.atomic import (
    atomic_dir,
    atomic_path,
    clean_stale_temporaries,
    ensure_distinct,
    parse_temporary_name,
    temporary_name,
)


def test_temporary_name_keeps_suffix_and_is_parseable(tmp_path: Path) -> None:
    t = temporary_name(tmp_path / "scene.hsi.tif")
    assert t.parent == tmp_path
    assert t.suffix == ".tif"
    assert t.name.startswith(f".scene.hsi.hyperldm-tmp-{os.getpid()}-")
    stem, pid, suffix = parse_temporary_name(t.name)
    assert (stem, pid, suffix) == ("scene.hsi", os.getpid(), ".tif")
    assert temporary_name(tmp_path / "a.tif") != temporary_name(tmp_path / "a.tif")
    assert parse_temporary_name("scene.tif") is None


def test_success_renames(tmp_path: Path) -> None:
    final = tmp_path / "out.tif"
    with atomic_path(final) as tmp:
        assert not final.exists()
        tmp.write_bytes(b"data")
    assert final.read_bytes() == b"data"
    assert os.listdir(tmp_path) == ["out.tif"]


def test_existing_refused_and_untouched(tmp_path: Path) -> None:
    final = tmp_path / "out.tif"
    final.write_bytes(b"old")
    with pytest.raises(OutputError, match=r"out\.tif: the output already exists; use --overwrite"), \
            atomic_path(final):
        pass
    assert final.read_bytes() == b"old"
    with atomic_path(final, overwrite=True) as tmp:
        tmp.write_bytes(b"new")
    assert final.read_bytes() == b"new"


@pytest.mark.parametrize("exc", [RuntimeError("boom"), KeyboardInterrupt(), Interrupted("stopped", 143)])
def test_exception_leaves_nothing(tmp_path: Path, exc: BaseException) -> None:
    final = tmp_path / "out.tif"
    with pytest.raises(type(exc)), atomic_path(final) as tmp:
        tmp.write_bytes(b"partial")
        tmp.with_name(tmp.name + ".aux.xml").write_text("<PAMDataset/>")
        tmp.with_name(tmp.name + ".ovr").write_bytes(b"ovr")
        raise exc
    assert os.listdir(tmp_path) == []


def test_exception_keeps_existing_file(tmp_path: Path) -> None:
    final = tmp_path / "out.tif"
    final.write_bytes(b"old")
    with pytest.raises(RuntimeError), atomic_path(final, overwrite=True) as tmp:
        tmp.write_bytes(b"half")
        raise RuntimeError
    assert final.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["out.tif"]


def test_nothing_written_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(OutputError, match="nothing was written"), atomic_path(tmp_path / "o.tif"):
        pass


def test_sidecars_follow_the_rename(tmp_path: Path) -> None:
    with atomic_path(tmp_path / "o.tif") as tmp:
        tmp.write_bytes(b"x")
        tmp.with_name(tmp.name + ".aux.xml").write_text("<PAMDataset/>")
    assert sorted(os.listdir(tmp_path)) == ["o.tif", "o.tif.aux.xml"]


def test_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(OutputError, match=r"o\.tif: the output folder .*nope does not exist"), \
            atomic_path(tmp_path / "nope" / "o.tif"):
        pass


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write anywhere")
def test_read_only_folder(tmp_path: Path) -> None:
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        with pytest.raises(OutputError, match="is not writable"), atomic_path(ro / "o.tif"):
            pass
    finally:
        ro.chmod(0o755)


def test_unwritable_folder_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import hyperldm_engine.io.atomic as atomic_mod

    monkeypatch.setattr(atomic_mod.os, "access", lambda p, mode: False)
    with pytest.raises(OutputError, match=rf"o\.tif: the output folder {tmp_path} is not writable"), \
            atomic_path(tmp_path / "o.tif"):
        pass


def test_file_vs_folder_conflicts(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    with pytest.raises(OutputError, match="is a folder"), atomic_path(tmp_path / "d", overwrite=True):
        pass
    (tmp_path / "f").write_text("x")
    with pytest.raises(OutputError, match="not a folder"), atomic_dir(tmp_path / "f", overwrite=True):
        pass


def test_atomic_dir(tmp_path: Path) -> None:
    final = tmp_path / "bundle"
    with atomic_dir(final) as tmp:
        assert tmp.is_dir() and tmp.parent == tmp_path
        (tmp / "config.json").write_text("{}")
    assert sorted(os.listdir(final)) == ["config.json"]
    with pytest.raises(OutputError, match="already exists"), atomic_dir(final):
        pass
    with pytest.raises(KeyboardInterrupt), atomic_dir(final, overwrite=True) as tmp:
        (tmp / "weights.safetensors").write_text("half")
        raise KeyboardInterrupt
    assert sorted(os.listdir(tmp_path)) == ["bundle"]
    assert sorted(os.listdir(final)) == ["config.json"]
    with atomic_dir(final, overwrite=True) as tmp:
        (tmp / "new.json").write_text("{}")
    # merged: the command's files replace theirs, the folder's other contents stay (issue 25)
    assert sorted(os.listdir(final)) == ["config.json", "new.json"]
    assert sorted(os.listdir(tmp_path)) == ["bundle"]


def test_clean_stale_temporaries(tmp_path: Path) -> None:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    dead = proc.pid
    stale = tmp_path / f".scene{'.hyperldm-tmp-'}{dead}-abcd1234.tif"
    stale.write_bytes(b"x")
    stale_side = tmp_path / f".scene.hyperldm-tmp-{dead}-abcd1234.tif.aux.xml"
    stale_side.write_text("x")
    stale_dir = tmp_path / f".bundle.hyperldm-tmp-{dead}-00ff"
    stale_dir.mkdir()
    (stale_dir / "w").write_text("x")
    mine = temporary_name(tmp_path / "live.tif")
    mine.write_bytes(b"x")
    other = tmp_path / "scene.tif"
    other.write_bytes(b"x")
    removed = clean_stale_temporaries(tmp_path)
    assert sorted(p.name for p in removed) == sorted([stale.name, stale_side.name, stale_dir.name])
    assert sorted(os.listdir(tmp_path)) == sorted([mine.name, "scene.tif"])
    assert clean_stale_temporaries(tmp_path / "missing") == []


def test_ensure_distinct(tmp_path: Path) -> None:
    a = tmp_path / "a.tif"
    a.write_bytes(b"x")
    with pytest.raises(OutputError, match=r"a\.tif: the output is the same file as the input"):
        ensure_distinct(a, tmp_path / "." / "a.tif")
    link = tmp_path / "link.tif"
    link.symlink_to(a)
    with pytest.raises(OutputError):
        ensure_distinct(a, link)
    hard = tmp_path / "hard.tif"
    os.link(a, hard)
    with pytest.raises(OutputError):
        ensure_distinct(a, hard)
    ensure_distinct(a, tmp_path / "b.tif")
