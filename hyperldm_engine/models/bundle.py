"""The model bundle: ``config.json`` + ``weights.safetensors`` in a folder or a ``.zip`` of it.

``config.json`` holds the format version, the engine version, the sensor (band centres and FWHM in
nm), the library metadata (ids, names, sources, classes; R itself is the tensor ``library.R``), the
RGB definition and input normalisation, the model config, the latent scale factor, the noise
schedule, the classifier's class names, the training GSD and provenance, and held-out metrics.
``weights.safetensors`` holds ``library.R``, optionally ``rgb.response`` and the state dicts of
``vqgan.*``, ``denoiser.*`` and ``classifier.*``.

``load_bundle`` validates every key and tensor shape against the config and refuses with one
sentence (``BundleError``); nothing is ever unpickled, and pickle files inside a bundle are refused.
"""

from __future__ import annotations

import json
import math
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from hyperldm_engine import __version__
from hyperldm_engine.errors import BundleError, HyperLDMError
from hyperldm_engine.models.anchor import AnchorConfig, LatentAnchor
from hyperldm_engine.models.classifier import SpectralClassifier
from hyperldm_engine.models.config import ModelConfig
from hyperldm_engine.models.correction_anchor import (
    anchor_from_tensors,
    anchor_record,
    anchor_tensors,
    expected_shapes,
    record_problem,
)
from hyperldm_engine.models.unet import LatentDenoiser
from hyperldm_engine.models.vqgan import ConditionalVQGAN
from hyperldm_engine.spectral.consistency import check_covariance
from hyperldm_engine.spectral.fusion import CorrectionAnchor, n_features
from hyperldm_engine.spectral.groups import GROUPS, GroupPrior
from hyperldm_engine.timings import timed

FORMAT_VERSION = 1
CONFIG_NAME = "config.json"
WEIGHTS_NAME = "weights.safetensors"
#: the correction anchors a bundle may carry: the one for surface-reflectance input (``consistency.anchor``),
#: one measured with top-of-atmosphere scenes for TOA input (``consistency.anchor_toa``) and one for the
#: mean mode on surface input (``consistency.anchor_mean``: accuracy over diversity); attribute names
ANCHORS = {"anchor": "correction_anchor", "anchor_toa": "correction_anchor_toa",
           "anchor_mean": "correction_anchor_mean"}
#: file types that may hold pickles (torch.save, joblib, numpy object arrays): a bundle with one is refused.
PICKLE_SUFFIXES = (".pt", ".pth", ".ckpt", ".pkl", ".pickle", ".joblib", ".bin", ".npy", ".npz")
MAX_CONFIG_BYTES = 64 * 2**20
MAX_WEIGHTS_BYTES = 8 * 2**30
_TOP_KEYS = (
    "format_version", "engine_version", "sensor", "library", "rgb", "model", "latent_scale",
    "schedule", "classifier", "training", "metrics",
)  # fmt: skip
#: optional top-level keys: "anchor" (bundles with a latent anchor, ``models.anchor``)
_OPTIONAL_KEYS = ("anchor", "consistency", "abundance_prior")
_RGB_KINDS = ("camera", "bands")


