"""Every registered layer kind is whole: a definition with each part gx needs, on both backends.

A kind is defined once, in gx/layers (gx.layers.base lists the parts); these tests fail as soon as
a registered kind lacks one, so a new kind cannot land half-made.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from gx.layers import LAYER_KINDS
from gx.spec import ModelSpec, initial_state

REPO_ROOT = Path(__file__).resolve().parents[1]
KINDS = sorted(LAYER_KINDS)


def case_specs(kind: str) -> list[ModelSpec]:
    definition = LAYER_KINDS[kind]
    return [ModelSpec.from_dict(case.spec_dict(kind)) for case in definition.parity_cases.values()]


@pytest.mark.parametrize("kind", KINDS)
def test_definition_has_parity_cases_flops_and_initial_values(kind):
    definition = LAYER_KINDS[kind]
    assert dataclasses.is_dataclass(definition) and definition.kind == kind
    assert definition.__doc__, f"{kind}: say what it computes in its docstring"
    specs = case_specs(kind)
    assert specs, f"{kind}: give it at least one parity case"
    for spec in specs:
        (info,) = spec.infos
        assert info.kind == kind
        flops = info.layer.flops(info)
        assert isinstance(flops, int) and flops >= 0
        for scheme in ("default", "dcgan"):
            state = initial_state(spec, 0, scheme)
            assert set(state) == set(spec.state_shapes())


@pytest.mark.parametrize("kind", KINDS)
def test_gx_import_knows_where_the_kind_comes_from(kind):
    from gx.importer.kinds import FUNCTION_KINDS, METHOD_KINDS, MODULE_KINDS

    definition = LAYER_KINDS[kind]
    named = definition.torch_modules + definition.torch_functions
    assert named or definition.imported_by, f"{kind}: name its PyTorch sources or say why none"
    recognised = [*MODULE_KINDS.values(), *FUNCTION_KINDS.values(), *METHOD_KINDS.values()]
    assert recognised.count(kind) == len(named)


@pytest.mark.parametrize("backend", ["torch", pytest.param("jittor", marks=pytest.mark.jittor)])
@pytest.mark.parametrize("kind", KINDS)
def test_each_backend_has_a_class_for_the_kind(kind, backend):
    from gx.backends import get_backend

    get_backend(backend, "cpu")  # prepares the framework's environment before its import
    if backend == "torch":
        from gx.backends.torch.layers import LAYER_CLASSES
    else:
        from gx.backends.jittor.layers import LAYER_CLASSES
    for spec in case_specs(kind):
        assert callable(LAYER_CLASSES.for_kind(spec.infos[0].layer))


def test_docs_list_every_kind():
    text = (REPO_ROOT / "docs" / "layers.md").read_text()
    missing = [kind for kind in KINDS if f"`{kind}`" not in text]
    assert not missing, f"docs/layers.md does not describe {missing}"
