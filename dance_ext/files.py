"""Crash-safe file writing (write beside the target, then rename over it) and safe reading."""
from __future__ import annotations

import hashlib
import os
import pickle
import re
import stat
import tempfile
from contextlib import nullcontext
from pathlib import Path

import numpy as np
import torch


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


def regular_file(path, arg: str) -> bool:
    """Whether ``path`` is a regular file; something else under that name (a FIFO, a device,
    a folder) is refused rather than read (a FIFO would block the reader for ever)."""
    path = Path(path)
    if not path.exists():
        return False
    if not stat.S_ISREG(path.stat().st_mode):
        raise ValueError(f"{arg}: {path} is not a regular file; refusing to read it")
    return True


def _numpy_scalar_globals() -> list:
    """numpy's scalar and dtype reconstructors under their numpy 1 and 2 module names: they
    rebuild numbers from bytes and run no code (DM's result files hold numpy accuracies)."""
    scalar = np.float64(0).__reduce__()[0]
    dtypes = {type(np.dtype(code)) for code in "?bhilqBHILQefd"}
    return [(scalar, f"{core}.multiarray.scalar") for core in ("numpy.core", "numpy._core")] + [np.dtype, *dtypes]


def load_tensors(path, arg: str, what: str, numpy_scalars: bool = False):
    """``torch.load`` with ``weights_only=True`` (tensors and plain containers, never code;
    ``numpy_scalars`` also admits numpy numbers). A tampered, truncated or foreign file
    becomes a one-line ValueError naming ``arg`` and saying it is not a readable ``what``."""
    allowed = torch.serialization.safe_globals(_numpy_scalar_globals()) if numpy_scalars else nullcontext()
    if not regular_file(path, arg):
        raise FileNotFoundError(f"{arg}: no {what} at {path}")
    try:
        with allowed:
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        # torch's own message advises weights_only=False: exactly wrong for an untrusted file
        found = re.search(r"GLOBAL (\S+)", str(exc))
        if found:
            raise ValueError(f"{arg}: {path} is not a readable {what}: it holds a pickled {found.group(1)}, "
                             "refused since loading it could run code") from exc
        raise ValueError(f"{arg}: {path} is not a readable {what} (truncated, corrupt or not written by "
                         "torch.save)") from exc
    except (RuntimeError, EOFError, ValueError, OSError) as exc:  # OSError: a cut zip archive
        # the first sentence: torch appends paragraphs of advice
        detail = str(exc).split("\n")[0].split(". ")[0] if str(exc) else type(exc).__name__
        raise ValueError(f"{arg}: {path} is not a readable {what} (truncated or corrupt: {detail})") from exc


def sha256_file(path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


HASH_CHUNK = 1 << 26  # bytes per hashed piece


def sha256_tensors(*tensors: torch.Tensor, extra: bytes = b"") -> str:
    """sha256 of the tensors' raw bytes in order (any dtype; numpy has no bfloat16), then ``extra``."""
    digest = hashlib.sha256()
    for t in tensors:
        flat = t.detach().contiguous().reshape(-1).view(torch.uint8)
        for start in range(0, flat.numel(), HASH_CHUNK):  # bounded copies, even of a GPU dataset
            digest.update(flat[start:start + HASH_CHUNK].cpu().numpy())
    digest.update(extra)
    return digest.hexdigest()


def write_files(folder, contents: dict[str, bytes], last: str | None = None) -> None:
    """Write several files of one folder: every file is complete on disk under a temp name
    before any is renamed into place, and ``last`` (the file that makes the folder valid,
    e.g. a manifest) is removed first and renamed last, so an interruption never leaves a
    valid-looking mix of old and new files."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    temps = {}
    try:
        for name, content in contents.items():
            temps[name] = temp_path(folder, name)
            Path(temps[name]).write_bytes(content)
        if last is not None and (folder / last).exists():
            os.remove(folder / last)
        for name in sorted(temps, key=lambda n: n == last):
            os.replace(temps[name], folder / name)
    finally:
        for tmp in temps.values():
            if os.path.exists(tmp):
                os.unlink(tmp)

def json_default(value):
    """``json.dumps(default=...)`` for the numpy scalars, tuples and paths that meta holds."""
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    if isinstance(value, (tuple, Path)):
        return list(value) if isinstance(value, tuple) else str(value)
    raise TypeError(f"meta: a value of type {type(value).__name__} is not JSON-serialisable (meta, history and "
                    "evaluation are written as JSON)")
