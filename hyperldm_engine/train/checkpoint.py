"""Training checkpoints: one safetensors file per checkpoint, tensors plus a JSON document.

A checkpoint holds everything a run needs to continue bit-identically: model, optimiser and LR
scheduler states, the stage and iteration, and every random state (torch generators, numpy bit
generators). Nested state (``optimizer.state_dict()`` and friends) is split into a flat dict of
tensors and a JSON tree whose leaves refer to them, so loading never unpickles anything. The file
is written under a temporary name in the same folder and renamed with ``os.replace``: a file with
a final name is always complete, whatever kills the process.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from hyperldm_engine.errors import BundleError, OutputError

FORMAT = "hyperldm-train-checkpoint/1"
_NAME = re.compile(r"^ckpt-(\d{9})\.safetensors$")
_TENSOR = "__tensor__"
_PAIRS = "__pairs__"
_TUPLE = "__tuple__"


def default_checkpoint_dir(out_bundle: str | os.PathLike) -> Path:
    """``<OUT_BUNDLE>.checkpoints`` beside the bundle (the bundle folder itself holds only the model)."""
    out = Path(out_bundle)
    return out.with_name(out.name + ".checkpoints")


def flatten_state(tree: Any) -> tuple[Any, dict[str, torch.Tensor]]:
    """Split a nested state into a JSON-serialisable tree and a flat ``{key: tensor}`` dict."""
    tensors: dict[str, torch.Tensor] = {}

    def walk(node: Any) -> Any:
        if isinstance(node, torch.Tensor):
            key = f"t{len(tensors):06d}"
            tensors[key] = node.detach().cpu().clone().contiguous()
            return {_TENSOR: key}
        if isinstance(node, np.ndarray):
            return walk(torch.from_numpy(np.ascontiguousarray(node)))
        if isinstance(node, dict):
            if all(isinstance(k, str) for k in node) and _TENSOR not in node and _PAIRS not in node:
                return {k: walk(v) for k, v in node.items()}
            return {_PAIRS: [[k, walk(v)] for k, v in node.items()]}
        if isinstance(node, tuple):
            return {_TUPLE: [walk(v) for v in node]}
        if isinstance(node, list):
            return [walk(v) for v in node]
        if isinstance(node, np.generic):
            return node.item()
        if node is None or isinstance(node, (bool, int, float, str)):
            return node
        raise TypeError(f"cannot store {type(node).__name__} in a checkpoint")

    return walk(tree), tensors


def unflatten_state(tree: Any, tensors: dict[str, torch.Tensor]) -> Any:
    """Inverse of :func:`flatten_state`."""
    if isinstance(tree, dict):
        if set(tree) == {_TENSOR}:
            return tensors[tree[_TENSOR]]
        if set(tree) == {_PAIRS}:
            return {_key(k): unflatten_state(v, tensors) for k, v in tree[_PAIRS]}
        if set(tree) == {_TUPLE}:
            return tuple(unflatten_state(v, tensors) for v in tree[_TUPLE])
        return {k: unflatten_state(v, tensors) for k, v in tree.items()}
    if isinstance(tree, list):
        return [unflatten_state(v, tensors) for v in tree]
    return tree


def _key(k: Any) -> Any:
    return tuple(k) if isinstance(k, list) else k


def save_checkpoint(directory: str | os.PathLike, iteration: int, state: dict[str, Any],
                    keep: int = 2) -> Path:
    """Write ``state`` as ``ckpt-<iteration>.safetensors`` atomically; keep the newest ``keep`` files."""
    directory = Path(directory)
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"{directory}: cannot create the checkpoint folder ({exc.strerror})") from exc
    tree, tensors = flatten_state(state)
    if not tensors:  # safetensors needs at least one entry to write a valid file
        tensors["t_empty"] = torch.zeros(0)
    final = directory / f"ckpt-{int(iteration):09d}.safetensors"
    fd, tmp = tempfile.mkstemp(prefix=f".{final.name}.hyperldm-tmp-{os.getpid()}-", dir=directory)
    os.close(fd)
    try:
        save_file(tensors, tmp, metadata={"format": FORMAT, "state": json.dumps(tree)})
        with open(tmp, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, final)
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise OutputError(f"{final}: cannot write the checkpoint ({exc.strerror})") from exc
        raise
    for old in list_checkpoints(directory)[:-keep] if keep > 0 else []:
        old.unlink(missing_ok=True)
    return final


def list_checkpoints(directory: str | os.PathLike) -> list[Path]:
    """Complete checkpoint files in ``directory``, oldest first (temporaries are ignored)."""
    directory = Path(directory)
    if not directory.is_dir():
        return []
    return sorted(p for p in directory.iterdir() if _NAME.match(p.name))


def load_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint` (no unpickling)."""
    path = Path(path)
    try:
        with safe_open(str(path), framework="pt") as handle:
            meta = handle.metadata() or {}
            tensors = {k: handle.get_tensor(k) for k in handle.keys()}  # noqa: SIM118
    except Exception as exc:
        raise BundleError(f"{path}: not a readable training checkpoint ({exc})") from exc
    if meta.get("format") != FORMAT:
        raise BundleError(f"{path}: not a HyperLDM training checkpoint (format {meta.get('format')!r})")
    return unflatten_state(json.loads(meta["state"]), tensors)


def latest_checkpoint(directory: str | os.PathLike) -> dict[str, Any] | None:
    """The newest readable checkpoint's state, or None when there is none."""
    for path in reversed(list_checkpoints(directory)):
        try:
            return load_checkpoint(path)
        except BundleError:
            continue
    return None


def remove_checkpoints(directory: str | os.PathLike) -> None:
    """Delete all checkpoints (and stale temporaries) in ``directory``, then the folder if empty."""
    directory = Path(directory)
    if not directory.is_dir():
        return
    for p in directory.iterdir():
        if _NAME.match(p.name) or ".hyperldm-tmp-" in p.name:
            p.unlink(missing_ok=True)
    with contextlib.suppress(OSError):
        directory.rmdir()


def rng_state(torch_generators: dict[str, torch.Generator], numpy_generators: dict[str, np.random.Generator]
              ) -> dict[str, Any]:
    """Every random state of a run: named torch generators, numpy bit generators, torch's global CPU RNG."""
    return {
        "torch": {k: g.get_state() for k, g in torch_generators.items()},
        "numpy": {k: g.bit_generator.state for k, g in numpy_generators.items()},
        "torch_global": torch.get_rng_state(),
    }


def restore_rng_state(state: dict[str, Any], torch_generators: dict[str, torch.Generator],
                      numpy_generators: dict[str, np.random.Generator], set_global: bool = True) -> None:
    """Put back the states captured by :func:`rng_state` (same names required).

    ``set_global=False`` leaves torch's global RNG alone (the caller sets it inside ``fork_rng``).
    """
    for k, g in torch_generators.items():
        g.set_state(state["torch"][k])
    for k, g in numpy_generators.items():
        g.bit_generator.state = state["numpy"][k]
    if set_global:
        torch.set_rng_state(state["torch_global"])
