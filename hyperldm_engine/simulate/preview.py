"""PNG preview of a simulated scene: the RGB image, the label map and mean spectra per class."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from hyperldm_engine.io.atomic import atomic_path
from hyperldm_engine.simulate.scene import Scene


def class_mean_spectra(scene: Scene) -> dict[str, np.ndarray]:
    """Mean spectrum (n_bands,) of every class present in the scene."""
    flat = scene.labels.ravel()
    cube = scene.hsi.reshape(scene.hsi.shape[0], -1)
    counts = np.bincount(flat, minlength=len(scene.class_names))
    sums = np.stack([np.bincount(flat, weights=b, minlength=len(scene.class_names)) for b in cube], 1)
    return {scene.class_names[k]: sums[k] / counts[k] for k in np.flatnonzero(counts)}


def save_scene_preview(scene: Scene, path: str | Path, overwrite: bool = False, max_side: int = 768) -> Path:
    """Write ``path`` (PNG): RGB (2-98 % stretch), labels, class mean spectra vs wavelength (nm)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.colors import ListedColormap
    from matplotlib.figure import Figure

    from hyperldm_engine.io.preview import stretch

    step = max(1, int(np.ceil(max(scene.width, scene.height) / max_side)))
    rgb = stretch(np.moveaxis(scene.rgb[:, ::step, ::step], 0, -1))
    colours = ["#1f5fa8", "#1b6e2a", "#7cc46a", "#d9c13a", "#c8a27a", "#8c5a3c", "#555555", "#aaaaaa",
               "#c8443c", "#e0d8c8", "#4f9a94", "#f2e3a0", "#f4f4f4"]
    fig = Figure(figsize=(15, 5), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.subplots(1, 3)
    ax[0].imshow(rgb)
    source = scene.params.get("input_sensor", "camera")
    ax[0].set_title(f"RGB ({source}), {scene.width} x {scene.height} px, GSD {scene.gsd_m:g} m")
    ax[1].imshow(scene.labels[::step, ::step], cmap=ListedColormap(colours[: len(scene.class_names)]),
                 vmin=-0.5, vmax=len(scene.class_names) - 0.5, interpolation="nearest")
    ax[1].set_title("land cover")
    for a in ax[:2]:
        a.set_axis_off()
    wl = scene.sensor.centers_nm
    for name, spec in class_mean_spectra(scene).items():
        ax[2].plot(wl, spec, label=name, color=colours[scene.class_names.index(name) % len(colours)])
    ax[2].set_xlabel("wavelength (nm)")
    ax[2].set_ylabel("reflectance x illumination")
    ax[2].set_title("class mean spectra")
    ax[2].legend(fontsize=7)
    fig.tight_layout()
    final = Path(path)
    with atomic_path(final, overwrite=overwrite) as tmp:
        fig.savefig(tmp, format="png")
    return final
