"""The spec being built while the traced graph is walked: layers, their shapes, their names
and which of the module's tensors each layer's weights come from."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from gx.errors import SpecError
from gx.layers.importing import Tensor, Unsupported
from gx.spec import LAYER_KINDS, ModelSpec, Node, Value
from gx.spec.graph import valid_name


class SpecBuilder:
    """Layers added in the traced order; each checked at once, so a problem names its line."""

    def __init__(self, module_tensors: Mapping[str, tuple[int, ...]]) -> None:
        self.module_tensors = module_tensors  # state_dict key -> shape, of the user's module
        self.inputs: dict[str, Value] = {}
        self.nodes: list[Node] = []
        self.values: dict[str, Value] = {}
        self.weight_keys: dict[str, str] = {}  # gx 'layer.param' -> the module's state_dict key

    def add_input(self, name: str, value: Value) -> Tensor:
        self.inputs[name] = self.values[name] = value
        return Tensor(name, value)

    def unique_name(self, wanted: str) -> str:
        """A valid spec name close to ``wanted`` (an attribute path or an fx node name)."""
        name = re.sub(r"[^A-Za-z0-9_]", "_", wanted).strip("_") or "layer"
        if not name[0].isalpha():
            name = f"layer_{name}"
        if not valid_name(name):
            name = f"{name}_layer"
        candidate, suffix = name, 2
        while candidate in self.values:
            candidate, suffix = f"{name}_{suffix}", suffix + 1
        return candidate

    def add_layer(
        self,
        wanted_name: str,
        kind: str,
        sources: list[Tensor],
        module_path: str = "",
        module_keys: Mapping[str, str] | None = None,
        **arguments: Any,
    ) -> Tensor:
        """Append a layer; ``module_path``: the nn.Module whose weights it takes, each under its
        gx name unless ``module_keys`` names it otherwise (gx 'weight' -> 'weight_orig')."""
        name = self.unique_name(wanted_name)
        layer = LAYER_KINDS[kind](**arguments)
        values = [source.value for source in sources]
        for source in sources:
            if source.value.is_label and not layer.accepts_labels and kind != "concat":
                raise Unsupported(
                    f"gets the integer labels '{source.name}', which {kind} cannot take; "
                    "turn them into numbers first (F.one_hot(labels, classes).float() or an "
                    "nn.Embedding)"
                )
        try:
            layer.check(name)
            output = layer.output(name, values)
        except SpecError as error:
            raise Unsupported(f"cannot be a gx {kind} layer: {error.problem}") from None
        self._map_weights(
            name,
            module_path,
            {**layer.parameters(values), **layer.buffers(values)},
            module_keys or {},
        )
        self.nodes.append(Node(name, layer, tuple(source.name for source in sources)))
        self.values[name] = output
        return Tensor(name, output)

    def _map_weights(
        self,
        name: str,
        module_path: str,
        shapes: dict[str, tuple[int, ...]],
        module_keys: Mapping[str, str],
    ) -> None:
        for key, shape in shapes.items():
            source = f"{module_path}.{module_keys.get(key, key)}"
            held = self.module_tensors.get(source)
            if held is None:
                prefix = f"{module_path}."
                own = [k.removeprefix(prefix) for k in self.module_tensors if k.startswith(prefix)]
                raise Unsupported(
                    f"keeps no '{key}' in its state_dict (it keeps {', '.join(own) or 'none'}): "
                    "a wrapper computes it, which gx cannot read; gx reads a layer's own "
                    "weights, and spectral normalization by torch.nn.utils.spectral_norm"
                )
            if held != shape:
                raise Unsupported(
                    f"holds '{key}' of shape {held}, but its input here makes gx's "
                    f"{key} {shape}; check the --input shapes"
                )
            self.weight_keys[f"{name}.{key}"] = source

    def spec(self, outputs: list[Tensor]) -> ModelSpec:
        return ModelSpec(
            inputs=dict(self.inputs),
            nodes=tuple(self.nodes),
            outputs=tuple(output.name for output in outputs),
        )
