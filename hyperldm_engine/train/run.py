"""Train a bundle from scenes: the one entry point used by the CLI and the default-model script.

Sets up the sensor (the scenes' wavelengths and FWHM), the decoder library resampled to it, the
model config, the trainer and its checkpoints, runs the iterations (resuming automatically), then
on rank 0 evaluates on the held-out rows, writes the bundle with ``save_bundle`` and the report
beside it, and removes the checkpoints. SIGINT/SIGTERM: checkpoint, no bundle, ``Interrupted``.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch

from hyperldm_engine.diffusion.schedule import NoiseSchedule
from hyperldm_engine.errors import BundleError, InputError, OutputError
from hyperldm_engine.models.config import ModelConfig
from hyperldm_engine.progress import Progress, report_info
from hyperldm_engine.train import checkpoint as ckpt
from hyperldm_engine.train.augment import AugmentConfig
from hyperldm_engine.train.data import TrainScene, heldout_row0, scene_normaliser
from hyperldm_engine.train.distributed import DistContext, init_distributed, shutdown
from hyperldm_engine.train.loop import StopRequest, Trainer, TrainSettings, fingerprint
from hyperldm_engine.train.report import evaluate_heldout, jsonable_metrics, write_report
from hyperldm_engine.train.stage2 import latent_scale

DEFAULT_CAMERA = "Nikon 5100 (NPL)"


def _check_sensor(scenes: list[TrainScene]) -> tuple[np.ndarray, np.ndarray]:
    wl, fwhm = scenes[0].wavelengths_nm, scenes[0].fwhm_nm
    for s in scenes[1:]:
        if s.wavelengths_nm.shape != wl.shape or not np.allclose(s.wavelengths_nm, wl, atol=0.5):
            raise InputError(f"{s.name}: its band wavelengths differ from those of {scenes[0].name}; "
                             "all training scenes must come from one sensor")
    return wl, fwhm


def unify_classes(scenes: list[TrainScene]) -> list[str]:
    """One class list over all scenes (by name, first-seen order); labels remapped in place."""
    names: list[str] = []
    for s in scenes:
        for n in s.class_names:
            if n not in names:
                names.append(n)
    for s in scenes:
        if s.labels is not None and s.class_names != names:
            lut = np.array([names.index(n) for n in s.class_names] + [-1])
            s.labels = np.where(s.labels >= 0, lut[s.labels], -1)
            s.class_names = list(names)
    return names


def estimate_response(scenes: list[TrainScene], max_pixels: int = 20000) -> np.ndarray:
    """Non-negative least-squares camera response ``(3, n_bands)`` mapping the cube to the given RGB."""
    from scipy.optimize import nnls

    rng = np.random.default_rng(0)
    xs, ys = [], []
    for s in scenes:
        ok = np.flatnonzero(s.valid.ravel())
        pick = rng.choice(ok, min(ok.size, max_pixels), replace=False)
        xs.append(s.hsi.reshape(s.hsi.shape[0], -1)[:, pick].T)
        ys.append(s.rgb.reshape(3, -1)[:, pick].T)
    x, y = np.concatenate(xs).astype(np.float64), np.concatenate(ys).astype(np.float64)
    return np.stack([nnls(x, y[:, c])[0] for c in range(3)]).astype(np.float32)


def measure_correction_prior(bundle: Any, scenes: list[TrainScene], settings: TrainSettings, progress: str) -> None:
    """Store the trained model's spectral error covariance and regression anchor in ``bundle``
    (``train.covariance``), the priors of ``--rgb-correction spectral``, ``ensemble`` and ``anchored``, and,
    where the labels name land-cover groups, the abundances' class-group prior (``train.group_prior``):
    seconds of sampling on the training patches."""
    from hyperldm_engine.train.covariance import CovarianceSettings, attach_anchor_fusion, attach_error_covariance

    measure = CovarianceSettings(patch_size=settings.patch_size, seed=settings.seed)
    info = attach_error_covariance(bundle, scenes, measure)
    report_info(f"error covariance for --rgb-correction spectral: RMS error {info['rms_error']} on "
                f"{info['pixels']:,} pixels ({info['seconds']} s)", progress)
    anchor = attach_anchor_fusion(bundle, scenes, measure)
    report_info(f"regression anchor for --rgb-correction anchored: {anchor['source']}; RMS error "
                f"{anchor['rms_error_samples']} -> {anchor['rms_error_fused']} ({anchor['seconds']} s)", progress)
    from hyperldm_engine.train.group_prior import attach_group_prior

    groups = attach_group_prior(bundle, scenes, measure)
    if groups is not None:
        report_info(f"abundances' class-group prior: power {groups['power']} (labelled-pixel agreement "
                    f"{groups['agreement_by_power']['0.0']} without, {max(groups['agreement_by_power'].values())} "
                    f"with; {groups['seconds']} s)", progress)


def attach_anchor(bundle: Any, scenes: list[TrainScene], settings: TrainSettings, progress: str) -> None:
    """Train the latent anchor (``train.anchor``) on the frozen VQGAN of ``bundle`` and attach it."""
    from hyperldm_engine.models.anchor import AnchorConfig
    from hyperldm_engine.train.anchor import AnchorSettings, train_anchor

    config = AnchorConfig()
    anchor_settings = AnchorSettings(iterations=settings.anchor_iterations, seed=settings.seed,
                                     patch_size=min(32, settings.patch_size), augment=settings.augment)
    with Progress(settings.anchor_iterations, "anchor", mode=progress) as bar:
        anchor, info = train_anchor(bundle.vqgan, bundle.latent_scale, scenes, config, anchor_settings, bar)
    bundle.anchor = anchor
    bundle.anchor_info = {"config": config.to_dict(),
                          "training": {k: v for k, v in info.items() if k != "history"}}


def align_to_sampler(bundle: Any, scenes: list[TrainScene], settings: TrainSettings, progress: str) -> None:
    """Fine-tune the decoder side of ``bundle`` on its sampler's latents (``train.align``) and record it."""
    from hyperldm_engine.train.align import AlignSettings, align_decoder

    align = AlignSettings(iterations=settings.align_iterations, seed=settings.seed, augment=settings.augment,
                          patch_size=max(settings.patch_size, 32))
    with Progress(settings.align_iterations, "align", mode=progress) as bar:
        info = align_decoder(bundle, scenes, align, bar)
    bundle.training = {**(bundle.training or {}), "decoder_alignment": {k: v for k, v in info.items()
                                                                          if k != "history"}}


