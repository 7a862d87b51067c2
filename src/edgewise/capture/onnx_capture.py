"""Read an ONNX file into the same op graph a PyTorch capture gives, without its weights.

Why this way: every later stage (counts, liveness, simulation, plans) reads ATen ops, so
each ONNX node is rewritten as the ATen ops PyTorch runs for it (`Gemm` with `transB` is
`t` + `addmm`, `MatMul` on a 3-D input is `view` + `mm` + `view`, `Conv` is
`convolution`), with the arguments in ATen's order. One formula per op then serves both
front ends, and a model counts the same whichever way it arrives.

- Weights are never read: the file is loaded without its external data, and an
  initializer's size comes from its declared shape.
- Shapes come from ONNX shape inference after the inputs are bound (`--input-shape`).
  Nodes whose inputs are all known values (shape arithmetic, index tables, masks built
  from `Range`) are computed for real with `onnx.reference`, as a PyTorch capture computes
  Python integers: they add no op, and their results are constants. Inference runs again
  with those values until every shape is known.
- Layout nodes (`Transpose`, `Reshape`, `Slice`, `Squeeze`, ...) are views, as in ATen:
  no bytes move. A node with no ATen equivalent becomes an op of category `other` named
  `onnx.<OpType>`, which the uncounted ledger lists; control flow (`If`, `Loop`, `Scan`)
  is refused with the node named.
- Scopes come from the exporter's record of the module that made a node (the
  `namespace` metadata of `torch.onnx.export(dynamo=True)`) or from node names
  (`/layer1/layer1.0/conv1/Conv`), so `--by layer|block` groups as for a torch capture.
- Initializers: a floating one of rank >= 1 is a parameter, except batch norm's running
  statistics (buffers, as in PyTorch); integer and rank-0 ones (shape constants, the
  exporter's lifted scalars) are constants.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Mapping
from math import prod
from pathlib import Path
from typing import Any

import numpy as np

from edgewise.errors import EdgewiseError
from edgewise.ir.categories import OpCategory, category_of
from edgewise.ir.graph import DTYPE_BYTES, Graph, Op, Tensor, TensorKind, TensorRef

MAX_FOLDED_INPUT = 1 << 16  # a node computed at load time reads at most this many elements
MAX_CONSTANT_ELEMENTS = 4096  # as for a torch capture: constants this small keep values
CONTROL_FLOW = frozenset(("If", "Loop", "Scan", "SequenceMap"))
TWO_GIB = 2**31

# TensorProto.DataType -> torch's dtype name
_DTYPES = {
    1: "float32", 2: "uint8", 3: "int8", 4: "uint16", 5: "int16", 6: "int32", 7: "int64",
    9: "bool", 10: "float16", 11: "float64", 12: "uint32", 13: "uint64", 14: "complex64",
    15: "complex128", 16: "bfloat16", 17: "float8_e4m3fn", 18: "float8_e4m3fnuz",
    19: "float8_e5m2", 20: "float8_e5m2fnuz", 21: "uint4", 22: "int4",
}  # fmt: skip


def is_onnx_path(model: str) -> bool:
    return model.lower().endswith(".onnx")


def parse_input_shapes(specs: list[str] | None) -> dict[str, tuple[int, ...]]:
    """`name=1x3x224x224` (repeatable) -> {name: shape}; a bad one named in one line."""
    shapes: dict[str, tuple[int, ...]] = {}
    for spec in specs or ():
        name, sep, dims = spec.partition("=")
        try:
            shape = tuple(int(d) for d in dims.lower().split("x")) if dims else ()
        except ValueError:
            shape = ()
        if not sep or not name or not shape or min(shape) < 0:
            raise EdgewiseError(
                f"--input-shape expects NAME=DIMS such as pixel_values=1x3x224x224 (got '{spec}')"
            )
        shapes[name] = shape
    return shapes


# --------------------------------------------------------------------------- loading


def _load(path: Path) -> Any:
    try:
        import onnx
        from google.protobuf.message import DecodeError
    except ImportError:
        raise EdgewiseError(
            "reading ONNX files needs the onnx package: pip install 'edgewise[onnx]'"
        ) from None

    if not path.is_file():
        raise EdgewiseError(f"'{path}': no such ONNX file")
    try:
        model = onnx.load(str(path), load_external_data=False)
    except (DecodeError, ValueError, RuntimeError, UnicodeDecodeError) as e:
        raise EdgewiseError(
            f"'{path}' is not a readable ONNX model ({type(e).__name__}: "
            f"{str(e).splitlines()[0] if str(e) else 'malformed protobuf'}); re-export it"
        ) from None
    if not model.graph.node:
        raise EdgewiseError(f"'{path}' has no nodes: nothing to count (is it an ONNX model?)")
    for node in model.graph.node:
        if node.op_type in CONTROL_FLOW:
            raise EdgewiseError(
                f"'{path}': node '{node.name or node.output[0]}' is {node.op_type} (control "
                "flow), which edgewise does not count; export one straight-line path (a "
                "traced torch.onnx.export resolves the branch)"
            )
    return model


def _bind_inputs(model: Any, path: Path, shapes: Mapping[str, tuple[int, ...]]) -> None:
    """Give every graph input static dims: from `shapes`, else refuse with the fix."""
    initializers = {i.name for i in model.graph.initializer}
    inputs = [i for i in model.graph.input if i.name not in initializers]
    names = [i.name for i in inputs]
    for name in shapes:
        if name not in names:
            raise EdgewiseError(
                f"--input-shape: '{path}' has no input '{name}' (its inputs: {', '.join(names)})"
            )
    for value in inputs:
        dims = value.type.tensor_type.shape.dim
        if value.name in shapes:
            shape = shapes[value.name]
            if len(shape) != len(dims):
                raise EdgewiseError(
                    f"--input-shape {value.name}: {len(shape)} dims given, the model's input "
                    f"has {len(dims)}"
                )
            for dim, size in zip(dims, shape, strict=True):
                if dim.HasField("dim_value") and dim.dim_value != size:
                    raise EdgewiseError(
                        f"--input-shape {value.name}: dim {size} where the model fixes "
                        f"{dim.dim_value}"
                    )
                dim.Clear()
                dim.dim_value = size
        free = [d.dim_param or "?" for d in dims if not d.HasField("dim_value")]
        if free:
            example = "x".join(str(d.dim_value) if d.HasField("dim_value") else "N" for d in dims)
            raise EdgewiseError(
                f"'{path}': input '{value.name}' has symbolic dims ({', '.join(free)}); "
                f"bind them with --input-shape {value.name}={example}"
            )


def _infer(model: Any) -> Any:
    import onnx

    try:
        if model.ByteSize() < TWO_GIB:
            return onnx.shape_inference.infer_shapes(model, data_prop=True)
        with tempfile.TemporaryDirectory() as tmp:  # too big for one protobuf in memory
            src, dst = Path(tmp, "in.onnx"), Path(tmp, "out.onnx")
            onnx.save(model, str(src))
            onnx.shape_inference.infer_shapes_path(str(src), str(dst), data_prop=True)
            return onnx.load(str(dst), load_external_data=False)
    except Exception as e:
        raise EdgewiseError(
            f"ONNX shape inference failed: {type(e).__name__}: {str(e).splitlines()[0]}"
        ) from None


def _value_types(model: Any) -> dict[str, tuple[tuple[int, ...] | None, str]]:
    """Every value's (static shape or None, dtype) after inference."""
    out: dict[str, tuple[tuple[int, ...] | None, str]] = {}
    g = model.graph
    for v in (*g.input, *g.value_info, *g.output):
        t = v.type.tensor_type
        dtype = _DTYPES.get(t.elem_type, "float32")
        shape: tuple[int, ...] | None = None
        if t.HasField("shape"):
            dims = t.shape.dim
            if all(d.HasField("dim_value") for d in dims):
                shape = tuple(int(d.dim_value) for d in dims)
        if v.name not in out or out[v.name][0] is None:
            out[v.name] = (shape, dtype)
    for init in g.initializer:
        out[init.name] = (tuple(int(d) for d in init.dims), _DTYPES.get(init.data_type, "float32"))
    return out


