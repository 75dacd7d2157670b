"""Peak memory (ru_maxrss) of the streaming runner + reader + writer against scene size.

Each size runs in its own subprocess, which reports its peak RSS. Two kinds of run:

- ``identity``: the real reader (``open_rgb``), runner (``run_tiles``) and GeoTIFF writer
  (``HsiWriter``), with the model replaced by an identity-shaped tile function that returns a cube
  of the real output size (48 bands, the mean of the RGB broadcast). A real 16384^2 synthesis takes
  hours on 2 CPU cores; this isolates what scales with the scene. The input is a GDAL VRT that
  mosaics one 1024^2 GeoTIFF, so the input is never held whole and costs no disk.
- ``model``: the real ``synthesize_scene`` (real SynthesisTileFn) at small sizes, to show the
  model adds a constant.

    nice -n 10 .venv/bin/python benchmarks/bench_memory.py --model MODEL \
        --identity 1024 4096 16384 --real 1024 2048
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import rasterio
from rasterio.transform import from_origin

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import default_model, machine_state

# the engine's DEFAULT_TILE / DEFAULT_OVERLAP (pipeline/scene.py), not imported: it would load torch into
# the identity runs and hide what scales with the scene behind a larger constant
TILE, OVERLAP = 512, 64

SOURCE = 1024


def source_tile(folder: Path) -> Path:
    """A 1024^2 uint8 RGB GeoTIFF with structure (so outputs are not constant)."""
    path = folder / "src.tif"
    if not path.exists():
        y, x = np.mgrid[0:SOURCE, 0:SOURCE] / 97.0
        rgb = np.stack([np.sin(x) * np.cos(y), np.sin(x + y), np.cos(x - 0.5 * y)]) * 100 + 128
        with rasterio.open(path, "w", driver="GTiff", width=SOURCE, height=SOURCE, count=3, dtype="uint8",
                           crs="EPSG:32633", transform=from_origin(500000, 6000000, 1, 1), tiled=True,
                           compress="deflate") as ds:
            ds.write(rgb.astype(np.uint8))
    return path


def parse_size(spec: str) -> tuple[int, int]:
    """"4096" -> (4096, 4096); "1024x16384" -> (width 1024, height 16384)."""
    w, _, h = str(spec).partition("x")
    return int(w), int(h or w)


def mosaic(folder: Path, spec: str) -> Path:
    """A VRT of width x height pixels repeating the source tile (no pixels copied)."""
    src = source_tile(folder)
    width, height = parse_size(spec)
    bands = []
    for b in range(1, 4):
        sources = "".join(
            f'<SimpleSource><SourceFilename relativeToVRT="0">{src}</SourceFilename><SourceBand>{b}</SourceBand>'
            f'<SrcRect xOff="0" yOff="0" xSize="{SOURCE}" ySize="{SOURCE}"/>'
            f'<DstRect xOff="{j * SOURCE}" yOff="{i * SOURCE}" xSize="{SOURCE}" ySize="{SOURCE}"/></SimpleSource>'
            for i in range(-(-height // SOURCE)) for j in range(-(-width // SOURCE)))
        bands.append(f'<VRTRasterBand dataType="Byte" band="{b}">{sources}</VRTRasterBand>')
    path = folder / f"mosaic{spec}.vrt"
    path.write_text(f'<VRTDataset rasterXSize="{width}" rasterYSize="{height}"><SRS>EPSG:32633</SRS>'
                    f'<GeoTransform>500000, 1, 0, 6000000, 0, -1</GeoTransform>{"".join(bands)}</VRTDataset>')
    return path


class IdentityTile:
    """Stands in for SynthesisTileFn: (48, h, w) float32 from the tile's RGB, no model.

    The RGB mean is rounded to 1/8 so that the 48-band output compresses well: a 16384^2 x 48
    float32 scene is 51 GB raw, and the disk is shared.
    """

    def __call__(self, request):
        value = np.round(request.rgb.mean(axis=0, dtype=np.float32) * 8) / 8
        return np.broadcast_to(value, (48, *request.rgb.shape[1:]))


def child(kind: str, size: str, model: str, folder: Path, tile: int, overlap: int, strip_width: int) -> dict:
    from hyperldm_engine.io.gdal_env import gdal_cache_bytes
    from hyperldm_engine.io.raster import open_rgb
    from hyperldm_engine.io.writer import HsiWriter
    from hyperldm_engine.tiling.runner import OutputSet, TilePlan, run_tiles
    from hyperldm_engine.tiling.windows import scene_grid

    rgb = mosaic(folder, size)
    width, height = parse_size(size)
    out = folder / f"out_{kind}_{size}.tif"
    t0 = time.perf_counter()
    if kind == "identity":  # with synthesize_scene's bounded GDAL block cache
        with rasterio.Env(GDAL_CACHEMAX=gdal_cache_bytes(os.environ.get("GDAL_CACHEMAX"))), open_rgb(rgb) as reader, \
                HsiWriter(out, like_profile=reader.profile, width=width, height=height, count=48, nodata=-9999.0,
                          creation_options=["ZSTD_LEVEL=1"], overwrite=True, check_space=False) as writer:
            plan = TilePlan(scene_grid(width, height, tile, overlap, align=4), strip_width=strip_width,
                            carry_dir=folder)
            stats = run_tiles(reader, IdentityTile(), plan, OutputSet.of(writer, 48, -9999.0))
        extra = {"peak_accumulator_MB": stats.peak_accumulator_bytes / 1e6}
    else:
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from common import synthesize

        _, stats = synthesize(rgb, out, model, tile=tile, overlap=overlap)
        extra = {"peak_accumulator_MB": stats.peak_accumulator_bytes / 1e6}
    seconds = time.perf_counter() - t0
    out.unlink(missing_ok=True)
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    extra.update(strips=stats.strips, carried_MB=stats.carried_bytes / 1e6)
    return {"kind": kind, "size": size, "peak_rss_MB": peak_kb / 1024, "seconds": seconds, **extra}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=None)
    ap.add_argument("--identity", nargs="*", default=["1024", "4096", "1024x16384", "16384"],
                    help="sizes: N (N x N) or WxH")
    ap.add_argument("--real", nargs="*", default=["1024", "2048"])
    ap.add_argument("--tile", type=int, default=TILE)
    ap.add_argument("--overlap", type=int, default=OVERLAP)
    ap.add_argument("--strip-width", type=int, default=None,
                    help="identity runs: the runner's strip width (default: the engine's default)")
    ap.add_argument("--workdir", default=None)
    ap.add_argument("--child", nargs=2, metavar=("KIND", "SIZE"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    model = args.model or default_model()
    folder = Path(args.workdir or tempfile.mkdtemp(prefix="hyperldm-mem-"))
    folder.mkdir(parents=True, exist_ok=True)
    if args.child:
        from hyperldm_engine.tiling.runner import DEFAULT_STRIP_WIDTH

        strip = args.strip_width or DEFAULT_STRIP_WIDTH
        print(json.dumps(child(args.child[0], args.child[1], model, folder, args.tile, args.overlap, strip)))
        return
    print(machine_state())
    print(f"model: {model}; tile {args.tile}, overlap {args.overlap}")
    results = {}
    for kind, sizes in (("identity", args.identity), ("model", args.real)):
        for size in sizes:
            cmd = [sys.executable, __file__, "--model", model, "--workdir", str(folder), "--tile", str(args.tile),
                   "--overlap", str(args.overlap), "--child", kind, str(size)]
            if args.strip_width:
                cmd += ["--strip-width", str(args.strip_width)]
            res = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.splitlines()[-1])
            results[(kind, size)] = res
            print(f"{kind} {size}: peak RSS {res['peak_rss_MB']:.0f} MB, accumulator peak "
                  f"{res['peak_accumulator_MB']:.0f} MB, {res['strips']} strips, {res['carried_MB']:.0f} MB carried "
                  f"on disk, {res['seconds']:.1f} s", flush=True)
    for kind in ("identity", "model"):
        sizes = [s for k, s in results if k == kind]
        for size in sizes[1:]:
            ratio = results[(kind, size)]["peak_rss_MB"] / results[(kind, sizes[0])]["peak_rss_MB"]
            print(f"{kind}: peak RSS ratio {size} / {sizes[0]} = {ratio:.2f}")


if __name__ == "__main__":
    main()
