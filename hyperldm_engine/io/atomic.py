"""Atomic outputs: write under a temporary name beside the final one, rename at the end.

A file with its final name is therefore always complete. On any exception (including
``KeyboardInterrupt`` and the CLI's ``Interrupted``) the temporary and its GDAL sidecars are
removed and the exception propagates. Temporaries left by a killed process (``kill -9``) are
recognisable by their name, ``.<stem>.hyperldm-tmp-<pid>-<random><suffix>``, and
``clean_stale_temporaries`` removes those whose process is gone.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path

from hyperldm_engine.errors import OutputError

TMP_MARK = ".hyperldm-tmp-"
# .<stem>.hyperldm-tmp-<pid>-<hex><suffix...>
_TMP_RE = re.compile(r"^\.(?P<stem>.*)\.hyperldm-tmp-(?P<pid>\d+)-(?P<rand>[0-9a-f]+)(?P<suffix>.*)$")
# GDAL sidecars written next to a raster (statistics, overviews, masks, world files, ENVI header).
SIDECAR_SUFFIXES = (".aux.xml", ".ovr", ".msk", ".aux", ".hdr", ".tfw", ".wld", ".xml")


def temporary_name(final_path: str | os.PathLike[str]) -> Path:
    """Temporary path in the final path's folder; the real suffix is kept so GDAL picks the driver."""
    final = Path(final_path)
    # keep compound suffixes such as ".tar.gz" only when short; for rasters ".tif" is what matters
    suffix = final.suffix
    stem = final.name[: len(final.name) - len(suffix)] if suffix else final.name
    return final.with_name(f".{stem}{TMP_MARK}{os.getpid()}-{secrets.token_hex(4)}{suffix}")


def ensure_distinct(input_path: str | os.PathLike[str], output_path: str | os.PathLike[str]) -> None:
    """Refuse an output that is the input itself (same path, link or hard link)."""
    inp, out = Path(input_path), Path(output_path)
    same = False
    try:
        same = inp.resolve() == out.resolve()
        if not same and inp.exists() and out.exists():
            same = os.path.samefile(inp, out)
    except OSError:
        same = False
    if same:
        raise OutputError(f"{out}: the output is the same file as the input; choose another output path")


def _check_folder(final: Path) -> None:
    folder = final.parent if str(final.parent) else Path(".")
    if not folder.is_dir():
        raise OutputError(f"{final}: the output folder {folder} does not exist")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise OutputError(f"{final}: the output folder {folder} is not writable")


def _check_final(final: Path, overwrite: bool, want_dir: bool) -> None:
    if final.exists() or final.is_symlink():
        if not overwrite:
            raise OutputError(f"{final}: the output already exists; use --overwrite to replace it")
        if want_dir and not final.is_dir():
            raise OutputError(f"{final}: exists and is not a folder; cannot replace it with a folder")
        if not want_dir and final.is_dir():
            raise OutputError(f"{final}: exists and is a folder; cannot replace it with a file")


def remove_with_sidecars(path: str | os.PathLike[str]) -> None:
    """Remove a file or folder and the GDAL sidecars next to it; missing ones are ignored."""
    p = Path(path)
    candidates = [p] + [p.with_name(p.name + s) for s in SIDECAR_SUFFIXES]
    if p.suffix:
        candidates += [p.with_suffix(s) for s in (".hdr", ".aux", ".tfw", ".wld")]
    for c in candidates:
        with contextlib.suppress(FileNotFoundError):
            if c.is_dir() and not c.is_symlink():
                shutil.rmtree(c, ignore_errors=True)
            else:
                c.unlink()


def _move_sidecars(tmp: Path, final: Path) -> None:
    """Carry GDAL's .aux.xml / .ovr (written by some drivers) along with the renamed file."""
    for s in (".aux.xml", ".ovr", ".msk"):
        side = tmp.with_name(tmp.name + s)
        if side.exists():
            os.replace(side, final.with_name(final.name + s))


@contextlib.contextmanager
def atomic_path(final_path: str | os.PathLike[str], overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary path to write; on success rename it onto ``final_path`` (os.replace).

    Raises OutputError if the final path exists (unless ``overwrite``), if its folder is missing or
    not writable, or if the block finishes without creating the temporary file.
    """
    final = Path(final_path)
    _check_folder(final)
    _check_final(final, overwrite, want_dir=False)
    tmp = temporary_name(final)
    try:
        yield tmp
        if not tmp.exists():
            raise OutputError(f"{final}: nothing was written")
        # check again: another process may have created it meanwhile
        _check_final(final, overwrite, want_dir=False)
        os.replace(tmp, final)
        _move_sidecars(tmp, final)
    except BaseException:
        remove_with_sidecars(tmp)
        raise


@contextlib.contextmanager
def atomic_dir(final_dir: str | os.PathLike[str], overwrite: bool = False) -> Iterator[Path]:
    """Yield a fresh temporary folder; on success its files appear in ``final_dir`` (bundles, reports).

    A new folder is renamed into place in one step. An existing folder (``overwrite``) is merged:
    each file the command wrote replaces the file of the same name (``os.replace``, so every
    final-named file is complete); the folder's other contents are never touched or removed.
    """
    final = Path(final_dir)
    _check_folder(final)
    _check_final(final, overwrite, want_dir=True)
    tmp = temporary_name(final)
    tmp.mkdir()
    try:
        yield tmp
        _check_final(final, overwrite, want_dir=True)
        if final.exists():
            _merge_into(tmp, final)
        else:
            os.replace(tmp, final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _merge_into(src: Path, dst: Path) -> None:
    """Move every entry of ``src`` into the existing folder ``dst``, replacing same-named entries only."""
    for entry in sorted(src.iterdir()):
        target = dst / entry.name
        if entry.is_dir() and not entry.is_symlink():
            if target.is_dir() and not target.is_symlink():
                _merge_into(entry, target)
                continue
            if target.exists() or target.is_symlink():
                raise OutputError(f"{target}: exists and is not a folder; cannot replace it with a folder")
        elif target.is_dir() and not target.is_symlink():
            raise OutputError(f"{target}: exists and is a folder; cannot replace it with a file")
        os.replace(entry, target)


def _pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    return True


def parse_temporary_name(name: str) -> tuple[str, int, str] | None:
    """``(stem, pid, suffix)`` for a temporary's file name, or None if it is not one."""
    m = _TMP_RE.match(name)
    if not m:
        return None
    return m.group("stem"), int(m.group("pid")), m.group("suffix")


def clean_stale_temporaries(folder: str | os.PathLike[str]) -> list[Path]:
    """Remove temporaries in ``folder`` whose writing process no longer exists; return them."""
    d = Path(folder)
    removed: list[Path] = []
    if not d.is_dir():
        return removed
    for entry in sorted(d.iterdir()):
        parsed = parse_temporary_name(entry.name)
        if parsed is None:
            continue
        _, pid, _ = parsed
        if pid == os.getpid() or _pid_alive(pid):
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            with contextlib.suppress(FileNotFoundError):
                entry.unlink()
        removed.append(entry)
    return removed