def _is_weight(dtype: str, shape: tuple[int, ...]) -> bool:
    """A floating initializer of rank >= 1 is a weight (the rest are shape constants and
    the exporter's lifted scalars)."""
    return dtype.startswith(("float", "bfloat")) and bool(shape)


def _initializer_value(init: Any) -> np.ndarray | None:
    """A constant initializer's values (weights are never read, even when stored inline:
    they are what the model computes with, not what shapes it)."""
    from onnx import numpy_helper

    external = init.data_location == 1  # TensorProto.EXTERNAL: never read
    weight = _is_weight(_DTYPES.get(init.data_type, "float32"), tuple(init.dims))
    if external or weight or prod(init.dims) > MAX_FOLDED_INPUT:
        return None
    try:
        return numpy_helper.to_array(init)
    except Exception:
        return None


def _evaluate(node: Any, opsets: Any, inputs: list[np.ndarray]) -> list[np.ndarray] | None:
    """Run one node on known values with ONNX's reference runtime; None if it cannot."""
    from onnx import helper
    from onnx.reference import ReferenceEvaluator

    feeds = {n: v for n, v in zip(node.input, inputs, strict=True) if n}
    try:
        graph = helper.make_graph(
            [node], "fold",
            [helper.make_tensor_value_info(n, helper.np_dtype_to_tensor_dtype(v.dtype), None)
             for n, v in feeds.items()],
            [helper.make_tensor_value_info(o, 0, None) for o in node.output if o],
        )  # fmt: skip
        model = helper.make_model(graph, opset_imports=opsets)
        return list(ReferenceEvaluator(model).run(None, feeds))
    except Exception:
        return None


def _numpy_dtype(dtype: str) -> Any:
    return np.dtype({"bfloat16": "float32", "bool": "bool"}.get(dtype, dtype))


def _shape_value(node: Any, shape: tuple[int, ...]) -> np.ndarray:
    attrs = {a.name: a.i for a in node.attribute}
    start, end = attrs.get("start", 0), attrs.get("end", len(shape))
    return np.array(shape[slice(start, end)], dtype=np.int64)


