"""Reading RGB scenes and hyperspectral training rasters, with validity masks.

``open_rgb`` validates an RGB raster once (bands, dtype, geotransform) and reads windows as
float32 reflectance-like values with a validity mask (nodata, GDAL masks, alpha, NaN/Inf).
Scaling: uint8 / 255, uint16 / 65535, float as-is, unless an explicit ``scale`` is given
(``--scale 10000`` for reflectance x 10000). The model's input is then normalised per scene,
never per tile (``scene_statistics`` + ``normalise_rgb``), so neighbouring tiles agree.
"""

from __future__ import annotations

import math
import os
import re
import stat
import threading
import warnings
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import rasterio
from affine import Affine
from rasterio.enums import ColorInterp, MaskFlags, Resampling
from rasterio.errors import NotGeoreferencedWarning, RasterioError, RasterioIOError
from rasterio.windows import Window

from hyperldm_engine.errors import InputError
from hyperldm_engine.io.wavelengths import find_wavelengths, read_wavelength_file
from hyperldm_engine.timings import timed

# Default divisors that bring integer RGB into 0-1.
DEFAULT_SCALES = {"uint8": 255.0, "uint16": 65535.0}
# Integer hyperspectral cubes without a recorded scale factor: reflectance x 10000 is the
# common convention (ENVI, Sentinel-2 L2A); uint8 cubes are taken as 0-255.
DEFAULT_HSI_SCALES = {"uint8": 255.0, "uint16": 10000.0, "int16": 10000.0}
NORMALISED_MAX = 1.5  # normalised RGB is clipped to [0, 1.5]
WHITE_PERCENTILE = 99.0
PERCENTILE_LEVELS = (1.0, 2.0, 50.0, 98.0, 99.0)


#: GDAL dataset names that are not plain files: /vsizip/..., /vsicurl/..., GPKG:file.gpkg:layer, ...
_GDAL_NAME = re.compile(r"^(/vsi[a-z0-9_]+/|[A-Za-z][A-Za-z0-9_]+:(?!//))")
#: a rotation or shear this small (relative to the pixel size) is round-off, not a rotation
ROTATION_TOLERANCE = 1e-9


def block_windows(width: int, height: int, size: int) -> Iterator[Window]:
    """Non-overlapping ``size`` x ``size`` windows covering a raster, row by row (the last row and
    column shorter): the blocks a whole-raster pass reads one at a time (flat memory)."""
    for r0 in range(0, height, size):
        for c0 in range(0, width, size):
            yield Window(c0, r0, min(size, width - c0), min(size, height - r0))


#: Two rasters are on the same grid when CRS and size match and every transform coefficient agrees
#: to this fraction of a pixel. 1e-6 px is invisible (a micrometre at 1 m pixels) yet accepts an
#: origin that went through decimal text (ENVI map info, VRT, world files: about 12 significant
#: digits, i.e. 5e-6 m on a 5e6 m northing, 5e-7 of a 10 m pixel), which 1e-9 refused.
GRID_TOLERANCE_PX = 1e-6


class RasterGrid(NamedTuple):
    """A raster's grid, kept after the file is closed (CRS, affine transform, size in pixels)."""

    crs: Any
    transform: Affine
    width: int
    height: int

    @classmethod
    def of(cls, raster: Any) -> RasterGrid:
        return cls(raster.crs, raster.transform, int(raster.width), int(raster.height))


def grid_mismatch(a: Any, b: Any) -> str | None:
    """None if ``a`` and ``b`` (rasterio datasets or the engine's readers: ``.crs .transform .width
    .height``) share CRS, size and transform within :data:`GRID_TOLERANCE_PX`; else what differs."""
    if (a.width, a.height) != (b.width, b.height):
        return f"size {a.width}x{a.height} vs {b.width}x{b.height}"
    if (a.crs is None) != (b.crs is None) or (a.crs is not None and a.crs != b.crs):
        return f"CRS {a.crs} vs {b.crs}"
    pixel = max(abs(a.transform.a), abs(a.transform.e), 1e-12)
    if not a.transform.almost_equals(b.transform, precision=GRID_TOLERANCE_PX * pixel):
        return f"transform {tuple(a.transform)[:6]} vs {tuple(b.transform)[:6]}"
    return None


