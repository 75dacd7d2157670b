"""The bundled default model's training plan: its scenes, settings, model config and time budget.

``scripts/train_default_model.py`` is a thin command around :func:`train_default_model`; the plan
lives here so that the package owns how its default model is made (and tests can run it small).

Scenes are simulated in memory from the TRAIN split of the spectra (held-out spectra and seeds
are never used) with the simulator's mixed real-world plan (``simulate.training_set``): input
sensors from consumer cameras to Sentinel-2 and Landsat, surface / top-of-atmosphere / camera
radiometry, coastal to urban landscapes, GSDs 0.3-30 m, so the model sees what real RGB looks like.
The budget planner times a few iterations of each stage and picks iteration counts that fit the
minutes (rounded down to hundreds); they are recorded in the bundle, so passing them back
reproduces the model exactly.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class SceneSpec:
    """One simulated training scene: seed, GSD and its real-world variant (sensor, radiometry, landscape)."""

    seed: int
    gsd_m: float
    extra: dict[str, str] = field(default_factory=dict)

    def describe(self, size: int) -> str:
        extra = "".join(f", {k}={v}" for k, v in sorted(self.extra.items()))
        return f"simulate_scene(seed={self.seed}, gsd_m={self.gsd_m:g}, {size}x{size}{extra})"


def scene_plan(n_scenes: int, first_seed: int = 11) -> list[SceneSpec]:
    """``n_scenes`` specs from ``simulate.training_set.training_plan``: GSD log-uniform over 0.3-30 m,
    satellites at satellite GSDs, cameras anywhere, radiometry and landscape drawn per scene."""
    from hyperldm_engine.simulate.training_set import training_plan

    return [SceneSpec(p.seed, p.gsd_m, {"input_sensor": p.input_sensor, "radiometry": p.radiometry,
                                        "landscape": p.landscape})
            for p in training_plan(n_scenes, first_seed)]


def simulate_training_scenes(specs: list[SceneSpec], size: int, log=print) -> list[Any]:
    """TrainScenes for the specs (train split), simulated in memory."""
    from hyperldm_engine.simulate.scene import simulate_scene
    from hyperldm_engine.train.data import scene_from_simulation

    scenes = []
    for spec in specs:
        sim = simulate_scene(size, size, seed=spec.seed, gsd_m=spec.gsd_m, held_out=False, **spec.extra)
        scenes.append(scene_from_simulation(sim, spec.describe(size)))
        log(f"simulated {spec.describe(size)}")
    return scenes


#: training-recipe settings that go with each model preset (the paper's: plain eps MSE, no prior)
PRESET_SETTINGS: dict[str, dict[str, Any]] = {
    "default": {"min_snr_gamma": 5.0, "abundance_entropy": 0.02},
    "small": {},
    "paper": {},
}


def default_config(n_bands: int, n_library: int, n_classes: int, preset: str = "default") -> Any:
    """The model config of ``preset`` (``ModelConfig.preset_named``) for these data sizes."""
    from hyperldm_engine.models.config import ModelConfig

    return ModelConfig.preset_named(preset, n_bands=n_bands, n_library=n_library, n_classes=n_classes)


def plan_iterations(rates: tuple[float, float, float], budget_s: float, classifier_iterations: int = 600
                    ) -> tuple[int, int, int]:
    """Iteration counts that fit ``budget_s``: the classifier first, then 55% stage 1 and 45% stage 2."""
    t_vq, t_diff, t_clf = rates
    left = max(budget_s - classifier_iterations * t_clf, 0.0)
    n_vq = int(0.55 * left / t_vq // 100 * 100)
    n_diff = int(0.45 * left / t_diff // 100 * 100)
    return max(n_vq, 100), max(n_diff, 100), classifier_iterations


def measure_rates(scenes: list[Any], settings: Any, config: Any, library: Any, n: int = 4
                  ) -> tuple[float, float, float]:
    """Seconds per iteration of each stage, measured on a throw-away trainer."""
    from hyperldm_engine.train.data import scene_normaliser
    from hyperldm_engine.train.loop import Trainer, TrainSettings

    probe = TrainSettings(**{**settings.__dict__, "vq_iterations": n + 1, "diffusion_iterations": n + 1,
                             "classifier_iterations": n + 1, "adv_start": 0.0})
    trainer = Trainer(scenes, config, library, probe, scene_normaliser,
                      n_classes=config.n_classes if any(s.labels is not None for s in scenes) else 0)
    rates = []
    for _ in range(3):
        trainer.step()  # warm-up (and the latent scale before the first diffusion step)
        t = time.perf_counter()
        for _ in range(n):
            trainer.step()
        rates.append((time.perf_counter() - t) / n)
    return rates[0], rates[1], rates[2]


def train_default_model(out: Path, specs: list[SceneSpec], size: int, settings: Any, minutes: float,
                        counts: tuple[int | None, int | None, int | None], preset: str = "default",
                        device: str = "cpu", restart: bool = False, progress: str = "bar",
                        command: str = "", log=print, init_bundle: str | Path | None = None) -> dict[str, Any]:
    """Simulate the plan's scenes, size the run to ``minutes`` and train the bundle into ``out``.

    ``init_bundle`` starts every network from a bundle with the same shapes (fine-tuning; the
    config, e.g. a new prediction type or latent dropout, is still this plan's).
    """
    from hyperldm_engine.spectral.library import decoder_library
    from hyperldm_engine.spectral.sensor import Sensor
    from hyperldm_engine.train.checkpoint import default_checkpoint_dir, latest_checkpoint
    from hyperldm_engine.train.data import heldout_row0
    from hyperldm_engine.train.loop import TrainSettings
    from hyperldm_engine.train.run import train_bundle, unify_classes

    start = time.monotonic()
    scenes = simulate_training_scenes(specs, size, log)
    classes = unify_classes(scenes)
    sensor = Sensor(scenes[0].wavelengths_nm, scenes[0].fwhm_nm, "training-scene")
    library, _ = decoder_library(sensor)
    config = default_config(sensor.n_bands, library.shape[1], len(classes), preset)
    previous = None if restart else latest_checkpoint(default_checkpoint_dir(out))
    if previous is not None and None in counts:  # resume with the counts the interrupted run chose
        ps = previous["fingerprint"]["settings"]
        counts = (ps["vq_iterations"], ps["diffusion_iterations"], ps["classifier_iterations"])
    if None in counts:
        for s in scenes:
            s.heldout_row0 = heldout_row0(s.shape[0], settings.patch_size, settings.heldout_fraction, s.name)
        rates = measure_rates(scenes, settings, config, library)
        budget = minutes * 60 - (time.monotonic() - start) - 90  # evaluation and writing
        planned = plan_iterations(rates, budget)
        counts = tuple(c if c is not None else p for c, p in zip(counts, planned, strict=True))
        log(f"measured s/iteration: VQGAN {rates[0]:.2f}, diffusion {rates[1]:.2f}, classifier {rates[2]:.3f}; "
            f"iterations {counts}")
    final = TrainSettings(**{**settings.__dict__, "vq_iterations": counts[0], "diffusion_iterations": counts[1],
                             "classifier_iterations": counts[2]})
    provenance = {"command": command, "scenes_from": "hyperldm_engine.simulate.simulate_scene, train split",
                  "scenes": [spec.describe(size) for spec in specs], "scene_size_px": size,
                  "plan": "hyperldm_engine.train.default_plan"}
    if init_bundle is not None:
        provenance["initialised_from"] = str(init_bundle)
    return train_bundle(scenes, out, final, config=config, device=device, restart=restart, progress=progress,
                        overwrite=True, provenance=provenance, init_bundle=init_bundle)
