"""Graph <-> JSON, with a versioned schema, so a captured graph can be saved, diffed and
re-analyzed without the model.

Schema `edgewise.graph` version 1:
    {"schema": "edgewise.graph", "version": 1, "model": str, "inputs": {name: shape},
     "outputs": [tensor id], "constants": {tensor id: [values, flattened]},
     "meta": {...}, "scopes": {qualified name: module class},
     "tensors": [{"id", "shape", "dtype", "kind", "storage_id", "storage_bytes",
                  "producer", "name", "released_after"}],
     "ops": [{"index", "target", "inputs", "outputs", "args", "kwargs", "scope",
              "category"}]}
Tensor arguments inside `args`/`kwargs` are written as {"tensor": id}.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from edgewise.errors import EdgewiseError
from edgewise.ir.categories import OpCategory
from edgewise.ir.graph import Graph, Op, Tensor, TensorKind, TensorRef

SCHEMA = "edgewise.graph"
VERSION = 1


def _encode(value: Any) -> Any:
    if isinstance(value, TensorRef):
        return {"tensor": value.id}
    if isinstance(value, tuple | list):
        return [_encode(v) for v in value]
    return value


def _decode(value: Any) -> Any:
    if isinstance(value, dict) and set(value) == {"tensor"}:
        return TensorRef(int(value["tensor"]))
    if isinstance(value, list):
        return tuple(_decode(v) for v in value)
    return value


def graph_to_dict(graph: Graph) -> dict[str, Any]:
    return {
        "schema": SCHEMA,
        "version": VERSION,
        "model": graph.model,
        "inputs": {k: list(v) for k, v in graph.inputs.items()},
        "outputs": list(graph.outputs),
        "constants": {str(k): list(v) for k, v in graph.constants.items()},
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


def graph_from_dict(data: dict[str, Any]) -> Graph:
    if data.get("schema") != SCHEMA:
        raise EdgewiseError(f"not an edgewise graph: expected schema '{SCHEMA}'")
    if data.get("version") != VERSION:
        raise EdgewiseError(
            f"graph schema version {data.get('version')} is not supported (this edgewise "
            f"reads version {VERSION}); capture the model again"
        )
    tensors = {
        int(t["id"]): Tensor(
            id=int(t["id"]),
            shape=tuple(int(s) for s in t["shape"]),
            dtype=str(t["dtype"]),
            kind=TensorKind(t["kind"]),
            storage_id=int(t["storage_id"]),
            storage_bytes=int(t["storage_bytes"]),
            producer=None if t["producer"] is None else int(t["producer"]),
            name=str(t["name"]),
            released_after=None if t.get("released_after") is None else int(t["released_after"]),
        )
        for t in data["tensors"]
    }
    ops = tuple(
        Op(
            index=int(o["index"]),
            target=str(o["target"]),
            inputs=tuple(int(i) for i in o["inputs"]),
            outputs=tuple(int(i) for i in o["outputs"]),
            args=_decode(o["args"]),
            kwargs={k: _decode(v) for k, v in o["kwargs"].items()},
            scope=str(o["scope"]),
            category=OpCategory(o["category"]),
        )
        for o in data["ops"]
    )
    return Graph(
        model=str(data["model"]),
        ops=ops,
        tensors=tensors,
        scopes={str(k): str(v) for k, v in data["scopes"].items()},
        inputs={k: tuple(v) for k, v in data["inputs"].items()},
        outputs=tuple(int(i) for i in data.get("outputs", ())),
        constants={int(k): tuple(v) for k, v in data.get("constants", {}).items()},
        meta=dict(data.get("meta", {})),
    )


def save_graph(graph: Graph, path: Path) -> None:
    """Write atomically: a failed write leaves no half-written file behind."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(graph_to_dict(graph), separators=(",", ":")))
    tmp.replace(path)


def load_graph(path: Path) -> Graph:
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise EdgewiseError(f"graph file '{path}' does not exist") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise EdgewiseError(f"graph file '{path}' is not valid JSON ({e})") from None
    try:
        return graph_from_dict(data)
    except (KeyError, TypeError, ValueError) as e:
        raise EdgewiseError(f"graph file '{path}' does not follow the schema: {e!r}") from None
