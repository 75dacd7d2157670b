"""Data-parallel training through ``torch.distributed`` (started by ``torchrun``).

Each rank draws its own patches (its generators are seeded with the rank), gradients are averaged
over ranks with one coalesced ``all_reduce`` per optimiser step, and rank 0 alone writes
checkpoints and the bundle. This is the arithmetic of ``DistributedDataParallel`` without its
forward hooks: the GAN and the diffusion loss call several sub-modules (encoder, quantiser,
condition encoder, discriminators) outside ``forward``, which DDP's hooks do not follow.
Backend: gloo on CPU, nccl on CUDA. Without ``torchrun`` (no ``WORLD_SIZE``) everything is a no-op.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist

from hyperldm_engine.device import resolve_device

CPU = torch.device("cpu")


@dataclass(frozen=True)
class DistContext:
    """Where this process sits in the job."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = CPU

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def init_distributed(device: str = "auto") -> DistContext:
    """Join the process group that ``torchrun`` describes in the environment, or run alone."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    dev = resolve_device(device)
    if world <= 1:
        return DistContext(device=dev)
    rank = int(os.environ["RANK"])
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if dev.type == "cuda":
        dev = torch.device("cuda", local_rank)
        torch.cuda.set_device(dev)
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if dev.type == "cuda" else "gloo")
    return DistContext(rank=rank, world_size=world, local_rank=local_rank, device=dev)


def shutdown(ctx: DistContext, barrier: bool = True) -> None:
    """Leave the process group (after a barrier, so rank 0 finishes writing before the others exit)."""
    if ctx.enabled and dist.is_initialized():
        if barrier:
            dist.barrier()
        dist.destroy_process_group()


def average_gradients(ctx: DistContext, parameters: Iterable[torch.nn.Parameter]) -> None:
    """Average ``.grad`` over ranks in one flat all_reduce (missing grads count as zeros)."""
    if not ctx.enabled:
        return
    params = [p for p in parameters if p.requires_grad]
    grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat)
    flat /= ctx.world_size
    offset = 0
    for p, g in zip(params, grads, strict=True):
        n = g.numel()
        p.grad = flat[offset:offset + n].view_as(p).clone()
        offset += n


def broadcast_module(ctx: DistContext, module: torch.nn.Module) -> None:
    """Copy rank 0's parameters and buffers to every rank."""
    if not ctx.enabled:
        return
    with torch.no_grad():
        for t in list(module.parameters()) + list(module.buffers()):
            dist.broadcast(t.data, src=0)


def all_mean(ctx: DistContext, value: float) -> float:
    """Mean of a scalar over ranks (for logged losses)."""
    if not ctx.enabled:
        return float(value)
    t = torch.tensor([float(value)], dtype=torch.float64)
    dist.all_reduce(t)
    return float(t.item()) / ctx.world_size


def any_flag(ctx: DistContext, flag: int) -> int:
    """The largest flag over ranks (0 = none), so all ranks stop at the same iteration."""
    if not ctx.enabled:
        return int(flag)
    t = torch.tensor([int(flag)], dtype=torch.int64)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return int(t.item())


def gather_objects(ctx: DistContext, obj: Any) -> list[Any]:
    """Every rank's ``obj`` (JSON-like or tensors), in rank order, on every rank."""
    if not ctx.enabled:
        return [obj]
    out: list[Any] = [None] * ctx.world_size
    dist.all_gather_object(out, obj)
    return out


def broadcast_object(ctx: DistContext, obj: Any) -> Any:
    """Rank 0's ``obj`` on every rank."""
    if not ctx.enabled:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]
