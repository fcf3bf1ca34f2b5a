"""Signals that stop gx: Ctrl-C (SIGINT), SIGTERM and SIGUSR1.

SIGTERM is what ``timeout``, ``docker stop``, systemd and batch schedulers send; schedulers such
as SLURM can also send SIGUSR1 (or SIGTERM) some seconds before they preempt a job. A training
run treats all three as Ctrl-C: it stops after the current step and saves a checkpoint
(``StopRequests``). Any other command ends at once on them with one line, never in the middle
of writing a file: gx writes its outputs under a temporary name and renames them when complete.

The exit status after a stop by signal N is 128 + N, as a shell reports a process killed by it:
130 for Ctrl-C, 143 for SIGTERM, 138 for SIGUSR1.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Callable

STOP_SIGNALS = tuple(
    getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGUSR1") if hasattr(signal, name)
)


def signal_name(number: int) -> str:
    return signal.Signals(number).name


def exit_status(number: int) -> int:
    return 128 + number


class StopNow(BaseException):
    """A stop signal that cannot wait for the current step or save: raised by the handler, and,
    like KeyboardInterrupt, not an Exception that ordinary error handling catches. ``message``:
    what was kept and how to go on, when the code that stopped knows."""

    def __init__(self, number: int, message: str = "") -> None:
        super().__init__(message or signal_name(number))
        self.number, self.message = number, message


# The handlers gx has in place now. A process forked meanwhile (a framework's pool of compiler
# workers) must not inherit them: its parent ends it with SIGTERM, and a handler that only asks
# for a stop would keep it alive, and the parent waiting for it forever.
_ACTIVE: list[Callable[[int, FrameType | None], None]] = []


def _usual_effects_in_child() -> None:
    for number in STOP_SIGNALS:
        if signal.getsignal(number) in _ACTIVE:
            usual = signal.default_int_handler if number == signal.SIGINT else signal.SIG_DFL
            signal.signal(number, usual)
    _ACTIVE.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_usual_effects_in_child)


@contextmanager
def _handlers(
    handler: Callable[[int, FrameType | None], None], numbers: tuple[int, ...] = STOP_SIGNALS
) -> Iterator[None]:
    """``handler`` for the signals ``numbers`` inside the block, the previous handlers after it;
    a process forked inside the block gets the signals' usual effects. Off the main thread
    Python cannot install handlers, and the block runs without them."""
    try:
        previous = {number: signal.signal(number, handler) for number in numbers}
    except ValueError:
        yield
        return
    _ACTIVE.append(handler)
    try:
        yield
    finally:
        _ACTIVE.remove(handler)
        for number, action in previous.items():
            signal.signal(number, action)


@contextmanager
def stop_signals_end_the_command() -> Iterator[None]:
    """Inside the block SIGTERM and SIGUSR1 raise ``StopNow``, as Ctrl-C raises
    KeyboardInterrupt: the command ends through its clean-up code instead of dying silently."""

    def handler(number: int, frame: FrameType | None) -> None:
        raise StopNow(number)

    with _handlers(handler, tuple(number for number in STOP_SIGNALS if number != signal.SIGINT)):
        yield


class StopRequests:
    """Stop signals during a training run, counted.

    The first asks the run to stop after the current step and save (``requested``). The
    second is reported through ``on_note``: what gx is doing and what one more does. The third
    raises ``StopNow``: the run ends at once, keeping the last complete checkpoint (a checkpoint
    is never half-written, see gx.checkpoint).
    """

    def __init__(self, on_note: Callable[[str], None] | None) -> None:
        self.on_note = on_note
        self.received: list[int] = []
        self.ending = False  # the run is past stopping: further signals are ignored

    @property
    def requested(self) -> int | None:
        """The first stop signal received, or None."""
        return self.received[0] if self.received else None

    def handle(self, number: int, frame: FrameType | None) -> None:
        if self.ending:
            return
        self.received.append(number)
        if len(self.received) == 2 and self.on_note is not None:
            self.on_note(
                f"{signal_name(number)}: already stopping; gx saves a checkpoint after the "
                "current step and exits, wait a moment (once more stops at once, keeping the "
                "last checkpoint written)"
            )
        elif len(self.received) >= 3:
            self.ending = True
            raise StopNow(number)

    @contextmanager
    def installed(self) -> Iterator[StopRequests]:
        with _handlers(self.handle):
            yield self
