"""The floor's reference on other kernels: PyTorch float32 with the instruction set capped one
level below the reference's, trained in a child process.

PyTorch, oneDNN and MKL pick their CPU kernels once per process from the instruction set they
find (or are capped to by environment variables read at start-up), so another kernel set needs
another process. The child trains the same experiment from the same seed with the same
lockstep loop and sends back its losses; only the kernels differ. Of all the floor's
references this one is the same kind of pair as PyTorch against Jittor: two float32
implementations whose roundings are independent (float64 has almost none, and another thread
count keeps most of PyTorch's summation order).

    python -m gx.parity.isa_child REQUEST.json ANSWER.json     (what run_parity starts)
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from gx.errors import GxError

# PyTorch's kernel level (torch.backends.cpu.get_cpu_capability()) -> the variables that cap the
# child one level lower: ATen's own kernels, oneDNN's (convolutions; two names across
# versions) and MKL's (matrix products). ARM and other levels have no lower x86 level to cap to.
_CAPS = {
    "AVX512": {
        "ATEN_CPU_CAPABILITY": "avx2",
        "ONEDNN_MAX_CPU_ISA": "AVX2",
        "DNNL_MAX_CPU_ISA": "AVX2",
        "MKL_ENABLE_INSTRUCTIONS": "AVX2",
    },
    "AVX2": {
        "ATEN_CPU_CAPABILITY": "default",
        "ONEDNN_MAX_CPU_ISA": "AVX",
        "DNNL_MAX_CPU_ISA": "AVX",
        "MKL_ENABLE_INSTRUCTIONS": "AVX",
    },
}


def lower_isa_environment(capability: str) -> dict[str, str] | None:
    """The variables that run PyTorch one instruction-set level below ``capability``; None
    where there is no lower level to run (non-x86 CPUs, or already the baseline)."""
    return _CAPS.get(capability.upper())


# How long the child may still take once this process has finished its own lockstep training:
# it trains one run where this process trains four or five, so a healthy child is done by then.
CHILD_GRACE_SECONDS = 120.0
CHILD_GRACE_FACTOR = 2.0  # times this process's own training time, when that is longer


class ChildFailed(GxError):
    """The child reference died, failed or stalled; the message names it and how."""


class ChildTraining:
    """``python -m gx.parity.isa_child`` running beside this process, with ``environment`` added to
    this process's variables; ``answer()`` waits for it."""

    def __init__(self, request: Mapping[str, Any], environment: Mapping[str, str]) -> None:
        self.environment = dict(environment)
        self.folder = tempfile.TemporaryDirectory(prefix="gx-parity-")
        asked, self.answer_file = (
            Path(self.folder.name) / name for name in ("request.json", "answer.json")
        )
        asked.write_text(json.dumps(request))
        # -X faulthandler: a crash in the child prints its stacks into the error we show
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-X",
                "faulthandler",
                "-m",
                "gx.parity.isa_child",
                str(asked),
                str(self.answer_file),
            ],
            env={**os.environ, **self.environment},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )

    @property
    def name(self) -> str:
        return (
            f"the floor's PyTorch reference on a lower instruction set (child process "
            f"{self.process.pid}, {' '.join(f'{k}={v}' for k, v in self.environment.items())})"
        )

    def answer(self, timeout: float) -> dict[str, Any]:
        """{"losses": {"d": [...], "g": [...]}, "steps", "stopped_early", "device"}; waits at
        most ``timeout`` seconds, then stops the child. Raises ChildFailed."""
        try:
            try:
                _, errors = self.process.communicate(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.communicate()
                raise ChildFailed(
                    f"{self.name} had not finished {timeout:.0f} s after this "
                    "process's own training, and was stopped"
                ) from None
            code = self.process.returncode
            tail = "\n".join(errors.strip().splitlines()[-5:])
            if code < 0:
                raise ChildFailed(
                    f"{self.name} was ended by {signal.Signals(-code).name}"
                    + (f":\n{tail}" if tail else "")
                )
            if code != 0 or not self.answer_file.exists():
                raise ChildFailed(f"{self.name} failed (exit {code}):\n{tail}")
            return json.loads(self.answer_file.read_text())
        finally:
            self.folder.cleanup()