def _fold(model: Any, path: Path) -> tuple[Any, dict[str, np.ndarray], set[str]]:
    """Shape inference and load-time evaluation, repeated until they agree: the model with
    computed nodes replaced by initializers, every value known, and which were computed."""
    from onnx import numpy_helper

    values: dict[str, np.ndarray] = {}
    computed: set[str] = set()
    for init in model.graph.initializer:
        v = _initializer_value(init)
        if v is not None:
            values[init.name] = v
    for _ in range(16):
        inferred = _infer(model)
        types = _value_types(inferred)
        folded: set[int] = set()
        for i, node in enumerate(model.graph.node):
            if node.domain not in ("", "ai.onnx") or node.op_type in CONTROL_FLOW:
                continue
            ins = [values.get(n) if n else np.zeros(0) for n in node.input]
            result: list[np.ndarray] | None = None
            if node.op_type in ("Shape", "Size"):
                shape = types.get(node.input[0], (None, ""))[0]
                if shape is not None:
                    result = [
                        _shape_value(node, shape)
                        if node.op_type == "Shape"
                        else np.array(prod(shape), dtype=np.int64)
                    ]
            elif node.op_type == "CastLike" and ins[0] is not None:  # the donor gives a dtype
                dtype = types.get(node.input[1], (None, "float32"))[1]
                result = [ins[0].astype(_numpy_dtype(dtype))]
            elif all(v is not None and v.size <= MAX_FOLDED_INPUT for v in ins):
                result = _evaluate(node, model.opset_import, ins)  # type: ignore[arg-type]
            if result is not None:
                values.update((o, np.asarray(r)) for o, r in zip(node.output, result, strict=False))
                folded.add(i)
        if not folded:
            return inferred, values, computed
        # the computed nodes become initializers, so inference reads their values
        kept = [n for i, n in enumerate(model.graph.node) if i not in folded]
        made = {o for i in folded for o in model.graph.node[i].output}
        computed |= made
        needed = {n for node in kept for n in node.input} | {o.name for o in model.graph.output}
        del model.graph.node[:]
        model.graph.node.extend(kept)
        model.graph.initializer.extend(
            numpy_helper.from_array(values[o], o) for o in sorted(made & needed)
        )
    raise EdgewiseError(f"'{path}': shapes did not settle after 16 rounds of inference")


# --------------------------------------------------------------------------- scopes


def _scope(node: Any) -> tuple[str, str]:
    """(module path, module type) of the module that made `node`."""
    for prop in node.metadata_props:
        if prop.key == "namespace":  # ": pkg.Model/layer1: torch.nn...Sequential/relu: aten..."
            scope, kind = "", ""
            for part in prop.value.split("/")[1:]:
                name, _, module_type = part.partition(": ")
                if not module_type.startswith("aten."):
                    scope, kind = name, module_type
            return scope, kind
    if node.name.startswith("/"):  # "/layer1/layer1.0/conv1/Conv" (TorchScript exporter)
        scope = ""
        for part in node.name.strip("/").split("/")[:-1]:
            scope = (
                part if (scope and part.startswith(scope + ".")) or not scope else f"{scope}.{part}"
            )
        return scope, ""
    return "", ""


# --------------------------------------------------------------------------- the builder


class _Builder:
    """Turns nodes into ATen ops: tensor records made as they are first named."""

    def __init__(
        self, model: Any, values: dict[str, np.ndarray], computed: set[str], path: Path
    ) -> None:
        self.path = path
        g = model.graph
        self.types = _value_types(model)
        self.values = values
        self.initializers = {i.name: i for i in g.initializer}
        self.graph_inputs = [i.name for i in g.input if i.name not in self.initializers]
        self.running_stats = {n for node in g.node if node.op_type == "BatchNormalization"
                              for n in node.input[3:5]}  # fmt: skip
        self.folded = computed
        self.ids: dict[str, int] = {}
        self.sequences: dict[str, list[TensorRef]] = {}  # sequence value -> its tensors
        self.tensors: dict[int, Tensor] = {}
        self.ops: list[Op] = []
        self.constants: dict[int, tuple[Any, ...]] = {}
        self.scope, self.scopes = "", {"": "onnx"}
        self.node_name = ""

    # --- tensors ---
    def _record(
        self,
        shape: tuple[int, ...],
        dtype: str,
        kind: TensorKind,
        name: str = "",
        view_of: int | None = None,
    ) -> int:
        tid = len(self.tensors)
        nbytes = int(prod(shape) * DTYPE_BYTES.get(dtype, 4))
        if view_of is not None:
            base = self.tensors[view_of]
            storage, storage_bytes = base.storage_id, base.storage_bytes
        else:
            storage, storage_bytes = tid, nbytes
        producer = len(self.ops) if kind is TensorKind.ACTIVATION else None
        self.tensors[tid] = Tensor(
            id=tid,
            shape=shape,
            dtype=dtype,
            kind=kind,
            storage_id=storage,
            storage_bytes=storage_bytes,
            producer=producer,
            name=name,
        )
        return tid

    def shape(self, name: str) -> tuple[int, ...]:
        shape = self.types.get(name, (None, ""))[0]
        if shape is None:
            raise EdgewiseError(
                f"'{self.path}': shape inference left the shape of '{name}' unknown (node "
                f"'{self.node_name}'); export with static shapes or bind --input-shape"
            )
        return shape

    def dtype(self, name: str) -> str:
        return self.types.get(name, (None, "float32"))[1]

    def ref(self, name: str) -> TensorRef | None:
        """The tensor behind an input name (None for an omitted optional input)."""
        if not name:
            return None
        if name not in self.ids:
            shape, dtype = self.shape(name), self.dtype(name)
            if name in self.initializers and name not in self.folded:
                kind = (TensorKind.CONSTANT if not _is_weight(dtype, shape)
                        else TensorKind.BUFFER if name in self.running_stats
                        else TensorKind.PARAMETER)  # fmt: skip
            elif name in self.graph_inputs:
                kind = TensorKind.INPUT
            else:
                kind = TensorKind.CONSTANT  # a Constant node's value, or computed at load
            tid = self._record(shape, dtype, kind, name=name)
            value = self.values.get(name)
            if (
                kind is TensorKind.CONSTANT
                and value is not None
                and value.size <= MAX_CONSTANT_ELEMENTS
            ):
                self.constants[tid] = tuple(value.flatten().tolist())
            self.ids[name] = tid
        return TensorRef(self.ids[name])

    def new(
        self, shape: tuple[int, ...], dtype: str, view_of: TensorRef | None = None
    ) -> TensorRef:
        """An intermediate tensor made by one of a node's ATen ops."""
        view = view_of.id if view_of is not None else None
        return TensorRef(self._record(tuple(shape), dtype, TensorKind.ACTIVATION, view_of=view))

    def out(self, name: str, view_of: TensorRef | None = None) -> TensorRef:
        """A node output, recorded as the output of the op about to be emitted."""
        ref = self.new(self.shape(name), self.dtype(name), view_of)
        self.ids[name] = ref.id
        return ref

    def value(self, name: str) -> np.ndarray | None:
        return self.values.get(name) if name else None

    def ints(self, name: str) -> list[int] | None:
        v = self.value(name)
        return None if v is None else [int(x) for x in v.flatten()]

    # --- ops ---
    def emit(
        self,
        aten: str,
        args: tuple[Any, ...],
        outputs: tuple[TensorRef, ...],
        kwargs: dict[str, Any] | None = None,
        category: OpCategory | None = None,
    ) -> None:
        inputs = tuple(_refs(args) + _refs(tuple((kwargs or {}).values())))
        target = aten if aten.startswith("onnx.") else f"aten.{aten}.default"
        index = len(self.ops)
        self.ops.append(
            Op(
                index=index,
                target=target,
                inputs=inputs,
                outputs=tuple(o.id for o in outputs),
                args=args,
                kwargs=kwargs or {},
                scope=self.scope,
                category=category or category_of(aten),
            )
        )

    def view(self, x: TensorRef, shape: tuple[int, ...], aten: str = "view") -> TensorRef:
        """A view of `x` with `shape`: `view(x, shape)`, or `t(x)` (no shape argument)."""
        out = self.new(shape, self.tensors[x.id].dtype, view_of=x)
        self.emit(aten, (x,) if aten == "t" else (x, list(shape)), (out,))
        return out


