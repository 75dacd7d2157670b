"""Latent-space vs data-space diffusion per 256 x 256 tile (the paper's Table V: ~60x).

Untrained weights are fine for timing (the cost of a forward pass does not depend on the values);
the denoisers' zero-initialised output layers are irrelevant to time.

1. Equal steps, equal U-Net widths: one U-Net step of the model's ``DenoiserConfig`` on the latent
   grid (n_x x 64 x 64) vs the same U-Net on the data grid (48 bands x 256 x 256, RGB condition at
   full resolution: a condition encoder without down-sampling).
2. End to end as the paper: a data-space DDPM with 100 steps (time = 100 x the measured data-space
   step) vs our default latent sampler measured whole (condition, DDIM steps, quantise, decode).

    nice -n 10 .venv/bin/python benchmarks/bench_latent_vs_data.py --model MODEL
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
from rasterio.windows import Window

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import default_model, machine_state, simulated_scene

from hyperldm_engine.io.raster import open_rgb, scene_statistics
from hyperldm_engine.models.bundle import load_bundle
from hyperldm_engine.models.unet import LatentDenoiser, RGBConditionEncoder
from hyperldm_engine.pipeline.synthesize import SamplingOptions, SynthesisTileFn
from hyperldm_engine.tiling.runner import TileRequest


def data_space_unet(config) -> LatentDenoiser:
    """The model's U-Net with n_bands input/output channels and a full-resolution RGB condition."""
    cfg = dataclasses.replace(config, vqgan=dataclasses.replace(config.vqgan, latent_channels=config.n_bands))
    net = LatentDenoiser(cfg)
    net.cond_encoder = RGBConditionEncoder(1, config.denoiser.cond_hidden, config.denoiser.cond_channels)
    net.factor = 1
    return net.eval().to(memory_format=torch.channels_last)


def step_time(net: LatentDenoiser, channels: int, side: int, rgb: torch.Tensor, repeats: int) -> float:
    x = torch.randn(1, channels, side, side).contiguous(memory_format=torch.channels_last)
    with torch.inference_mode():
        cond = net.encode_condition(rgb)
        t = torch.full((1,), 50)
        net(x, t, cond)
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            net(x, t, cond)
            times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=None)
    ap.add_argument("--tile", type=int, default=256)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--data-steps", type=int, default=100)
    args = ap.parse_args()
    model = args.model or default_model()
    print(machine_state())
    bundle = load_bundle(model).eval()
    cfg = bundle.config
    latent = bundle.denoiser.to(memory_format=torch.channels_last)
    data = data_space_unet(cfg)
    f = cfg.vqgan.downsample_factor
    rgb = torch.rand(1, 3, args.tile, args.tile).contiguous(memory_format=torch.channels_last)
    t_lat = step_time(latent, cfg.vqgan.latent_channels, args.tile // f, rgb, args.repeats)
    t_dat = step_time(data, cfg.n_bands, args.tile, rgb, args.repeats)
    print(f"model: {model}; U-Net channels {cfg.denoiser.channels}; tile {args.tile} px")
    print(f"one U-Net step: latent ({cfg.vqgan.latent_channels}x{args.tile // f}^2) {t_lat * 1e3:.0f} ms, "
          f"data ({cfg.n_bands}x{args.tile}^2) {t_dat * 1e3:.0f} ms: x{t_dat / t_lat:.1f}")
    opts = SamplingOptions()
    rgb_path = simulated_scene(Path(tempfile.mkdtemp(prefix="hyperldm-lvd-")) / "scene", args.tile)
    with open_rgb(rgb_path) as reader:
        stats = scene_statistics(reader)
        arr, mask = reader.read(Window(0, 0, args.tile, args.tile))
    fn = SynthesisTileFn(model, opts, stats)
    req = TileRequest(window=Window(0, 0, args.tile, args.tile), rgb=arr, mask=mask,
                      row=0, col=0, latent_row0=0, latent_col0=0, align=f)
    fn(req)
    times = []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        fn(req)
        times.append(time.perf_counter() - t0)
    t_e2e = statistics.median(times)
    t_ddpm = args.data_steps * t_dat
    print(f"end to end per tile: latent {opts.sampler} {opts.steps} steps + decode {t_e2e:.2f} s (measured); "
          f"data-space DDPM {args.data_steps} steps {t_ddpm:.1f} s ({args.data_steps} x measured step): "
          f"x{t_ddpm / t_e2e:.0f}")
    print(f"same sampler both sides (latent DDPM {args.data_steps} steps ~ {args.data_steps * t_lat:.1f} s + "
          f"decode): x{t_ddpm / (args.data_steps * t_lat):.1f} on the U-Net alone")


if __name__ == "__main__":
    main()
