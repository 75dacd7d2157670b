"""Roofline ratio: the model's achieved GFLOP/s on CPU over this machine's measured peak, in one run.

1. Peak: sustained GFLOP/s of a large float32 matrix product and of 3x3 convolutions (channels-last)
   at the model's own widths and tile sizes, and of the mixing head's matrix products.
2. FLOPs per tile counted two ways: ``torch.utils.flop_counter`` and by hand (2 x multiply-adds
   of every convolution, linear layer and attention product, from forward hooks), checked against
   each other.
3. Achieved: FLOPs per tile / measured seconds per tile (denoiser steps + decoder), for eager
   PyTorch and ONNX Runtime, over the measured peak.
4. Where the rest goes: the top operators of one tile from ``torch.profiler``.

    .venv/bin/python benchmarks/bench_roofline.py --tile 384
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("HYPERLDM_RUNTIME", "torch")

from common import default_model, machine_state

from hyperldm_engine.models.vqgan import decode_shared_condition
from hyperldm_engine.pipeline.synthesize import SamplingOptions, SynthesisTileFn


def rate(fn: Callable[[], Any], flops: float, repeats: int = 5) -> float:
    """Median GFLOP/s of ``fn`` (one warm-up call)."""
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return flops / statistics.median(times) / 1e9


def conv_rate(cin: int, cout: int, side: int, batch: int = 1) -> float:
    x = torch.randn(batch, cin, side, side).contiguous(memory_format=torch.channels_last)
    conv = nn.Conv2d(cin, cout, 3, padding=1).to(memory_format=torch.channels_last).eval()
    with torch.inference_mode():
        return rate(lambda: conv(x), 2.0 * cin * 9 * cout * side * side * batch)


def hand_count(model: nn.Module, run: Callable[[], Any]) -> float:
    """2 x multiply-adds of every Conv2d, Linear and attention product in one call of ``run``."""
    total = [0.0]

    def conv_hook(m: nn.Conv2d, inp: Any, out: torch.Tensor) -> None:
        k = m.kernel_size[0] * m.kernel_size[1]
        total[0] += 2.0 * m.in_channels // m.groups * k * m.out_channels * out.numel() / m.out_channels

    def linear_hook(m: nn.Linear, inp: Any, out: torch.Tensor) -> None:
        total[0] += 2.0 * m.in_features * out.numel()

    handles = []
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            handles.append(m.register_forward_hook(conv_hook))
        elif isinstance(m, nn.Linear):
            handles.append(m.register_forward_hook(linear_hook))
    sdpa = F.scaled_dot_product_attention

    def counted_sdpa(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, *a: Any, **kw: Any) -> torch.Tensor:
        # q @ k^T and softmax(.) @ v: 2 x (b heads n n d) multiply-adds each
        total[0] += 2 * 2.0 * q.shape[0] * q.shape[1] * q.shape[2] * k.shape[2] * q.shape[3]
        return sdpa(q, k, v, *a, **kw)

    F.scaled_dot_product_attention = counted_sdpa
    try:
        run()
    finally:
        F.scaled_dot_product_attention = sdpa
        for h in handles:
            h.remove()
    return total[0]


def counter_count(run: Callable[[], Any]) -> float:
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        run()
    return float(counter.get_total_flops())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=None)
    ap.add_argument("--tile", type=int, default=384, help="tile side in px (384: the 1024^2 scene's balanced tile)")
    ap.add_argument("--steps", type=int, default=SamplingOptions().steps)
    ap.add_argument("--profile-top", type=int, default=12)
    args = ap.parse_args()
    print(machine_state())
    model = args.model or default_model()
    bundle = SynthesisTileFn(model, SamplingOptions(steps=args.steps), None).load()[0]
    cfg = bundle.config
    f, side = cfg.vqgan.downsample_factor, args.tile
    lat = side // f
    torch.manual_seed(0)

    # 1. peak -----------------------------------------------------------------------------------
    n = 2048
    a, b = torch.randn(n, n), torch.randn(n, n)
    gemm = rate(lambda: a @ b, 2.0 * n**3)
    print(f"peak sgemm {n}^3: {gemm:.1f} GFLOP/s")
    convs = {}
    den_w, dec_w = cfg.denoiser.channels, cfg.vqgan.decoder_channels
    for level, c in enumerate(den_w):
        s = lat // 2**level
        convs[f"denoiser {c}->{c} @{s}^2"] = conv_rate(c, c, s)
    for level, c in enumerate(reversed(dec_w)):
        s = lat * 2**level
        convs[f"decoder {c}->{c} @{s}^2"] = conv_rate(c, c, s)
    convs["large 96->96 @128^2 x4"] = conv_rate(96, 96, 128, 4)
    for k, v in convs.items():
        print(f"conv3x3 channels-last {k}: {v:.1f} GFLOP/s")
    px = side * side
    feats, w1 = torch.randn(px, dec_w[0]), torch.randn(dec_w[0], cfg.n_library)
    ab, rt = torch.softmax(torch.randn(px, cfg.n_library), 1), torch.randn(cfg.n_library, cfg.n_bands)
    mix1 = rate(lambda: feats @ w1, 2.0 * px * dec_w[0] * cfg.n_library)
    mix2 = rate(lambda: ab @ rt, 2.0 * px * cfg.n_library * cfg.n_bands)
    print(f"mixing head matmuls at {side}^2 px: logits {dec_w[0]}x{cfg.n_library} {mix1:.1f} GFLOP/s, "
          f"mixing {cfg.n_library}x{cfg.n_bands} {mix2:.1f} GFLOP/s")
    peak = max(gemm, *convs.values())
    print(f"peak (best of the above): {peak:.1f} GFLOP/s")

    # 2. FLOPs per tile ---------------------------------------------------------------------------
    x = torch.randn(1, cfg.vqgan.latent_channels, lat, lat).contiguous(memory_format=torch.channels_last)
    rgb = torch.rand(1, 3, side, side).contiguous(memory_format=torch.channels_last)
    t = torch.full((1,), 50, dtype=torch.long)
    with torch.inference_mode():
        cond = bundle.denoiser.encode_condition(rgb)

        def step() -> Any:
            return bundle.denoiser(x, t, cond)

        def decode() -> Any:
            return decode_shared_condition(bundle.vqgan, x, rgb, False)

        def condition() -> Any:
            return bundle.denoiser.encode_condition(rgb)

        # the head's mixing product A @ (t R)^T is a plain matmul, not a module: added by hand
        mixing = 2.0 * side * side * cfg.n_library * cfg.n_bands
        counted = {name: (counter_count(fn), hand_count(mod, fn) + extra) for name, fn, mod, extra in (
            ("denoiser step", step, bundle.denoiser, 0.0), ("denoiser condition", condition, bundle.denoiser, 0.0),
            ("decoder", decode, bundle.vqgan, mixing))}
    for name, (c1, c2) in counted.items():
        print(f"flops {name}: flop_counter {c1 / 1e9:.3f} GFLOP, by hand {c2 / 1e9:.3f} GFLOP "
              f"(ratio {c1 / c2:.4f})")
    steps = args.steps
    tile_flops = steps * counted["denoiser step"][1] + counted["denoiser condition"][1] + counted["decoder"][1]
    print(f"flops per {side}^2 tile, DDIM {steps}: {tile_flops / 1e9:.2f} GFLOP "
          f"({steps} steps {steps * counted['denoiser step'][1] / tile_flops:.0%}, decoder "
          f"{counted['decoder'][1] / tile_flops:.0%})")

    # 3. achieved -------------------------------------------------------------------------------
    variants = {"eager": bundle}
    from hyperldm_engine.runtime import onnxruntime_available

    if onnxruntime_available():
        from hyperldm_engine.runtime.onnx import onnx_bundle

        variants["onnxruntime"] = onnx_bundle(bundle)
    times: dict[str, dict[str, list[float]]] = {k: {"step": [], "decode": []} for k in variants}
    with torch.inference_mode():
        for _ in range(4):  # alternate: eager, onnxruntime, eager, ...
            for name, b in variants.items():
                c = b.denoiser.encode_condition(rgb)
                t0 = time.perf_counter()
                b.denoiser(x, t, c)
                t1 = time.perf_counter()
                decode_shared_condition(b.vqgan, x, rgb, False)
                t2 = time.perf_counter()
                times[name]["step"].append(t1 - t0)
                times[name]["decode"].append(t2 - t1)
    for name, tt in times.items():
        st, de = statistics.median(tt["step"][1:]), statistics.median(tt["decode"][1:])
        achieved_step = counted["denoiser step"][1] / st / 1e9
        achieved_dec = counted["decoder"][1] / de / 1e9
        tile_s = steps * st + de
        achieved = (steps * counted["denoiser step"][1] + counted["decoder"][1]) / tile_s / 1e9
        print(f"achieved {name}: step {st * 1e3:.0f} ms = {achieved_step:.1f} GFLOP/s ({achieved_step / peak:.2f} "
              f"of peak); decode {de * 1e3:.0f} ms = {achieved_dec:.1f} GFLOP/s ({achieved_dec / peak:.2f}); "
              f"denoiser + decoder per tile {tile_s:.2f} s = {achieved:.1f} GFLOP/s, "
              f"roofline ratio {achieved / peak:.2f}")

    # 4. where the time goes ------------------------------------------------------------------------
    from torch.profiler import ProfilerActivity, profile

    with torch.inference_mode(), profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
        c = bundle.denoiser.encode_condition(rgb)
        for _ in range(steps):
            bundle.denoiser(x, t, c)
        decode_shared_condition(bundle.vqgan, x, rgb, False)
    events = sorted(prof.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)
    total = sum(e.self_cpu_time_total for e in events)
    print(f"profile (eager, one {side}^2 tile: {steps} steps + decode), top operators by self time:")
    for e in events[:args.profile_top]:
        print(f"  {e.key}: {e.self_cpu_time_total / 1e3:.0f} ms ({100 * e.self_cpu_time_total / total:.1f} %), "
              f"{e.count} calls")
    slow = [e for e in prof.key_averages(group_by_input_shape=True) if e.key == "aten::_slow_conv2d_forward"]
    for e in sorted(slow, key=lambda e: e.self_cpu_time_total, reverse=True)[:6]:
        print(f"  slow (non-oneDNN) convolution, input shapes {e.input_shapes[:2]}: "
              f"{e.self_cpu_time_total / 1e3:.0f} ms, {e.count} calls")


if __name__ == "__main__":
    main()