def _refs(values: tuple[Any, ...]) -> list[int]:
    found: list[int] = []
    for v in values:
        if isinstance(v, TensorRef):
            found.append(v.id)
        elif isinstance(v, tuple | list):
            found += _refs(tuple(v))
    return found


# --------------------------------------------------------------------------- node rules

Rule = Callable[[_Builder, Any, dict[str, Any]], None]
RULES: dict[str, Rule] = {}


def rule(*op_types: str) -> Callable[[Rule], Rule]:
    def wrap(fn: Rule) -> Rule:
        for op_type in op_types:
            RULES[op_type] = fn
        return fn

    return wrap


def _attrs(node: Any) -> dict[str, Any]:
    from onnx import helper

    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


ELEMENTWISE = {
    "Add": "add", "Sub": "sub", "Mul": "mul", "Div": "div", "Pow": "pow", "Sqrt": "sqrt",
    "Reciprocal": "reciprocal", "Exp": "exp", "Log": "log", "Tanh": "tanh",
    "Sigmoid": "sigmoid", "Relu": "relu", "Erf": "erf", "Abs": "abs", "Neg": "neg",
    "Sin": "sin", "Cos": "cos", "Floor": "floor", "Ceil": "ceil", "Round": "round",
    "Sign": "sign", "Equal": "eq", "Less": "lt", "LessOrEqual": "le", "Greater": "gt",
    "GreaterOrEqual": "ge", "Not": "logical_not", "And": "logical_and", "Or": "logical_or",
    "Xor": "logical_xor", "Where": "where", "Clip": "clamp", "LeakyRelu": "leaky_relu",
    "PRelu": "prelu", "HardSigmoid": "hardsigmoid", "HardSwish": "hardswish",
    "Softplus": "softplus", "Elu": "elu", "Selu": "elu", "Mish": "mish", "Mod": "remainder",
    "Max": "maximum", "Min": "minimum", "Cast": "_to_copy", "CastLike": "_to_copy",
    "Trilu": "triu", "IsNaN": "isnan", "IsInf": "isinf",
}  # fmt: skip


@rule(*ELEMENTWISE)
def _elementwise(b: _Builder, node: Any, attrs: dict[str, Any]) -> None:
    """Variadic Max/Min/Sum as a chain of binary ops; the result is broadcast."""
    aten = ELEMENTWISE[node.op_type]
    if node.op_type == "Trilu" and not attrs.get("upper", 1):
        aten = "tril"
    ins = [b.ref(n) for n in node.input if n]
    if node.op_type in ("Clip", "Trilu", "CastLike"):
        ins = ins[:1]  # bounds, the diagonal, the dtype donor: arguments, not operands
    acc = ins[0]
    for i, other in enumerate(ins[1:-1] if len(ins) > 2 else (), start=1):
        shape = np.broadcast_shapes(b.tensors[acc.id].shape, b.tensors[other.id].shape)  # type: ignore[union-attr]
        nxt = b.new(tuple(shape), b.dtype(node.output[0]))
        b.emit(aten, (acc, other), (nxt,))
        acc = nxt
        ins = [acc, *ins[i + 1 :]]
    b.emit(aten, tuple(ins), (b.out(node.output[0]),))


