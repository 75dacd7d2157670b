"""``hyperldm-engine synthesize``: RGB raster -> K diverse hyperspectral cubes on the same grid."""

from __future__ import annotations

from typing import Any

import click
from hyperldm_cli.common import consistency_options, finish, progress_option, resolve_model, scene_options

from hyperldm_engine.io.writer import INT_SCALE
from hyperldm_engine.pipeline.scene import SceneJob, synthesize_scene
from hyperldm_engine.pipeline.synthesize import (
    ANCHORED_MEAN_DRAWS,
    ANCHORED_MEAN_STEPS,
    DEFAULT_ETA,
    DEFAULT_MEAN_DRAWS,
    DEFAULT_MEAN_STEPS,
    DEFAULT_STEPS,
    SYNTHESIS_MODES,
    SamplingOptions,
)
from hyperldm_engine.spectral.input_sensors import AUTO, names
from hyperldm_engine.spectral.output_sensors import names as output_sensor_names


@click.command("synthesize")
@click.argument("rgb", type=click.Path(dir_okay=False))
@click.argument("output", type=click.Path())  # a folder here is refused as an output problem (exit 4)
@click.option("--model", "model", default=None, help="Model bundle (folder or .zip); default: the bundled model.")
@click.option("--samples", default=1, show_default=True, type=int, help="Number of diverse samples K.")
@click.option("--seed", default=0, show_default=True, type=int, help="Seed of the scene-level noise field.")
@click.option("--steps", default=None, type=int,
              help=f"Sampling steps (DDIM) [default: {DEFAULT_STEPS}; with --mode mean {DEFAULT_MEAN_STEPS}, whose "
                   f"average gains from more diverse draws, or {ANCHORED_MEAN_STEPS} when the mean is centred on "
                   "the model's mean-mode anchor (the bundled model's, on surface-reflectance input)].")
@click.option("--sampler", type=click.Choice(["ddim", "ddpm"]), default="ddim", show_default=True,
              help="ddim: few-step; ddpm: the paper's ancestral sampler over all 100 steps.")
@click.option("--eta", default=DEFAULT_ETA, show_default=True, type=float, help="DDIM stochasticity (0..1).")
@click.option("--mode", type=click.Choice(SYNTHESIS_MODES), default="sample", show_default=True,
              help="sample: K diverse draws (the paper); mean: one deterministic cube, the posterior mean "
                   "(accuracy over diversity): the model's RGB-only estimate, or the average of --mean-draws "
                   "samples for models without one (the bundled model).")
@click.option("--mean-draws", default=None, type=int,
              help=f"--mode mean on models without an RGB-only path: samples averaged (time grows with it) "
                   f"[default: {DEFAULT_MEAN_DRAWS}, or {ANCHORED_MEAN_DRAWS} when the mean is centred on the "
                   "model's mean-mode anchor, which holds most of it: the bundled model on surface input].")
@click.option("--input-sensor", default=AUTO, show_default=True, type=click.Choice([AUTO, *names()]),
              help="Sensor that made the RGB; auto reads the raster's metadata and file name, else a generic camera.")
@consistency_options
@click.option("--sample-layout", type=click.Choice(["files", "bands"]), default="files", show_default=True,
              help="K > 1: files OUT_s0.tif, OUT_s1.tif ... or one file with K x bands (s0 bands first).")
@click.option("--abundances", type=click.Path(dir_okay=False), default=None,
              help="Also write per-pixel abundances of the library spectra summed by class.")
@click.option("--abundance-groups", is_flag=True,
              help="Sum --abundances into material groups (water, vegetation, npv, bare, built, bright), one "
                   "band each, instead of the library's classes.")
@click.option("--abundance-prior", type=click.Choice(["auto", "off"]), default="auto", show_default=True,
              help="auto: --abundances re-weighted by the model's class-group prior from the RGB, where it has "
                   "one (the dominant material group then agrees with land cover on 73 % of held-out pixels, 45 % "
                   "without; the cubes are unchanged); off: the decoder's abundances as mixed.")