@dataclass
class Bundle:
    """A trained HyperLDM model with everything needed to run it on a new scene.

    ``rgb`` = {"kind": "camera" | "bands", "camera": name or None, "bands": 1-based band indices or
    None, "normalisation": dict (JSON)}; ``rgb_response`` (3, n_bands) when kind is "camera".
    ``schedule`` is ``NoiseSchedule.to_dict()``; ``training`` holds at least ``gsd_m`` (metres, or
    None) and ``provenance``; ``metrics`` is free JSON (held-out results).
    """

    config: ModelConfig
    vqgan: ConditionalVQGAN
    denoiser: LatentDenoiser
    classifier: SpectralClassifier | None
    sensor_centers_nm: np.ndarray
    sensor_fwhm_nm: np.ndarray
    library_ids: list[str]
    library_names: list[str]
    library_sources: list[str]
    library_classes: list[str]
    rgb: dict[str, Any]
    schedule: dict[str, Any]
    latent_scale: float = 1.0
    rgb_response: np.ndarray | None = None
    class_names: list[str] = field(default_factory=list)
    sensor_name: str = "sensor"
    training: dict[str, Any] = field(default_factory=lambda: {"gsd_m": None, "provenance": {}})
    metrics: dict[str, Any] = field(default_factory=dict)
    engine_version: str = __version__
    format_version: int = FORMAT_VERSION
    #: optional deterministic RGB -> latent regression (``models.anchor``) and its config/provenance:
    #: {"config": AnchorConfig.to_dict(), "training": {...}}
    anchor: LatentAnchor | None = None
    anchor_info: dict[str, Any] | None = None
    #: optional (n_bands, n_bands) second moment of the model's spectral errors, the prior of the
    #: covariance-weighted RGB correction (``--rgb-correction spectral``, ``spectral.consistency``),
    #: and how it was measured: {"source": ..., "scenes": ..., ...}
    consistency_covariance: np.ndarray | None = None
    consistency_info: dict[str, Any] | None = None
    #: optional regression anchor and its measured fusion with the samples (``--rgb-correction anchored``,
    #: ``spectral.fusion``); stored with the covariance, described by ``consistency_info["anchor"]``
    correction_anchor: CorrectionAnchor | None = None
    #: the same, measured with TOA scenes, for TOA input
    correction_anchor_toa: CorrectionAnchor | None = None
    #: the same for ``--mode mean`` on surface input, where the samples' diversity, which a network anchor
    #: narrows, does not count (the default model has none: docs/model-diagnosis.md)
    correction_anchor_mean: CorrectionAnchor | None = None
    #: optional class-group prior of the abundances (``spectral.groups.GroupPrior``) and how it was
    #: measured (``train.group_prior``); config.json ``abundance_prior``, tensor ``abundance_prior.weights``
    abundance_prior: GroupPrior | None = None
    abundance_prior_info: dict[str, Any] | None = None

    @property
    def library(self) -> torch.Tensor:
        """R, (n_bands, n_library) reflectance 0-1 (the VQGAN's fixed buffer)."""
        return self.vqgan.library

    def config_dict(self) -> dict[str, Any]:
        """The JSON document written as config.json."""
        return {
            "format_version": self.format_version,
            "engine_version": self.engine_version,
            "sensor": {
                "name": self.sensor_name,
                "centers_nm": [float(v) for v in np.asarray(self.sensor_centers_nm).ravel()],
                "fwhm_nm": [float(v) for v in np.asarray(self.sensor_fwhm_nm).ravel()],
            },
            "library": {
                "ids": [str(v) for v in self.library_ids],
                "names": [str(v) for v in self.library_names],
                "sources": [str(v) for v in self.library_sources],
                "classes": [str(v) for v in self.library_classes],
            },
            "rgb": {**self.rgb, "has_response": self.rgb_response is not None},
            "model": self.config.to_dict(),
            "latent_scale": float(self.latent_scale),
            "schedule": self.schedule,
            "classifier": None if self.classifier is None else {"class_names": [str(c) for c in self.class_names]},
            "training": self.training,
            "metrics": self.metrics,
            **({"anchor": self.anchor_info} if self.anchor is not None else {}),
            **({"consistency": self._consistency_record()} if self.consistency_covariance is not None else {}),
            **({"abundance_prior": {**(self.abundance_prior_info or {}), "degree": int(self.abundance_prior.degree),
                                    "power": float(self.abundance_prior.power),
                                    "floor": float(self.abundance_prior.floor)}}
               if self.abundance_prior is not None else {}),
        }

    def _consistency_record(self) -> dict[str, Any]:
        """config.json's ``consistency``: how the covariance (and the regression anchor, if any) was measured."""
        record = {k: v for k, v in (self.consistency_info or {}).items() if k not in ANCHORS}
        for key, attribute in ANCHORS.items():
            anchor = getattr(self, attribute)
            if anchor is not None:
                record[key] = {**dict((self.consistency_info or {}).get(key) or {}), **anchor_record(anchor)}
        return record

    def tensors(self) -> dict[str, torch.Tensor]:
        """Every tensor written to weights.safetensors, float32, contiguous, on the CPU."""
        out: dict[str, torch.Tensor] = {"library.R": self.library}
        if self.rgb_response is not None:
            out["rgb.response"] = torch.as_tensor(np.asarray(self.rgb_response), dtype=torch.float32)
        if self.abundance_prior is not None:
            out["abundance_prior.weights"] = torch.as_tensor(np.asarray(self.abundance_prior.weights),
                                                             dtype=torch.float32)
        if self.consistency_covariance is not None:
            covariance = np.asarray(self.consistency_covariance)
            out["consistency.covariance"] = torch.as_tensor(covariance, dtype=torch.float32)
            for key, attribute in ANCHORS.items():
                anchor = getattr(self, attribute)
                if anchor is not None:
                    out.update({f"consistency.{key}.{name}": t for name, t in anchor_tensors(anchor).items()})
        modules = {"vqgan": self.vqgan, "denoiser": self.denoiser, "classifier": self.classifier,
                   "anchor": self.anchor}
        for prefix, module in modules.items():
            if module is not None:
                out.update({f"{prefix}.{k}": v for k, v in module.state_dict().items()})
        return {k: v.detach().to("cpu", torch.float32).contiguous().clone() for k, v in out.items()}

    def codebook_range(self) -> tuple[float, float]:
        """The range of the scaled codebook: the only latents the decoder ever sees after quantisation.

        Clipping the sampler's x0 prediction to it ("clip_denoised") keeps the early, high-noise steps,
        where x0 = (x_t - sqrt(1 - alpha_bar) eps) / sqrt(alpha_bar) amplifies errors up to ~280x, from
        throwing latents far outside what the VQGAN can decode.
        """
        codes = self.vqgan.quantizer.embedding.weight.detach() * float(self.latent_scale)
        return float(codes.min()), float(codes.max())

    def eval(self) -> Bundle:
        for m in (self.vqgan, self.denoiser, self.classifier, self.anchor):
            if m is not None:
                m.eval()
        return self


