"""Multiband GeoTIFF writer for hyperspectral cubes, maps and labels; windowed and atomic.

Layout: tiled 512 x 512, band-interleaved, ZSTD (DEFLATE where the GDAL build lacks ZSTD) with
the floating-point predictor (3) for float data and the horizontal predictor (2) for integers,
BIGTIFF=IF_SAFER. Spectral metadata is written so that GDAL, QGIS, the EnMAP-Box and Spectral
Python all find it (design.md section 5), see :func:`spectral_metadata`:

- band level, ``IMAGERY`` domain: ``CENTRAL_WAVELENGTH_UM`` and ``FWHM_UM`` (micrometres, 6
  decimals; GDAL's standard since 3.10, the EnMAP-Box's since 3.16);
- band level, default domain: ``wavelength``, ``wavelength_units = Nanometers``, ``fwhm`` (what
  GDAL's ENVI driver sets; older EnMAP-Box versions ignore a wavelength without its units);
- dataset level, ``ENVI`` domain (and the default domain): ``wavelength``, ``wavelength_units``,
  ``fwhm``, ``bbl`` as ENVI lists ``{410.0, 422.3404, ...}``;
- band descriptions as GDAL's ENVI driver builds them from ``band names`` and ``wavelength``:
  ``b12 (545.7447 Nanometers)`` (or ``B8A (864.7 Nanometers)`` for a named sensor band).

An ENVI ``.hdr`` sidecar with the same keys (:func:`envi_header_text`) is optional
(``--envi-header``): it is the only place Spectral Python reads wavelengths from. Integer cubes hold
reflectance = stored value x scale (``INT_SCALE``, 1e-4, for uint16): the scale is GDAL's band
scale (offset 0), so GDAL, rasterio (``scales``) and QGIS show reflectance; ENVI's
``reflectance_scale_factor`` (its divisor, 1 / scale) is recorded too.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import re
import resource
import shutil
import signal
import warnings
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
import rasterio.shutil
from rasterio.errors import NotGeoreferencedWarning, RasterioError
from rasterio.windows import Window

from hyperldm_engine.errors import InputError, OutputError, ResourceError
from hyperldm_engine.io.atomic import atomic_path, remove_with_sidecars, temporary_name
from hyperldm_engine.timings import timed

try:  # GDAL errors that rasterio does not wrap (e.g. from rasterio.shutil.copy)
    from rasterio._err import CPLE_BaseError
except ImportError:  # pragma: no cover - private module moved
    CPLE_BaseError = RasterioError  # type: ignore[misc,assignment]
_GDAL_ERRORS = (OSError, RasterioError, CPLE_BaseError)

BLOCK = 512
WAVELENGTH_UNITS = "Nanometers"
#: Reflectance of one stored unit of an integer (uint16 / int16) cube: reflectance = stored value x
#: INT_SCALE, i.e. reflectance x 10000 is stored (the ENVI / Sentinel-2 L2A convention). Written as
#: GDAL's band scale; the one owner of this number (the CLI, the plugin and the docs read it here).
INT_SCALE = 1e-4
# Refuse upfront when free space is below this fraction of the uncompressed size: compressed
# reflectance rarely gets smaller than a quarter of it.
MIN_FREE_FRACTION = 0.25
_KNOWN_DTYPES = ("float32", "float64", "uint8", "uint16", "int16", "uint32", "int32")


_COMPRESSION_CACHE: dict[str, bool] = {}


def _driver_supports_compression(name: str) -> bool:
    """Probe by writing a 16x16 in-memory GeoTIFF with that compression; cached."""
    key = name.upper()
    if key not in _COMPRESSION_CACHE:
        from rasterio.io import MemoryFile

        ok = True
        try:
            with rasterio.Env(CPL_LOG="/dev/null"), MemoryFile() as mem, warnings.catch_warnings():
                warnings.simplefilter("ignore", NotGeoreferencedWarning)
                with mem.open(driver="GTiff", width=16, height=16, count=1, dtype="uint8",
                              compress=key) as ds:
                    ds.write(np.zeros((1, 16, 16), np.uint8))
                with mem.open() as ds:
                    ok = ds.compression is not None and ds.compression.name.upper() == key

        except Exception:
            ok = False
        _COMPRESSION_CACHE[key] = ok
    return _COMPRESSION_CACHE[key]


def compression_available(name: str) -> bool:
    """True if this GDAL build's GeoTIFF driver can write the compression ``name`` (e.g. ZSTD)."""
    return _driver_supports_compression(name)


