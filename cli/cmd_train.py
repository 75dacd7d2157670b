"""``hyperldm-engine train``: train (or fine-tune) a HyperLDM bundle on a user's scene."""

from __future__ import annotations

from pathlib import Path

import click
from hyperldm_cli.common import finish, progress_option

from hyperldm_engine.models.config import PRESETS
from hyperldm_engine.spectral.input_sensors import names as sensor_names
from hyperldm_engine.train.default_plan import PRESET_SETTINGS

_PATH = click.Path(exists=True, dir_okay=False, path_type=Path)


@click.command("train")
@click.argument("hsi", type=_PATH)
@click.argument("out_bundle", type=click.Path(path_type=Path))
@click.option("--rgb", type=_PATH, help="RGB raster on the HSI's grid (default: derived through a camera response).")
@click.option("--labels", type=_PATH, help="Class raster on the HSI's grid; trains the spectral classifier.")
@click.option("--wavelengths", type=_PATH, help="Band centres (and FWHM) in nm, when the HSI does not carry them.")
@click.option("--config", "preset", type=click.Choice(PRESETS), default="small", show_default=True,
              help="Model preset: small (the paper's method at CPU-friendly sizes, as the bundled model), paper "
                   "(the paper's sizes) or default (experimental: latent dropout, x0-prediction, Min-SNR, "
                   "abundance prior; see docs/training.md for what it measured).")
@click.option("--iterations", type=click.IntRange(min=0), default=None,
              help="Iterations of each of the two stages (default 2000 each).")
@click.option("--vq-iterations", type=click.IntRange(min=0), default=None, help="Stage-1 (VQGAN) iterations.")
@click.option("--diffusion-iterations", type=click.IntRange(min=0), default=None,
              help="Stage-2 (latent diffusion) iterations.")
@click.option("--classifier-iterations", type=click.IntRange(min=0), default=None,
              help="Classifier iterations (with --labels; default 500).")
@click.option("--anchor-iterations", type=click.IntRange(min=0), default=None,
              help="Latent-anchor iterations after the stages (default 0: no anchor, the paper's model; "
                   "experimental). The anchor gives --mode mean and starts sampling near the RGB's latent "
                   "(docs/training.md).")
@click.option("--align-iterations", type=click.IntRange(min=0), default=None,
              help="Decoder-alignment iterations after the stages (default 0: the paper's decoder): the "
                   "decoder is fine-tuned on the denoiser's own samples as well as the encoder's latents "
                   "(docs/training.md).")
@click.option("--patch-size", type=click.IntRange(min=8), default=64, show_default=True,
              help="Training patch side in pixels (a multiple of the model's alignment, e.g. 32 for small).")
@click.option("--batch-size", type=click.IntRange(min=1), default=8, show_default=True)
@click.option("--init", "init_bundle", type=click.Path(exists=True, path_type=Path),
              help="Fine-tune from this bundle (same bands and library).")
@click.option("--device", type=click.Choice(["cpu", "cuda", "auto"]), default="auto", show_default=True)
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True)
@click.option("--checkpoint-every", type=click.IntRange(min=0), default=200, show_default=True,
              help="Write a checkpoint every N iterations (0: only at the end and on interruption).")
@click.option("--checkpoint-dir", type=click.Path(file_okay=False, path_type=Path),
              help="Checkpoint folder (default OUT_BUNDLE.checkpoints).")
@click.option("--restart", is_flag=True, help="Ignore existing checkpoints and start from scratch.")
@click.option("--no-augment", is_flag=True, help="Train on the clean RGB only (no radiometric augmentation).")
@progress_option
@click.option("--input-sensor", default="auto", show_default=True,
              type=click.Choice(["auto", *sensor_names()]),
              help="Sensor that made the RGB, recorded in the bundle's training provenance; auto: the --rgb "
                   "raster's metadata and file name (else a generic camera), or nikon-5100 when the RGB is "
                   "derived from the cube.")
