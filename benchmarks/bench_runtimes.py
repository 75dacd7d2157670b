"""CPU runtimes side by side on the same tiles: eager PyTorch, torch.compile, ONNX Runtime, OpenVINO.

Every variant runs the engine's own tile function (``SynthesisTileFn``: default sampler and steps,
K = 1) on the same tiles of a simulated scene, with the denoiser and the decoder swapped for the
variant's; variants alternate tile by tile (A B C A B C ...) and the medians are printed beside
eager PyTorch's as ratios, with the split denoise / decode from the engine's timings and the
largest absolute difference of the cubes from eager PyTorch (reflectance). One-off costs (export,
compilation) are printed separately.

    .venv/bin/python benchmarks/bench_runtimes.py --size 1024 --tiles 3 --repeats 2
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

os.environ["HYPERLDM_RUNTIME"] = "torch"  # the variants below are built by hand from the PyTorch bundle

from common import default_model, machine_state

from hyperldm_engine import timings
from hyperldm_engine.io.raster import open_rgb, scene_statistics
from hyperldm_engine.pipeline.run import DEFAULT_OVERLAP, DEFAULT_TILE
from hyperldm_engine.pipeline.synthesize import SamplingOptions, SynthesisTileFn
from hyperldm_engine.tiling.runner import TileRequest
from hyperldm_engine.tiling.windows import scene_grid


def tile_requests(rgb_path: Path, factor: int, n: int) -> tuple[list[TileRequest], Any]:
    """The first ``n`` tiles of the scene's default (balanced) grid, and the scene statistics."""
    with open_rgb(rgb_path) as reader:
        grid = scene_grid(reader.width, reader.height, DEFAULT_TILE, DEFAULT_OVERLAP, align=factor)
        stats = scene_statistics(reader)
        out = []
        for i, j, window in list(grid)[:n]:
            rgb, mask = reader.read(window)
            r0, c0 = grid.latent_origin(i, j)
            out.append(TileRequest(window=window, rgb=rgb, mask=mask, row=i, col=j, latent_row0=r0, latent_col0=c0,
                                   align=grid.align))
    return out, stats