def default_compression() -> str:
    """ZSTD where available, else DEFLATE (every GDAL build has DEFLATE)."""
    return "ZSTD" if _driver_supports_compression("ZSTD") else "DEFLATE"


def parse_creation_options(options: Sequence[str] | Mapping[str, Any] | None) -> dict[str, str]:
    """``["KEY=VALUE", ...]`` (the CLI's ``--co``) or a mapping -> ``{"KEY": "VALUE"}``."""
    if options is None:
        return {}
    if isinstance(options, Mapping):
        return {str(k).upper(): str(v) for k, v in options.items()}
    out: dict[str, str] = {}
    for item in options:
        key, sep, value = str(item).partition("=")
        if not sep or not key.strip():
            raise InputError(f"creation option {item!r} is not of the form KEY=VALUE (e.g. ZLEVEL=9)")
        out[key.strip().upper()] = value.strip()
    return out


#: Creation options the engine sets itself, and what sets them: in ``--co`` they would corrupt the
#: output (``DTYPE=int16`` stored zeros, ``NODATA=0`` left -9999 unflagged, ``CRS`` relabelled
#: metres as degrees, ``COUNT`` / ``WIDTH`` broke the writes), so they are refused by name.
ENGINE_OPTIONS = {
    "DTYPE": "--dtype", "DATA_TYPE": "--dtype", "COUNT": "the model's band count",
    "WIDTH": "the input raster's size", "HEIGHT": "the input raster's size", "CRS": "the input raster's CRS",
    "SRS": "the input raster's CRS", "NODATA": "the engine's nodata value (-9999 for float32, 0 for uint16)",
    "TRANSFORM": "the input raster's geotransform", "DRIVER": "the output's extension",
}
#: Compressions that hold 8-bit data only (lossy or not): a float or uint16 cube cannot be stored.
EIGHT_BIT_COMPRESSIONS = ("JPEG", "WEBP")


def check_creation_options(options: Mapping[str, str], dtype: str, count: int | None = None) -> None:
    """Refuse (InputError) creation options that would replace the engine's own settings or cannot hold
    the data, naming the key and the option that sets it; before any work, and again in the writer."""
    for key, value in options.items():
        if key in ENGINE_OPTIONS:
            how = ENGINE_OPTIONS[key]
            hint = f"use {how}" if how.startswith("--") else f"it follows {how}"
            raise InputError(f"--co {key}={value}: {key} is set by the engine ({hint}); remove it from --co")
    compress = options.get("COMPRESS", "").upper()
    if compress in EIGHT_BIT_COMPRESSIONS and (dtype != "uint8" or (count or 0) > 4):
        raise InputError(f"--co COMPRESS={options['COMPRESS']}: {compress} compression cannot hold {dtype} data "
                         f"of {count or 'many'} bands; use ZSTD, DEFLATE, LZW or LERC")


#: Output formats by extension (lower case). GeoTIFF only: the writer's layout, COG conversion and
#: metadata are GeoTIFF's; any other name would be a GeoTIFF under a misleading extension.
OUTPUT_FORMATS = {".tif": "GTiff", ".tiff": "GTiff"}


def check_output_format(path: str | os.PathLike[str], what: str = "the output") -> str:
    """The GDAL driver for an output file name; InputError listing the supported extensions otherwise."""
    suffix = Path(path).suffix.lower()
    if suffix not in OUTPUT_FORMATS:
        raise InputError(f"{path}: {what} must be a GeoTIFF named .tif or .tiff (got "
                         f"{suffix or 'no extension'}); supported output extensions: {', '.join(OUTPUT_FORMATS)}")
    return OUTPUT_FORMATS[suffix]


def format_envi_list(values: Sequence[float]) -> str:
    """ENVI header list syntax: ``{400.0, 412.5, 425.0}`` (4 decimals at most)."""
    return "{" + ", ".join(repr(round(float(v), 4)) for v in values) + "}"


def format_envi_value(value: float) -> str:
    """One value of an ENVI list (4 decimals at most): ``580.4``, ``422.3404``."""
    return repr(round(float(value), 4))


