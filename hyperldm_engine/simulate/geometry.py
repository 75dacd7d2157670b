"""Vector geometry of simulated landscapes (metres, x right, y down) and its rasterisation."""

from __future__ import annotations

import gc
from contextlib import contextmanager

import numpy as np
import shapely
from affine import Affine
from rasterio.features import rasterize


def parcels(rng: np.random.Generator, width_m: float, height_m: float, size_m: float,
            stretch: float, angle_rad: float) -> np.ndarray:
    """Field-like parcels: Voronoi cells of jittered seeds, elongated by ``stretch`` along ``angle``.

    Seeds lie on a jittered grid of spacing ``size_m`` in a frame squeezed by ``stretch`` along
    the angle, so that cells come back elongated (fields are often longer than wide).
    """
    pad = 2.0 * size_m * stretch
    diag = np.hypot(width_m, height_m) + 2 * pad
    n = int(np.ceil(diag / size_m)) + 1
    g = (np.arange(n) - n / 2) * size_m
    gx, gy = np.meshgrid(g, g)
    pts = np.stack([gx.ravel(), gy.ravel()], 1) + rng.uniform(-0.4, 0.4, (gx.size, 2)) * size_m
    pts[:, 0] *= stretch  # elongate along the local x axis, then rotate into place
    c, s = np.cos(angle_rad), np.sin(angle_rad)
    xy = np.stack([c * pts[:, 0] - s * pts[:, 1], s * pts[:, 0] + c * pts[:, 1]], 1)
    xy += [width_m / 2, height_m / 2]
    keep = (xy[:, 0] > -pad) & (xy[:, 0] < width_m + pad) & (xy[:, 1] > -pad) & (xy[:, 1] < height_m + pad)
    xy = xy[keep]
    box = shapely.box(-pad, -pad, width_m + pad, height_m + pad)
    cells = shapely.get_parts(shapely.voronoi_polygons(shapely.multipoints(xy), extend_to=box))
    cells = shapely.intersection(cells, box)
    return cells[~shapely.is_empty(cells)]


def rectangles(cx: np.ndarray, cy: np.ndarray, length: np.ndarray, width: np.ndarray,
               angle_rad: np.ndarray) -> np.ndarray:
    """Corner coordinates ``(n, 4, 2)`` of rotated rectangles (centre, long side, short side)."""
    u = np.stack([np.cos(angle_rad), np.sin(angle_rad)], -1)
    v = np.stack([-np.sin(angle_rad), np.cos(angle_rad)], -1)
    hl, hw = (length / 2)[:, None], (width / 2)[:, None]
    centre = np.stack([cx, cy], -1)
    return np.stack([centre + hl * u + hw * v, centre - hl * u + hw * v,
                     centre - hl * u - hw * v, centre + hl * u - hw * v], 1)


def polygons(corners: np.ndarray) -> np.ndarray:
    """Shapely polygons from ``(n, k, 2)`` corner arrays (closed automatically)."""
    if len(corners) == 0:
        return np.empty(0, dtype=object)
    return shapely.polygons(np.concatenate([corners, corners[:, :1]], 1))


def gable_halves(corners: np.ndarray) -> np.ndarray:
    """Split rectangles along their long axis into two roof planes: ``(2n, 4, 2)`` (a0, b0, a1, b1...)."""
    p0, p1, p2, p3 = (corners[:, i] for i in range(4))
    m03, m12 = (p0 + p3) / 2, (p1 + p2) / 2
    a = np.stack([p0, p1, m12, m03], 1)
    b = np.stack([m03, m12, p2, p3], 1)
    return np.stack([a, b], 1).reshape(-1, 4, 2)


def shadow_hulls(corners: np.ndarray, offset: np.ndarray) -> np.ndarray:
    """Shadows of prisms: hull of each footprint and its copy moved by ``offset`` ``(n, 2)`` metres."""
    if len(corners) == 0:
        return np.empty(0, dtype=object)
    pts = np.concatenate([corners, corners + offset[:, None, :]], 1)
    return shapely.convex_hull(shapely.multipoints(pts))


def polyline(rng: np.random.Generator, width_m: float, height_m: float, step_m: float,
             wiggle: float) -> np.ndarray:
    """A gently curving line across the scene (a random walk of the heading), ``(k, 2)`` metres."""
    side = rng.integers(4)
    t = rng.uniform(0.1, 0.9)
    starts = [(t * width_m, -step_m), (width_m + step_m, t * height_m), (t * width_m, height_m + step_m),
              (-step_m, t * height_m)]
    heading = [np.pi / 2, np.pi, -np.pi / 2, 0.0][side] + rng.uniform(-0.5, 0.5)
    x, y = starts[side]
    pts = [(x, y)]
    n = int(2.5 * (width_m + height_m) / step_m) + 4
    for _ in range(n):
        heading += rng.normal(0.0, wiggle)
        x, y = x + step_m * np.cos(heading), y + step_m * np.sin(heading)
        pts.append((x, y))
        if not (-2 * step_m <= x <= width_m + 2 * step_m and -2 * step_m <= y <= height_m + 2 * step_m):
            break
    return np.asarray(pts)