@click.option("--overwrite", is_flag=True, help="Replace an existing OUT_BUNDLE.")
def train(hsi: Path, out_bundle: Path, rgb: Path | None, labels: Path | None, wavelengths: Path | None,
          preset: str, iterations: int | None, vq_iterations: int | None, diffusion_iterations: int | None,
          classifier_iterations: int | None, anchor_iterations: int | None, align_iterations: int | None,
          patch_size: int, batch_size: int,
          init_bundle: Path | None,
          device: str, seed: int, checkpoint_every: int, checkpoint_dir: Path | None, restart: bool,
          no_augment: bool, progress_mode: str, overwrite: bool, input_sensor: str = "auto") -> None:
    """Train a model bundle on HSI (+ RGB, + labels); the last 10% of rows are held out for the report.

    Writes OUT_BUNDLE (config.json + weights.safetensors), OUT_BUNDLE.report.md and
    OUT_BUNDLE.loss.png. Interrupted runs (Ctrl-C, SIGTERM, kill) resume when the same command is
    run again. Several processes: torchrun --nproc_per_node 2 -m hyperldm_cli.main train ...

    Example: hyperldm-engine train scene/hsi.tif my_model --labels scene/labels.tif --iterations 500
    """
    from hyperldm_engine.contract import TRAIN_SUFFIXES
    from hyperldm_engine.io.output_paths import check_outputs, file_output, folder_output
    from hyperldm_engine.train.align import DEFAULT_ALIGN_ITERATIONS
    from hyperldm_engine.train.anchor import DEFAULT_ANCHOR_ITERATIONS
    from hyperldm_engine.train.data import load_scene
    from hyperldm_engine.train.loop import TrainSettings
    from hyperldm_engine.train.run import train_bundle

    bundle_out = (file_output(out_bundle, "the output bundle") if out_bundle.suffix.lower() == ".zip"
                  else folder_output(out_bundle, "the output bundle"))
    check_outputs([bundle_out, file_output(f"{out_bundle}.report.md", "the training report"),
                   file_output(f"{out_bundle}.loss.png", "the loss plot")],
                  [hsi, rgb, labels, wavelengths, init_bundle], overwrite)  # before any work
    base = TrainSettings()

    def given(*values: int | None) -> int:  # the first value given: the stage's option, --iterations, the default
        return next(v for v in values if v is not None)

    settings = TrainSettings(
        vq_iterations=given(vq_iterations, iterations, base.vq_iterations),
        diffusion_iterations=given(diffusion_iterations, iterations, base.diffusion_iterations),
        classifier_iterations=0 if labels is None else given(classifier_iterations, base.classifier_iterations),
        anchor_iterations=given(anchor_iterations, DEFAULT_ANCHOR_ITERATIONS),
        align_iterations=given(align_iterations, DEFAULT_ALIGN_ITERATIONS),
        patch_size=patch_size, batch_size=batch_size, seed=seed, checkpoint_every=checkpoint_every,
        augment=not no_augment, **PRESET_SETTINGS[preset])
    scene = load_scene(hsi, rgb, labels, wavelengths)
    provenance = {"command": "hyperldm-engine train", "hsi": str(hsi), "rgb": str(rgb) if rgb else None,
                  "labels": str(labels) if labels else None, **_input_sensor(input_sensor, rgb)}
    metrics = train_bundle([scene], out_bundle, settings, preset=preset, init_bundle=init_bundle, device=device,
                           checkpoint_dir=checkpoint_dir, restart=restart, progress=progress_mode,
                           overwrite=overwrite, provenance=provenance)
    if not metrics and not _is_main():
        return
    outputs = {"bundle": str(out_bundle),
               **{role: str(out_bundle) + suffix for role, suffix in TRAIN_SUFFIXES.items()}}
    synth = metrics.get("synthesis") or {}
    finish("train", progress_mode, outputs, values=metrics,
           note=f"wrote {out_bundle}; held-out synthesis MPSNR {synth.get('mpsnr')} dB, "
                f"SAM {synth.get('sam')} rad; report {outputs['report']}")


def _input_sensor(name: str, rgb: Path | None) -> dict[str, str]:
    """The resolved input sensor and how it was decided (recorded, not yet used by training)."""
    from hyperldm_engine.spectral.input_sensors import AUTO, input_sensor_of

    if name == AUTO and rgb is None:
        return {"input_sensor": "nikon-5100", "input_sensor_from": "derived from the cube (Nikon 5100 response)"}
    choice = input_sensor_of(rgb or "", name)  # a named sensor reads no raster
    return {"input_sensor": choice.name, "input_sensor_from": choice.source}


def _is_main() -> bool:
    import os

    return int(os.environ.get("RANK", "0")) == 0


COMMANDS = [train]
