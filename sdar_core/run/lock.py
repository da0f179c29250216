"""One pipeline run at a time per out-dir: the lock `<out_dir>/sdar.lock`.

`out_dir_lock(out_dir)` is held around everything that runs pipelines in an out-dir (`sdar run`,
each run of `sdar replicate`): two runs there would share one MLflow store, one pipeline root
and one kfp cache, run every stage twice, log every metric twice and write one log file. A
second process is refused at once with a one-line `OutDirBusy` (an `SdarError`, so the CLI
prints it with exit status 2) naming the owner's PID, host and start time, the lock's path, and
what to do.

Why a kernel lock (`flock`, through the pinned `filelock` package) rather than a file created
with O_CREAT|O_EXCL: the kernel drops an flock when its holder dies in any way, SIGKILL and
power loss included, so a stale lock can never refuse a run and no PID has to be probed (a PID
can be reused, and a PID from another host or container names nothing here). `filelock` handles
the races around it (a holder that unlinks the file between a contender's open and flock, NFS's
transient ENOENT); with an `on_acquired` hook it refuses to fall back to a marker file on a
filesystem without flock, so the lock is never weaker than it says.

The owner's PID, host, boot id and start time are written into the file when it is taken (for
the refusal message) and the file is removed when it is released. A file that still names an
owner when the lock is taken was left by a run that died without releasing it (SIGKILL, power
loss, an earlier boot): its run is gone, the lock is taken over and one line says so.

The lock is released on every exit path that Python sees: normal return, an exception, and
SIGTERM/SIGINT, which raise `RunInterrupted` while it is held (sdar_core.run.interrupt). It is
re-entrant within one process (`sdar replicate` holds it and its runs take it again); the task
subprocesses of a run do not inherit it (Python opens files non-inheritable).
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from sdar_core.errors import SdarError

__all__ = ["LOCK_NAME", "OutDirBusy", "lock_owner", "out_dir_lock"]

LOCK_NAME = "sdar.lock"
_HELD: set[Path] = set()  # the lock paths this process holds


class OutDirBusy(SdarError):
    """Another live process holds the out-dir's lock."""


def _boot_id() -> str | None:
    """This boot's id (Linux); a lock written under another boot id predates a restart."""
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return None


def _owner_record() -> dict:
    return {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "boot_id": _boot_id(),
        "started": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
        "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]])[:500],
    }


def lock_owner(lock_path: str | Path) -> dict | None:
    """The owner recorded in `lock_path`, or None when the file is missing, empty or unreadable
    (a lock being taken or released)."""
    try:
        text = Path(lock_path).read_text()
    except OSError:
        return None
    try:
        found = json.loads(text)
    except json.JSONDecodeError:
        return None
    return found if isinstance(found, dict) else None


def _refusal(lock_path: Path, owner: dict | None) -> str:
    """The one line that refuses a second run: who holds the out-dir and what to do."""
    out = lock_path.parent
    if owner is None:  # taken a moment ago, the record not written yet
        return f"{out} is in use by another run (lock {lock_path}): wait for it to end"
    pid, host = owner.get("pid"), owner.get("host")
    here = host == socket.gethostname()
    return (
        f"{out} is in use by PID {pid}{'' if here else f' on host {host}'} "
        f"({owner.get('command')!r}, started {owner.get('started')}; lock {lock_path}): wait "
        f"for it to end, stop it ({'kill' if here else f'on {host}: kill'} {pid}; a stopped run "
        "resumes where it stopped), or pass another --out-dir"
    )


def _stale_notice(lock_path: Path, owner: dict) -> str:
    if owner.get("boot_id") and owner.get("boot_id") != _boot_id():
        why = "it was taken before this machine restarted"
    else:
        why = "that process ended without releasing it (e.g. SIGKILL)"
    return (
        f"taking over the stale lock {lock_path} of PID {owner.get('pid')} "
        f"(started {owner.get('started')}): {why}"
    )


def _take_ownership(lock_path: Path):
    """The `on_acquired` hook: report a dead owner's record, then write ours in its place."""

    def hook(fd: int) -> None:
        previous = os.pread(fd, 1 << 16, 0)
        with contextlib.suppress(json.JSONDecodeError, UnicodeDecodeError):
            owner = json.loads(previous)
            if isinstance(owner, dict):
                print(_stale_notice(lock_path, owner), file=sys.stderr, flush=True)
        record = json.dumps(_owner_record()).encode() + b"\n"
        os.ftruncate(fd, 0)
        os.pwrite(fd, record, 0)

    return hook


def _acquire(lock_path: Path):
    from filelock import FileLock, Timeout

    lock = FileLock(lock_path, thread_local=False, on_acquired=_take_ownership(lock_path))
    try:
        lock.acquire(blocking=False)
    except Timeout:
        raise OutDirBusy(_refusal(lock_path, lock_owner(lock_path))) from None
    return lock


def _release(lock_path: Path, lock) -> None:
    # the file goes before the flock: a contender that opened it first finds it unlinked once
    # it gets the flock and starts over (filelock checks), so it never holds a stale name
    with contextlib.suppress(FileNotFoundError):
        lock_path.unlink()
    lock.release()


@contextlib.contextmanager
def out_dir_lock(out_dir: str | Path) -> Iterator[Path]:
    """Hold `<out_dir>/sdar.lock` for the block (module docstring); yield its path. Raises
    `OutDirBusy` when another live process holds it; SIGTERM/SIGINT raise `RunInterrupted`
    inside the block, so that the lock is released before the process exits."""
    from sdar_core.run.interrupt import stopping_on_signals

    out = Path(out_dir).resolve()
    out.mkdir(parents=True, exist_ok=True)
    lock_path = out / LOCK_NAME
    if lock_path in _HELD:  # this process holds it already (sdar replicate's runs)
        yield lock_path
        return
    with stopping_on_signals():
        lock = _acquire(lock_path)
        _HELD.add(lock_path)
        try:
            yield lock_path
        finally:
            _HELD.discard(lock_path)
            _release(lock_path, lock)
