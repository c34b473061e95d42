"""An advisory lock on a run directory, so that two processes never write into the same one.

`RUN/.rim.lock` is locked with `fcntl.flock`, which the kernel releases when the process ends,
however it ends, and it names its holder as JSON (pid, host, command, since when). `rim train
--out RUN` (fresh or `--resume`), `rim export RUN_OR_MODEL OUT` and `rim probe fit RUN` hold it
while they work; a second one is refused in one line naming the holder (`RunDirLocked`: exit
1, nothing written). A lock file left by a process that died (killed, machine crashed) no
longer holds a lock: it is taken over with a warning that names the dead holder. On exit the
file is removed, and so is the directory if the lock created it and nothing else was written.
Only the main process of a distributed launch (`RANK` 0) takes the lock. Where `fcntl` does not
exist (Windows) the directory is not locked.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

from rim.common.errors import RimInputError, RimRunError
from rim.common.progress import log

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

LOCK_NAME = ".rim.lock"
"""The lock file inside a run directory (ignored when a directory is checked for emptiness)."""


class RunDirLocked(RimRunError):
    """The run directory is locked by another process: the CLI prints one line, exit 1."""


def holder_text(holder: dict) -> str:
    """`pid N on host H (COMMAND, since T)` from the JSON a lock file holds."""
    extra = ", ".join(str(holder[k]) for k in ("command", "since") if holder.get(k))
    return f"pid {holder.get('pid', '?')} on host {holder.get('host', '?')}" + (
        f" ({extra})" if extra else ""
    )


def is_empty_run_dir(path: Path) -> bool:
    """True if `path` does not exist or holds nothing but the lock file."""
    return not path.exists() or all(p.name == LOCK_NAME for p in path.iterdir())


@contextlib.contextmanager
def run_dir_lock(run_dir: str | Path, command: str) -> Iterator[Path]:
    """Hold the lock of `run_dir` (created if missing) for the body; yields the lock file.

    Raises `RunDirLocked` naming the holder's pid and host if another process holds it.
    """
    run_dir = Path(run_dir)
    if fcntl is None or os.environ.get("RANK", "0") != "0":
        yield run_dir / LOCK_NAME
        return
    created = _first_missing(run_dir)
    try:
        fd = _acquire(run_dir, command)
    except BaseException:
        _remove_if_empty(run_dir, created)
        raise
    try:
        yield run_dir / LOCK_NAME
    finally:
        _release(fd, run_dir / LOCK_NAME)
        _remove_if_empty(run_dir, created)


def _first_missing(path: Path) -> Path | None:
    """The outermost directory of `path` that does not exist yet (None if it exists)."""
    missing = None
    for p in (path, *path.parents):
        if p.exists():
            break
        missing = p
    return missing


def _remove_if_empty(run_dir: Path, created: Path | None) -> None:
    """Remove the directories this lock created, from `run_dir` up to `created`, if empty."""
    if created is None:
        return
    for p in (run_dir, *run_dir.parents):
        with contextlib.suppress(OSError):
            p.rmdir()
        if p == created:
            return


def _acquire(run_dir: Path, command: str) -> int:
    """Lock `run_dir/LOCK_NAME` and write the holder into it; returns the open descriptor."""
    path = run_dir / LOCK_NAME
    for _ in range(20):
        try:
            run_dir.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
        except OSError as err:
            raise RimInputError(
                f"cannot create the run directory's lock file: {err.strerror}", source=str(run_dir)
            ) from err
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_holder(fd, wait=True)
            os.close(fd)
            raise RunDirLocked(
                f"{run_dir} is in use by {holder_text(holder) if holder else 'another process'}"
                f"; wait for it to end or use another directory (lock: {path})"
            ) from None
        except OSError as err:  # a filesystem without locks: run, but say so
            if err.errno not in (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS):
                os.close(fd)
                raise
            log.warning(
                "%s: this filesystem cannot lock files; nothing stops another process "
                "from writing into the run directory",
                run_dir,
            )
        if not _same_file(fd, path):  # its holder removed it between our open and lock
            os.close(fd)
            continue
        previous = _read_holder(fd, wait=False)
        if previous:
            log.warning(
                "%s: taking over the lock left by %s, which is no longer running "
                "(killed or its machine went down)",
                run_dir,
                holder_text(previous),
            )
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(_me(command)) + "\n").encode(), 0)
        return fd
    raise RunDirLocked(f"{run_dir}: could not take the lock {path} (it kept being replaced)")


def _me(command: str) -> dict:
    return {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "command": command,
        "since": time.strftime("%Y-%m-%d %H:%M:%S"),
    }


def _read_holder(fd: int, wait: bool) -> dict | None:
    """The holder a lock file names (its holder writes it just after locking: with `wait`,
    up to a second for it to appear); None if empty or unreadable."""
    for _ in range(10 if wait else 1):
        text = os.pread(fd, 4096, 0).decode("utf-8", "replace").strip()
        if text:
            try:
                found = json.loads(text)
            except json.JSONDecodeError:
                return {"pid": text[:40]}
            return found if isinstance(found, dict) else {"pid": str(found)[:40]}
        if wait:
            time.sleep(0.1)
    return None


def _same_file(fd: int, path: Path) -> bool:
    try:
        return os.path.samestat(os.fstat(fd), os.stat(path))
    except FileNotFoundError:
        return False


def _release(fd: int, path: Path) -> None:
    """Remove the lock file (if it is still ours), then unlock by closing it."""
    try:
        if _same_file(fd, path):
            path.unlink()
    except OSError:
        pass
    finally:
        os.close(fd)
