"""``hyperldm-engine simulate``: a georeferenced hyperspectral scene from real spectra."""

from __future__ import annotations

from pathlib import Path

import click


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
@click.option("--abundances", is_flag=True, help="Also write abundances.tif (endmember fractions).")
@click.option("--overwrite", is_flag=True, help="Replace existing files in OUT_DIR.")
@click.option("--progress", "progress_mode", type=click.Choice(["bar", "json", "none"]), default="bar",
              show_default=True)
def simulate(out_dir: Path, size: tuple[int, int], seed: int, gsd: float, crs_epsg: int, held_out: bool,
             abundances: bool, overwrite: bool, progress_mode: str) -> None:
    """Simulate a land-cover scene and write hsi.tif, rgb.tif, labels.tif, scene.json, preview.png.

    Example: hyperldm-engine simulate scenes/s0 --size 1024 1024 --seed 0 --gsd 1
    """
    from hyperldm_engine.errors import OutputError
    from hyperldm_engine.progress import Progress, emit_json
    from hyperldm_engine.simulate.preview import save_scene_preview
    from hyperldm_engine.simulate.scene import simulate_scene, write_scene

    if out_dir.exists() and not out_dir.is_dir():
        raise OutputError(f"{out_dir}: exists and is not a folder")
    if not overwrite and (out_dir / "hsi.tif").exists():  # refuse before the computation
        raise OutputError(f"{out_dir / 'hsi.tif'}: the output already exists; use --overwrite to replace it")
    width, height = size
    with Progress(5, "simulate", mode=progress_mode, unit="step") as progress:
        scene = simulate_scene(width, height, seed, gsd_m=gsd, crs_epsg=crs_epsg, held_out=held_out,
                               progress=progress)
        paths = write_scene(scene, out_dir, overwrite=overwrite, abundances=abundances)
        paths["preview"] = save_scene_preview(scene, out_dir / "preview.png", overwrite=overwrite)
        progress.advance(1, message="written")
    outputs = {k: str(v) for k, v in paths.items()}
    if progress_mode == "json":
        emit_json("done", outputs=outputs, seconds=scene.params["seconds"])
    else:
        click.echo(f"wrote {out_dir} ({width} x {height} px, GSD {gsd:g} m, "
                   f"simulated in {scene.params['seconds']:.1f} s)", err=True)


COMMANDS = [simulate]
