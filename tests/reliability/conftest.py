"""Fixtures of the reliability tests: a tiny random-weights bundle, rasters and an in-process CLI."""

from __future__ import annotations

import dataclasses
import signal
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import rasterio
import torch
from rasterio.transform import from_origin
from tiny_models import tiny_config

from hyperldm_engine.diffusion.schedule import NoiseSchedule
from hyperldm_engine.models.bundle import Bundle, build_modules, save_bundle
from hyperldm_engine.spectral.library import decoder_library
from hyperldm_engine.spectral.rgb import camera_response
from hyperldm_engine.spectral.sensor import default_sensor

#: options that make a synthesis of a 64 x 64 scene take well under a second with the tiny bundle
FAST_SYNTH = {"--tile-size": "32", "--overlap": "8", "--steps": "2", "--progress": "none"}


def make_tiny_bundle(path: Path) -> Path:
    """A valid bundle with random weights (real sensor, library and camera response), ~0.3 MB."""
    sensor = default_sensor()
    R, meta = decoder_library(sensor)
    cfg = tiny_config(R.shape[1])
    with torch.random.fork_rng():
        torch.manual_seed(0)
        vqgan, denoiser, classifier = build_modules(cfg, torch.from_numpy(R).float())
    bundle = Bundle(
        config=cfg, vqgan=vqgan, denoiser=denoiser, classifier=classifier,
        sensor_centers_nm=sensor.centers_nm, sensor_fwhm_nm=sensor.fwhm_nm,
        library_ids=[m["id"] for m in meta], library_names=[m["name"] for m in meta],
        library_sources=[m["source"] for m in meta], library_classes=[m["class"] for m in meta],
        rgb={"kind": "camera", "camera": "Nikon 5100 (NPL)", "bands": None,
             "normalisation": {"method": "scene_white"}},
        schedule=NoiseSchedule.linear().to_dict(), latent_scale=1.0, class_names=["a", "b", "c"],
        rgb_response=camera_response(sensor),
        training={"gsd_m": 2.0, "provenance": {"note": "random weights for reliability tests"}},
    )  # fmt: skip
    return save_bundle(path, bundle)


@pytest.fixture(scope="session")
def tiny_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_bundle(tmp_path_factory.mktemp("bundle") / "tiny")


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