def _open_dataset(path: str | os.PathLike[str]) -> rasterio.DatasetReader:
    p = Path(path)
    if _GDAL_NAME.match(str(path)) and not p.exists():  # a GDAL virtual file system or driver prefix
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", NotGeoreferencedWarning)
                return rasterio.open(str(path))
        except (RasterioIOError, OSError) as exc:
            raise InputError(f"{path}: GDAL cannot open this dataset name ({_first_line(exc)})") from exc
    if not p.exists():
        raise InputError(f"{p}: file not found")
    if p.is_dir():
        raise InputError(f"{p}: is a folder, not a raster file")
    if not stat.S_ISREG(p.stat().st_mode):
        raise InputError(f"{p}: is not a regular file (a FIFO, device or socket); give a raster file")
    if p.stat().st_size == 0:
        raise InputError(f"{p}: the file is empty")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            return rasterio.open(p)
    except RasterioIOError as exc:
        raise InputError(f"{p}: not a raster that GDAL can read (or truncated)") from exc
    except OSError as exc:
        raise InputError(f"{p}: cannot read the file: {exc.strerror or exc}") from exc


def _first_line(exc: BaseException) -> str:
    return (str(exc).splitlines() or [type(exc).__name__])[0].strip()


def _check_geotransform(ds: rasterio.DatasetReader, p: Path) -> None:
    t = ds.transform
    pixel = max(abs(t.a), abs(t.e), 1e-300)
    if abs(t.b) > ROTATION_TOLERANCE * pixel or abs(t.d) > ROTATION_TOLERANCE * pixel:
        raise InputError(
            f"{p}: the geotransform is rotated or sheared; warp it to a north-up grid first "
            "(e.g. gdalwarp)"
        )
    if t == Affine.identity() and ds.crs is None and (ds.gcps[0] or ds.rpcs is not None):
        raise InputError(
            f"{p}: georeferenced by ground control points or RPCs only; warp it to a grid first "
            "(e.g. gdalwarp)"
        )


def _probe_read(ds: rasterio.DatasetReader, p: Path, indexes: list[int]) -> None:
    """Read the first and last block so a truncated file fails here, not mid-run."""
    try:
        h = min(ds.height, 16)
        w = min(ds.width, 16)
        ds.read(indexes, window=Window(0, 0, w, h))
        ds.read(indexes, window=Window(ds.width - w, ds.height - h, w, h))
    except (RasterioError, OSError) as exc:
        if ds.driver == "VRT":
            missing = [f for f in ds.files[1:] if "/vsi" not in f and not os.path.exists(f)]
            detail = f"{missing[0]} does not exist" if missing else _first_line(exc)
            raise InputError(f"{p}: a source of this VRT is missing or unreadable ({detail})") from exc
        raise InputError(f"{p}: the raster is truncated or corrupt (reading failed)") from exc


def has_geotransform(ds: rasterio.DatasetReader) -> bool:
    """False for a raster without georeferencing (GDAL then reports the identity transform)."""
    return not (ds.transform == Affine.identity() and ds.crs is None)


def _valid_mask(ds: rasterio.DatasetReader, indexes: list[int], data: np.ndarray,
                masks: np.ndarray, nodata_override: float | None) -> np.ndarray:
    """True where a pixel is valid: GDAL mask / alpha / nodata, and every value finite.

    A nodata-only mask invalidates a pixel when all bands equal nodata (GDAL's per-dataset
    convention); alpha and per-dataset masks are shared by the bands.
    """
    if nodata_override is not None:
        if math.isnan(nodata_override):
            valid = ~np.all(np.isnan(data), axis=0)
        else:
            valid = ~np.all(data == nodata_override, axis=0)
    else:
        flags = [ds.mask_flag_enums[i - 1] for i in indexes]
        nodata_only = all(MaskFlags.nodata in f for f in flags)
        valid = masks.any(axis=0) if nodata_only else masks.all(axis=0)
    if np.issubdtype(data.dtype, np.floating):
        valid &= np.all(np.isfinite(data), axis=0)
    return valid


