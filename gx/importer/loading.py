"""``FILE.py:NAME``: run the user's Python file and build the network it names.

The file is the user's own code: it is run as a module (its folder first on ``sys.path``, so
its own imports work), then NAME is looked up in it: an ``nn.Module`` subclass, built with
``--args``, or a module object the file already built.
"""

from __future__ import annotations

import importlib.util
import inspect
import json
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

from torch import nn

from gx.errors import GxError
from gx.importer.sites import recording_construction
from gx.importer.tracing import is_library


def parse_target(target: str) -> tuple[Path, str]:
    """``path/to/gan.py:Generator`` -> (path, "Generator")."""
    path_text, colon, name = target.rpartition(":")
    if not colon or not path_text.endswith(".py") or not name.isidentifier():
        raise GxError(
            f"cannot read {target!r}; name a Python file and the network in it, "
            "e.g. gx import gan.py:Generator"
        )
    path = Path(path_text)
    if not path.is_file():
        raise GxError(f"{path}: no such Python file; check the path before ':{name}'")
    return path, name


def parse_arguments(text: str | None) -> tuple[list[Any], dict[str, Any]]:
    """``--args``: a JSON object of keyword arguments, or a JSON list of positional ones."""
    if text is None:
        return [], {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        raise GxError(
            f"--args is not valid JSON ({error.msg}); write e.g. --args '{{\"size\": 32}}'"
        ) from None
    if isinstance(value, dict):
        return [], value
    if isinstance(value, list):
        return value, {}
    raise GxError(
        f"--args must be a JSON object (keyword arguments) or list (positional ones), got {text!r}"
    )


def _run_file(path: Path) -> ModuleType:
    module_name = f"gx_imported_{path.stem}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    assert spec is not None and spec.loader is not None  # a .py file always has both
    module = importlib.util.module_from_spec(spec)
    folder = str(path.parent.resolve())
    sys.path.insert(0, folder)
    try:
        spec.loader.exec_module(module)
    except Exception as error:
        raise GxError(
            f"running {path} failed ({type(error).__name__}: {error}); fix the file so that "
            f"'python {path}' runs"
        ) from None
    finally:
        if folder in sys.path:
            sys.path.remove(folder)
    return module


def load_network(target: str, arguments: str | None = None) -> tuple[nn.Module, str]:
    """The network ``FILE.py:NAME`` names, and NAME."""
    path, name = parse_target(target)
    positional, keywords = parse_arguments(arguments)
    with recording_construction(is_library):
        return _built(path, name, positional, keywords, arguments)


def _built(
    path: Path, name: str, positional: list[Any], keywords: dict[str, Any], arguments: str | None
) -> tuple[nn.Module, str]:
    module = _run_file(path)
    found = getattr(module, name, None)
    if isinstance(found, nn.Module):
        if arguments is not None:
            raise GxError(f"{path}: '{name}' is already built; drop --args")
        return found, name
    if not (inspect.isclass(found) and issubclass(found, nn.Module)):
        networks = sorted(
            key
            for key, value in vars(module).items()
            if inspect.isclass(value)
            and issubclass(value, nn.Module)
            and value.__module__ == module.__name__
        )
        known = f"its networks: {', '.join(networks)}" if networks else "it defines none"
        raise GxError(f"{path} has no nn.Module named '{name}'; {known}")
    try:
        return found(*positional, **keywords), name
    except Exception as error:
        raise GxError(
            f"building {name}({arguments or ''}) failed ({type(error).__name__}: {error}); "
            "pass its constructor arguments with --args"
        ) from None
