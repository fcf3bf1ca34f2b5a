"""The walk over a traced graph: every node becomes a gx layer, a view of an earlier value, or
a value that only feeds others (a shape, a one-hot code), in the order PyTorch ran them."""

from __future__ import annotations

import dataclasses
from typing import Any

import torch
from torch import fx, nn

from gx.importer.builder import SpecBuilder
from gx.importer.inputs import InputSpec
from gx.importer.kinds import FUNCTION_KINDS, METHOD_KINDS, call_suggestion, module_layer
from gx.importer.operations import FUNCTION_RULES, METHOD_RULES
from gx.importer.spectral import SpectralNormKeys, layer_class, spectral_norm_keys
from gx.importer.static import Static, example_of, static_of
from gx.importer.tracing import autograd_function_call, import_error, node_place
from gx.layers import LAYER_KINDS
from gx.layers.importing import OneHotCode, Tensor, Unsupported
from gx.spec import ModelSpec, Value

FUNCTIONAL_DROPOUTS = (torch.nn.functional.dropout, torch.nn.functional.dropout2d)
# the kinds that take spectral_norm: true
SPECTRAL_KINDS = tuple(
    kind
    for kind, cls in LAYER_KINDS.items()
    if any(field.name == "spectral_norm" for field in dataclasses.fields(cls))
)


def operation_name(node: fx.Node, module: nn.Module | None = None) -> str:
    """How a traced node reads in the source: nn.Linear, F.leaky_relu, torch.cat, Tensor.view."""
    if module is not None:
        cls = layer_class(module)
        return f"nn.{cls.__name__}" if cls.__module__.startswith("torch.nn") else cls.__name__
    if node.op == "call_method":
        return f"Tensor.{node.target}()"
    if node.op == "get_attr":
        return f"self.{node.target}"
    if node.op == "output":
        return "the value forward returns"
    target = node.target
    name = getattr(target, "__name__", str(target))
    home = getattr(target, "__module__", None) or ""
    if home.startswith(("torch.nn.functional", "torch._C._nn")):
        return f"F.{name}"
    if home.startswith("torch"):
        return f"torch.{name}"
    return f"{home.lstrip('_')}.{name}" if home else name


