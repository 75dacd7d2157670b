"""The torch device a command runs on, from its ``--device`` text (one owner for every command)."""

from __future__ import annotations

import torch

from hyperldm_engine.errors import InputError, ResourceError


def resolve_device(name: str) -> torch.device:
    """'cpu', 'cuda', 'cuda:N' or 'auto' (CUDA when available); a missing GPU is a ResourceError, an
    unknown name an InputError (both one line, before any work)."""
    key = str(name).lower()
    if key == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if key == "cpu":
        return torch.device("cpu")
    if key.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ResourceError(f"--device {name}: no CUDA GPU is available to this torch "
                                f"(torch {torch.__version__}); use --device cpu or auto")
        return torch.device(key)
    raise InputError(f"unknown device {name!r}; choose cpu, cuda or auto")
