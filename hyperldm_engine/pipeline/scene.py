"""Synthesize a whole georeferenced scene: K cubes (and abundances) per tile, written atomically.

What is specific to ``synthesize`` lives here (its job, its output files and their bands, the tile
function); opening, checking, statistics, grid, area of interest and back end are the scene
orchestrator's (:mod:`hyperldm_engine.pipeline.run`).
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from hyperldm_engine import __version__, contract
from hyperldm_engine.errors import InputError
from hyperldm_engine.io.output_paths import check_file_name, file_output
from hyperldm_engine.io.writer import (
    HsiWriter,
    check_creation_options,
    check_free_space,
    check_output_format,
    parse_creation_options,
)
from hyperldm_engine.pipeline.correction import (
    consistency_tags,
    consistency_target,
    resolve_rgb_correction,
    target_arguments,
    uses_mean_anchor,
)
from hyperldm_engine.pipeline.outputs import enter_envi_header, enter_library, output_bands, planned_outputs
from hyperldm_engine.pipeline.run import (
    DEFAULT_OVERLAP,
    DEFAULT_TILE,
    NODATA,
    SceneOptions,
    check_run_options,
    open_scene,
    prepare_outputs,
)
from hyperldm_engine.pipeline.synthesize import (
    SamplingOptions,
    SynthesisTileFn,
    bundle_summary,
    mean_estimate,
    with_defaults,
)
from hyperldm_engine.progress import report_info
from hyperldm_engine.spectral.consistency import RGB_CORRECTION_CHOICES
from hyperldm_engine.spectral.groups import abundance_groups
from hyperldm_engine.tiling.runner import OutputSet, RunStats

__all__ = ["DEFAULT_OVERLAP", "DEFAULT_TILE", "NODATA", "SceneJob", "sample_paths", "synthesize_scene"]


@dataclass
class SceneJob(SceneOptions):
    """Everything ``synthesize`` needs (with the shared :class:`~.run.SceneOptions`); CLI flags map
    one to one onto these fields."""

    input: str
    output: str
    model: str
    sampling: SamplingOptions = field(default_factory=SamplingOptions)
    sample_layout: str = "files"  # "files": out_s0.tif ...; "bands": one file, K x bands
    abundances: str | None = None
    creation_options: Sequence[str] = ()
    cog: bool = False
    dtype: str = "float32"
    autocast: str | None = None
    rgb_consistency: str = "auto"  # RGB_CONSISTENCY: auto projects when the input sensor is known
    rgb_correction: str = "auto"  # spectral.consistency.RGB_CORRECTION_CHOICES: how that projection spreads over bands
    output_sensor: str | None = None  # spectral.output_sensors name or CSV: resample every cube to its bands
    envi_header: bool = False  # also write OUT.hdr beside each cube (Spectral Python, ENVI)
    library_out: str | None = None  # also write the decoder's endmember library (GeoPackage + CSV)
    abundance_grouping: str = "class"  # ABUNDANCE_GROUPINGS: library classes or material groups
    abundance_prior: bool = True  # --abundance-prior auto: the bundle's class-group prior re-weights the abundances


def sample_paths(output: str | Path, samples: int, layout: str) -> list[Path]:
    """Output file names: ``out.tif`` for one sample or the "bands" layout; else ``out_s0.tif`` ..."""
    out = Path(output)
    if samples == 1 or layout == "bands":
        return [out]
    return [Path(contract.synthesize_sample_name(str(out), k)) for k in range(samples)]


def _mean_tags(sampling: SamplingOptions, model: dict[str, Any], progress_mode: str) -> dict[str, Any]:
    """``--mode mean``: which estimate is written (said once on stderr and kept in the file's tags)."""
    if sampling.mode != "mean":
        return {}
    estimate = mean_estimate(model["anchor_strength"] is not None, model["latent_dropout"])
    said = {"anchor": "the model's latent anchor, decoded", "rgb-only": "the decoder from the RGB alone",
            "samples": f"the average of {sampling.mean_draws} samples (the model has no RGB-only path)"}[estimate]
    report_info(f"mean mode: {said}", progress_mode)
    return {"HYPERLDM_MEAN_ESTIMATE": estimate} | ({"HYPERLDM_MEAN_DRAWS": sampling.mean_draws}
                                                   if estimate == "samples" else {})


class _BandOffset:
    """Adapter: the runner writes one sample's ``count`` bands; this puts them at ``offset`` in a shared file."""

    def __init__(self, writer: HsiWriter, offset: int, count: int) -> None:
        self.writer, self.offset, self.count = writer, offset, count

    def creation_profile(self) -> dict[str, Any]:
        """The shared file's block layout, so the runner flushes whole compressed blocks."""
        return self.writer.creation_profile()

    def write(self, block: np.ndarray, window: Any) -> None:
        self.writer.write(block, window=window, band_offset=self.offset)


def _check_job(job: SceneJob) -> None:
    job.sampling.validate()
    if job.sample_layout not in ("files", "bands"):
        raise InputError(f"--sample-layout must be files or bands, got {job.sample_layout!r}")
    if job.dtype not in ("float32", "uint16"):
        raise InputError(f"--dtype must be float32 or uint16, got {job.dtype!r}")
    if job.rgb_correction not in RGB_CORRECTION_CHOICES:
        raise InputError(f"--rgb-correction must be one of {', '.join(RGB_CORRECTION_CHOICES)}, "
                         f"got {job.rgb_correction!r}")
    check_run_options(job)
    check_creation_options(parse_creation_options(job.creation_options), job.dtype)


def _check_space(job: SceneJob, paths: list[Path], n_bands: int, n_groups: int, pixels: int) -> None:
    """Refuse before any work when the outputs' declared size cannot fit (disk or ulimit -f)."""
    itemsize = 2 if job.dtype == "uint16" else 4
    per_file = pixels * n_bands * itemsize * (job.sampling.samples if job.sample_layout == "bands" else 1)
    check_free_space(paths[0], per_file, copies=len(paths) * (2 if job.cog else 1))  # all in one folder
    if job.abundances:
        check_free_space(job.abundances, pixels * n_groups * 4)


def synthesize_scene(job: SceneJob, progress_mode: str = "bar") -> tuple[list[Path], RunStats]:
    """Run a :class:`SceneJob`; returns the written paths and the runner's statistics.

    All outputs are written atomically together: on any error or interrupt none of them exists.
    """
    _check_job(job)
    k = job.sampling.samples
    paths = sample_paths(job.output, k, job.sample_layout)
    check_file_name(job.output)
    check_output_format(job.output)
    planned = [file_output(p) for p in paths]
    if job.abundances:
        check_file_name(job.abundances, "--abundances")
        check_output_format(job.abundances, "--abundances")
        planned.append(file_output(job.abundances, "--abundances"))
    planned += planned_outputs(paths, job.envi_header, job.library_out)
    prepare_outputs(job, planned, job.overwrite, [job.output_sensor])
    model = bundle_summary(job.model)
    out_bands = output_bands(job.output_sensor, model)
    groups, _ = abundance_groups(model["library_classes"], job.abundance_grouping)

    def check_size(pixels: int) -> None:
        _check_space(job, paths, out_bands.count, len(groups), pixels)

    with open_scene(job, model, progress_mode, job.rgb_consistency, check_size) as plan:
        correction, toa = resolve_rgb_correction(job, plan, model, progress_mode)
        # steps and mean draws left open take this run's defaults: fewer in the mean mode on a mean-mode anchor
        job = replace(job, sampling=with_defaults(job.sampling, uses_mean_anchor(job, model, toa, correction)))
        target = consistency_target(plan, model, toa, progress_mode)
        tile_fn = SynthesisTileFn(str(job.model), job.sampling, plan.statistics, device=job.device,
                                  abundances=job.abundances is not None, autocast=job.autocast,
                                  rgb_response=plan.sensor.response, rgb_correction=correction, toa_input=toa,
                                  **target_arguments(target),
                                  abundance_grouping=job.abundance_grouping,
                                  abundance_prior=job.abundance_prior)
        prior = model["abundance_prior"] if job.abundance_prior and job.abundances else None
        if prior is not None:
            report_info(f"abundances re-weighted by the model's class-group prior ({prior}); "
                        "--abundance-prior off for the decoder's own", progress_mode)
        if out_bands.resampling is not None:
            report_info(f"output sensor {out_bands.sensor}: {out_bands.describe()}", progress_mode)
        tile_fn = out_bands.wrap(tile_fn)  # --output-sensor: each tile resampled to the sensor's bands
        n_bands = out_bands.count
        tags = plan.tags(job.sampling, HYPERLDM_OUTPUT_SENSOR=out_bands.sensor,
                         **consistency_tags(plan, correction, target),
                         **_mean_tags(job.sampling, model, progress_mode))
        writer_args = dict(like_profile=plan.profile, nodata=NODATA if job.dtype == "float32" else 0,
                           dtype=job.dtype, creation_options=list(job.creation_options), cog=job.cog,
                           overwrite=job.overwrite)  # uint16: the writer's INT_SCALE
        with ExitStack() as stack:
            writers: dict[str, Any] = {}
            if job.sample_layout == "bands" and k > 1:
                wl = np.tile(out_bands.wavelengths_nm, k)
                names = [f"s{s} {out_bands.names[b] if out_bands.names else f'b{b + 1}'}" for s in range(k)
                         for b in range(n_bands)]
                shared = stack.enter_context(HsiWriter(
                    paths[0], count=k * n_bands, wavelengths_nm=wl, fwhm_nm=np.tile(out_bands.fwhm_nm, k),
                    band_names=names, tags={**tags, "HYPERLDM_SAMPLE_LAYOUT": "bands"}, **writer_args))
                writers.update({f"s{s}": _BandOffset(shared, s * n_bands, n_bands) for s in range(k)})
                cubes = [shared]
            else:
                for s, path in enumerate(paths):
                    writers[f"s{s}"] = stack.enter_context(HsiWriter(
                        path, count=n_bands, wavelengths_nm=out_bands.wavelengths_nm, fwhm_nm=out_bands.fwhm_nm,
                        band_names=out_bands.names, tags={**tags, "HYPERLDM_SAMPLE": s}, **writer_args))
                cubes = [writers[f"s{s}"] for s in range(len(paths))]
            for cube in cubes:  # --envi-header: OUT.hdr beside each cube, renamed with it
                if job.envi_header:
                    enter_envi_header(stack, cube, cube.path, job.overwrite, f"HyperLDM engine {__version__} "
                                      f"synthesize of {Path(job.input).name} ({out_bands.sensor} bands)")
            if job.library_out:
                enter_library(stack, job.library_out, str(job.model), out_bands, job.overwrite)
            if job.abundances:
                writers["abundances"] = stack.enter_context(HsiWriter(
                    job.abundances, like_profile=plan.profile, count=len(groups), nodata=NODATA,
                    band_names=[f"abundance {g}" for g in groups], creation_options=list(job.creation_options),
                    overwrite=job.overwrite, tags={**tags, "HYPERLDM_ABUNDANCE_GROUPS": ",".join(groups),
                                                   "HYPERLDM_ABUNDANCE_PRIOR": prior or "none"}))
            stats = plan.run(tile_fn, OutputSet.of(writers, None, writer_args["nodata"]), "synthesize",
                             carry_dir=Path(job.output).parent)
    return paths + ([Path(job.abundances)] if job.abundances else []), stats
