"""What the commands share: option groups (``--progress``; the scene options of synthesize and diversity)
and the last word of a run (:func:`finish`)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

import click

from hyperldm_engine.pipeline.run import DEFAULT_OVERLAP, DEFAULT_TILE
from hyperldm_engine.progress import emit_done
from hyperldm_engine.simulate.harmonise import HARMONISE_MODES
from hyperldm_engine.spectral.consistency import RGB_CORRECTION_CHOICES
from hyperldm_engine.spectral.input_sensors import RGB_CONSISTENCY
from hyperldm_engine.tiling.runner import DEFAULT_STRIP_WIDTH

PROGRESS_MODES = ("bar", "json", "none")


def resolve_model(model: str | None) -> str:
    """The bundle to use: ``--model`` or the default bundle shipped in the package."""
    if model:
        return model
    from hyperldm_engine.models.bundle import default_bundle_path

    return str(default_bundle_path())

F = TypeVar("F", bound=Callable[..., Any])


def progress_option(f: F) -> F:
    """``--progress bar|json|none`` as ``progress_mode`` (json: the engine-plugin contract's events)."""
    return click.option("--progress", "progress_mode", type=click.Choice(PROGRESS_MODES), default="bar",
                        show_default=True,
                        help="bar: a progress bar on stderr; json: one JSON event per line on stdout "
                             "(the last one the 'done' event); none: no progress.")(f)


def finish(command: str, progress_mode: str, outputs: dict[str, Any], *, values: dict[str, Any] | None = None,
           seconds: float | None = None, text: str | None = None, note: str | None = None) -> None:
    """End a command: with ``--progress json`` the contract's ``done`` event (``outputs`` by role,
    ``values``, ``seconds``); otherwise ``text`` on stdout (results to read or pipe) and, with the
    progress bar, ``note`` on stderr (what was written, how fast)."""
    if progress_mode == "json":
        emit_done(command, outputs, values=values, seconds=seconds)
        return
    if text is not None:
        click.echo(text)
    if note is not None and progress_mode == "bar":
        click.echo(note, err=True)


def option_group(*options: Callable[[F], F]) -> Callable[[F], F]:
    """Several click options as one decorator, shown in the order given."""

    def decorate(f: F) -> F:
        for option in reversed(options):
            f = option(f)
        return f

    return decorate


#: RGB consistency: the same for synthesize and diversity (whose report measures what synthesize writes)
consistency_options = option_group(
    click.option("--rgb-consistency", type=click.Choice(RGB_CONSISTENCY), default="auto", show_default=True,
                 help="Make every cube reproduce the input RGB exactly through the input sensor's response "
                      "(auto: when the input sensor is known; on top-of-atmosphere input its estimated surface RGB)."),
    click.option("--rgb-correction", type=click.Choice(RGB_CORRECTION_CHOICES), default="auto", show_default=True,
                 help="How RGB consistency changes the cubes: minimum, the smallest change (visible bands only); "
                      "spectral, each cube spread over every band, near infrared included, by the model's error "
                      "covariance (most accurate, least diverse); ensemble, the samples' mean by that covariance "
                      "and their spread by the smallest change (diversity kept; with 1 sample = spectral); "
                      "anchored, ensemble about the samples' mean fused with the bundle's deterministic map of "
                      "the RGB (a ridge in the default model; bundles may carry a small CNN too) "
                      "(most accurate with diversity kept); auto: anchored (ensemble for bundles without an "
                      "anchor); on top-of-atmosphere input anchored only if the anchor was measured on TOA scenes "
                      "too (the default model's was), else minimum (docs/model-diagnosis.md)."),
)

#: how a scene is read, cut into tiles, restricted and run: the same for synthesize and diversity
_scene_option_group = option_group(
    click.option("--device", default="cpu", show_default=True, help="cpu, cuda, cuda:N or auto."),
    click.option("--batch-size", default=1, show_default=True, type=int,
                 help="Tiles per model call; larger values help on a GPU, memory grows linearly."),
    click.option("--strip-width", default=DEFAULT_STRIP_WIDTH, show_default=True, type=int,
                 help="Pixels merged at a time (vertical strips); memory grows with it, results do not change."),
    click.option("--tile-size", default=DEFAULT_TILE, show_default=True, type=int,
                 help="Tile size in pixels."),
    click.option("--overlap", default=DEFAULT_OVERLAP, show_default=True, type=int,
                 help="Tile overlap in pixels."),
    click.option("--extent", default=None, help='Restrict to "xmin,ymin,xmax,ymax[,EPSG:n]" or QGIS\'s '
                 '"xmin,xmax,ymin,ymax [EPSG:n]"; the output covers the extent snapped to the input grid.'),
    click.option("--aoi", type=click.Path(dir_okay=False), default=None,
                 help="Restrict to the polygons of a vector file (any OGR format, any CRS); the output covers "
                      "their bounding box on the input grid, nodata outside the polygons."),
    click.option("--keep-grid", is_flag=True,
                 help="With --extent/--aoi: keep the whole input grid (nodata outside) instead of cropping."),
    click.option("--workers", type=int, default=None, help="Run tiles on a local dask cluster of N processes."),
    click.option("--scheduler", default=None, help="Run tiles on an existing dask.distributed scheduler."),
    click.option("--scale", type=float, default=None,
                 help="Divide input values by this (default: 255 for uint8, 65535 for uint16, 1 for float)."),
    click.option("--bands", default=None, help="Input bands to use as R,G,B, e.g. 3,2,1 (1-based)."),
    click.option("--harmonise", type=click.Choice(HARMONISE_MODES), default="auto", show_default=True,
                 help="Map a known input sensor's colours onto the camera the model was trained on before "
                      "synthesis; on toa also an average path radiance is removed, except with the bundle's TOA "
                      "anchor (--rgb-correction auto, the default model), measured on hazy colours; surface/toa "
                      "say the input's radiometry (auto: its 'radiometry' tag, else "
                      "surface). RGB consistency uses the input sensor: onto the input as read on surface "
                      "reflectance, onto its estimated surface RGB on toa."),
)

#: the scene options' parameter names -> ``pipeline.run.SceneOptions`` fields
SCENE_FIELDS = {"device": "device", "batch_size": "batch_size", "strip_width": "strip_width", "tile_size": "tile",
                "overlap": "overlap", "extent": "extent", "aoi": "aoi", "keep_grid": "keep_grid",
                "workers": "workers", "scheduler": "scheduler", "scale": "scale", "bands": "bands",
                "harmonise": "harmonise"}


def scene_options(f: F) -> F:
    """The scene option group, handed to the command as one ``scene`` mapping of ``SceneOptions`` fields
    (``SceneJob(..., **scene)``), so a command lists only its own options."""

    @functools.wraps(f)
    def command(*args: Any, **kwargs: Any) -> Any:
        scene = {field: kwargs.pop(name) for name, field in SCENE_FIELDS.items()}
        return f(*args, scene={**scene, "bands": scene["bands"] or None}, **kwargs)

    return _scene_option_group(command)  # type: ignore[return-value]
