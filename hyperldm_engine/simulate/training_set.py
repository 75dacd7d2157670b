"""Mixed real-world training sets from the simulator: many sensors, radiometric states, landscapes, GSDs.

``training_plan(n, seed0)`` lists the per-scene settings (deterministic); ``mixed_training_scenes``
simulates them. GSD is drawn log-uniformly over 0.3-30 m, so aerial, drone and satellite
scales are all present; the input sensor is drawn from ``scene.MIXED_INPUT_SENSORS`` with the
satellites at satellite GSDs (>= 5 m) and cameras at any GSD. ``radiometry`` and ``landscape``
default to ``mixed`` (drawn per scene inside ``simulate_scene``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from hyperldm_engine.simulate.scene import Scene, simulate_scene

GSD_RANGE_M = (0.3, 30.0)
CAMERAS = ("generic-camera", "nikon-5100", "sigma-sdmerill")
SATELLITES = ("sentinel2-msi", "sentinel2b-msi", "landsat8-oli", "landsat7-etm")


@dataclass(frozen=True)
class ScenePlan:
    seed: int
    gsd_m: float
    input_sensor: str
    radiometry: str
    landscape: str


def training_plan(n: int, seed0: int = 0, input_sensor: str | None = None, radiometry: str = "mixed",
                  landscape: str = "mixed", gsd_range_m: tuple[float, float] = GSD_RANGE_M) -> list[ScenePlan]:
    """``n`` scene settings with seeds ``seed0 ...``; ``input_sensor`` fixes the sensor (else drawn)."""
    rng = np.random.default_rng([seed0, 0x7A1])
    out = []
    for i in range(n):
        gsd = float(np.exp(rng.uniform(*np.log(gsd_range_m))))
        sensor = input_sensor or str(rng.choice(SATELLITES + CAMERAS if gsd >= 5.0 else CAMERAS))
        out.append(ScenePlan(seed0 + i, round(gsd, 2), sensor, radiometry, landscape))
    return out


def mixed_training_scenes(n: int, size: int = 256, seed0: int = 0, held_out: bool = False,
                          **plan_kw) -> list[Scene]:
    """Simulate the scenes of ``training_plan(n, seed0, **plan_kw)`` (``size x size`` pixels each)."""
    return [simulate_scene(size, size, seed=p.seed, gsd_m=p.gsd_m, held_out=held_out, input_sensor=p.input_sensor,
                           radiometry=p.radiometry, landscape=p.landscape)
            for p in training_plan(n, seed0, **plan_kw)]


def plan_as_dicts(plan: list[ScenePlan]) -> list[dict]:
    return [asdict(p) for p in plan]
