#!/usr/bin/env bash
# Run the QGIS plugin tests (tests/qgis) with Debian's QGIS 3.22 and Debian's python, in a
# --system-site-packages venv (.venv-qgis) that holds only pytest. The engine runs from its own
# venv (.venv, made by the README set-up) through HYPERLDM_ENGINE. See docs/qgis-plugin.md.
# Needs: apt-get install --no-install-recommends python3-qgis qgis gdal-bin xvfb xauth
# Extra arguments go to pytest (e.g. -k cancel, -x). The acceptance test of issue 24 is slow (a real pip
# install of the engine into a temporary HOME, 2-3 minutes): -m slow -k end_to_end -s (prints timings);
# HYPERLDM_E2E_PIP_ARGS="--no-index --find-links DIR" runs it offline from a folder of wheels.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PY=/usr/bin/python3
if ! "$PY" -c "import qgis.core" 2>/dev/null; then
    echo "error: Debian's QGIS Python bindings are missing; run:" >&2
    echo "  apt-get install -y --no-install-recommends python3-qgis qgis gdal-bin xvfb xauth" >&2
    exit 1
fi
VENV="$ROOT/.venv-qgis"
if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c "import pytest, pytest_timeout, sys; sys.exit(int(pytest.version_tuple[0]) < 8)" 2>/dev/null; then
    "$PY" -m venv --system-site-packages "$VENV"
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "pytest>=8" pytest-timeout
fi
# QGIS's and the engine's Python, GDAL and PROJ must not leak into each other.
unset PYTHONPATH PYTHONHOME GDAL_DATA GDAL_DRIVER_PATH PROJ_LIB PROJ_DATA LD_LIBRARY_PATH QGIS_PREFIX_PATH
export QT_QPA_PLATFORM=offscreen
WORK="$(mktemp -d -t hyperldm-qgis-XXXXXX)"
trap 'rm -rf "$WORK"' EXIT
mkdir -p "$WORK/profile" "$WORK/runtime" && chmod 700 "$WORK/runtime"
export QGIS_CUSTOM_CONFIG_PATH="$WORK/profile" XDG_RUNTIME_DIR="$WORK/runtime"
export HYPERLDM_ENGINE="${HYPERLDM_ENGINE:-$ROOT/.venv/bin/hyperldm-engine}"
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-2}"
"$PY" scripts/build_plugin_zip.py --out "$WORK/hyperldm.zip" >/dev/null
export HYPERLDM_PLUGIN_ZIP="$WORK/hyperldm.zip"
exec "$VENV/bin/python" -m pytest tests/qgis -q -p no:cacheprovider --timeout 300 "$@"
