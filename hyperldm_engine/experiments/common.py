"""Shared pieces of the experiments: simulated scenes, in-memory synthesis of K samples, softmaxes."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hyperldm_engine.pipeline.synthesize import SamplingOptions, SynthesisTileFn
from hyperldm_engine.tiling.runner import TileRequest

#: seeds of the experiments' scenes: training scenes from 0, held-out scenes from 1000 (held_out=True).
TRAIN_SEED0 = 0
TEST_SEED0 = 1000


@dataclass
class SimScene:
    """An in-memory simulated scene: cube (bands, h, w), camera RGB (3, h, w), labels (h, w)."""

    hsi: np.ndarray
    rgb: np.ndarray
    labels: np.ndarray
    class_names: list[str]
    seed: int
    held_out: bool
    raw: Any = None


def simulated_scenes(n: int, size: int, held_out: bool, seed0: int | None = None) -> list[SimScene]:
    """``n`` simulated ``size x size`` scenes (seeds ``seed0 ...``), from the held-out spectra if asked."""
    from hyperldm_engine.simulate.scene import simulate_scene

    start = (TEST_SEED0 if held_out else TRAIN_SEED0) if seed0 is None else seed0
    out = []
    for i in range(n):
        s = simulate_scene(size, size, seed=start + i, held_out=held_out)
        out.append(SimScene(hsi=s.hsi.astype(np.float32), rgb=s.rgb.astype(np.float32),
                            labels=s.labels.astype(np.int64), class_names=list(s.class_names),
                            seed=start + i, held_out=held_out, raw=s))
    return out


def rgb_statistics(rgb: np.ndarray) -> Any:
    """Scene-level RGB statistics of an in-memory RGB, by the same rule as ``io.raster.scene_statistics``."""
    from hyperldm_engine.train.data import sample_statistics

    flat = rgb.reshape(3, -1)
    ok = np.all(np.isfinite(flat), axis=0)
    return sample_statistics(flat, ok)


def synthesize_in_memory(bundle_path: str, rgb: np.ndarray, options: SamplingOptions,
                         device: str = "cpu") -> np.ndarray:
    """K cubes ``(K, bands, h, w)`` from one in-memory RGB, as one tile of the scene pipeline."""
    h, w = rgb.shape[-2:]
    fn = SynthesisTileFn(bundle_path, options, rgb_statistics(rgb), device=device)
    from rasterio.windows import Window

    req = TileRequest(window=Window(0, 0, w, h), rgb=rgb.astype(np.float32), mask=np.ones((h, w), bool),
                      row=0, col=0, latent_row0=0, latent_col0=0, align=1)
    out = fn(req)
    return np.stack([out[f"s{k}"] for k in range(options.samples)])


def classifier_probabilities(bundle_path: str, cubes: np.ndarray, device: str = "cpu") -> np.ndarray:
    """Softmax ``(K, n_s, h, w)`` of the bundle's spectral classifier on cubes ``(K, bands, h, w)``."""
    import torch

    from hyperldm_engine.errors import BundleError
    from hyperldm_engine.pipeline.synthesize import _load_state

    bundle = _load_state(bundle_path, device, "ddim", 1, 0.0, None)[0]
    if bundle.classifier is None:
        raise BundleError(f"{bundle_path}: the model has no spectral classifier; SD and SDM need one")
    with torch.inference_mode():
        x = torch.from_numpy(np.ascontiguousarray(cubes, dtype=np.float32)).to(device)
        return bundle.classifier.probabilities_cube(x).float().cpu().numpy()


def display_path(path: str | Path) -> str:
    """``path`` relative to the working directory when it lies below it (readable, machine-independent)."""
    p = Path(path).resolve()
    try:
        return p.relative_to(Path.cwd().resolve()).as_posix()
    except ValueError:
        return str(path)
