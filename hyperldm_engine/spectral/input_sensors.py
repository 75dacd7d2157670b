"""Input sensors: the camera or satellite bands that made a user's RGB, as responses on any ``Sensor``.

Python API (all pure functions; responses are ``(rows, n_bands)`` float32 on a ``Sensor``):

- ``INPUT_SENSORS``: the registry, name -> ``InputSensor`` (``names()`` lists them, ``AUTO = "auto"``).
- ``rgb_response(name, sensor)`` -> ``(3, n_bands)`` R, G, B rows, each summing to 1, so a
  constant reflectance spectrum gives that constant in every channel.
- ``band_response(name, band, sensor)`` -> ``(n_bands,)`` for ``band`` in ``red green blue nir``
  (``nir`` exists for the satellites: Sentinel-2 B8, OLI B5, ETM+ B4; used for NDVI checks).
- ``auto_input_sensor(tags)`` -> a registry name read from raster metadata (a tag dict), else
  ``GENERIC_CAMERA``; ``resolve_input_sensor(name, tags)`` -> ``InputSensor`` (``name`` may be
  ``auto`` or an alias), whose ``.rgb(sensor)`` / ``.band(b, sensor)`` give the responses.
- ``input_sensor_of(path, name)`` / ``choose_input_sensor(path, name, consistency, ...)`` -> an
  ``InputSensorChoice``: ``--input-sensor`` resolved against a raster's tags and file name, and with
  ``--rgb-consistency`` (``RGB_CONSISTENCY``) the response cubes are projected through, or None.

Where a package ships a measured relative spectral response (RSR) it is used: the two cameras of
colour-science (zero outside their measured range, no invented NIR), and the Landsat 8 OLI and
Sentinel-2A/B MSI RSRs tabulated in Py6S, shipped as ``data/input_sensors.npz`` (built by
``scripts/build_input_sensors.py``; provenance in ``data/input_sensors_provenance.json``).
Landsat 7 ETM+ has no packaged RSR here: it is a top-hat between the handbook's band edges.
The paper's RGB is a band selection (1-based bands 23, 12, 5 of the model's sensor).
Every curve is integrated against each band's Gaussian response at 1 nm (as ``spectral.rgb``),
then each row is normalised to sum 1.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from functools import lru_cache
from importlib import resources
from os import PathLike
from pathlib import Path

import numpy as np

from hyperldm_engine.errors import InputError
from hyperldm_engine.spectral.rgb import PAPER_RGB_BANDS, _camera_curves
from hyperldm_engine.spectral.sensor import Sensor

AUTO = "auto"
GRID_NM = np.arange(300.0, 1101.0)  # the 1-nm grid all curves are put on
CHANNELS = ("red", "green", "blue")


@dataclass(frozen=True)
class InputSensor:
    """One RGB input sensor: how its curves are made, where the numbers come from."""

    name: str
    description: str
    kind: str  # "camera" (colour-science), "rsr" (packaged table), "tophat" (band edges), "bands"
    source: str
    bands: tuple[str, ...] = CHANNELS  # bands it defines (``nir`` for satellites)
    band_names: tuple[str, ...] = ()  # the sensor's own band names, same order as ``bands``
    camera: str = ""  # colour-science camera key (kind "camera")
    table: str = ""  # key prefix in data/input_sensors.npz (kind "rsr")
    edges_nm: tuple[tuple[float, float], ...] = ()  # (lower, upper) per band (kind "tophat")
    aliases: tuple[str, ...] = ()

    def curve(self, band: str) -> np.ndarray:
        """The band's relative response on ``GRID_NM`` (300-1100 nm, 1 nm), zero outside its range."""
        return _curve(self.name, band)

    def rgb(self, sensor: Sensor) -> np.ndarray:
        return rgb_response(self.name, sensor)

    def band(self, band: str, sensor: Sensor) -> np.ndarray:
        return band_response(self.name, band, sensor)

    def to_dict(self) -> dict:
        return {"name": self.name, "description": self.description, "kind": self.kind, "source": self.source,
                "bands": dict(zip(self.bands, self.band_names or self.bands, strict=True))}


_OLI_SOURCE = ("USGS/NASA Landsat 8 OLI relative spectral response as tabulated in Py6S 1.9.2 "
               "(PredefinedWavelengths.LANDSAT_OLI_B2..B5, 2.5 nm); centroids 482.7/561.3/654.6/864.6 nm")
