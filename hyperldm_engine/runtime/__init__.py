"""Optional inference runtimes for the denoiser and the decoder (``pip install hyperldm-engine[onnx]``).

:func:`accelerate` returns the bundle with its denoiser and decoder run by the chosen runtime and
everything else (sampler, quantiser, RGB consistency, abundances) unchanged. ``HYPERLDM_RUNTIME``
chooses: ``torch`` (the default), ``onnxruntime``, or ``auto`` (ONNX Runtime on CPU when installed).
Measured (benchmarks/RESULTS.md, "Speed against the machine's limit"): on a quiet 2-core machine
PyTorch is as fast or faster end to end (ONNX Runtime x0.83-1.0); on a busy one, where other
processes hold cores, ONNX Runtime was x2.7-2.9 faster, because eager PyTorch's many small
multi-threaded operators stall at every barrier. Opt in on shared machines. Outputs agree within
1e-6 reflectance before quantisation (rounding can flip a nearest-codebook choice, as thread counts
do in PyTorch). PyTorch is always the fallback: when the package is missing, the device is not the
CPU or the export fails, the bundle is returned as it is, and under ``--autocast`` the denoiser's
steps run in PyTorch (mixed precision as asked).
"""

from __future__ import annotations

import importlib.util
import os
from typing import Any

#: HYPERLDM_RUNTIME values
RUNTIMES = ("auto", "torch", "onnxruntime")
ENV = "HYPERLDM_RUNTIME"


def onnxruntime_available() -> bool:
    """True when ONNX Runtime and the exporter's dependencies (onnx, onnxscript) can be imported."""
    return all(importlib.util.find_spec(m) is not None for m in ("onnxruntime", "onnx", "onnxscript"))


def chosen_runtime(device_type: str = "cpu", autocast: str | None = None, requested: str | None = None) -> str:
    """The runtime a run uses: ``requested`` (default: ``$HYPERLDM_RUNTIME``, else ``torch``) resolved."""
    from hyperldm_engine.errors import InputError

    name = (requested or os.environ.get(ENV) or "torch").strip().lower()
    if name not in RUNTIMES:
        raise InputError(f"{ENV}={name!r}: choose one of {', '.join(RUNTIMES)}")
    if name == "torch" or device_type != "cpu" or autocast is not None:
        return "torch"
    if name == "auto":
        return "onnxruntime" if onnxruntime_available() else "torch"
    if not onnxruntime_available():
        raise InputError(f"{ENV}=onnxruntime needs the optional packages: pip install 'hyperldm-engine[onnx]'")
    return name


def accelerate(bundle: Any, device_type: str = "cpu", autocast: str | None = None,
               requested: str | None = None) -> Any:
    """``bundle`` with its denoiser and decoder on the chosen runtime (itself when that is PyTorch)."""
    if chosen_runtime(device_type, autocast, requested) == "torch":
        return bundle
    from hyperldm_engine.runtime.onnx import onnx_bundle

    return onnx_bundle(bundle)
