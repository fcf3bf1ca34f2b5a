"""A torch.fx tracer that also runs what it records on example inputs, so that forward may branch
on what does not depend on the values of its tensors.

fx's symbolic tracer sees no values: ``if input.is_cuda and self.ngpu > 1:`` (the DCGAN
example's multi-GPU branch) or ``if x.dim() == 2:`` stops it. This tracer gives every node it
records an example value, computed from the declared example inputs on a copy of the module,
and a provenance: whether the value is a static property (a shape, a dtype, a device, or
arithmetic on them) and whether it depends on the batch size. A branch on a static property
that does not depend on the batch size takes the example's way; any other branch still stops
the trace. Reads of static properties that only fed branches are dropped from the graph.

``torch.fx.experimental.meta_tracer.MetaTracer`` carries example values too, but it answers
``x.size(0)`` with the example's batch size instead of recording it, and gx must keep the batch
size symbolic (gx.importer.reshaping); its device is always 'meta'.
"""

from __future__ import annotations

import copy
import enum
import operator
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import torch
from torch import fx, nn

# Tensor properties that do not read values: (method or attribute) -> whether the batch size
# decides it. size() and shape hold the batch size first (Static.SIZES).
_METHODS = {
    "dim": False,
    "ndimension": False,
    "is_floating_point": False,
    "is_complex": False,
    "element_size": False,
    "get_device": False,
    "numel": True,
    "nelement": True,
}
_ATTRIBUTES = {"dtype", "device", "is_cuda", "is_cpu", "ndim", "layout", "is_sparse"}
_EXAMPLE = "gx_example"
_STATIC = "gx_static"


class Static(enum.Enum):
    """What a node's value depends on, when it is no tensor's values."""

    FREE = "free"  # the same for every batch: x.dim(), x.shape[1], x.is_cuda, self-made constants
    BATCH = "batch"  # the batch size: x.size(0), x.numel()
    SIZES = "sizes"  # a whole shape: the batch size, then what is free of it


def static_of(node: fx.Node) -> Static | None:
    """How static ``node``'s value is; None for a tensor or anything read from tensor values."""
    return node.meta.get(_STATIC)


def example_of(node: fx.Node) -> Any:
    """``node``'s value on the example inputs (only where ``static_of`` is not None)."""
    return node.meta[_EXAMPLE]


class ExampleTracer(fx.Tracer):
    """fx's tracer, each node with its value on the example inputs (see the module docstring).

    ``examples``: the declared inputs, in forward's order. The examples run on a copy of the
    module, so that batch-norm statistics and spectral-norm vectors of the module stay as they
    are.
    """

    # every node keeps the Python stack it was created from: the user's source line
    record_stack_traces = True

    def __init__(self, module: nn.Module, examples: Sequence[torch.Tensor]) -> None:
        super().__init__()
        self.examples = list(examples)
        self.placeholders = 0
        self.running_examples = False  # fx's patches of nn.Module step aside meanwhile
        try:
            self.example_module: nn.Module | None = copy.deepcopy(module)
        except Exception:  # a module that cannot be copied is traced without examples
            self.example_module = None

    def create_proxy(
        self,
        kind: str,
        target: Any,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        name: str | None = None,
        type_expr: Any | None = None,
        proxy_factory_fn: Callable[[fx.Node], fx.Proxy] | None = None,
    ) -> fx.Proxy:
        proxy = super().create_proxy(kind, target, args, kwargs, name, type_expr, proxy_factory_fn)
        node = proxy.node
        known, value = self._example(kind, target, node.args, node.kwargs)
        if known:
            node.meta[_EXAMPLE] = value
            static = _provenance(node, value)
            if static is not None:
                node.meta[_STATIC] = static
        return proxy

    def _example(self, kind: str, target: Any, args: tuple, kwargs: dict) -> tuple[bool, Any]:
        """(whether it could be computed, the value) of a node on the example inputs."""
        if kind == "placeholder":
            index, self.placeholders = self.placeholders, self.placeholders + 1
            if index < len(self.examples):
                return True, self.examples[index]
            return True, args[0] if args else None  # an argument at its default
        self.running_examples = True
        try:
            args, kwargs = fx.node.map_aggregate((args, kwargs), _example_value)
            with torch.no_grad():
                return True, self._run(kind, target, args, kwargs)
        except Exception:  # e.g. a value the examples lack; such a node never decides a branch
            return False, None
        finally:
            self.running_examples = False

    def _run(self, kind: str, target: Any, args: tuple, kwargs: dict) -> Any:
        if kind == "call_function":
            return target(*args, **kwargs)
        if kind == "call_method":
            return getattr(args[0], target)(*args[1:], **kwargs)
        if self.example_module is None:
            raise LookupError("the module could not be copied")
        if kind == "call_module":
            return self.example_module.get_submodule(target)(*args, **kwargs)
        if kind == "get_attr":
            return operator.attrgetter(target)(self.example_module)
        raise LookupError(f"no example for a {kind} node")

    def call_module(
        self, m: nn.Module, forward: Callable[..., Any], args: tuple, kwargs: dict
    ) -> Any:
        if self.running_examples:  # the copy's modules, run as they are
            return forward(*args, **kwargs)
        return super().call_module(m, forward, args, kwargs)

    def getattr(self, attr: str, attr_val: Any, parameter_proxy_cache: dict[str, Any]) -> Any:
        if self.running_examples:
            return attr_val
        return super().getattr(attr, attr_val, parameter_proxy_cache)

    def to_bool(self, obj: fx.Proxy) -> bool:
        static = static_of(obj.node)
        if static is None:
            raise fx.proxy.TraceError("the branch depends on the values of a tensor")
        if static is not Static.FREE:
            raise fx.proxy.TraceError("the branch depends on the batch size, which gx leaves open")
        return bool(example_of(obj.node))

    def iter(self, obj: fx.Proxy) -> Iterator:
        if static_of(obj.node) is None:
            return super().iter(obj)
        items = range(len(example_of(obj.node)))
        return iter(
            [self.create_proxy("call_function", operator.getitem, (obj, i), {}) for i in items]
        )


