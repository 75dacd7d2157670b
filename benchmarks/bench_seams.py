"""Seam statistic of a synthesized scene (issue "Large scenes", part 2).

Synthesizes a simulated scene (``hyperldm-engine simulate``) with the real pipeline and reports
``seam_statistic``: mean absolute neighbour difference across tile borders / inside tiles (1 = no
seam). For reference the same statistic is computed on the simulator's ground-truth cube on the same
grid (an untiled image: the ratio that "no seam" means for this scene), and on a reference
synthesis with one tile covering the whole scene where it fits (no borders at all).

    nice -n 10 .venv/bin/python benchmarks/bench_seams.py --model MODEL --size 768
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import default_model, machine_state, read_cube, seams_of, simulated_scene, synthesize

from hyperldm_engine.pipeline.scene import DEFAULT_OVERLAP, DEFAULT_TILE
from hyperldm_engine.pipeline.synthesize import bundle_summary
from hyperldm_engine.tiling.seams import seam_statistic
from hyperldm_engine.tiling.windows import scene_grid


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=None, help="model bundle (default: the bundled model, else the probe)")
    ap.add_argument("--size", type=int, default=768, help="side of the simulated scene (pixels)")
    ap.add_argument("--tile", type=int, default=DEFAULT_TILE)
    ap.add_argument("--overlap", type=int, default=DEFAULT_OVERLAP)
    ap.add_argument("--steps", type=int, default=None, help="sampling steps (default: the CLI default)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--workdir", default=None, help="folder for the scene and outputs (default: a temp dir)")
    args = ap.parse_args()
    model = args.model or default_model()
    work = Path(args.workdir or tempfile.mkdtemp(prefix="hyperldm-seams-"))
    work.mkdir(parents=True, exist_ok=True)
    print(machine_state())
    print(f"model: {model}")
    rgb = simulated_scene(work / f"scene{args.size}", args.size)
    truth = read_cube(rgb.parent / "hsi.tif")
    grid = scene_grid(args.size, args.size, args.tile, args.overlap, align=bundle_summary(model)["factor"])
    ref = seam_statistic(truth, grid)
    print(f"grid: {grid.n_rows}x{grid.n_cols} tiles of {grid.tile} px (asked {args.tile}), overlap {args.overlap}")
    print(f"ground truth on this grid: across={ref.across:.5f} interior={ref.interior:.5f} ratio={ref.ratio:.4f}")
    out = work / "out_pixel.tif"
    seconds, _stats = synthesize(rgb, out, model, tile=args.tile, overlap=args.overlap, steps=args.steps,
                                 seed=args.seed)
    s = seams_of(out, model, args.tile, args.overlap)
    print(f"pixel blending: across={s.across:.5f} interior={s.interior:.5f} ratio={s.ratio:.4f} "
          f"seconds={seconds:.1f} MPix/min={args.size ** 2 / 1e6 / seconds * 60:.3f}")


if __name__ == "__main__":
    main()
