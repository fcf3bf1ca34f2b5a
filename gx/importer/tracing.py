"""Trace a module with PyTorch's own tracer (torch.fx), and find where in the user's source each
traced operation came from, for error messages that point at the line to change."""

from __future__ import annotations

import re
import types
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.utils._pytree as pytree
from torch import fx, nn

from gx.errors import GxError
from gx.importer.sites import built_at
from gx.importer.static import ExampleTracer, drop_unused_properties

# one frame of a node's recorded stack trace, as traceback formats it
_FRAME = re.compile(
    r'File "(?P<file>[^"]+)", line (?P<line>\d+), in (?P<function>\S+)\n(?P<code>.*)'
)
# gx's own package folder, two levels above this file: frames there are gx's, not the user's
_LIBRARIES = (Path(torch.__file__).parent, Path(__file__).resolve().parents[1])
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


def is_library(file: str) -> bool:
    """Whether ``file`` is PyTorch's or gx's, never the line an error should show."""
    path = Path(file)
    return any(path.is_relative_to(folder) for folder in _LIBRARIES)


def _frames(node: fx.Node) -> list[re.Match[str]]:
    return list(_FRAME.finditer(node.stack_trace or ""))


def _place(module: str, frame: re.Match[str] | None) -> Place:
    if frame is None:
        return Place(module)
    return Place(module, frame["file"], int(frame["line"]), frame["code"].strip())


def node_place(node: fx.Node, module: nn.Module | None = None) -> Place:
    """Where ``node`` is: a layer module (``module``) where it was built, if gx saw that (a
    layer of an nn.Sequential is called from inside PyTorch), any other operation at the
    innermost user frame of its stack; and the module running it."""
    if node.op == "call_module":
        site = built_at(module) if module is not None else None
        if site is not None:
            return Place(str(node.target), site[0], site[1], _source_line(*site))
        path = str(node.target)
    else:
        stack = node.meta.get("nn_module_stack") or {}
        path = next(reversed(stack), "") if stack else ""
    user = [frame for frame in _frames(node) if not is_library(frame["file"])]
    return _place(path, user[-1] if user else None)


def autograd_function_call(node: fx.Node) -> Place | None:
    """Where ``node`` was traced from inside a custom ``torch.autograd.Function``: fx runs its
    forward like plain code and never sees its backward, so gx must refuse it."""
    frames = _frames(node)
    for index, frame in enumerate(frames):
        if Path(frame["file"]) == _AUTOGRAD_FUNCTION and frame["function"] == "apply":
            callers = [f for f in frames[:index] if not is_library(f["file"])]
            return _place(node_place(node).module, callers[-1] if callers else None)
    return None


def _failure_place(error: BaseException, root: nn.Module) -> Place:
    """The innermost user frame of an exception raised while tracing, and its module."""
    paths = {id(module): path for path, module in root.named_modules()}
    place = Place("")
    traceback: types.TracebackType | None = error.__traceback__
    while traceback is not None:
        frame = traceback.tb_frame
        if not is_library(frame.f_code.co_filename):
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


def trace(
    module: nn.Module,
    network: str,
    training: bool,
    defaults: dict[str, Any],
    examples: Sequence[torch.Tensor],
) -> fx.Graph:
    """The graph of ``module.forward`` traced in training or eval mode, on the example inputs
    ``examples`` (gx.importer.static), the arguments in ``defaults`` fixed at those values (each
    submodule's mode is restored after)."""
    modes = {submodule: submodule.training for submodule in module.modules()}
    module.train(training)
    try:
        graph = ExampleTracer(module, examples).trace(module, concrete_args=defaults or None)
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
    _unflatten_output(graph)
    drop_unused_properties(graph)
    return graph


def _unflatten_output(graph: fx.Graph) -> None:
    """With ``*args`` or ``**kwargs`` fixed (to nothing), fx's graph returns forward's result
    flattened, as its generated code would take it apart; give the output node the result."""
    info = getattr(graph._codegen, "pytree_info", None)  # fx keeps the structure only here
    if info is None or info.out_spec is None:
        return
    output = next(node for node in graph.nodes if node.op == "output")
    output.args = (pytree.tree_unflatten(list(output.args[0]), info.out_spec),)