def build_modules(
    config: ModelConfig, library: torch.Tensor, with_classifier: bool = True
) -> tuple[ConditionalVQGAN, LatentDenoiser, SpectralClassifier | None]:
    """Fresh (untrained) modules for a config and library R (n_bands, n_library)."""
    vqgan = ConditionalVQGAN(config, library)
    denoiser = LatentDenoiser(config)
    classifier = SpectralClassifier(config.n_bands, config.n_classes, config.classifier) if with_classifier else None
    return vqgan, denoiser, classifier


def default_bundle_path(must_exist: bool = True) -> Path:
    """``hyperldm_engine/data/default_model``; BundleError if it is not installed and ``must_exist``."""
    path = Path(__file__).resolve().parent.parent / "data" / "default_model"
    if must_exist and not (path / CONFIG_NAME).is_file():
        raise BundleError(
            f"the default model bundle is not installed at {path}; train one with "
            "'hyperldm-engine train' or pass --model PATH"
        )
    return path


# ---- saving ------------------------------------------------------------------------------------


def save_bundle(path: str | Path, bundle: Bundle, overwrite: bool = False) -> Path:
    """Write the bundle atomically as a folder, or as a zip when ``path`` ends with ``.zip``."""
    from hyperldm_engine.io.atomic import atomic_dir, atomic_path

    path = Path(path)
    _validate_config(bundle.config_dict(), str(path))  # never write what load_bundle would refuse
    config_bytes = json.dumps(bundle.config_dict(), indent=2, allow_nan=False).encode("utf-8")
    weights_bytes = st_save(bundle.tensors(), metadata={"format": "pt", "hyperldm_format": str(FORMAT_VERSION)})
    if path.suffix.lower() == ".zip":
        with (
            atomic_path(path, overwrite=overwrite) as tmp,
            zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zf,
        ):
            zf.writestr(CONFIG_NAME, config_bytes)
            zf.writestr(WEIGHTS_NAME, weights_bytes)
    else:
        with atomic_dir(path, overwrite=overwrite) as tmp:
            (tmp / CONFIG_NAME).write_bytes(config_bytes)
            (tmp / WEIGHTS_NAME).write_bytes(weights_bytes)
    return path