class OpenVinoSession:
    """``onnxruntime.InferenceSession.run``'s interface over an OpenVINO compiled model (CPU, float32)."""

    def __init__(self, path: Path) -> None:
        import openvino as ov

        self.model = ov.Core().compile_model(str(path), "CPU", {
            "INFERENCE_PRECISION_HINT": "f32", "PERFORMANCE_HINT": "LATENCY",
            "INFERENCE_NUM_THREADS": torch.get_num_threads()})
        self.request = self.model.create_infer_request()

    def run(self, _names: Any, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        result = self.request.infer(feeds)
        return [np.array(result[o]) for o in self.model.outputs]


def variants(bundle: Any, which: list[str], cache: Path) -> dict[str, tuple[Any, float]]:
    """name -> (bundle for that runtime, one-off seconds to build it)."""
    import dataclasses

    out: dict[str, tuple[Any, float]] = {"eager": (bundle, 0.0)}
    if "compile" in which:
        t0 = time.perf_counter()
        den, dec = torch.compile(bundle.denoiser), torch.compile(bundle.vqgan.decoder)

        class Vq:  # the VQGAN with its decoder compiled
            def __init__(self, v: Any) -> None:
                self._v, self.decoder = v, dec

            def __getattr__(self, name: str) -> Any:
                return getattr(self._v, name)

        class Den:
            def __init__(self, d: Any) -> None:
                self._d = d

            def __call__(self, *a: Any) -> Any:
                return den(*a)

            def __getattr__(self, name: str) -> Any:
                return getattr(self._d, name)

        out["compile"] = (dataclasses.replace(bundle, denoiser=Den(bundle.denoiser), vqgan=Vq(bundle.vqgan)),
                          time.perf_counter() - t0)  # compilation happens at the first calls: see warm-up
    if "onnxruntime" in which or "openvino" in which:
        from hyperldm_engine.runtime import onnx as rt

        folder = cache / rt.model_key(bundle)
        t0 = time.perf_counter()
        rt.export_graphs(bundle, folder)
        export_s = time.perf_counter() - t0
        print(f"one-off: ONNX export of the four graphs {export_s:.1f} s (cached afterwards)")
        if "onnxruntime" in which:
            t0 = time.perf_counter()
            out["onnxruntime"] = (rt.onnx_bundle(bundle, folder), time.perf_counter() - t0)
        if "openvino" in which:
            session = rt._session
            rt._session = OpenVinoSession  # the same graphs, compiled by OpenVINO
            try:
                t0 = time.perf_counter()
                out["openvino"] = (rt.onnx_bundle(bundle, folder), time.perf_counter() - t0)
            finally:
                rt._session = session
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=None)
    ap.add_argument("--size", type=int, default=1024, help="simulated scene side (tiles from its default grid)")
    ap.add_argument("--tiles", type=int, default=3)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--runtimes", nargs="+", default=["eager", "compile", "onnxruntime", "openvino"])
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--workdir", default=None)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    work = Path(args.workdir or tempfile.mkdtemp(prefix="hyperldm-rt-"))
    work.mkdir(parents=True, exist_ok=True)
    print(machine_state())
    from bench_cli import simulate

    rgb = simulate(work / f"scene{args.size}_seed7", args.size, 7)
    model = args.model or default_model()
    base = SynthesisTileFn(model, SamplingOptions(), None)  # statistics set below
    bundle, sampler, device, groups = base.load()
    requests, stats = tile_requests(rgb, bundle.config.vqgan.downsample_factor, args.tiles)
    print(f"model: {model}; {len(requests)} tiles of {requests[0].rgb.shape[1]}x{requests[0].rgb.shape[2]} px; "
          f"DDIM {SamplingOptions().steps} steps, K=1; torch threads {torch.get_num_threads()}")
    built = variants(bundle, args.runtimes, work / "onnx")
    fns = {}
    for name, (b, setup_s) in built.items():
        fn = SynthesisTileFn(model, SamplingOptions(), stats)
        fn._state = (b, sampler, device, groups)
        t0 = time.perf_counter()
        fn(requests[0])  # warm-up (torch.compile compiles here)
        print(f"one-off: {name} set-up {setup_s:.1f} s, first tile {time.perf_counter() - t0:.1f} s")
        fns[name] = fn
    seconds: dict[str, list[float]] = {n: [] for n in fns}
    split: dict[str, list[tuple[float, float]]] = {n: [] for n in fns}
    cubes: dict[str, list[np.ndarray]] = {n: [] for n in fns}
    for r in range(args.repeats):
        for k, request in enumerate(requests):
            for name, fn in fns.items():  # alternate variants on the same tile
                before = timings.snapshot()
                t0 = time.perf_counter()
                out = fn(request)["s0"]
                seconds[name].append(time.perf_counter() - t0)
                after = timings.snapshot()
                split[name].append(tuple(after.get(p, (0, 0))[0] - before.get(p, (0, 0))[0]
                                         for p in ("tile: denoise", "tile: decode")))
                if r == 0:
                    cubes[name].append(out)
                elif not np.array_equal(out, cubes[name][k]):
                    print(f"note: {name} gave a different cube for tile {k} on repeat {r + 1}")
    ref = statistics.median(seconds["eager"])
    for name in fns:
        med = statistics.median(seconds[name])
        den = statistics.median(s[0] for s in split[name])
        dec = statistics.median(s[1] for s in split[name])
        diff = max(float(np.abs(a - b).max()) for a, b in zip(cubes[name], cubes["eager"], strict=True))
        mean = float(np.mean([np.abs(a - b).mean() for a, b in zip(cubes[name], cubes["eager"], strict=True)]))
        print(f"runtime {name}: {med:.2f} s/tile (median of {len(seconds[name])}), x{ref / med:.2f} vs eager; "
              f"denoise {den:.2f} s, decode {dec:.2f} s; max |diff| {diff:.2e}, mean |diff| {mean:.1e} reflectance")


if __name__ == "__main__":
    main()
