"""Where the engine keeps what it can recompute but would rather not (ONNX exports, harmonisation fits).

``$HYPERLDM_CACHE``, else ``$XDG_CACHE_HOME/hyperldm``, else ``~/.cache/hyperldm``. Everything in it is
keyed by what produced it, safe to delete, and written atomically (a reader never sees half a file).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def cache_root() -> Path:
    """``$HYPERLDM_CACHE``, else ``$XDG_CACHE_HOME/hyperldm``, else ``~/.cache/hyperldm``."""
    if os.environ.get("HYPERLDM_CACHE"):
        return Path(os.environ["HYPERLDM_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "hyperldm"


def write_cached(path: Path, text: str) -> bool:
    """Write ``text`` to ``path`` atomically (temporary file, then rename); False, and nothing
    written, when the cache is not writable (a read-only home must not fail a run)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(text)
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
    except OSError:
        return False
    return True
