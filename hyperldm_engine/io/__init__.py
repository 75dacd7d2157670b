"""Raster reading and writing, atomic outputs, wavelengths and previews (see docs/io.md)."""

from hyperldm_engine.io.atomic import (
    atomic_dir,
    atomic_path,
    clean_stale_temporaries,
    ensure_distinct,
)
from hyperldm_engine.io.raster import (
    HsiReader,
    RgbReader,
    SceneStatistics,
    normalise_rgb,
    open_hsi,
    open_rgb,
    scene_statistics,
)
from hyperldm_engine.io.wavelengths import read_wavelength_file, read_wavelengths
from hyperldm_engine.io.writer import HsiWriter, write_raster

__all__ = [
    "HsiReader",
    "HsiWriter",
    "RgbReader",
    "SceneStatistics",
    "atomic_dir",
    "atomic_path",
    "clean_stale_temporaries",
    "ensure_distinct",
    "normalise_rgb",
    "open_hsi",
    "open_rgb",
    "read_wavelength_file",
    "read_wavelengths",
    "scene_statistics",
    "write_raster",
]
