import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from hyperldm_engine.diffusion.schedule import NoiseSchedule
from hyperldm_engine.errors import BundleError
from hyperldm_engine.models.bundle import Bundle, build_modules, default_bundle_path, load_bundle, save_bundle


def make_bundle(config, library, rgb_kind="bands") -> Bundle:
    with torch.random.fork_rng():
        torch.manual_seed(0)  # initial weights only
        vqgan, denoiser, classifier = build_modules(config, library)
    with torch.no_grad():  # non-trivial values everywhere (zero-initialised layers too)
        g = torch.Generator().manual_seed(1)
        for m in (vqgan, denoiser, classifier):
            for p in m.parameters():
                p.add_(0.05 * torch.randn(p.shape, generator=g))
    n = config.n_library
    rgb = {"kind": "bands", "camera": None, "bands": [7, 4, 2], "normalisation": {"scale": 1.0}}
    response = None
    if rgb_kind == "camera":
        rgb = {"kind": "camera", "camera": "Nikon 5100 (NPL)", "bands": None, "normalisation": {}}
        response = np.full((3, config.n_bands), 1.0 / config.n_bands, dtype=np.float32)
    return Bundle(
        config=config, vqgan=vqgan, denoiser=denoiser, classifier=classifier,
        sensor_centers_nm=np.linspace(400, 1000, config.n_bands),
        sensor_fwhm_nm=np.full(config.n_bands, 12.0),
        library_ids=[f"id{i}" for i in range(n)], library_names=[f"spectrum {i}" for i in range(n)],
        library_sources=["earthlib"] * n, library_classes=["soil"] * n, rgb=rgb,
        schedule=NoiseSchedule.linear().to_dict(), latent_scale=0.24, rgb_response=response,
        class_names=["a", "b", "c"], training={"gsd_m": 1.0, "provenance": {"seed": 1}},
        metrics={"mpsnr": 30.0},
    )  # fmt: skip


def outputs(bundle: Bundle) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(5)
    rgb = torch.rand(1, 3, 16, 16, generator=g)
    x = torch.randn(1, 4, 4, 4, generator=g)
    bundle.eval()
    with torch.no_grad():
        eps = bundle.denoiser(x, torch.tensor([10]), bundle.denoiser.encode_condition(rgb))
        hsi = bundle.vqgan.decode(bundle.vqgan.quantize(x).z_q, rgb).hsi
        probs = bundle.classifier.probabilities_cube(hsi)
    return eps, hsi, probs


@pytest.fixture
def saved(tmp_path, tiny, library) -> tuple[Path, Bundle]:
    b = make_bundle(tiny, library)
    return save_bundle(tmp_path / "model", b), b


@pytest.mark.parametrize("name", ["model", "model.zip"])
@pytest.mark.parametrize("rgb_kind", ["bands", "camera"])
def test_round_trip_is_bit_identical(tmp_path, tiny, library, name, rgb_kind):
    b = make_bundle(tiny, library, rgb_kind)
    path = save_bundle(tmp_path / name, b)
    assert path.is_dir() == (name == "model")
    loaded = load_bundle(path)
    for a, c in zip(outputs(b), outputs(loaded), strict=True):
        assert torch.equal(a, c)
    assert torch.equal(loaded.library, library)
    assert loaded.config == tiny and loaded.latent_scale == 0.24 and loaded.class_names == ["a", "b", "c"]
    assert loaded.rgb == b.rgb and loaded.schedule == b.schedule and loaded.metrics == {"mpsnr": 30.0}
    assert np.array_equal(loaded.sensor_centers_nm, b.sensor_centers_nm)
    assert (loaded.rgb_response is None) == (rgb_kind == "bands")
    assert not any(p.is_file() and p.name.startswith(".") for p in tmp_path.iterdir())  # no temporaries left


def test_save_refuses_existing_without_overwrite(saved, tiny, library):
    from hyperldm_engine.errors import OutputError

    path, b = saved
    with pytest.raises(OutputError):
        save_bundle(path, b)
    save_bundle(path, b, overwrite=True)
    load_bundle(path)


def edit_config(path: Path, change) -> None:
    cfg = json.loads((path / "config.json").read_text())
    change(cfg)
    (path / "config.json").write_text(json.dumps(cfg))


def refused(path, match: str) -> None:
    with pytest.raises(BundleError, match=match) as info:
        load_bundle(path)
    assert "\n" not in str(info.value)