def _example_value(argument: Any) -> Any:
    if isinstance(argument, fx.Node):
        if _EXAMPLE not in argument.meta:
            raise LookupError(f"no example value for {argument.name}")
        return argument.meta[_EXAMPLE]
    return argument


def _provenance(node: fx.Node, value: Any) -> Static | None:
    """How static a new node's ``value`` is, from what it reads."""
    if node.op == "placeholder":
        return None if isinstance(value, torch.Tensor) else Static.FREE
    if node.op == "call_method" and node.target == "size":
        dims = [*node.args[1:], *node.kwargs.values()]
        if not dims:
            return Static.SIZES
        rank = _example_value(node.args[0]).dim()
        return Static.BATCH if _example_value(dims[0]) % rank == 0 else Static.FREE
    if node.op == "call_method" and node.target in _METHODS:
        return Static.BATCH if _METHODS[str(node.target)] else Static.FREE
    if node.op == "call_function" and node.target is getattr:
        if node.args[1] == "shape":
            return Static.SIZES
        if node.args[1] in _ATTRIBUTES:
            return Static.FREE
    if isinstance(value, torch.Tensor) or node.op in ("call_module", "get_attr"):
        return None
    sources = [static_of(source) for source in node.all_input_nodes]
    if any(source is None for source in sources):
        return None
    container = node.args[0] if node.args else None
    if node.target is operator.getitem and isinstance(container, fx.Node):
        if static_of(container) is Static.SIZES:
            index = fx.node.map_aggregate(node.args[1], _example_value)
            return _shape_item(len(_example_value(container)), index)
    return Static.FREE if all(s is Static.FREE for s in sources) else Static.BATCH


def _shape_item(rank: int, index: Any) -> Static:
    """``shape[index]``: the batch size at 0, the rest free of it."""
    if isinstance(index, slice):
        return Static.SIZES if 0 in range(rank)[index] else Static.FREE
    if isinstance(index, int):
        return Static.BATCH if index % rank == 0 else Static.FREE
    return Static.BATCH  # an index of another kind may reach the batch size


def drop_unused_properties(graph: fx.Graph) -> None:
    """Remove the static reads that only decided branches: nothing computes with them."""
    for node in reversed(graph.nodes):
        if node.op != "placeholder" and static_of(node) is not None and not node.users:
            graph.erase_node(node)
