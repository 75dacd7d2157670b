"""The engine-plugin contract: one module, vendored byte for byte by the plugin, matching the engine.

Each test here fails when the engine and the plugin disagree on a name, a file or a default.
"""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from hyperldm_engine import contract
from hyperldm_engine.contract import ContractError, done_payload, parse_done

ROOT = Path(__file__).resolve().parents[1]
ENGINE_COPY = ROOT / "hyperldm_engine" / "contract.py"
PLUGIN_COPY = ROOT / "qgis_plugin" / "hyperldm" / "contract.py"


def test_plugin_vendors_the_engine_contract_byte_for_byte():
    assert PLUGIN_COPY.read_bytes() == ENGINE_COPY.read_bytes(), (
        "qgis_plugin/hyperldm/contract.py differs from hyperldm_engine/contract.py: the engine and the plugin "
        "disagree; edit hyperldm_engine/contract.py and run python scripts/build_plugin_zip.py --sync-only")


def test_contract_is_standard_library_only():
    tree = ast.parse(ENGINE_COPY.read_text())
    roots = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    roots |= {n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    assert roots <= {"__future__", "math", "dataclasses", "pathlib", "typing"}, roots


def test_defaults_are_the_engine_constants_and_click_defaults():
    from hyperldm_cli.cmd_diversity import diversity
    from hyperldm_cli.cmd_synthesize import synthesize

    from hyperldm_engine.pipeline.scene import DEFAULT_OVERLAP, DEFAULT_TILE
    from hyperldm_engine.pipeline.synthesize import DEFAULT_STEPS, default_steps
    from hyperldm_engine.train.loop import TrainSettings

    d = contract.DEFAULTS
    assert (d["steps"], d["tile_size"], d["overlap"]) == (DEFAULT_STEPS, DEFAULT_TILE, DEFAULT_OVERLAP)
    assert (d["iterations"], d["iterations"], d["classifier_iterations"]) == (
        TrainSettings().vq_iterations, TrainSettings().diffusion_iterations, TrainSettings().classifier_iterations)
    synth = {p.name: p.default for p in synthesize.params}
    assert (synth["samples"], synth["batch_size"], synth["mode"], synth["rgb_consistency"]) == (
        d["samples"], d["batch_size"], d["mode"], d["rgb_consistency"])
    assert (synth["tile_size"], synth["overlap"], synth["harmonise"]) == (d["tile_size"], d["overlap"], d["harmonise"])
    from hyperldm_engine.pipeline.scene import SceneJob
    assert synth["rgb_correction"] == d["rgb_correction"] == SceneJob.__dataclass_fields__["rgb_correction"].default
    # --steps is left unset so that --mode decides; the contract's steps are the default mode's
    assert synth["steps"] is None and default_steps(d["mode"]) == d["steps"] == DEFAULT_STEPS
    assert {p.name: p.default for p in diversity.params}["samples"] == d["diversity_samples"]


def test_file_names_are_the_ones_the_pipelines_write():
    from hyperldm_engine.pipeline import diversity
    from hyperldm_engine.pipeline.scene import sample_paths

    assert diversity.output_paths("/o", 2, True)["spread"] == "/o/" + contract.DIVERSITY_FILES[contract.SPREAD]
    assert [str(p) for p in sample_paths("/o/hsi.tif", 2, "files")] == ["/o/hsi_s0.tif", "/o/hsi_s1.tif"]
    assert diversity.sample_name(3) == contract.diversity_sample_name(3) == "sample_3.tif"


def test_done_payload_has_one_versioned_shape_and_refuses_undeclared_roles():
    event = done_payload("synthesize", {"hsi": ["/o/a_s0.tif", Path("/o/a_s1.tif")], "abundances": None},
                         values={"tiles": 4}, seconds=1.23456)
    assert event == {"event": "done", "contract": contract.CONTRACT_VERSION, "command": "synthesize",
                     "outputs": {"hsi": ["/o/a_s0.tif", "/o/a_s1.tif"]}, "values": {"tiles": 4}, "seconds": 1.235}
    done = parse_done(json.loads(json.dumps(event)), "synthesize")
    assert done.paths("hsi") == ["/o/a_s0.tif", "/o/a_s1.tif"] and done.paths("abundances") == []
    with pytest.raises(ContractError, match="not declared"):
        done_payload("synthesize", {"output": "/o/a.tif"})
    with pytest.raises(ContractError, match="contract version"):
        parse_done({**event, "contract": contract.CONTRACT_VERSION + 1})
    with pytest.raises(ContractError, match="not a list"):
        parse_done({**event, "outputs": {"hsi": "/o/a.tif"}})
    with pytest.raises(ContractError, match="where 'train' was run"):
        parse_done(event, "train")


def test_every_done_event_of_the_cli_follows_the_contract():
    """Each command's done event is built by contract.done_payload (grep-level guard: no hand-made
    ``emit_json("done", ...)`` left in the CLI)."""
    for path in sorted((ROOT / "cli").glob("cmd_*.py")):
        text = path.read_text()
        assert 'emit_json("done"' not in text and "emit_json('done'" not in text, path.name
        for call in [n for n in ast.walk(ast.parse(text)) if isinstance(n, ast.Call)
                     and getattr(n.func, "id", None) == "emit_done"]:
            command = call.args[0].value
            assert command in contract.OUTPUT_ROLES, (path.name, command)


def test_simulate_done_event_through_the_cli(tmp_path):
    from hyperldm_cli.cmd_simulate import simulate

    out = tmp_path / "scene"
    res = CliRunner().invoke(simulate, [str(out), "--size", "32", "32", "--progress", "json"])
    assert res.exit_code == 0, res.output
    done = parse_done(json.loads(res.output.strip().splitlines()[-1]), "simulate")
    assert all(Path(p).is_file() for paths in done.outputs.values() for p in paths)
