"""The optional ONNX Runtime path (``hyperldm_engine.runtime``): the same outputs as PyTorch within 1e-3
reflectance when installed, PyTorch when not (or when asked, or on another device)."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio
import torch
from rasterio.transform import from_origin

from hyperldm_engine.errors import InputError
from hyperldm_engine.runtime import ENV, chosen_runtime, onnxruntime_available

needs_ort = pytest.mark.skipif(not onnxruntime_available(), reason="pip install 'hyperldm-engine[onnx]'")


def test_choice_of_runtime(monkeypatch):
    monkeypatch.delenv(ENV, raising=False)
    assert chosen_runtime("cpu") == "torch"  # the default: PyTorch
    monkeypatch.setenv(ENV, "auto")
    assert chosen_runtime("cpu") == ("onnxruntime" if onnxruntime_available() else "torch")
    assert chosen_runtime("cuda") == "torch"
    assert chosen_runtime("cpu", autocast="bf16") == "torch"
    monkeypatch.setenv(ENV, "torch")
    assert chosen_runtime("cpu") == "torch"
    monkeypatch.setenv(ENV, "tensorrt")
    with pytest.raises(InputError, match="HYPERLDM_RUNTIME"):
        chosen_runtime("cpu")


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    """One export of the tiny model for the module (``HYPERLDM_CACHE``): exports take seconds."""
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(scope="module")
def bundles(tiny_bundle, cache):
    from hyperldm_engine.models.bundle import load_bundle
    from hyperldm_engine.runtime.onnx import model_key, onnx_bundle

    torch_bundle = load_bundle(tiny_bundle).eval()
    if not onnxruntime_available():
        return torch_bundle, None
    return torch_bundle, onnx_bundle(torch_bundle, cache / "onnx" / model_key(torch_bundle))


@needs_ort
def test_graphs_match_pytorch_for_any_batch_and_tile_size(bundles):
    from hyperldm_engine.models.vqgan import decode_shared_condition
    from hyperldm_engine.runtime.onnx import OrtDenoiser, OrtVQGAN

    ref, ort = bundles
    assert isinstance(ort.denoiser, OrtDenoiser) and isinstance(ort.vqgan, OrtVQGAN)
    gen = torch.Generator().manual_seed(0)
    for batch, rows, cols in ((1, 8, 16), (3, 24, 8)):  # latent sides: multiples of the tiny model's 2
        x = torch.randn(batch, ref.config.vqgan.latent_channels, rows, cols, generator=gen)
        rgb = torch.rand(1, 3, 4 * rows, 4 * cols, generator=gen)
        with torch.inference_mode():
            cond = ref.denoiser.encode_condition(rgb)
            t = torch.full((batch,), 37, dtype=torch.long)
            eps = (ref.denoiser(x, t, cond), ort.denoiser(x, t, cond))
            hsi = tuple(decode_shared_condition(b.vqgan, x, rgb, False)[0] for b in (ref, ort))
            both = decode_shared_condition(ort.vqgan, x, rgb, True), decode_shared_condition(ref.vqgan, x, rgb, True)
        assert eps[1].shape == eps[0].shape and hsi[1].shape == hsi[0].shape
        assert float((eps[1] - eps[0]).abs().max()) < 1e-4
        assert float((hsi[1] - hsi[0]).abs().max()) < 1e-4  # reflectance
        assert torch.equal(both[0][0], hsi[1])  # asking for abundances leaves the cube as it is, bit for bit
        assert both[0][1].shape == both[1][1].shape and float((both[0][1] - both[1][1]).abs().max()) < 1e-5


@needs_ort
def test_cached_graphs_are_reused(bundles, cache, monkeypatch):
    from hyperldm_engine.runtime import onnx as rt

    ref, _ = bundles  # exported into the module's cache
    monkeypatch.setenv("HYPERLDM_CACHE", str(cache))
    monkeypatch.setattr(rt, "_quiet_export", lambda *a, **k: pytest.fail("exported again"))
    assert isinstance(rt.onnx_bundle(ref).denoiser, rt.OrtDenoiser)
    assert sorted(p.name for p in (cache / "onnx" / rt.model_key(ref)).iterdir()) == [
        "condition.onnx", "decoder.onnx", "head.onnx", "step.onnx"]


@needs_ort
def test_export_failure_falls_back_to_pytorch(bundles, tmp_path, monkeypatch, capsys):
    from hyperldm_engine.runtime import onnx as rt

    ref, _ = bundles

    def broken(*args, **kwargs):
        raise RuntimeError("unsupported operator")

    monkeypatch.setattr(rt, "export_graphs", broken)
    assert rt.onnx_bundle(ref, tmp_path) is ref
    assert "unsupported operator" in capsys.readouterr().err


@needs_ort
def test_scene_is_the_same_with_either_runtime(tiny_bundle, bundles, cache, tmp_path, monkeypatch):
    """The whole CLI pipeline: a scene synthesized through ONNX Runtime equals PyTorch's within 1e-3."""
    from hyperldm_engine.pipeline import synthesize as syn
    from hyperldm_engine.pipeline.scene import SceneJob, synthesize_scene
    from hyperldm_engine.pipeline.synthesize import SamplingOptions

    rgb = tmp_path / "rgb.tif"
    data = np.random.default_rng(1).integers(20, 230, (3, 48, 64), dtype=np.uint8)
    with rasterio.open(rgb, "w", driver="GTiff", width=64, height=48, count=3, dtype="uint8",
                       crs="EPSG:32633", transform=from_origin(500000, 6000000, 2, 2)) as ds:
        ds.write(data)
    monkeypatch.setenv("HYPERLDM_CACHE", str(cache))  # the graphs exported by ``bundles``
    cubes = {}
    for runtime in ("torch", "onnxruntime"):
        monkeypatch.setenv(ENV, runtime)
        syn._load_state.cache_clear()
        out = tmp_path / f"{runtime}.tif"
        synthesize_scene(SceneJob(input=str(rgb), output=str(out), model=tiny_bundle, tile=32, overlap=8,
                                  sampling=SamplingOptions(steps=3, seed=2)), progress_mode="none")
        with rasterio.open(out) as ds:
            cubes[runtime] = ds.read()
    syn._load_state.cache_clear()
    assert float(np.abs(cubes["onnxruntime"] - cubes["torch"]).max()) < 1e-3
