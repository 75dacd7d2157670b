"""SynthesisTileFn: determinism per seed, diversity across seeds and samples, the shared-condition
decoder, CPU autocast and latent blending, on a tiny random-weights bundle.

The bundle's zero-initialised layers (residual-branch convolutions and the U-Net's output layer) are
given random weights: a freshly initialised U-Net predicts eps = 0 exactly, which would make every
test of the denoiser (and of its receptive field at tile borders) vacuous.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import rasterio
import torch
from rasterio.transform import from_origin
from rasterio.windows import Window
from tiny_models import build_tiny_bundle

from hyperldm_engine.errors import InputError
from hyperldm_engine.io.raster import open_rgb, scene_statistics
from hyperldm_engine.metrics.similarity import mpsnr
from hyperldm_engine.models.bundle import load_bundle
from hyperldm_engine.models.vqgan import decode_shared_condition
from hyperldm_engine.pipeline.synthesize import SamplingOptions, SynthesisTileFn
from hyperldm_engine.tiling.runner import TileRequest


def build_test_bundle(path: Path) -> Path:
    """The suite's tiny bundle with random weights everywhere (no zero-initialised layer left)."""
    return build_tiny_bundle(path, random_denoiser=True, gsd_m=2.0)


def write_rgb(path: Path, rows: int, cols: int, seed: int = 0) -> Path:
    """A uint8 GeoTIFF with smooth gradients, blobs and mild noise, 2 m pixels in UTM 33N."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:rows, 0:cols] / 64.0
    base = np.stack([0.4 + 0.3 * np.sin(2.1 * x + y), 0.4 + 0.3 * np.cos(1.3 * y - x), 0.3 + 0.2 * np.sin(x * y)])
    data = (np.clip(base + 0.03 * rng.standard_normal((3, rows, cols)), 0, 1) * 255).astype(np.uint8)
    with rasterio.open(path, "w", driver="GTiff", width=cols, height=rows, count=3, dtype="uint8",
                       crs="EPSG:32633", transform=from_origin(500000, 6000000, 2, 2)) as ds:
        ds.write(data)
    return path


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> str:
    return str(build_test_bundle(tmp_path_factory.mktemp("bundle") / "tiny"))


@pytest.fixture(scope="module")
def tile(tmp_path_factory: pytest.TempPathFactory):
    """(statistics, request) of a 40 x 48 tile (not a multiple of the 8 px alignment: padded)."""
    path = write_rgb(tmp_path_factory.mktemp("rgb") / "rgb.tif", 40, 48)
    with open_rgb(path) as reader:
        rgb, mask = reader.read(Window(0, 0, 48, 40))
        stats = scene_statistics(reader)
    request = TileRequest(window=Window(0, 0, 48, 40), rgb=rgb, mask=mask, row=0, col=0,
                          latent_row0=0, latent_col0=0, align=4)
    return stats, request


def run(bundle: str, tile, **options) -> dict[str, np.ndarray]:
    stats, request = tile
    autocast = options.pop("autocast", None)
    origin = options.pop("origin", None)
    if origin is not None:
        request = dataclasses.replace(request, latent_row0=origin[0], latent_col0=origin[1])
    return SynthesisTileFn(bundle, SamplingOptions(**{"steps": 3, **options}), stats, autocast=autocast)(request)


def test_same_seed_gives_bit_identical_cubes(bundle: str, tile) -> None:
    a = run(bundle, tile, samples=2, seed=7)
    b = run(bundle, tile, samples=2, seed=7)
    assert set(a) == {"s0", "s1"}
    assert a["s0"].shape == (48, 40, 48) and a["s0"].dtype == np.float32
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])


def test_seeds_samples_and_positions_give_different_cubes(bundle: str, tile) -> None:
    a = run(bundle, tile, samples=2, seed=0)
    b = run(bundle, tile, samples=2, seed=1)
    moved = run(bundle, tile, samples=1, seed=0, origin=(8, 16))
    scale = float(np.abs(a["s0"]).mean())
    # differences are a visible fraction of the signal, far above float rounding (1e-7 relative)
    assert np.abs(a["s0"] - b["s0"]).mean() > 1e-3 * scale
    assert np.abs(a["s0"] - a["s1"]).mean() > 1e-3 * scale  # K samples of one RGB differ
    assert np.abs(a["s0"] - moved["s0"]).mean() > 1e-3 * scale  # noise is indexed by scene position


def test_stochastic_sampler_is_reproducible(bundle: str, tile) -> None:
    """eta = 1 draws noise at every step (prefetched on a thread): still one answer per seed."""
    a = run(bundle, tile, seed=3, eta=1.0)
    b = run(bundle, tile, seed=3, eta=1.0)
    c = run(bundle, tile, seed=3, eta=0.0)
    np.testing.assert_array_equal(a["s0"], b["s0"])
    assert np.abs(a["s0"] - c["s0"]).max() > 0


def test_shared_condition_decode_equals_decode_of_repeated_rgb(bundle: str) -> None:
    b = load_bundle(bundle).eval()
    gen = torch.Generator().manual_seed(0)
    rgb = torch.rand((1, 3, 32, 40), generator=gen)
    z_q = b.vqgan.quantize(torch.randn((3, 4, 8, 10), generator=gen)).z_q
    with torch.inference_mode():
        ref = b.vqgan.decode(z_q, rgb.expand(3, -1, -1, -1), return_abundances=True)
        hsi, ab = decode_shared_condition(b.vqgan, z_q, rgb, abundances=True)
    np.testing.assert_allclose(hsi.numpy(), ref.hsi.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(ab.numpy(), ref.abundances.numpy(), rtol=1e-5, atol=1e-7)


def test_abundance_groups_sum_to_one(bundle: str, tile) -> None:
    stats, request = tile
    out = SynthesisTileFn(bundle, SamplingOptions(samples=2, steps=2), stats, abundances=True)(request)
    groups = out["abundances"]
    assert groups.shape[1:] == (40, 48)
    np.testing.assert_allclose(groups.sum(axis=0), 1.0, atol=1e-5)  # softmax abundances, summed by class


def test_bf16_autocast_on_cpu_stays_close_to_float32(bundle: str, tile) -> None:
    """bf16 has an 8-bit mantissa (relative step 2^-8 = 0.4 %): expect > 30 dB MPSNR, not equality."""
    ref = run(bundle, tile, seed=2)["s0"]
    bf16 = run(bundle, tile, seed=2, autocast="bf16")["s0"]
    assert not np.array_equal(ref, bf16)  # autocast really ran in bf16
    psnr = mpsnr(bf16, ref, data_range=float(ref.max()))
    assert psnr > 30.0


def test_options_are_validated() -> None:
    with pytest.raises(InputError, match="samples"):
        SamplingOptions(samples=0).validate()
    with pytest.raises(InputError, match="steps"):
        SamplingOptions(steps=0).validate()
    with pytest.raises(InputError, match="eta"):
        SamplingOptions(eta=2.0).validate()
