"""``hyperldm-engine simulate``: a georeferenced hyperspectral scene from real spectra."""

from __future__ import annotations

from pathlib import Path

import click
from hyperldm_cli.common import finish, progress_option


@click.command("simulate")
@click.argument("out_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--size", nargs=2, type=click.IntRange(min=8), default=(512, 512), show_default=True,
              metavar="W H", help="Scene width and height in pixels.")
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True,
              help="Random seed; the same seed gives the same scene.")
@click.option("--gsd", type=float, default=1.0, show_default=True,
              help="Ground sampling distance in metres (objects have real sizes).")
@click.option("--crs", "crs_epsg", type=int, default=32633, show_default=True,
              help="EPSG code of the projected (UTM) CRS.")
@click.option("--held-out", is_flag=True,
              help="Use the held-out spectra and random stream (disjoint from training scenes).")
@click.option("--input-sensor", default=None, metavar="NAME",
              help="Sensor that makes rgb.tif: generic-camera, nikon-5100, sigma-sdmerill, sentinel2-msi, "
                   "sentinel2b-msi, landsat8-oli, landsat7-etm, paper-bands, or mixed (one per scene). "
                   "Default: the Nikon 5100 camera, as before.")
@click.option("--radiometry", type=click.Choice(["surface", "toa", "camera", "mixed"]), default="surface",
              show_default=True, help="State of rgb.tif: surface reflectance, top-of-atmosphere reflectance "
                                      "(path radiance, haze), camera values (exposure, white balance, gamma, "
                                      "8/16-bit), or mixed (one per scene). hsi.tif is always the surface cube.")
@click.option("--landscape", type=click.Choice(["balanced", "agricultural", "forest", "urban", "coastal", "mixed"]),
              default=None, help="Land-cover layout with the modelled surfaces (water model, wet soil, beaches, "
                                 "marsh, crop stages, clouds at GSD >= 5 m); default: the original layout.")
@click.option("--abundances", is_flag=True, help="Also write abundances.tif (endmember fractions).")
@click.option("--overwrite", is_flag=True, help="Replace existing files in OUT_DIR.")
@progress_option
def simulate(out_dir: Path, size: tuple[int, int], seed: int, gsd: float, crs_epsg: int, held_out: bool,
             input_sensor: str | None, radiometry: str, landscape: str | None, abundances: bool, overwrite: bool,
             progress_mode: str) -> None:
    """Simulate a land-cover scene and write hsi.tif, rgb.tif, labels.tif, scene.json, preview.png.

    Example: hyperldm-engine simulate scenes/s0 --size 1024 1024 --seed 0 --gsd 1

    Real-world RGB: hyperldm-engine simulate scenes/l8 --size 256 256 --gsd 30 --input-sensor landsat8-oli
    --radiometry toa --landscape mixed
    """
    from hyperldm_engine.io.output_paths import check_outputs, file_output, folder_output
    from hyperldm_engine.progress import Progress
    from hyperldm_engine.simulate.preview import save_scene_preview
    from hyperldm_engine.simulate.scene import simulate_scene, write_scene

    check_metre_crs(crs_epsg)
    names = ["hsi.tif", "rgb.tif", "labels.tif", *(["abundances.tif"] if abundances else []), "scene.json",
             "preview.png"]
    check_outputs([folder_output(out_dir, existing_ok=True), *(file_output(out_dir / n) for n in names)],
                  [], overwrite)  # refuse before the computation
    width, height = size
    with Progress(5, "simulate", mode=progress_mode, unit="step") as progress:
        scene = simulate_scene(width, height, seed, gsd_m=gsd, crs_epsg=crs_epsg, held_out=held_out,
                               progress=progress, input_sensor=input_sensor, radiometry=radiometry,
                               landscape=landscape)
        paths = write_scene(scene, out_dir, overwrite=overwrite, abundances=abundances)
        paths["preview"] = save_scene_preview(scene, out_dir / "preview.png", overwrite=overwrite)
        progress.advance(1, message="written")
    outputs = {k: str(v) for k, v in paths.items()}
    finish("simulate", progress_mode, outputs, seconds=scene.params["seconds"],
           note=f"wrote {out_dir} ({width} x {height} px, GSD {gsd:g} m, "
                f"simulated in {scene.params['seconds']:.1f} s)")


def check_metre_crs(epsg: int) -> None:
    """``--crs`` must be a projected CRS in metres: the scene's objects and ``--gsd`` are in metres
    (EPSG:2263, in US feet, wrote 2-foot pixels while reporting 2 m). Refused otherwise, saying why."""
    from pyproj import CRS

    from hyperldm_engine.errors import InputError

    try:
        crs = CRS.from_epsg(int(epsg))
    except Exception:
        raise InputError(f"--crs {epsg}: not a known EPSG code (e.g. 32633 for UTM zone 33N)") from None
    units = {(a.unit_name or "").lower() for a in crs.axis_info}
    if not crs.is_projected or not units or not units <= {"metre", "meter"}:
        kind = "geographic (degrees)" if crs.is_geographic else f"in {', '.join(sorted(units)) or 'unknown units'}"
        raise InputError(f"--crs {epsg}: {crs.name} is {kind}; simulate needs a projected CRS in metres "
                         "because --gsd is in metres (e.g. a UTM zone such as 32633); nothing was converted")


COMMANDS = [simulate]
