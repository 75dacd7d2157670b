"""Measure a bundle's spectral error covariance and correction anchors; store them in it (``train.covariance``).

The covariance is the prior of ``--rgb-correction spectral`` and ``ensemble``, the anchors with their fusion
gains that of ``anchored``: for surface input the degree-2 ridge (``--anchor-kind``: or a residual CNN, or
both fused jointly), for ``--mode mean`` none by default (``--mean-anchor ridge+cnn``: the ridge and a
residual CNN fused jointly, more accurate on simulated scenes but worse on real imagery, see
docs/model-diagnosis.md; the mean mode then uses the surface anchor), for top-of-atmosphere input a ridge
measured on hazy real-world colours too; with labelled scenes, also the abundances' class-group prior
(``train.group_prior``). They are measured on the bundle's recorded training scenes (simulated again,
train split of the spectra, training rows only), optionally with N scenes of the simulator's mixed
real-world plan, and the bundle's record says how.

    .venv/bin/python scripts/measure_error_covariance.py OUT_BUNDLE [--init BUNDLE] [--batches 16]
        [--real-world-scenes 0] [--anchor-kind cnn] [--anchor-iterations 4000]
"""

from __future__ import annotations

import argparse
import shlex
import sys

from default_model_scenes import add_scene_arguments, bundle_and_scenes, with_real_world

from hyperldm_engine.models.bundle import save_bundle
from hyperldm_engine.train.covariance import (
    ANCHOR_FUSION_KINDS,
    CnnAnchorSettings,
    CovarianceSettings,
    attach_anchor_fusion,
    attach_error_covariance,
)
from hyperldm_engine.train.group_prior import attach_group_prior


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out")
    add_scene_arguments(ap, "measure")
    ap.add_argument("--batches", type=int, default=CovarianceSettings.batches)
    ap.add_argument("--batch-size", type=int, default=CovarianceSettings.batch_size)
    ap.add_argument("--samples", type=int, default=CovarianceSettings.samples)
    ap.add_argument("--toa-real-world-scenes", type=int, default=8,
                    help="the anchor for top-of-atmosphere input is measured on the scenes plus N of the mixed "
                         "real-world plan (surface and TOA; the default model's decoder was aligned on these 8); "
                         "0: none")
    ap.add_argument("--anchor-kind", choices=ANCHOR_FUSION_KINDS, default="ridge",
                    help="the anchor for surface input in sample mode: the degree-2 ridge (which keeps the samples' "
                         "diversity), a residual CNN or both fused jointly")
    ap.add_argument("--mean-anchor", choices=(*ANCHOR_FUSION_KINDS, "none"), default="none",
                    help="an anchor of its own for --mode mean on surface input (default none: the surface anchor "
                         "serves it; ridge+cnn was the most accurate on simulated scenes and worse on the real check)")
    ap.add_argument("--anchor-iterations", type=int, default=CnnAnchorSettings.iterations,
                    help="training iterations of a CNN anchor")
    ap.add_argument("--anchor-width", type=int, default=CnnAnchorSettings.width)
    ap.add_argument("--anchor-blocks", type=int, default=CnnAnchorSettings.blocks)
    ap.add_argument("--overwrite", action="store_true")
    args = ap.parse_args()
    settings = CovarianceSettings(batches=args.batches, batch_size=args.batch_size, samples=args.samples)
    bundle, scenes, info = bundle_and_scenes(args, settings.patch_size)
    record = attach_error_covariance(bundle, scenes, settings)
    cnn = CnnAnchorSettings(width=args.anchor_width, blocks=args.anchor_blocks, iterations=args.anchor_iterations)
    anchor = attach_anchor_fusion(bundle, scenes, settings, kind=args.anchor_kind, cnn=cnn)
    # nothing stale from --init is kept
    toa = mean = bundle.correction_anchor_toa = bundle.correction_anchor_mean = bundle.abundance_prior = None
    if args.mean_anchor != "none":
        mean = attach_anchor_fusion(bundle, scenes, settings, key="anchor_mean", kind=args.mean_anchor, cnn=cnn)
    if args.toa_real_world_scenes:
        toa_scenes, described = with_real_world(scenes, args.toa_real_world_scenes, args.real_world_size,
                                                args.real_world_seed, settings.patch_size)
        toa = {**attach_anchor_fusion(bundle, toa_scenes, settings, key="anchor_toa"), "real_world": described}
        bundle.consistency_info["anchor_toa"] = toa
    groups = attach_group_prior(bundle, scenes, settings)
    if groups is not None:
        bundle.abundance_prior_info = {**groups, "command": "scripts/measure_error_covariance.py "
                                       + shlex.join(sys.argv[1:])}
    bundle.consistency_info = {**bundle.consistency_info, "scenes": info,
                               "command": "scripts/measure_error_covariance.py " + shlex.join(sys.argv[1:])}
    save_bundle(args.out, bundle, overwrite=args.overwrite)
    print(f"saved {args.out}: {record['source']}, RMS error {record['rms_error']}, {record['seconds']} s; "
          f"anchor: {anchor['source']}, RMS error {anchor['rms_error_samples']} -> {anchor['rms_error_fused']}, "
          f"{anchor['seconds']} s; mean-mode anchor: "
          + ("none" if mean is None else f"{mean['source']}, RMS error {mean['rms_error_samples']} -> "
                                         f"{mean['rms_error_fused']}, {mean['seconds']} s")
          + "; TOA anchor: "
          + ("none" if toa is None else f"{toa['source']}, RMS error {toa['rms_error_samples']} -> "
                                        f"{toa['rms_error_fused']}")
          + "; abundance group prior: "
          + ("none (no labelled scene)" if groups is None else
             f"power {groups['power']} (agreement by power {groups['agreement_by_power']}), {groups['seconds']} s"))


if __name__ == "__main__":
    main()
