"""The wall-time split (``hyperldm_engine.timings``): exclusive nesting, threads, report and the CLI's --timings."""

from __future__ import annotations

import signal
import threading
import time

import pytest

from hyperldm_engine import timings


@pytest.fixture(autouse=True)
def _clean():
    timings.reset()
    yield
    timings.reset()


def test_nested_phases_are_exclusive():
    with timings.phase("outer"):
        time.sleep(0.05)
        with timings.phase("inner"):
            time.sleep(0.1)
    parts = timings.snapshot()
    assert parts["inner"][0] == pytest.approx(0.1, abs=0.04)
    assert parts["outer"][0] == pytest.approx(0.05, abs=0.04)  # the inner 0.1 s is not counted twice
    assert parts["outer"][1] == parts["inner"][1] == 1


def test_decorator_counts_calls_and_keeps_the_result_and_errors():
    @timings.timed("work")
    def work(x):
        if x < 0:
            raise ValueError("negative")
        return 2 * x

    assert [work(i) for i in range(3)] == [0, 2, 4]
    with pytest.raises(ValueError, match="negative"):
        work(-1)
    assert timings.snapshot()["work"][1] == 4
    assert work.__name__ == "work"


def test_threads_keep_their_own_nesting():
    def job():
        with timings.phase("thread"):
            time.sleep(0.05)

    with timings.phase("main"):
        threads = [threading.Thread(target=job) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    parts = timings.snapshot()
    assert parts["thread"] == (pytest.approx(0.1, abs=0.04), 2)
    assert parts["main"][0] >= 0.04  # other threads' phases are not subtracted from this thread's


def test_report_parses_back_and_accounts_for_the_rest():
    timings.add("model load", 1.5)
    timings.add("tile: denoise", 6.0, count=3)
    text = timings.report(total_s=10.0)
    parsed = timings.parse_report(text)
    assert parsed == {"model load": 1.5, "tile: denoise": 6.0, "other": 2.5, "total": 10.0}
    assert text.index("model load") < text.index("tile: denoise")  # report order
    assert "3 calls" in text


def test_process_age_is_the_time_since_start():
    age = timings.process_age()
    assert age is not None and 0 < age < 24 * 3600


def test_cli_prints_the_split(tiny_bundle, tmp_path, capsys):
    import numpy as np
    import rasterio
    from hyperldm_cli.main import main
    from rasterio.transform import from_origin

    rgb = tmp_path / "rgb.tif"
    data = np.random.default_rng(0).integers(20, 230, (3, 24, 32), dtype=np.uint8)
    with rasterio.open(rgb, "w", driver="GTiff", width=32, height=24, count=3, dtype="uint8",
                       crs="EPSG:32633", transform=from_origin(500000, 6000000, 2, 2)) as ds:
        ds.write(data)
    previous = signal.getsignal(signal.SIGTERM)  # main installs a SIGTERM handler
    try:
        with pytest.raises(SystemExit) as exc:
            main(["--timings", "synthesize", str(rgb), str(tmp_path / "out.tif"), "--model", tiny_bundle,
                  "--steps", "2", "--progress", "none"])
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert exc.value.code == 0
    parsed = timings.parse_report(capsys.readouterr().err)
    for name in ("model load", "statistics", "read", "tile: denoise", "tile: decode", "blend", "write", "total"):
        assert name in parsed, name
    assert parsed["tile: denoise"] > 0 and parsed["tile: decode"] > 0
    parts = [v for k, v in parsed.items() if k != "total"]
    # each printed figure is rounded to 1 ms, so the sum may differ from the total by half a ms per figure
    assert sum(parts) == pytest.approx(parsed["total"], abs=5e-4 * (len(parts) + 1) + 1e-9)
