"""Where a command will write, checked before any work, so that an output can never destroy an input.

Every command lists the inputs it reads and every path it will write (each per-sample file,
abundances, reports, folders) and calls :func:`check_outputs` first. Refused with one line
(:class:`OutputError`, exit 4):

- an output that is an input: the same real path, or the same ``(st_dev, st_ino)`` (symbolic
  and hard links count);
- an output folder that contains an input, or an output inside an input folder (a bundle);
- two outputs of one command on the same path (e.g. ``--abundances`` equal to the output);
- an existing output that is not a regular file (or, for a folder output, not a folder):
  device nodes, FIFOs and sockets are never replaced;
- an existing output without ``--overwrite``, and a missing or read-only folder to write into.

With ``--overwrite`` a folder output is merged (``atomic.atomic_dir``): the command replaces the
files it writes and leaves everything else in the folder as it was.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from hyperldm_engine.errors import OutputError


@dataclass(frozen=True)
class Planned:
    """One path a command will write: a file (``folder=False``) or a folder of outputs."""

    path: Path
    what: str = "the output"
    folder: bool = False
    existing_ok: bool = False  # a folder the command writes into (and creates with its parents)


def file_output(path: str | os.PathLike[str], what: str = "the output") -> Planned:
    return Planned(Path(path), what, folder=False)


def folder_output(path: str | os.PathLike[str], what: str = "the output folder",
                  existing_ok: bool = False) -> Planned:
    """A folder of outputs; ``existing_ok``: an existing one is written into without ``--overwrite``
    (its files are checked one by one) and missing parents are created."""
    return Planned(Path(path), what, folder=True, existing_ok=existing_ok)


def _real(path: Path) -> str:
    return os.path.realpath(os.path.abspath(path))


def _stat(path: Path) -> os.stat_result | None:
    try:
        return os.stat(path)  # follows links: a link to the input is the input
    except OSError:
        return None


def _inside(child: str, parent: str) -> bool:
    return child != parent and child.startswith(parent.rstrip(os.sep) + os.sep)


def check_outputs(outputs: Sequence[Planned], inputs: Iterable[str | os.PathLike[str] | None],
                  overwrite: bool) -> None:
    """Refuse (OutputError) any planned output that could destroy an input or another output."""
    ins = []
    for p in inputs:
        if p is None or str(p) == "":
            continue
        st = _stat(Path(p))
        if st is not None:
            ins.append((Path(p), _real(Path(p)), st))
    seen: dict[str, Planned] = {}
    folders = {_real(o.path) for o in outputs if o.folder}
    for out in outputs:
        real = _real(out.path)
        st = _stat(out.path)
        for inp, inp_real, inp_st in ins:
            same = real == inp_real or (st is not None and os.path.samestat(st, inp_st))
            if same and not out.folder:
                raise OutputError(f"{out.path}: the output is the same file as the input {inp}; "
                                  "choose another output path")
            if same or (out.folder and _inside(inp_real, real)):
                raise OutputError(f"{out.path}: {out.what} contains the input {inp}; choose another folder "
                                  "(its other files would be at risk)")
            if stat.S_ISDIR(inp_st.st_mode) and _inside(real, inp_real):
                raise OutputError(f"{out.path}: {out.what} lies inside the input folder {inp}; "
                                  "choose another output path")
        if real in seen:
            other = seen[real]
            raise OutputError(f"{out.path}: two outputs would be written to the same path "
                              f"({other.what} and {out.what}); give them different names")
        seen[real] = out
        _check_existing(out, st, overwrite)
        parent = out.path.parent if str(out.path.parent) else Path(".")
        if _real(parent) in folders or (out.folder and out.existing_ok):
            continue  # created by the command itself
        if not parent.is_dir():
            raise OutputError(f"{out.path}: the output folder {parent} does not exist")
        if not os.access(parent, os.W_OK | os.X_OK):
            raise OutputError(f"{out.path}: the output folder {parent} is not writable")


def _check_existing(out: Planned, st: os.stat_result | None, overwrite: bool) -> None:
    if st is None:
        if out.path.is_symlink():
            raise OutputError(f"{out.path}: is a broken symbolic link; remove it or choose another path")
        return
    mode = st.st_mode
    if out.folder:
        if not stat.S_ISDIR(mode):
            raise OutputError(f"{out.path}: exists and is not a folder; cannot write a folder of outputs there")
        if not overwrite and not out.existing_ok:
            raise OutputError(f"{out.path}: the output folder already exists; use --overwrite to replace "
                              "the files this command writes in it")
        return
    if stat.S_ISDIR(mode):
        raise OutputError(f"{out.path}: exists and is a folder; cannot replace it with a file")
    if not stat.S_ISREG(mode):
        raise OutputError(f"{out.path}: exists and is not a regular file (a device, FIFO or socket); "
                          "it is never replaced; choose another output path")
    if not overwrite:
        raise OutputError(f"{out.path}: the output already exists; use --overwrite to replace it")


def check_file_name(text: str, what: str = "the output") -> None:
    """A file output given as ``results/`` (a folder) is refused: the trailing slash says folder."""
    if str(text).endswith(("/", os.sep)):
        raise OutputError(f"{text}: {what} ends with '/', which names a folder; give a file name such as "
                          f"{str(text).rstrip('/' + os.sep) or '.'}/hsi.tif")
