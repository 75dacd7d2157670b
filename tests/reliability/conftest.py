"""Fixtures of the reliability tests: a tiny random-weights bundle, rasters and an in-process CLI."""

from __future__ import annotations

import dataclasses
import signal
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import rasterio
from rasterio.transform import from_origin
from tiny_models import build_tiny_bundle

#: options that make a synthesis of a 64 x 64 scene take well under a second with the tiny bundle
FAST_SYNTH = {"--tile-size": "32", "--overlap": "8", "--steps": "2", "--progress": "none"}


@pytest.fixture(scope="session")
def tiny_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The suite's tiny bundle (random weights; real sensor, library and camera response), ~0.3 MB."""
    return build_tiny_bundle(tmp_path_factory.mktemp("bundle") / "tiny", class_names=["a", "b", "c"], gsd_m=2.0)


def write_raster(path: Path, data: np.ndarray, crs: str | None = "EPSG:32633", transform=None,
                 **profile) -> Path:
    """A GeoTIFF of ``data`` (bands, rows, cols); 2 m pixels in UTM 33N unless told otherwise."""
    count, rows, cols = data.shape
    transform = from_origin(500000, 6000000, 2, 2) if transform is None else transform
    kw = dict(driver="GTiff", width=cols, height=rows, count=count, dtype=data.dtype, transform=transform)
    if crs is not None:
        kw["crs"] = crs
    kw.update(profile)
    with rasterio.open(path, "w", **kw) as ds:
        ds.write(data)
    return path


def rgb_data(rows: int = 64, cols: int = 64, seed: int = 0, dtype=np.uint8, high: int = 255) -> np.ndarray:
    """Smooth random RGB (3, rows, cols) so the scene statistics are well defined."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:rows, 0:cols] / max(rows, cols)
    base = np.stack([0.3 + 0.5 * x, 0.2 + 0.6 * y, 0.5 + 0.3 * x * y])
    noisy = np.clip(base + 0.05 * rng.standard_normal((3, rows, cols)), 0, 1)
    return (noisy * high).astype(dtype)


@dataclasses.dataclass
class CliResult:
    code: int
    stdout: str
    stderr: str

    @property
    def error_lines(self) -> list[str]:
        return [ln for ln in self.stderr.splitlines() if ln.startswith("error:")]

    @property
    def warning_lines(self) -> list[str]:
        return [ln for ln in self.stderr.splitlines() if ln.startswith("warning:")]


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Callable[[list[str]], CliResult]:
    """Run ``hyperldm-engine ARGS`` in this process; an uncaught exception fails the test."""
    from hyperldm_cli.main import main

    def run(argv: list[str]) -> CliResult:
        capsys.readouterr()
        previous = signal.getsignal(signal.SIGTERM)
        try:
            main([str(a) for a in argv])
            code = 0  # pragma: no cover - main always exits
        except SystemExit as exc:
            code = int(exc.code or 0)
        finally:
            signal.signal(signal.SIGTERM, previous)
        out, err = capsys.readouterr()
        return CliResult(code, out, err)

    return run
