"""A model spec: named inputs and a list of layers wired by name, with shapes inferred.

The plain-data form (what YAML files hold) looks like::

    inputs:
      z: [100, 1, 1]            # a float tensor, per-sample shape
      label: {classes: 10}      # integer class labels
      code: {uniform: [2]}      # a float tensor the trainer draws uniformly in [-1, 1]
    layers:
      - {name: x_deconv, kind: conv_transpose2d, input: z, out: 256, kernel: 4, bias: false}
      - {name: x_bn, kind: batch_norm}          # input defaults to the previous layer
      - {name: joined, kind: concat, input: [x_relu, y_relu]}
    output: image                               # defaults to the last layer; a list of
                                                # names gives several outputs (a D's score first,
                                                # then heads such as class logits)

Building a ``ModelSpec`` validates everything, so a spec object that exists can be compiled.
"""

from __future__ import annotations

import dataclasses
import keyword
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from gx.errors import GxError, SpecError
from gx.layers import LAYER_KINDS, Layer, Shape, Value
from gx.layers.info import LayerInfo
from gx.values import closest, is_number, is_whole

_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
# Attribute names of torch.nn.Module / jittor.Module that a layer name must not shadow.
_RESERVED = frozenset(
    {
        "forward",
        "execute",
        "train",
        "eval",
        "training",
        "is_train",
        "parameters",
        "buffers",
        "state_dict",
        "load_state_dict",
        "modules",
        "children",
        "apply",
        "cuda",
        "cpu",
        "to",
        "float",
        "double",
        "half",
        "type",
        "zero_grad",
        "named_parameters",
        "named_buffers",
        "named_modules",
        "register_buffer",
        "register_parameter",
        "load",
        "save",
        "spec",
        "mask_source",
        "layers",
        "dtype",
        "name",
        "requires_grad_",
        "extra_repr",
    }
)
INIT_SCHEMES = ("default", "dcgan")


@dataclass(frozen=True)
class Node:
    name: str
    layer: Layer
    inputs: tuple[str, ...]


