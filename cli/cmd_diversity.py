"""``hyperldm-engine diversity``: K samples from one RGB raster, their spread, SD and SDM, with a report."""

from __future__ import annotations

from typing import Any

import click
from hyperldm_cli.common import consistency_options, finish, progress_option, resolve_model, scene_options

from hyperldm_engine.pipeline.synthesize import DEFAULT_STEPS
from hyperldm_engine.spectral.input_sensors import names as sensor_names


@click.command("diversity")
@click.argument("rgb", type=click.Path(dir_okay=False))
@click.argument("out_dir", type=click.Path(file_okay=False))
@click.option("--samples", default=5, show_default=True, type=int, help="Number of samples K (at least 2).")
@click.option("--model", "model", default=None, help="Model bundle (folder or .zip); default: the bundled model.")
@click.option("--seed", default=0, show_default=True, type=int, help="Seed of the scene-level noise field.")
@click.option("--steps", default=DEFAULT_STEPS, show_default=True, type=int, help="Sampling steps (DDIM).")
@click.option("--write-samples", is_flag=True, help="Also write the K samples as sample_0.tif ...")
@click.option("--input-sensor", default="auto", show_default=True, type=click.Choice(["auto", *sensor_names()]),
              help="Sensor that made the RGB (recorded in the outputs); auto reads the raster's metadata and "
                   "file name, else a generic camera.")
@consistency_options
@scene_options
@click.option("--overwrite", is_flag=True, help="Replace an existing output folder.")
@progress_option
def diversity(rgb: str, out_dir: str, samples: int, model: str | None, seed: int, steps: int,
              write_samples: bool, input_sensor: str, rgb_consistency: str, rgb_correction: str,
              scene: dict[str, Any], overwrite: bool, progress_mode: str) -> None:
    """Synthesize K samples from RGB and measure their diversity into OUT_DIR.

    Writes mean.tif, spread.tif (std, angular spread), sd_map.tif, sdm_map.tif, report.json,
    report.md, report.html and PNG figures. The samples are made RGB-consistent as synthesize makes
    them (--rgb-consistency, --rgb-correction), so the numbers describe the cubes synthesize writes.

    Example: hyperldm-engine diversity ortho.tif ortho_diversity --samples 5 --aoi fields.gpkg --workers 2
    """
    from hyperldm_engine.pipeline.diversity import DiversityJob, output_paths, run_diversity
    from hyperldm_engine.pipeline.synthesize import SamplingOptions

    job = DiversityJob(input=rgb, output_dir=out_dir, model=resolve_model(model),
                       sampling=SamplingOptions(samples=samples, seed=seed, steps=steps),
                       write_samples=write_samples, overwrite=overwrite, input_sensor=input_sensor,
                       rgb_consistency=rgb_consistency, rgb_correction=rgb_correction, **scene)
    report = run_diversity(job, progress_mode=progress_mode)
    values = {key: report[key] for key in ("sd", "sdm", "sdm_is_variant", "sd_present_mean")}
    finish("diversity", progress_mode, output_paths(out_dir, samples, write_samples), values=values,
           seconds=report["timings"]["total_s"],
           text=f"SD {report['sd']:.4f} SDM {report['sdm']:.4f}" if progress_mode == "none" else None,
           note=f"SD {report['sd']:.4f} (present classes {report['sd_present_mean']:.4f}), "
                f"SDM {report['sdm']:.4f} (IS-like variant {report['sdm_is_variant']:.4f}); "
                f"wrote {out_dir} in {report['timings']['total_s']:.1f} s")


COMMANDS = [diversity]
