"""Throughput of the real pipeline on CPU: MPix per minute of the whole scene, overlap included.

Synthesizes a simulated scene with ``synthesize_scene`` (default sampler and steps, K = 1, default
tile and overlap unless told), and prints MPix/min = scene pixels / wall time (reading, scene
statistics, tiles, blending and the compressed GeoTIFF all included).

    nice -n 10 .venv/bin/python benchmarks/bench_throughput.py --model MODEL --size 768
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import default_model, machine_state, simulated_scene, synthesize

from hyperldm_engine.pipeline.scene import DEFAULT_OVERLAP, DEFAULT_TILE
from hyperldm_engine.pipeline.synthesize import SamplingOptions


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=None)
    ap.add_argument("--size", type=int, default=768)
    ap.add_argument("--tile", type=int, default=DEFAULT_TILE)
    ap.add_argument("--overlap", type=int, default=DEFAULT_OVERLAP)
    ap.add_argument("--steps", type=int, default=SamplingOptions().steps)
    ap.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    ap.add_argument("--co", action="append", default=[], help="writer creation option, e.g. ZSTD_LEVEL=1")
    ap.add_argument("--workdir", default=None)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    model = args.model or default_model()
    work = Path(args.workdir or tempfile.mkdtemp(prefix="hyperldm-tput-"))
    work.mkdir(parents=True, exist_ok=True)
    print(machine_state())
    rgb = simulated_scene(work / f"scene{args.size}", args.size)
    seconds, stats = synthesize(rgb, work / "out.tif", model, tile=args.tile, overlap=args.overlap,
                                steps=args.steps, creation_options=tuple(args.co))
    mpix = args.size ** 2 / 1e6
    print(f"model: {model}; {args.size}x{args.size}, tile {args.tile}, overlap {args.overlap}, "
          f"ddim {args.steps} steps, K=1, options {args.co or 'default'}")
    print(f"tiles: {stats.computed}; wall {seconds:.1f} s; {seconds / stats.computed:.2f} s/tile")
    print(f"throughput: {mpix / seconds * 60:.2f} MPix/min (scene pixels, overlap included)")


if __name__ == "__main__":
    main()
