"""Build ``dist/hyperldm.zip``, the installable QGIS plugin: one folder ``hyperldm/`` with the code,
the icon, ``metadata.txt`` copied from the repository root and ``contract.py`` copied from
``hyperldm_engine/contract.py`` (each the single source of truth).

Usage: python scripts/build_plugin_zip.py [--out dist/hyperldm.zip] [--wheel dist/hyperldm_engine-*.whl] [--sync-only]
``--wheel`` ships the engine's wheel (``python -m pip wheel --no-deps . -w dist``) in ``hyperldm/wheels/``,
where the plugin's "Set up or update the engine" algorithm installs it from.
``--sync-only`` just refreshes ``qgis_plugin/hyperldm/metadata.txt`` and ``contract.py``.
Standard library only, so any Python (the engine venv or Debian's) can run it.
"""

from __future__ import annotations

import argparse
import configparser
import shutil
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PLUGIN = ROOT / "qgis_plugin" / "hyperldm"
REQUIRED = ("name", "qgisMinimumVersion", "description", "about", "version", "author", "email",
            "repository", "hasProcessingProvider")
SKIP_DIRS = {"__pycache__", ".pytest_cache", ".mypy_cache"}
SKIP_SUFFIXES = {".pyc", ".pyo", ".orig", ".rej", ".swp"}


def check_metadata(path: Path) -> configparser.ConfigParser:
    """Parse metadata.txt the way QGIS does and refuse when a required key is missing."""
    parser = configparser.ConfigParser(interpolation=None)
    parser.optionxform = str  # keys are case-sensitive for QGIS
    parser.read(path, encoding="utf-8")
    if "general" not in parser:
        sys.exit(f"error: {path} has no [general] section")
    missing = [key for key in REQUIRED if not parser["general"].get(key, "").strip()]
    if missing:
        sys.exit(f"error: {path} lacks {', '.join(missing)}")
    if parser["general"]["hasProcessingProvider"].strip().lower() not in ("yes", "true"):
        sys.exit(f"error: {path} must say hasProcessingProvider=yes")
    return parser


CONTRACT = ROOT / "hyperldm_engine" / "contract.py"


def sync_metadata(contract: bool = False) -> None:
    """Copy the root metadata.txt into the plugin folder (QGIS reads it from there) and, with
    ``contract``, the engine-plugin contract (the plugin cannot import the engine). A plain build
    leaves the checkout's contract copy alone, so that the tests still see a copy that disagrees;
    the ZIP always gets the engine's."""
    check_metadata(ROOT / "metadata.txt")
    shutil.copyfile(ROOT / "metadata.txt", PLUGIN / "metadata.txt")
    if contract:
        shutil.copyfile(CONTRACT, PLUGIN / "contract.py")


def plugin_files() -> list[Path]:
    files = []
    for path in sorted(PLUGIN.rglob("*")):
        if path.is_dir() or SKIP_DIRS.intersection(path.relative_to(PLUGIN).parts):
            continue
        if path.suffix in SKIP_SUFFIXES or path.relative_to(PLUGIN).as_posix() in ("metadata.txt", "contract.py"):
            continue
        files.append(path)
    return files


def build(out: Path, wheel: Path | None = None) -> Path:
    check_metadata(ROOT / "metadata.txt")
    for needed in ("__init__.py", "icon.svg"):
        if not (PLUGIN / needed).is_file():
            sys.exit(f"error: {PLUGIN / needed} is missing")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".part")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.write(ROOT / "metadata.txt", "hyperldm/metadata.txt")
        zf.write(CONTRACT, "hyperldm/contract.py")
        if wheel is not None:
            if not wheel.is_file() or not wheel.name.startswith("hyperldm_engine-") or wheel.suffix != ".whl":
                sys.exit(f"error: {wheel} is not a hyperldm_engine wheel")
            zf.write(wheel, "hyperldm/wheels/" + wheel.name)
        for path in plugin_files():
            zf.write(path, "hyperldm/" + path.relative_to(PLUGIN).as_posix())
    tmp.replace(out)
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "dist" / "hyperldm.zip")
    parser.add_argument("--wheel", type=Path, default=None, help="engine wheel to ship in hyperldm/wheels/")
    parser.add_argument("--sync-only", action="store_true")
    args = parser.parse_args(argv)
    sync_metadata(contract=args.sync_only)
    if not args.sync_only:
        out = build(args.out, args.wheel)
        with zipfile.ZipFile(out) as zf:
            print(f"{out} ({out.stat().st_size / 1024:.1f} KiB, {len(zf.namelist())} files)")


if __name__ == "__main__":
    main()
