"""The contract between the engine's command line and its consumers (the QGIS plugin): event names,
the versioned ``done`` payload, output roles and file names, and the defaults the plugin shows.

Standard library only: the QGIS plugin vendors this file byte for byte as
``qgis_plugin/hyperldm/contract.py`` (``scripts/build_plugin_zip.py --sync-only`` copies it, and
``tests/test_contract.py`` and ``tests/qgis/test_package.py`` fail when the copies differ). Change a
name here and both sides change together; change it on one side only and a test fails.

With ``--progress json`` the engine prints one JSON object per line. The last one of a successful
run is the ``done`` event, the same shape for every command::

    {"event": "done", "contract": 1, "command": "diversity",
     "outputs": {"spread": ["/out/spread.tif"], "figures": ["/out/maps.png", ...], ...},
     "values": {"sd": 1.8, "sdm": 1.2, ...}, "seconds": 12.3}

``outputs`` maps a role declared in :data:`OUTPUT_ROLES` to the list of files written for it (every
file the run wrote, nothing guessed); ``values`` holds numbers and short strings.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: bumped when the ``done`` payload or a role changes meaning; consumers refuse other versions
CONTRACT_VERSION = 1

# --- events (one JSON object per line, key "event") -------------------------------------------
EVENT_PROGRESS = "progress"  # fraction 0..1, done, total, message
EVENT_INFO = "info"  # message
EVENT_WARNING = "warning"  # message
EVENT_ERROR = "error"  # message (one line; the exit status says which kind)
EVENT_DONE = "done"  # see done_payload
EVENTS = (EVENT_PROGRESS, EVENT_INFO, EVENT_WARNING, EVENT_ERROR, EVENT_DONE)

# --- output roles of each command's done event ------------------------------------------------
HSI, ABUNDANCES = "hsi", "abundances"
MEAN, SPREAD, SD_MAP, SDM_MAP = "mean", "spread", "sd_map", "sdm_map"
REPORT_JSON, REPORT_MD, REPORT_HTML, FIGURES, SAMPLES = "report_json", "report_md", "report_html", "figures", "samples"
BUNDLE, REPORT, LOSS_PLOT = "bundle", "report", "loss_plot"
STYLES = "styles"  # QGIS .qml side files written beside raster outputs
ENVI_HEADER, LIBRARY = "envi_header", "library"  # synthesize --envi-header, --library-out (GeoPackage + CSV)

OUTPUT_ROLES: dict[str, tuple[str, ...]] = {
    "synthesize": (HSI, ABUNDANCES, ENVI_HEADER, LIBRARY, STYLES),
    "diversity": (MEAN, SPREAD, SD_MAP, SDM_MAP, REPORT_JSON, REPORT_MD, REPORT_HTML, FIGURES, SAMPLES, STYLES),
    "train": (BUNDLE, REPORT, LOSS_PLOT),
    "simulate": (HSI, "rgb", "labels", ABUNDANCES, "metadata", "preview"),
    "evaluate": ("metrics_json", "metrics_md", "per_band_error"),
    "experiment": ("files",),  # every experiment sub-command: its reports and figures
}

# --- file names ---------------------------------------------------------------------------------
#: inside the ``diversity`` output folder, by role
DIVERSITY_FILES = {MEAN: "mean.tif", SPREAD: "spread.tif", SD_MAP: "sd_map.tif", SDM_MAP: "sdm_map.tif",
                   REPORT_JSON: "report.json", REPORT_MD: "report.md", REPORT_HTML: "report.html"}
#: figures of the diversity report (linked by relative name from report.html and report.md)
DIVERSITY_FIGURES = ("true_colour.png", "spread.png", "spectra.png", "maps.png")
#: ``train OUT`` also writes OUT + each suffix
TRAIN_SUFFIXES = {REPORT: ".report.md", LOSS_PLOT: ".loss.png"}
#: QGIS reads a layer's default style from a .qml file of the same stem beside the raster
STYLE_SUFFIX = ".qml"


def diversity_sample_name(k: int) -> str:
    """File name of sample ``k`` (0-based) written by ``diversity --write-samples``."""
    return f"sample_{k}.tif"


def synthesize_sample_name(output: str, k: int) -> str:
    """``synthesize --samples K`` with the "files" layout writes OUT_s0.tif, OUT_s1.tif ..."""
    out = Path(output)
    return str(out.with_name(f"{out.stem}_s{k}{out.suffix}"))


def style_path(raster: str) -> str:
    """Where the .qml default style of ``raster`` goes (QGIS: same folder, same stem)."""
    return str(Path(raster).with_suffix(STYLE_SUFFIX))


# --- defaults the engine applies when an option is not given (tests/test_contract.py checks them
# against the engine's own constants and click defaults; the plugin shows them in its dialogs) ---
DEFAULTS: dict[str, Any] = {
    "steps": 4,  # DDIM sampling steps (diffusion.samplers.DEFAULT_STEPS)
    "tile_size": 512,  # px (pipeline.scene.DEFAULT_TILE)
    "overlap": 64,  # px (pipeline.scene.DEFAULT_OVERLAP)
    "batch_size": 1,  # tiles per model call
    "samples": 1,  # synthesize
    "diversity_samples": 5,  # diversity
    "mode": "sample",
    "rgb_consistency": "auto",
    "rgb_correction": "auto",  # --rgb-correction (spectral.consistency.RGB_CORRECTION_CHOICES)
    "harmonise": "auto",  # --harmonise (simulate.harmonise.HARMONISE_MODES)
    "iterations": 2000,  # train: each of the VQGAN and diffusion stages
    "classifier_iterations": 500,  # train, with labels
}


class ContractError(ValueError):
    """A ``done`` payload that does not follow this contract (wrong version, role or shape)."""


def done_payload(command: str, outputs: dict[str, Any], values: dict[str, Any] | None = None,
                 seconds: float | None = None) -> dict[str, Any]:
    """The ``done`` event of ``command``: every output role declared in :data:`OUTPUT_ROLES`, each
    with a list of paths (a single path or None is normalised; empty roles are dropped)."""
    roles = OUTPUT_ROLES.get(command)
    if roles is None:
        raise ContractError(f"command '{command}' has no declared outputs in the contract")
    listed: dict[str, list[str]] = {}
    for role, paths in outputs.items():
        if role not in roles:
            raise ContractError(f"'{command}' output role '{role}' is not declared (declared: {', '.join(roles)})")
        items = [paths] if isinstance(paths, (str, Path)) else list(paths or [])
        if items:
            listed[role] = [str(p) for p in items]
    payload: dict[str, Any] = {"event": EVENT_DONE, "contract": CONTRACT_VERSION, "command": command,
                               "outputs": listed, "values": dict(values or {})}
    if seconds is not None:
        payload["seconds"] = round(float(seconds), 3)
    return payload


@dataclass
class Done:
    """A parsed ``done`` event: ``paths(role)`` lists, ``path(role)`` the single file of a role."""

    command: str
    outputs: dict[str, list[str]]
    values: dict[str, Any] = field(default_factory=dict)
    seconds: float | None = None

    def paths(self, role: str) -> list[str]:
        return list(self.outputs.get(role, []))

    def path(self, role: str) -> str:
        paths = self.paths(role)
        if len(paths) != 1:
            raise ContractError(f"'{self.command}' done event lists {len(paths)} files for '{role}', expected one")
        return paths[0]

    def number(self, name: str) -> float:
        value = self.values.get(name)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ContractError(f"'{self.command}' done event has no finite number '{name}'")
        return float(value)


def parse_done(event: dict[str, Any], command: str | None = None) -> Done:
    """Check a ``done`` event against this contract (version, command, declared roles, lists of paths)."""
    if not isinstance(event, dict) or event.get("event") != EVENT_DONE:
        raise ContractError("not a done event")
    version = event.get("contract")
    if version != CONTRACT_VERSION:
        raise ContractError(f"the engine speaks contract version {version!r}, this consumer {CONTRACT_VERSION}: "
                            "install matching versions of the engine and the plugin")
    got = event.get("command")
    if command is not None and got != command:
        raise ContractError(f"done event of '{got}' where '{command}' was run")
    roles = OUTPUT_ROLES.get(str(got))
    if roles is None:
        raise ContractError(f"done event of unknown command {got!r}")
    outputs = event.get("outputs")
    if not isinstance(outputs, dict):
        raise ContractError("done event without an 'outputs' object")
    for role, paths in outputs.items():
        if role not in roles:
            raise ContractError(f"'{got}' output role '{role}' is not declared (declared: {', '.join(roles)})")
        if not isinstance(paths, list) or not all(isinstance(p, str) for p in paths):
            raise ContractError(f"'{got}' output '{role}' is not a list of paths")
    values = event.get("values", {})
    if not isinstance(values, dict):
        raise ContractError("done event 'values' is not an object")
    seconds = event.get("seconds")
    return Done(command=str(got), outputs={k: list(v) for k, v in outputs.items()}, values=values,
                seconds=float(seconds) if isinstance(seconds, (int, float)) else None)
