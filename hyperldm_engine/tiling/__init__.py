"""Large scenes: latent-aligned overlapping windows, raised-cosine blending, streaming runners.

``windows`` (where tiles are), ``blend`` (how they merge), ``runner`` (in-process streaming),
``dask_runner`` (the same on a dask.distributed cluster), ``aoi`` (areas of interest), ``seams``
(the seam statistic).
"""

from hyperldm_engine.tiling.runner import OutputSet, RunStats, TilePlan, TileRequest, run_tiles
from hyperldm_engine.tiling.windows import TileGrid, crop_to, pad_to_multiple, tile_grid

__all__ = ["OutputSet", "RunStats", "TileGrid", "TilePlan", "TileRequest", "crop_to", "pad_to_multiple",
           "run_tiles", "tile_grid"]
