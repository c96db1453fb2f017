"""Output folders: checked before any work, one writer at a time, replaced as a unit.

* ``check_output_dir``: the folder can be created and written (a real probe: root ignores
  permission bits, a read-only filesystem does not), and no part of its path is a dangling
  link or a file.
* ``DirectoryLock``: an exclusive ``flock`` on a lock file beside the folder. The kernel drops
  it when the holder dies, so a lock of a killed run is recovered without any clean-up; a
  second run gets a one-line error naming the holder's pid.
* ``replace_folder``: the new content is written whole into a staging folder beside the
  target, then swapped in with one atomic rename (renameat2 RENAME_EXCHANGE where the system
  has it; two renames otherwise, so a reader may briefly find no folder but never a mix).
  Entries of the old folder that are not part of the new content (a user's files, grids
  written during the run) move over unchanged.
* ``remove_stale_temps``: temp files and staging folders of interrupted writes, removed by
  the next run that holds the folder's lock.

Other processes may probe a folder (``check_output_dir``) while its lock holder replaces it,
before they ask for the lock themselves: probes are never carried into the new content, and
a file that vanishes between listing and moving is another process's transient, not an error.
"""
from __future__ import annotations

import contextlib
import ctypes
import errno
import fcntl
import os
import shutil
import tempfile
from pathlib import Path

TEMP_SUFFIX = ".tmp"  # files.temp_path names temps ".<name>.<random>.tmp"
STAGING_MARK = ".staging-"
PROBE_PREFIX = ".dance_ext-probe-"
_REMOVE_ATTEMPTS = 8
_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def check_output_dir(path, arg: str) -> None:
    """Refuse an output folder that cannot be one, before any work is spent on its content."""
    path = Path(path)
    for p in (path, *path.parents):
        if p.is_symlink() and not p.exists():
            raise ValueError(f"{arg}: {str(path)!r} cannot be written: {str(p)!r} is a link to a missing "
                             f"{os.readlink(p)!r}")
    blocker = next((p for p in (path, *path.parents) if p.exists()), None)
    if blocker is None:
        return
    if not blocker.is_dir():
        raise ValueError(f"{arg}: {str(path)!r} cannot be a folder: {str(blocker)!r} is a file")
    try:
        fd, probe = tempfile.mkstemp(dir=blocker, prefix=PROBE_PREFIX)
        os.close(fd)
    except OSError as exc:
        raise ValueError(f"{arg}: {str(path)!r} cannot be written: {str(blocker)!r} refuses new files "
                         f"({os.strerror(exc.errno) if exc.errno else exc})") from exc
    with contextlib.suppress(FileNotFoundError):  # a writer's swap may have taken it: still proven
        os.unlink(probe)


class DirectoryLock:
    """``with DirectoryLock(folder, arg):`` holds ``folder`` for this process alone.
    Re-entrant within a process (a run holds its output folder while its save locks it again)."""

    _held: dict[str, int] = {}  # lock file -> nesting depth, in this process

    def __init__(self, directory, arg: str):
        self.directory, self.arg = Path(directory), arg
        self.path = self.directory.parent / f".{self.directory.name}.lock"
        self.key = os.path.abspath(self.path)
        self.fd: int | None = None

    def __enter__(self) -> "DirectoryLock":
        if self._held.get(self.key):
            self._held[self.key] += 1
            return self
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            holder = os.read(fd, 64).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            if exc.errno not in (errno.EAGAIN, errno.EACCES):
                raise
            raise ValueError(f"{self.arg}: {str(self.directory)!r} is in use by another dance_ext run "
                             f"(pid {holder}); wait for it to end or choose another folder") from None
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self.fd = fd
        self._held[self.key] = 1
        return self

    def __exit__(self, *exc) -> None:
        self._held[self.key] -= 1
        if self.fd is not None and not self._held[self.key]:
            os.close(self.fd)  # closing drops the flock; the file stays (unlinking it would race)
            self.fd = None


def remove_stale_temps(directory) -> list[str]:
    """Remove what interrupted writes left in and beside ``directory``; returns the names.
    Call only while holding the folder's lock (a live writer's temps look the same)."""
    directory, removed = Path(directory), []
    candidates = list(directory.iterdir()) if directory.is_dir() else []
    if directory.parent.is_dir():
        candidates += [p for p in directory.parent.iterdir() if p.name.startswith(f".{directory.name}{STAGING_MARK}")]
    for p in candidates:
        is_temp = p.name.startswith(".") and p.name.endswith(TEMP_SUFFIX) and p.is_file()
        if is_temp or STAGING_MARK in p.name:
            shutil.rmtree(p) if p.is_dir() and not p.is_symlink() else p.unlink()
            removed.append(p.name)
    return removed


def replace_folder(directory, contents: dict[str, bytes]) -> None:
    """Make ``directory`` hold ``contents`` (file name -> bytes) as one unit (module docstring)."""
    directory = Path(directory)
    directory.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=directory.parent, prefix=f".{directory.name}{STAGING_MARK}"))
    try:
        os.chmod(staging, 0o777 & ~_umask())
        for name, content in contents.items():
            with open(staging / name, "wb") as f:
                f.write(content)
                f.flush()
                os.fsync(f.fileno())
        if not directory.exists():
            os.rename(staging, directory)
            return
        for entry in directory.iterdir():  # what the new content does not replace stays
            if entry.name not in contents and not _transient(entry.name):
                with contextlib.suppress(FileNotFoundError):
                    os.rename(entry, staging / entry.name)
        _swap(staging, directory)
    finally:
        _remove_tree(staging)


def _transient(name: str) -> bool:
    """A temp file or another process's write probe: not part of any folder's content."""
    return name.endswith(TEMP_SUFFIX) or name.startswith(PROBE_PREFIX)


def _remove_tree(path: Path) -> None:
    """rmtree that lets another process remove a file first (its probe): list again and go on.
    Bounded: what still remains is a stale staging folder, which the next locked run removes."""
    for _ in range(_REMOVE_ATTEMPTS):
        if not path.exists():
            return
        with contextlib.suppress(FileNotFoundError):
            shutil.rmtree(path)


def _swap(new: Path, target: Path) -> None:
    """Exchange two folders atomically where the system can; ``new`` then holds the old content."""
    libc = ctypes.CDLL(None, use_errno=True)
    exchange = getattr(libc, "renameat2", None)
    if exchange is not None and exchange(_AT_FDCWD, bytes(new), _AT_FDCWD, bytes(target), _RENAME_EXCHANGE) == 0:
        return
    old = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}{STAGING_MARK}"))
    os.rename(target, old / "old")
    os.rename(new, target)
    os.rename(old, new)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