@rule("Sum", "Mean")
def _sum(b: _Builder, node: Any, attrs: dict[str, Any]) -> None:
    ins = [b.ref(n) for n in node.input if n]
    acc = ins[0]
    for i, other in enumerate(ins[1:]):
        last = i == len(ins) - 2 and node.op_type == "Sum"
        nxt = (
            b.out(node.output[0])
            if last
            else b.new(b.shape(node.output[0]), b.dtype(node.output[0]))
        )
        b.emit("add", (acc, other), (nxt,))
        acc = nxt
    if node.op_type == "Mean":
        b.emit("div", (acc, len(ins)), (b.out(node.output[0]),))


@rule("Gelu")
def _gelu(b: _Builder, node: Any, attrs: dict[str, Any]) -> None:
    approximate = attrs.get("approximate", b"none")
    approximate = approximate.decode() if isinstance(approximate, bytes) else approximate
    b.emit("gelu", (b.ref(node.input[0]),), (b.out(node.output[0]),), {"approximate": approximate})


def _axes(b: _Builder, node: Any, attrs: dict[str, Any], rank: int) -> list[int] | None:
    axes = attrs.get("axes")
    if axes is None and len(node.input) > 1 and node.input[1]:
        axes = b.ints(node.input[1])
    return None if axes is None else [a % rank for a in axes]


REDUCTIONS = {
    "ReduceSum": "sum", "ReduceMean": "mean", "ReduceMax": "amax", "ReduceMin": "amin",
    "ReduceProd": "prod", "ReduceL2": "linalg_vector_norm", "ReduceLogSumExp": "logsumexp",
    "ArgMax": "argmax", "ArgMin": "argmin",
}  # fmt: skip


@rule(*REDUCTIONS)
def _reduce(b: _Builder, node: Any, attrs: dict[str, Any]) -> None:
    x = b.ref(node.input[0])
    rank = len(b.shape(node.input[0]))
    if node.op_type.startswith("Arg"):
        dims: list[int] | None = [attrs.get("axis", 0) % max(rank, 1)]
    else:
        dims = _axes(b, node, attrs, rank)
        if dims is None or (not dims and attrs.get("noop_with_empty_axes")):
            dims = list(range(rank)) if not attrs.get("noop_with_empty_axes") else []
    b.emit(REDUCTIONS[node.op_type], (x, dims, bool(attrs.get("keepdims", 1))),
           (b.out(node.output[0]),))  # fmt: skip


@rule("GlobalAveragePool", "GlobalMaxPool")
def _global_pool(b: _Builder, node: Any, attrs: dict[str, Any]) -> None:
    rank = len(b.shape(node.input[0]))
    aten = "mean" if node.op_type == "GlobalAveragePool" else "amax"
    b.emit(aten, (b.ref(node.input[0]), list(range(2, rank)), True), (b.out(node.output[0]),))


@rule("Softmax", "LogSoftmax")
def _softmax(b: _Builder, node: Any, attrs: dict[str, Any]) -> None:
    aten = "_softmax" if node.op_type == "Softmax" else "_log_softmax"
    b.emit(aten, (b.ref(node.input[0]), attrs.get("axis", -1), False), (b.out(node.output[0]),))


@rule("CumSum")
def _cumsum(b: _Builder, node: Any, attrs: dict[str, Any]) -> None:
    axis = b.ints(node.input[1])
    b.emit("cumsum", (b.ref(node.input[0]), axis[0] if axis else 0), (b.out(node.output[0]),))


# --- matrix products ---


@rule("MatMul")
def _matmul(b: _Builder, node: Any, attrs: dict[str, Any]) -> None:
    """As ATen's matmul decomposes: a 2-D right operand is one `mm` over the flattened
    leading dims; equal batch dims are one `bmm`; anything else counts as `matmul`."""
    a, w = b.ref(node.input[0]), b.ref(node.input[1])
    sa, sw, so = b.shape(node.input[0]), b.shape(node.input[1]), b.shape(node.output[0])
    dtype = b.dtype(node.output[0])
    if len(sa) >= 2 and len(sw) == 2:
        flat = b.view(a, (prod(sa[:-1]), sa[-1])) if len(sa) > 2 else a  # type: ignore[arg-type]
        if len(sa) == 2:
            b.emit("mm", (flat, w), (b.out(node.output[0]),))
            return
        out = b.new((prod(sa[:-1]), sw[-1]), dtype)
        b.emit("mm", (flat, w), (out,))
        b.emit("_unsafe_view", (out, list(so)), (b.out(node.output[0], view_of=out),))
        return
    if len(sa) >= 3 and len(sw) >= 3 and sa[:-2] == sw[:-2]:
        batch = prod(sa[:-2])
        a3 = b.view(a, (batch, *sa[-2:])) if len(sa) > 3 else a  # type: ignore[arg-type]
        w3 = b.view(w, (batch, *sw[-2:])) if len(sw) > 3 else w  # type: ignore[arg-type]
        if len(sa) == 3:
            b.emit("bmm", (a3, w3), (b.out(node.output[0]),))
            return
        out = b.new((batch, sa[-2], sw[-1]), dtype)
        b.emit("bmm", (a3, w3), (out,))
        b.emit("_unsafe_view", (out, list(so)), (b.out(node.output[0], view_of=out),))
        return
    b.emit("matmul", (a, w), (b.out(node.output[0]),))