class Translator:
    """Translates one traced graph of ``module`` into a spec (one instance per import)."""

    def __init__(self, network: str, module: nn.Module, eval_graph: fx.Graph) -> None:
        self.network = network
        self.modules = dict(module.named_modules())
        self.builder = SpecBuilder(
            {key: tuple(tensor.shape) for key, tensor in module.state_dict().items()}
        )
        self.values: dict[fx.Node, Any] = {}
        self.called: set[str] = set()  # modules with weights, each may run once
        self.codes: dict[tuple[str, tuple[int, ...]], Tensor] = {}  # one layer per one-hot code
        # gx layer -> where its spectral normalization lives in the module
        self.spectral_norms: dict[str, SpectralNormKeys] = {}
        # functional dropouts of the eval-mode trace, by node name: still active there?
        self.eval_dropouts = {
            node.name: bool(
                node.kwargs.get("training", node.args[2] if len(node.args) > 2 else True)
            )
            for node in eval_graph.nodes
            if node.op == "call_function" and node.target in FUNCTIONAL_DROPOUTS
        }

    @property
    def weight_keys(self) -> dict[str, str]:
        return self.builder.weight_keys

    # -- the Context (gx.layers.importing) the import rules use ----------------------------------
    def layer(self, node: fx.Node, kind: str, sources: list[Tensor], **arguments: Any) -> Tensor:
        stack = node.meta.get("nn_module_stack") or {}
        owner = next(reversed(stack), "") if stack else ""
        wanted = f"{owner}_{node.name}" if owner else node.name
        return self.builder.add_layer(wanted, kind, sources, **arguments)

    def tensor(self, value: Any) -> Tensor:
        if isinstance(value, Tensor):
            return value
        if isinstance(value, OneHotCode):
            return self._one_hot_layer(value)
        raise Unsupported(f"needs a tensor here, got {value!r}")

    def dropout_in_eval(self, node: fx.Node) -> bool:
        return self.eval_dropouts.get(node.name, False)

    # -- the walk -----------------------------------------------------------------------------
    def translate(self, graph: fx.Graph, inputs: list[InputSpec]) -> ModelSpec:
        placeholders = [node for node in graph.nodes if node.op == "placeholder"]
        for node, declared in zip(placeholders, inputs):
            self.values[node] = self._input(declared)
        for node in placeholders[len(inputs) :]:
            self.values[node] = example_of(node)  # an argument left at its default
        for node in graph.nodes:
            if node.op == "placeholder":
                continue
            module = self.modules.get(str(node.target)) if node.op == "call_module" else None
            try:
                if node.op == "output":
                    return self._output(fx.node.map_aggregate(node.args[0], self._value))
                self.values[node] = self._node(node, module)
            except Unsupported as problem:
                raise import_error(
                    self.network,
                    operation_name(node, module),
                    node_place(node, module),
                    str(problem),
                ) from None
        raise AssertionError("an fx graph always ends with its output node")

    def _input(self, declared: InputSpec) -> Any:
        if declared.is_float:
            value = Value(declared.shape, uniform=declared.kind == "uniform")
            return self.builder.add_input(declared.name, value)
        labels = self.builder.add_input(declared.name, Value((), declared.classes))
        return labels if declared.kind == "class" else OneHotCode(labels, declared.shape)

    def _node(self, node: fx.Node, module: nn.Module | None) -> Any:
        if static_of(node) is Static.FREE:
            return example_of(node)  # x.size(1), x.dim(), arithmetic on them: the same for all
        function = autograd_function_call(node)
        if function is not None:
            raise import_error(
                self.network,
                "a custom torch.autograd.Function",
                function,
                "cannot be imported: the tracer runs its forward as plain code and never sees "
                "its backward; write it with layers gx knows",
            )
        args, kwargs = fx.node.map_aggregate((node.args, node.kwargs), self._value)
        if node.op == "call_module":
            assert module is not None  # fx names only the module's own submodules
            return self._module(node, module, args)
        if node.op == "call_function" and node.target in FUNCTION_KINDS:
            kind = LAYER_KINDS[FUNCTION_KINDS[node.target]]
            return kind.from_torch_call(self, node, args, kwargs)
        if node.op == "call_method" and node.target in METHOD_KINDS:
            return LAYER_KINDS[METHOD_KINDS[str(node.target)]].from_torch_call(
                self, node, args, kwargs
            )
        if node.op == "call_function" and node.target in FUNCTION_RULES:
            return FUNCTION_RULES[node.target](self, node, args, kwargs)
        if node.op == "call_method" and node.target in METHOD_RULES:
            return METHOD_RULES[str(node.target)](self, node, args, kwargs)
        if node.op == "get_attr":
            raise Unsupported(
                "is a tensor the forward reads directly; gx layers hold every weight: use a "
                "layer module (nn.Linear, nn.Embedding, ...)"
            )
        name = getattr(node.target, "__name__", str(node.target))
        raise Unsupported(f"has no gx layer kind; {call_suggestion(name)}")

    def _value(self, argument: Any) -> Any:
        return self.values[argument] if isinstance(argument, fx.Node) else argument

    def _module(self, node: fx.Node, module: nn.Module, args: tuple) -> Any:
        if len(args) != 1:
            raise Unsupported("is called with several arguments; gx layers take one tensor")
        if type(module) is nn.Identity:
            return args[0]
        kind, arguments = module_layer(module)
        source = self.tensor(args[0])
        LAYER_KINDS[kind].check_torch_input(module, source.value)
        path = str(node.target)
        if path in self.called:
            raise Unsupported(
                "runs a second time; its weights would be shared, and each gx layer holds "
                "its own: make a second module"
            )
        if any(True for _ in module.parameters()):
            self.called.add(path)
        keys = spectral_norm_keys(module)
        if keys is None:
            return self.builder.add_layer(node.name, kind, [source], module_path=path, **arguments)
        if kind not in SPECTRAL_KINDS:
            raise Unsupported(
                f"is spectrally normalized, which gx's {kind} is not; gx has spectral "
                f"normalization on {', '.join(SPECTRAL_KINDS)} layers"
            )
        layer = self.builder.add_layer(
            node.name,
            kind,
            [source],
            module_path=path,
            module_keys={"weight": keys.weight, "sn_u": keys.u},
            spectral_norm=True,
            **arguments,
        )
        self.spectral_norms[layer.name] = keys.under(path)
        return layer

    def _one_hot_layer(self, code: OneHotCode) -> Tensor:
        key = (code.label.name, code.shape)
        if key not in self.codes:
            label = code.label
            if len(code.shape) == 1:
                made = self.builder.add_layer(f"{label.name}_one_hot", "one_hot", [label])
            elif len(code.shape) == 3:
                made = self.builder.add_layer(
                    f"{label.name}_map", "label_map", [label], size=tuple(code.shape[1:])
                )
            else:
                raise Unsupported(
                    f"reads the one-hot code of '{label.name}' as {code.shape}; gx makes it "
                    "(classes,) or (classes, height, width)"
                )
            self.codes[key] = made
        return self.codes[key]

    def _output(self, result: Any) -> ModelSpec:
        """One tensor, or a tuple of them (a D's score and its heads): the spec's outputs."""
        if isinstance(result, dict):
            raise Unsupported(
                "returns a dict; a gx network returns a tensor or a tuple of them, in order"
            )
        values = list(result) if isinstance(result, (tuple, list)) else [result]
        outputs = [self.tensor(value) for value in values]
        if any(output.name in self.builder.inputs for output in outputs):
            raise Unsupported("returns its input unchanged; there is nothing to import")
        if len({output.name for output in outputs}) != len(outputs):
            raise Unsupported("returns the same value twice; return each output once")
        return self.builder.spec(outputs)
