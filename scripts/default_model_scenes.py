"""What the scripts that refine the bundled default model share: the bundle to start from and its
training scenes (the recorded ones, simulated again, plus N of the simulator's mixed real-world plan)."""

from __future__ import annotations

import argparse
from typing import Any

from hyperldm_engine.experiments.quality import QualitySettings, training_scenes
from hyperldm_engine.models.bundle import default_bundle_path, load_bundle
from hyperldm_engine.train.data import heldout_row0
from hyperldm_engine.train.default_plan import scene_plan, simulate_training_scenes
from hyperldm_engine.train.run import unify_classes


def add_scene_arguments(ap: argparse.ArgumentParser, what: str) -> None:
    """``--init`` and the ``--real-world-*`` options."""
    ap.add_argument("--init", default=None, help=f"bundle to {what} (default: the bundled default model)")
    ap.add_argument("--real-world-scenes", type=int, default=0,
                    help="also N scenes of the simulator's mixed real-world plan (satellites, cameras, TOA)")
    ap.add_argument("--real-world-size", type=int, default=256)
    ap.add_argument("--real-world-seed", type=int, default=200)


def bundle_and_scenes(args: argparse.Namespace, patch_size: int) -> tuple[Any, list[Any], dict[str, Any]]:
    """The bundle (``--init`` or the default), its training scenes and how they were made."""
    bundle = load_bundle(args.init or str(default_bundle_path()))
    scenes, info = training_scenes(bundle, QualitySettings(), "none")
    if args.real_world_scenes:
        scenes, info["real_world"] = with_real_world(scenes, args.real_world_scenes, args.real_world_size,
                                                     args.real_world_seed, patch_size)
    return bundle, scenes, info


def with_real_world(scenes: list[Any], n: int, size: int, seed: int, patch_size: int) -> tuple[list[Any], list[str]]:
    """``scenes`` plus ``n`` scenes of the simulator's mixed real-world plan (a new list), and how those were made."""
    specs = scene_plan(n, seed)
    extra = simulate_training_scenes(specs, size, log=lambda _m: None)
    for s in extra:
        s.heldout_row0 = heldout_row0(s.shape[0], patch_size, 0.1, s.name)
    out = list(scenes) + extra
    unify_classes(out)
    return out, [spec.describe(size) for spec in specs]
