"""Areas of interest: restrict a run to a polygon or an extent; outside it the output is nodata.

An AOI is a shapely geometry in the raster's CRS. ``load_aoi`` reads any OGR vector (pyogrio) and
``parse_extent`` reads an extent string, both reprojected to the raster's CRS with pyproj.
``AoiMask`` rasterises the geometry per window (pixel centres inside, like GDAL) for the runner's
``mask_fn``; ``windows_for_aoi`` lists the tiles that touch it so the others are never read;
``selected_window`` is the bounding window of the selected pixels, the grid an output is cropped to.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pyogrio
import shapely
from affine import Affine
from pyproj import CRS, Transformer
from rasterio.features import geometry_mask
from rasterio.windows import Window
from shapely.geometry import box
from shapely.geometry.base import BaseGeometry

from hyperldm_engine.errors import InputError
from hyperldm_engine.tiling.windows import TileGrid, window_affine, window_footprint

_NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
_QGIS_EXTENT = re.compile(
    rf"^\s*({_NUMBER})\s*,\s*({_NUMBER})\s*,\s*({_NUMBER})\s*,\s*({_NUMBER})\s*(?:\[\s*([^\]]+?)\s*\])?\s*$")


@dataclass(frozen=True)
class Extent:
    """A rectangle in map units of ``crs`` (None: the raster's CRS)."""

    xmin: float
    ymin: float
    xmax: float
    ymax: float
    crs: CRS | None = None

    def geometry(self) -> BaseGeometry:
        return box(self.xmin, self.ymin, self.xmax, self.ymax)


def _crs(text: str, source: str) -> CRS:
    try:
        return CRS.from_user_input(text.strip())
    except Exception as exc:  # pyproj raises CRSError and others for garbage
        raise InputError(f"extent {source!r}: unknown CRS {text.strip()!r}") from exc


def parse_extent(text: str, order: str = "auto") -> Extent:
    """Parse an extent string in either of the two accepted forms.

    - QGIS (what ``qgis_process`` and Processing write): ``xmin,xmax,ymin,ymax [EPSG:4326]``,
      recognised by the CRS in square brackets.
    - Engine / GDAL bounds order: ``xmin,ymin,xmax,ymax`` optionally followed by ``,CRS``
      (e.g. ``,EPSG:32633``).

    Four bare numbers are read in the engine order unless ``order="qgis"`` (a QGIS extent whose CRS
    was dropped); ``order="xyxy"`` forces the engine order. Raises InputError on anything else.
    """
    if order not in ("auto", "qgis", "xyxy"):
        raise ValueError(f"order must be 'auto', 'qgis' or 'xyxy', not {order!r}")
    s = text.strip()
    m = _QGIS_EXTENT.match(s)
    if m:
        a, b, c, d = (float(g) for g in m.groups()[:4])
        crs = _crs(m.group(5), text) if m.group(5) else None
        qgis = order == "qgis" or (order == "auto" and m.group(5) is not None)
        xmin, ymin, xmax, ymax = (a, c, b, d) if qgis else (a, b, c, d)
    else:
        parts = s.split(",", 4)
        if len(parts) != 5:
            raise InputError(f"extent {text!r}: expected 'xmin,ymin,xmax,ymax[,CRS]' "
                             "or QGIS 'xmin,xmax,ymin,ymax [CRS]'")
        try:
            xmin, ymin, xmax, ymax = (float(p) for p in parts[:4])
        except ValueError as exc:
            raise InputError(f"extent {text!r}: the four coordinates must be numbers") from exc
        crs = _crs(parts[4], text)
    if not (np.isfinite([xmin, ymin, xmax, ymax]).all() and xmin < xmax and ymin < ymax):
        raise InputError(f"extent {text!r}: needs xmin < xmax and ymin < ymax "
                         f"(read xmin={xmin}, ymin={ymin}, xmax={xmax}, ymax={ymax})")
    if crs is not None and crs.is_geographic:
        check_lonlat_bounds((xmin, ymin, xmax, ymax), f"extent {text!r}")
    return Extent(xmin, ymin, xmax, ymax, crs)


def check_lonlat_bounds(bounds: tuple[float, float, float, float], what: str) -> None:
    """Longitude/latitude bounds must be on the globe (latitude -90..90, longitude -360..360)."""
    xmin, ymin, xmax, ymax = bounds
    if ymin < -90 or ymax > 90:
        raise InputError(f"{what}: latitude {ymax if ymax > 90 else ymin:g} is outside -90..90 degrees "
                         "(longitude comes first: xmin,ymin,xmax,ymax)")
    if xmin < -360 or xmax > 360:
        raise InputError(f"{what}: longitude {xmax if xmax > 360 else xmin:g} is outside -360..360 degrees")


def reproject_geometry(geometry: BaseGeometry, src_crs: CRS | str | None,
                       dst_crs: CRS | str | None, densify_m: int = 64) -> BaseGeometry:
    """``geometry`` from ``src_crs`` to ``dst_crs``; edges are densified so boxes bend correctly.

    ``densify_m`` is the number of extra points per edge. Either CRS None means "the same".
    """
    if src_crs is None or dst_crs is None:
        return geometry
    src, dst = CRS.from_user_input(src_crs), CRS.from_user_input(dst_crs)
    if src == dst:
        return geometry
    xmin, ymin, xmax, ymax = geometry.bounds
    if src.is_geographic:
        check_lonlat_bounds((xmin, ymin, xmax, ymax), f"an area in {src.name}")
    step = max(xmax - xmin, ymax - ymin) / max(densify_m, 1)
    dense = shapely.segmentize(geometry, step) if step > 0 else geometry
    try:
        tr = Transformer.from_crs(src, dst, always_xy=True)
        out = shapely.transform(dense, tr.transform, interleaved=False)
    except Exception as exc:  # pyproj: no transformation between the two (e.g. to a LOCAL_CS)
        raise InputError(f"cannot transform an area from {src.name} to the raster's CRS {dst.name} "
                         f"({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})") from None
    if not np.isfinite(shapely.get_coordinates(out)).all():
        raise InputError(f"an area in {src.name} cannot be transformed to the raster's CRS {dst.name} "
                         "(it reaches outside that CRS's domain)")
    return shapely.make_valid(out) if not out.is_valid else out


def extent_geometry(extent: Extent, raster_crs: CRS | str | None) -> BaseGeometry:
    """The extent as a polygon in the raster's CRS."""
    return reproject_geometry(extent.geometry(), extent.crs, raster_crs)


def load_aoi(vector_path: str, raster_crs: CRS | str | None, layer: str | int | None = None) -> BaseGeometry:
    """Union of all (polygon) features of an OGR vector, reprojected to ``raster_crs``.

    A vector without a CRS is taken to be in the raster's CRS. Raises InputError when the file
    cannot be read or holds no area.
    """
    try:
        meta, _, wkb, _ = pyogrio.raw.read(vector_path, layer=layer, read_geometry=True, columns=[])
    except Exception as exc:
        raise InputError(f"area of interest {vector_path}: cannot read it as a vector ({exc})") from exc
    geoms = [g for g in shapely.from_wkb(wkb) if g is not None and not g.is_empty] if wkb is not None else []
    geom = shapely.make_valid(shapely.union_all(geoms)) if geoms else None
    if geom is None or geom.is_empty or geom.area <= 0:
        raise InputError(f"area of interest {vector_path}: contains no polygon with an area")
    return reproject_geometry(geom, meta.get("crs"), raster_crs)


def vector_crs(vector_path: str) -> CRS | None:
    """The CRS a vector file declares (None when it has none); InputError if it cannot be read."""
    try:
        text = pyogrio.read_info(vector_path).get("crs")
    except Exception as exc:
        raise InputError(f"area of interest {vector_path}: cannot read it as a vector ({exc})") from exc
    return CRS.from_user_input(text) if text else None


@dataclass(frozen=True)
class AoiMask:
    """Picklable ``mask_fn`` for the runners: True for pixels whose centre lies in the geometry.

    ``transform`` is the raster's affine transform; ``all_touched`` marks every pixel the geometry
    touches instead.
    """

    geometry: BaseGeometry
    transform: Affine
    all_touched: bool = False

    def __call__(self, window: Window) -> np.ndarray:
        h, w = int(window.height), int(window.width)
        wt = window_affine(window, self.transform)
        tile_box = box(*window_footprint(window, self.transform))
        if not self.geometry.intersects(tile_box):
            return np.zeros((h, w), bool)
        return geometry_mask([self.geometry], out_shape=(h, w), transform=wt,
                             all_touched=self.all_touched, invert=True)


def windows_for_aoi(grid: TileGrid, geometry: BaseGeometry, transform: Affine) -> list[tuple[int, int]]:
    """Grid indices ``(i, j)`` of the tiles whose footprint intersects ``geometry`` (raster CRS)."""
    ij = [(i, j) for i, j, _ in grid]
    if not ij:
        return []
    bounds = np.array([window_footprint(w, transform) for _, _, w in grid])
    hits = shapely.intersects(geometry, shapely.box(bounds[:, 0], bounds[:, 1], bounds[:, 2], bounds[:, 3]))
    return [t for t, hit in zip(ij, hits, strict=True) if hit]


def selected_window(mask_fn: AoiMask, within: Window, chunk: int = 64) -> Window | None:
    """The bounding window of the pixels ``mask_fn`` selects inside ``within`` (None: none selected).

    The requested extent snapped to the raster's grid: the pixels whose centres lie inside, the same
    rule that decides which pixels are computed. Only the edges are rasterised, ``chunk`` rows or
    columns at a time from each side inwards, so a large window costs a few strips, not its area.
    """
    c0, r0 = int(within.col_off), int(within.row_off)
    c1, r1 = c0 + int(within.width), r0 + int(within.height)

    def first(lo: int, hi: int, strip, axis: int, reverse: bool) -> int | None:
        starts = range(lo, hi, chunk)
        for start in (reversed(starts) if reverse else starts):
            n = min(chunk, hi - start)
            hits = np.flatnonzero(mask_fn(strip(start, n)).any(axis=axis))
            if hits.size:
                return start + int(hits[-1] if reverse else hits[0])
        return None

    def rows(start: int, n: int) -> Window:
        return Window(c0, start, c1 - c0, n)

    top = first(r0, r1, rows, 1, False)
    if top is None:
        return None
    bottom = first(r0, r1, rows, 1, True)

    def cols(start: int, n: int) -> Window:
        return Window(start, top, n, bottom - top + 1)

    left, right = first(c0, c1, cols, 0, False), first(c0, c1, cols, 0, True)
    return Window(left, top, right - left + 1, bottom - top + 1)
