"""Dask scale-out: a local dask cluster of 1 and 2 worker processes against in-process; identical output.

For each worker count the script starts a ``LocalCluster`` (one thread per worker, as
``--workers N`` does), warms it up with a small synthesis (workers import torch and load the
model once, as they would on a long-lived cluster), then times ``synthesize_scene`` on the
benchmark scene through ``--scheduler ADDRESS``. Start-up and warm-up are printed separately.
Prints wall times, the 2-worker / 1-worker speed-up and a hash of each output's pixels.

    .venv/bin/python benchmarks/bench_dask.py --model MODEL --size 1024
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import default_model, file_hash, machine_state, simulated_scene, synthesize


def main() -> None:
    from hyperldm_engine.tiling.dask_runner import local_client

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=None)
    ap.add_argument("--size", type=int, default=1024)
    ap.add_argument("--steps", type=int, default=None)
    ap.add_argument("--workers", type=int, nargs="*", default=[1, 2])
    ap.add_argument("--workdir", default=None)
    args = ap.parse_args()
    model = args.model or default_model()
    work = Path(args.workdir or tempfile.mkdtemp(prefix="hyperldm-dask-"))
    work.mkdir(parents=True, exist_ok=True)
    print(machine_state())
    print(f"model: {model}; {args.size}x{args.size}; OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}")
    rgb = simulated_scene(work / f"scene{args.size}", args.size)
    warm_rgb = simulated_scene(work / "scene256", 256, seed=4)
    times, hashes = {}, {}
    seconds, stats = synthesize(rgb, work / "out_inprocess.tif", model, steps=args.steps)
    times["in-process"], hashes["in-process"] = seconds, file_hash(work / "out_inprocess.tif")
    print(f"in-process (torch threads = cores): {seconds:.1f} s, {stats.computed} tiles, "
          f"pixels sha256 {hashes['in-process']}", flush=True)
    for n in args.workers:
        t0 = time.perf_counter()
        client = local_client(n)
        address = client.scheduler.address
        started = time.perf_counter() - t0
        warm, _ = synthesize(warm_rgb, work / f"warm_{n}.tif", model, steps=args.steps, scheduler=address)
        out = work / f"out_dask{n}.tif"
        seconds, stats = synthesize(rgb, out, model, steps=args.steps, scheduler=address)
        client.close()
        client.cluster.close()
        times[n], hashes[n] = seconds, file_hash(out)
        print(f"dask {n} worker(s): {seconds:.1f} s ({stats.computed} tiles; cluster start-up {started:.1f} s and "
              f"warm-up {warm:.1f} s not included), pixels sha256 {hashes[n]}", flush=True)
    if 1 in times and 2 in times:
        print(f"speed-up 2 workers / 1 worker: x{times[1] / times[2]:.2f}")
        print(f"speed-up 2 workers / in-process: x{times['in-process'] / times[2]:.2f}")
    dask_hashes = {hashes[n] for n in args.workers}
    print(f"identical outputs across worker counts: {len(dask_hashes) == 1}; "
          f"equal to in-process: {dask_hashes == {hashes['in-process']}}")


if __name__ == "__main__":
    main()
