"""A land-cover landscape rendered on a fine grid: classes, two endmembers per sample, shading.

Everything is sized in metres (fields 60-250 m, streets 7-10 m, houses 8-30 m, crowns 2-5 m),
so the ground sampling distance changes what a scene looks like. The landscape is rendered at
``render_m`` metres per sample (a fraction of the output GSD) and later averaged into output
pixels, which makes boundaries mixed pixels and sub-pixel objects partial covers.

Each render sample holds: a land-cover class, a primary and a secondary endmember (indices into
the scene's endmember list), the primary's weight (intimate within-class mixing: crop over
soil, turbid over clear water, worn over fresh asphalt) and a gain (shade x brightness).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import shapely

from hyperldm_engine.simulate import geometry as geo
from hyperldm_engine.simulate.fields import sample_at, smooth_noise

CLASS_NAMES = ("water", "trees", "grass", "cropland", "dry_vegetation", "bare_soil", "road", "pavement",
               "roof", "rock", "wetland", "sand", "cloud")
WATER, TREES, GRASS, CROP, DRY, SOIL, ROAD, PAVEMENT, ROOF, ROCK, WETLAND, SAND, CLOUD = range(len(CLASS_NAMES))

# Scene materials: library classes they are drawn from and how many endmembers each scene draws.
MATERIALS: dict[str, tuple[tuple[str, ...], int]] = {
    "water": (("water",), 2),
    "tree": (("vegetation",), 4),
    "grass": (("vegetation",), 3),
    "crop": (("vegetation",), 6),
    "npv": (("npv",), 3),
    "soil": (("soil", "sand"), 5),
    "road": (("road", "asphalt"), 3),
    "pavement": (("parking_lot", "concrete", "gravel"), 3),
    "roof": (("roof_shingle", "roof_tile", "roof_concrete_tile", "roof_wood", "metal", "paint"), 6),
    "rock": (("mineral",), 2),
}

# Library materials added when a landscape profile is used (modelled water, wet soil and clouds
# come from ``surfaces``, not from the library).
MATERIALS_EXTRA: dict[str, tuple[tuple[str, ...], int]] = {"sand": (("sand",), 2)}


@dataclass(frozen=True)
class LandscapeProfile:
    """Proportions of one kind of landscape; ranges are (lo, hi) drawn uniformly per scene.

    ``None`` in ``render_landscape`` keeps the original balanced layout bit for bit.
    """

    name: str
    p_urban: tuple[float, float] = (0.08, 0.35)
    p_forest: tuple[float, float] = (0.05, 0.3)
    p_water: tuple[float, float] = (0.0, 0.15)
    parcel_p: tuple[float, float, float, float, float] = (0.5, 0.15, 0.14, 0.19, 0.02)  # crop bare dry meadow rock
    field_m: tuple[float, float] = (70.0, 220.0)
    p_river: float = 0.4
    p_sea: float = 0.0  # chance of a sea along one side of the scene
    sea_fraction: tuple[float, float] = (0.2, 0.6)
    p_wetland: float = 0.2  # chance that shores carry a marsh fringe (vegetation over water)


LANDSCAPES: dict[str, LandscapeProfile] = {
    "balanced": LandscapeProfile("balanced"),
    "agricultural": LandscapeProfile("agricultural", p_urban=(0.0, 0.08), p_forest=(0.02, 0.15),
                                     p_water=(0.0, 0.05), parcel_p=(0.62, 0.17, 0.08, 0.12, 0.01),
                                     field_m=(100.0, 400.0), p_river=0.3, p_wetland=0.1),
    "forest": LandscapeProfile("forest", p_urban=(0.0, 0.04), p_forest=(0.6, 0.95), p_water=(0.0, 0.1),
                               parcel_p=(0.25, 0.1, 0.15, 0.45, 0.05), p_river=0.4, p_wetland=0.3),
    "urban": LandscapeProfile("urban", p_urban=(0.55, 0.95), p_forest=(0.0, 0.1), p_water=(0.0, 0.05),
                              parcel_p=(0.2, 0.3, 0.2, 0.28, 0.02), field_m=(60.0, 150.0), p_river=0.3,
                              p_wetland=0.0),
    "coastal": LandscapeProfile("coastal", p_urban=(0.05, 0.4), p_forest=(0.02, 0.2), p_water=(0.0, 0.1),
                                parcel_p=(0.35, 0.15, 0.2, 0.28, 0.02), p_river=0.5, p_sea=0.9, p_wetland=0.6),
}
LANDSCAPE_NAMES = (*LANDSCAPES, "mixed")

# parcel types
P_CROP, P_BARE, P_DRY, P_MEADOW, P_FOREST, P_URBAN, P_ROCK = range(7)


@dataclass
class RenderMaps:
    """Fine-grid maps (rows, cols): class, endmembers, primary weight 0-1, gain (shade x brightness)."""

    label: np.ndarray
    prim: np.ndarray
    sec: np.ndarray
    weight: np.ndarray
    gain: np.ndarray
    render_m: float


@dataclass(frozen=True)
class Sun:
    zenith_deg: float
    azimuth_deg: float
    diffuse_fraction: float  # shadow brightness relative to sunlit ground

    def shadow_vector(self, height_m: np.ndarray) -> np.ndarray:
        """Shadow offsets ``(n, 2)`` metres (x east, y down = south) of objects ``height_m`` tall."""
        length = np.asarray(height_m) * np.tan(np.radians(self.zenith_deg))
        az = np.radians(self.azimuth_deg)
        return np.stack([-np.sin(az) * length, np.cos(az) * length], -1)


def render_landscape(rng: np.random.Generator, rows: int, cols: int, render_m: float,
                     slots: dict[str, np.ndarray], sun: Sun, profile: LandscapeProfile | None = None) -> RenderMaps:
    """Build the landscape on a ``rows x cols`` grid of ``render_m`` metre samples.

    ``slots[material]`` are the scene endmember indices of each material (see ``MATERIALS``).
    With a ``profile`` the proportions follow it and the new surfaces are used: crops at
    phenological stages, wet soils, sand beaches, shallow water over a bottom, a sea along one
    side, marsh fringes (``slots`` then also has ``sand``, ``wet_soil``, ``water_shallow``).
    """
    new = profile is not None
    prof = profile or LANDSCAPES["balanced"]
    W, H = cols * render_m, rows * render_m
    shape = (rows, cols)

    def pick(material: str, n: int | tuple = ()) -> np.ndarray:
        return rng.choice(slots[material], size=n)

    # ---- parcels and their land use -------------------------------------------------------
    field_m = rng.uniform(*prof.field_m)
    field_angle = rng.uniform(0, np.pi)
    cells = geo.parcels(rng, W, H, field_m, rng.uniform(1.0, 2.5), field_angle)
    n = len(cells)
    cen = shapely.get_coordinates(shapely.centroid(cells))
    zone_px = max(field_m / 3.0, render_m)
    zshape = (int(np.ceil(H / zone_px)) + 1, int(np.ceil(W / zone_px)) + 1)
    urban_f = sample_at(smooth_noise(rng, zshape, zone_px, 1500.0), zone_px, cen[:, 0], cen[:, 1])
    forest_f = sample_at(smooth_noise(rng, zshape, zone_px, 2000.0), zone_px, cen[:, 0], cen[:, 1])
    p_urban, p_forest = rng.uniform(*prof.p_urban), rng.uniform(*prof.p_forest)
    ptype = rng.choice([P_CROP, P_BARE, P_DRY, P_MEADOW, P_ROCK], size=n, p=list(prof.parcel_p))
    ptype[forest_f > np.quantile(forest_f, 1 - p_forest)] = P_FOREST
    ptype[urban_f > np.quantile(urban_f, 1 - p_urban)] = P_URBAN
    P = geo.burn(cells, np.arange(1, n + 1), shape, render_m) - 1
    P = np.clip(P, 0, n - 1)
    pt = ptype[P]

    label_of = np.array([CROP, SOIL, DRY, GRASS, TREES, GRASS, ROCK], np.uint8)
    prim_of = np.where(ptype == P_CROP, pick("crop", n),
              np.where(ptype == P_BARE, pick("soil", n),
              np.where(ptype == P_DRY, pick("npv", n),
              np.where(ptype == P_FOREST, pick("tree", n),
              np.where(ptype == P_ROCK, pick("rock", n), pick("grass", n))))))
    sec_of = np.where(ptype == P_FOREST, pick("tree", n),
             np.where(ptype == P_ROCK, pick("soil", n),
             np.where(ptype == P_MEADOW, pick("npv", n), pick("soil", n))))
    base_w = np.select([ptype == P_CROP, ptype == P_BARE, ptype == P_DRY, ptype == P_FOREST, ptype == P_ROCK],
                       [rng.uniform(0.35, 1.0, n), rng.uniform(0.3, 0.7, n), rng.uniform(0.45, 0.9, n),
                        rng.uniform(0.3, 0.7, n), rng.uniform(0.6, 1.0, n)], rng.uniform(0.7, 0.95, n))
    amp = np.where(ptype == P_CROP, 0.25, np.where(ptype == P_FOREST, 0.3, 0.15))
    gain_of = rng.uniform(0.9, 1.1, n)
    plabel = label_of[ptype]
    if new:
        # crops at phenological stages: emergence, growth, peak, senescence (canopy + npv), harvest
        # (npv stubble over soil); bare fields partly wet (wet-soil model, ``surfaces.wet_soil``)
        crop_p = ptype == P_CROP
        stage = rng.choice(5, size=n, p=[0.15, 0.25, 0.3, 0.15, 0.15])
        cover = np.choose(stage, [rng.uniform(0.05, 0.3, n), rng.uniform(0.3, 0.7, n), rng.uniform(0.8, 1.0, n),
                                  rng.uniform(0.3, 0.7, n), rng.uniform(0.2, 0.6, n)])
        base_w = np.where(crop_p, cover, base_w)
        sen, har = crop_p & (stage == 3), crop_p & (stage == 4)
        prim_of = np.where(sen | har, pick("npv", n), prim_of)
        sec_of = np.where(sen, pick("crop", n), sec_of)
        plabel = np.where(har, DRY, plabel).astype(np.uint8)
        wet = (ptype == P_BARE) & (rng.random(n) < 0.3)
        sec_of = np.where(wet, pick("wet_soil", n), sec_of)
        prim_of = np.where(wet & (rng.random(n) < 0.5), pick("wet_soil", n), prim_of)

    n_broad = smooth_noise(rng, shape, render_m, 60.0)
    n_mid = smooth_noise(rng, shape, render_m, 12.0)
    n_fine = smooth_noise(rng, shape, render_m, 4.0)
    label = plabel[P]
    prim = prim_of[P].astype(np.uint8)
    sec = sec_of[P].astype(np.uint8)
    weight = np.clip(base_w[P] + amp[P] * n_broad, 0.0, 1.0).astype(np.float32)
    gain = (gain_of[P] * (1.0 + 0.04 * n_mid)).astype(np.float32)
    # row crops and ploughing: stripes along each field (visible only at fine GSD)
    period = rng.uniform(1.5, 4.0)
    if period > 3.0 * render_m:
        phi = field_angle + np.where(rng.random(n) < 0.5, 0.0, np.pi / 2)
        ys = ((np.arange(rows) + 0.5) * render_m).astype(np.float32)[:, None]
        xs = ((np.arange(cols) + 0.5) * render_m).astype(np.float32)[None, :]
        along = xs * np.cos(phi)[P] + ys * np.sin(phi)[P]
        stripes = np.sin((2 * np.pi / period) * along).astype(np.float32)
        crop = pt == P_CROP
        weight[crop] = np.clip(weight[crop] + 0.25 * (1 - weight[crop]) * stripes[crop] * 2, 0, 1)
        bare = pt == P_BARE
        gain[bare] *= 1.0 + 0.08 * stripes[bare]
    forest = pt == P_FOREST
    gain[forest] *= 0.8 + 0.2 * np.tanh(n_fine[forest])
    clearing = forest & (n_mid < -1.6)
    label[clearing], weight[clearing] = GRASS, 0.8
    prim[clearing] = pick("grass")

    # ---- field margins (grass strips) and hedgerows (trees) along agricultural parcels ----
    agri = np.flatnonzero(np.isin(ptype, [P_CROP, P_BARE, P_DRY, P_MEADOW]))
    edges = shapely.boundary(cells[agri])
    margin = geo.burn(shapely.buffer(edges, 1.2, quad_segs=2), 1, shape, render_m, dtype="uint8") > 0
    margin &= np.isin(pt, [P_CROP, P_BARE, P_DRY, P_MEADOW])
    label[margin], prim[margin], sec[margin], weight[margin] = GRASS, pick("grass"), pick("npv"), 0.75
    hedge_sel = edges[rng.random(edges.size) < 0.2]
    hedge = geo.burn(shapely.buffer(hedge_sel, 2.5, quad_segs=2), 1, shape, render_m, dtype="uint8") > 0
    hedge &= pt != P_URBAN
    label[hedge], prim[hedge], sec[hedge] = TREES, pick("tree"), pick("tree")
    weight[hedge] = 0.5 + 0.4 * n_fine[hedge].clip(-1, 1)

    # ---- water: lakes with smooth shores (contour of a smooth field), sandy beaches, a river ----
    water = np.zeros(shape, bool)
    p_water = rng.uniform(*prof.p_water)
    if new:
        water = _shores_and_water(rng, shape, render_m, W, H, prof, p_water, slots, pick, label, prim, sec, weight,
                                  gain, pt, n_mid)
    elif p_water > 0.01:
        wf = smooth_noise(rng, shape, render_m, rng.uniform(300.0, 1200.0))
        thr = float(np.quantile(wf[::7, ::7], 1 - p_water))
        water = wf > thr
        # deep water is the darkest water endmember; towards the shore up to 30 % turbid water
        depth = 0.7 + 0.3 * np.clip((wf - thr) / 0.3, 0.0, 1.0)
        label[water], prim[water], sec[water] = WATER, slots["water"][0], slots["water"][-1]
        weight[water] = depth[water]
        shallow = water & (wf - thr < 0.06)
        sec[shallow], weight[shallow] = pick("soil"), 0.9
        beach = ~water & (wf > thr - 0.08) & (pt != P_URBAN)
        label[beach], prim[beach], sec[beach], weight[beach] = SOIL, pick("soil"), pick("soil"), 0.5
        gain[water | beach] = 1.0
    if rng.random() < prof.p_river:
        river = shapely.buffer(shapely.linestrings(geo.polyline(rng, W, H, 40.0, 0.12)),
                               rng.uniform(8.0, 30.0), quad_segs=4)
        rmask = geo.burn(np.array([river]), 1, shape, render_m, dtype="uint8") > 0
        label[rmask], prim[rmask], sec[rmask] = WATER, slots["water"][0], slots["water"][-1]
        weight[rmask], gain[rmask] = 0.75, 1.0
        water |= rmask

    # ---- urban fabric: street network, parking, buildings ----------------------------------
    urban_ids = np.flatnonzero(ptype == P_URBAN)
    urban = pt == P_URBAN
    theta = field_angle + rng.uniform(-0.3, 0.3)
    street_w = rng.uniform(6.0, 10.0)
    streets = [shapely.buffer(shapely.boundary(cells[urban_ids]), street_w / 2, quad_segs=2)]
    spacing = rng.uniform(70.0, 120.0)
    diag = np.hypot(W, H)
    offs = np.arange(-diag / 2, diag / 2 + spacing, spacing)
    for ang in (theta, theta + np.pi / 2):
        d, nrm = np.array([np.cos(ang), np.sin(ang)]), np.array([-np.sin(ang), np.cos(ang)])
        mid = np.array([W / 2, H / 2]) + offs[:, None] * nrm
        lines = shapely.linestrings(np.stack([mid - diag * d, mid + diag * d], 1))
        streets.append(shapely.buffer(lines, street_w / 2 * 0.8, quad_segs=2))
    street = geo.burn(np.concatenate(streets), 1, shape, render_m, dtype="uint8") > 0
    street &= urban & ~water
    majors = [shapely.buffer(shapely.linestrings(geo.polyline(rng, W, H, 50.0, 0.05)),
                             rng.uniform(4.0, 7.0), quad_segs=2) for _ in range(rng.integers(1, 4))]
    major = geo.burn(np.array(majors), 1, shape, render_m, dtype="uint8") > 0
    road = street | major
    label[road], prim[road], sec[road] = ROAD, pick("road"), pick("road")
    weight[road] = np.clip(0.5 + 0.3 * n_mid[road], 0, 1)
    gain[road] = 1.0 + 0.05 * n_fine[road]

    # building lots on a rotated lattice, kept where urban and off streets and water
    sx, sy = rng.uniform(24.0, 38.0), rng.uniform(20.0, 30.0)
    kx, ky = np.arange(-diag / 2, diag / 2, sx), np.arange(-diag / 2, diag / 2, sy)
    gx, gy = (a.ravel() for a in np.meshgrid(kx, ky))
    c, s = np.cos(theta), np.sin(theta)
    bx, by = W / 2 + c * gx - s * gy, H / 2 + s * gx + c * gy
    inside = (bx > 0) & (bx < W) & (by > 0) & (by < H)
    bx, by = bx[inside], by[inside]
    ok = sample_at(urban & ~road & ~water, render_m, bx, by) & (rng.random(bx.size) < 0.85)
    bx, by = bx[ok], by[ok]
    nb = bx.size
    big = rng.random(nb) < 0.08
    length = np.where(big, rng.uniform(35.0, 70.0, nb), rng.uniform(9.0, min(sx - 6.0, 24.0), nb))
    width = np.where(big, rng.uniform(20.0, 40.0, nb), rng.uniform(7.0, min(sy - 6.0, 16.0), nb))
    ang = theta + rng.normal(0.0, 0.03, nb)
    corners = geo.rectangles(bx, by, length, width, ang)
    # paved yards / parking around some buildings, then parking lots
    yard = rng.random(nb) < np.where(big, 0.9, 0.3)
    yards = geo.rectangles(bx[yard], by[yard], length[yard] * 1.6 + 6, width[yard] * 1.6 + 6, ang[yard])
    pave = geo.burn_rings(yards, 1, shape, render_m, dtype="uint8") > 0
    pave &= urban & ~road & ~water
    label[pave], prim[pave], sec[pave] = PAVEMENT, pick("pavement"), pick("pavement")
    weight[pave], gain[pave] = np.clip(0.5 + 0.3 * n_mid[pave], 0, 1), 1.0
    # tree clusters everywhere on land (gardens, parks, field corners), crowns 2-5 m
    area_km2 = W * H / 1e6
    n_clusters = min(int(rng.poisson(45.0 * area_km2)) + 1, 40000)
    cxy = rng.uniform([0, 0], [W, H], (n_clusters, 2))
    per = rng.poisson(6.0, n_clusters) + 1
    txy = np.repeat(cxy, per, 0) + rng.normal(0.0, 10.0, (per.sum(), 2))
    tr = rng.uniform(2.0, 5.0, len(txy))
    crown_em = pick("tree", len(txy))
    k_disc = 12 if render_m < 1.0 else 6  # crowns of a few render samples need few vertices
    tem = geo.burn_rings(geo.discs(txy, tr, k_disc), crown_em.astype(np.int32) + 1, shape, render_m) - 1
    tmask = (tem >= 0) & ~water & ~major
    label[tmask], prim[tmask], sec[tmask] = TREES, tem[tmask], pick("tree")
    weight[tmask] = 0.75
    gain[tmask] = 0.85 + 0.2 * np.tanh(n_fine[tmask])
    # buildings: flat or gabled roofs; each roof plane has its own brightness (sun-facing or not)
    roof_em = pick("roof", nb)
    gabled = (rng.random(nb) < 0.6) & ~big
    halves = geo.gable_halves(corners)
    plane_gain = np.where(np.repeat(gabled, 2), np.tile([1.1, 0.72], nb),
                          np.repeat(rng.uniform(0.9, 1.05, nb), 2))
    plane_gain *= np.repeat(rng.uniform(0.9, 1.1, nb), 2)
    # roof planes are burnt grouped by (endmember, brightness in 1 % steps): few GDAL geometries
    code = np.repeat(roof_em.astype(np.int64), 2) * 1000 + np.round(plane_gain * 100).astype(np.int64)
    groups, gidx = np.unique(code, return_inverse=True)
    rid = geo.burn_rings(halves, gidx.astype(np.int32) + 1, shape, render_m) - 1
    roof = rid >= 0
    label[roof], prim[roof] = ROOF, groups[rid[roof]] // 1000
    sec[roof], weight[roof], gain[roof] = prim[roof], 1.0, (groups[rid[roof]] % 1000) / 100.0

    # ---- shadows of buildings and trees on the ground (diffuse light only) ------------------
    heights = np.where(big, rng.uniform(6.0, 15.0, nb), rng.uniform(4.0, 10.0, nb))
    shade = geo.burn_rings(geo.swept_quads(corners, sun.shadow_vector(heights)), 1, shape, render_m,
                           dtype="uint8")
    # a crown's shadow: the crown moved along the shadow vector and the band it sweeps
    off = sun.shadow_vector(rng.uniform(5.0, 18.0, len(txy)))
    r = tr * 0.9
    geo.burn_rings(geo.discs(txy + off, r, k_disc), 1, shape, render_m, out=shade)
    norm = np.linalg.norm(off, axis=1, keepdims=True)
    perp = np.stack([-off[:, 1], off[:, 0]], 1) / np.maximum(norm, 1e-9) * r[:, None]
    band = np.stack([txy + perp, txy + off + perp, txy + off - perp, txy - perp], 1)
    geo.burn_rings(band, 1, shape, render_m, out=shade)
    shade = shade > 0
    shade &= (label != ROOF) & (label != TREES)
    gain[shade] *= sun.diffuse_fraction
    return RenderMaps(label, prim, sec, weight, gain, render_m)


def _shores_and_water(rng: np.random.Generator, shape: tuple[int, int], render_m: float, W: float, H: float,
                      prof: LandscapeProfile, p_water: float, slots: dict[str, np.ndarray], pick, label: np.ndarray,
                      prim: np.ndarray, sec: np.ndarray, weight: np.ndarray, gain: np.ndarray, pt: np.ndarray,
                      n_mid: np.ndarray) -> np.ndarray:
    """Lakes and a sea with modelled deep / shore / shallow water, sand beaches and marsh fringes.

    Distances are in metres from the shore: shallow water over a bottom within 5-40 m of it,
    beaches 5-50 m wide, marsh (vegetation over water, ``WETLAND``) 15-150 m wide where chosen.
    Writes into the maps in place and returns the water mask.
    """
    rows, cols = shape
    inside = np.full(shape, -np.inf, np.float32)  # metres into the water (negative: on land)
    if p_water > 0.01:
        wf = smooth_noise(rng, shape, render_m, rng.uniform(300.0, 1200.0))
        thr = float(np.quantile(wf[::7, ::7], 1 - p_water))
        inside = np.maximum(inside, (wf - thr) * 400.0)  # ~metres: the field's slope is ~1 per 400 m
    if rng.random() < prof.p_sea:
        ang = rng.uniform(0.0, 2.0 * np.pi)
        ys = ((np.arange(rows) + 0.5) * render_m - H / 2).astype(np.float32)[:, None]
        xs = ((np.arange(cols) + 0.5) * render_m - W / 2).astype(np.float32)[None, :]
        d = xs * np.float32(np.cos(ang)) + ys * np.float32(np.sin(ang))
        d = d + smooth_noise(rng, shape, render_m, rng.uniform(200.0, 800.0)) * np.float32(rng.uniform(20.0, 120.0))
        thr = float(np.quantile(d[::7, ::7], 1 - rng.uniform(*prof.sea_fraction)))
        inside = np.maximum(inside, d - thr)
    water = inside > 0
    if not water.any():
        return water
    deep, shore = slots["water"][0], slots["water"][-1]
    label[water], prim[water], sec[water] = WATER, deep, shore
    weight[water] = 0.6 + 0.4 * np.clip(inside[water] / 200.0, 0.0, 1.0)
    shallow = water & (inside < rng.uniform(5.0, 40.0))
    prim[shallow], sec[shallow] = slots["water_shallow"][0], shore
    weight[shallow] = np.clip(0.8 + 0.15 * n_mid[shallow], 0.5, 1.0)
    land = ~water & (pt != P_URBAN)
    if rng.random() < prof.p_wetland:
        marsh = land & (inside > -rng.uniform(15.0, 150.0))
        label[marsh], prim[marsh], sec[marsh] = WETLAND, pick("grass"), slots["water_shallow"][0]
        weight[marsh] = np.clip(0.55 + 0.25 * n_mid[marsh], 0.2, 0.9)
        gain[marsh] = 1.0
        land &= ~marsh
    beach = land & (inside > -rng.uniform(5.0, 50.0))
    label[beach], prim[beach], sec[beach] = SAND, pick("sand"), pick("wet_soil")
    weight[beach] = np.clip(0.75 + 0.2 * n_mid[beach], 0.4, 1.0)
    gain[water | beach] = 1.0
    return water