def band_description(index_1based: int, wavelength_nm: float, name: str | None = None) -> str:
    """GDAL's ENVI style, ``<band name> (<wavelength> <units>)``: ``b12 (545.7447 Nanometers)``.

    GDAL's ENVI driver builds a band's description exactly so from the header's ``band names`` and
    ``wavelength`` lists; ``name`` defaults to ``b<index>``.
    """
    label = name if name is not None else f"b{index_1based}"
    return f"{label} ({format_envi_value(wavelength_nm)} {WAVELENGTH_UNITS})"


def spectral_metadata(wavelengths_nm: Sequence[float], fwhm_nm: Sequence[float] | None = None,
                      bbl: Sequence[int] | None = None) -> tuple[dict[str, str], list[dict[str, dict[str, str]]]]:
    """The wavelength metadata of a cube: (dataset ``ENVI`` items, per band ``{domain: items}``).

    Dataset: ``wavelength``, ``wavelength_units``, ``fwhm`` and ``bbl`` (1 = good band) as ENVI
    lists. Band: the default domain's ``wavelength`` (nm), ``wavelength_units``, ``fwhm`` and the
    ``IMAGERY`` domain's ``CENTRAL_WAVELENGTH_UM`` / ``FWHM_UM`` in micrometres (6 decimals).
    """
    wl = np.asarray(wavelengths_nm, float).ravel()
    fw = None if fwhm_nm is None else np.asarray(fwhm_nm, float).ravel()
    good = [1] * len(wl) if bbl is None else [int(b) for b in bbl]
    dataset = {"wavelength": format_envi_list(wl), "wavelength_units": WAVELENGTH_UNITS,
               "bbl": "{" + ", ".join(map(str, good)) + "}"}
    if fw is not None:
        dataset["fwhm"] = format_envi_list(fw)
    bands = []
    for i, w in enumerate(wl):
        default = {"wavelength": format_envi_value(w), "wavelength_units": WAVELENGTH_UNITS}
        imagery = {"CENTRAL_WAVELENGTH_UM": f"{w / 1000.0:.6f}"}
        if fw is not None:
            default["fwhm"] = format_envi_value(fw[i])
            imagery["FWHM_UM"] = f"{fw[i] / 1000.0:.6f}"
        bands.append({"": default, "IMAGERY": imagery})
    return dataset, bands


#: ENVI ``data type`` codes of the dtypes the writer stores
ENVI_DATA_TYPES = {"uint8": 1, "int16": 2, "int32": 3, "float32": 4, "float64": 5, "uint16": 12, "uint32": 13}


def envi_header_text(width: int, height: int, dtype: str, wavelengths_nm: Sequence[float] | None,
                     fwhm_nm: Sequence[float] | None = None, band_names: Sequence[str] | None = None,
                     nodata: float | None = None, scale: float = 1.0, default_bands: Sequence[int] | None = None,
                     description: str = "") -> str:
    """An ENVI header describing a band-sequential GeoTIFF beside it (``file type = TIFF``).

    Spectral Python (``envi.open(hdr, tif)``) and ENVI read the wavelengths, FWHM, bad-band list,
    band names and reflectance scale from it; pixels are read from the GeoTIFF by GDAL.
    """
    count = len(band_names) if band_names is not None else (0 if wavelengths_nm is None else len(wavelengths_nm))
    lines = ["ENVI", f"description = {{{description or 'HyperLDM engine output'}}}", f"samples = {int(width)}",
             f"lines = {int(height)}", f"bands = {count}", "header offset = 0", "file type = TIFF",
             f"data type = {ENVI_DATA_TYPES[np.dtype(dtype).name]}", "interleave = bsq", "byte order = 0"]
    names = list(band_names) if band_names is not None else [f"b{i + 1}" for i in range(count)]
    lines.append("band names = {" + ", ".join(n.replace(",", ";") for n in names) + "}")
    if wavelengths_nm is not None:
        dataset, _ = spectral_metadata(wavelengths_nm, fwhm_nm)
        lines += [f"wavelength units = {WAVELENGTH_UNITS}", f"wavelength = {dataset['wavelength']}"]
        if "fwhm" in dataset:
            lines.append(f"fwhm = {dataset['fwhm']}")
        lines.append(f"bbl = {dataset['bbl']}")
    if default_bands:
        lines.append("default bands = {" + ", ".join(str(int(b)) for b in default_bands) + "}")
    if nodata is not None and np.isfinite(nodata):
        lines.append(f"data ignore value = {nodata:g}")
    if np.dtype(dtype).kind in "iu" and scale != 1.0:
        lines.append(f"reflectance scale factor = {round(1.0 / scale, 9):g}")
    return "\n".join(lines) + "\n"


