"""Shared helpers of the benchmark scripts: machine state, scenes, timed synthesis, seam statistics.

Benchmarks print plain ``key: value`` lines so that the numbers can be pasted into RESULTS.md.
The machine they were written on is shared (2 cores, ~8 users): compare ratios measured in one run.
"""

from __future__ import annotations

import hashlib
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import rasterio
import torch

from hyperldm_engine.pipeline.scene import SceneJob, synthesize_scene
from hyperldm_engine.pipeline.synthesize import SamplingOptions, bundle_summary
from hyperldm_engine.tiling.seams import SeamStats, seam_statistic
from hyperldm_engine.tiling.windows import scene_grid

ROOT = Path(__file__).resolve().parents[1]


def default_model() -> str:
    """The bundled default model when it exists, else the lead's probe model."""
    from hyperldm_engine.models.bundle import default_bundle_path

    path = default_bundle_path(must_exist=False)
    return str(path) if (Path(path) / "config.json").exists() else "/work/scratch/probe_model"


def machine_state() -> str:
    """One line: host, CPU count, load averages, torch threads and version."""
    load = os.getloadavg()
    return (f"machine: {platform.node()} cpus={os.cpu_count()} load={load[0]:.2f},{load[1]:.2f},{load[2]:.2f} "
            f"torch={torch.__version__} threads={torch.get_num_threads()} python={platform.python_version()}")


def simulated_scene(folder: Path, size: int, seed: int = 3, gsd: float = 2.0) -> Path:
    """``hyperldm-engine simulate`` a ``size`` x ``size`` scene into ``folder`` (reused if present)."""
    rgb = folder / "rgb.tif"
    if not rgb.exists():
        subprocess.run([sys.executable, "-m", "hyperldm_cli.main", "simulate", str(folder), "--size", str(size),
                        str(size), "--seed", str(seed), "--gsd", str(gsd), "--progress", "none", "--overwrite"],
                       check=True)
    return rgb


def synthesize(rgb: Path, out: Path, model: str, *, tile: int = 256, overlap: int = 64, steps: int | None = None,
               seed: int = 0, samples: int = 1, workers: int | None = None, scheduler: str | None = None,
               autocast: str | None = None, creation_options: tuple[str, ...] = ()) -> tuple[float, object]:
    """Run the real scene pipeline; returns (wall seconds, RunStats)."""
    sampling = SamplingOptions(samples=samples, seed=seed,
                               **({} if steps is None else {"steps": steps}))
    job = SceneJob(input=str(rgb), output=str(out), model=model, sampling=sampling, tile=tile, overlap=overlap,
                   workers=workers, scheduler=scheduler, overwrite=True, autocast=autocast,
                   creation_options=creation_options)
    t0 = time.perf_counter()
    _, stats = synthesize_scene(job, progress_mode="none")
    return time.perf_counter() - t0, stats


def read_cube(path: Path) -> np.ndarray:
    with rasterio.open(path) as ds:
        return ds.read().astype(np.float32)


def seams_of(path: Path, model: str, tile: int, overlap: int) -> SeamStats:
    """Seam statistic of a synthesized file on the grid that produced it."""
    cube = read_cube(path)
    grid = scene_grid(cube.shape[2], cube.shape[1], tile, overlap, align=bundle_summary(model)["factor"])
    return seam_statistic(cube, grid, mask=np.isfinite(cube).all(0) & (cube > -9000).all(0))


def file_hash(path: Path) -> str:
    """SHA-256 of the pixel values (not of the file: tags hold no time, but be safe)."""
    return hashlib.sha256(read_cube(path).tobytes()).hexdigest()[:16]
