"""End-to-end CLI throughput as users run it: ``hyperldm-engine --timings synthesize`` as a subprocess.

Simulates each scene once (``hyperldm-engine simulate DIR --size N N --seed 7``), then times the
whole command (interpreter start-up, imports, model load, statistics, tiles, blending, writing)
and prints MPix/min of scene pixels with the engine's own split of the wall time (``--timings``).
Variants (``--variant NAME='extra CLI options'``) run alternately, A B A B, and each variant's
median is printed beside the first variant's as a ratio measured in the same run.

    .venv/bin/python benchmarks/bench_cli.py --sizes 1024 4096 --repeats 1
    .venv/bin/python benchmarks/bench_cli.py --sizes 1024 --repeats 3 \
        --variant default= --variant one-thread='' --env one-thread=OMP_NUM_THREADS=1
"""

from __future__ import annotations

import argparse
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import machine_state

from hyperldm_engine.timings import parse_report

ROOT = Path(__file__).resolve().parents[1]
CLI = str(Path(sys.executable).with_name("hyperldm-engine"))


def simulate(folder: Path, size: int, seed: int) -> Path:
    """``hyperldm-engine simulate`` a size x size scene (reused when it exists)."""
    rgb = folder / "rgb.tif"
    if not rgb.exists():
        subprocess.run([CLI, "simulate", str(folder), "--size", str(size), str(size), "--seed", str(seed),
                        "--progress", "none", "--overwrite"], check=True)
    return rgb


def run_once(rgb: Path, out: Path, extra: list[str], env: dict[str, str]) -> tuple[float, dict[str, float], float]:
    """(wall seconds measured here, the engine's split, peak RSS in MB) of one synthesize subprocess."""
    cmd = [CLI, "--timings", "synthesize", str(rgb), str(out), "--overwrite", "--progress", "none", *extra]
    with tempfile.TemporaryFile("w+") as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err, env={**os.environ, **env})
        _, status, usage = os.wait4(proc.pid, 0)  # this child's own peak memory
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        err.seek(0)
        stderr = err.read()
    if proc.returncode:
        raise SystemExit(f"{shlex.join(cmd)} failed ({proc.returncode}):\n{stderr[-2000:]}")
    return wall, parse_report(stderr), usage.ru_maxrss / 1024


def max_abs_diff(a: Path, b: Path, rows: int = 256) -> float:
    """Largest |a - b| over two cubes on the same grid, read in bands of rows (flat memory)."""
    import rasterio
    from rasterio.windows import Window

    worst = 0.0
    with rasterio.open(a) as da, rasterio.open(b) as db:
        for r in range(0, da.height, rows):
            w = Window(0, r, da.width, min(rows, da.height - r))
            worst = max(worst, float(abs(da.read(window=w) - db.read(window=w)).max()))
    return worst


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[1024, 4096])
    ap.add_argument("--seed", type=int, default=7, help="simulation seed")
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--variant", action="append", default=[],
                    help="NAME=EXTRA_OPTIONS (e.g. 'steps20=--steps 20'); default: one variant, the defaults")
    ap.add_argument("--env", action="append", default=[], help="NAME=VAR=VALUE: environment of a variant")
    ap.add_argument("--workdir", default=None, help="scenes and outputs (default: a temporary folder)")
    args = ap.parse_args()
    variants = [v.split("=", 1) for v in args.variant] or [["default", ""]]
    envs: dict[str, dict[str, str]] = {name: {} for name, _ in variants}
    for item in args.env:
        name, var, value = item.split("=", 2)
        envs[name][var] = value
    work = Path(args.workdir or tempfile.mkdtemp(prefix="hyperldm-cli-"))
    work.mkdir(parents=True, exist_ok=True)
    print(machine_state())
    for size in args.sizes:
        rgb = simulate(work / f"scene{size}_seed{args.seed}", size, args.seed)
        walls: dict[str, list[float]] = {name: [] for name, _ in variants}
        splits: dict[str, list[dict[str, float]]] = {name: [] for name, _ in variants}
        for r in range(args.repeats):
            for name, extra in variants:  # alternate: A B A B
                wall, split, peak = run_once(rgb, work / f"out{size}_{name}.tif", shlex.split(extra), envs[name])
                walls[name].append(wall)
                splits[name].append(split)
                print(f"run {r + 1} {name} {size}^2: {wall:.1f} s, {size * size / 1e6 / wall * 60:.2f} MPix/min, "
                      f"peak RSS {peak:.0f} MB (load {os.getloadavg()[0]:.1f})", flush=True)
        base = statistics.median(walls[variants[0][0]])
        for name, extra in variants:
            wall = statistics.median(walls[name])
            diff = max_abs_diff(work / f"out{size}_{name}.tif", work / f"out{size}_{variants[0][0]}.tif")
            print(f"cli {name} [{extra or 'defaults'}] {size}^2: median {wall:.1f} s of {len(walls[name])}, "
                  f"{size * size / 1e6 / wall * 60:.2f} MPix/min, x{base / wall:.2f} vs {variants[0][0]}; "
                  f"max |diff| of the output vs {variants[0][0]}: {diff:.2e}")
            phases = sorted({p for s in splits[name] for p in s if p != "total"},
                            key=lambda p: list(splits[name][0]).index(p) if p in splits[name][0] else 99)
            for p in phases:
                sec = statistics.median(s.get(p, 0.0) for s in splits[name])
                print(f"  split {p}: {sec:.2f} s ({100 * sec / wall:.1f} %)")


if __name__ == "__main__":
    main()
