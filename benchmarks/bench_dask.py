"""Dask scale-out: in-process vs a local dask cluster of 1 and 2 worker processes; identical output.

Runs ``synthesize_scene`` three times on one simulated scene and prints wall times, the 2-worker
speed-up over 1 worker, and a hash of each output's pixels (they must be equal).

    nice -n 10 .venv/bin/python benchmarks/bench_dask.py --model MODEL --size 512
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import default_model, file_hash, machine_state, simulated_scene, synthesize


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=None)
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--steps", type=int, default=None)
    ap.add_argument("--workdir", default=None)
    args = ap.parse_args()
    model = args.model or default_model()
    work = Path(args.workdir or tempfile.mkdtemp(prefix="hyperldm-dask-"))
    work.mkdir(parents=True, exist_ok=True)
    print(machine_state())
    print(f"model: {model}; {args.size}x{args.size}")
    rgb = simulated_scene(work / f"scene{args.size}", args.size)
    times, hashes = {}, {}
    for name, workers in (("in-process", None), ("dask 1 worker", 1), ("dask 2 workers", 2)):
        out = work / f"out_{workers}.tif"
        seconds, stats = synthesize(rgb, out, model, steps=args.steps, workers=workers)
        times[name], hashes[name] = seconds, file_hash(out)
        print(f"{name}: {seconds:.1f} s ({stats.computed} tiles, cluster start-up included), "
              f"pixels sha256 {hashes[name]}", flush=True)
    print(f"speed-up 2 workers / 1 worker: x{times['dask 1 worker'] / times['dask 2 workers']:.2f}")
    print(f"identical outputs: {len(set(hashes.values())) == 1}")


if __name__ == "__main__":
    main()