@dataclass(frozen=True)
class ModelSpec:
    """A network: its inputs, its layers in order, and its outputs (names of layers).

    With one output a compiled module returns a tensor; with several, a tuple in this order.
    """

    inputs: dict[str, Value]
    nodes: tuple[Node, ...]
    outputs: tuple[str, ...]
    init: str = "default"
    infos: tuple[LayerInfo, ...] = field(init=False, repr=False, compare=False)
    # value name -> the last node that reads it (the outputs excepted): a forward pass can drop
    # each value there. Computed once here, not on every forward call.
    last_readers: dict[str, str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.init not in INIT_SCHEMES:
            raise GxError(
                f"unknown init scheme '{self.init}'; use one of {', '.join(INIT_SCHEMES)}"
            )
        object.__setattr__(self, "infos", tuple(_infer(self)))
        object.__setattr__(
            self,
            "last_readers",
            {
                source: node.name
                for node in self.nodes
                for source in node.inputs
                if source not in self.outputs
            },
        )

    @property
    def output(self) -> str:
        """The first output: a generator's images, a discriminator's score."""
        return self.outputs[0]

    @property
    def output_value(self) -> Value:
        return self.output_values[0]

    @property
    def output_values(self) -> tuple[Value, ...]:
        values = {info.name: info.output for info in self.infos}
        return tuple(values[name] for name in self.outputs)

    @property
    def output_kind(self) -> str:
        """The kind of the layer that computed the output's values: the output layer, or the
        layer behind the ones that only rearrange values (a final sigmoid, then a reshape)."""
        nodes = {node.name: node for node in self.nodes}
        node = nodes[self.output]
        while node.layer.rearranges and node.inputs[0] in nodes:
            node = nodes[node.inputs[0]]
        return node.layer.kind

    @property
    def parameter_count(self) -> int:
        return sum(info.parameter_count for info in self.infos)

    def layers_feeding(self, names: list[str]) -> set[str]:
        """The layers whose outputs reach any of the layers ``names`` (those included)."""
        sources = {node.name: node.inputs for node in self.nodes}
        reached, waiting = set(), list(names)
        while waiting:
            name = waiting.pop()
            if name in sources and name not in reached:
                reached.add(name)
                waiting.extend(sources[name])
        return reached

    def state_shapes(self) -> dict[str, Shape]:
        """Every checkpointed tensor, 'layer.param', parameters before buffers within a layer."""
        shapes: dict[str, Shape] = {}
        for info in self.infos:
            for key, shape in {**info.parameters, **info.buffers}.items():
                shapes[f"{info.name}.{key}"] = shape
        return shapes

    def check_state(self, state: Mapping[str, Any], source: str) -> None:
        """Refuse weights of another model (``state`` keyed 'layer.param', arrays) with one
        message naming ``source`` and the first mismatch."""
        expected = self.state_shapes()
        missing = [key for key in expected if key not in state]
        extra = [key for key in state if key not in expected]
        if missing or extra:
            detail = f"missing {missing[0]}" if missing else f"unexpected {extra[0]}"
            raise GxError(
                f"{source} does not fit this model ({detail}); it was saved from a "
                "different model: use a checkpoint of the same experiment"
            )
        for key, shape in expected.items():
            if tuple(state[key].shape) != tuple(shape):
                raise GxError(
                    f"{source} does not fit this model: '{key}' has shape "
                    f"{tuple(state[key].shape)}, the model needs {tuple(shape)}; use a "
                    "checkpoint of the same experiment"
                )

    def to_dict(self) -> dict[str, Any]:
        inputs: dict[str, Any] = {name: _input_dict(value) for name, value in self.inputs.items()}
        layers = []
        previous: str | None = None
        for node in self.nodes:
            entry: dict[str, Any] = {"name": node.name, "kind": node.layer.kind}
            if list(node.inputs) != ([previous] if previous else []) or previous is None:
                entry["input"] = node.inputs[0] if len(node.inputs) == 1 else list(node.inputs)
            for key, value in node.layer.arguments().items():
                entry[key] = list(value) if isinstance(value, tuple) else value
            layers.append(entry)
            previous = node.name
        output: str | list[str] = self.output if len(self.outputs) == 1 else list(self.outputs)
        return {"inputs": inputs, "layers": layers, "output": output, "init": self.init}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str = "spec") -> ModelSpec:
        if not isinstance(data, Mapping):
            raise GxError(f"{where}: a model spec must be a mapping with 'inputs' and 'layers'")
        _no_unknown_keys(where, data, ("inputs", "layers", "output", "init"))
        for key in ("inputs", "layers"):
            if key not in data:
                raise GxError(f"{where}: missing '{key}'; see the spec format in gx/spec/graph.py")
        inputs = _parse_inputs(where, data["inputs"])
        try:
            nodes = _parse_layers(where, data["layers"], inputs)
            return cls(
                inputs=inputs,
                nodes=tuple(nodes),
                outputs=_parse_outputs(where, data.get("output"), nodes),
                init=data.get("init") or "default",
            )
        except SpecError as error:
            # name the network too: both generator and discriminator may have a 'conv1'
            raise SpecError(error.layer, error.problem, error.fix, network=where) from None


def _input_dict(value: Value) -> Any:
    """An input's declaration, as ``_parse_inputs`` reads it."""
    if value.is_label:
        return {"classes": value.classes}
    return {"uniform": list(value.shape)} if value.uniform else list(value.shape)


def _is_shape(decl: Any) -> bool:
    return (
        isinstance(decl, (list, tuple)) and bool(decl) and all(is_whole(d) and d > 0 for d in decl)
    )


