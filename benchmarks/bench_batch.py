"""Per-tile cost of ``--batch-size``: B tiles x K samples per U-Net call vs one tile at a time.

Runs the same tiles through ``SynthesisTileFn.batch`` in chunks of each batch size (default 1, 2, 4),
interleaved over ``--repeats`` so that load changes on a shared machine hit all sizes alike, and
prints median seconds per tile and the largest difference to batch size 1 (float reordering in
batched convolutions only; the noise and conditions are per tile). Batching helps where one tile
does not fill the device (GPU); on a CPU the convolutions are already large enough to keep the
cores busy, so expect little.

    nice -n 10 .venv/bin/python benchmarks/bench_batch.py --repeats 3 [--device cuda]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from rasterio.windows import Window

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import default_model, machine_state, simulated_scene

from hyperldm_engine.io.raster import open_rgb, scene_statistics
from hyperldm_engine.pipeline.synthesize import SamplingOptions, SynthesisTileFn
from hyperldm_engine.tiling.runner import TileRequest


def tile_requests(rgb_path: Path, tile: int, n: int) -> tuple[object, list[TileRequest]]:
    """Scene statistics and ``n`` distinct, non-overlapping tiles of the scene (row-major)."""
    per_row = 2
    requests = []
    with open_rgb(rgb_path) as reader:
        stats = scene_statistics(reader)
        for i in range(n):
            r0, c0 = (i // per_row) * tile, (i % per_row) * tile
            window = Window(c0, r0, tile, tile)
            rgb, mask = reader.read(window)
            requests.append(TileRequest(window=window, rgb=rgb, mask=mask, row=i // per_row, col=i % per_row,
                                        latent_row0=r0 // 4, latent_col0=c0 // 4, align=4))
    return stats, requests


def run_batched(fn: SynthesisTileFn, requests: list[TileRequest], batch: int) -> tuple[float, list[dict]]:
    """All ``requests`` in chunks of ``batch``; (seconds, outputs in order)."""
    t0 = time.perf_counter()
    out: list[dict] = []
    for start in range(0, len(requests), batch):
        out.extend(fn.batch(requests[start:start + batch]))
    return time.perf_counter() - t0, out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=None)
    ap.add_argument("--tile", type=int, default=256)
    ap.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 2, 4])
    ap.add_argument("--tiles", type=int, default=None, help="tiles per measurement (default: largest batch)")
    ap.add_argument("--samples", type=int, default=1)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    model = args.model or default_model()
    n = args.tiles or max(args.batch_sizes)
    options = SamplingOptions(samples=args.samples)
    print(machine_state())
    print(f"model: {model}")
    print(f"setup: tile {args.tile} px, {n} tiles, K={args.samples}, sampler {options.sampler} "
          f"steps {options.steps} eta {options.eta}, device {args.device}")
    tmp = Path(tempfile.mkdtemp(prefix="hyperldm-batch-"))
    rgb_path = simulated_scene(tmp / "scene", args.tile * max(2, -(-n // 2)))  # 2 tiles per row
    stats, requests = tile_requests(rgb_path, args.tile, n)
    fn = SynthesisTileFn(model, options, stats, device=args.device)
    fn.batch(requests[:max(args.batch_sizes)])  # warm-up: model load, allocator at the largest batch
    times: dict[int, list[float]] = {b: [] for b in args.batch_sizes}
    outputs: dict[int, list[dict]] = {}
    for _ in range(args.repeats):  # interleaved
        for b in args.batch_sizes:
            seconds, outputs[b] = run_batched(fn, requests, b)
            times[b].append(seconds / n)
    ref = outputs[args.batch_sizes[0]]
    base = statistics.median(times[args.batch_sizes[0]])
    for b in args.batch_sizes:
        diff = max(float(np.abs(o[k] - r[k]).max()) for o, r in zip(outputs[b], ref, strict=True) for k in r)
        per_tile = statistics.median(times[b])
        print(f"batch {b}: {per_tile:.3f} s/tile (x{base / per_tile:.2f} vs batch {args.batch_sizes[0]}); "
              f"max |batch {b} - batch {args.batch_sizes[0]}| = {diff:.2e}")
    print(machine_state())


if __name__ == "__main__":
    main()
