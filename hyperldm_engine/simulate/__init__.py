"""Land-cover scenes simulated from real spectra (see ``scene.simulate_scene``).

Real-world RGB API (issue 19):
- ``simulate_scene(w, h, seed, gsd_m, ..., input_sensor=NAME|"mixed", radiometry="surface"|"toa"|"camera"|
  "mixed", landscape="balanced"|"agricultural"|"forest"|"urban"|"coastal"|"mixed")``: ``Scene.rgb`` is
  the RGB of that sensor in that radiometric state, ``Scene.hsi`` the surface cube, ``Scene.camera``
  the ``(3, n_bands)`` response, ``Scene.params`` every choice. Defaults reproduce the original scenes.
- ``training_set.mixed_training_scenes(n, size, seed0, held_out=False, input_sensor=None, radiometry="mixed",
  landscape="mixed")``: a mixed training set (GSD 0.3-30 m).
- Sensors: ``hyperldm_engine.spectral.input_sensors`` (``rgb_response``, ``band_response``,
  ``resolve_input_sensor``); atmosphere: ``spectral.atmosphere``; water: ``spectral.water``;
  modelled surfaces: ``simulate.surfaces``.
"""

from hyperldm_engine.simulate.landcover import CLASS_NAMES
from hyperldm_engine.simulate.scene import Scene, simulate_scene, write_scene

__all__ = ["CLASS_NAMES", "Scene", "simulate_scene", "write_scene"]