def _parse_outputs(where: str, raw: Any, nodes: list[Node]) -> tuple[str, ...]:
    """'output': a layer name, a list of them, or absent (the last layer)."""
    if raw is None:
        return (nodes[-1].name,)
    names = [raw] if isinstance(raw, str) else raw
    if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
        raise GxError(f"{where}: 'output' must be a layer name or a list of them, got {raw!r}")
    layers = {node.name for node in nodes}
    for name in names:
        if name not in layers:
            raise GxError(f"{where}: output '{name}' is not a layer name")
    if len(set(names)) != len(names):
        raise GxError(f"{where}: 'output' names a layer twice; list each output once")
    return tuple(names)


def _no_unknown_keys(where: str, data: Mapping[str, Any], allowed: tuple[str, ...]) -> None:
    for key in data:
        if key not in allowed:
            close = closest(key, allowed)
            hint = f"did you mean '{close}'?" if close else f"valid keys: {', '.join(allowed)}"
            raise GxError(f"{where}: unknown key '{key}'; {hint}")


def _parse_inputs(where: str, raw: Any) -> dict[str, Value]:
    if not isinstance(raw, Mapping) or not raw:
        raise GxError(f"{where}: 'inputs' must map names to shapes, e.g. z: [100]")
    inputs: dict[str, Value] = {}
    for name, decl in raw.items():
        _check_name(where, str(name))
        if isinstance(decl, Mapping) and set(decl) == {"classes"}:
            classes = decl["classes"]
            if not is_whole(classes) or classes < 2:
                raise GxError(f"{where}: input '{name}' needs an integer 'classes' >= 2")
            inputs[name] = Value((), classes)
        elif _is_shape(decl):
            inputs[name] = Value(tuple(decl))
        elif isinstance(decl, Mapping) and set(decl) == {"uniform"} and _is_shape(decl["uniform"]):
            inputs[name] = Value(tuple(decl["uniform"]), uniform=True)
        else:
            raise GxError(
                f"{where}: input '{name}' must be a shape like [100, 1, 1], "
                f"{{classes: 10}} or {{uniform: [2]}}, got {decl!r}"
            )
    return inputs


def valid_name(name: str) -> bool:
    """Whether ``name`` can name a layer or an input: an identifier that shadows no method."""
    return bool(_NAME.match(name)) and not keyword.iskeyword(name) and name not in _RESERVED


def _check_name(where: str, name: str) -> None:
    if not valid_name(name):
        raise GxError(
            f"{where}: '{name}' cannot be a layer or input name; use letters, digits "
            "and underscores, starting with a letter, and avoid framework method names"
        )


def _parse_layers(where: str, raw: Any, inputs: dict[str, Value]) -> list[Node]:
    if not isinstance(raw, list) or not raw:
        raise GxError(f"{where}: 'layers' must be a non-empty list")
    nodes: list[Node] = []
    defined = set(inputs)
    for index, entry in enumerate(raw):
        if not isinstance(entry, Mapping) or "kind" not in entry:
            raise GxError(f"{where}: layer #{index} must be a mapping with a 'kind'")
        entry = dict(entry)
        kind = entry.pop("kind")
        name = str(entry.pop("name", f"{kind}{index}"))
        _check_name(where, name)
        if name in defined:
            raise SpecError(name, "the name is used twice", "give every layer a unique name")
        layer_cls = LAYER_KINDS.get(kind)
        if layer_cls is None:
            close = closest(kind, LAYER_KINDS)
            hint = (
                f"did you mean '{close}'?"
                if close
                else f"known kinds: {', '.join(sorted(LAYER_KINDS))}"
            )
            raise SpecError(name, f"unknown kind '{kind}'", hint)
        sources = _sources(name, entry.pop("input", None), nodes, inputs)
        for source in sources:
            if source not in defined:
                raise SpecError(
                    name,
                    f"input '{source}' is not an input or an earlier layer",
                    "name a model input or a layer listed before this one",
                )
        layer = _make_layer(name, layer_cls, entry)
        if layer.arity == 1 and len(sources) != 1:
            raise SpecError(
                name,
                f"{kind} takes one input, got {len(sources)}",
                "join several inputs with a 'concat' layer first",
            )
        if layer.arity == 0 and len(sources) < 2:
            raise SpecError(name, f"{kind} needs two or more inputs", "list them: input: [a, b]")
        if layer.arity > 1 and len(sources) != layer.arity:
            raise SpecError(
                name,
                f"{kind} takes {layer.arity} inputs, got {len(sources)}",
                "list them in input:",
            )
        nodes.append(Node(name, layer, sources))
        defined.add(name)
    return nodes


