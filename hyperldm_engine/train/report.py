"""Held-out evaluation of a trained model and the human training report beside the bundle.

The bundle folder may hold only ``config.json`` and ``weights.safetensors``, so the numbers go
into ``config.json``'s ``metrics`` and the report is written next to the bundle:
``<OUT_BUNDLE>.report.md`` and ``<OUT_BUNDLE>.loss.png`` (loss curves of the three stages).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import torch

from hyperldm_engine.diffusion.samplers import DDIMSampler
from hyperldm_engine.io.atomic import atomic_path
from hyperldm_engine.metrics.similarity import similarity_metrics
from hyperldm_engine.train.data import Normaliser, TrainScene, heldout_patches, labelled_pixels

METRIC_KEYS = ("rmse", "mrae", "sam", "mpsnr", "mssim")


def _finite(d: dict[str, Any]) -> dict[str, Any]:
    return {k: (float(v) if isinstance(v, (int, float)) and math.isfinite(v) else None) for k, v in d.items()}


def _mean_metrics(pred: torch.Tensor, ref: torch.Tensor, valid: torch.Tensor) -> dict[str, float | None]:
    rows = [similarity_metrics(p.numpy(), r.numpy(), m.numpy()) for p, r, m in zip(pred, ref, valid, strict=True)]
    out = {}
    for k in METRIC_KEYS:
        vals = [float(r[k]) for r in rows if k in r and r[k] is not None and math.isfinite(float(r[k]))]
        out[k] = float(np.mean(vals)) if vals else None
    return out


@torch.no_grad()
def evaluate_heldout(trainer, scenes: list[TrainScene], normaliser: Normaliser, sampler_steps: int = 20,
                     seed: int = 0, max_patches: int = 8) -> dict[str, Any]:
    """Reconstruction (VQGAN) and synthesis (DDIM, eta 0) metrics on held-out patches; classifier accuracy."""
    vq, den = trainer.vqgan.eval(), trainer.denoiser.eval()
    device, p = trainer.device, trainer.settings.patch_size
    gen = torch.Generator().manual_seed(seed)
    recon_rows, synth_rows, n_patches = [], [], 0
    sampler = DDIMSampler(trainer.schedule, min(sampler_steps, trainer.schedule.num_steps), eta=0.0)
    for scene in scenes:
        batch = heldout_patches(scene, p, normaliser, trainer.settings.min_valid, max_patches)
        if batch is None:
            continue
        n_patches += batch.hsi.shape[0]
        hsi, rgb = batch.hsi.to(device), batch.rgb.to(device)
        rec = vq(hsi, rgb).hsi.cpu()
        recon_rows.append((rec, batch.hsi, batch.valid))
        cond = den.encode_condition(rgb)
        f = trainer.config.vqgan.downsample_factor
        shape = (hsi.shape[0], trainer.config.vqgan.latent_channels, p // f, p // f)
        x_T = torch.randn(shape, generator=gen).to(device)
        x0 = sampler.sample(lambda x, t, c=cond: den(x, torch.full((x.shape[0],), t, device=device), c), x_T,
                            lambda i, s=shape: torch.randn(s, generator=gen).to(device))
        syn = vq.decode(x0 / trainer.state.scale, rgb, return_abundances=False).hsi.cpu()
        synth_rows.append((syn, batch.hsi, batch.valid))
    result: dict[str, Any] = {"heldout_patches": n_patches, "patch_size": p, "sampler": f"ddim-{sampler_steps}"}
    if recon_rows:
        cat = [torch.cat(x) for x in zip(*recon_rows, strict=True)]
        result["reconstruction"] = _mean_metrics(*cat)
        cat = [torch.cat(x) for x in zip(*synth_rows, strict=True)]
        result["synthesis"] = _mean_metrics(*cat)
    if trainer.classifier is not None:
        x, y = labelled_pixels(scenes, "heldout", max_pixels=50_000, rng=np.random.default_rng(seed))
        if y.size:
            clf = trainer.classifier.eval()
            pred = torch.cat([clf(torch.from_numpy(x[i:i + 8192]).to(device)).argmax(1).cpu()
                              for i in range(0, y.size, 8192)])
            result["classifier_accuracy"] = float((pred.numpy() == y).mean())
            result["classifier_pixels"] = int(y.size)
    return result


def report_paths(out_bundle: str | Path) -> tuple[Path, Path]:
    out = Path(out_bundle)
    return out.with_name(out.name + ".report.md"), out.with_name(out.name + ".loss.png")


def plot_losses(history: dict[str, list[list[float]]], path: Path) -> None:
    """One panel per stage: loss against iteration (log scale where positive)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    stages = [s for s in ("vq", "diffusion", "classifier") if history.get(s)]
    fig, axes = plt.subplots(1, max(len(stages), 1), figsize=(4 * max(len(stages), 1), 3), squeeze=False)
    titles = {"vq": "stage 1: VQGAN", "diffusion": "stage 2: latent diffusion", "classifier": "classifier"}
    for ax, stage in zip(axes[0], stages, strict=False):
        h = np.asarray(history[stage], float)
        ax.plot(h[:, 0], h[:, 1], lw=0.6, alpha=0.5)
        if h.shape[0] >= 20:
            k = max(h.shape[0] // 20, 2)
            smooth = np.convolve(h[:, 1], np.ones(k) / k, mode="valid")
            ax.plot(h[k - 1:, 0], smooth, lw=1.5)
        if np.all(h[:, 1] > 0):
            ax.set_yscale("log")
        ax.set_title(titles[stage])
        ax.set_xlabel("iteration")
    axes[0][0].set_ylabel("loss")
    fig.tight_layout()
    with atomic_path(path, overwrite=True) as tmp:
        fig.savefig(tmp, dpi=100, format="png")
    plt.close(fig)


def _fmt(v: Any) -> str:
    return "n/a" if v is None else (f"{v:.4g}" if isinstance(v, float) else str(v))


def write_report(out_bundle: str | Path, config: dict[str, Any], metrics: dict[str, Any],
                 history: dict[str, list[list[float]]], seconds: float) -> tuple[Path, Path]:
    """Write ``<OUT>.report.md`` and ``<OUT>.loss.png`` atomically; return their paths."""
    md, png = report_paths(out_bundle)
    plot_losses(history, png)
    tr = config["training"]
    lines = [f"# Training report: {Path(out_bundle).name}", "",
             f"- model preset: {config['model']['preset']}, {config['model']['n_bands']} bands, "
             f"library of {config['model']['n_library']} spectra",
             f"- iterations: VQGAN {tr['settings']['vq_iterations']}, diffusion "
             f"{tr['settings']['diffusion_iterations']}, classifier {tr['settings']['classifier_iterations']}; "
             f"patch {tr['settings']['patch_size']} px, batch {tr['settings']['batch_size']}, "
             f"seed {tr['settings']['seed']}, {tr.get('world_size', 1)} process(es)",
             f"- latent scale factor: {config['latent_scale']:.4g}",
             f"- training GSD: {_fmt(tr['gsd_m'])} m; scenes: "
             + ", ".join(s["name"] for s in tr["provenance"]["scenes"]),
             f"- wall time: {seconds / 60:.1f} min", "",
             "## Held-out metrics", "",
             f"{metrics.get('heldout_patches', 0)} held-out patches (last rows of each scene, never trained on); "
             f"synthesis with {metrics.get('sampler')} from the clean RGB.", "",
             "| | RMSE | MRAE | SAM (rad) | MPSNR (dB) | MSSIM |", "|---|---|---|---|---|---|"]
    for key in ("reconstruction", "synthesis"):
        if key in metrics:
            m = metrics[key]
            lines.append(f"| {key} | " + " | ".join(_fmt(m.get(k)) for k in METRIC_KEYS) + " |")
    if "classifier_accuracy" in metrics:
        lines += ["", f"Classifier accuracy on {metrics['classifier_pixels']} held-out labelled pixels: "
                  f"{metrics['classifier_accuracy']:.3f}"]
    lines += ["", f"![losses]({png.name})", ""]
    with atomic_path(md, overwrite=True) as tmp:
        Path(tmp).write_text("\n".join(lines), encoding="utf-8")
    return md, png


def jsonable_metrics(metrics: dict[str, Any]) -> dict[str, Any]:
    """Metrics with NaN/inf replaced by None (config.json is strict JSON)."""
    out: dict[str, Any] = {}
    for k, v in metrics.items():
        if isinstance(v, dict):
            out[k] = _finite(v)
        elif isinstance(v, float):
            out[k] = v if math.isfinite(v) else None
        else:
            out[k] = v
    return out
