"""Shared fixtures: the suite's tiny random-weight bundle (``tiny_models.build_tiny_bundle``) on the
simulator's 48-band sensor, with a confident classifier (fast on 2 CPU cores)."""

from __future__ import annotations

import pytest

# The QGIS suite (tests/qgis) runs under Debian's python without the engine's packages and also
# loads this file, so the engine is imported inside the functions only.


@pytest.fixture(scope="session")
def tiny_bundle(tmp_path_factory: pytest.TempPathFactory) -> str:
    from tiny_models import build_tiny_bundle

    return str(build_tiny_bundle(tmp_path_factory.mktemp("bundle") / "tiny"))


@pytest.fixture(scope="session", autouse=True)
def engine_cache(tmp_path_factory: pytest.TempPathFactory):
    """The engine's disk cache (``hyperldm_engine.cache``) in a folder of this run, not the user's home."""
    import os

    before = os.environ.get("HYPERLDM_CACHE")
    os.environ["HYPERLDM_CACHE"] = str(tmp_path_factory.mktemp("engine-cache"))
    yield os.environ["HYPERLDM_CACHE"]
    if before is None:
        os.environ.pop("HYPERLDM_CACHE", None)
    else:
        os.environ["HYPERLDM_CACHE"] = before
