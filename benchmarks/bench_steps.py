"""Overlap and steps: the share of computed pixels that are overlap, and quality per second against DDIM steps.

1. Overlap (geometry only): for scene sides N, the default grid's computed pixels / scene pixels
   (``windows.scene_grid`` with the default tile and overlap, balanced as the pipelines do);
   the overlap fraction is 1 - scene / computed.
2. Steps: synthesizes one simulated scene (``hyperldm-engine simulate``, seed 7, so the truth cube
   is known) with the real pipeline at each DDIM step count, in alternating order, and prints
   seconds, MPSNR / SAM against the simulated truth and MPSNR gained per second. The runtime is the
   engine's default (``HYPERLDM_RUNTIME``).

    .venv/bin/python benchmarks/bench_steps.py --size 768 --steps 4 8 10 20 50 --seeds 0 1
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

import numpy as np
import rasterio

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import default_model, machine_state, read_cube, synthesize

from hyperldm_engine.metrics.similarity import error_sums
from hyperldm_engine.pipeline.run import DEFAULT_OVERLAP, DEFAULT_TILE
from hyperldm_engine.runtime import chosen_runtime
from hyperldm_engine.tiling.windows import scene_grid


def overlap_table(sides: list[int], tile: int, overlap: int, align: int) -> None:
    for n in sides:
        grid = scene_grid(n, n, tile, overlap, align=align)
        computed = sum(int(w.width) * int(w.height) for _, _, w in grid)
        print(f"overlap {n}^2, tile {tile} / overlap {overlap}: {grid.n_rows}x{grid.n_cols} tiles of "
              f"{max(grid.row_sizes)} px, computed / scene pixels {computed / n**2:.3f}, "
              f"overlap fraction {1 - n**2 / computed:.3f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=None)
    ap.add_argument("--size", type=int, default=768)
    ap.add_argument("--steps", type=int, nargs="+", default=[4, 8, 10, 20, 50])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0], help="sampling seeds (quality is their mean)")
    ap.add_argument("--overlap-sides", type=int, nargs="+", default=[512, 1024, 2048, 4096, 20000])
    ap.add_argument("--workdir", default=None)
    args = ap.parse_args()
    print(machine_state())
    model = args.model or default_model()
    from hyperldm_engine.pipeline.synthesize import bundle_summary

    overlap_table(args.overlap_sides, DEFAULT_TILE, DEFAULT_OVERLAP, bundle_summary(model)["factor"])
    work = Path(args.workdir or tempfile.mkdtemp(prefix="hyperldm-steps-"))
    work.mkdir(parents=True, exist_ok=True)
    from bench_cli import simulate

    rgb = simulate(work / f"scene{args.size}_seed7", args.size, 7)
    truth = read_cube(rgb.parent / "hsi.tif")
    with rasterio.open(rgb.parent / "hsi.tif") as ds:
        valid = np.isfinite(truth).all(0) & (truth > (ds.nodata if ds.nodata is not None else -np.inf)).all(0)
    print(f"model: {model}; runtime {chosen_runtime('cpu')}; scene {args.size}^2 (seed 7), seeds {args.seeds}")
    rows: dict[int, dict[str, list[float]]] = {s: {"seconds": [], "mpsnr": [], "sam": []} for s in args.steps}
    for seed in args.seeds:
        order = args.steps if seed % 2 == 0 else list(reversed(args.steps))  # alternate the order
        for steps in order:
            out = work / f"out_{steps}_{seed}.tif"
            seconds, _ = synthesize(rgb, out, model, tile=DEFAULT_TILE, overlap=DEFAULT_OVERLAP, steps=steps,
                                    seed=seed)
            sums = error_sums(read_cube(out), truth, valid)[0]
            rows[steps]["seconds"].append(seconds)
            rows[steps]["mpsnr"].append(sums.mpsnr())
            rows[steps]["sam"].append(sums.sam())
            print(f"run steps {steps} seed {seed}: {seconds:.1f} s, MPSNR {sums.mpsnr():.2f} dB", flush=True)
    base = min(args.steps)
    base_s, base_q = statistics.median(rows[base]["seconds"]), statistics.mean(rows[base]["mpsnr"])
    for steps in args.steps:
        r = rows[steps]
        sec, q = statistics.median(r["seconds"]), statistics.mean(r["mpsnr"])
        gain = (q - base_q) / (sec - base_s) if steps != base and sec > base_s else float("nan")
        print(f"steps {steps}: {sec:.1f} s ({args.size**2 / 1e6 / sec * 60:.2f} MPix/min, x{sec / base_s:.2f} the "
              f"time of {base} steps), MPSNR {q:.2f} dB (seeds {', '.join(f'{v:.2f}' for v in r['mpsnr'])}), "
              f"SAM {statistics.mean(r['sam']):.4f} rad; {gain:+.3f} dB per extra second over {base} steps")


if __name__ == "__main__":
    main()