@rule("Gemm")
def _gemm(b: _Builder, node: Any, attrs: dict[str, Any]) -> None:
    """alpha * A' @ B' + beta * C, with A' and B' transposed views (`t`, as for Linear)."""
    a, w = b.ref(node.input[0]), b.ref(node.input[1])
    if attrs.get("transA"):
        m, k = b.shape(node.input[0])
        a = b.view(a, (k, m), "t")  # type: ignore[arg-type]
    if attrs.get("transB"):
        n, k = b.shape(node.input[1])
        w = b.view(w, (k, n), "t")  # type: ignore[arg-type]
    alpha, beta = attrs.get("alpha", 1.0), attrs.get("beta", 1.0)
    scale = {} if alpha == 1 and beta == 1 else {"alpha": alpha, "beta": beta}
    out = b.out(node.output[0])
    if len(node.input) > 2 and node.input[2]:
        b.emit("addmm", (b.ref(node.input[2]), a, w), (out,), scale)
    else:
        b.emit("mm", (a, w), (out,), {"alpha": alpha} if alpha != 1 else {})


@rule("Einsum")
def _einsum(b: _Builder, node: Any, attrs: dict[str, Any]) -> None:
    equation = attrs["equation"]
    equation = equation.decode() if isinstance(equation, bytes) else equation
    b.emit("einsum", (equation, tuple(b.ref(n) for n in node.input)), (b.out(node.output[0]),))


# --- convolution and pooling ---


def _spatial(attrs: dict[str, Any], key: str, dims: int, default: int) -> list[int]:
    return list(attrs.get(key) or [default] * dims)


@rule("Conv", "ConvTranspose")
def _conv(b: _Builder, node: Any, attrs: dict[str, Any]) -> None:
    """convolution(input, weight, bias, stride, padding, dilation, transposed,
    output_padding, groups); ONNX's begin pads stand for both sides (the output shape,
    which the count reads, already has the real padding in it)."""
    dims = len(b.shape(node.input[1])) - 2
    transposed = node.op_type == "ConvTranspose"
    bias_name = node.input[2] if len(node.input) > 2 else ""
    known = b.value(bias_name)
    zero = known is not None and not known.any()  # an exporter's zero bias: nothing to add
    bias = None if zero else b.ref(bias_name)
    args = (b.ref(node.input[0]), b.ref(node.input[1]), bias,
            _spatial(attrs, "strides", dims, 1), _spatial(attrs, "pads", dims, 0)[:dims],
            _spatial(attrs, "dilations", dims, 1), transposed,
            _spatial(attrs, "output_padding", dims, 0), attrs.get("group", 1))  # fmt: skip
    b.emit("convolution", args, (b.out(node.output[0]),))


@rule("MaxPool", "AveragePool")
def _pool(b: _Builder, node: Any, attrs: dict[str, Any]) -> None:
    kernel = list(attrs["kernel_shape"])
    dims = len(kernel)
    stride = _spatial(attrs, "strides", dims, 1)
    padding = _spatial(attrs, "pads", dims, 0)[:dims]
    ceil = bool(attrs.get("ceil_mode", 0))
    x = b.ref(node.input[0])
    outs = (b.out(node.output[0]),)
    if node.op_type == "MaxPool":
        dilation = _spatial(attrs, "dilations", dims, 1)
        b.emit(f"max_pool{dims}d", (x, kernel, stride, padding, dilation, ceil), outs)
    else:
        include = bool(attrs.get("count_include_pad", 0))
        b.emit(f"avg_pool{dims}d", (x, kernel, stride, padding, ceil, include), outs)


# --- normalization ---


@rule("BatchNormalization")
def _batch_norm(b: _Builder, node: Any, attrs: dict[str, Any]) -> None:
    x, w, bias, mean, var = (b.ref(n) for n in node.input[:5])
    args = (x, w, bias, mean, var, attrs.get("momentum", 0.9), attrs.get("epsilon", 1e-5))
    b.emit("_native_batch_norm_legit_no_training", args, (b.out(node.output[0]),))


@rule("InstanceNormalization")
def _instance_norm(b: _Builder, node: Any, attrs: dict[str, Any]) -> None:
    """As PyTorch runs it: batch norm with statistics from the input."""
    x, w, bias = (b.ref(n) for n in node.input[:3])
    args = (x, w, bias, None, None, True, 0.1, attrs.get("epsilon", 1e-5))
    b.emit("native_batch_norm", args, (b.out(node.output[0]),))


@rule("LayerNormalization")
def _layer_norm(b: _Builder, node: Any, attrs: dict[str, Any]) -> None:
    shape = b.shape(node.input[0])
    axis = attrs.get("axis", -1) % len(shape)
    w = b.ref(node.input[1])
    bias = b.ref(node.input[2]) if len(node.input) > 2 else None
    outs = tuple(b.out(o) for o in node.output if o)
    args = (b.ref(node.input[0]), list(shape[axis:]), w, bias, attrs.get("epsilon", 1e-5))
    b.emit("native_layer_norm", args, outs)