_S2_SOURCE = ("ESA Sentinel-2{x} MSI spectral response functions (COPE-GSEG-EOPG-TN-15-0007) as tabulated in "
              "Py6S 1.9.2 (PredefinedWavelengths.S2{x}_MSI_02/03/04/08, 2.5 nm); centroids {c} nm")

_REGISTRY = [
    InputSensor("generic-camera", "generic aerial / drone RGB camera: a Bayer CMOS behind an IR-cut filter, "
                "modelled by the measured Nikon 5100 response (consumer CMOS sensors of the kind drones carry)",
                "camera", "colour-science 0.4.7 MSDS_CAMERA_SENSITIVITIES['Nikon 5100 (NPL)'] (NPL measurement, "
                "380-780 nm, 5 nm), zero outside", camera="Nikon 5100 (NPL)", aliases=("camera", "drone", "aerial")),
    InputSensor("nikon-5100", "Nikon D5100 camera (measured by NPL)", "camera",
                "colour-science 0.4.7 MSDS_CAMERA_SENSITIVITIES['Nikon 5100 (NPL)'] (380-780 nm, 5 nm), "
                "zero outside", camera="Nikon 5100 (NPL)", aliases=("nikon 5100 (npl)", "nikon5100")),
    InputSensor("sigma-sdmerill", "Sigma SD1 Merrill (Foveon) camera (measured by NPL)", "camera",
                "colour-science 0.4.7 MSDS_CAMERA_SENSITIVITIES['Sigma SDMerill (NPL)'] (400-680 nm, 10 nm), "
                "zero outside", camera="Sigma SDMerill (NPL)", aliases=("sigma sdmerill (npl)", "sigma")),
    InputSensor("sentinel2-msi", "Sentinel-2A MSI true colour B4/B3/B2 (NIR: B8)", "rsr",
                _S2_SOURCE.format(x="A", c="664.6/559.8/492.5/832.8"), bands=(*CHANNELS, "nir"),
                band_names=("B4", "B3", "B2", "B8"), table="sentinel2a-msi",
                aliases=("sentinel-2", "sentinel2", "s2", "sentinel2a-msi", "s2a")),
    InputSensor("sentinel2b-msi", "Sentinel-2B MSI true colour B4/B3/B2 (NIR: B8)", "rsr",
                _S2_SOURCE.format(x="B", c="664.9/559.0/492.2/832.9"), bands=(*CHANNELS, "nir"),
                band_names=("B4", "B3", "B2", "B8"), table="sentinel2b-msi", aliases=("s2b",)),
    InputSensor("landsat8-oli", "Landsat 8/9 OLI true colour B4/B3/B2 (NIR: B5); OLI-2 on Landsat 9 has "
                "the same nominal bands", "rsr", _OLI_SOURCE, bands=(*CHANNELS, "nir"),
                band_names=("B4", "B3", "B2", "B5"), table="landsat8-oli",
                aliases=("landsat8", "landsat-8", "landsat9", "landsat9-oli", "landsat-9", "oli", "l8", "l9")),
    InputSensor("landsat7-etm", "Landsat 7 ETM+ true colour B3/B2/B1 (NIR: B4)", "tophat",
                "top-hat between the nominal band edges of the Landsat 7 Science Data Users Handbook "
                "(NASA 1998, table 8.1) as centre/FWHM B3 662/60, B2 560/80, B1 483/65, B4 835/130 nm "
                "(design.md section 7); no packaged RSR", bands=(*CHANNELS, "nir"),
                band_names=("B3", "B2", "B1", "B4"),
                edges_nm=((632.0, 692.0), (520.0, 600.0), (450.5, 515.5), (770.0, 900.0)),
                aliases=("landsat7", "landsat-7", "etm", "etm+", "l7")),
    InputSensor("paper-bands", "the paper's band selection: 1-based bands 23/12/5 of the model's own sensor "
                "(681.5/545.7/459.4 nm on the default 48-band sensor)", "bands",
                "Liu et al., TGRS 2023, section IV-A (DFC 2018 CASI bands 23, 12, 5)", aliases=("paper", "casi")),
]
INPUT_SENSORS: dict[str, InputSensor] = {s.name: s for s in _REGISTRY}
GENERIC_CAMERA = "generic-camera"
_ALIASES = {a: s.name for s in _REGISTRY for a in (s.name, *s.aliases)}


