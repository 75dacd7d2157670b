"""Shared fixtures: a tiny random-weight bundle on the simulator's 48-band sensor (fast on 2 CPU cores)."""

from __future__ import annotations

from pathlib import Path

import pytest

# The QGIS suite (tests/qgis) runs under Debian's python without the engine's packages and also
# loads this file, so the engine is imported inside the functions only.


def build_tiny_bundle(path: Path) -> Path:
    import torch

    from hyperldm_engine.diffusion.schedule import NoiseSchedule
    from hyperldm_engine.models.bundle import Bundle, build_modules, save_bundle
    from hyperldm_engine.models.config import ClassifierConfig, DenoiserConfig, ModelConfig, VQGANConfig
    from hyperldm_engine.simulate.landcover import CLASS_NAMES
    from hyperldm_engine.spectral.library import decoder_library
    from hyperldm_engine.spectral.rgb import camera_response
    from hyperldm_engine.spectral.sensor import default_sensor

    sensor = default_sensor()
    R, meta = decoder_library(sensor)
    cfg = ModelConfig(
        n_bands=48, n_library=R.shape[1], n_classes=len(CLASS_NAMES),
        vqgan=VQGANConfig(downsample_factor=4, latent_channels=4, codebook_size=16, encoder_channels=(8, 8, 8),
                          decoder_channels=(8, 8, 8), condition_channels=(4, 4, 4), num_res_blocks=1),
        denoiser=DenoiserConfig(channels=(8, 16), num_res_blocks=1, attention_downsample=(2,), head_channels=8,
                                time_embed_dim=16, cond_channels=4, cond_hidden=(4, 8)),
        classifier=ClassifierConfig(channels=(4, 4, 8, 8), kernel_size=3),
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        v, d, c = build_modules(cfg, torch.from_numpy(R))
        with torch.no_grad():  # a confident classifier, so that SD / SDM are not trivially 1
            c.linear.weight.mul_(50.0)
    b = Bundle(config=cfg, vqgan=v, denoiser=d, classifier=c, sensor_centers_nm=sensor.centers_nm,
               sensor_fwhm_nm=sensor.fwhm_nm, library_ids=[m["id"] for m in meta],
               library_names=[m["name"] for m in meta], library_sources=[m["source"] for m in meta],
               library_classes=[m["class"] for m in meta],
               rgb={"kind": "camera", "camera": "Nikon 5100 (NPL)", "bands": None,
                    "normalisation": {"method": "scene_white"}},
               schedule=NoiseSchedule.linear().to_dict(), latent_scale=1.0, class_names=list(CLASS_NAMES),
               rgb_response=camera_response(sensor), training={"gsd_m": 1.0, "provenance": {"note": "test"}})
    save_bundle(path, b, overwrite=True)
    return path


@pytest.fixture(scope="session")
def tiny_bundle(tmp_path_factory: pytest.TempPathFactory) -> str:
    return str(build_tiny_bundle(tmp_path_factory.mktemp("bundle") / "tiny"))
