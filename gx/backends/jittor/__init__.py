"""The Jittor backend. Jittor itself is imported only inside ``create``, after its environment
variables are set (see environment.py), and without its signal handlers (see signals.py)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from gx.backends.jittor import environment
from gx.backends.jittor.signals import process_handlers_kept

if TYPE_CHECKING:
    from gx.backends.jittor.backend import JittorBackend


def create(device: str, dtype: str = "float32", precision: str = "float32") -> JittorBackend:
    from gx.backends import cuda_missing
    from gx.errors import GxError

    if dtype != "float32":
        raise GxError(
            "the jittor backend runs in float32 only (the float64 rounding floor of "
            "gx parity uses torch)"
        )
    if device == "cuda" and not environment.cuda_runtime_present():
        raise cuda_missing("jittor")
    if device == "auto":
        device = "cuda" if environment.cuda_runtime_present() else "cpu"
    environment.prepare(device)
    with process_handlers_kept():
        try:
            from gx.backends.jittor.backend import JittorBackend
        except SystemExit:
            # Jittor exits (status 0, its message hidden by log_silent) when it had to rebuild
            # its utility library after loading the old one: only a new process can load it.
            raise GxError(
                "Jittor rebuilt its compiled utilities while starting and needs a new process "
                "(Jittor says 'jit_utils updated, please rerun your command'); run the same "
                "command again"
            ) from None

    return JittorBackend(device, dtype, precision)
