"""GDAL settings the engine runs under: a bounded block cache, given in GDAL's own units.

rasterio hands an integer ``GDAL_CACHEMAX`` straight to ``GDALSetCacheMax64``, i.e. in **bytes**,
whereas GDAL's configuration option reads values below 100 000 as megabytes. Passing ``256`` to
``rasterio.Env`` therefore gave a 256-byte cache: every window read decompressed its blocks again
(a 2048^2 scene's decimated statistics read took 24 s instead of 0.13 s). This module converts.
"""

from __future__ import annotations

import os

from hyperldm_engine.errors import InputError

#: Default block cache. GDAL's own default (5 % of RAM) grows with the data touched so far. The
#: runner writes whole output blocks (GTiff writes those directly) and re-reads only the input rows
#: of one strip's tile overlap (a few MB), so 64 MB is ample; with 256 MB the input blocks alone
#: filled the cache on a 16384^2 scene and resident memory grew by ~230 MB over a 4096^2 one.
DEFAULT_GDAL_CACHE_MB = 64


def gdal_cache_bytes(value: str | int | None, total_memory: int | None = None) -> int:
    """``GDAL_CACHEMAX`` as GDAL reads it -> bytes: ``"512"`` (MB, below 100 000), ``"2000000000"``
    (bytes), ``"10%"`` (of physical memory); None or ``""`` -> the default (64 MB)."""
    if value is None or str(value).strip() == "":
        return DEFAULT_GDAL_CACHE_MB * 2**20
    text = str(value).strip()
    try:
        if text.endswith("%"):
            fraction = float(text[:-1]) / 100.0
            memory = total_memory or os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
            number = int(fraction * memory)
        else:
            number = int(float(text))
            if number < 100_000:
                number *= 2**20
    except ValueError:
        raise InputError(f"GDAL_CACHEMAX={value!r}: expected megabytes, bytes or a percentage") from None
    if number <= 0:
        raise InputError(f"GDAL_CACHEMAX={value!r}: the block cache must be positive")
    return number
