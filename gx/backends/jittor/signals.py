"""Keep the process's own signal handlers when Jittor's core library loads.

Loading Jittor's core installs C-level handlers for SIGCHLD, SIGINT, SIGSEGV, SIGBUS, SIGFPE,
SIGILL and SIGQUIT (``register_sigaction`` in jittor/src/utils/log.cc), and they decide the
process's fate: any child process that is killed or crashes makes the whole process quick-exit
with status 1, Ctrl-C quick-exits without Python's KeyboardInterrupt, and a crash in any thread
calls ``exit()``, whose exit handlers can wait forever on Jittor's kernel-compiler threads. gx
reads the handlers in place before the import and puts them back after it, so the process
behaves as it would without Jittor: a dead child is an exit status for whoever waits on it,
Ctrl-C raises KeyboardInterrupt, and a crash ends the process at once (with faulthandler's
stacks where it is enabled, as in gx's CLI and pytest).
"""

from __future__ import annotations

import contextlib
import ctypes
import signal
import sys
from collections.abc import Iterator

KEPT_SIGNALS = (
    (
        signal.SIGCHLD,
        signal.SIGINT,
        signal.SIGSEGV,
        signal.SIGBUS,
        signal.SIGFPE,
        signal.SIGILL,
        signal.SIGQUIT,
    )
    if sys.platform != "win32"
    else ()
)
# Room for a struct sigaction on every POSIX ABI (152 bytes on x86-64 and aarch64 glibc): the
# saved value is only handed back to sigaction, never read.
_SIGACTION_BYTES = 512


@contextlib.contextmanager
def process_handlers_kept() -> Iterator[None]:
    """Restore, on leaving, the handlers of ``KEPT_SIGNALS`` that were in place on entering."""
    if not KEPT_SIGNALS:
        yield
        return
    libc = ctypes.CDLL(None, use_errno=True)
    saved = []
    for number in KEPT_SIGNALS:
        action = ctypes.create_string_buffer(_SIGACTION_BYTES)
        if libc.sigaction(int(number), None, action) == 0:
            saved.append((number, action))
    try:
        yield
    finally:
        for number, action in saved:
            libc.sigaction(int(number), action, None)