def _profile_of(like: Any) -> dict[str, Any]:
    if like is None:
        return {}
    if isinstance(like, Mapping):
        return dict(like)
    prof = getattr(like, "profile", None)
    if isinstance(prof, Mapping):
        return dict(prof)
    raise TypeError(f"like_profile must be a mapping or have .profile, not {type(like).__name__}")


def _ignore_sigxfsz() -> None:
    """Make a file-size limit (RLIMIT_FSIZE) fail writes with EFBIG instead of killing us."""
    if hasattr(signal, "SIGXFSZ"):
        with contextlib.suppress(ValueError, OSError):  # not the main thread: nothing to do
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)


def _fsize_limit() -> int | None:
    soft, _ = resource.getrlimit(resource.RLIMIT_FSIZE)
    return None if soft == resource.RLIM_INFINITY else int(soft)


def check_free_space(path: str | os.PathLike[str], nbytes_uncompressed: int, copies: int = 1,
                     min_fraction: float = MIN_FREE_FRACTION) -> None:
    """Refuse (ResourceError) when the output's folder obviously cannot hold the output.

    The estimate is the uncompressed size; compression is not known in advance, so only a folder
    with less than ``min_fraction`` of it free (times ``copies`` for a COG built via a copy) is
    refused. The file-size limit (ulimit -f) is checked the same way.
    """
    final = Path(path)
    folder = final.parent if str(final.parent) else Path(".")
    need = int(nbytes_uncompressed * min_fraction)
    try:
        free = shutil.disk_usage(folder).free
    except OSError:
        return
    if free < need * copies:
        raise ResourceError(
            f"{final}: not enough disk space: {free / 1e6:.1f} MB free in {folder}, the output needs "
            f"about {nbytes_uncompressed / 1e6:.1f} MB uncompressed (at least {need * copies / 1e6:.1f} MB)"
        )
    limit = _fsize_limit()
    if limit is not None and limit < need:
        raise ResourceError(
            f"{final}: the file-size limit (ulimit -f) of {limit / 1e6:.1f} MB is too small for an "
            f"output of about {nbytes_uncompressed / 1e6:.1f} MB uncompressed"
        )


def gdal_message(exc: BaseException) -> str:
    """First line of a GDAL error without our temporary file names."""
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    text = re.sub(r"[^\s:]*\.hyperldm-tmp-[^\s:]*:?\s*", "", text)
    return text.removeprefix("_TIFFVSetField:").strip() or type(exc).__name__


def translate_write_error(final: Path, tmp: Path | Sequence[Path | None] | None,
                          exc: BaseException) -> BaseException:
    """Map a failed write to ResourceError (disk full, file too large) or OutputError.

    GDAL reports write failures without errno, so a GDAL error is classified from the state of
    the file system: free space nearly exhausted, or the temporary file at the size limit.
    """
    if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
        return ResourceError(f"{final}: the disk is full; no output was written")
    if isinstance(exc, OSError) and exc.errno == errno.EFBIG:
        return ResourceError(f"{final}: the file-size limit was reached; no output was written")
    if isinstance(exc, _GDAL_ERRORS):
        folder = final.parent if str(final.parent) else Path(".")
        limit = _fsize_limit()
        size = 0
        for t in (tmp if isinstance(tmp, list | tuple) else [tmp]):
            if t is not None:
                with contextlib.suppress(OSError):
                    size = max(size, Path(t).stat().st_size)
        # a write that failed within a few tiles (or half the limit) of the limit hit it
        if limit is not None and size >= limit - min(4 * BLOCK * BLOCK * 8, limit // 2):
            return ResourceError(
                f"{final}: the file-size limit (ulimit -f, {limit / 1e6:.1f} MB) was reached; "
                "no output was written"
            )
        with contextlib.suppress(OSError):
            if shutil.disk_usage(folder).free < 8 * 1024 * 1024:
                return ResourceError(f"{final}: the disk is full; no output was written")
        return OutputError(f"{final}: writing failed: {gdal_message(exc)}; no output was written")
    return exc


class _GdalWarnings(logging.Handler):
    """Collects GDAL's complaints about creation options (it ignores bad ones with a warning)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        msg = record.getMessage()
        if "creation option" in msg or "value not recognised" in msg:
            self.messages.append(msg.split(" in ", 1)[-1] if msg.startswith("CPLE_") else msg)


@contextlib.contextmanager
def _refuse_bad_options(final: Path) -> Iterator[None]:
    """Turn GDAL's 'unsupported creation option' warnings into an InputError."""
    logger = logging.getLogger("rasterio._env")
    handler = _GdalWarnings()
    old_level = logger.level
    logger.addHandler(handler)
    if not logger.isEnabledFor(logging.WARNING):
        logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)
    if handler.messages:
        raise InputError(f"{final}: bad creation option: {handler.messages[0]}")


