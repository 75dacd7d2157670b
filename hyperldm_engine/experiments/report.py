"""Figures and Markdown of the experiments' results (off-screen matplotlib)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from hyperldm_engine.pipeline.report import _figure, markdown_table, save_figure

NOISE_COLUMNS = (("sd", "SD"), ("sd_present_mean", "SD (present)"), ("sdm", "SDM"),
                 ("sdm_is_variant", "SDM (IS-like)"), ("mpsnr_db", "MPSNR (dB)"), ("sam_rad", "SAM (rad)"))


def markers(name: str) -> tuple[str, str]:
    """The HTML comments that delimit a generated section ``name`` inside a hand-written Markdown file."""
    return f"<!-- {name}:start -->", f"<!-- {name}:end -->"


def has_section(text: str, name: str) -> bool:
    start, end = markers(name)
    i = text.find(start)
    return i >= 0 and text.find(end, i) > i


def replace_marked_section(text: str, body: str, name: str, title: str = "# Results") -> str:
    """``text`` with its generated section ``name`` replaced by ``body``; everything outside the markers is
    kept. Without the markers the section is appended (under ``title``, if any, when ``text`` is empty)."""
    start, end = markers(name)
    block = f"{start}\n{body.rstrip()}\n{end}"
    if has_section(text, name):
        i = text.find(start)
        j = text.find(end, i)
        return text[:i] + block + text[j + len(end):]
    if not text.strip():
        return f"{title}\n\n{block}\n" if title else f"{block}\n"
    return text.rstrip("\n") + "\n\n" + block + "\n"


def update_section(path: str | Path, body: str, name: str) -> None:
    """Re-read ``path`` just before writing and replace only its section ``name``, atomically."""
    from hyperldm_engine.io.atomic import atomic_path

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = path.read_text() if path.exists() else ""
    with atomic_path(path, overwrite=True) as tmp:
        Path(tmp).write_text(replace_marked_section(text, body, name))


def noise_sweep_figure(result: dict[str, Any], path: Path) -> str:
    """SD, SDM, MPSNR and SAM against the noise scale, one line per variant."""
    fig = _figure(10, 6)
    axes = fig.subplots(2, 3).ravel()
    variants = sorted({r["variant"] for r in result["rows"]})
    for ax, (key, title) in zip(axes, NOISE_COLUMNS, strict=True):
        for v in variants:
            rows = sorted((r for r in result["rows"] if r["variant"] == v), key=lambda r: r["noise_scale"])
            ax.plot([r["noise_scale"] for r in rows], [r[key] for r in rows], marker="o", label=v)
        ax.set_xscale("log", base=2)
        ax.set_xticks([0.5, 1, 2], ["0.5x", "1x", "2x"])
        ax.set_title(title, fontsize=10)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.supxlabel("noise maximum (x default; paper M = 0.01 / 0.02 / 0.04)")
    return save_figure(fig, path)


def noise_sweep_markdown(result: dict[str, Any]) -> str:
    s = result["settings"]
    headers = ["variant", "noise scale", "M"] + [t for _, t in NOISE_COLUMNS] + ["fine-tune s"]
    rows = [[r["variant"], f"{r['noise_scale']:g}x", f"{r['M']:g}"] + [r[k] for k, _ in NOISE_COLUMNS]
            + [r["finetune_s"]] for r in result["rows"]]
    return "\n".join([
        "# Noise sweep (paper Table IV)", "",
        f"- model: `{result['model']}`",
        f"- {s['scenes']} held-out simulated scenes of {s['size']} px (seeds {result['test_scenes']}), "
        f"K = {s['samples']} samples, DDIM {s['steps']} steps, seed {s['seed']}",
        f"- **fine-tuned**: stage 2 (denoiser) only, VQGAN frozen, {s['iterations']} iterations per scale "
        f"(batch {s['batch_size']}, {s['patch_size']} px patches, lr {s['lr']:g}) on training scenes "
        f"{result['train_scenes']}; every scale (1x too) gets the same budget.",
        "- **sampling-time rescale**: the unchanged model sampled with rescaled betas (not the paper's "
        "experiment: the model was trained with the 1x schedule).",
        "- SD: sample 0, pooled over scenes; SDM, MPSNR, SAM: mean over scenes (MPSNR/SAM mean over samples).",
        f"- total {result['seconds']:.0f} s", "",
        markdown_table(headers, rows), "",
        "Paper (DFC 2018): SD and SDM rise with the noise maximum. ![noise sweep](noise_sweep.png)", "",
    ])


def confusion_figure(confusion: np.ndarray, names: list[str], title: str, path: Path) -> str:
    """Row-normalised confusion matrix (recall per true class) with counts."""
    c = np.asarray(confusion, dtype=np.float64)
    norm = c / np.maximum(c.sum(axis=1, keepdims=True), 1)
    fig = _figure(1.2 + 0.7 * len(names), 1.0 + 0.6 * len(names))
    ax = fig.subplots()
    im = ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    for i in range(len(names)):
        for j in range(len(names)):
            ax.text(j, i, f"{int(c[i, j])}", ha="center", va="center", fontsize=7,
                    color="white" if norm[i, j] > 0.5 else "black")
    ax.set_xticks(range(len(names)), names, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(len(names)), names, fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title, fontsize=9)
    fig.colorbar(im, ax=ax, shrink=0.8)
    return save_figure(fig, path)


def downstream_markdown(result: dict[str, Any]) -> str:
    s = result["settings"]
    rows = [[r["input"], r["channels"], r["train_inputs_per_rgb"], r["oa"], r["aa"], r["kappa"], r["paper_oa"]]
            for r in result["rows"]]
    figs = [f"![{r['input']}](confusion_{r['input']}.png)" for r in result["rows"]]
    return "\n".join([
        "# Downstream classification (paper Table VI)", "",
        f"- model: `{result['model']}`; classes: {', '.join(result['classes'])}",
        f"- training scenes {result['train_scenes']}, held-out test scenes {result['test_scenes']}, {s['size']} px",
        f"- network: 4 conv 3x3 (width {s['width']}) + 1x1, {s['iterations']} iterations, batch {s['batch_size']} "
        f"crops of {s['crop']} px, Adam lr {s['lr']:g}, seed {s['seed']}",
        "- test inputs: RGB for rgb; one synthetic HSI of the test RGB for synthetic_x1/x5; the reference "
        "HSI for reference_hsi",
        f"- synthesis {result['synthesis_s']:.0f} s, total {result['seconds']:.0f} s", "",
        markdown_table(["input", "channels", "inputs per RGB", "OA", "AA", "kappa", "paper OA"], rows), "",
        "AA = mean recall over classes present in the test scenes.", "", *figs, "",
    ])
