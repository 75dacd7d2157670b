"""The denoiser and the decoder exported to ONNX and run by ONNX Runtime on the CPU.

Four graphs with dynamic batch and tile sizes: the U-Net step ``(x_t, t, cond) -> model output``,
the decoder's RGB condition pyramid, the decoder ``(z_q, pyramid) -> features`` and the abundance
head ``features -> (t * (R @ A), A = softmax(W f + b))``; the cube is the same whether or not the
abundances are kept. They are exported once per model, engine and library versions and cached
under ``$HYPERLDM_CACHE`` (default ``$XDG_CACHE_HOME/hyperldm`` or ``~/.cache/hyperldm``); an
export takes seconds to a minute, a cached one loads in well under a second. The proxies keep the
modules' call signatures, so the tile function runs unchanged (``pipeline.synthesize``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import io
import json
import logging
import os
import sys
import tempfile
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from hyperldm_engine.cache import cache_root
from hyperldm_engine.timings import timed

#: bump when the exported graphs change, so that old cached files are not reused
EXPORT_VERSION = 2
OPSET = 18
#: pixels per call of the abundance head: 16384 x 300 logits = 19 MiB (PyTorch's head runs in blocks of
#: ``models.vqgan.HEAD_CHUNK``; this path was measured at 16384 only)
HEAD_PIXELS = 16384


def model_key(bundle: Any) -> str:
    """Hash of the weights, the model config and the versions the export depends on."""
    import onnxruntime

    h = hashlib.sha256()
    meta = {"export": EXPORT_VERSION, "opset": OPSET, "torch": torch.__version__, "ort": onnxruntime.__version__,
            "config": bundle.config.to_dict()}
    h.update(json.dumps(meta, sort_keys=True, default=str).encode())
    for module in (bundle.denoiser, bundle.vqgan):
        for name, tensor in sorted(module.state_dict().items()):
            h.update(name.encode())
            h.update(tensor.detach().float().cpu().contiguous().numpy().tobytes())
    h.update(bundle.vqgan.library.detach().float().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:24]


class _Step(nn.Module):
    def __init__(self, denoiser: nn.Module) -> None:
        super().__init__()
        self.denoiser = denoiser

    def forward(self, x_t: torch.Tensor, t: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        return self.denoiser(x_t, t, cond)


class _Condition(nn.Module):
    def __init__(self, vqgan: nn.Module) -> None:
        super().__init__()
        self.encoder = vqgan.condition_encoder

    def forward(self, rgb: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return tuple(self.encoder(rgb))


class _Decoder(nn.Module):
    def __init__(self, vqgan: nn.Module) -> None:
        super().__init__()
        self.decoder = vqgan.decoder

    def forward(self, z_q: torch.Tensor, cond: tuple[torch.Tensor, ...]) -> torch.Tensor:
        return self.decoder(z_q, list(cond) if cond else None)


class _Head(nn.Module):
    """``models.vqgan.ConditionalVQGAN.mix_head`` on (N, C, H, W) features: the cube (N, n_bands, H, W)
    and the abundances channels-last (N, H, W, n_g), so that one graph serves runs with and without them."""

    def __init__(self, vqgan: nn.Module) -> None:
        super().__init__()
        self.linear = vqgan.abundance_head
        with torch.no_grad():
            rt = (vqgan.illumination()[:, None] * vqgan.library).t().contiguous()
        self.register_buffer("rt", rt)

    def forward(self, feats: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        a = torch.softmax(self.linear(feats.permute(0, 2, 3, 1)), dim=-1)
        return (a @ self.rt).permute(0, 3, 1, 2), a


def _quiet_export(module: nn.Module, args: tuple[Any, ...], path: Path, names: list[str],
                  outputs: list[str], dynamic: tuple[Any, ...]) -> None:
    """``torch.onnx.export`` (dynamo) with its progress lines and warnings kept off stdout/stderr
    (stdout carries ``--progress json``)."""
    logger = logging.getLogger("torch.onnx")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()), \
                contextlib.redirect_stderr(io.StringIO()):
            warnings.simplefilter("ignore")
            torch.onnx.export(module.eval(), args, str(path), dynamo=True, input_names=names, output_names=outputs,
                              dynamic_shapes=dynamic, opset_version=OPSET, external_data=False)
    finally:
        logger.setLevel(level)


def export_graphs(bundle: Any, folder: Path) -> dict[str, Path]:
    """Export the four graphs of ``bundle`` into ``folder`` (written under temporary names, renamed)."""
    cfg = bundle.config
    f = cfg.vqgan.downsample_factor
    lat, nx = 2 * cfg.denoiser.alignment, cfg.vqgan.latent_channels  # a small tile; the axes stay dynamic
    x = torch.randn(2, nx, lat, lat)  # batch 2: a size-1 axis would be exported as a constant
    rgb = torch.rand(2, 3, f * lat, f * lat)
    dim = torch.export.Dim.DYNAMIC
    b, hw = {0: dim}, {0: dim, 2: dim, 3: dim}
    vqgan, den = bundle.vqgan.cpu().float(), bundle.denoiser.cpu().float()
    paths = {}
    folder.mkdir(parents=True, exist_ok=True)
    with torch.no_grad():
        cond = den.encode_condition(rgb)
        jobs: list[tuple[str, nn.Module, tuple, list[str], list[str], tuple]] = [
            ("step", _Step(den), (x, torch.full((2,), 10, dtype=torch.long), cond), ["x_t", "t", "cond"], ["out"],
             (hw, b, hw))]
        pyramid: tuple[torch.Tensor, ...] = ()
        if vqgan.condition_encoder is not None:
            pyramid = tuple(vqgan.condition_encoder(rgb))
            jobs.append(("condition", _Condition(vqgan), (rgb,), ["rgb"], [f"c{i}" for i in range(len(pyramid))],
                         (hw,)))
        names = [f"c{i}" for i in range(len(pyramid))]
        feats = vqgan.decoder(x, list(pyramid) or None)
        jobs.append(("decoder", _Decoder(vqgan), (x, pyramid), ["z_q", *names], ["feats"],
                     (hw, tuple(hw for _ in pyramid))))
        jobs.append(("head", _Head(vqgan), (feats,), ["feats"], ["hsi", "abundances"], (hw,)))
        for name, module, args, inputs, outputs, dynamic in jobs:
            final = folder / f"{name}.onnx"
            if not final.exists():
                fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{name}.", suffix=".onnx")
                os.close(fd)
                try:
                    _quiet_export(module, args, Path(tmp), inputs, outputs, dynamic)
                    os.replace(tmp, final)
                finally:
                    if os.path.exists(tmp):
                        os.unlink(tmp)
            paths[name] = final
    return paths


def _session(path: Path) -> Any:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = max(1, torch.get_num_threads())  # the same threads torch would use
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # no memory arena: the arenas of four sessions kept ~600 MB more at peak on a 1024^2 scene (1.90 GB
    # vs 1.29 GB without, PyTorch 1.16 GB), for no measurable speed (benchmarks/RESULTS.md, "Runtimes")
    options.enable_cpu_mem_arena = False
    # threads that sleep between calls: spinning ones took the cores from PyTorch's own threads (the
    # sampler's arithmetic, the noise field) on 2 cores; quiet 1024^2 scene 9.7 s vs 12.0-13.4 s spinning
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def _np(x: torch.Tensor) -> np.ndarray:
    return np.ascontiguousarray(x.detach().float().cpu().numpy())


class OrtDenoiser:
    """Stands in for ``LatentDenoiser``: the condition encoder stays in PyTorch (once per tile)."""

    def __init__(self, denoiser: nn.Module, step: Path) -> None:
        self.torch_module = denoiser
        self.session = _session(step)

    def encode_condition(self, rgb: torch.Tensor) -> torch.Tensor:
        return self.torch_module.encode_condition(rgb)

    def __call__(self, x_t: torch.Tensor, t: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        if torch.is_autocast_enabled(x_t.device.type):  # --autocast: PyTorch's mixed precision, as asked
            return self.torch_module(x_t, t, cond)
        t = torch.as_tensor(t, device=x_t.device)
        if t.dim() == 0:
            t = t.expand(x_t.shape[0])
        if cond.shape[0] != x_t.shape[0]:
            cond = cond.expand(x_t.shape[0], -1, -1, -1)
        out = self.session.run(None, {"x_t": _np(x_t), "t": t.long().cpu().numpy(), "cond": _np(cond)})[0]
        return torch.from_numpy(out).to(x_t.dtype)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.torch_module, name)


class OrtVQGAN:
    """Stands in for ``ConditionalVQGAN`` at synthesis: condition pyramid, decoder and head in ONNX
    Runtime; quantiser and everything else from the PyTorch module."""

    def __init__(self, vqgan: nn.Module, paths: dict[str, Path]) -> None:
        self.torch_module = vqgan
        self.condition = _session(paths["condition"]) if "condition" in paths else None
        self.decoder_session = _session(paths["decoder"])
        self.head = _session(paths["head"])

    def encode_condition(self, rgb: torch.Tensor | None) -> list[torch.Tensor] | None:
        if self.condition is None or rgb is None:
            return self.torch_module.encode_condition(rgb)
        self.torch_module._check_hw(rgb, "RGB")
        return [torch.from_numpy(c) for c in self.condition.run(None, {"rgb": _np(rgb)})]

    def decoder(self, z_q: torch.Tensor, cond: list[torch.Tensor] | None) -> torch.Tensor:
        feeds = {"z_q": _np(z_q)}
        if cond is not None:
            feeds.update({f"c{i}": _np(c) for i, c in enumerate(cond)})
        return torch.from_numpy(self.decoder_session.run(None, feeds)[0])

    def mix_head(self, feats: torch.Tensor, return_abundances: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
        """As ``ConditionalVQGAN.mix_head``: the cube, and the abundances (a channels-first view) when asked."""
        n, _, h, w = feats.shape
        rows = max(1, HEAD_PIXELS // max(1, n * w))
        f = _np(feats)
        cubes, abundances = [], []
        for r in range(0, h, rows):
            hsi, a = self.head.run(None, {"feats": np.ascontiguousarray(f[:, :, r:r + rows])})
            cubes.append(hsi)
            if return_abundances:
                abundances.append(a)
        cube = torch.from_numpy(np.concatenate(cubes, axis=2))
        if not return_abundances:
            return cube, None
        return cube, torch.from_numpy(np.concatenate(abundances, axis=1)).permute(0, 3, 1, 2)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.torch_module, name)


@timed("model load")
def onnx_bundle(bundle: Any, folder: Path | None = None) -> Any:
    """``bundle`` whose denoiser and VQGAN run in ONNX Runtime (graphs exported or taken from the cache).

    Falls back to ``bundle`` itself, with a warning on stderr, when the export fails.
    """
    try:
        folder = folder or cache_root() / "onnx" / model_key(bundle)
        paths = export_graphs(bundle, folder)
        return dataclasses.replace(bundle, denoiser=OrtDenoiser(bundle.denoiser, paths["step"]),
                                   vqgan=OrtVQGAN(bundle.vqgan, paths))
    except Exception as exc:  # any exporter or runtime failure: PyTorch gives the same result, slower
        print(f"warning: ONNX Runtime not used ({type(exc).__name__}: {str(exc).splitlines()[0][:200]}); "
              "running the model in PyTorch", file=sys.stderr)
        return bundle