class _GdalLog(logging.Handler):
    """Collects every GDAL warning and error rasterio logs while a write is in progress."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        msg = record.getMessage()
        self.messages.append(msg.split(" in ", 1)[-1] if msg.startswith("CPLE_") else msg)


@contextlib.contextmanager
def _gdal_messages_fail(final: Path) -> Iterator[None]:
    """A write during which GDAL warns or errs fails with that message as the one ``error:`` line.

    The messages are kept off stderr (no raw GDAL lines before the error); a write GDAL reports
    as failed therefore never ends with exit 0, even when GDAL itself only warned.
    """
    logger = logging.getLogger("rasterio")
    handler = _GdalLog()
    old_level, old_propagate = logger.level, logger.propagate
    logger.addHandler(handler)
    logger.propagate = False
    if not logger.isEnabledFor(logging.WARNING):
        logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)
        logger.propagate = old_propagate
    if handler.messages:
        raise OutputError(f"{final}: writing failed: GDAL reported {handler.messages[0]!r}; no output was written")


class HsiWriter:
    """Windowed, atomic multiband GeoTIFF writer (context manager).

    ``like_profile`` (a rasterio profile or an object with ``.profile``) supplies CRS and
    transform (and width/height when not given); ``None`` writes an ungeoreferenced raster.
    ``count`` defaults to ``len(wavelengths_nm)``. ``write(array, window, band_offset)`` takes
    float values (reflectance 0-1 for cubes); for integer ``dtype`` it stores
    ``round(value / scale)``, so that value = stored x ``scale`` (default ``INT_SCALE`` for
    uint16/int16, 1 otherwise; written as GDAL's band scale), with non-finite values as
    ``nodata``. With ``cog=True`` the finished file is converted to a Cloud-Optimised GeoTIFF
    (with overviews) before the atomic rename.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        like_profile: Any = None,
        width: int | None = None,
        height: int | None = None,
        count: int | None = None,
        wavelengths_nm: Sequence[float] | np.ndarray | None = None,
        fwhm_nm: Sequence[float] | np.ndarray | None = None,
        nodata: float | None = None,
        dtype: str = "float32",
        creation_options: Sequence[str] | Mapping[str, Any] | None = None,
        cog: bool = False,
        overwrite: bool = False,
        scale: float | None = None,
        band_names: Sequence[str] | None = None,
        tags: Mapping[str, Any] | None = None,
        check_space: bool = True,
    ) -> None:
        self.path = Path(path)
        prof = _profile_of(like_profile)
        self.width = int(width if width is not None else prof.get("width", 0))
        self.height = int(height if height is not None else prof.get("height", 0))
        self.wavelengths_nm = None if wavelengths_nm is None else np.asarray(wavelengths_nm, float).ravel()
        self.fwhm_nm = None if fwhm_nm is None else np.asarray(fwhm_nm, float).ravel()
        if count is None:
            if self.wavelengths_nm is not None:
                count = len(self.wavelengths_nm)
            elif band_names is not None:
                count = len(band_names)
            else:
                count = int(prof.get("count", 0))
        self.count = int(count)
        if self.width <= 0 or self.height <= 0 or self.count <= 0:
            raise ValueError(f"HsiWriter needs positive width/height/count, got "
                             f"{self.width}x{self.height}x{self.count}")
        if self.wavelengths_nm is not None and len(self.wavelengths_nm) != self.count:
            raise ValueError(f"{len(self.wavelengths_nm)} wavelengths for {self.count} bands")
        if self.fwhm_nm is not None and len(self.fwhm_nm) != self.count:
            raise ValueError(f"{len(self.fwhm_nm)} FWHM values for {self.count} bands")
        if band_names is not None and len(band_names) != self.count:
            raise ValueError(f"{len(band_names)} band names for {self.count} bands")
        self.dtype = np.dtype(dtype).name
        if self.dtype not in _KNOWN_DTYPES:
            raise ValueError(f"unsupported output dtype {self.dtype}")
        self.is_int = np.issubdtype(np.dtype(self.dtype), np.integer)
        if scale is None:
            scale = INT_SCALE if self.dtype in ("uint16", "int16") else 1.0
        if not (np.isfinite(scale) and scale > 0):
            raise ValueError(f"scale must be a positive number, got {scale}")
        self.scale = float(scale)
        if self.is_int and nodata is not None and not np.isfinite(nodata):
            raise ValueError(f"nodata {nodata} cannot be stored as {self.dtype}")
        self.nodata = nodata
        self.crs = prof.get("crs")
        self.transform = prof.get("transform")
        self.band_names = list(band_names) if band_names is not None else None
        self.extra_tags = dict(tags or {})
        self.user_options = parse_creation_options(creation_options)
        check_creation_options(self.user_options, self.dtype, self.count)
        self.cog = bool(cog)
        self.overwrite = bool(overwrite)
        self.check_space = bool(check_space)
        self._stack: contextlib.ExitStack | None = None
        self._ds: Any = None
        self._tmp: Path | None = None
        self._work: Path | None = None

    # -- layout -------------------------------------------------------------------------------
    @property
    def nbytes_uncompressed(self) -> int:
        return self.width * self.height * self.count * np.dtype(self.dtype).itemsize

    def creation_profile(self) -> dict[str, Any]:
        """The rasterio profile of the GeoTIFF written window by window.

        With ``cog`` this is a fast intermediate (level-1 compression, no user options: those go
        to the COG driver in ``cog_options``).
        """
        compress = default_compression()
        prof: dict[str, Any] = {
            "driver": "GTiff",
            "width": self.width,
            "height": self.height,
            "count": self.count,
            "dtype": self.dtype,
            "nodata": self.nodata,
            "crs": self.crs,
            "transform": self.transform,
            "tiled": True,
            "blockxsize": BLOCK,
            "blockysize": BLOCK,
            "compress": compress,
            "predictor": 2 if self.is_int else 3,
            "interleave": "band",
            "BIGTIFF": "IF_SAFER",
        }
        level = "1"  # ZSTD 1 vs 9: 5x faster for ~1% larger files (benchmarks/RESULTS.md)
        prof["ZSTD_LEVEL" if compress == "ZSTD" else "ZLEVEL"] = level
        if self.dtype == "uint8" and self.count == 4:  # no implicit RGB + alpha
            prof["photometric"] = "MINISBLACK"
        if not self.cog:
            for key, value in self.user_options.items():
                prof[key.lower() if key.lower() in prof else key] = value
        if prof["transform"] is None:
            del prof["transform"]
        if prof["crs"] is None:
            del prof["crs"]
        return prof

    def cog_options(self) -> dict[str, Any]:
        """COG driver options: our defaults, then the user's (GTiff names such as ZLEVEL,
        ZSTD_LEVEL, BLOCKXSIZE are translated to the COG driver's LEVEL, BLOCKSIZE)."""
        opts: dict[str, Any] = {
            "BLOCKSIZE": str(BLOCK),
            "COMPRESS": default_compression(),
            "LEVEL": "9",
            "PREDICTOR": "YES",
            "BIGTIFF": "IF_SAFER",
            "OVERVIEWS": "AUTO",
            "OVERVIEW_RESAMPLING": "NEAREST" if self.is_int else "AVERAGE",
            "COPY_SRC_MDD": "YES",  # keep the ENVI metadata domain
        }
        rename = {"ZLEVEL": "LEVEL", "ZSTD_LEVEL": "LEVEL", "BLOCKXSIZE": "BLOCKSIZE"}
        skip = {"TILED", "BLOCKYSIZE", "INTERLEAVE", "PHOTOMETRIC"}
        for key, value in self.user_options.items():
            if key not in skip:
                opts[rename.get(key, key)] = value
        if opts["COMPRESS"].upper() not in ("ZSTD", "DEFLATE", "LZMA", "LERC", "LERC_ZSTD",
                                            "LERC_DEFLATE", "WEBP", "JXL"):
            opts.pop("LEVEL")  # LZW, NONE, ... take no level
        return opts

    # -- context manager ----------------------------------------------------------------------
    def __enter__(self) -> HsiWriter:
        _ignore_sigxfsz()
        stack = contextlib.ExitStack()
        try:
            self._tmp = stack.enter_context(atomic_path(self.path, overwrite=self.overwrite))
            if self.check_space:
                check_free_space(self.path, self.nbytes_uncompressed, copies=2 if self.cog else 1)
            self._work = temporary_name(self.path) if self.cog else self._tmp
            if self.cog:
                work = self._work
                stack.callback(lambda: remove_with_sidecars(work))
            with warnings.catch_warnings(), _refuse_bad_options(self.path):
                warnings.simplefilter("ignore", NotGeoreferencedWarning)
                self._ds = rasterio.open(self._work, "w", **self.creation_profile())
            self._write_metadata()
        except BaseException as exc:
            self._abort_dataset()
            stack.__exit__(type(exc), exc, exc.__traceback__)
            err = translate_write_error(self.path, self._work, exc)
            if err is exc:
                raise
            if type(err) is OutputError:  # not a resource fault: GDAL refused the layout
                err = OutputError(f"{self.path}: cannot create the output: {gdal_message(exc)}")
            raise err from exc
        self._stack = stack
        return self

    @timed("write")
    def __exit__(self, exc_type, exc, tb) -> bool:
        stack, self._stack = self._stack, None
        assert stack is not None
        if exc is not None:
            self._abort_dataset()
            stack.__exit__(exc_type, exc, tb)
            return False
        try:
            with _gdal_messages_fail(self.path):
                self._ds.close()
                self._ds = None
                if self.cog:
                    self._convert_to_cog()
        except BaseException as err:
            self._abort_dataset()
            new = translate_write_error(self.path, [self._work, self._tmp], err)
            stack.__exit__(type(err), err, err.__traceback__)
            if new is err:
                raise
            raise new from err
        try:
            stack.__exit__(None, None, None)
        except BaseException as err:
            new = translate_write_error(self.path, self._tmp, err)
            if new is err:
                raise
            raise new from err
        return False

    def _abort_dataset(self) -> None:
        if self._ds is not None:
            with contextlib.suppress(Exception):
                self._ds.close()
            self._ds = None

    def _convert_to_cog(self) -> None:
        assert self._work is not None and self._tmp is not None
        with rasterio.Env(GDAL_NUM_THREADS="2"), warnings.catch_warnings(), \
                _refuse_bad_options(self.path):
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            rasterio.shutil.copy(self._work, self._tmp, driver="COG", **self.cog_options())
        remove_with_sidecars(self._work)

    # -- metadata and data --------------------------------------------------------------------
    def _write_metadata(self) -> None:
        ds = self._ds
        default: dict[str, str] = {str(k): str(v) for k, v in self.extra_tags.items()}
        envi: dict[str, str] = {}
        bands: list[dict[str, dict[str, str]]] = [{} for _ in range(self.count)]
        if self.wavelengths_nm is not None:
            dataset, bands = spectral_metadata(self.wavelengths_nm, self.fwhm_nm)
            envi.update(dataset)
            default.update({k: v for k, v in dataset.items() if k != "bbl"})
        if self.is_int and self.scale != 1.0:
            # reflectance = stored x scale + 0: GDAL's band scale, read by GDAL, rasterio and QGIS
            ds.scales = [self.scale] * self.count
            ds.offsets = [0.0] * self.count
            envi["reflectance_scale_factor"] = repr(round(1.0 / self.scale, 9))
        if self.nodata is not None and self.wavelengths_nm is not None:
            envi["data_ignore_value"] = repr(float(self.nodata))
        if default:
            ds.update_tags(**default)
        if envi:
            ds.update_tags(ns="ENVI", **envi)
        for i in range(self.count):
            b = i + 1
            name = None if self.band_names is None else str(self.band_names[i])
            if self.wavelengths_nm is not None:
                ds.set_band_description(b, band_description(b, self.wavelengths_nm[i], name))
            elif name is not None:
                ds.set_band_description(b, name)
            for domain, items in bands[i].items():
                if domain:
                    ds.update_tags(b, ns=domain, **items)
                else:
                    ds.update_tags(b, **items)

    def envi_header(self, default_bands: Sequence[int] | None = None, description: str = "") -> str:
        """This output's ENVI ``.hdr`` sidecar text (see :func:`envi_header_text`)."""
        return envi_header_text(self.width, self.height, self.dtype, self.wavelengths_nm, self.fwhm_nm,
                                self.band_names, self.nodata, self.scale if self.is_int else 1.0,
                                default_bands, description)

    def encode(self, array: np.ndarray) -> np.ndarray:
        """Float values -> the stored dtype (scaling, rounding, clipping, nodata for NaN/Inf)."""
        a = np.asarray(array)
        if not self.is_int:
            out = a.astype(self.dtype, copy=False)
            if self.nodata is not None and not np.isnan(self.nodata):
                bad = ~np.isfinite(out)
                if bad.any():
                    out = out.copy()
                    out[bad] = self.nodata
            return out
        info = np.iinfo(self.dtype)
        lo, hi = float(info.min), float(info.max)
        if self.nodata is not None:  # keep valid values off the nodata value at either end
            if self.nodata == hi:
                hi -= 1
            elif self.nodata == lo:
                lo += 1
        if np.issubdtype(a.dtype, np.integer) and self.scale == 1.0:
            return np.clip(a, lo, hi).astype(self.dtype)
        f = a.astype(np.float64) / self.scale
        bad = ~np.isfinite(f)
        out = np.clip(np.rint(np.where(bad, 0.0, f)), lo, hi).astype(self.dtype)
        if bad.any():
            out[bad] = self.nodata if self.nodata is not None else 0
        return out

    @timed("write")
    def write(self, array: np.ndarray, window: Window | None = None, band_offset: int = 0) -> None:
        """Write ``array`` ``(bands, rows, cols)`` (or ``(rows, cols)``) into ``window``.

        Bands go to ``band_offset + 1 ... band_offset + bands`` (1-based GDAL indexes).
        ``window=None`` means the whole raster.
        """
        if self._ds is None:
            raise RuntimeError("HsiWriter.write outside its with-block")
        a = np.asarray(array)
        if a.ndim == 2:
            a = a[None]
        if window is None:
            window = Window(0, 0, self.width, self.height)
        c, h, w = a.shape
        if (h, w) != (int(window.height), int(window.width)):
            raise ValueError(f"array {h}x{w} does not match window {window}")
        if band_offset < 0 or band_offset + c > self.count:
            raise ValueError(f"bands {band_offset + 1}..{band_offset + c} outside 1..{self.count}")
        if (window.col_off < 0 or window.row_off < 0 or window.col_off + w > self.width
                or window.row_off + h > self.height):
            raise ValueError(f"window {window} outside the {self.width}x{self.height} raster")
        data = self.encode(a)
        try:
            with _gdal_messages_fail(self.path):
                self._ds.write(data, indexes=list(range(band_offset + 1, band_offset + c + 1)),
                               window=window)
        except _GDAL_ERRORS as exc:
            new = translate_write_error(self.path, self._work, exc)
            raise new from exc