@rule("GroupNormalization")
def _group_norm(b: _Builder, node: Any, attrs: dict[str, Any]) -> None:
    shape = b.shape(node.input[0])
    w, bias = b.ref(node.input[1]), b.ref(node.input[2])
    args = (b.ref(node.input[0]), w, bias, shape[0], shape[1], prod(shape[2:]),
            attrs["num_groups"], attrs.get("epsilon", 1e-5))  # fmt: skip
    b.emit("native_group_norm", args, (b.out(node.output[0]),))


@rule("RMSNormalization", "SimplifiedLayerNormalization")
def _rms_norm(b: _Builder, node: Any, attrs: dict[str, Any]) -> None:
    shape = b.shape(node.input[0])
    axis = attrs.get("axis", -1) % len(shape)
    args = (b.ref(node.input[0]), list(shape[axis:]), b.ref(node.input[1]), attrs.get("epsilon"))
    b.emit("rms_norm", args, (b.out(node.output[0]),))


# --- attention ---


@rule("Attention")
def _attention(b: _Builder, node: Any, attrs: dict[str, Any]) -> None:
    """Opset 23 Attention on 4-D [batch, heads, tokens, head dim] Q, K, V: the fused SDPA."""
    if node.domain not in ("", "ai.onnx") or len(b.shape(node.input[0])) != 4:
        _unknown(b, node, attrs)
        return
    q, k, v = (b.ref(n) for n in node.input[:3])
    mask = b.ref(node.input[3]) if len(node.input) > 3 and node.input[3] else None
    outs = (b.out(node.output[0]),)
    b.emit("scaled_dot_product_attention", (q, k, v, mask), outs,
           {"is_causal": bool(attrs.get("is_causal", 0))})  # fmt: skip


# --- data movement ---


@rule("Concat")
def _concat(b: _Builder, node: Any, attrs: dict[str, Any]) -> None:
    ins = tuple(b.ref(n) for n in node.input if n and prod(b.shape(n)) > 0)
    b.emit("cat", (ins, attrs.get("axis", 0)), (b.out(node.output[0]),))


@rule("Pad")
def _pad(b: _Builder, node: Any, attrs: dict[str, Any]) -> None:
    mode = attrs.get("mode", b"constant")
    mode = mode.decode() if isinstance(mode, bytes) else mode
    aten = {"reflect": "reflection_pad2d", "edge": "replication_pad2d"}.get(mode, "constant_pad_nd")
    pads = attrs.get("pads") or b.ints(node.input[1]) or []
    b.emit(aten, (b.ref(node.input[0]), list(pads)), (b.out(node.output[0]),))


@rule("Resize", "Upsample")
def _resize(b: _Builder, node: Any, attrs: dict[str, Any]) -> None:
    mode = attrs.get("mode", b"nearest")
    mode = mode.decode() if isinstance(mode, bytes) else mode
    out_shape = b.shape(node.output[0])
    dims = len(out_shape) - 2
    names = {"nearest": ("upsample_nearest1d", "upsample_nearest2d", "upsample_nearest3d"),
             "linear": ("upsample_linear1d", "upsample_bilinear2d", "upsample_trilinear3d"),
             "cubic": ("upsample_bicubic2d",) * 3}  # fmt: skip
    if mode not in names or not 1 <= dims <= 3:
        _unknown(b, node, attrs)
        return
    aten = names[mode][dims - 1]
    b.emit(aten, (b.ref(node.input[0]), list(out_shape[2:])), (b.out(node.output[0]),))


MOVES = {"Tile": "tile", "DepthToSpace": "pixel_shuffle", "SpaceToDepth": "pixel_unshuffle",
         "ScatterND": "index_put", "ScatterElements": "scatter", "GatherElements": "gather",
         "GatherND": "index", "Expand": "expand"}  # fmt: skip


@rule(*MOVES)
def _moves(b: _Builder, node: Any, attrs: dict[str, Any]) -> None:
    """Data-moving nodes: the tensor operands in order (index tensors included)."""
    aten = MOVES[node.op_type]
    x = b.ref(node.input[0])
    if aten == "expand":  # a broadcast view, as in ATen
        b.emit(aten, (x, list(b.shape(node.output[0]))), (b.out(node.output[0], view_of=x),))
        return
    operands = tuple(b.ref(n) for n in node.input[1:] if n and b.value(n) is None)
    b.emit(aten, (x, *operands), (b.out(node.output[0]),))


@rule("Gather")
def _gather(b: _Builder, node: Any, attrs: dict[str, Any]) -> None:
    """A known scalar index is `select` (a view); a tensor of indices is `index_select`
    (an embedding lookup reads only the rows it writes)."""
    x, index = b.ref(node.input[0]), node.input[1]
    axis = attrs.get("axis", 0)
    known = b.value(index)
    if known is not None and known.ndim == 0:
        b.emit("select", (x, axis, int(known)), (b.out(node.output[0], view_of=x),))
        return
    b.emit("index_select", (x, axis, b.ref(index)), (b.out(node.output[0]),))


VIEWS = {"Reshape": "view", "Flatten": "flatten", "Squeeze": "squeeze",
         "Unsqueeze": "unsqueeze", "Transpose": "permute", "Identity": "alias",
         "Dropout": "alias", "Slice": "slice"}  # fmt: skip


