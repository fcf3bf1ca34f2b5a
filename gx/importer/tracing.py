"""Trace a module with PyTorch's own tracer (torch.fx), and find where in the user's source each
traced operation came from, for error messages that point at the line to change."""

from __future__ import annotations

import re
import types
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import fx, nn

import gx
from gx.errors import GxError

# one frame of a node's recorded stack trace, as traceback formats it
_FRAME = re.compile(
    r'File "(?P<file>[^"]+)", line (?P<line>\d+), in (?P<function>\S+)\n(?P<code>.*)'
)
_LIBRARIES = (Path(torch.__file__).parent, Path(gx.__file__).parent)
_AUTOGRAD_FUNCTION = Path(torch.__file__).parent / "autograd" / "function.py"


@dataclass(frozen=True)
class Place:
    """Where an operation is: the module whose forward runs it, and the source line."""

    module: str  # attribute path, e.g. "main.3"; "" for the network itself
    file: str = ""
    line: int = 0
    code: str = ""

    def describe(self) -> str:
        where = f"module '{self.module}'" if self.module else "the network's own forward"
        if self.file:
            where += f", {Path(self.file).name}:{self.line}"
            if self.code:
                where += f" `{self.code}`"
        return where


def import_error(network: str, operation: str, place: Place, problem: str) -> GxError:
    """The one-line error of an operation gx cannot import: what, where, why and the fix."""
    return GxError(f"{network}: {operation} ({place.describe()}) {problem}")


class _Tracer(fx.Tracer):
    # every node keeps the Python stack it was created from: the user's source line
    record_stack_traces = True


def _is_library(file: str) -> bool:
    path = Path(file)
    return any(path.is_relative_to(folder) for folder in _LIBRARIES)


def _frames(node: fx.Node) -> list[re.Match[str]]:
    return list(_FRAME.finditer(node.stack_trace or ""))


def _place(module: str, frame: re.Match[str] | None) -> Place:
    if frame is None:
        return Place(module)
    return Place(module, frame["file"], int(frame["line"]), frame["code"].strip())


def node_place(node: fx.Node) -> Place:
    """The innermost user frame of ``node``'s stack, and the module running it."""
    if node.op == "call_module":
        module = str(node.target)
    else:
        stack = node.meta.get("nn_module_stack") or {}
        module = next(reversed(stack), "") if stack else ""
    user = [frame for frame in _frames(node) if not _is_library(frame["file"])]
    return _place(module, user[-1] if user else None)


def autograd_function_call(node: fx.Node) -> Place | None:
    """Where ``node`` was traced from inside a custom ``torch.autograd.Function``: fx runs its
    forward like plain code and never sees its backward, so gx must refuse it."""
    frames = _frames(node)
    for index, frame in enumerate(frames):
        if Path(frame["file"]) == _AUTOGRAD_FUNCTION and frame["function"] == "apply":
            callers = [f for f in frames[:index] if not _is_library(f["file"])]
            return _place(node_place(node).module, callers[-1] if callers else None)
    return None


def _failure_place(error: BaseException, root: nn.Module) -> Place:
    """The innermost user frame of an exception raised while tracing, and its module."""
    paths = {id(module): path for path, module in root.named_modules()}
    place = Place("")
    traceback: types.TracebackType | None = error.__traceback__
    while traceback is not None:
        frame = traceback.tb_frame
        if not _is_library(frame.f_code.co_filename):
            owner = frame.f_locals.get("self")
            source = _source_line(frame.f_code.co_filename, traceback.tb_lineno)
            place = Place(
                paths.get(id(owner), place.module),
                frame.f_code.co_filename,
                traceback.tb_lineno,
                source,
            )
        traceback = traceback.tb_next
    return place


def _source_line(file: str, line: int) -> str:
    try:
        return Path(file).read_text().splitlines()[line - 1].strip()
    except (OSError, IndexError, UnicodeDecodeError):
        return ""


def trace(module: nn.Module, network: str, training: bool, defaults: dict[str, Any]) -> fx.Graph:
    """The graph of ``module.forward`` traced in training or eval mode, the arguments in
    ``defaults`` fixed at those values (each submodule's mode is restored after)."""
    modes = {submodule: submodule.training for submodule in module.modules()}
    module.train(training)
    try:
        return _Tracer().trace(module, concrete_args=defaults or None)
    except Exception as error:  # the user's forward raised it while being traced
        place = _failure_place(error, module)
        raise GxError(
            f"{network}: tracing stopped at {place.describe()}: {error}. gx imports a fixed "
            "graph of layers: move data-dependent branches and Python-side tensor use out "
            "of forward"
        ) from None
    finally:
        for submodule, mode in modes.items():
            submodule.training = mode
