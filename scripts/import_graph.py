"""gx's packages and the import arrows between them, and any arrow that points back up.

    .venv/bin/python scripts/import_graph.py [--arrows] [ROOT]

A unit is a package below gx/ (gx/backends/ with everything in it) or a top-level module
(gx/config.py); an arrow A -> B means some module of A imports B, at run time or for type
hints alike. Two units that import each other, or any cycle, mean a lower layer reaches up.
Prints the counts, the two-way pairs and the cycles (and with --arrows every arrow); exits 1
when there is a cycle. docs/house.md describes the layers.
"""

from __future__ import annotations

import argparse
import ast
import graphlib
import sys
from collections import defaultdict
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parents[1]


def unit_of(module: str) -> str:
    """gx.backends.torch.layers -> gx.backends; gx -> gx."""
    return ".".join(module.split(".")[:2])


def _exists(root: Path, module: str) -> bool:
    path = root.joinpath(*module.split("."))
    return path.is_dir() or path.with_suffix(".py").is_file()


def _module_name(root: Path, path: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imported(root: Path, path: Path, tree: ast.Module) -> set[str]:
    """The gx modules a file imports (``from gx import images`` imports gx.images, not the
    package root)."""
    module = _module_name(root, path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([node.module] if node.module else []))
            submodules = [f"{base}.{alias.name}" for alias in node.names]
            found.update(name for name in submodules if _exists(root, name))
            if not all(_exists(root, name) for name in submodules):
                found.add(base)
    return {name for name in found if name.split(".")[0] == "gx"}


def package_arrows(root: Path) -> dict[str, set[str]]:
    """Unit -> the units it imports, for the gx package under ``root``."""
    arrows: dict[str, set[str]] = defaultdict(set)
    for path in sorted((root / "gx").rglob("*.py")):
        source = unit_of(_module_name(root, path))
        arrows[source]  # every unit appears, importing nothing or not
        for target in map(unit_of, _imported(root, path, ast.parse(path.read_text()))):
            if target != source:
                arrows[source].add(target)
    return dict(arrows)


def two_way_pairs(arrows: dict[str, set[str]]) -> list[tuple[str, str]]:
    """Every pair of units that import each other, each once, in name order."""
    return sorted({(min(a, b), max(a, b)) for a in arrows for b in arrows[a] if a in arrows[b]})


def cycle(arrows: dict[str, set[str]]) -> list[str]:
    """One cycle of units, or [] when the graph has none."""
    try:
        graphlib.TopologicalSorter(arrows).prepare()
    except graphlib.CycleError as error:
        return list(error.args[1])
    return []


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("root", nargs="?", type=Path, default=REPOSITORY)
    parser.add_argument("--arrows", action="store_true", help="print every arrow too")
    arguments = parser.parse_args()
    arrows = package_arrows(arguments.root)
    print(f"{len(arrows)} units, {sum(map(len, arrows.values()))} arrows")
    print(f"two-way pairs: {two_way_pairs(arrows) or 'none'}")
    found = cycle(arrows)
    print(f"cycle: {' -> '.join(found) if found else 'none'}")
    if arguments.arrows:
        for source in sorted(arrows):
            print(f"  {source} -> {', '.join(sorted(arrows[source])) or '(nothing)'}")
    sys.exit(1 if found else 0)


if __name__ == "__main__":
    main()
