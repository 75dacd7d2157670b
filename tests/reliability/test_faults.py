"""Resource faults and signals during ``synthesize``, with the CLI in a subprocess.

Each run synthesizes with the tiny random-weights bundle; the big scene (256 x 256, 121 tiles) runs
for several seconds so that a signal sent after the first progress line lands mid-run.
"""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import rasterio

from hyperldm_engine.io.atomic import TMP_MARK, parse_temporary_name

from .conftest import FAST_SYNTH, rgb_data, write_raster

ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONDONTWRITEBYTECODE": "1"}


def synth_argv(rgb: Path, out: Path, bundle: Path, *extra: str) -> list[str]:
    opts = {**FAST_SYNTH, "--progress": "json"}
    argv = [sys.executable, "-m", "hyperldm_cli.main", "synthesize", str(rgb), str(out), "--model", str(bundle)]
    return argv + [x for kv in opts.items() for x in kv] + list(extra)


@pytest.fixture
def big_scene(tmp_path: Path) -> Path:
    return write_raster(tmp_path / "big.tif", rgb_data(256, 256))


def _terminal_like_signals() -> None:
    """A background job (nohup, `&`, some CI runners) starts with SIGINT ignored and children inherit
    that; a user at a terminal has it at its default, which is what these tests emulate."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def start(argv: list[str], preexec_fn=None, **kw) -> subprocess.Popen:
    def setup() -> None:
        _terminal_like_signals()
        if preexec_fn is not None:
            preexec_fn()

    return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV,
                            preexec_fn=setup, **kw)


def wait_for_progress(proc: subprocess.Popen, timeout: float = 60) -> dict:
    """Block until the first JSON progress event (the run is then mid-way through its tiles)."""
    deadline = time.monotonic() + timeout
    assert proc.stdout is not None
    for line in proc.stdout:
        event = json.loads(line)
        if event["event"] == "progress" and event["fraction"] < 1:
            return event
        assert time.monotonic() < deadline, "no progress event in time"
    raise AssertionError(f"the run ended before its first progress event: {proc.stderr.read()}")


def files_in(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)],
                         ids=["SIGINT", "SIGTERM"])
def test_signal_mid_run_stops_within_seconds_and_removes_temporaries(big_scene, tmp_path, tiny_bundle,
                                                                      signum, code):
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    proc = start(synth_argv(big_scene, out_dir / "hsi.tif", tiny_bundle))
    try:
        event = wait_for_progress(proc)
        assert any(TMP_MARK in n for n in files_in(out_dir)), "the run should be writing a temporary"
        t0 = time.monotonic()
        proc.send_signal(signum)
        rest, err = proc.communicate(timeout=20)
        stopped_after = time.monotonic() - t0
    finally:
        proc.kill()
    assert proc.returncode == code, err
    assert stopped_after < 10
    assert event["fraction"] < 1 and '"done"' not in rest
    assert "Traceback" not in err
    errors = [ln for ln in err.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1 and "no partial output" in errors[0], err
    assert files_in(out_dir) == [], "no output and no temporary may remain"
    last = json.loads(rest.strip().splitlines()[-1])
    assert last["event"] == "error"  # the JSON consumer (QGIS) is told too


def test_sigkill_leaves_only_a_temporary_which_the_next_run_removes(big_scene, tmp_path, tiny_bundle, cli):
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    proc = start(synth_argv(big_scene, out_dir / "hsi.tif", tiny_bundle))
    try:
        wait_for_progress(proc)
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=20)
    finally:
        proc.kill()
    assert proc.returncode == -signal.SIGKILL
    left = files_in(out_dir)
    assert left and "hsi.tif" not in left
    for name in left:  # only clearly temporary names, of the killed process
        parsed = parse_temporary_name(name)
        assert parsed is not None and name.startswith(".hsi.hyperldm-tmp-") and parsed[1] == proc.pid, name
    # the next run into the same folder (another output name) removes the dead run's temporaries
    small = write_raster(tmp_path / "small.tif", rgb_data())
    result = cli(["synthesize", small, out_dir / "other.tif", "--model", tiny_bundle,
                  *[x for kv in FAST_SYNTH.items() for x in kv]])
    assert result.code == 0, result.stderr
    assert files_in(out_dir) == ["other.tif"]


def _limit_file_size(limit: int):
    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return apply


@pytest.mark.parametrize(("limit", "when"), [(50_000, "before"), (350_000, "during")], ids=["refused", "mid-write"])
def test_file_size_limit_gives_a_clear_error_and_no_partial_output(tmp_path, tiny_bundle, limit, when):
    """64 x 64 x 48 float32 is 786 kB uncompressed, about 550 kB compressed (random weights).

    50 kB is refused before any work (less than a quarter of the uncompressed size); 350 kB passes
    that check and fails while writing.
    """
    rgb = write_raster(tmp_path / "rgb.tif", rgb_data())
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    proc = start(synth_argv(rgb, out_dir / "hsi.tif", tiny_bundle), preexec_fn=_limit_file_size(limit))
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 5, err
    assert "Traceback" not in err
    errors = [ln for ln in err.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1 and "file-size limit" in errors[0] and str(out_dir / "hsi.tif") in errors[0], err
    progressed = any(json.loads(ln)["event"] == "progress" for ln in out.splitlines())
    assert progressed == (when == "during"), out
    assert files_in(out_dir) == []


def test_same_run_without_limit_succeeds(tmp_path, tiny_bundle, cli):
    """Control for the fault tests: the same command writes a complete, readable output."""
    rgb = write_raster(tmp_path / "rgb.tif", rgb_data())
    out = tmp_path / "hsi.tif"
    result = cli(["synthesize", rgb, out, "--model", tiny_bundle, *[x for kv in FAST_SYNTH.items() for x in kv]])
    assert result.code == 0, result.stderr
    with rasterio.open(out) as ds:
        assert ds.count == 48 and ds.read().shape == (48, 64, 64)
    assert 350_000 < out.stat().st_size < 786_432  # the mid-write limit above really is hit mid-write


@pytest.mark.slow
def test_killed_dask_worker_is_replaced_and_the_output_is_identical(tmp_path, tiny_bundle, cli):
    """synthesize --workers 2: SIGKILL one worker process mid-run; the tiles are recomputed elsewhere."""
    import numpy as np
    import psutil

    rgb = write_raster(tmp_path / "rgb.tif", rgb_data(128, 128))
    reference = tmp_path / "reference.tif"
    assert cli(["synthesize", rgb, reference, "--model", tiny_bundle,
                *[x for kv in FAST_SYNTH.items() for x in kv]]).code == 0
    out = tmp_path / "hsi.tif"
    proc = start(synth_argv(rgb, out, tiny_bundle, "--workers", "2"))
    try:
        wait_for_progress(proc, timeout=120)
        workers = [c for c in psutil.Process(proc.pid).children(recursive=True)
                   if not any(k in " ".join(c.cmdline()) for k in ("resource_tracker", "forkserver"))]
        assert workers, "no worker process found"
        workers[0].send_signal(signal.SIGKILL)
        _, err = proc.communicate(timeout=300)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    with rasterio.open(out) as a, rasterio.open(reference) as b:
        np.testing.assert_array_equal(a.read(), b.read())