@rule(*VIEWS)
def _view(b: _Builder, node: Any, attrs: dict[str, Any]) -> None:
    """Layout nodes are views, as in ATen: the output shares the input's storage."""
    x = b.ref(node.input[0])
    out_shape = b.shape(node.output[0])
    extra: tuple[Any, ...] = (list(attrs["perm"]),) if "perm" in attrs else (list(out_shape),)
    outs = [b.out(node.output[0], view_of=x)]
    b.emit(VIEWS[node.op_type], (x, *extra), tuple(outs))


@rule("Split")
def _split(b: _Builder, node: Any, attrs: dict[str, Any]) -> None:
    x = b.ref(node.input[0])
    outs = tuple(b.out(o, view_of=x) for o in node.output if o)
    sizes = [b.tensors[o.id].shape[attrs.get("axis", 0)] for o in outs]
    b.emit("split_with_sizes", (x, sizes, attrs.get("axis", 0)), outs)


@rule("SplitToSequence")
def _split_to_sequence(b: _Builder, node: Any, attrs: dict[str, Any]) -> None:
    """A split whose pieces stay a sequence (the unoptimized exporter's `chunk`): views,
    picked out later by `SequenceAt`."""
    x = b.ref(node.input[0])
    shape = b.shape(node.input[0])
    axis = attrs.get("axis", 0) % len(shape)
    given = b.value(node.input[1]) if len(node.input) > 1 else None
    if given is None and len(node.input) > 1 and node.input[1]:  # sizes known only at run
        _unknown(b, node, attrs)
        return
    if given is None:
        split = [1] * shape[axis]
    elif given.ndim == 0:
        size = int(given)
        split = [min(size, shape[axis] - i) for i in range(0, shape[axis], size)]
    else:
        split = [int(v) for v in given]
    keep = attrs.get("keepdims", 1) or len(node.input) > 1
    pieces = []
    for size in split:
        piece = (
            [*shape[:axis], size, *shape[axis + 1 :]]
            if keep
            else [*shape[:axis], *shape[axis + 1 :]]
        )
        pieces.append(b.new(tuple(piece), b.dtype(node.input[0]), view_of=x))
    b.emit("split_with_sizes", (x, split, axis), tuple(pieces))
    b.sequences[node.output[0]] = pieces


@rule("SequenceAt")
def _sequence_at(b: _Builder, node: Any, attrs: dict[str, Any]) -> None:
    position = b.ints(node.input[1])
    pieces = b.sequences.get(node.input[0])
    if pieces is None or position is None:
        _unknown(b, node, attrs)
        return
    b.ids[node.output[0]] = pieces[position[0]].id


FACTORIES = {"ConstantOfShape": "full", "Range": "arange", "RandomNormalLike": "randn_like",
             "RandomUniformLike": "rand_like", "EyeLike": "zeros_like"}  # fmt: skip


@rule(*FACTORIES)
def _factory(b: _Builder, node: Any, attrs: dict[str, Any]) -> None:
    """Factories whose inputs were not known at load (they depend on the input)."""
    b.emit(FACTORIES[node.op_type], (list(b.shape(node.output[0])),), (b.out(node.output[0]),))


def _unknown(b: _Builder, node: Any, attrs: dict[str, Any]) -> None:
    """No ATen equivalent: an op of category other, listed in the uncounted ledger."""
    domain = f".{node.domain}" if node.domain not in ("", "ai.onnx") else ""
    ins = tuple(b.ref(n) for n in node.input if n)
    outs = tuple(b.out(o) for o in node.output if o)
    b.emit(f"onnx.{node.op_type}{domain}", ins, outs, category=OpCategory.OTHER)


# --------------------------------------------------------------------------- capture


def capture_onnx(path: Path, input_shapes: Mapping[str, tuple[int, ...]] | None = None) -> Graph:
    """The op graph of the ONNX model at `path`, its weights never read."""
    model = _load(path)
    _bind_inputs(model, path, input_shapes or {})
    model, values, computed = _fold(model, path)
    b = _Builder(model, values, computed, path)
    for name in b.graph_inputs:
        b.ref(name)
    for node in model.graph.node:
        attrs = _attrs(node)
        b.node_name = node.name or node.output[0]
        scope, module_type = _scope(node)
        b.scope = scope
        parts = scope.split(".") if scope else []
        for depth in range(1, len(parts) + 1):
            prefix = ".".join(parts[:depth])
            if prefix not in b.scopes or (depth == len(parts) and module_type):
                b.scopes[prefix] = module_type if depth == len(parts) else b.scopes.get(prefix, "")
        handler = RULES.get(node.op_type) if node.domain in ("", "ai.onnx") else None
        (handler or _unknown)(b, node, attrs)
    outputs = tuple(b.ids[o.name] for o in model.graph.output if o.name in b.ids)
    tensors = _with_lifetimes(b.tensors, b.ops)
    return Graph(
        model=path.stem,
        ops=tuple(b.ops),
        tensors=tensors,
        outputs=outputs,
        constants=b.constants,
        scopes=b.scopes,
        inputs={n: b.tensors[b.ids[n]].shape for n in b.graph_inputs},
        meta={"source": "onnx"},
    )


def _with_lifetimes(tensors: dict[int, Tensor], ops: list[Op]) -> dict[int, Tensor]:
    """An ONNX runtime frees a value after its last reader: that is its eager lifetime."""
    from msgspec.structs import replace

    last: dict[int, int] = {}
    for op in ops:
        for tid in op.inputs:
            last[tid] = op.index
    return {
        tid: replace(t, released_after=last.get(tid, t.producer if t.producer is not None else 0))
        for tid, t in tensors.items()
    }