def write_raster(
    path: str | os.PathLike[str],
    array: np.ndarray,
    like_profile: Any = None,
    *,
    nodata: float | None = None,
    dtype: str | None = None,
    wavelengths_nm: Sequence[float] | np.ndarray | None = None,
    fwhm_nm: Sequence[float] | np.ndarray | None = None,
    band_names: Sequence[str] | None = None,
    scale: float = 1.0,
    creation_options: Sequence[str] | Mapping[str, Any] | None = None,
    cog: bool = False,
    overwrite: bool = False,
    tags: Mapping[str, Any] | None = None,
) -> Path:
    """Write a small in-memory array ``(bands, rows, cols)`` or ``(rows, cols)`` in one go.

    For labels, maps and test fixtures; same layout, metadata and atomicity as ``HsiWriter``.
    Values are stored unscaled unless ``scale`` is given (value = stored x scale). Returns the final path.
    """
    a = np.asarray(array)
    if a.ndim == 2:
        a = a[None]
    if a.ndim != 3:
        raise ValueError(f"write_raster needs a 2-D or 3-D array, got shape {a.shape}")
    dt = np.dtype(dtype or (a.dtype if a.dtype != np.float64 else np.float32)).name
    if dt == "bool":
        dt = "uint8"
        a = a.astype(np.uint8)
    with HsiWriter(path, like_profile, width=a.shape[2], height=a.shape[1], count=a.shape[0],
                   wavelengths_nm=wavelengths_nm, fwhm_nm=fwhm_nm, nodata=nodata, dtype=dt,
                   creation_options=creation_options, cog=cog, overwrite=overwrite,
                   scale=scale, band_names=band_names, tags=tags) as w:
        w.write(a)
    return Path(path)
