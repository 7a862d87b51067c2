"""Graph <-> JSON, with a versioned schema, so a captured graph can be saved, diffed and
re-analyzed without the model. A graph file is untrusted input: it is parsed strictly (no
NaN, bounded nesting and numbers), checked against the schema below (no bool for a number,
bounded sizes; a plain pass, with pydantic naming the problem when it fails), then checked
for structure (ids resolve, ops in execution order, every input made before it is read).

Schema `edgewise.graph` version 1:
    {"schema": "edgewise.graph", "version": 1, "model": str, "inputs": {name: shape},
     "outputs": [tensor id], "constants": {tensor id: [values, flattened]},
     "meta": {...}, "scopes": {qualified name: module class},
     "tensors": [{"id", "shape", "dtype", "kind", "storage_id", "storage_bytes",
                  "producer", "name", "released_after"}],
     "ops": [{"index", "target", "inputs", "outputs", "args", "kwargs", "scope",
              "category"}]}
Tensor arguments inside `args`/`kwargs` are written as {"tensor": id}; a float that is not
finite (a mask's -inf) as {"float": "-inf"}, so the file stays strict JSON.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Annotated, Any, Literal, NotRequired

import pydantic_core
from pydantic import ConfigDict, Field, TypeAdapter, ValidationError, with_config
from typing_extensions import TypedDict

from edgewise.errors import EdgewiseError
from edgewise.ir.categories import OpCategory
from edgewise.ir.files import MAX_DEPTH, read_bytes, schema_problem, write_atomic
from edgewise.ir.graph import KNOWN_DTYPES, Graph, Op, Tensor, TensorKind, TensorRef, gc_paused

SCHEMA = "edgewise.graph"
VERSION = 1
MAX_FILE_BYTES = 2**31  # 2 GiB: a 10^6-op graph is about 0.5 GB
MAX_DIM = 2**40  # one dimension
MAX_ELEMENTS = 2**48  # one tensor (256 Ti elements): beyond any model, short of overflow
_NONFINITE = {"inf": math.inf, "-inf": -math.inf, "nan": math.nan}
_INT_LIMIT = 2**63
_PLAIN = (str, bool, type(None))  # argument values that need no decoding

Id = Annotated[int, Field(ge=0, lt=2**53)]
Dim = Annotated[int, Field(ge=0, le=MAX_DIM)]
Text = Annotated[str, Field(max_length=4096)]
Shape = Annotated[list[Dim], Field(max_length=64)]


@with_config(ConfigDict(strict=True, extra="forbid"))
class _TensorRecord(TypedDict):
    id: Id
    shape: Shape
    dtype: Literal[KNOWN_DTYPES]  # type: ignore[valid-type]
    kind: Literal[tuple(TensorKind)]  # type: ignore[valid-type]
    storage_id: Id
    storage_bytes: Annotated[int, Field(ge=0, le=MAX_ELEMENTS * 8)]
    producer: Id | None
    name: Text
    released_after: NotRequired[Id | None]


@with_config(ConfigDict(strict=True, extra="forbid"))
class _OpRecord(TypedDict):
    index: Id
    target: Text
    inputs: list[Id]
    outputs: list[Id]
    args: list[Any]
    kwargs: dict[str, Any]
    scope: Text
    category: Literal[tuple(OpCategory)]  # type: ignore[valid-type]


@with_config(ConfigDict(strict=True, extra="forbid"))
class _GraphFile(TypedDict):
    schema: Literal["edgewise.graph"]
    version: int
    model: Text
    inputs: dict[str, Shape]
    outputs: NotRequired[list[Id]]
    constants: NotRequired[dict[str, list[Any]]]
    meta: NotRequired[dict[str, Any]]
    scopes: dict[str, Text]
    tensors: list[_TensorRecord]
    ops: list[_OpRecord]


_FILE = TypeAdapter(_GraphFile)
_KINDS = {k.value: k for k in TensorKind}
_CATEGORIES = {c.value: c for c in OpCategory}


def _encode(value: Any) -> Any:
    if isinstance(value, TensorRef):
        return {"tensor": value.id}
    if isinstance(value, tuple | list):
        return [_encode(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return {"float": str(value)}
    return value


def _decode(value: Any, tensors: dict[int, Tensor]) -> Any:
    """Arguments back to values: tensor references must resolve, numbers be bounded.
    Scalars in a list are handled inline: a million ops carry five million of them."""
    kind = type(value)
    if kind is list:
        out = []
        for item in value:
            item_kind = type(item)
            if (
                (item_kind is int and -_INT_LIMIT <= item <= _INT_LIMIT)
                or (item_kind is float and item - item == 0)  # finite: inf - inf is nan
                or item_kind is str
                or item_kind is bool
                or item is None
            ):
                out.append(item)
            else:
                out.append(_decode(item, tensors))
        return tuple(out)
    if kind is dict:
        if len(value) == 1 and "tensor" in value:
            tid = value["tensor"]
            if type(tid) is not int or tid not in tensors:
                raise EdgewiseError(f"tensor argument {tid!r} is not a tensor of the file")
            return TensorRef(tid)
        if len(value) == 1 and value.get("float") in _NONFINITE:
            return _NONFINITE[value["float"]]
        return {k: _decode(v, tensors) for k, v in value.items()}
    if kind is int and not -_INT_LIMIT <= value <= _INT_LIMIT:
        raise EdgewiseError(f"argument {value} is out of range (|x| ≤ 2^63)")
    if kind is float and not math.isfinite(value):
        raise EdgewiseError(f'argument {value} (write it as {{"float": "inf"}})')
    return value


def graph_to_dict(graph: Graph) -> dict[str, Any]:
    return {
        "schema": SCHEMA,
        "version": VERSION,
        "model": graph.model,
        "inputs": {k: list(v) for k, v in graph.inputs.items()},
        "outputs": list(graph.outputs),
        "constants": {str(k): _encode(list(v)) for k, v in graph.constants.items()},
        "meta": graph.meta,
        "scopes": graph.scopes,
        "tensors": [
            {
                "id": t.id,
                "shape": list(t.shape),
                "dtype": t.dtype,
                "kind": t.kind.value,
                "storage_id": t.storage_id,
                "storage_bytes": t.storage_bytes,
                "producer": t.producer,
                "name": t.name,
                "released_after": t.released_after,
            }
            for t in graph.tensors.values()
        ],
        "ops": [
            {
                "index": op.index,
                "target": op.target,
                "inputs": list(op.inputs),
                "outputs": list(op.outputs),
                "args": _encode(op.args),
                "kwargs": {k: _encode(v) for k, v in op.kwargs.items()},
                "scope": op.scope,
                "category": op.category.value,
            }
            for op in graph.ops
        ],
    }


def graph_json(graph: Graph) -> str:
    """The file `edgewise capture -o` writes: compact, strict JSON."""
    return json.dumps(graph_to_dict(graph), separators=(",", ":"), allow_nan=False)


def graph_from_dict(data: Any) -> Graph:
    """A parsed graph file, checked against the schema and for structure."""
    if not isinstance(data, dict) or data.get("schema") != SCHEMA:
        raise EdgewiseError(f"not an edgewise graph: expected a JSON object with schema '{SCHEMA}'")
    if data.get("version") != VERSION:
        raise EdgewiseError(
            f"graph schema version {data.get('version')!r} is not supported (this edgewise "
            f"reads version {VERSION}); capture the model again"
        )
    if not _well_typed(data):  # pydantic, which is slower, says exactly where and why
        try:
            _FILE.validate_python(data)
        except ValidationError as e:
            raise EdgewiseError(f"does not follow the graph schema: {schema_problem(e)}") from None
        except RecursionError:
            raise EdgewiseError(f"nested deeper than {MAX_DEPTH} levels") from None
        raise EdgewiseError("does not follow the graph schema")  # pragma: no cover
    return _structured(data)  # type: ignore[arg-type]


_TENSOR_KEYS = frozenset(_TensorRecord.__annotations__)
_TENSOR_REQUIRED = _TENSOR_KEYS - {"released_after"}
_OP_KEYS = frozenset(_OpRecord.__annotations__)
_FILE_KEYS = frozenset(_GraphFile.__annotations__)
_FILE_REQUIRED = _FILE_KEYS - {"outputs", "constants", "meta"}
_DTYPES = frozenset(KNOWN_DTYPES)
_MAX_ID, _MAX_TEXT = 2**53, 4096


def _is_id(x: Any) -> bool:
    return type(x) is int and 0 <= x < _MAX_ID


def _is_text(x: Any) -> bool:
    return type(x) is str and len(x) <= _MAX_TEXT


def _is_shape(x: Any) -> bool:
    return type(x) is list and len(x) <= 64 and all(type(d) is int and 0 <= d <= MAX_DIM for d in x)


def _are_ids(ids: list[Any]) -> bool:
    return all(type(i) is int and 0 <= i < _MAX_ID for i in ids)


def _well_typed(data: dict[str, Any]) -> bool:
    """The schema above, checked in one plain pass: what `_FILE` accepts and nothing more
    (a test holds the two together). Fast on the million-op files pydantic takes seconds
    over; on a False, pydantic is asked where the problem is."""
    if not (_FILE_REQUIRED <= data.keys() <= _FILE_KEYS and _is_text(data["model"])):
        return False
    inputs, scopes = data["inputs"], data["scopes"]
    if type(inputs) is not dict or not all(_is_shape(v) for v in inputs.values()):
        return False
    if type(scopes) is not dict or not all(_is_text(v) for v in scopes.values()):
        return False
    outputs = data.get("outputs", [])
    if type(outputs) is not list or not all(_is_id(i) for i in outputs):
        return False
    constants = data.get("constants", {})
    if type(constants) is not dict or not all(type(v) is list for v in constants.values()):
        return False
    if type(data.get("meta", {})) is not dict or type(data["tensors"]) is not list:
        return False
    keys, required, dtypes, kinds, top = _TENSOR_KEYS, _TENSOR_REQUIRED, _DTYPES, _KINDS, _MAX_ID
    for t in data["tensors"]:
        if not (type(t) is dict and required <= t.keys() <= keys):
            return False
        tid, sid, size, made, shape = (
            t["id"],
            t["storage_id"],
            t["storage_bytes"],
            t["producer"],
            t["shape"],
        )
        released = t.get("released_after")
        if not (
            type(tid) is int and 0 <= tid < top and type(sid) is int and 0 <= sid < top
            and type(size) is int and 0 <= size <= MAX_ELEMENTS * 8
            and (made is None or (type(made) is int and 0 <= made < top))
            and (released is None or (type(released) is int and 0 <= released < top))
            and type(shape) is list and len(shape) <= 64 and _is_shape(shape)
            and type(t["dtype"]) is str and t["dtype"] in dtypes
            and type(t["kind"]) is str and t["kind"] in kinds
            and type(t["name"]) is str and len(t["name"]) <= _MAX_TEXT
        ):  # fmt: skip
            return False
    if type(data["ops"]) is not list:
        return False
    op_keys, categories = _OP_KEYS, _CATEGORIES
    for o in data["ops"]:
        if not (type(o) is dict and o.keys() == op_keys):
            return False
        index, inputs, outputs = o["index"], o["inputs"], o["outputs"]
        if not (
            type(index) is int and 0 <= index < top
            and type(inputs) is list and _are_ids(inputs)
            and type(outputs) is list and _are_ids(outputs)
            and type(o["args"]) is list and type(o["kwargs"]) is dict
            and type(o["target"]) is str and len(o["target"]) <= _MAX_TEXT
            and type(o["scope"]) is str and len(o["scope"]) <= _MAX_TEXT
            and type(o["category"]) is str and o["category"] in categories
        ):  # fmt: skip
            return False
    return True


def _structured(data: _GraphFile) -> Graph:
    """Ids resolve, ops run in order and read only what exists by then, sizes bounded.
    One pass over tensors and one over ops; messages are built only on failure."""
    tensors: dict[int, Tensor] = {}
    activation = TensorKind.ACTIVATION
    for i, t in enumerate(data["tensors"]):
        tid, kind, producer = t["id"], _KINDS[t["kind"]], t["producer"]
        numel = math.prod(t["shape"])
        if tid in tensors or numel > MAX_ELEMENTS or (kind is activation) != (producer is not None):
            raise EdgewiseError(f"tensors[{i}] (id {tid}): {_tensor_problem(t, tid in tensors)}")
        tensors[tid] = Tensor(
            tid, tuple(t["shape"]), t["dtype"], kind, t["storage_id"], t["storage_bytes"],
            producer, t["name"], t.get("released_after"),
        )  # fmt: skip
    n = len(data["ops"])
    if n == 0:
        raise EdgewiseError("the graph has no ops: capture a model whose forward runs an op")
    ops = []
    for position, o in enumerate(data["ops"]):
        inputs, outputs = tuple(o["inputs"]), tuple(o["outputs"])
        ok = o["index"] == position
        try:
            for tid in inputs:
                p = tensors[tid].producer
                if p is not None and p >= position:
                    ok = False
            for tid in outputs:
                if tensors[tid].producer != position:
                    ok = False
            args = _decode(o["args"], tensors)
            kwargs = {
                k: v if type(v) in _PLAIN else _decode(v, tensors) for k, v in o["kwargs"].items()
            }
        except KeyError as e:
            raise EdgewiseError(
                f"ops[{position}] ({o['target']}): tensor {e.args[0]} is not a tensor of the file"
            ) from None
        except EdgewiseError as e:
            raise EdgewiseError(f"ops[{position}] ({o['target']}): {e}") from None
        if not ok:
            raise EdgewiseError(
                f"ops[{position}] ({o['target']}): {_op_problem(o, position, tensors)}"
            )
        ops.append(
            Op(position, o["target"], inputs, outputs, args, kwargs, o["scope"],
               _CATEGORIES[o["category"]])
        )  # fmt: skip
    for tensor in tensors.values():
        made, released = tensor.producer, tensor.released_after
        if (made is not None and made >= n) or (released is not None and released >= n):
            raise EdgewiseError(
                f"tensor {tensor.id}: names op {max(made or 0, released or 0)}, "
                f"but the graph has {n} ops"
            )
    outputs = tuple(data.get("outputs", ()))
    constants = data.get("constants", {})
    missing = [tid for tid in (*outputs, *map(_constant_id, constants)) if tid not in tensors]
    if missing:
        raise EdgewiseError(f"outputs or constants name tensor {missing[0]}, not in the file")
    try:
        values = {int(k): _decode(v, tensors) for k, v in constants.items()}
        meta = {k: _decode(v, {}) for k, v in data.get("meta", {}).items()}
    except EdgewiseError as e:
        raise EdgewiseError(f"constants or meta: {e}") from None
    return Graph(
        model=data["model"],
        ops=tuple(ops),
        tensors=tensors,
        scopes=dict(data["scopes"]),
        inputs={k: tuple(v) for k, v in data["inputs"].items()},
        outputs=outputs,
        constants=values,
        meta=meta,
    )


def _tensor_problem(t: _TensorRecord, duplicate: bool) -> str:
    if duplicate:
        return "the id is used twice"
    if TensorKind(t["kind"]) is TensorKind.ACTIVATION and t["producer"] is None:
        return "an activation needs the op that made it ('producer')"
    if t["producer"] is not None and TensorKind(t["kind"]) is not TensorKind.ACTIVATION:
        return f"a {t['kind']} tensor is not made by an op ('producer' must be null)"
    return f"shape {t['shape']} has {math.prod(t['shape']):.3g} elements (at most 2^48)"


def _op_problem(o: _OpRecord, position: int, tensors: dict[int, Tensor]) -> str:
    if o["index"] != position:
        return (
            f"index {o['index']} at position {position}; ops must be listed in execution "
            "order, each index its position"
        )
    for tid in o["inputs"]:
        producer = tensors[tid].producer
        if producer is not None and producer >= position:
            return (
                f"reads tensor {tid}, made by op {producer}, which runs later "
                "(a cycle, or ops out of order)"
            )
    tid = next(t for t in o["outputs"] if tensors[t].producer != position)
    return f"writes tensor {tid}, which says op {tensors[tid].producer} made it"


def _constant_id(key: str) -> int:
    if not key.isdigit() or len(key) > 16:
        raise EdgewiseError(f"constants: key {key!r} is not a tensor id")
    return int(key)


def save_graph(graph: Graph, path: Path) -> None:
    """Write atomically: a failed write leaves no half-written file behind."""
    write_atomic(path, graph_json(graph))


def load_graph(path: Path) -> Graph:
    """Parse strictly (pydantic_core's reader bounds nesting and numbers itself), check
    types, then structure; with the collector paused, as for every whole-graph pass."""
    raw = read_bytes(path, "graph file", MAX_FILE_BYTES)
    try:
        with gc_paused():
            return _load(raw)
    except EdgewiseError as e:
        raise EdgewiseError(f"graph file '{path}': {e}") from None


def _load(raw: bytes) -> Graph:
    try:  # the first bytes say whether this is a graph file at all, and which version
        header = pydantic_core.from_json(raw[:200], allow_partial=True)
    except ValueError:
        header = {}  # not JSON: the full parse below says where
    if not isinstance(header, dict):
        raise EdgewiseError(f"is not an edgewise graph (a JSON {type(header).__name__})")
    if header.get("schema", SCHEMA) != SCHEMA or header.get("version", VERSION) != VERSION:
        graph_from_dict(header)  # the schema/version message
    try:
        data = pydantic_core.from_json(raw, allow_inf_nan=False)
    except ValueError as e:
        raise EdgewiseError(f"is not valid JSON ({e})") from None
    return graph_from_dict(data)
