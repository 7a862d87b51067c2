"""Graph <-> JSON, with a versioned schema, so a captured graph can be saved, diffed and
re-analyzed without the model. A graph file is untrusted input: msgspec decodes it strictly
(no NaN, bounded nesting) against the schema below in one pass: the records are the IR's
`Tensor` and `Op`, whose annotations bound them (no bool for a number, ids < 2^53, dims
≤ 2^40, text ≤ 4096 chars, no unknown keys). Then structure is checked: dtypes known, ids
resolve, ops in execution order, every input made before it is read.

Schema `edgewise.graph` version 1:
    {"schema": "edgewise.graph", "version": 1, "model": str, "inputs": {name: shape},
     "outputs": [tensor id], "constants": {tensor id: [values, flattened]},
     "meta": {...}, "scopes": {qualified name: module class},
     "tensors": [{"id", "shape", "dtype", "kind", "storage_id", "storage_bytes",
                  "producer" (null if absent), "name" ("" if absent),
                  "released_after" (null if absent)}],
     "ops": [{"index", "target", "inputs", "outputs", "args", "kwargs", "scope",
              "category"}]}
Tensor arguments inside `args`/`kwargs` are written as {"tensor": id}; a float that is not
finite (a mask's -inf) as {"float": "-inf"}, so the file stays strict JSON.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Literal

import msgspec
import pydantic_core
from msgspec import Struct
from msgspec.structs import force_setattr

from edgewise.errors import EdgewiseError
from edgewise.ir.files import MAX_DEPTH, read_bytes, shown, write_atomic
from edgewise.ir.graph import (
    KNOWN_DTYPES,
    Graph,
    Id,
    Op,
    Shape,
    Tensor,
    TensorKind,
    TensorRef,
    Text,
    gc_paused,
)  # fmt: skip

SCHEMA = "edgewise.graph"
VERSION = 1
MAX_FILE_BYTES = 2**31  # 2 GiB: a 10^6-op graph is about 0.5 GB
MAX_ELEMENTS = 2**48  # one tensor (256 Ti elements): beyond any model, short of overflow
_NONFINITE = {"inf": math.inf, "-inf": -math.inf, "nan": math.nan}
_INT_LIMIT = 2**63
_PLAIN = frozenset((str, bool, float, type(None)))  # argument values kept as they are


class _GraphFile(Struct, forbid_unknown_fields=True):
    """The file's top level; its records are the IR's own `Tensor` and `Op`, whose
    annotations bound them (so a file decodes straight into them)."""

    schema: Literal["edgewise.graph"]
    version: Literal[1]
    model: Text
    inputs: dict[Text, Shape]
    scopes: dict[Text, Text]
    tensors: list[Tensor]
    ops: list[Op]
    outputs: tuple[Id, ...] = ()
    constants: dict[str, list[Any]] = {}
    meta: dict[str, Any] = {}


_DECODER = msgspec.json.Decoder(_GraphFile, strict=True)
_DTYPES = frozenset(KNOWN_DTYPES)


def _encode(value: Any) -> Any:
    if isinstance(value, TensorRef):
        return {"tensor": value.id}
    if isinstance(value, tuple | list):
        return [_encode(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return {"float": str(value)}
    return value


def _decode(value: Any, tensors: dict[int, Tensor]) -> Any:
    """Arguments back to values: lists to tuples, tensor references resolved, integers
    bounded (msgspec's JSON floats are finite already). Scalars and tensor references are
    handled inline, in a comprehension: a million ops carry five million of them."""
    kind = type(value)
    if kind is list or kind is tuple:
        plain, top = _PLAIN, _INT_LIMIT
        return tuple([
            v if (t := type(v)) in plain or (t is int and -top <= v <= top)
            else TensorRef(v["tensor"])
            if t is dict and len(v) == 1 and type(v.get("tensor")) is int and v["tensor"] in tensors
            else _decode(v, tensors)
            for v in value
        ])  # fmt: skip
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


def _checked_header(raw: bytes) -> None:
    """The first bytes say whether this is a graph file at all, and which version."""
    try:
        header = pydantic_core.from_json(raw[:200], allow_partial=True)
    except ValueError:
        return  # not JSON: the full decode says where
    if not isinstance(header, dict):
        raise EdgewiseError(f"is not an edgewise graph (a JSON {type(header).__name__})")
    if header.get("schema", SCHEMA) != SCHEMA:
        raise EdgewiseError(f"not an edgewise graph: expected a JSON object with schema '{SCHEMA}'")
    if header.get("version", VERSION) != VERSION:
        raise EdgewiseError(
            f"graph schema version {header.get('version')!r} is not supported (this edgewise "
            f"reads version {VERSION}); capture the model again"
        )


def _decoded(raw: bytes) -> _GraphFile:
    """Strict JSON decoded against the schema in one pass (types, bounds, no unknown keys)."""
    try:
        return _DECODER.decode(raw)
    except msgspec.ValidationError as e:
        raise EdgewiseError(f"does not follow the graph schema: {_where(e)}") from None
    except msgspec.DecodeError as e:
        raise EdgewiseError(f"is not valid JSON ({e})") from None
    except RecursionError:
        raise EdgewiseError(f"is nested deeper than {MAX_DEPTH} levels") from None


def _where(e: msgspec.ValidationError) -> str:
    """msgspec's "Expected ... - at `$.ops[3].index`" as "ops[3].index: expected ..."."""
    message, _, path = str(e).partition(" - at `")
    path = path.rstrip("`").removeprefix("$").removeprefix(".")
    return f"{path}: {message[:1].lower()}{message[1:]}" if path else message


def _structured(file: _GraphFile) -> Graph:
    """Ids resolve, ops run in order and read only what exists by then, sizes bounded.
    One pass over tensors and one over ops; messages are built only on failure."""
    tensors: dict[int, Tensor] = {}
    activation = TensorKind.ACTIVATION
    if not {t.dtype for t in file.tensors} <= _DTYPES:
        i, t = next((i, t) for i, t in enumerate(file.tensors) if t.dtype not in _DTYPES)
        raise EdgewiseError(
            f"tensors[{i}].dtype: {shown(t.dtype)} is not a torch dtype (float32, float16, "
            "bfloat16, int8, ...: the name after 'torch.')"
        )
    for i, t in enumerate(file.tensors):
        if (
            t.id in tensors
            or (t.kind is activation) is (t.producer is None)
            or math.prod(t.shape) > MAX_ELEMENTS
        ):
            raise EdgewiseError(f"tensors[{i}] (id {t.id}): {_tensor_problem(t, t.id in tensors)}")
        tensors[t.id] = t
    n = len(file.ops)
    if n == 0:
        raise EdgewiseError("the graph has no ops: capture a model whose forward runs an op")
    for position, op in enumerate(file.ops):
        ok = op.index == position
        try:
            for tid in op.inputs:
                p = tensors[tid].producer
                if p is not None and p >= position:
                    ok = False
            for tid in op.outputs:
                if tensors[tid].producer != position:
                    ok = False
            force_setattr(op, "args", _decode(op.args, tensors))
            if op.kwargs:
                force_setattr(op, "kwargs", {
                    k: v if type(v) in _PLAIN else _decode(v, tensors) for k, v in op.kwargs.items()
                })  # fmt: skip
        except KeyError as e:
            raise EdgewiseError(
                f"ops[{position}] ({shown(op.target)}): tensor {e.args[0]} is not a tensor "
                "of the file"
            ) from None
        except EdgewiseError as e:
            raise EdgewiseError(f"ops[{position}] ({shown(op.target)}): {e}") from None
        if not ok:
            raise EdgewiseError(
                f"ops[{position}] ({shown(op.target)}): {_op_problem(op, position, tensors)}"
            )
    for tensor in tensors.values():
        made, released = tensor.producer, tensor.released_after
        if (made is not None and made >= n) or (released is not None and released >= n):
            raise EdgewiseError(
                f"tensor {tensor.id}: names op {max(made or 0, released or 0)}, "
                f"but the graph has {n} ops"
            )
    missing = [t for t in (*file.outputs, *map(_constant_id, file.constants)) if t not in tensors]
    if missing:
        raise EdgewiseError(f"outputs or constants name tensor {missing[0]}, not in the file")
    try:
        values = {int(k): _decode(v, tensors) for k, v in file.constants.items()}
        meta = {k: _decode(v, {}) for k, v in file.meta.items()}
    except EdgewiseError as e:
        raise EdgewiseError(f"constants or meta: {e}") from None
    return Graph(
        model=file.model,
        ops=tuple(file.ops),
        tensors=tensors,
        scopes=file.scopes,
        inputs=file.inputs,
        outputs=file.outputs,
        constants=values,
        meta=meta,
    )


def _tensor_problem(t: Tensor, duplicate: bool) -> str:
    if duplicate:
        return "the id is used twice"
    if t.kind is TensorKind.ACTIVATION and t.producer is None:
        return "an activation needs the op that made it ('producer')"
    if t.producer is not None and t.kind is not TensorKind.ACTIVATION:
        return f"a {t.kind} tensor is not made by an op ('producer' must be null)"
    return f"shape {list(t.shape)} has {math.prod(t.shape):.3g} elements (at most 2^48)"


def _op_problem(op: Op, position: int, tensors: dict[int, Tensor]) -> str:
    if op.index != position:
        return (
            f"index {op.index} at position {position}; ops must be listed in execution "
            "order, each index its position"
        )
    for tid in op.inputs:
        producer = tensors[tid].producer
        if producer is not None and producer >= position:
            return (
                f"reads tensor {tid}, made by op {producer}, which runs later "
                "(a cycle, or ops out of order)"
            )
    tid = next(t for t in op.outputs if tensors[t].producer != position)
    return f"writes tensor {tid}, which says op {tensors[tid].producer} made it"


def _constant_id(key: str) -> int:
    if not key.isdigit() or len(key) > 16:
        raise EdgewiseError(f"constants: key {key!r} is not a tensor id")
    return int(key)


def save_graph(graph: Graph, path: Path) -> None:
    """Write atomically: a failed write leaves no half-written file behind."""
    write_atomic(path, graph_json(graph))


def load_graph(path: Path) -> Graph:
    """Decode against the schema, then check structure; with the collector paused, as for
    every whole-graph pass."""
    raw = read_bytes(path, "graph file", MAX_FILE_BYTES)
    try:
        with gc_paused():
            return _load(raw)
    except EdgewiseError as e:
        raise EdgewiseError(f"graph file '{path}': {e}") from None


def _load(raw: bytes) -> Graph:
    _checked_header(raw)
    return _structured(_decoded(raw))