class _RasterReader:
    """Shared parts of the RGB and hyperspectral readers: geometry, windows, masks, pickling."""

    def __init__(self, path: str | os.PathLike[str], indexes: list[int], scale: float,
                 nodata: float | None) -> None:
        self.path = Path(path)
        self._indexes = list(indexes)
        self.scale = float(scale)
        self._nodata_override = nodata
        self._lock = threading.Lock()
        self._ds: rasterio.DatasetReader | None = None

    # geometry --------------------------------------------------------------------------------
    @property
    def ds(self) -> rasterio.DatasetReader:
        if self._ds is None or self._ds.closed:
            self._ds = _open_dataset(self.path)
        return self._ds

    @property
    def width(self) -> int:
        return self.ds.width

    @property
    def height(self) -> int:
        return self.ds.height

    @property
    def crs(self) -> Any:
        return self.ds.crs

    @property
    def has_crs(self) -> bool:
        return self.ds.crs is not None

    @property
    def is_geographic(self) -> bool:
        return bool(self.ds.crs is not None and self.ds.crs.is_geographic)

    @property
    def transform(self) -> Affine:
        return self.ds.transform

    @property
    def res(self) -> tuple[float, float]:
        return self.ds.res

    @property
    def dtype(self) -> str:
        return self.ds.dtypes[self._indexes[0] - 1]

    @property
    def nodata(self) -> float | None:
        return self._nodata_override if self._nodata_override is not None else self.ds.nodata

    @property
    def bands(self) -> tuple[int, ...]:
        """1-based indexes of the bands read."""
        return tuple(self._indexes)

    @property
    def profile(self) -> dict[str, Any]:
        """The source profile (copy), with ``count`` = bands read; a starting point for outputs."""
        prof = dict(self.ds.profile)
        prof["count"] = len(self._indexes)
        if not self.has_geotransform:  # never invent one (GDAL reports the identity, south-up)
            prof["transform"] = None
        return prof

    @property
    def has_geotransform(self) -> bool:
        return has_geotransform(self.ds)

    # reading ---------------------------------------------------------------------------------
    def _check_window(self, window: Window) -> None:
        if (window.col_off < 0 or window.row_off < 0 or window.width <= 0 or window.height <= 0
                or window.col_off + window.width > self.width
                or window.row_off + window.height > self.height):
            raise ValueError(f"window {window} is not inside the {self.width}x{self.height} raster")

    def _read_raw(self, window: Window | None, out_shape: tuple[int, int] | None = None
                  ) -> tuple[np.ndarray, np.ndarray]:
        kw: dict[str, Any] = {"window": window}
        if out_shape is not None:
            kw["out_shape"] = (len(self._indexes), *out_shape)
            kw["resampling"] = Resampling.nearest
        with self._lock:
            ds = self.ds
            try:
                data = ds.read(self._indexes, **kw)
                masks = (ds.read_masks(self._indexes, **kw) if self._nodata_override is None
                         else np.empty((0,), np.uint8))
            except (RasterioError, OSError) as exc:
                raise InputError(f"{self.path}: reading failed (truncated or corrupt raster)") from exc
            valid = _valid_mask(ds, self._indexes, data, masks, self._nodata_override)
        return data, valid

    def _scaled(self, data: np.ndarray, valid: np.ndarray) -> np.ndarray:
        out = data.astype(np.float32)
        if self.scale != 1.0:
            out /= np.float32(self.scale)
        out[:, ~valid] = 0.0
        return out

    @timed("read")
    def read(self, window: Window | None = None) -> tuple[np.ndarray, np.ndarray]:
        """``(values float32 (bands, h, w), valid bool (h, w))``; invalid pixels are 0.

        ``window`` must lie inside the raster (None = whole raster).
        """
        if window is not None:
            self._check_window(window)
        data, valid = self._read_raw(window)
        return self._scaled(data, valid), valid

    def read_decimated(self, max_pixels: int) -> tuple[np.ndarray, np.ndarray, int]:
        """Whole scene read at a reduced size (GDAL uses overviews when present)."""
        factor = max(1, math.ceil(math.sqrt(self.width * self.height / max(1, max_pixels))))
        shape = (max(1, self.height // factor), max(1, self.width // factor))
        data, valid = self._read_raw(None, shape if factor > 1 else None)
        return self._scaled(data, valid), valid, factor

    # lifetime --------------------------------------------------------------------------------
    def close(self) -> None:
        if self._ds is not None:
            self._ds.close()
            self._ds = None

    def __enter__(self) -> _RasterReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __getstate__(self) -> dict[str, Any]:
        # picklable for dask workers: the dataset handle and lock are reopened there
        state = self.__dict__.copy()
        state["_ds"] = None
        state["_lock"] = None
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()


class RgbReader(_RasterReader):
    """A validated RGB raster; ``read(window)`` -> (rgb float32 (3,h,w), valid (h,w)).

    ``bands`` are the 1-based R, G, B indexes; ``band_source`` says what chose them (``--bands``,
    ``colour interpretation``, ``band descriptions`` or ``band order``).
    """

    band_source: str = "band order"


def _parse_bands(bands: Any, count: int, p: Path, needed: int | None) -> list[int]:
    if isinstance(bands, str):
        try:
            idx = [int(b) for b in bands.replace(" ", "").split(",") if b]
        except ValueError as exc:
            raise InputError(f"{p}: --bands {bands!r} must be 1-based band numbers such as 3,2,1") from exc
    else:
        idx = [int(b) for b in bands]
    if needed is not None and len(idx) != needed:
        raise InputError(f"{p}: {len(idx)} bands picked ({bands}); an RGB image needs exactly 3")
    bad = [b for b in idx if b < 1 or b > count]
    if bad:
        raise InputError(f"{p}: band {bad[0]} does not exist; the raster has bands 1..{count}")
    if len(set(idx)) != len(idx):
        raise InputError(f"{p}: bands {bands} repeat a band")
    return idx


#: ``--scale`` divides input values to bring them to about 0-1 (255, 65535, 10000, 100, 1 ...); a
#: divisor outside this range overflows float32 (1e-300 made every value infinite) or zeroes the data.
SCALE_RANGE = (1e-6, 1e12)


def check_scale(scale: float, p: Path) -> None:
    if not (math.isfinite(scale) and scale > 0):
        raise InputError(f"{p}: scale must be a positive number, got {scale}")
    lo, hi = SCALE_RANGE
    if not lo <= scale <= hi:
        raise InputError(f"{p}: --scale {scale:g} is outside {lo:g}..{hi:g}; it is the divisor that brings "
                         "the input values to 0-1 (e.g. 255, 10000)")


def _default_scale(dtype: str, p: Path, table: dict[str, float]) -> float:
    if dtype.startswith("float"):
        return 1.0
    if dtype in table:
        return table[dtype]
    if dtype.startswith("complex"):
        raise InputError(f"{p}: complex data ({dtype}) is not an image")
    raise InputError(f"{p}: {dtype} data has no default scale; give one (e.g. --scale 10000)")


def open_rgb(path: str | os.PathLike[str], bands: Any = None, scale: float | None = None,
             nodata: float | None = None) -> RgbReader:
    """Open and validate an RGB raster; one-line InputError for anything unusable.

    ``bands``: 1-based R,G,B indexes (list or "3,2,1") for rasters with other band counts.
    ``scale``: divisor to reflectance-like units (default 255 for uint8, 65535 for uint16, 1 for
    float). ``nodata``: overrides the file's nodata value.
    """
    p = Path(path)
    ds = _open_dataset(path)
    try:
        count = ds.count
        from_file = _rgb_from_file(ds)
        if bands is not None:
            idx, source = _parse_bands(bands, count, p, needed=3), "--bands"
        elif from_file is not None:
            idx, source = from_file
        elif count == 3:
            idx, source = [1, 2, 3], "band order"
        elif count == 1 and ds.colorinterp[0] == ColorInterp.palette:
            raise InputError(f"{p}: is a paletted (colour-table) image; expand it to RGB first, e.g. "
                             "gdal_translate -expand rgb IN OUT")
        elif count == 4:
            if ds.colorinterp[3] != ColorInterp.alpha:
                raise InputError(
                    f"{p}: has 4 bands and band 4 is not an alpha band; pick the RGB bands "
                    "(e.g. --bands 1,2,3)"
                )
            idx, source = [1, 2, 3], "band order"
        else:
            raise InputError(
                f"{p}: has {count} band{'s' if count != 1 else ''}; an RGB image needs 3 bands "
                "(or 4 with alpha); pick the RGB bands (e.g. --bands 3,2,1)"
            )
        _check_geotransform(ds, p)
        dtypes = {ds.dtypes[i - 1] for i in idx}
        if len(dtypes) != 1:
            raise InputError(f"{p}: the RGB bands have different data types {sorted(dtypes)}")
        dtype = dtypes.pop()
        if scale is None:
            scale = _default_scale(dtype, p, DEFAULT_SCALES)
        else:
            check_scale(scale, p)
        if ds.width < 1 or ds.height < 1:
            raise InputError(f"{p}: the raster has no pixels")
        _probe_read(ds, p, idx)
    except BaseException:
        ds.close()
        raise
    reader = RgbReader(path if _GDAL_NAME.match(str(path)) else p, idx, float(scale), nodata)
    reader.band_source = source
    reader._ds = ds
    return reader


_RGB = {"red": ColorInterp.red, "green": ColorInterp.green, "blue": ColorInterp.blue}


def _rgb_from_file(ds: rasterio.DatasetReader) -> tuple[list[int], str] | None:
    """R, G, B band indexes named by the file: colour interpretation, else band descriptions
    ("red", "Green", "blue band" ...); None when the file does not say (or says it twice)."""
    found = [[i + 1 for i, c in enumerate(ds.colorinterp) if c == want] for want in _RGB.values()]
    if all(len(f) == 1 for f in found):
        return [f[0] for f in found], "colour interpretation"
    words = [re.split(r"[\s_:,()-]+", (d or "").strip().lower()) for d in ds.descriptions]
    found = [[i + 1 for i, w in enumerate(words) if name in w] for name in _RGB]
    if all(len(f) == 1 for f in found):
        return [f[0] for f in found], "band descriptions"
    return None


@dataclass
class SceneStatistics:
    """Scene-level radiometry from a decimated read: the model's input normalisation.

    ``white``: 99th percentile of the per-pixel maximum channel over valid pixels (scaled
    units); ``percentiles[c][i]`` is channel c at ``levels[i]`` percent; ``warnings`` are
    one-line notes for the user (e.g. data far outside the expected scale).
    """

    white: float
    levels: tuple[float, ...]
    percentiles: list[list[float]]
    mean: list[float]
    valid_fraction: float
    sampled_pixels: int
    decimation: int
    scale: float
    dtype: str
    warnings: list[str] = field(default_factory=list)
    #: (3, 4) affine map applied to the RGB before the white level (``simulate.harmonise``); None: none
    harmonisation: list[list[float]] | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@timed("statistics")
def scene_statistics(reader: _RasterReader, max_pixels: int = 2_000_000,
                     harmonisation: list[list[float]] | None = None) -> SceneStatistics:
    """Compute the scene's white level and channel percentiles once, from <= max_pixels pixels, of the
    RGB after ``harmonisation`` (a (3, 4) affine map, ``simulate.harmonise``) when one is given.

    InputError when no pixel is valid (all nodata) or all valid pixels are black.
    """
    rgb, valid, factor = reader.read_decimated(max_pixels)
    n_valid = int(valid.sum())
    p = reader.path
    if n_valid == 0:
        raise InputError(f"{p}: the raster contains no valid pixels (all nodata or masked)")
    vals = harmonised(rgb[:, valid], harmonisation).astype(np.float64)  # (3, n)
    pmax = vals.max(axis=0)
    white = float(np.percentile(pmax, WHITE_PERCENTILE))
    if not white > 0:
        raise InputError(f"{p}: all valid pixels are black (white level 0); nothing to normalise")
    pct = np.percentile(vals, PERCENTILE_LEVELS, axis=1).T  # (3, levels)
    notes: list[str] = []
    raw_white = white * reader.scale
    if reader.dtype == "uint16" and math.isclose(reader.scale, 65535.0) and white < 0.25:
        notes.append(
            f"{p}: uint16 values reach only about {raw_white:.0f} (99th percentile), far below "
            f"65535; if they are reflectance x 10000 use --scale 10000 (the scene normalisation "
            "compensates either way)"
        )
    elif white > 2.0:
        notes.append(
            f"{p}: values reach about {white:.3g} after scaling by 1/{reader.scale:g}, well above "
            "reflectance 1; check the scale (e.g. --scale 10000)"
        )
    if n_valid / valid.size < 0.01:
        notes.append(f"{p}: only {100 * n_valid / valid.size:.2f}% of the pixels are valid")
    return SceneStatistics(
        white=white,
        levels=PERCENTILE_LEVELS,
        percentiles=pct.tolist(),
        mean=vals.mean(axis=1).tolist(),
        valid_fraction=n_valid / valid.size,
        sampled_pixels=int(valid.size),
        decimation=factor,
        scale=reader.scale,
        dtype=reader.dtype,
        warnings=notes,
        harmonisation=harmonisation,
    )


def harmonised(rgb: np.ndarray, harmonisation: list[list[float]] | None) -> np.ndarray:
    """``rgb`` (3, ...) through the (3, 4) affine map ``M [r, g, b, 1]`` (clipped at 0), or as it is."""
    if harmonisation is None:
        return np.asarray(rgb)
    m = np.asarray(harmonisation, np.float32)
    x = np.asarray(rgb, np.float32)
    out = np.tensordot(m[:, :3], x, 1) + m[:, 3].reshape((3,) + (1,) * (x.ndim - 1))
    return np.maximum(out, 0.0, out=out)


def normalise_rgb(rgb: np.ndarray, stats: SceneStatistics) -> np.ndarray:
    """The model's RGB input: ``clip(harmonised(rgb) / stats.white, 0, 1.5)`` with one white for the scene."""
    out = np.asarray(harmonised(rgb, stats.harmonisation), dtype=np.float32) / np.float32(stats.white)
    return np.clip(out, 0.0, NORMALISED_MAX, out=out)


class HsiReader(_RasterReader):
    """A hyperspectral raster with wavelengths; ``read(window)`` -> (cube (bands,h,w), valid)."""

    def __init__(self, path: str | os.PathLike[str], indexes: list[int], scale: float,
                 nodata: float | None, wavelengths_nm: np.ndarray, fwhm_nm: np.ndarray | None
                 ) -> None:
        super().__init__(path, indexes, scale, nodata)
        self.wavelengths_nm = wavelengths_nm
        self.fwhm_nm = fwhm_nm

    @property
    def count(self) -> int:
        return len(self._indexes)


def _recorded_scale(ds: rasterio.DatasetReader) -> float | None:
    """The divisor to reflectance recorded in the file: 1 / GDAL's band scale (reflectance = stored
    x scale), else ENVI's ``reflectance scale factor`` or an older engine's ``scale_factor`` tag."""
    band_scale = float(ds.scales[0]) if ds.scales else 1.0
    if math.isfinite(band_scale) and band_scale > 0 and band_scale != 1.0:
        return 1.0 / band_scale
    for tags in (ds.tags(), ds.tags(ns="ENVI") if "ENVI" in (ds.tag_namespaces() or []) else {}):
        for key in ("scale_factor", "reflectance_scale_factor", "reflectance scale factor"):
            if key in tags:
                try:
                    v = float(tags[key])
                except ValueError:
                    continue
                if math.isfinite(v) and v > 0:
                    return v
    return None


def open_hsi(path: str | os.PathLike[str], wavelengths_file: str | os.PathLike[str] | None = None,
             scale: float | None = None, nodata: float | None = None) -> HsiReader:
    """Open a hyperspectral raster (GeoTIFF, ENVI, ...) with its band wavelengths in nm.

    Integer data are divided by ``scale``, else by 1 / GDAL's band scale, the ENVI
    ``reflectance scale factor`` or an older engine's ``scale_factor`` tag, else by 10000 (uint16/int16) or 255 (uint8).
    InputError if no wavelengths are found or the file's band count disagrees with them.
    """
    p = Path(path)
    ds = _open_dataset(p)
    try:
        _check_geotransform(ds, p)
        idx = list(ds.indexes)
        if wavelengths_file is not None:
            found = read_wavelength_file(wavelengths_file)
        else:
            found = find_wavelengths(p)
            if found is None:
                raise InputError(
                    f"{p}: no band wavelengths found (band descriptions, 'wavelength' metadata or an "
                    "ENVI .hdr); give them with a wavelengths file"
                )
        centers, fwhm = found
        if len(centers) != len(idx):
            raise InputError(
                f"{p}: has {len(idx)} bands but {len(centers)} wavelengths were given"
            )
        dtype = ds.dtypes[0]
        if scale is None:
            scale = 1.0 if dtype.startswith("float") else _recorded_scale(ds)
            if scale is None:
                scale = _default_scale(dtype, p, DEFAULT_HSI_SCALES)
        else:
            check_scale(scale, p)
        _probe_read(ds, p, idx[:1])
    except BaseException:
        ds.close()
        raise
    reader = HsiReader(p, idx, float(scale), nodata, np.asarray(centers, float),
                       None if fwhm is None else np.asarray(fwhm, float))
    reader._ds = ds
    return reader
