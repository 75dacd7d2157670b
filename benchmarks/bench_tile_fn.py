"""Per-tile cost of SynthesisTileFn before/after the optimisations, bf16 autocast, writer compression.

"before" re-creates the original tile function (commit 7537396): contiguous (NCHW) models and the
VQGAN condition encoder run on the RGB expanded to K samples. "after" is the current
``SynthesisTileFn`` (channels-last models, the condition pyramid computed once and broadcast).
Both run interleaved in one process on the same tile, so load changes on a shared machine hit both
alike; medians are printed. Then bf16 autocast on CPU (speed and MPSNR against float32), and the
GeoTIFF writer's ZSTD level 9 (default) vs 1 on a 1024 x 1024 x 48 float32 cube of synthesized-like
data (time and size).

    nice -n 10 .venv/bin/python benchmarks/bench_tile_fn.py --model MODEL --samples 1 2
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from rasterio.windows import Window

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import default_model, machine_state, simulated_scene

from hyperldm_engine.diffusion.noise import INITIAL_STEP, NoiseField, noise_fn_for_windows
from hyperldm_engine.io.raster import normalise_rgb, open_rgb, scene_statistics
from hyperldm_engine.io.writer import HsiWriter
from hyperldm_engine.metrics.similarity import mpsnr
from hyperldm_engine.models.bundle import load_bundle
from hyperldm_engine.pipeline.synthesize import SamplingOptions, SynthesisTileFn, _load_state
from hyperldm_engine.tiling.runner import TileRequest
from hyperldm_engine.tiling.windows import crop_to, pad_to_multiple


def before_fn(model: str, options: SamplingOptions, stats):
    """The original per-tile code path, on a separately loaded (NCHW) copy of the bundle."""
    bundle = load_bundle(model).eval()
    sampler = _load_state(model, "cpu", options.sampler, options.steps, options.eta, options.noise_scale)[1]

    def fn(request: TileRequest) -> dict[str, np.ndarray]:
        cfg = bundle.config
        factor = cfg.vqgan.downsample_factor
        rgb = normalise_rgb(request.rgb, stats)
        rgb = np.where(request.mask[None], rgb, 0.0).astype(np.float32)
        padded, shape = pad_to_multiple(rgb, factor * cfg.denoiser.alignment, mode="reflect")
        k = options.samples
        rows, cols = padded.shape[-2] // factor, padded.shape[-1] // factor
        x_rgb = torch.from_numpy(np.ascontiguousarray(padded))[None]
        fields = [NoiseField(options.seed, s, cfg.vqgan.latent_channels) for s in range(k)]
        noise_fn = noise_fn_for_windows(fields, [request.latent_origin] * k, rows, cols)
        with torch.inference_mode():
            cond = bundle.denoiser.encode_condition(x_rgb)
            latents = sampler.sample(lambda x, t: bundle.denoiser(x, torch.full((k,), t), cond),
                                     noise_fn(INITIAL_STEP), noise_fn)
            z_q = bundle.vqgan.quantize(latents.float() / bundle.latent_scale).z_q
            out = bundle.vqgan.decode(z_q, x_rgb.expand(k, -1, -1, -1), return_abundances=False)
        cubes = crop_to(out.hsi.float().numpy(), shape)
        return {f"s{s}": cubes[s] for s in range(k)}

    return fn


def timed(fn, request, repeats: int) -> tuple[float, dict]:
    times, out = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn(request)
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def compression(tmp: Path, cube: np.ndarray) -> None:
    for level in ("9", "1"):
        path = tmp / f"zstd{level}.tif"
        t0 = time.perf_counter()
        with HsiWriter(path, width=cube.shape[2], height=cube.shape[1], count=cube.shape[0], nodata=-9999.0,
                       creation_options=[f"ZSTD_LEVEL={level}"], overwrite=True) as w:
            w.write(cube, window=Window(0, 0, cube.shape[2], cube.shape[1]))
        seconds = time.perf_counter() - t0
        print(f"writer ZSTD level {level}: {seconds:.2f} s, {path.stat().st_size / 1e6:.1f} MB "
              f"for {cube.shape[1]}x{cube.shape[2]}x{cube.shape[0]} float32 ({cube.nbytes / 1e6:.0f} MB raw)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=None)
    ap.add_argument("--tile", type=int, default=256)
    ap.add_argument("--samples", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--no-writer", action="store_true", help="skip the compression measurement")
    args = ap.parse_args()
    model = args.model or default_model()
    tmp = Path(tempfile.mkdtemp(prefix="hyperldm-tilefn-"))
    print(machine_state())
    print(f"model: {model}; tile {args.tile} px; default steps {SamplingOptions().steps}")
    rgb_path = simulated_scene(tmp / "scene", max(args.tile, 1024) if not args.no_writer else args.tile)
    with open_rgb(rgb_path) as reader:
        stats = scene_statistics(reader)
        rgb, mask = reader.read(Window(0, 0, args.tile, args.tile))
    request = TileRequest(window=Window(0, 0, args.tile, args.tile), rgb=rgb, mask=mask, row=0, col=0,
                          latent_row0=0, latent_col0=0, align=4)
    for k in args.samples:
        options = SamplingOptions(samples=k)
        old = before_fn(model, options, stats)
        new = SynthesisTileFn(model, options, stats)
        bf16 = SynthesisTileFn(model, options, stats, autocast="bf16")
        for f in (old, new, bf16):
            f(request)  # warm-up (model load, allocator)
        t_old, t_new, t_bf = [], [], []
        for _ in range(args.repeats):  # interleaved
            t_old.append(timed(old, request, 1)[0])
            t_new.append(timed(new, request, 1)[0])
            t_bf.append(timed(bf16, request, 1)[0])
        a, b, c = old(request), new(request), bf16(request)
        diff = max(float(np.abs(a[s] - b[s]).max()) for s in a)
        ref = b["s0"]
        print(f"K={k}: before {statistics.median(t_old):.2f} s/tile, after {statistics.median(t_new):.2f} s/tile "
              f"(x{statistics.median(t_old) / statistics.median(t_new):.2f}); max |after - before| = {diff:.2e}")
        print(f"K={k}: bf16 autocast (CPU) {statistics.median(t_bf):.2f} s/tile; MPSNR bf16 vs float32 "
              f"{mpsnr(c['s0'], ref, data_range=float(ref.max())):.1f} dB (data range = max of the float32 cube)")
    if not args.no_writer:
        with open_rgb(rgb_path) as reader:
            hsi_path = rgb_path.parent / "hsi.tif"
        import rasterio

        with rasterio.open(hsi_path) as ds:
            cube = ds.read(window=Window(0, 0, 1024, 1024)).astype(np.float32)
        compression(tmp, cube)


if __name__ == "__main__":
    main()