def names() -> tuple[str, ...]:
    """Registry names, in a stable order (what ``--input-sensor`` accepts besides ``auto``)."""
    return tuple(INPUT_SENSORS)


def get_input_sensor(name: str) -> InputSensor:
    """The registry entry for ``name`` or one of its aliases (case-insensitive)."""
    key = _ALIASES.get(str(name).strip().lower())
    if key is None:
        raise InputError(f"unknown input sensor {name!r}; known: {', '.join(names())} (or auto)")
    return INPUT_SENSORS[key]


@lru_cache(maxsize=1)
def _rsr_tables() -> dict[str, np.ndarray]:
    path = resources.files("hyperldm_engine.data").joinpath("input_sensors.npz")
    with resources.as_file(path) as p, np.load(p, allow_pickle=False) as z:
        return {k: z[k].astype(np.float64) for k in z.files}


@lru_cache(maxsize=64)
def _curve(name: str, band: str) -> np.ndarray:
    s = INPUT_SENSORS[name]
    if band not in s.bands:
        raise InputError(f"input sensor {name!r} has no {band!r} band (it has {', '.join(s.bands)})")
    if s.kind == "camera":
        wl, curves = _camera_curves(s.camera)
        c = np.interp(GRID_NM, wl, curves[CHANNELS.index(band)], left=0.0, right=0.0)
    elif s.kind == "rsr":
        t = _rsr_tables()
        c = np.interp(GRID_NM, t["wavelengths_nm"], t[f"{s.table}/{band}"], left=0.0, right=0.0)
    elif s.kind == "tophat":
        lo, hi = s.edges_nm[s.bands.index(band)]
        c = (np.abs(GRID_NM - 0.5 * (lo + hi)) <= 0.5 * (hi - lo)).astype(np.float64)
    else:
        raise InputError(f"input sensor {name!r} selects bands; it has no spectral curve")
    c.setflags(write=False)
    return c


def _paper_rows(sensor: Sensor) -> np.ndarray:
    if sensor.n_bands < max(PAPER_RGB_BANDS):
        raise InputError(f"the paper's bands {PAPER_RGB_BANDS} need at least {max(PAPER_RGB_BANDS)} bands; "
                         f"sensor {sensor.name!r} has {sensor.n_bands}")
    rows = np.zeros((3, sensor.n_bands), np.float32)
    rows[np.arange(3), np.array(PAPER_RGB_BANDS) - 1] = 1.0
    return rows


@lru_cache(maxsize=256)
def _response(name: str, bands: tuple[str, ...], sensor: Sensor) -> np.ndarray:
    s = INPUT_SENSORS[name]
    if s.kind == "bands":
        if bands != CHANNELS:
            raise InputError("the paper's band selection defines only red, green and blue")
        out = _paper_rows(sensor)
    else:
        curves = np.stack([_curve(name, b) for b in bands])
        w = curves @ sensor.response_matrix(GRID_NM).T
        total = w.sum(axis=1, keepdims=True)
        if np.any(total <= 1e-9 * curves.sum(axis=1, keepdims=True)):
            raise InputError(f"input sensor {name!r} has no response over sensor {sensor.name!r}'s bands")
        out = (w / total).astype(np.float32)
    out.setflags(write=False)
    return out


def rgb_response(name: str, sensor: Sensor) -> np.ndarray:
    """``(3, n_bands)`` float32 R, G, B weights of input sensor ``name`` on ``sensor``; rows sum to 1."""
    return _response(get_input_sensor(name).name, CHANNELS, sensor)


def band_response(name: str, band: str, sensor: Sensor) -> np.ndarray:
    """``(n_bands,)`` float32 weights of one band (``red``, ``green``, ``blue`` or ``nir``); sums to 1."""
    s = get_input_sensor(name)
    if s.kind == "bands" and band in CHANNELS:
        return rgb_response(s.name, sensor)[CHANNELS.index(band)]
    return _response(s.name, (band,), sensor)[0]


