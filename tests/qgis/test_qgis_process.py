"""The installed plugin (built ZIP, extracted) through qgis_process.bin: list, help, run, model."""

from __future__ import annotations

import json
import subprocess

import pytest
from qgis_helpers import ROOT, require_engine_command, run_qgis_process

ALGORITHMS = {
    "hyperldm:synthesize": ["INPUT", "MODEL", "SAMPLES", "SEED", "STEPS", "EXTENT", "TILE_SIZE", "OVERLAP",
                            "BATCH_SIZE", "INPUT_SENSOR", "DEVICE", "CREATION_OPTIONS", "ABUNDANCES", "OUTPUT"],
    "hyperldm:diversity": ["INPUT", "MODEL", "SAMPLES", "SEED", "EXTENT", "TILE_SIZE", "SPREAD", "SD_MAP", "SDM_MAP",
                           "SD", "SDM", "REPORT"],
    "hyperldm:train": ["HSI", "RGB", "LABELS", "ITERATIONS", "INIT", "INPUT_SENSOR", "DEVICE", "OUTPUT"],
}
MODEL3 = ROOT / "examples" / "synthesize_and_diversity.model3"


def _gdalinfo(path):
    out = subprocess.run(["/usr/bin/gdalinfo", "-json", str(path)], capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def _grid(info):
    return (info["size"], info["geoTransform"], json.dumps(info["coordinateSystem"]["wkt"]))


def test_list_shows_the_provider_from_the_installed_zip(qgis_process_env):
    proc = run_qgis_process(qgis_process_env, "list")
    assert proc.returncode == 0, proc.stderr
    for alg_id in ALGORITHMS:
        assert alg_id in proc.stdout


@pytest.mark.parametrize("alg_id", sorted(ALGORITHMS))
def test_help_lists_every_parameter_and_output(qgis_process_env, alg_id):
    proc = run_qgis_process(qgis_process_env, "help", alg_id)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for name in ALGORITHMS[alg_id]:
        assert f"{name}:" in proc.stdout, name
    assert "Example" in proc.stdout


def test_run_synthesize(qgis_process_env, scene, bundle, tmp_path):
    require_engine_command("synthesize")
    out = tmp_path / "hsi.tif"
    proc = run_qgis_process(qgis_process_env, "--json", "run", "hyperldm:synthesize", "--",
                            f"INPUT={scene / 'rgb.tif'}", f"MODEL={bundle}", "STEPS=2", "SEED=4", f"OUTPUT={out}")
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    result = json.loads(proc.stdout)
    assert result["results"]["OUTPUT"] == str(out)
    info, rgb = _gdalinfo(out), _gdalinfo(scene / "rgb.tif")
    assert _grid(info) == _grid(rgb)
    assert len(info["bands"]) == 48
    description = info["bands"][11]["description"]  # "b12 545.7 nm" or GDAL's ENVI style "b12 (545.7 Nanometers)"
    assert description.startswith("b12 ") and (description.endswith(" nm") or description.endswith("Nanometers)"))
    assert (out.with_suffix(".qml")).is_file()  # the true-colour default style QGIS applies on opening


def test_run_reports_engine_errors_with_exit_status_1(qgis_process_env, scene, tmp_path):
    require_engine_command("synthesize")
    out = tmp_path / "never.tif"
    proc = run_qgis_process(qgis_process_env, "run", "hyperldm:synthesize", "--",
                            f"INPUT={scene / 'rgb.tif'}", f"MODEL={tmp_path / 'no_such_model'}", f"OUTPUT={out}")
    assert proc.returncode == 1
    assert "Model bundle not found" in proc.stdout + proc.stderr
    assert not out.exists()


def test_model3_chains_synthesize_and_diversity(qgis_process_env, scene, bundle, tmp_path):
    require_engine_command("synthesize")
    require_engine_command("diversity")
    help_proc = run_qgis_process(qgis_process_env, "help", str(MODEL3))
    assert help_proc.returncode == 0, help_proc.stderr
    outs = {name: tmp_path / f"{name.replace(':', '_')}.tif"
            for name in ("synthesize:hsi", "diversity:spread", "diversity:sd_map", "diversity:sdm_map")}
    proc = run_qgis_process(qgis_process_env, "--json", "run", str(MODEL3), "--", f"INPUT={scene / 'rgb.tif'}",
                            f"MODEL={bundle}", "SAMPLES=2", "SEED=3", "STEPS=2",
                            *(f"{k}={v}" for k, v in outs.items()))
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "Executed 2 algorithms" in " ".join(json.loads(proc.stdout)["log"]["info"])
    rgb = _gdalinfo(scene / "rgb.tif")
    for name, path in outs.items():
        info = _gdalinfo(path)
        assert _grid(info) == _grid(rgb), name
    assert len(_gdalinfo(outs["synthesize:hsi"])["bands"]) == 96  # 2 samples x 48 bands
