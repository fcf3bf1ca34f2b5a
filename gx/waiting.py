"""Say what gx waits for when it waits on another process's file lock.

Jittor keeps its compiled kernels under one lock (``jittor.lock`` in ~/.cache/jittor): a second
Jittor program, gx's or another, waits for it while the first compiles, which can take minutes
and prints nothing. On Linux the kernel lists every file lock, and the processes waiting for one,
in /proc/locks; a watcher thread reads it every second and, once this process has waited on the
same lock for a few seconds, says which file and which process hold it up. Elsewhere it does
nothing.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

PROC_LOCKS = Path("/proc/locks")
NOTE_AFTER_S = 5.0
POLL_S = 1.0

_started = threading.Event()


@dataclass(frozen=True)
class LockWait:
    """This process waits for ``path``, which process ``holder`` has locked."""

    path: Path
    holder: int


def _file_id(field: str) -> tuple[int, int, int]:
    """(major, minor, inode) from /proc/locks' 'fe:00:2146609' (hexadecimal device numbers)."""
    major, minor, inode = field.split(":")
    return int(major, 16), int(minor, 16), int(inode)


def _open_files() -> dict[tuple[int, int, int], Path]:
    """The files this process has open, by (major, minor, inode)."""
    found = {}
    for link in Path("/proc/self/fd").iterdir():
        try:
            target = Path(os.readlink(link))
            status = target.stat()
        except OSError:
            continue
        device = status.st_dev
        found[os.major(device), os.minor(device), status.st_ino] = target
    return found


def current_waits(text: str, pid: int) -> list[LockWait]:
    """The locks process ``pid`` waits for, from the text of /proc/locks."""
    holders: dict[tuple[int, int, int], int] = {}
    waited: list[tuple[int, int, int]] = []
    for line in text.splitlines():
        fields = line.split()
        waiting = "->" in fields
        if waiting:
            fields.remove("->")
        if len(fields) < 6:
            continue
        try:
            owner, file = int(fields[4]), _file_id(fields[5])
        except ValueError:
            continue
        if waiting and owner == pid:
            waited.append(file)
        elif not waiting:
            holders.setdefault(file, owner)
    if not waited:
        return []
    paths = _open_files()
    return [
        LockWait(paths.get(file, Path(f"inode {file[2]}")), holders[file])
        for file in waited
        if file in holders and holders[file] != pid
    ]


def describe(wait: LockWait) -> str:
    """The line said about a wait."""
    try:
        command = Path(f"/proc/{wait.holder}/cmdline").read_bytes().replace(b"\0", b" ").strip()
        holder = f"process {wait.holder} ({command.decode(errors='replace')[:80]})"
    except OSError:
        holder = f"process {wait.holder}"
    what = (
        "Jittor's kernel cache, while that process compiles kernels"
        if wait.path.name == "jittor.lock"
        else "a file it is writing"
    )
    return (
        f"waiting for the lock on {wait.path}, held by {holder}: {what}; gx goes on as soon "
        "as it is released"
    )


def watch_lock_waits(on_note: Callable[[str], None]) -> None:
    """Start, once per process, the thread that reports lock waits longer than NOTE_AFTER_S."""
    if _started.is_set() or not PROC_LOCKS.exists():
        return
    _started.set()
    threading.Thread(target=_watch, args=(on_note,), name="gx-lock-watch", daemon=True).start()


def _watch(on_note: Callable[[str], None]) -> None:
    since: dict[LockWait, float] = {}  # the waits seen at the last poll, and when each began
    reported: set[LockWait] = set()
    while True:
        time.sleep(POLL_S)
        try:
            waits = current_waits(PROC_LOCKS.read_text(), os.getpid())
        except OSError:
            return
        now = time.monotonic()
        since = {wait: since.get(wait, now) for wait in waits}
        for wait, began in since.items():
            if now - began >= NOTE_AFTER_S and wait not in reported:
                reported.add(wait)
                on_note(describe(wait))
