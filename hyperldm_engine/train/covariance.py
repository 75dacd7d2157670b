"""The model's spectral error covariance: the prior of the covariance-weighted RGB correction.

``--rgb-correction spectral`` (``spectral.consistency``) corrects each sample with
``C S^T (S C S^T)^-1 (rgb - S I)``. The C that makes this the best linear update is the second
moment of the errors the sampler's cubes make, ``E[(truth - sample)(truth - sample)^T]``: it says how an
error the RGB can see (too red, too dark) goes with errors it cannot see (the near infrared). This
module measures it on training patches, with the synthesis sampler's own settings (DDIM, eta 1,
decoded without consistency), the bundle frozen; ``bundle.consistency_covariance`` stores it.
On the quality report's held-out scenes this C gave one sample +4.3 dB over the smallest change and
+1.6 dB over the library's covariance (docs/model-diagnosis.md, "Covariance-weighted RGB correction").

:func:`anchor_fusion` measures what ``--rgb-correction anchored`` needs (``spectral.fusion``): a
degree-2 ridge from the normalised RGB to the cube on the training rows of every scene, and the joint
second moments of the samples' errors and their disagreement with that ridge. The moments are
cross-fitted: each scene's patches are compared with a ridge fitted on the *other* scenes, so the gain
trusts the anchor as much as it generalises to a scene it has not seen (with one scene there is no
other, and the record says the fit is in-sample). On the quality report's held-out scenes, in a first
measurement, cross-fitted gains gave a one-sample run 34.79 dB / SAM 0.130 against 34.44 / 0.137 from
in-sample ones; the bundled anchor gives 34.76 / 0.132 (docs/model-diagnosis.md, "Anchored RGB
correction").
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch

from hyperldm_engine.diffusion.samplers import DEFAULT_STEPS, make_sampler
from hyperldm_engine.diffusion.schedule import NoiseSchedule
from hyperldm_engine.models.bundle import ANCHORS
from hyperldm_engine.models.residual_cnn import ResidualCNN
from hyperldm_engine.spectral.consistency import with_jitter
from hyperldm_engine.spectral.fusion import (
    ANCHOR_DEGREE,
    CorrectionAnchor,
    JointAnchor,
    NetworkAnchor,
    RegressionAnchor,
    fusion_gain,
    network_cube,
    poly_features,
    predict_cube,
    ridge_weights,
)
from hyperldm_engine.train.align import sample_latents
from hyperldm_engine.train.baselines import CnnTraining, PairedScene, RidgeRegressor, train_residual_cnn
from hyperldm_engine.train.data import PatchSampler, TrainScene, scene_normaliser


@dataclass(frozen=True)
class CovarianceSettings:
    """``batches`` x ``batch_size`` patches of ``patch_size`` px, ``samples`` draws of each."""

    batches: int = 16
    batch_size: int = 4
    patch_size: int = 64
    samples: int = 2
    steps: int = DEFAULT_STEPS
    eta: float = 1.0
    jitter: float = 1e-6
    seed: int = 0
    anchor_batches: int = 32     # anchor_fusion: batches of batch_size patches in all, shared out over the scenes
    anchor_lam: float = 1e-6     # the anchor ridge's relative penalty (the quality report's ridge's)


@dataclass(frozen=True)
class CnnAnchorSettings:
    """The residual CNN of a ``kind="cnn"`` anchor (``models.residual_cnn``), trained with L1 and Adam on the
    training rows of every scene (``train.baselines.train_residual_cnn``). The default was measured
    on the quality report's held-out scenes against wider and deeper ones (docs/model-diagnosis.md, "A
    residual-CNN anchor"): width 24 and 3 blocks at 4000 iterations gave the fused mean of 8 35.22 dB, the
    report's width-48, 6-block CNN (six times the cost per pixel) at 500 iterations 35.06. Those are simulated
    scenes: on the real Landsat 8 check a network anchor did far worse than the ridge (NDVI r 0.710 against
    0.852), so the default model carries none."""

    width: int = 24
    blocks: int = 3
    iterations: int = 4000
    patch_size: int = 32
    batch_size: int = 8
    lr: float = 1e-3
    seed: int = 0


def error_covariance(bundle: Any, scenes: list[TrainScene], settings: CovarianceSettings | None = None
                     ) -> tuple[np.ndarray, dict[str, Any]]:
    """``E[e e^T]`` (n_bands, n_bands) of ``e = truth - decoded sample`` over valid pixels of training
    patches of ``scenes`` (their training rows), and what was measured (for the bundle's record)."""
    settings = settings or CovarianceSettings()
    t0 = time.perf_counter()
    torch.manual_seed(settings.seed)
    generator = torch.Generator().manual_seed(settings.seed)
    patches = PatchSampler(scenes, settings.patch_size, np.random.default_rng([settings.seed, 0xC0F]),
                           scene_normaliser, augment=None)
    draw = sample_decoder(bundle, settings, generator)
    n_bands = bundle.config.n_bands
    sums, count = np.zeros((n_bands, n_bands)), 0
    bundle.eval()
    with torch.no_grad():
        for _ in range(settings.batches):
            batch = patches.sample(settings.batch_size)
            decoded = draw(batch.rgb)
            err = (batch.hsi.repeat(settings.samples, 1, 1, 1) - decoded).double()
            ok = batch.valid.repeat(settings.samples, 1, 1)
            e = err.permute(0, 2, 3, 1)[ok].numpy()  # (n, n_bands)
            sums += e.T @ e
            count += len(e)
    if count == 0:
        raise ValueError("no valid training pixels to measure the error covariance on")
    mean_diag = float(np.mean(np.diag(sums / count)))
    covariance = with_jitter(sums / count, settings.jitter)
    info = {"source": f"errors of DDIM {settings.steps}-step samples on {count:,} training pixels of "
                      f"{len(scenes)} scene(s)",
            "settings": asdict(settings), "pixels": count, "rms_error": round(mean_diag ** 0.5, 5),
            "seconds": round(time.perf_counter() - t0, 1)}
    return covariance, info


def sample_decoder(bundle: Any, settings: CovarianceSettings, generator: torch.Generator,
                   abundances: bool = False) -> Any:
    """``draw(rgb (B, 3, p, p))``: ``settings.samples`` decoded draws of each patch (draw-major), with the
    synthesis sampler's settings, without RGB consistency: the cubes ``(samples * B, bands, p, p)``, or
    with ``abundances`` the decoder's output (``.hsi`` and ``.abundances``)."""
    v = bundle.vqgan
    sampler = make_sampler("ddim", NoiseSchedule.from_dict(bundle.schedule), settings.steps, eta=settings.eta,
                           clip_x0=bundle.codebook_range())

    def draw(rgb: torch.Tensor) -> Any:
        rgb = rgb.repeat(settings.samples, 1, 1, 1)
        latents = sample_latents(bundle.denoiser, sampler, bundle.config.denoiser.prediction, rgb,
                                 v.config.vqgan.latent_channels, v.factor, generator)
        out = v.decode(v.quantize(latents / float(bundle.latent_scale)).z_q, rgb, return_abundances=abundances)
        return out if abundances else out.hsi

    return draw


def scene_normal_equations(scene: TrainScene, degree: int = ANCHOR_DEGREE, target: np.ndarray | None = None,
                           keep: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``(X'X, X'Y)`` of a ridge on the valid pixels (and ``keep``) of ``scene``'s training rows: X the
    polynomial features of the RGB normalised as training normalises it, Y the cube (or ``target``,
    ``(n_targets, h, w)``)."""
    sample, ok = scene.statistics_sample()
    rows = int(scene.heldout_row0 or scene.shape[0])
    valid = np.asarray(scene.valid[:rows], bool)
    if keep is not None:
        valid &= np.asarray(keep[:rows], bool)
    rgb = scene_normaliser(np.asarray(scene.rgb[:, :rows]), sample, ok)[:, valid]
    x = poly_features(torch.from_numpy(rgb.T.astype(np.float64)), degree, dim=1).numpy()
    y = np.asarray(scene.hsi if target is None else target, np.float64)[:, :rows][:, valid].T
    return x.T @ x, x.T @ y


def scene_radiometries(scenes: list[TrainScene]) -> list[str]:
    """The RGB radiometries of ``scenes`` ("surface", "toa", "mixed"), as their RGB sources record them."""
    return sorted({str(s.rgb_source.get("radiometry", "surface")) for s in scenes})


#: the kinds of anchor :func:`anchor_fusion` measures (``models.correction_anchor.ANCHOR_KINDS``)
ANCHOR_FUSION_KINDS = ("ridge", "cnn", "ridge+cnn")


def anchor_fusion(bundle: Any, scenes: list[TrainScene], settings: CovarianceSettings | None = None,
                  degree: int = ANCHOR_DEGREE, kind: str = "ridge", cnn: CnnAnchorSettings | None = None
                  ) -> tuple[CorrectionAnchor, dict[str, Any]]:
    """The anchor of ``--rgb-correction anchored`` with its gain and fused covariance, and its record. ``kind``
    "ridge": a degree-``degree`` ridge on every scene's training rows, its gain from moments on training
    patches cross-fitted per scene; "cnn": a residual CNN trained on those rows (``cnn`` settings), its gain
    from in-sample moments (:func:`cnn_anchor`); "ridge+cnn": both, fused jointly (``spectral.fusion.JointAnchor``),
    the ridge's part cross-fitted and the network's in-sample."""
    if kind not in ANCHOR_FUSION_KINDS:
        raise ValueError(f"unknown anchor kind {kind!r}; one of {', '.join(ANCHOR_FUSION_KINDS)}")
    settings = settings or CovarianceSettings()
    t0 = time.perf_counter()
    info: dict[str, Any] = {"kind": kind}
    sources = []
    if kind != "cnn":
        equations = [scene_normal_equations(s, degree) for s in scenes]
        gram, xty = sum(e[0] for e in equations), sum(e[1] for e in equations)
        weights = ridge_weights(gram, xty, settings.anchor_lam)
        cross = len(scenes) > 1
        held_out = [ridge_weights(gram - e[0], xty - e[1], settings.anchor_lam) if cross else weights
                    for e in equations]
        info.update(degree=degree, lam=settings.anchor_lam, cross_fitted=cross)
        sources.append(f"degree-{degree} ridge ({'cross-fitted' if cross else 'in-sample'})")
    if kind != "ridge":
        cnn = cnn or CnnAnchorSettings()
        net, trained = cnn_anchor(scenes, cnn)
        info.update(training={k: v for k, v in asdict(trained).items() if k != "history"},
                    parameters=net.n_parameters, macs_per_pixel=net.macs_per_pixel())
        info["cross_fitted"] = False if kind == "cnn" else info["cross_fitted"]
        sources.append(f"residual CNN (width {cnn.width}, {cnn.blocks} blocks, {trained.iterations} iterations in "
                       f"{trained.seconds:.0f} s; in-sample)")

    def predict(i: int, rgb: torch.Tensor) -> torch.Tensor:
        maps = []
        if kind != "cnn":
            maps.append(predict_cube(held_out[i], rgb.double(), degree))
        if kind != "ridge":
            maps.append(network_cube(net, rgb).double())
        return torch.cat(maps, dim=-3)

    gain, residual, moments, count = _fusion_moments(bundle, scenes, settings, predict)
    covariance = with_jitter(residual, settings.jitter)
    anchor: CorrectionAnchor
    if kind == "ridge":
        anchor = RegressionAnchor(weights=weights, degree=degree, gain=gain, covariance=covariance)
    elif kind == "cnn":
        anchor = NetworkAnchor(net=net, gain=gain, covariance=covariance)
    else:
        anchor = JointAnchor(weights=weights, degree=degree, net=net, gain=gain, covariance=covariance)
    info.update({"source": f"{' and '.join(sources)} on the training rows of {len(scenes)} scene(s); "
                           f"{'joint ' if kind == 'ridge+cnn' else ''}gain from moments on {count:,} training pixels",
                 "pixels": count, "radiometries": scene_radiometries(scenes),
                 "rms_error_samples": round(float(np.mean(np.diag(moments["ee"] / count))) ** 0.5, 5),
                 "rms_error_fused": round(float(np.mean(np.diag(residual))) ** 0.5, 5),
                 "seconds": round(time.perf_counter() - t0, 1)})
    return anchor, info


def cnn_anchor(scenes: list[TrainScene], settings: CnnAnchorSettings) -> tuple[ResidualCNN, CnnTraining]:
    """A residual CNN from the normalised RGB (as training normalises it) to the cube, trained on the training
    rows of ``scenes``, its 1 x 1 branch started at the degree-1 ridge; frozen, in eval mode.

    Its fusion gain is measured in-sample, unlike the ridge's: a network cannot be refitted per scene for
    free, and cross-fitting on halves of the scenes measured worse on held-out scenes (a fused mean of 8
    34.31 dB against 35.06 in-sample, width 48): the half-data networks are weaker than the one shipped,
    so their gain under-trusts it. The network has ~42,000 parameters for ~10^6 training pixels."""
    pairs = [PairedScene.from_train_scene(s) for s in scenes]
    patch = min(settings.patch_size, *(p.row_end for p in pairs), *(p.rgb.shape[-1] for p in pairs))
    with torch.random.fork_rng(devices=[]):
        net, trained = train_residual_cnn(pairs, settings.iterations, width=settings.width, blocks=settings.blocks,
                                          patch_size=patch, batch_size=settings.batch_size, lr=settings.lr,
                                          seed=settings.seed, init=RidgeRegressor.fit_scenes(pairs, 1))
    return net.eval().requires_grad_(False), trained


def _fusion_moments(bundle: Any, scenes: list[TrainScene], settings: CovarianceSettings,
                    predict: Callable[[int, torch.Tensor], torch.Tensor]
                    ) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray], int]:
    """The fusion gain, the fused centre's error second moment, the joint moments and the pixel count, measured
    on ``settings.anchor_batches`` batches of training patches shared out over ``scenes``, with the anchor
    ``predict(scene index, normalised rgb (B, 3, p, p))``."""
    torch.manual_seed(settings.seed)
    generator = torch.Generator().manual_seed(settings.seed)
    per_scene = max(1, round(settings.anchor_batches / len(scenes)))
    draw = sample_decoder(bundle, settings, generator)
    moments: dict[str, Any] = {k: 0.0 for k in ("ee", "ed", "dd")}  # (n_bands, n_bands), (n_bands, n_anchor), ...
    count = 0
    bundle.eval()
    with torch.no_grad():
        for i, scene in enumerate(scenes):
            patches = PatchSampler([scene], settings.patch_size, np.random.default_rng([settings.seed, 0xA7C, i]),
                                   scene_normaliser, augment=None)
            for _ in range(per_scene):
                batch = patches.sample(settings.batch_size)
                decoded = draw(batch.rgb).double()
                truth = batch.hsi.double().repeat(settings.samples, 1, 1, 1)
                anchor = predict(i, batch.rgb).double().repeat(settings.samples, 1, 1, 1)
                ok = batch.valid.repeat(settings.samples, 1, 1)
                e = (truth - decoded).permute(0, 2, 3, 1)[ok].numpy()
                # a joint anchor stacks several maps of the cube: each is compared with the same samples
                copies = anchor.shape[1] // decoded.shape[1]
                d = (anchor - decoded.repeat(1, copies, 1, 1)).permute(0, 2, 3, 1)[ok].numpy()
                moments["ee"] += e.T @ e
                moments["ed"] += e.T @ d
                moments["dd"] += d.T @ d
                count += len(e)
    if count == 0:
        raise ValueError("no valid training pixels to measure the anchor's fusion on")
    gain, residual = fusion_gain(*(moments[k] / count for k in ("ee", "ed", "dd")))
    return gain, residual, moments, count


def attach_anchor_fusion(bundle: Any, scenes: list[TrainScene], settings: CovarianceSettings | None = None,
                         key: str = "anchor", kind: str = "ridge", cnn: CnnAnchorSettings | None = None
                         ) -> dict[str, Any]:
    """Measure :func:`anchor_fusion` and store it in ``bundle`` under ``key``: "anchor" (``correction_anchor``,
    surface input), "anchor_toa" (top-of-atmosphere input) or "anchor_mean" (``--mode mean``), recorded in
    ``consistency_info[key]``; the bundle must carry its error covariance already."""
    if key not in ANCHORS:
        raise ValueError(f"unknown anchor key {key!r}; one of {', '.join(ANCHORS)}")
    if bundle.consistency_covariance is None:
        raise ValueError("measure the error covariance first (attach_error_covariance): the anchor is stored with it")
    anchor, info = anchor_fusion(bundle, scenes, settings, kind=kind, cnn=cnn)
    setattr(bundle, ANCHORS[key], anchor)
    bundle.consistency_info = {**(bundle.consistency_info or {}), key: info}
    return info


def attach_error_covariance(bundle: Any, scenes: list[TrainScene], settings: CovarianceSettings | None = None
                            ) -> dict[str, Any]:
    """Measure :func:`error_covariance` and store it in ``bundle`` (``consistency_covariance``)."""
    covariance, info = error_covariance(bundle, scenes, settings)
    bundle.consistency_covariance = covariance
    bundle.consistency_info = info
    return info

