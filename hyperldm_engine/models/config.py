"""Architecture hyper-parameters of the HyperLDM networks: one JSON-serialisable config per family.

``ModelConfig`` holds the sizes shared by all networks (bands, library size, classes) and one
sub-config per network: ``VQGANConfig`` (conditional VQGAN, stage 1), ``DenoiserConfig`` (latent
U-Net, stage 2) and ``ClassifierConfig`` (spectral classifier for SD / SDM). ``to_dict`` /
``from_dict`` round-trip through JSON and refuse missing, unknown or ill-typed keys, so a model is
rebuilt from its config alone (as diffusers' ``register_to_config``).

Presets: ``ModelConfig.small`` (the bundled default, sized for 2 CPU cores) and ``ModelConfig.paper``
(Liu et al., TGRS 2023: f = 4, n_x = 16, K = 1024, U-Net [128, 128, 256, 256, 512, 512], attention
at 8 x 8 and 4 x 4 for a 64 x 64 latent, time embedding 512, condition channels 32).
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from dataclasses import dataclass, field
from typing import Any, Literal

from hyperldm_engine.errors import InputError

NormKind = Literal["pixel", "group", "none"]
_NORMS = ("pixel", "group", "none")


#: size limits checked before any module is built (far above the paper's configuration)
MAX_BANDS = 4096
MAX_LIBRARY = 100_000
MAX_WIDTH = 8192
MAX_CODEBOOK = 1 << 20
MAX_WEIGHTS_GIB = 8.0
#: model presets: the measured default, its sizes without the departures, and the paper's
PRESETS = ("default", "small", "paper")


class ConfigError(InputError):
    """A model configuration has a missing, unknown or invalid entry."""


def _is_power_of_two(n: int) -> bool:
    return n >= 1 and (n & (n - 1)) == 0


def _check(cond: bool, message: str) -> None:
    if not cond:
        raise ConfigError(message)


def _positive_ints(name: str, values: tuple[int, ...], min_len: int = 1) -> None:
    _check(len(values) >= min_len, f"model config: {name} needs at least {min_len} entries")
    _check(all(isinstance(v, int) and v > 0 for v in values), f"model config: {name} must be positive ints")


@dataclass(frozen=True)
class VQGANConfig:
    """Conditional VQGAN (stage 1).

    Channel tuples list widths from full resolution down to the latent grid, so their length is
    ``log2(downsample_factor) + 1``. The decoder uses only per-pixel / local operators
    (``norm="pixel"`` is a channel-wise LayerNorm at each pixel), so a tile's output does not depend
    on the tile size.
    """

    downsample_factor: int = 4  # f: latent grid is (H / f, W / f)
    latent_channels: int = 16  # n_x
    codebook_size: int = 1024  # K
    beta: float = 1.0  # commitment weight; the paper's eq. weights both VQ terms 1
    encoder_channels: tuple[int, ...] = (32, 64, 128)
    decoder_channels: tuple[int, ...] = (32, 64, 128)
    condition_channels: tuple[int, ...] = (16, 32, 64)  # C(RGB) pyramid, full res -> latent
    num_res_blocks: int = 1  # per level, encoder and decoder
    norm: NormKind = "pixel"
    use_rgb_condition: bool = True  # False: the paper's "without RGB condition" ablation
    illumination_activation: Literal["softplus", "relu"] = "softplus"
    usage_decay: float = 0.99  # EMA decay of code usage counts (dead-code detection)
    dead_code_threshold: float = 0.01  # EMA assignments per step below which a code is dead
    # Fraction of training samples whose latent is replaced by zeros (0 = the paper). A decoder trained
    # with it must reconstruct from the RGB alone, so ``decode(0, rgb)`` is a deterministic estimate
    # (the mean mode) and the RGB condition cannot be ignored. Absent from bundles before it existed.
    latent_dropout: float = field(default=0.0, metadata={"optional": True})

    def validate(self) -> None:
        f = self.downsample_factor
        _check(_is_power_of_two(f) and f >= 2, f"model config: vqgan.downsample_factor {f} must be 2, 4, 8 ...")
        n_levels = int(math.log2(f)) + 1
        for name in ("encoder_channels", "decoder_channels", "condition_channels"):
            values = getattr(self, name)
            _positive_ints(f"vqgan.{name}", values)
            _check(
                len(values) == n_levels,
                f"model config: vqgan.{name} needs {n_levels} entries for downsample_factor {f}",
            )
        _check(
            self.latent_channels > 0 and self.codebook_size > 1,
            "model config: vqgan latent sizes must be positive",
        )
        _check(self.beta >= 0, "model config: vqgan.beta must be >= 0")
        _check(self.num_res_blocks >= 0, "model config: vqgan.num_res_blocks must be >= 0")
        _check(self.norm in _NORMS, f"model config: vqgan.norm must be one of {_NORMS}")
        _check(
            self.illumination_activation in ("softplus", "relu"),
            "model config: vqgan.illumination_activation must be softplus or relu",
        )
        _check(0.0 <= self.usage_decay < 1.0, "model config: vqgan.usage_decay must be in [0, 1)")
        _check(0.0 <= self.latent_dropout < 1.0, "model config: vqgan.latent_dropout must be in [0, 1)")

    @property
    def n_levels(self) -> int:
        return int(math.log2(self.downsample_factor)) + 1


@dataclass(frozen=True)
class DenoiserConfig:
    """Latent U-Net (stage 2).

    Level ``i`` works at ``2**i`` times below the latent grid with ``channels[i]`` channels, so a
    latent side must be divisible by ``2**(len(channels) - 1)``. ``attention_downsample`` lists the
    factors (relative to the latent grid) that get self-attention: (8, 16) is 8 x 8 and 4 x 4 for
    the paper's 64 x 64 latent of a 256 px patch.
    """

    channels: tuple[int, ...] = (32, 64, 96)
    num_res_blocks: int = 2
    attention_downsample: tuple[int, ...] = ()
    head_channels: int = 32
    time_embed_dim: int = 128
    cond_channels: int = 32
    cond_hidden: tuple[int, ...] = (16, 32)  # RGB encoder widths: full res, then each /2 step
    norm: NormKind = "pixel"
    dropout: float = 0.0
    # What the U-Net outputs (diffusion.parameterization.Prediction): "epsilon" is the paper's; "x0"
    # and "v" give a usable clean-latent estimate at every noise level. Absent from older bundles.
    prediction: Literal["epsilon", "x0", "v"] = field(default="epsilon", metadata={"optional": True})

    def validate(self) -> None:
        _positive_ints("denoiser.channels", self.channels)
        _check(self.num_res_blocks >= 1, "model config: denoiser.num_res_blocks must be >= 1")
        deepest = 2 ** (len(self.channels) - 1)
        for a in self.attention_downsample:
            _check(
                _is_power_of_two(a) and a <= deepest,
                f"model config: denoiser.attention_downsample {a} must be a power of 2 <= {deepest}",
            )
        _check(self.head_channels > 0, "model config: denoiser.head_channels must be positive")
        _positive_ints("denoiser.cond_hidden", self.cond_hidden)
        _check(
            self.time_embed_dim > 0 and self.cond_channels > 0,
            "model config: denoiser widths must be positive",
        )
        _check(self.norm in _NORMS, f"model config: denoiser.norm must be one of {_NORMS}")
        if self.norm == "group":
            _check(
                all(c % min(32, c) == 0 for c in self.channels),
                "model config: group norm needs channels % 32 == 0",
            )
        _check(0.0 <= self.dropout < 1.0, "model config: denoiser.dropout must be in [0, 1)")

    @property
    def alignment(self) -> int:
        """Latent sides must be multiples of this (2 ** number of downsamplings)."""
        return 2 ** (len(self.channels) - 1)


@dataclass(frozen=True)
class ClassifierConfig:
    """Spectral classifier S: four Conv1d layers and one Linear layer (paper, SD / SDM)."""

    channels: tuple[int, int, int, int] = (16, 32, 32, 64)
    kernel_size: int = 5

    def validate(self) -> None:
        _positive_ints("classifier.channels", self.channels)
        _check(len(self.channels) == 4, "model config: classifier.channels needs exactly 4 entries")
        _check(
            self.kernel_size % 2 == 1 and self.kernel_size > 0,
            "model config: classifier.kernel_size must be odd",
        )


@dataclass(frozen=True)
class ModelConfig:
    """Everything needed to rebuild the HyperLDM networks from JSON."""

    n_bands: int = 48  # n_c
    n_library: int = 345  # n_g, columns of the decoder library R
    n_classes: int = 6  # n_s, classifier outputs
    vqgan: VQGANConfig = field(default_factory=VQGANConfig)
    denoiser: DenoiserConfig = field(default_factory=DenoiserConfig)
    classifier: ClassifierConfig = field(default_factory=ClassifierConfig)
    preset: str = "custom"

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        for name in ("n_bands", "n_library", "n_classes"):
            value = getattr(self, name)
            _check(isinstance(value, int) and value > 0, f"model config: {name} must be a positive int")
        self.vqgan.validate()
        self.denoiser.validate()
        self.classifier.validate()
        # sizes before any module is built: a corrupt or hostile config must not allocate gigabytes
        for name, limit in (("n_bands", MAX_BANDS), ("n_library", MAX_LIBRARY), ("n_classes", MAX_LIBRARY)):
            _check(getattr(self, name) <= limit, f"model config: {name} {getattr(self, name)} exceeds {limit}")
        widths = (*self.vqgan.encoder_channels, *self.vqgan.decoder_channels, *self.vqgan.condition_channels,
                  self.vqgan.latent_channels, *self.denoiser.channels, self.denoiser.time_embed_dim,
                  self.denoiser.cond_channels, *self.denoiser.cond_hidden, *self.classifier.channels)
        _check(max(widths) <= MAX_WIDTH, f"model config: a network width of {max(widths)} exceeds {MAX_WIDTH}")
        _check(self.vqgan.codebook_size <= MAX_CODEBOOK,
               f"model config: vqgan.codebook_size {self.vqgan.codebook_size} exceeds {MAX_CODEBOOK}")
        gib = self.estimated_parameters() * 4 / 2**30
        _check(gib <= MAX_WEIGHTS_GIB, f"model config: the networks would need about {gib:.1f} GiB of weights "
                                       f"(limit {MAX_WEIGHTS_GIB} GiB); the config is corrupt or not for this engine")

    def estimated_parameters(self) -> int:
        """Trainable parameters estimated from the sizes alone (3x3 convolutions dominate; within ~15%)."""
        v, d = self.vqgan, self.denoiser
        conv = sum(9 * c * c * (2 * v.num_res_blocks + 2) for c in (*v.encoder_channels, *v.decoder_channels))
        conv += sum(9 * c * c * 2 for c in v.condition_channels)
        conv += 9 * (self.n_bands + v.latent_channels) * max(v.encoder_channels + v.decoder_channels)
        conv += v.codebook_size * v.latent_channels + v.decoder_channels[0] * self.n_library
        unet = sum(9 * c * c * (4 * d.num_res_blocks + 4) + 2 * c * d.time_embed_dim for c in d.channels)
        unet += 2 * d.time_embed_dim**2 + sum(9 * c * c for c in d.cond_hidden)
        return int(conv + unet + 5 * sum(c * c for c in self.classifier.channels))

    # ---- presets -------------------------------------------------------------------------------
    @classmethod
    def small(cls, n_bands: int = 48, n_library: int = 345, n_classes: int = 6) -> ModelConfig:
        """The bundled default: trains in about half an hour on 2 CPU cores, fast to synthesize."""
        return cls(
            n_bands=n_bands,
            n_library=n_library,
            n_classes=n_classes,
            vqgan=VQGANConfig(
                downsample_factor=4,
                latent_channels=16,
                codebook_size=512,
                encoder_channels=(24, 48, 96),
                decoder_channels=(24, 48, 96),
                condition_channels=(16, 32, 48),
                num_res_blocks=1,
                norm="pixel",
            ),
            denoiser=DenoiserConfig(
                channels=(24, 48, 64, 96),
                num_res_blocks=2,
                attention_downsample=(8,),
                head_channels=32,
                time_embed_dim=128,
                cond_channels=32,
                cond_hidden=(16, 32),
                norm="pixel",
            ),
            classifier=ClassifierConfig(channels=(16, 32, 32, 64), kernel_size=5),
            preset="small",
        )

    @classmethod
    def paper(cls, n_bands: int = 48, n_library: int = 345, n_classes: int = 20) -> ModelConfig:
        """The paper's sizes (DFC 2018: 48 bands, 345 USGS spectra, 20 classes)."""
        return cls(
            n_bands=n_bands,
            n_library=n_library,
            n_classes=n_classes,
            vqgan=VQGANConfig(
                downsample_factor=4,
                latent_channels=16,
                codebook_size=1024,
                encoder_channels=(128, 128, 256),
                decoder_channels=(128, 128, 256),
                condition_channels=(64, 128, 256),
                num_res_blocks=2,
                norm="pixel",
            ),
            denoiser=DenoiserConfig(
                channels=(128, 128, 256, 256, 512, 512),
                num_res_blocks=2,
                attention_downsample=(8, 16),
                head_channels=64,
                time_embed_dim=512,
                cond_channels=32,
                cond_hidden=(32, 64),
                norm="group",
            ),
            classifier=ClassifierConfig(channels=(32, 64, 64, 128), kernel_size=5),
            preset="paper",
        )

    @classmethod
    def default(cls, n_bands: int = 48, n_library: int = 345, n_classes: int = 6) -> ModelConfig:
        """The bundled default's design: ``small`` sizes, a decoder trained with 30 % zero latents
        (it must use the RGB, and gives the mean mode) and an x0-predicting denoiser (a usable
        clean-latent estimate at every noise level). Where and why it departs from the paper:
        docs/training.md."""
        small = cls.small(n_bands=n_bands, n_library=n_library, n_classes=n_classes)
        return small.replace(vqgan=dataclasses.replace(small.vqgan, latent_dropout=0.3),
                             denoiser=dataclasses.replace(small.denoiser, prediction="x0"), preset="default")

    @classmethod
    def preset_named(cls, name: str, **sizes: int) -> ModelConfig:
        """``default``, ``small`` or ``paper`` with the data sizes (n_bands, n_library, n_classes) filled in."""
        if name == "default":
            return cls.default(**sizes)
        if name == "small":
            return cls.small(**sizes)
        if name == "paper":
            return cls.paper(**sizes)
        raise ConfigError(f"model config: unknown preset {name!r} (choose {', '.join(PRESETS)})")

    def replace(self, **changes: Any) -> ModelConfig:
        return dataclasses.replace(self, **changes)

    # ---- JSON ----------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """Plain JSON types only (tuples become lists)."""
        return _to_plain(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelConfig:
        """Rebuild from ``to_dict`` output; refuses missing, unknown or ill-typed keys."""
        return _from_plain(cls, data, "model")


def _to_plain(obj: Any) -> Any:
    if dataclasses.is_dataclass(obj):
        return {f.name: _to_plain(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, (tuple, list)):
        return [_to_plain(v) for v in obj]
    return obj


def _from_plain(cls: type, data: Any, where: str) -> Any:
    _check(isinstance(data, dict), f"model config: {where} must be a JSON object")
    hints = typing.get_type_hints(cls)
    fields = dataclasses.fields(cls)
    names = [f.name for f in fields]
    optional = {f.name: f.default for f in fields if f.metadata.get("optional")}
    data = {**optional, **data}  # keys added after format 1 may be absent: they take the old behaviour
    missing = sorted(set(names) - set(data))
    extra = sorted(set(data) - set(names))
    _check(not missing, f"model config: {where} lacks key(s) {', '.join(missing)}")
    _check(not extra, f"model config: {where} has unknown key(s) {', '.join(extra)}")
    kwargs = {name: _coerce(hints[name], data[name], f"{where}.{name}") for name in names}
    return cls(**kwargs)


def _coerce(hint: Any, value: Any, where: str) -> Any:
    if dataclasses.is_dataclass(hint):
        return _from_plain(hint, value, where)
    origin = typing.get_origin(hint)
    if origin is tuple:
        _check(isinstance(value, list), f"model config: {where} must be a list")
        args = typing.get_args(hint)
        item = args[0]
        if not (len(args) == 2 and args[1] is Ellipsis):
            _check(len(value) == len(args), f"model config: {where} must have {len(args)} entries")
        return tuple(_coerce(item, v, f"{where}[]") for v in value)
    if origin is Literal:
        options = typing.get_args(hint)
        _check(value in options, f"model config: {where} must be one of {list(options)}")
        return value
    if origin in (typing.Union, types.UnionType):
        raise ConfigError(f"model config: unsupported union at {where}")  # pragma: no cover
    if hint is bool:
        _check(isinstance(value, bool), f"model config: {where} must be true or false")
        return value
    if hint is int:
        _check(
            isinstance(value, int) and not isinstance(value, bool),
            f"model config: {where} must be an integer",
        )
        return value
    if hint is float:
        _check(
            isinstance(value, (int, float)) and not isinstance(value, bool),
            f"model config: {where} must be a number",
        )
        return float(value)
    if hint is str:
        _check(isinstance(value, str), f"model config: {where} must be a string")
        return value
    raise ConfigError(f"model config: cannot read {where}")  # pragma: no cover
