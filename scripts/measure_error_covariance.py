"""Measure a bundle's spectral error covariance and store it in the bundle (``train.covariance``).

The covariance is the prior of ``--rgb-correction spectral``. It is measured on the bundle's recorded
training scenes (simulated again, train split of the spectra, training rows only), optionally with
N scenes of the simulator's mixed real-world plan, and the bundle's record says how.

    .venv/bin/python scripts/measure_error_covariance.py OUT_BUNDLE [--init BUNDLE] [--batches 16]
        [--real-world-scenes 0]
"""

from __future__ import annotations

import argparse
import shlex
import sys

from hyperldm_engine.experiments.quality import QualitySettings, training_scenes
from hyperldm_engine.models.bundle import default_bundle_path, load_bundle, save_bundle
from hyperldm_engine.train.covariance import CovarianceSettings, attach_error_covariance
from hyperldm_engine.train.data import heldout_row0
from hyperldm_engine.train.default_plan import scene_plan, simulate_training_scenes
from hyperldm_engine.train.run import unify_classes


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out")
    ap.add_argument("--init", default=None, help="bundle to measure (default: the bundled default model)")
    ap.add_argument("--batches", type=int, default=CovarianceSettings.batches)
    ap.add_argument("--batch-size", type=int, default=CovarianceSettings.batch_size)
    ap.add_argument("--samples", type=int, default=CovarianceSettings.samples)
    ap.add_argument("--real-world-scenes", type=int, default=0,
                    help="also N scenes of the simulator's mixed real-world plan (satellites, cameras, TOA)")
    ap.add_argument("--real-world-size", type=int, default=256)
    ap.add_argument("--real-world-seed", type=int, default=200)
    ap.add_argument("--overwrite", action="store_true")
    args = ap.parse_args()
    bundle = load_bundle(args.init or str(default_bundle_path()))
    settings = CovarianceSettings(batches=args.batches, batch_size=args.batch_size, samples=args.samples)
    scenes, info = training_scenes(bundle, QualitySettings(), "none")
    if args.real_world_scenes:
        specs = scene_plan(args.real_world_scenes, args.real_world_seed)
        extra = simulate_training_scenes(specs, args.real_world_size, log=lambda _m: None)
        for s in extra:
            s.heldout_row0 = heldout_row0(s.shape[0], settings.patch_size, 0.1, s.name)
        scenes = scenes + extra
        unify_classes(scenes)
        info["real_world"] = [spec.describe(args.real_world_size) for spec in specs]
    record = attach_error_covariance(bundle, scenes, settings)
    bundle.consistency_info = {**record, "scenes": info,
                               "command": "scripts/measure_error_covariance.py " + shlex.join(sys.argv[1:])}
    save_bundle(args.out, bundle, overwrite=args.overwrite)
    print(f"saved {args.out}: {record['source']}, RMS error {record['rms_error']}, {record['seconds']} s")


if __name__ == "__main__":
    main()