def test_refuses_missing_things(tmp_path, saved):
    path, _ = saved
    refused(tmp_path / "nowhere", "does not exist")
    (path / "weights.safetensors").unlink()
    refused(path, "lacks weights.safetensors")
    (path / "config.json").unlink()
    refused(path, "lacks config.json")


def test_refuses_corrupt_and_truncated_weights(saved):
    path, _ = saved
    w = path / "weights.safetensors"
    data = w.read_bytes()
    w.write_bytes(data[: len(data) // 2])
    refused(path, "corrupt or truncated")
    w.write_bytes(b"\xff" * 64)
    refused(path, "corrupt or truncated")


def test_refuses_config_problems(saved):
    path, _ = saved
    original = (path / "config.json").read_text()
    (path / "config.json").write_text("{not json")
    refused(path, "not valid JSON")
    for change, match in [
        (lambda c: c.update(format_version=99), "format_version 99 is not supported"),
        (lambda c: c.update(extra=1), "unknown key"),
        (lambda c: c.pop("latent_scale"), "lacks key"),
        (lambda c: c["model"]["vqgan"].update(surprise=1), "unknown key"),
        (lambda c: c["library"]["ids"].pop(), "library.ids is not 5 strings"),
        (lambda c: c["sensor"]["fwhm_nm"].pop(), "sensor.fwhm_nm"),
        (lambda c: c["rgb"].update(bands=[99, 1, 2]), "rgb.bands"),
        (lambda c: c.update(latent_scale=-1), "latent_scale"),
        (lambda c: c["schedule"].update(num_steps=-3), "noise schedule"),
    ]:
        (path / "config.json").write_text(original)
        edit_config(path, change)
        refused(path, match)


def test_refuses_tensor_key_and_shape_problems(saved):
    path, _ = saved
    w = path / "weights.safetensors"
    tensors = load_file(w)
    good = dict(tensors)
    tensors["vqgan.extra"] = torch.zeros(2)
    save_file(tensors, w)
    refused(path, "unexpected tensor")
    tensors = dict(good)
    tensors.pop("denoiser.conv_in.weight")
    save_file(tensors, w)
    refused(path, "lacks 1 tensor")
    tensors = dict(good)
    tensors["vqgan.abundance_head.weight"] = torch.zeros(5, 9)
    save_file(tensors, w)
    refused(path, r"vqgan.abundance_head.weight has shape \(5, 9\)")
    tensors = dict(good)
    tensors["classifier.linear.bias"] = torch.full((3,), float("nan"))
    save_file(tensors, w)
    refused(path, "NaN")
    tensors = dict(good)
    tensors["library.R"] = torch.zeros(8, 6)
    save_file(tensors, w)
    refused(path, "library.R has shape")


def test_refuses_pickles_inside(saved, tmp_path):
    path, _ = saved
    torch.save({"a": 1}, path / "extra.pt")
    refused(path, "extra.pt, a file type that may hold pickled code")
    (path / "extra.pt").unlink()
    z = tmp_path / "evil.zip"
    with zipfile.ZipFile(z, "w") as zf:
        for f in path.iterdir():
            zf.write(f, f.name)
        zf.writestr("model.ckpt", b"\x80\x04.")
    refused(z, "model.ckpt, a file type that may hold pickled code")


def test_refuses_zip_slip_and_damaged_zip(saved, tmp_path):
    path, _ = saved
    z = tmp_path / "slip.zip"
    with zipfile.ZipFile(z, "w") as zf:
        for f in path.iterdir():
            zf.write(f, f.name)
        zf.writestr("../../escape.txt", b"x")
    refused(z, "escapes its folder")
    nested = tmp_path / "nested.zip"
    with zipfile.ZipFile(nested, "w") as zf:
        for f in path.iterdir():
            zf.write(f, f"model/{f.name}")
    load_bundle(nested)  # one top-level folder inside the zip is fine
    bad = tmp_path / "bad.zip"
    bad.write_bytes(nested.read_bytes()[:-100])
    refused(bad, "zip")


def test_default_bundle_path():
    path = default_bundle_path(must_exist=False)
    assert path.parts[-3:] == ("hyperldm_engine", "data", "default_model")
    if not (path / "config.json").is_file():
        with pytest.raises(BundleError, match="default model bundle is not installed"):
            default_bundle_path()