# ---- automatic resolution from raster metadata -------------------------------------------------
# Substrings (lower case) looked for in tag keys and values, first match wins. Product-name
# prefixes: Landsat Collection 2 (LC08/LC09 OLI, LE07 ETM+), Sentinel-2 SAFE (S2A_/S2B_MSI).
_AUTO_RULES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("sentinel2b-msi", ("s2b_msi", "sentinel-2b", "sentinel2b")),
    ("sentinel2-msi", ("sentinel-2", "sentinel2", "sentinel_2", "s2a_msi", "s2_msi", "msil1c", "msil2a")),
    ("landsat7-etm", ("etm+", "le07", "landsat_7", "landsat 7", "landsat7", "landsat-7")),
    ("landsat8-oli", ("lc08", "lc09", "lo08", "landsat_8", "landsat 8", "landsat8", "landsat-8", "landsat_9",
                      "landsat 9", "landsat9", "landsat-9", "oli_tirs", "oli-2")),
)


def auto_input_sensor(tags: Mapping[str, object] | None) -> str:
    """Registry name implied by raster metadata ``tags`` (any key/value strings), else ``GENERIC_CAMERA``.

    An explicit ``input_sensor`` tag (as the engine writes) wins if it names a known sensor.
    """
    tags = dict(tags or {})
    for key in ("input_sensor", "INPUT_SENSOR", "hyperldm_input_sensor"):
        value = str(tags.get(key, "")).strip().lower()
        if value and value != AUTO and value in _ALIASES:
            return _ALIASES[value]
    text = " ".join(f"{k} {v}" for k, v in tags.items()).lower()
    for name, needles in _AUTO_RULES:
        if any(n in text for n in needles):
            return name
    return GENERIC_CAMERA


def resolve_input_sensor(name: str | None, tags: Mapping[str, object] | None = None) -> InputSensor:
    """The input sensor for ``name`` (a registry name or alias; ``None`` or ``auto``: from ``tags``).

    ``resolve_input_sensor("auto", ds.tags()).rgb(bundle_sensor)`` is the ``(3, n_bands)`` response
    S with RGB = S @ cube.
    """
    if name is None or str(name).strip().lower() == AUTO:
        return INPUT_SENSORS[auto_input_sensor(tags)]
    return get_input_sensor(name)


#: --rgb-consistency choices: "auto" projects when the input sensor is known (named, or read from the
#: raster's metadata), "on" always (the generic camera when unknown), "off" never
RGB_CONSISTENCY = ("auto", "on", "off")


@dataclass(frozen=True)
class InputSensorChoice:
    """The input sensor a job uses, how it was decided, and the response for RGB consistency (or None)."""

    name: str
    source: str  # "option", "metadata" or "default"
    response: np.ndarray | None
    #: the raster tags (and file name) ``auto`` read; empty when the sensor was named
    tags: Mapping[str, object] = field(default_factory=dict, repr=False, compare=False)

    @property
    def consistency(self) -> bool:
        return self.response is not None


def input_sensor_of(input_path: str | PathLike[str], input_sensor: str | None) -> InputSensorChoice:
    """Resolve ``--input-sensor`` (``auto`` or None: from the raster's tags and file name); no response."""
    if input_sensor is not None and str(input_sensor).strip().lower() != AUTO:
        return InputSensorChoice(get_input_sensor(input_sensor).name, "option", None)
    import rasterio

    tags: dict[str, object] = {"filename": Path(input_path).name}
    try:
        with rasterio.open(input_path) as ds:
            tags = {**ds.tags(), **tags}
    except Exception:  # the reader reports unreadable inputs with its own message
        pass
    name = auto_input_sensor(tags)
    return InputSensorChoice(name, "default" if name == GENERIC_CAMERA else "metadata", None, tags)


def choose_input_sensor(input_path: str | PathLike[str], input_sensor: str | None, consistency: str,
                        wavelengths_nm: np.ndarray, fwhm_nm: np.ndarray) -> InputSensorChoice:
    """Resolve ``--input-sensor`` (``auto``: from the raster's tags and file name) and ``--rgb-consistency``."""
    if consistency not in RGB_CONSISTENCY:
        raise InputError(f"unknown --rgb-consistency {consistency!r}; choose one of {', '.join(RGB_CONSISTENCY)}")
    choice = input_sensor_of(input_path, input_sensor)
    # auto: only where RGB is linear in the cube; gamma-encoded camera values are not (tags say so)
    linear = str(choice.tags.get("radiometry", "")).lower() != "camera" if choice.source == "metadata" else True
    if not (consistency == "on" or (consistency == "auto" and choice.source != "default" and linear)):
        return choice
    sensor = Sensor(np.asarray(wavelengths_nm, float), np.asarray(fwhm_nm, float), "model")
    return replace(choice, response=get_input_sensor(choice.name).rgb(sensor).astype(np.float32))
