"""``hyperldm-engine experiment``: the paper's noise sweep (Table IV) and downstream test (Table VI)."""

from __future__ import annotations

from dataclasses import replace

import click

_progress = click.option("--progress", "progress_mode", type=click.Choice(["bar", "json", "none"]), default="bar",
                         show_default=True)


@click.group("experiment")
def experiment() -> None:
    """Reproduce the paper's experiments on simulated scenes (results.json, results.md, figures)."""


@experiment.command("noise-sweep")
@click.argument("out_dir", type=click.Path(file_okay=False))
@click.option("--model", default=None, help="Model bundle; default: the bundled model.")
@click.option("--scenes", type=click.IntRange(min=1), default=None, help="Held-out test scenes [2].")
@click.option("--train-scenes", type=click.IntRange(min=1), default=None, help="Fine-tuning scenes [2].")
@click.option("--size", type=click.IntRange(min=32), default=None, help="Scene side in pixels [128].")
@click.option("--samples", type=click.IntRange(min=2), default=None, help="Samples K per scene [5].")
@click.option("--steps", type=click.IntRange(min=1), default=None, help="DDIM steps [10].")
@click.option("--iterations", type=click.IntRange(min=1), default=None,
              help="Stage-2 fine-tuning iterations per noise scale [100].")
@click.option("--no-finetune", is_flag=True, help="Only the sampling-time rescale variant.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--device", default="cpu", show_default=True)
@click.option("--quick", is_flag=True, help="Tiny settings for tests (numbers are meaningless).")
@click.option("--overwrite", is_flag=True)
@_progress
def noise_sweep(out_dir: str, model: str | None, scenes: int | None, train_scenes: int | None, size: int | None,
                samples: int | None, steps: int | None, iterations: int | None, no_finetune: bool, seed: int,
                device: str, quick: bool, overwrite: bool, progress_mode: str) -> None:
    """SD, SDM, MPSNR, SAM at 0.5x / 1x / 2x the noise maximum, fine-tuned and sampling-time rescaled."""
    from hyperldm_cli.cmd_synthesize import resolve_model

    from hyperldm_engine.experiments.noise_sweep import NoiseSweepSettings, run_noise_sweep
    from hyperldm_engine.progress import emit_json

    s = NoiseSweepSettings.quick() if quick else NoiseSweepSettings()
    given = {"scenes": scenes, "train_scenes": train_scenes, "size": size, "samples": samples, "steps": steps,
             "iterations": iterations}
    s = replace(s, **{k: v for k, v in given.items() if v is not None}, seed=seed, device=device,
                finetune=not no_finetune)
    result = run_noise_sweep(resolve_model(model), out_dir, s, overwrite=overwrite, progress_mode=progress_mode)
    _done(out_dir, result, progress_mode, ["results.json", "results.md", "noise_sweep.png"], emit_json)


@experiment.command("downstream")
@click.argument("out_dir", type=click.Path(file_okay=False))
@click.option("--model", default=None, help="Model bundle; default: the bundled model.")
@click.option("--train-scenes", type=click.IntRange(min=1), default=None, help="Training scenes [3].")
@click.option("--test-scenes", type=click.IntRange(min=1), default=None, help="Held-out test scenes [2].")
@click.option("--size", type=click.IntRange(min=16), default=None, help="Scene side in pixels [128].")
@click.option("--iterations", type=click.IntRange(min=1), default=None, help="Network training iterations [300].")
@click.option("--steps", type=click.IntRange(min=1), default=None, help="DDIM steps of the synthesis [10].")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--device", default="cpu", show_default=True)
@click.option("--quick", is_flag=True, help="Tiny settings for tests (numbers are meaningless).")
@click.option("--overwrite", is_flag=True)
@_progress
def downstream(out_dir: str, model: str | None, train_scenes: int | None, test_scenes: int | None,
               size: int | None, iterations: int | None, steps: int | None, seed: int, device: str, quick: bool,
               overwrite: bool, progress_mode: str) -> None:
    """OA, AA, kappa of one segmentation network on RGB, 1 or 5 synthetic HSIs per RGB, and the real HSI."""
    from hyperldm_cli.cmd_synthesize import resolve_model

    from hyperldm_engine.experiments.downstream import DownstreamSettings, run_downstream
    from hyperldm_engine.progress import emit_json

    s = DownstreamSettings.quick() if quick else DownstreamSettings()
    given = {"train_scenes": train_scenes, "test_scenes": test_scenes, "size": size, "iterations": iterations,
             "steps": steps}
    s = replace(s, **{k: v for k, v in given.items() if v is not None}, seed=seed, device=device)
    result = run_downstream(resolve_model(model), out_dir, s, overwrite=overwrite, progress_mode=progress_mode)
    names = ["results.json", "results.md"] + [f"confusion_{r['input']}.png" for r in result["rows"]]
    _done(out_dir, result, progress_mode, names, emit_json)


def _done(out_dir: str, result: dict, mode: str, names: list[str], emit_json) -> None:
    from pathlib import Path

    outputs = {n: str(Path(out_dir) / n) for n in names}
    if mode == "json":
        emit_json("done", outputs=outputs, seconds=result["seconds"])
    else:
        click.echo((Path(out_dir) / "results.md").read_text())


COMMANDS = [experiment]
