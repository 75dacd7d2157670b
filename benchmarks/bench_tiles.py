"""Tile size and overlap sweep: seam statistic and time of the real pipeline on one simulated scene.

    nice -n 10 .venv/bin/python benchmarks/bench_tiles.py --model MODEL --size 768 \
        --configs 128:32 256:32 256:64 512:64
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import default_model, machine_state, seams_of, simulated_scene, synthesize


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=None)
    ap.add_argument("--size", type=int, default=768)
    ap.add_argument("--steps", type=int, default=None)
    ap.add_argument("--configs", nargs="+", default=["128:32", "256:32", "256:64", "512:64"],
                    help="TILE:OVERLAP pairs (pixels)")
    ap.add_argument("--workdir", default=None)
    args = ap.parse_args()
    model = args.model or default_model()
    work = Path(args.workdir or tempfile.mkdtemp(prefix="hyperldm-tiles-"))
    work.mkdir(parents=True, exist_ok=True)
    print(machine_state())
    print(f"model: {model}; scene {args.size}x{args.size}")
    rgb = simulated_scene(work / f"scene{args.size}", args.size)
    print("tile overlap tiles seconds MPix/min seam_ratio")
    for spec in args.configs:
        tile, overlap = (int(v) for v in spec.split(":"))
        out = work / f"out_{tile}_{overlap}.tif"
        seconds, stats = synthesize(rgb, out, model, tile=tile, overlap=overlap, steps=args.steps)
        ratio = seams_of(out, model, tile, overlap).ratio
        print(f"{tile} {overlap} {stats.computed} {seconds:.1f} {args.size ** 2 / 1e6 / seconds * 60:.3f} "
              f"{ratio:.4f}", flush=True)


if __name__ == "__main__":
    main()
