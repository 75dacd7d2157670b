"""Weighted tile parts that overhang a strip's right edge, parked on disk until the next strip runs.

Strip-by-strip merging keeps accumulators one strip wide; the price is that tiles on a strip
boundary contribute to two strips. Their right-hand parts (weighted sums, weights and validity)
are saved here, one file per tile, and added back, in the order they were computed, when the
next strip reaches the same tile row: every pixel then receives the same floating-point additions
in the same order as a single full-width pass, so the output is bit-identical. Disk use is at most
one boundary's overhang for the scene's height; memory is one piece at a time.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from rasterio.windows import Window

from hyperldm_engine.io.atomic import temporary_name


@dataclass
class CarryPiece:
    """One tile's overhang: ``num[name]`` (C, h, w) weighted sums, ``den`` and ``valid`` (h, w)."""

    window: Window
    num: dict[str | None, np.ndarray]
    den: np.ndarray
    valid: np.ndarray


class CarryStore:
    """Pieces keyed by (strip, tile row), on disk under a temporary folder removed by :meth:`close`.

    The folder is named like the engine's other temporaries, so a run killed with SIGKILL leaves
    nothing that the next run in the same folder does not clean up.
    """

    def __init__(self, folder: str | Path | None = None) -> None:
        base = Path(folder) if folder is not None else Path(tempfile.gettempdir())
        self.path = temporary_name(base / "carry")
        self.path.mkdir()
        self._index: dict[tuple[int, int], list[tuple[Path, Window, list[str | None]]]] = {}
        self._count = 0
        self.bytes_written = 0

    def put(self, strip: int, row: int, piece: CarryPiece) -> None:
        """Park a piece that strip ``strip + 1`` adds when it reaches tile row ``row``."""
        self._count += 1
        path = self.path / f"{strip}-{row}-{self._count}.npz"
        names = list(piece.num)
        # np.savez writes non-contiguous slices in small chunks: no copy of the piece is made
        arrays = {f"num{k}": piece.num[name] for k, name in enumerate(names)}
        with open(path, "wb") as fh:
            np.savez(fh, den=piece.den, valid=piece.valid, **arrays)
        self.bytes_written += path.stat().st_size
        self._index.setdefault((strip + 1, row), []).append((path, piece.window, names))

    def take(self, strip: int, row: int) -> Iterator[CarryPiece]:
        """The pieces for ``strip`` at tile ``row``, in the order they were put, loaded one at a
        time (a piece of a 512 px tile is ~25 MB per 48-band output); each file goes once read."""
        for path, window, names in self._index.pop((strip, row), []):
            with np.load(path) as data:
                num = {name: data[f"num{k}"] for k, name in enumerate(names)}
                piece = CarryPiece(window, num, data["den"], data["valid"])
            path.unlink()
            yield piece

    def close(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)
        self._index.clear()

    def __enter__(self) -> CarryStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def split_at(window: Window, col: int) -> tuple[Window | None, Window | None, int]:
    """Split ``window`` at scene column ``col``: (left part, right part, left width); None if empty."""
    c0, w = int(window.col_off), int(window.width)
    left_w = min(max(col - c0, 0), w)
    left = Window(c0, window.row_off, left_w, window.height) if left_w > 0 else None
    right = Window(c0 + left_w, window.row_off, w - left_w, window.height) if left_w < w else None
    return left, right, left_w

