"""Where each module of the network was built, so that a layer gx cannot import is reported at
the line that made it: a layer of an ``nn.Sequential`` is called from inside PyTorch, and the
line calling the Sequential says little about which of its layers is meant.

PyTorch has no hook for a module's construction, so while gx runs the user's file and builds
the network, ``nn.Module.__init__`` (which every module's constructor reaches) notes the first
line outside the constructors, PyTorch and gx. Networks built elsewhere (``gx.import_module``
from Python) are reported where they are called, as fx records it.
"""

from __future__ import annotations

import functools
import sys
import types
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Callable

from torch import nn

# module -> (file, line) of the expression that built it
_BUILT_AT: weakref.WeakKeyDictionary[nn.Module, tuple[str, int]] = weakref.WeakKeyDictionary()


def built_at(module: nn.Module) -> tuple[str, int] | None:
    """The file and line that built ``module``, if gx saw it built."""
    return _BUILT_AT.get(module)


@contextmanager
def recording_construction(is_library: Callable[[str], bool]) -> Iterator[None]:
    """Note where each module built inside is built (``is_library``: files never reported)."""
    original = nn.Module.__init__

    @functools.wraps(original)
    def noting_init(self: nn.Module, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        site = _construction_site(self, sys._getframe(1), is_library)
        if site is not None:
            _BUILT_AT[self] = site

    nn.Module.__init__ = noting_init  # type: ignore[method-assign]
    try:
        yield
    finally:
        nn.Module.__init__ = original  # type: ignore[method-assign]


def _construction_site(
    module: nn.Module, frame: types.FrameType | None, is_library: Callable[[str], bool]
) -> tuple[str, int] | None:
    """The first frame outside ``module``'s own constructors and outside the libraries."""
    while frame is not None and frame.f_code.co_name == "__init__":
        if frame.f_locals.get("self") is not module:
            break
        frame = frame.f_back
    while frame is not None and is_library(frame.f_code.co_filename):
        frame = frame.f_back
    return None if frame is None else (frame.f_code.co_filename, frame.f_lineno)