@contextmanager
def _no_gc():
    """Pause the cyclic garbage collector while millions of coordinate lists are built."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _polygon_rings(shapes: np.ndarray) -> tuple[list, np.ndarray]:
    """GeoJSON-style ring lists of every polygon part and the index of the shape it came from."""
    parts, index = shapely.get_parts(shapes, return_index=True)
    keep = (shapely.get_type_id(parts) == 3) & ~shapely.is_empty(parts)
    parts, index = parts[keep], index[keep]
    if parts.size == 0:
        return [], index
    _, coords, (ring_off, poly_off) = shapely.to_ragged_array(parts, include_z=False)
    c = coords.tolist()
    rings = [c[a:b] for a, b in zip(ring_off[:-1].tolist(), ring_off[1:].tolist(), strict=True)]
    polys = [rings[a:b] for a, b in zip(poly_off[:-1].tolist(), poly_off[1:].tolist(), strict=True)]
    return polys, index


def _burn_polys(polys: list, vals: np.ndarray, shape: tuple[int, int], pixel_m: float, out: np.ndarray,
                group_limit: int = 4096) -> np.ndarray:
    """Rasterise ring lists; few distinct values are grouped into one MultiPolygon per value
    (in order of first appearance), which keeps GDAL's per-geometry overhead small."""
    if not polys:
        return out
    transform = Affine(pixel_m, 0, 0, 0, pixel_m, 0)
    uniq, first = np.unique(vals, return_index=True)
    if uniq.size <= group_limit:
        order = uniq[np.argsort(first)]
        members: dict = {v: [] for v in order.tolist()}
        for p, v in zip(polys, vals.tolist(), strict=True):
            members[v].append(p)
        geoms = [({"type": "MultiPolygon", "coordinates": members[v]}, v) for v in order.tolist()]
    else:
        geoms = [({"type": "Polygon", "coordinates": p}, v) for p, v in zip(polys, vals.tolist(), strict=True)]
    rasterize(geoms, out=out, transform=transform)
    return out


def burn(shapes: np.ndarray, values: np.ndarray | int, shape: tuple[int, int], pixel_m: float,
         out: np.ndarray | None = None, dtype: str = "int32") -> np.ndarray:
    """Rasterise metric shapely polygons onto the render grid (pixel centres inside).

    With many distinct values later shapes are on top; with few (class codes) shapes of one
    value are burnt together, in order of the value's first appearance.
    """
    out = np.zeros(shape, dtype) if out is None else out
    shapes = np.atleast_1d(np.asarray(shapes, dtype=object))
    if shapes.size == 0:
        return out
    vals = np.broadcast_to(np.asarray(values), shapes.shape)
    with _no_gc():
        polys, index = _polygon_rings(shapes)
        return _burn_polys(polys, vals[index], shape, pixel_m, out)


def burn_rings(rings: np.ndarray, values: np.ndarray | int, shape: tuple[int, int], pixel_m: float,
               out: np.ndarray | None = None, dtype: str = "int32") -> np.ndarray:
    """Rasterise simple polygons given as corner arrays ``(n, k, 2)`` (no shapely objects)."""
    out = np.zeros(shape, dtype) if out is None else out
    if len(rings) == 0:
        return out
    closed = np.concatenate([rings, rings[:, :1]], 1)
    vals = np.broadcast_to(np.asarray(values), (len(rings),))
    with _no_gc():
        polys = [[r] for r in closed.tolist()]
        return _burn_polys(polys, vals, shape, pixel_m, out)


def discs(centres: np.ndarray, radii: np.ndarray, k: int = 12) -> np.ndarray:
    """Corner arrays ``(n, k, 2)`` of regular k-gons approximating discs."""
    a = np.linspace(0, 2 * np.pi, k, endpoint=False)
    ring = np.stack([np.cos(a), np.sin(a)], -1)
    return centres[:, None, :] + radii[:, None, None] * ring[None]


def swept_quads(rings: np.ndarray, offset: np.ndarray) -> np.ndarray:
    """Shadow of prisms as quads: footprint, moved footprint and each edge swept by ``offset``.

    Their union is the hull of the footprint and its moved copy (for convex footprints);
    returns ``(n * (k + 2), 4 or k, 2)``-compatible list of quads, footprints split into quads.
    """
    n, k, _ = rings.shape
    nxt = np.roll(rings, -1, axis=1)
    o = offset[:, None, :]
    sweeps = np.stack([rings, nxt, nxt + o, rings + o], 2).reshape(n * k, 4, 2)
    return sweeps