@click.option("--output-sensor", default=None, metavar="NAME|FILE.csv",
              help=f"Resample every cube to another sensor's bands: {', '.join(output_sensor_names())}, or a CSV "
                   "of band centres and FWHM (wavelength,fwhm[,name]) or of responses (wavelength,<band>...); "
                   "bands beyond the model's range are left out.")
@click.option("--envi-header", is_flag=True,
              help="Also write an ENVI header OUT.hdr beside each cube (wavelengths for Spectral Python, ENVI).")
@click.option("--library-out", type=click.Path(dir_okay=False), default=None,
              help="Also write the decoder's endmember library as a spectral library LIB.gpkg (QGIS, EnMAP-Box) "
                   "and LIB.csv, in the output's bands.")
@scene_options
@click.option("--autocast", type=click.Choice(["bf16", "fp16"]), default=None,
              help="Mixed precision on CUDA (see benchmarks/RESULTS.md for its effect on quality).")
@click.option("--co", "creation_options", multiple=True, help="GDAL creation option KEY=VALUE (repeatable).")
@click.option("--cog", is_flag=True, help="Write a Cloud-Optimised GeoTIFF.")
@click.option("--dtype", type=click.Choice(["float32", "uint16"]), default="float32", show_default=True,
              help=f"uint16 stores reflectance / {INT_SCALE:g}; GDAL's band scale {INT_SCALE:g} lets "
                   "GDAL, rasterio and QGIS show reflectance.")
@click.option("--overwrite", is_flag=True, help="Replace existing outputs.")
@progress_option
def synthesize(rgb: str, output: str, model: str | None, samples: int, seed: int, steps: int | None, sampler: str,
               eta: float, sample_layout: str, abundances: str | None, scene: dict[str, Any], autocast: str | None,
               creation_options: tuple[str, ...], cog: bool, dtype: str, overwrite: bool, progress_mode: str,
               mode: str, input_sensor: str, rgb_consistency: str, rgb_correction: str, output_sensor: str | None,
               envi_header: bool,
               library_out: str | None, abundance_groups: bool, abundance_prior: str, mean_draws: int) -> None:
    """Synthesize hyperspectral cubes from the georeferenced RGB raster RGB into OUTPUT (GeoTIFF).

    Example: hyperldm-engine synthesize ortho.tif hsi.tif --samples 3 --seed 7
    """
    if abundance_groups and not abundances:
        raise click.UsageError("--abundance-groups sums the --abundances output; give --abundances FILE too")
    job = SceneJob(
        input=rgb, output=output, model=resolve_model(model),
        sampling=SamplingOptions(samples=samples, seed=seed, sampler=sampler, eta=eta, mode=mode,
                                 steps=steps, mean_draws=mean_draws),
        input_sensor=input_sensor, rgb_consistency=rgb_consistency, rgb_correction=rgb_correction,
        output_sensor=output_sensor, envi_header=envi_header, library_out=library_out,
        abundance_grouping="material" if abundance_groups else "class", sample_layout=sample_layout,
        abundance_prior=abundance_prior == "auto",
        abundances=abundances, creation_options=creation_options, cog=cog, dtype=dtype, overwrite=overwrite,
        autocast=autocast, **scene,
    )
    paths, stats = synthesize_scene(job, progress_mode=progress_mode)
    from hyperldm_engine.pipeline.outputs import written_extras
    from hyperldm_engine.pipeline.scene import sample_paths

    cubes = sample_paths(output, samples, sample_layout)  # paths also lists the abundances
    extras = written_extras(cubes, envi_header, library_out)
    summary = (f"wrote {', '.join(map(str, [*paths, *extras]))}: {stats.computed} tiles computed, "
               f"{stats.skipped} skipped, {stats.seconds:.1f} s ({stats.mpix_per_s * 60:.2f} MPix/min)")
    finish("synthesize", progress_mode, {"hsi": cubes, "abundances": abundances,
                                         "envi_header": [p for p in extras if p.suffix == ".hdr"],
                                         "library": [p for p in extras if p.suffix != ".hdr"]},
           values={"tiles": stats.computed, "skipped": stats.skipped}, seconds=stats.seconds, note=summary)


COMMANDS = [synthesize]
