"""The optional outputs of ``synthesize`` beside its cubes: another sensor's bands, ENVI headers, a library.

- ``--output-sensor``: :func:`output_bands` says which bands the cubes get (the model's own, or a
  sensor's via ``spectral.output_sensors``) and wraps the tile function so each tile is resampled.
- ``--envi-header``: an ENVI ``.hdr`` beside each cube (``OUT.hdr`` for ``OUT.tif``), for Spectral
  Python and ENVI.
- ``--library-out LIB.gpkg``: the decoder's endmember library R (in the output's bands) as a
  GeoPackage spectral library and ``LIB.csv``.

Every path is planned (``io.output_paths``) before any work, and written atomically inside the
command's ``ExitStack``, so that on an error or interrupt none of the outputs exists.
"""

from __future__ import annotations

from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hyperldm_engine.io.atomic import atomic_path
from hyperldm_engine.io.output_paths import Planned, check_file_name, file_output
from hyperldm_engine.io.preview import true_colour_bands
from hyperldm_engine.io.spectral_library import check_library_path, csv_path, write_csv, write_geopackage
from hyperldm_engine.io.writer import HsiWriter
from hyperldm_engine.spectral.output_sensors import ResampledTileFn, Resampling, get_output_sensor, resampling

ENVI_HEADER_SUFFIX = ".hdr"


def envi_header_path(cube: str | Path) -> Path:
    """``OUT.hdr`` beside ``OUT.tif`` (ENVI's and Spectral Python's convention for a header of a TIFF)."""
    return Path(cube).with_suffix(ENVI_HEADER_SUFFIX)


@dataclass(frozen=True)
class OutputBands:
    """The bands every cube is written with: the model's, or an output sensor's."""

    wavelengths_nm: np.ndarray
    fwhm_nm: np.ndarray
    names: list[str] | None  # the sensor's band names; None: the model's bands (b1, b2, ...)
    sensor: str  # "model" or the output sensor's name
    resampling: Resampling | None = None

    @property
    def count(self) -> int:
        return len(self.wavelengths_nm)

    def wrap(self, tile_fn: Any) -> Any:
        """The tile function whose cubes come out in these bands."""
        return tile_fn if self.resampling is None else ResampledTileFn(tile_fn, self.resampling.matrix)

    def describe(self) -> str:
        if self.resampling is None:
            return f"{self.count} model bands"
        text = f"{self.count} {self.sensor} bands ({', '.join(self.names or [])})"
        if self.resampling.dropped:
            text += (f"; left out {len(self.resampling.dropped)} beyond the model's range "
                     f"({', '.join(self.resampling.dropped[:6])}{' ...' if len(self.resampling.dropped) > 6 else ''})")
        return text


def output_bands(output_sensor: str | None, model: dict[str, Any]) -> OutputBands:
    """Resolve ``--output-sensor`` (registry name or CSV) against the model's bands (``bundle_summary``)."""
    wl, fwhm = np.asarray(model["wavelengths_nm"], float), np.asarray(model["fwhm_nm"], float)
    if not output_sensor:
        return OutputBands(wl, fwhm, None, "model")
    res = resampling(get_output_sensor(output_sensor), wl, fwhm)
    return OutputBands(np.asarray(res.sensor.centers_nm, float), np.asarray(res.sensor.fwhm_nm, float),
                       list(res.sensor.band_names), res.sensor.name, res)


def planned_outputs(cubes: list[Path], envi_header: bool, library_out: str | None) -> list[Planned]:
    """The sidecars and library files a run will write (checked with the cubes, before any work)."""
    planned = [file_output(envi_header_path(c), "the --envi-header sidecar") for c in cubes] if envi_header else []
    if library_out:
        check_file_name(library_out, "--library-out")
        lib = check_library_path(library_out)
        planned += [file_output(lib, "--library-out"), file_output(csv_path(lib), "the --library-out CSV")]
    return planned


def written_extras(cubes: list[Path], envi_header: bool, library_out: str | None) -> list[Path]:
    """The paths :func:`planned_outputs` names, in order (for messages and the ``done`` event)."""
    return [p.path for p in planned_outputs(cubes, envi_header, library_out)]


def enter_envi_header(stack: ExitStack, writer: HsiWriter, path: Path, overwrite: bool, description: str) -> None:
    """Write ``writer``'s ENVI header under a temporary name, renamed with the other outputs."""
    default = None
    if writer.wavelengths_nm is not None:
        n = len(writer.wavelengths_nm)
        first = writer.wavelengths_nm[: min(n, len(np.unique(writer.wavelengths_nm)))]
        default = [i + 1 for i in true_colour_bands(first)]
    tmp = stack.enter_context(atomic_path(envi_header_path(path), overwrite=overwrite))
    tmp.write_text(writer.envi_header(default_bands=default, description=description))


def enter_library(stack: ExitStack, library_out: str, model_path: str, bands: OutputBands, overwrite: bool) -> None:
    """The decoder's endmember library R in the output's bands, as GeoPackage and CSV (atomic)."""
    from hyperldm_engine.models.bundle import load_bundle

    bundle = load_bundle(model_path, device="cpu")
    spectra = bundle.library.detach().cpu().numpy().astype(np.float64).T  # (n_library, n_model_bands)
    if bands.resampling is not None:
        spectra = spectra @ bands.resampling.matrix.T
    fields = {"name": list(bundle.library_names), "class": list(bundle.library_classes),
              "id": list(bundle.library_ids), "source": list(bundle.library_sources)}
    lib = Path(library_out)
    tmp_gpkg = stack.enter_context(atomic_path(lib, overwrite=overwrite))
    write_geopackage(tmp_gpkg, spectra, bands.wavelengths_nm, fields)
    tmp_csv = stack.enter_context(atomic_path(csv_path(lib), overwrite=overwrite))
    write_csv(tmp_csv, spectra, bands.wavelengths_nm, fields)
