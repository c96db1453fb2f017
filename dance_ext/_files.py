"""Crash-safe file writing: write beside the target, then rename over it."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path


def temp_path(folder, name: str) -> str:
    """A new empty file in ``folder`` for ``name``'s content, with the permissions a plain
    ``open`` would give (mkstemp's are owner-only)."""
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{name}.", suffix=".tmp")
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)
    return tmp


def atomic_write(path, write) -> None:
    """Write through ``write(tmp_path)`` to a temp file beside ``path``, then rename: a
    crash never leaves a half-written file under the final name."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_path(path.parent, path.name)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
