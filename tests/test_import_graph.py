"""gx's packages import only downward: no two import each other, no cycle (docs/house.md)."""

from __future__ import annotations

import sys
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPOSITORY / "scripts"))

from import_graph import cycle, package_arrows, two_way_pairs  # noqa: E402


def test_no_package_imports_one_above_it() -> None:
    arrows = package_arrows(REPOSITORY)
    assert {"gx.config", "gx.models", "gx.losses", "gx.backends", "gx.layers"} <= arrows.keys()
    assert "gx.models" in arrows["gx.config"]  # the graph is read, not empty
    assert two_way_pairs(arrows) == []
    assert cycle(arrows) == []


def test_an_arrow_back_up_is_found(tmp_path: Path) -> None:
    """The negative control: a type-only import from models back to config is an arrow."""
    (tmp_path / "gx" / "models").mkdir(parents=True)
    (tmp_path / "gx" / "__init__.py").write_text("")
    (tmp_path / "gx" / "config.py").write_text("from gx.models import build_model\n")
    (tmp_path / "gx" / "models" / "__init__.py").write_text(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n"
        "    from gx.config import Experiment\n"
    )
    arrows = package_arrows(tmp_path)
    assert two_way_pairs(arrows) == [("gx.config", "gx.models")]
    assert set(cycle(arrows)) == {"gx.config", "gx.models"}
