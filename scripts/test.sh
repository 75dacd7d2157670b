#!/usr/bin/env bash
# Install everything the tests need from this repository's own files and run the whole suite:
# ruff, the engine tests (engine venv .venv) and the QGIS plugin tests (Debian's QGIS, .venv-qgis).
# Works as root on a fresh Debian 12 machine with Python 3.11. CI runs exactly this (.ci/run).
set -euo pipefail
cd "$(dirname "$0")/.."

export DEBIAN_FRONTEND=noninteractive
if ! dpkg -s python3-qgis qgis python3-venv xvfb >/dev/null 2>&1; then
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends python3-venv python3-qgis qgis gdal-bin xvfb xauth >/dev/null
fi

bash scripts/install_engine.sh test

mkdir -p .test-results
rm -f .test-results/*.xml
.venv/bin/ruff check .

status=0
OMP_NUM_THREADS=2 .venv/bin/python -m pytest -q -p no:cacheprovider --ignore=tests/qgis \
  --junitxml=.test-results/engine.xml tests || status=$?
bash scripts/test_qgis.sh --junitxml=.test-results/qgis.xml || status=$?

# One closing line over both runs; "no tests collected" (pytest exit 5) is a failure.
.venv/bin/python scripts/summarise_tests.py .test-results/engine.xml .test-results/qgis.xml || status=$?
exit "$status"
