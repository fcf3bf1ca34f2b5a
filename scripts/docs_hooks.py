"""MkDocs hook: every object the API reference documents must have a docstring.

mkdocstrings leaves a member without a docstring out of the page without a word, and renders an
object without one as a bare signature. For each ``::: identifier`` line of a page, this hook
reads the object with griffe (as mkdocstrings does, from the source, without importing gx) and
logs a warning for the object and for each public member it shows that has no docstring;
``mkdocs build --strict`` turns each warning into a failed build.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from typing import Any

import griffe

log = logging.getLogger("mkdocs.plugins.gx_docstrings")

# "::: gx.sample" at the start of a line, optionally followed by an options block
DIRECTIVE = re.compile(r"^:::\s+(\S+)", re.MULTILINE)

_packages: dict[str, griffe.Module] = {}


def _load(identifier: str) -> griffe.Object | griffe.Alias | None:
    """The object ``identifier`` names, or None when it names none (mkdocstrings says so)."""
    package, _, rest = identifier.partition(".")
    if package not in _packages:
        _packages[package] = griffe.load(package, search_paths=["."])
    try:
        return _packages[package][rest] if rest else _packages[package]
    except KeyError:
        return None


def undocumented(obj: griffe.Object | griffe.Alias) -> Iterator[str]:
    """The paths of ``obj`` and of its public members (recursively) that have no docstring.

    Names imported into a module are not its members on the page, so they are not followed;
    an alias given as the directive itself (``gx.sample``) is read through to its target.
    """
    target = obj.final_target if obj.is_alias else obj
    if not target.docstring:
        yield target.path
    if not (target.is_class or target.is_module):
        return
    for name, member in target.members.items():
        if name.startswith("_") or member.is_alias:
            continue
        yield from undocumented(member)


def on_page_markdown(markdown: str, page: Any, **_: Any) -> str:
    """Warn once per undocumented object that a ``:::`` line of this page documents."""
    for identifier in DIRECTIVE.findall(markdown):
        obj = _load(identifier)
        if obj is None:
            continue
        for path in undocumented(obj):
            log.warning(f"{page.file.src_uri}: {path} has no docstring")
    return markdown
