"""Land-cover scenes simulated from real spectra (see ``scene.simulate_scene``)."""

from hyperldm_engine.simulate.landcover import CLASS_NAMES
from hyperldm_engine.simulate.scene import Scene, simulate_scene, write_scene

__all__ = ["CLASS_NAMES", "Scene", "simulate_scene", "write_scene"]
