"""Diversity of K samples from one RGB raster: spread maps, the paper's SD and SDM, streamed by tiles.

One tiled pass (the scene orchestrator, :mod:`.run`: extent, AOI, strips, batching and dask as for
``synthesize``) synthesises the K samples per tile and writes, per pixel:
the mean cube, the spread (mean over bands of the per-band std across samples, and the mean
spectral angle of each sample to the sample mean, radians), the SDM map (mean over k of
KL(v_k || mean_k v_k) in nats, v_k the spectral classifier's softmax of sample k) and, in a
scratch folder, the class probabilities of sample 0, the sample-mean softmax and the mean
negative entropy (the sufficient statistics of the global, Inception-Score-like SDM). A second,
window-by-window pass over those rasters gives SD (its class marginals are scene-level, so
``SDAccumulator`` runs over the written probabilities, then writes the SD map = each pixel's KL to
its class marginal) and the SDM scalars. Overlapping tiles are blended as every runner output is,
so the scalars are computed from the blended maps (tiles draw the same scene-level noise, so they
agree closely in the overlaps). The pixels plotted in the report are picked per tile (on the worker)
and reduced in the runner's fixed merge order (on the client), so they too are the same on every
back end.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from rasterio.windows import Window

from hyperldm_engine import __version__, contract
from hyperldm_engine.errors import BundleError, InputError
from hyperldm_engine.io.atomic import atomic_dir
from hyperldm_engine.io.output_paths import file_output, folder_output
from hyperldm_engine.io.preview import true_colour_bands
from hyperldm_engine.io.raster import block_windows
from hyperldm_engine.io.writer import HsiWriter, check_free_space
from hyperldm_engine.metrics.diversity import SDAccumulator, neg_entropy, softmax_statistics, spread_maps
from hyperldm_engine.pipeline import report as report_mod
from hyperldm_engine.pipeline.correction import (
    consistency_tags,
    consistency_target,
    resolve_rgb_correction,
    target_arguments,
)
from hyperldm_engine.pipeline.run import NODATA, SceneOptions, check_run_options, open_scene, prepare_outputs
from hyperldm_engine.pipeline.synthesize import SamplingOptions, SynthesisTileFn, bundle_summary, with_defaults
from hyperldm_engine.tiling.runner import OutputSet, TileOutput, TileRequest

#: file names inside the output folder: owned by the engine-plugin contract (hyperldm_engine.contract)
MEAN, SPREAD, SD_MAP, SDM_MAP = (contract.DIVERSITY_FILES[r] for r in (
    contract.MEAN, contract.SPREAD, contract.SD_MAP, contract.SDM_MAP))
REPORT_JSON, REPORT_MD, REPORT_HTML = (contract.DIVERSITY_FILES[r] for r in (
    contract.REPORT_JSON, contract.REPORT_MD, contract.REPORT_HTML))
FIG_TRUE_COLOUR, FIG_SPREAD, FIG_SPECTRA, FIG_MAPS = contract.DIVERSITY_FIGURES
SCRATCH = ".scratch"
WINDOW = 512  # rows x cols read at a time in the second pass


def sample_name(k: int) -> str:
    return contract.diversity_sample_name(k)


Candidate = tuple[float, int, int, np.ndarray]  # (score, row, col, spectra (K, bands)), scene pixels
#: key of the per-tile candidates in a :class:`DiversityTileFn` output (not a raster: the runner
#: writes only the outputs it has writers for, and hands the whole output to the reduce step)
PICKS = "picks"


def tile_candidates(window: Window, cubes: np.ndarray, angle: np.ndarray, probs0: np.ndarray,
                    mask: np.ndarray) -> dict[str, Candidate]:
    """A tile's pixels to plot: highest and lowest spread, and the most confident pixel per class.

    ``cubes`` (K, bands, h, w), ``angle`` (h, w), ``probs0`` (n_s, h, w), ``mask`` (h, w); rows and
    columns are returned in scene pixel coordinates (the tile's window offset added).
    """
    if not mask.any():
        return {}
    out: dict[str, Candidate] = {}
    r0, c0 = int(window.row_off), int(window.col_off)
    valid = np.flatnonzero(mask.ravel())
    flat_angle = angle.ravel()[valid]

    def offer(key: str, score: float, idx: int) -> None:
        r, c = divmod(int(idx), mask.shape[1])
        out[key] = (float(score), r0 + r, c0 + c, np.array(cubes[:, :, r, c], dtype=np.float32))

    offer("highest spread", flat_angle.max(), valid[np.argmax(flat_angle)])
    offer("lowest spread", -flat_angle.min(), valid[np.argmin(flat_angle)])
    cls = probs0.reshape(probs0.shape[0], -1)[:, valid]
    winners = np.argmax(cls, axis=0)
    for i in np.unique(winners):
        j = valid[np.flatnonzero(winners == i)[np.argmax(cls[i, winners == i])]]
        offer(f"class {int(i)}", float(cls[i].max()), j)
    return out


@dataclass
class PixelPicks:
    """The reduce step of the picked pixels: the best candidate per key over all tiles offered.

    Offered in the runner's merge order, a tie keeps the earlier tile, so every back end picks the
    same pixels. Each entry keeps (score, row, col, spectra (K, bands)), row and col on the output
    grid: scene pixel coordinates less ``origin`` (the output window's top-left pixel, ``(row, col)``).
    """

    n_classes: int
    best: dict[str, Candidate] = field(default_factory=dict)
    origin: tuple[int, int] = (0, 0)

    def offer(self, candidates: dict[str, Candidate]) -> None:
        for key, (score, row, col, spectra) in candidates.items():
            if key not in self.best or score > self.best[key][0]:
                self.best[key] = (score, row - self.origin[0], col - self.origin[1], spectra)

    def reduce(self, output: TileOutput) -> None:
        """``ScenePlan.run``'s ``reduce``: offer a :class:`DiversityTileFn` output's candidates."""
        self.offer(output[PICKS])  # type: ignore[index]


ClassifierFn = Callable[[np.ndarray], np.ndarray]


@dataclass
class DiversityTileFn:
    """Tile function: K samples (from ``synth``) -> mean, spread, SDM map and softmax statistics.

    ``synth`` returns ``{"s0": cube, ..., "s{K-1}": cube}`` (``SynthesisTileFn``); ``classify``
    maps cubes ``(K, bands, h, w)`` to softmax ``(K, n_s, h, w)`` (default: the bundle's spectral
    classifier). Outputs: ``mean`` (bands), ``spread`` (2), ``sdm`` (1), ``probs0`` and ``pmean``
    (n_s), ``negent`` (1), ``tc0`` (3 true-colour bands of sample 0, for the preview) and the
    samples ``s0``... when ``write_samples``; and, under :data:`PICKS`, the tile's
    :func:`tile_candidates` for :class:`PixelPicks` to reduce.
    """

    synth: Callable[[TileRequest], dict[str, np.ndarray]]
    samples: int
    n_classes: int
    true_colour_bands: tuple[int, int, int]
    classify: ClassifierFn | None = None
    write_samples: bool = False

    def __post_init__(self) -> None:
        if len(self.true_colour_bands) != 3:
            raise ValueError(f"true_colour_bands must name 3 bands, got {self.true_colour_bands}")

    def _classifier(self) -> ClassifierFn:
        if self.classify is None:
            import torch

            bundle, _, device, _ = self.synth.load()  # type: ignore[attr-defined]  (SynthesisTileFn)
            if bundle.classifier is None:
                raise BundleError(f"{self.synth.bundle_path}: the model has no spectral classifier; "  # type: ignore[attr-defined]
                                  "SD and SDM need one (train the bundle with labels)")
            clf = bundle.classifier

            def classify(cubes: np.ndarray) -> np.ndarray:
                with torch.inference_mode():
                    x = torch.from_numpy(np.ascontiguousarray(cubes, dtype=np.float32)).to(device)
                    return clf.probabilities_cube(x).float().cpu().numpy()

            self.classify = classify
        return self.classify

    def __call__(self, request: TileRequest) -> dict[str, Any]:
        return self._statistics(request, self.synth(request))

    def batch(self, requests: Sequence[TileRequest]) -> list[dict[str, Any]]:
        """``--batch-size``: the K samples of several tiles in one model call, then each tile's statistics."""
        outs = self.synth.batch(requests)  # type: ignore[attr-defined]  (SynthesisTileFn)
        return [self._statistics(r, out) for r, out in zip(requests, outs, strict=True)]

    def _statistics(self, request: TileRequest, out: dict[str, np.ndarray]) -> dict[str, Any]:
        cubes = np.stack([np.asarray(out[f"s{k}"], np.float32) for k in range(self.samples)])
        cubes[:, :, ~np.asarray(request.mask, bool)] = 0.0  # in place: a second copy of K cubes is 250 MB at 512^2
        spread = spread_maps(cubes)
        probs = self._classifier()(cubes)
        stats = softmax_statistics(probs)
        result: dict[str, Any] = {
            "mean": spread["mean"],
            "spread": np.stack([spread["std"], spread["angle"]]),
            "sdm": stats["sdm"][None].astype(np.float32),
            "probs0": probs[0].astype(np.float32),
            "pmean": stats["pmean"].astype(np.float32),
            "negent": stats["negent"][None].astype(np.float32),
            "tc0": cubes[0, list(self.true_colour_bands)],
            PICKS: tile_candidates(request.window, cubes, spread["angle"], probs[0], request.written),
        }
        if self.write_samples:
            result.update({f"s{k}": cubes[k] for k in range(self.samples)})
        return result


@dataclass
class DiversityJob(SceneOptions):
    """What ``hyperldm-engine diversity`` needs (with the shared :class:`~.run.SceneOptions`: extent,
    AOI, strips, batching and dask as for synthesize); CLI options map one to one onto these fields."""

    input: str
    output_dir: str
    model: str
    sampling: SamplingOptions = field(default_factory=lambda: SamplingOptions(samples=5))
    write_samples: bool = False
    rgb_consistency: str = "auto"  # as synthesize's: the samples measured are those synthesize writes
    rgb_correction: str = "auto"  # spectral.consistency.RGB_CORRECTION_CHOICES


def _second_pass(folder: Path, scratch: Path, n_classes: int, like: Any) -> dict[str, Any]:
    """SD (two passes over the sample-0 softmax) and the SDM scalars; writes ``sd_map.tif``."""
    import rasterio

    acc = SDAccumulator(n_classes)
    sdm_sum = negent_sum = 0.0
    pmean_sum = np.zeros(n_classes)
    n = 0
    with rasterio.open(scratch / "probs0.tif") as p0, rasterio.open(scratch / "pmean.tif") as pm, \
            rasterio.open(scratch / "negent.tif") as ne, rasterio.open(folder / SDM_MAP) as sm:
        for w in block_windows(p0.width, p0.height, WINDOW):
            v = p0.read(window=w, masked=True)
            valid = ~np.ma.getmaskarray(v).any(axis=0)
            if not valid.any():
                continue
            acc.update(v.filled(np.nan), valid)
            sdm_sum += float(sm.read(1, window=w)[valid].astype(np.float64).sum())
            negent_sum += float(ne.read(1, window=w)[valid].astype(np.float64).sum())
            pmean_sum += pm.read(window=w)[:, valid].astype(np.float64).sum(axis=1)
            n += int(valid.sum())
        sd = acc.result()
        with HsiWriter(folder / SD_MAP, like_profile=like, count=1, nodata=NODATA,
                       band_names=["KL(v || p_class) nats"], tags={"HYPERLDM_ENGINE": __version__}) as wr:
            for w in block_windows(p0.width, p0.height, WINDOW):
                v = p0.read(window=w, masked=True)
                valid = ~np.ma.getmaskarray(v).any(axis=0)
                m = acc.pixel_map(v.filled(np.nan), valid)
                wr.write(np.where(np.isfinite(m), m, NODATA)[None].astype(np.float32), window=w)
    if n == 0:
        raise InputError("no valid pixel to measure diversity on")
    mean_kl = sdm_sum / n
    pbar = pmean_sum / n
    kl_global = max(negent_sum / n - float(neg_entropy(pbar)), 0.0)
    return {"sd": sd.sd, "sd_present_mean": sd.sd_present, "sd_detail": sd.to_dict(),
            "sdm": float(np.exp(mean_kl)), "sdm_mean_kl_nats": mean_kl,
            "sdm_is_variant": float(np.exp(kl_global)), "sdm_is_variant_kl_nats": kl_global, "n_pixels": n}


def run_diversity(job: DiversityJob, progress_mode: str = "bar") -> dict[str, Any]:
    """Run a :class:`DiversityJob`; returns the report (also written as ``report.json``).

    Everything goes into ``job.output_dir`` atomically (a temporary folder renamed at the end).
    """
    t_start = time.perf_counter()
    job.sampling.validate()
    if job.sampling.samples < 2:
        raise InputError(f"--samples must be at least 2 to measure diversity, got {job.sampling.samples}")
    check_run_options(job)
    out_dir = Path(job.output_dir)
    files = output_paths(out_dir, job.sampling.samples, job.write_samples)
    # the figures are planned by name below (``files`` lists those a previous run left, for --overwrite)
    planned = [folder_output(out_dir)] + [file_output(p) for role, v in files.items() if role != contract.FIGURES
                                          for p in (v if isinstance(v, list) else [v])]
    planned += [file_output(out_dir / name) for name in (FIG_TRUE_COLOUR, FIG_SPREAD, FIG_SPECTRA, FIG_MAPS)]
    prepare_outputs(job, planned, job.overwrite)  # before any work
    model = bundle_summary(job.model)
    classes = list(model["class_names"])
    if not classes:
        raise BundleError(f"{job.model}: the model has no spectral classifier classes; SD and SDM need one")
    n_s, n_bands, k = len(classes), model["n_bands"], job.sampling.samples
    wl = model["wavelengths_nm"]
    tc = true_colour_bands(wl)
    # float32 bands of every raster written (mean, spread, sdm, sd_map, probs0, pmean, negent, tc0, samples)
    counts = [n_bands, 2, 1, 1, n_s, n_s, 1, len(tc), *([n_bands] * k if job.write_samples else [])]

    def check_size(pixels: int) -> None:  # the largest file for ulimit -f, all of them for the disk
        check_free_space(out_dir, 4 * pixels * max(counts), copies=sum(counts) / max(counts))

    # the samples are made RGB-consistent as synthesize makes them, so SD and SDM describe its outputs
    with open_scene(job, model, progress_mode, job.rgb_consistency, check_size=check_size) as plan, \
            atomic_dir(out_dir, overwrite=job.overwrite) as tmp:
        correction, toa = resolve_rgb_correction(job, plan, model, progress_mode)
        job = replace(job, sampling=with_defaults(job.sampling))  # steps left open: the sample mode's default
        consistent = plan.sensor.consistency
        target = consistency_target(plan, model, toa, progress_mode)
        synth = SynthesisTileFn(str(job.model), job.sampling, plan.statistics, device=job.device,
                                rgb_response=plan.sensor.response, rgb_correction=correction, toa_input=toa,
                                **target_arguments(target))
        tile_fn = DiversityTileFn(synth, k, n_s, tc, write_samples=job.write_samples)
        window = plan.out_window
        picks = PixelPicks(n_s, origin=(0, 0) if window is None else (int(window.row_off), int(window.col_off)))
        scratch = tmp / SCRATCH
        scratch.mkdir()
        tags = plan.tags(job.sampling, **consistency_tags(plan, correction, target))
        common = dict(like_profile=plan.profile, nodata=NODATA, tags=tags)
        specs: dict[str, dict[str, Any]] = {
            "mean": dict(path=tmp / MEAN, count=n_bands, wavelengths_nm=wl, fwhm_nm=model["fwhm_nm"]),
            "spread": dict(path=tmp / SPREAD, band_names=["spectral std (reflectance)", "angular spread (rad)"]),
            "sdm": dict(path=tmp / SDM_MAP, band_names=["mean_k KL(v_k || mean v) nats"]),
            "probs0": dict(path=scratch / "probs0.tif", band_names=[f"p({c}) sample 0" for c in classes]),
            "pmean": dict(path=scratch / "pmean.tif", band_names=[f"mean p({c})" for c in classes]),
            "negent": dict(path=scratch / "negent.tif", band_names=["mean neg-entropy"]),
            "tc0": dict(path=scratch / "tc0.tif", band_names=[f"sample 0 {wl[b]:.1f} nm" for b in tc]),
        }
        if job.write_samples:
            for s in range(k):
                specs[f"s{s}"] = dict(path=tmp / sample_name(s), count=n_bands, wavelengths_nm=wl,
                                      fwhm_nm=model["fwhm_nm"], tags={**tags, "HYPERLDM_SAMPLE": s})
        with ExitStack() as stack:
            writers = {name: stack.enter_context(HsiWriter(**{**common, **spec})) for name, spec in specs.items()}
            run_stats = plan.run(tile_fn, OutputSet.of(writers, None, NODATA), "diversity", carry_dir=scratch,
                                 reduce=picks.reduce)
        t_tiles = time.perf_counter()
        metrics = _second_pass(tmp, scratch, n_s, plan.profile)
        t_metrics = time.perf_counter()
        report = {
            "sd": metrics["sd"], "sd_present_mean": metrics["sd_present_mean"],
            "sdm": metrics["sdm"], "sdm_is_variant": metrics["sdm_is_variant"],
            "sdm_mean_kl_nats": metrics["sdm_mean_kl_nats"],
            "sdm_is_variant_kl_nats": metrics["sdm_is_variant_kl_nats"],
            "samples": k, "seed": job.sampling.seed, "steps": job.sampling.steps,
            "sampler": job.sampling.sampler, "model": str(job.model), "classes": classes,
            "input": str(job.input), "input_sensor": plan.sensor.name, "input_sensor_from": plan.sensor.source,
            "rgb_consistency": "on" if consistent else "off", "rgb_correction": correction if consistent else "none",
            "width": plan.profile["width"], "height": plan.profile["height"],
            "n_pixels": metrics["n_pixels"], "sd_detail": metrics["sd_detail"],
            "tiles": {"computed": run_stats.computed, "skipped": run_stats.skipped,
                      "tile_size": job.tile, "overlap": job.overlap, "execution": plan.execution.value},
            "area": {"extent": job.extent, "aoi": job.aoi, "keep_grid": job.keep_grid,
                     "window": None if window is None else [int(v) for v in window.flatten()]},
            "definitions": {
                "sd": "(1/n_s) sum_i exp(KL_i) over the sample-0 softmax, empty classes count 1",
                "sd_present_mean": "mean of exp(KL_i) over the classes that occur",
                "sdm": "exp(mean over pixels and samples of KL(v_k || mean_k v_k)) (per-pixel p(y))",
                "sdm_is_variant": "exp(mean KL(v_k || p_global)), p_global = mean softmax over all pixels "
                                  "and samples (Inception-Score-like)",
                "spread": "band 1: mean over bands of the per-band std across samples; band 2: mean spectral "
                          "angle of each sample to the sample mean (radians)",
            },
            "picked_pixels": {name: {"row": r, "col": c} for name, (_, r, c, _) in picks.best.items()},
            "engine_version": __version__,
        }
        figures = report_mod.diversity_figures(tmp, scratch / "tc0.tif", tmp / SPREAD, tmp / SD_MAP,
                                               tmp / SDM_MAP, picks, wl, classes, report)
        t_end = time.perf_counter()
        report["timings"] = {"tiles_s": round(t_tiles - t_start, 3), "metrics_s": round(t_metrics - t_tiles, 3),
                             "report_s": round(t_end - t_metrics, 3), "total_s": round(t_end - t_start, 3),
                             "mpix_per_min": round(run_stats.mpix_per_s * 60, 4)}
        report["figures"] = figures
        (tmp / REPORT_JSON).write_text(json.dumps(report_mod.jsonable(report), indent=2) + "\n")
        (tmp / REPORT_MD).write_text(report_mod.diversity_markdown(report))
        (tmp / REPORT_HTML).write_text(report_mod.diversity_html(report))
        shutil.rmtree(scratch)
    return report


def output_paths(out_dir: str | Path, samples: int, write_samples: bool) -> dict[str, str | list[str]]:
    """The files ``run_diversity`` writes, by key (for the JSON ``done`` event)."""
    d = Path(out_dir)
    out: dict[str, str | list[str]] = {role: str(d / name) for role, name in contract.DIVERSITY_FILES.items()}
    out[contract.FIGURES] = [str(d / name) for name in contract.DIVERSITY_FIGURES if (d / name).is_file()]
    if write_samples:
        out[contract.SAMPLES] = [str(d / sample_name(s)) for s in range(samples)]
    return out