# ---- loading -----------------------------------------------------------------------------------


@timed("model load")
def load_bundle(path: str | Path, device: str | torch.device = "cpu") -> Bundle:
    """Read, validate and build a bundle (modules in eval mode on ``device``); BundleError if unusable."""
    path = Path(path)
    if not path.exists():
        raise BundleError(f"model bundle {path} does not exist")
    if path.is_dir():
        config_bytes, weights_bytes = _read_folder(path)
    elif zipfile.is_zipfile(path):
        config_bytes, weights_bytes = _read_zip(path)
    else:
        raise BundleError(f"model bundle {path} is neither a folder nor a zip file")
    try:
        cfg = json.loads(config_bytes.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BundleError(f"model bundle {path}: {CONFIG_NAME} is not valid JSON ({exc})") from exc
    model_config = _validate_config(cfg, str(path))
    try:
        tensors = st_load(weights_bytes)
    except (SafetensorError, ValueError, RuntimeError, OSError) as exc:
        raise BundleError(f"model bundle {path}: {WEIGHTS_NAME} is corrupt or truncated ({exc})") from exc
    return _build(path, cfg, model_config, tensors, device)


def _pickle_message(path: Path, name: str) -> str:
    return (
        f"model bundle {path} contains {name}, a file type that may hold pickled code; "
        f"bundles hold only {CONFIG_NAME} and {WEIGHTS_NAME}"
    )


def _read_folder(path: Path) -> tuple[bytes, bytes]:
    for entry in path.rglob("*"):
        if entry.suffix.lower() in PICKLE_SUFFIXES:
            raise BundleError(_pickle_message(path, entry.name))
    cfg, weights = path / CONFIG_NAME, path / WEIGHTS_NAME
    for f in (cfg, weights):
        if not f.is_file():
            raise BundleError(f"model bundle {path} lacks {f.name}")
    if cfg.stat().st_size > MAX_CONFIG_BYTES or weights.stat().st_size > MAX_WEIGHTS_BYTES:
        raise BundleError(f"model bundle {path} has implausibly large files")
    return cfg.read_bytes(), weights.read_bytes()


def _read_zip(path: Path) -> tuple[bytes, bytes]:
    try:
        with zipfile.ZipFile(path) as zf:
            infos = [i for i in zf.infolist() if not i.is_dir()]
            for info in infos:
                name = info.filename.replace("\\", "/")
                parts = PurePosixPath(name).parts
                if name.startswith("/") or ".." in parts or (parts and ":" in parts[0]):
                    raise BundleError(f"model bundle {path} has a member {info.filename!r} that escapes its folder")
                if PurePosixPath(name).suffix.lower() in PICKLE_SUFFIXES:
                    raise BundleError(_pickle_message(path, name))
            by_name = {info.filename: info for info in infos}
            found = {}
            for want in (CONFIG_NAME, WEIGHTS_NAME):
                matches = [i for n, i in by_name.items() if n == want or (n.endswith("/" + want) and n.count("/") == 1)]
                if len(matches) != 1:
                    raise BundleError(f"model bundle {path} lacks {want} (or has more than one)")
                found[want] = matches[0]
            limits = {CONFIG_NAME: MAX_CONFIG_BYTES, WEIGHTS_NAME: MAX_WEIGHTS_BYTES}
            for want, info in found.items():
                if info.file_size > limits[want]:
                    raise BundleError(f"model bundle {path} has an implausibly large {want}")
            return zf.read(found[CONFIG_NAME]), zf.read(found[WEIGHTS_NAME])
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError) as exc:
        raise BundleError(f"model bundle {path} is a damaged zip file ({exc})") from exc


