"""The suite's one tiny model: the real preset with every width shrunk (:func:`tiny_config`) and the one
bundle builder (:func:`build_tiny_bundle`), so a bundle builds and saves in well under a second."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path

from hyperldm_engine.models.config import ClassifierConfig, DenoiserConfig, ModelConfig


def tiny_config(n_library: int, n_classes: int = 3) -> ModelConfig:
    """``ModelConfig.small`` (48 bands, f = 4) with every width shrunk; latent alignment 2 (8 px)."""
    base = ModelConfig.small(n_bands=48, n_library=n_library, n_classes=n_classes)
    return dataclasses.replace(
        base,
        vqgan=dataclasses.replace(base.vqgan, latent_channels=4, codebook_size=16, encoder_channels=(8, 8, 8),
                                  decoder_channels=(8, 8, 8), condition_channels=(4, 4, 4)),
        denoiser=DenoiserConfig(channels=(8, 16), num_res_blocks=1, attention_downsample=(), head_channels=8,
                                time_embed_dim=16, cond_channels=4, cond_hidden=(4, 8)),
        classifier=ClassifierConfig(channels=(4, 4, 8, 8), kernel_size=3),
        preset="tiny",
    )


def build_tiny_bundle(path: Path, *, class_names: Sequence[str] | None = None, gsd_m: float = 1.0,
                      classifier_gain: float = 50.0, random_denoiser: bool = False) -> Path:
    """A valid bundle of :func:`tiny_config` with random weights on the real 48-band sensor, decoder
    library and camera response.

    ``class_names``: the classifier's classes (default: the simulator's land-cover classes);
    ``classifier_gain`` scales its last layer, so that it is confident and SD / SDM are not trivially 1;
    ``random_denoiser`` gives the U-Net's zero-initialised layers random weights (a fresh U-Net predicts
    exactly 0, which would hide a mix-up of tiles or samples); ``gsd_m`` is the training GSD recorded.
    """
    import torch

    from hyperldm_engine.diffusion.schedule import NoiseSchedule
    from hyperldm_engine.models.bundle import Bundle, build_modules, save_bundle
    from hyperldm_engine.simulate.landcover import CLASS_NAMES
    from hyperldm_engine.spectral.library import decoder_library
    from hyperldm_engine.spectral.rgb import camera_response
    from hyperldm_engine.spectral.sensor import default_sensor

    sensor = default_sensor()
    R, meta = decoder_library(sensor)
    classes = list(CLASS_NAMES if class_names is None else class_names)
    cfg = tiny_config(R.shape[1], len(classes))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        vqgan, denoiser, classifier = build_modules(cfg, torch.from_numpy(R).float())
        with torch.no_grad():
            classifier.linear.weight.mul_(classifier_gain)
            for p in denoiser.parameters() if random_denoiser else ():
                if not p.any():
                    p.copy_(0.1 * torch.randn(p.shape))
    bundle = Bundle(
        config=cfg, vqgan=vqgan, denoiser=denoiser, classifier=classifier,
        sensor_centers_nm=sensor.centers_nm, sensor_fwhm_nm=sensor.fwhm_nm,
        library_ids=[m["id"] for m in meta], library_names=[m["name"] for m in meta],
        library_sources=[m["source"] for m in meta], library_classes=[m["class"] for m in meta],
        rgb={"kind": "camera", "camera": "Nikon 5100 (NPL)", "bands": None, "normalisation": {"method": "scene_white"}},
        schedule=NoiseSchedule.linear().to_dict(), latent_scale=1.0, class_names=classes,
        rgb_response=camera_response(sensor), training={"gsd_m": gsd_m, "provenance": {"note": "tests"}},
    )  # fmt: skip
    return save_bundle(path, bundle, overwrite=True)


def train_tiny_through_cli(folder: Path, *extra: str) -> Path:
    """``simulate`` a 64 px scene into ``folder/s`` and ``train`` one iteration per stage on it through
    the CLI (32 px patches, batch 2, plus ``extra`` options); returns the bundle ``folder/b``."""
    from click.testing import CliRunner
    from hyperldm_cli.main import _register_commands, cli

    _register_commands()
    runner = CliRunner()
    assert runner.invoke(cli, ["simulate", str(folder / "s"), "--size", "64", "64", "--seed", "3"]).exit_code == 0
    out = folder / "b"
    res = runner.invoke(cli, ["train", str(folder / "s" / "hsi.tif"), str(out), "--iterations", "1",
                              "--patch-size", "32", "--batch-size", "2", "--progress", "none", *extra])
    assert res.exit_code == 0, res.output
    return out