def _data_digest(scenes: list[TrainScene]) -> str:
    h = hashlib.sha256()
    for s in scenes:
        h.update(repr((s.name, s.hsi.shape, s.heldout_row0)).encode())
        step = max(1, s.hsi.shape[1] // 64)
        h.update(np.ascontiguousarray(s.hsi[:, ::step, ::step]).tobytes())
        h.update(np.ascontiguousarray(s.rgb[:, ::step, ::step]).tobytes())
        if s.labels is not None:
            h.update(np.ascontiguousarray(s.labels[::step, ::step]).tobytes())
    return h.hexdigest()[:20]


def train_bundle(scenes: list[TrainScene], out_bundle: str | Path, settings: TrainSettings,
                 preset: str = "small", config: ModelConfig | None = None, init_bundle: str | Path | None = None,
                 device: str = "auto", checkpoint_dir: str | Path | None = None, restart: bool = False,
                 progress: str = "bar", overwrite: bool = False, library_size: int = 300,
                 provenance: dict[str, Any] | None = None, ctx: DistContext | None = None,
                 stop_after: int | None = None) -> dict[str, Any]:
    """Train and write the bundle; returns its metrics (rank 0) or {} (other ranks)."""
    from hyperldm_engine.models.bundle import Bundle, load_bundle, save_bundle
    from hyperldm_engine.spectral.library import decoder_library
    from hyperldm_engine.spectral.sensor import Sensor

    start = time.monotonic()
    out_bundle = Path(out_bundle)
    if (out_bundle.exists() or out_bundle.is_symlink()) and not overwrite:
        raise OutputError(f"{out_bundle}: the output already exists; use --overwrite to replace it")
    if not out_bundle.parent.is_dir():
        raise OutputError(f"{out_bundle}: the output folder {out_bundle.parent} does not exist")
    ctx = ctx or init_distributed(device)
    try:
        wl, fwhm = _check_sensor(scenes)
        for s in scenes:
            s.heldout_row0 = heldout_row0(s.shape[0], settings.patch_size, settings.heldout_fraction, s.name)
        class_names = unify_classes(scenes) if any(s.labels is not None for s in scenes) else []
        sensor = Sensor(wl, fwhm, "training-scene")
        R, lib_meta = decoder_library(sensor, size=library_size)
        init = None
        if init_bundle is not None:
            init = load_bundle(init_bundle)
            if init.config.n_bands != len(wl) or not np.allclose(init.sensor_centers_nm, wl, atol=0.5):
                raise BundleError(f"{init_bundle}: the model has {init.config.n_bands} bands at other wavelengths "
                                  f"than the training scene ({len(wl)} bands); fine-tuning needs the same sensor")
            if tuple(init.library.shape) != R.shape or not np.allclose(init.library.numpy(), R, atol=1e-4):
                raise BundleError(f"{init_bundle}: its decoder library differs from the library for this sensor; "
                                  "fine-tuning needs the same library (train from scratch instead)")
            if config is None:
                config = init.config  # else: the given config (same shapes; e.g. a new prediction type)
        if config is None:
            config = ModelConfig.preset_named(preset, n_bands=len(wl), n_library=R.shape[1],
                                              n_classes=max(len(class_names), 1))
        if class_names and config.n_classes != len(class_names):
            config = config.replace(n_classes=len(class_names))
        init_weights = None
        if init is not None:
            init_weights = {"vqgan": init.vqgan.state_dict(), "denoiser": init.denoiser.state_dict()}
            if init.classifier is not None and class_names == list(init.class_names):
                init_weights["classifier"] = init.classifier.state_dict()
        schedule = NoiseSchedule.linear()
        camera = [s.rgb_source for s in scenes]
        if all(c.get("kind") == "camera_response" for c in camera):
            from hyperldm_engine.spectral.rgb import camera_response

            cam_name = str(camera[0].get("camera", DEFAULT_CAMERA))
            response = camera_response(sensor, cam_name)
        else:
            cam_name = "estimated from the given RGB rasters (non-negative least squares)"
            response = estimate_response(scenes)
        inputs = {"data": _data_digest(scenes), "init": str(init_bundle) if init_bundle else None,
                  "library_size": library_size, "schedule": schedule.to_dict(), "classes": class_names}
        fp = fingerprint(settings, config, inputs)

        trainer = Trainer(scenes, config, R, settings, scene_normaliser, ctx, schedule,
                          n_classes=len(class_names), init_weights=init_weights)
        ck_dir = Path(checkpoint_dir) if checkpoint_dir else ckpt.default_checkpoint_dir(out_bundle)
        if restart and ctx.is_main:
            ckpt.remove_checkpoints(ck_dir)
        if restart and ctx.enabled:
            torch.distributed.barrier()
        resumed = trainer.resume(ck_dir, fp) if not restart else False
        mode = progress if ctx.is_main else "none"
        with Progress(settings.total, "train", mode=mode) as bar, StopRequest() as stop:
            if resumed:
                bar.info(f"resuming from iteration {trainer.state.iteration} ({ck_dir})")
            trainer.run(ck_dir, fp, bar, stop, stop_after=stop_after)
        if trainer.state.scale is None:  # no diffusion iteration was asked for
            trainer.state.scale = latent_scale(trainer.vqgan, trainer.sampler, settings.batch_size,
                                               settings.scale_batches, ctx, trainer.device)
        if not ctx.is_main:
            shutdown(ctx)
            return {}
        metrics = jsonable_metrics(evaluate_heldout(trainer, scenes, scene_normaliser, seed=settings.seed))
        gsds = sorted({s.gsd_m for s in scenes if s.gsd_m})
        training = {
            "gsd_m": float(np.median(gsds)) if gsds else None,
            "gsd_range_m": [gsds[0], gsds[-1]] if gsds else None,
            "settings": asdict(settings), "world_size": ctx.world_size,
            "augmentation": asdict(AugmentConfig()) if settings.augment else None,
            "init_bundle": str(init_bundle) if init_bundle else None,
            "provenance": {**(provenance or {}),
                           "scenes": [{"name": s.name, "rows": s.shape[0], "cols": s.shape[1],
                                       "gsd_m": s.gsd_m, "heldout_rows_from": s.heldout_row0,
                                       "rgb": s.rgb_source} for s in scenes],
                           "library": {"function": "spectral.library.decoder_library", "size": library_size,
                                       "families": sorted({m.get("family", "") for m in lib_meta})}},
        }
        normalisation = {"method": "scene white: clip(rgb / white, 0, 1.5), white = 99th percentile of the "
                                   "per-pixel maximum channel (io.raster.scene_statistics)",
                         "white_percentile": 99.0, "clip_max": 1.5}
        bundle = Bundle(
            config=config, vqgan=trainer.vqgan.cpu().eval(), denoiser=trainer.denoiser.cpu().eval(),
            classifier=trainer.classifier.cpu().eval() if trainer.classifier is not None else None,
            sensor_centers_nm=wl, sensor_fwhm_nm=fwhm, sensor_name="training-scene",
            library_ids=[str(m.get("id", "")) for m in lib_meta],
            library_names=[str(m.get("name", "")) for m in lib_meta],
            library_sources=[str(m.get("source", "")) for m in lib_meta],
            library_classes=[str(m.get("class", "")) for m in lib_meta],
            rgb={"kind": "camera", "camera": cam_name, "bands": None, "normalisation": normalisation},
            rgb_response=response, schedule=schedule.to_dict(), latent_scale=float(trainer.state.scale),
            class_names=class_names, training=training, metrics=metrics)
        if settings.anchor_iterations > 0:
            attach_anchor(bundle, scenes, settings, mode)
        if settings.align_iterations > 0:
            align_to_sampler(bundle, scenes, settings, mode)
        measure_correction_prior(bundle, scenes, settings, mode)
        save_bundle(out_bundle, bundle, overwrite=overwrite)
        seconds = time.monotonic() - start
        write_report(out_bundle, bundle.config_dict(), metrics, trainer.state.history, seconds)
        ckpt.remove_checkpoints(ck_dir)
        shutdown(ctx)
        return metrics
    except BaseException:
        shutdown(ctx, barrier=False)
        raise