def _sources(name: str, raw: Any, nodes: list[Node], inputs: dict[str, Value]) -> tuple[str, ...]:
    if raw is None:
        if nodes:
            return (nodes[-1].name,)
        if len(inputs) == 1:
            return (next(iter(inputs)),)
        raise SpecError(
            name,
            "the first layer of a model with several inputs needs 'input'",
            f"add input: <one of {', '.join(inputs)}>",
        )
    if isinstance(raw, str):
        return (raw,)
    if isinstance(raw, list) and all(isinstance(item, str) for item in raw):
        return tuple(raw)
    raise SpecError(
        name,
        f"'input' must be a name or a list of names, got {raw!r}",
        "write input: z, or input: [a, b]",
    )


def _make_layer(name: str, layer_cls: type[Layer], arguments: dict[str, Any]) -> Layer:
    fields = {f.name: f for f in dataclasses.fields(layer_cls)}
    for key in arguments:
        if key not in fields:
            valid = ", ".join(fields) or "none"
            raise SpecError(
                name, f"{layer_cls.kind} has no argument '{key}'", f"its arguments are: {valid}"
            )
    missing = [
        key
        for key, f in fields.items()
        if f.default is dataclasses.MISSING and key not in arguments
    ]
    if missing:
        raise SpecError(
            name, f"{layer_cls.kind} needs '{missing[0]}'", f"add {missing[0]}: <value>"
        )
    converted = {
        key: _convert(name, key, fields[key].type, value) for key, value in arguments.items()
    }
    layer = layer_cls(**converted)
    layer.check(name)
    return layer


def _convert(name: str, key: str, annotation: Any, value: Any) -> Any:
    """Check a spec argument against its field annotation (kept as a string by __future__)."""
    text = str(annotation)
    wrong = SpecError(
        name,
        f"'{key}' should be {text.replace('Padding', 'int or same')}, got {value!r}",
        f"fix the value of '{key}'",
    )
    if text.startswith("tuple"):
        if not isinstance(value, (list, tuple)) or not all(is_whole(v) for v in value):
            raise wrong
        return tuple(value)
    if text == "bool" and not isinstance(value, bool):
        raise wrong
    if text == "int" and not is_whole(value):
        raise wrong
    if text == "float":
        if not is_number(value):
            raise wrong
        return float(value)
    if text == "Padding" and value != "same" and not is_whole(value):
        raise wrong
    return value


def _infer(spec: ModelSpec) -> list[LayerInfo]:
    values: dict[str, Value] = dict(spec.inputs)
    infos = []
    for node in spec.nodes:
        sources = [values[source] for source in node.inputs]
        if not node.layer.accepts_labels and node.layer.kind != "concat":
            for source, value in zip(node.inputs, sources):
                if value.is_label:
                    raise SpecError(
                        node.name,
                        f"'{source}' holds integer labels, which {node.layer.kind} cannot take",
                        "turn them into numbers with one_hot, label_map or embedding",
                    )
        output = node.layer.output(node.name, sources)
        values[node.name] = output
        infos.append(
            LayerInfo(
                node.name,
                node.layer,
                node.inputs,
                tuple(sources),
                output,
                node.layer.parameters(sources),
                node.layer.buffers(sources),
            )
        )
    return infos