def _need(cond: bool, where: str, problem: str) -> None:
    if not cond:
        raise BundleError(f"model bundle {where}: {problem}")


def _str_list(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


def _num_list(value: Any) -> bool:
    return isinstance(value, list) and all(
        isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in value
    )


def _exact_keys(obj: Any, keys: tuple[str, ...], where: str, what: str) -> None:
    _need(isinstance(obj, dict), where, f"{what} is not a JSON object")
    missing, extra = sorted(set(keys) - set(obj)), sorted(set(obj) - set(keys))
    _need(not missing, where, f"{what} lacks key(s) {', '.join(missing)}")
    _need(not extra, where, f"{what} has unknown key(s) {', '.join(extra)}")


def _validate_config(cfg: Any, where: str) -> ModelConfig:
    """Check config.json completely; return the ModelConfig it describes."""
    _need(isinstance(cfg, dict), where, f"{CONFIG_NAME} is not a JSON object")
    _need("format_version" in cfg, where, f"{CONFIG_NAME} has no format_version")
    _need(
        cfg["format_version"] == FORMAT_VERSION,
        where,
        f"format_version {cfg['format_version']!r} is not supported (this engine reads {FORMAT_VERSION})",
    )
    _exact_keys({k: v for k, v in cfg.items() if k not in _OPTIONAL_KEYS}, _TOP_KEYS, where, CONFIG_NAME)
    if "anchor" in cfg:
        _need(isinstance(cfg["anchor"], dict) and isinstance(cfg["anchor"].get("config"), dict), where,
              "anchor is not a JSON object with a 'config' object")
        try:
            anchor = AnchorConfig.from_dict(cfg["anchor"]["config"])
        except (KeyError, TypeError, ValueError) as exc:
            raise BundleError(f"model bundle {where}: anchor.config is invalid ({exc})") from exc
        _need(0.0 < anchor.strength <= 1.0, where, f"anchor.config.strength {anchor.strength} is not in (0, 1]")
    if "consistency" in cfg:
        _need(isinstance(cfg["consistency"], dict), where, "consistency is not a JSON object")
        for key in ANCHORS:
            if key in cfg["consistency"]:
                problem = record_problem(cfg["consistency"][key])
                _need(problem is None, where, f"consistency.{key} {problem}")
    if "abundance_prior" in cfg:
        record = cfg["abundance_prior"]
        _need(isinstance(record, dict) and record.get("degree") in (1, 2)
              and isinstance(record.get("power"), (int, float)) and isinstance(record.get("floor"), (int, float)),
              where, "abundance_prior is not a JSON object with degree 1 or 2, power and floor numbers")
    _need(isinstance(cfg["engine_version"], str), where, "engine_version is not a string")
    try:
        model = ModelConfig.from_dict(cfg["model"])
    except HyperLDMError as exc:
        raise BundleError(f"model bundle {where}: {exc}") from exc
    n_bands, n_lib = model.n_bands, model.n_library

    sensor = cfg["sensor"]
    _exact_keys(sensor, ("name", "centers_nm", "fwhm_nm"), where, "sensor")
    _need(isinstance(sensor["name"], str), where, "sensor.name is not a string")
    for k in ("centers_nm", "fwhm_nm"):
        _need(_num_list(sensor[k]) and len(sensor[k]) == n_bands, where, f"sensor.{k} is not {n_bands} numbers")
    _need(all(v > 0 for v in sensor["fwhm_nm"]), where, "sensor.fwhm_nm has non-positive widths")

    lib = cfg["library"]
    _exact_keys(lib, ("ids", "names", "sources", "classes"), where, "library")
    for k in ("ids", "names", "sources", "classes"):
        _need(_str_list(lib[k]) and len(lib[k]) == n_lib, where, f"library.{k} is not {n_lib} strings")

    rgb = cfg["rgb"]
    _exact_keys(rgb, ("kind", "camera", "bands", "normalisation", "has_response"), where, "rgb")
    _need(rgb["kind"] in _RGB_KINDS, where, f"rgb.kind must be one of {list(_RGB_KINDS)}")
    _need(isinstance(rgb["has_response"], bool), where, "rgb.has_response is not true/false")
    _need(isinstance(rgb["normalisation"], dict), where, "rgb.normalisation is not a JSON object")
    if rgb["kind"] == "camera":
        _need(isinstance(rgb["camera"], str), where, "rgb.camera must name the camera response")
        _need(rgb["has_response"], where, "rgb.kind is camera but no rgb.response tensor is declared")
    else:
        bands = rgb["bands"]
        ok = isinstance(bands, list) and len(bands) == 3 and all(isinstance(b, int) for b in bands)
        _need(
            ok and all(1 <= b <= n_bands for b in bands),
            where,
            f"rgb.bands must be 3 band numbers 1..{n_bands}",
        )

    scale = cfg["latent_scale"]
    _need(
        isinstance(scale, (int, float)) and not isinstance(scale, bool) and math.isfinite(scale) and scale > 0,
        where,
        "latent_scale must be a positive number",
    )
    _validate_schedule(cfg["schedule"], where)

    clf = cfg["classifier"]
    if clf is not None:
        _exact_keys(clf, ("class_names",), where, "classifier")
        _need(
            _str_list(clf["class_names"]) and len(clf["class_names"]) == model.n_classes,
            where,
            f"classifier.class_names is not {model.n_classes} strings",
        )
    training = cfg["training"]
    _need(isinstance(training, dict), where, "training is not a JSON object")
    _need("gsd_m" in training and "provenance" in training, where, "training lacks gsd_m or provenance")
    gsd = training["gsd_m"]
    _need(
        gsd is None or (isinstance(gsd, (int, float)) and gsd > 0),
        where,
        "training.gsd_m must be positive or null",
    )
    _need(isinstance(cfg["metrics"], dict), where, "metrics is not a JSON object")
    return model


def _validate_schedule(schedule: Any, where: str) -> None:
    _need(isinstance(schedule, dict), where, "schedule is not a JSON object")
    try:
        from hyperldm_engine.diffusion.schedule import NoiseSchedule
    except ImportError:  # pragma: no cover - diffusion is part of the engine
        return
    try:
        NoiseSchedule.from_dict(schedule)
    except HyperLDMError as exc:
        raise BundleError(f"model bundle {where}: {exc}") from exc


def _build(path: Path, cfg: dict, model: ModelConfig, tensors: dict[str, torch.Tensor], device) -> Bundle:
    where = str(path)
    _need("library.R" in tensors, where, f"{WEIGHTS_NAME} lacks the tensor library.R")
    R = tensors["library.R"]
    _need(
        tuple(R.shape) == (model.n_bands, model.n_library),
        where,
        f"library.R has shape {tuple(R.shape)}, expected {(model.n_bands, model.n_library)}",
    )
    with_classifier = cfg["classifier"] is not None
    vqgan, denoiser, classifier = build_modules(model, R.float(), with_classifier)
    expected: dict[str, tuple[int, ...]] = {"library.R": (model.n_bands, model.n_library)}
    if cfg["rgb"]["has_response"]:
        expected["rgb.response"] = (3, model.n_bands)
    if "consistency" in cfg:
        expected["consistency.covariance"] = (model.n_bands, model.n_bands)
        nb = model.n_bands
        for key in ANCHORS:
            if key in cfg["consistency"]:
                expected.update({f"consistency.{key}.{name}": shape
                                 for name, shape in expected_shapes(cfg["consistency"][key], nb).items()})
    if "abundance_prior" in cfg:
        expected["abundance_prior.weights"] = (n_features(cfg["abundance_prior"]["degree"]), len(GROUPS))
    anchor = None
    if "anchor" in cfg:
        anchor = LatentAnchor(AnchorConfig.from_dict(cfg["anchor"]["config"]), model.vqgan.latent_channels,
                              model.vqgan.downsample_factor)
    modules = {"vqgan": vqgan, "denoiser": denoiser, "classifier": classifier, "anchor": anchor}
    for prefix, module in modules.items():
        if module is not None:
            expected.update({f"{prefix}.{k}": tuple(v.shape) for k, v in module.state_dict().items()})
    missing = sorted(set(expected) - set(tensors))
    extra = sorted(set(tensors) - set(expected))
    _need(not missing, where, f"{WEIGHTS_NAME} lacks {len(missing)} tensor(s), first {missing[:1]}")
    _need(not extra, where, f"{WEIGHTS_NAME} has {len(extra)} unexpected tensor(s), first {extra[:1]}")
    for key, shape in expected.items():
        t = tensors[key]
        _need(tuple(t.shape) == shape, where, f"tensor {key} has shape {tuple(t.shape)}, expected {shape}")
        _need(t.dtype == torch.float32, where, f"tensor {key} is {t.dtype}, expected float32")
        _need(bool(torch.isfinite(t).all()), where, f"tensor {key} contains NaN or infinite values")
    for prefix, module in modules.items():
        if module is not None:
            n = len(prefix) + 1
            module.load_state_dict({k[n:]: v for k, v in tensors.items() if k.startswith(prefix + ".")}, strict=True)
            module.to(device).eval()
    sensor, lib = cfg["sensor"], cfg["library"]
    rgb = {k: v for k, v in cfg["rgb"].items() if k != "has_response"}
    response = tensors.get("rgb.response")
    covariance = tensors.get("consistency.covariance")
    if covariance is not None:
        try:
            check_covariance(covariance.double(), model.n_bands)
        except ValueError as exc:
            raise BundleError(f"model bundle {where}: consistency.covariance: {exc}") from exc
    anchors: dict[str, CorrectionAnchor] = {}
    for key, attribute in ANCHORS.items():
        if f"consistency.{key}.gain" in expected:
            prefix = f"consistency.{key}."
            anchors[attribute] = anchor_from_tensors(
                cfg["consistency"][key], {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)},
                model.n_bands, device)
            try:
                check_covariance(anchors[attribute].covariance, model.n_bands)
            except ValueError as exc:
                raise BundleError(f"model bundle {where}: consistency.{key}.covariance: {exc}") from exc
    abundance_prior = None
    if "abundance_prior" in cfg:
        record = cfg["abundance_prior"]
        abundance_prior = GroupPrior(weights=tensors["abundance_prior.weights"].double().numpy().copy(),
                                     degree=int(record["degree"]), power=float(record["power"]),
                                     floor=float(record["floor"]))
        try:
            abundance_prior.check()
        except ValueError as exc:
            raise BundleError(f"model bundle {where}: abundance_prior: {exc}") from exc
    return Bundle(
        config=model,
        vqgan=vqgan,
        denoiser=denoiser,
        classifier=classifier,
        sensor_centers_nm=np.asarray(sensor["centers_nm"], dtype=np.float64),
        sensor_fwhm_nm=np.asarray(sensor["fwhm_nm"], dtype=np.float64),
        library_ids=list(lib["ids"]),
        library_names=list(lib["names"]),
        library_sources=list(lib["sources"]),
        library_classes=list(lib["classes"]),
        rgb=rgb,
        schedule=dict(cfg["schedule"]),
        latent_scale=float(cfg["latent_scale"]),
        rgb_response=None if response is None else response.numpy().copy(),
        class_names=list(cfg["classifier"]["class_names"]) if with_classifier else [],
        sensor_name=sensor["name"],
        training=dict(cfg["training"]),
        metrics=dict(cfg["metrics"]),
        engine_version=cfg["engine_version"],
        format_version=cfg["format_version"],
        anchor=anchor,
        anchor_info=dict(cfg["anchor"]) if anchor is not None else None,
        consistency_covariance=None if covariance is None else covariance.double().numpy().copy(),
        consistency_info=dict(cfg["consistency"]) if covariance is not None else None,
        **anchors,
        abundance_prior=abundance_prior,
        abundance_prior_info={k: v for k, v in cfg["abundance_prior"].items() if k not in ("degree", "power", "floor")}
        if abundance_prior is not None else None,
    )
