"""Which framework trained which steps of a run: the run's segments.

A run trained in one go is one segment; every ``--resume`` appends one, on whichever backend
it continues with. A segment is ``{"backend": <the backend's describe()>, "first_step": 1-based,
"last_step": ..., "started": ISO time}``. A checkpoint's state.json holds the segments of its
steps, so a resume continues the list of the state it continues from (steps a run took after its
last checkpoint are dropped from metrics.jsonl and from the segments alike); run.json shows the
same list, the last segment's ``last_step`` null while that process trains.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from gx.errors import GxError

Segment = dict[str, Any]


def segment(
    backend: Mapping[str, Any] | None, first: int, last: int | None, started: str | None
) -> Segment:
    """One segment, its keys in the order run.json shows them."""
    return {"backend": backend, "first_step": first, "last_step": last, "started": started}


def recorded_segments(state: Mapping[str, Any], source: str) -> list[Segment]:
    """The segments of a checkpoint's steps 1..step. A checkpoint written before gx recorded
    segments counts as one segment on the backend that wrote it, started at an unknown time."""
    if "segments" not in state:
        step = int(state.get("step", 0))
        return [segment(state.get("backend"), 1, step, None)] if step > 0 else []
    segments = state["segments"]
    steps = state.get("step")
    if not (
        isinstance(segments, list)
        and all(
            isinstance(entry, dict)
            and isinstance(entry.get("first_step"), int)
            and isinstance(entry.get("last_step"), int)
            for entry in segments
        )
        and (not segments or segments[-1]["last_step"] == steps)
    ):
        raise GxError(
            f"{source} cannot be read (its segments do not describe steps 1..{steps}); it is "
            "damaged: resume from an intact copy of the run folder"
        )
    return [dict(entry) for entry in segments]


def backend_name(entry: Segment) -> str:
    """The framework that trained a segment ("torch", "jittor")."""
    return (entry.get("backend") or {}).get("backend") or "an unrecorded backend"


def history(segments: list[Segment]) -> str:
    """'steps 1..1400 ran on torch, 1401..1420 on jittor' (not empty)."""
    first, *later = segments
    word = "step" if first["first_step"] == first["last_step"] else "steps"
    head = f"{word} {_steps(first)} ran on {backend_name(first)}"
    return ", ".join([head] + [f"{_steps(entry)} on {backend_name(entry)}" for entry in later])


def _steps(entry: Segment) -> str:
    first, last = entry["first_step"], entry["last_step"]
    return str(first) if first == last else f"{first}..{last}"


@dataclass
class Segments:
    """A run's segments: those of the checkpoint it continues, and the one this process trains."""

    earlier: list[Segment]
    backend: dict[str, Any]  # this process's backend, as describe() gives it
    first_step: int  # the first step this process trains (1-based)
    started: str

    def until(self, step: int) -> list[Segment]:
        """The segments of steps 1..``step``; this process's own once it has trained a step."""
        if step < self.first_step:
            return list(self.earlier)
        return [*self.earlier, segment(self.backend, self.first_step, step, self.started)]

    def training(self) -> list[Segment]:
        """The segments while this process trains: its own open (last step null)."""
        return [*self.earlier, segment(self.backend, self.first_step, None, self.started)]

    def continuation_note(self) -> str:
        """One line when this process continues a run that another framework trained before:
        'continuing steps 1401.. on jittor (steps 1..1400 ran on torch)'; else ""."""
        name = self.backend["backend"]
        if not self.earlier or backend_name(self.earlier[-1]) == name:
            return ""
        return f"continuing steps {self.first_step}.. on {name} ({history(self.earlier)})"
