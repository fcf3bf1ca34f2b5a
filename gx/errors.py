"""The one exception type for mistakes a user can make.

The CLI turns a ``GxError`` into a single ``error: ...`` line and exit status 2. Anything else
escaping is a bug in gx and keeps its traceback.
"""


class GxError(Exception):
    """A user-facing problem: the message names what is wrong and how to fix it."""


class SpecError(GxError):
    """A model spec that cannot be built (bad layer arguments, impossible shapes)."""

    def __init__(self, layer: str, problem: str, fix: str, network: str = "") -> None:
        self.layer, self.problem, self.fix = layer, problem, fix
        prefix = f"{network}: " if network else ""
        super().__init__(f"{prefix}layer '{layer}': {problem}. Fix: {fix}")


class BackendUnavailable(GxError):
    """The requested framework (or device) cannot be used on this machine."""
