"""Liveness, once: for every storage, the op that makes it, every op that uses it, its last
use and the op after which an eager run let go of it. The memory timeline, the
simulator's workload, the planner and the real runs all read this record.

Views and in-place results share their input's storage, so liveness is per storage. A
view is a use (the storage must exist when it is taken) though it moves no bytes.
"""

from __future__ import annotations

from dataclasses import dataclass

from edgewise.ir.graph import Graph, TensorKind

WEIGHT_KINDS = frozenset({TensorKind.PARAMETER, TensorKind.BUFFER})


@dataclass(frozen=True, slots=True)
class StorageLife:
    storage_id: int
    kind: TensorKind
    nbytes: int  # at the captured dtype
    dtype: str  # of the tensor that first names the storage
    first_op: int  # the op that first writes it; for inputs, constants, weights: first reader
    uses: tuple[int, ...]  # ops that read it (views included), ascending
    last_use: int  # the last op that needs it (the last op for a graph output)
    released_after: int  # the op after which the capture's eager run released it
    is_output: bool

    @property
    def events(self) -> tuple[int, ...]:
        """The ops where it must exist: its writer (or first reader) and every use."""
        return tuple(sorted({self.first_op, *self.uses})) if self.first_op >= 0 else ()


def storage_lifetimes(graph: Graph) -> dict[int, StorageLife]:
    """One `StorageLife` per storage, in order of first appearance."""
    n = len(graph.ops)
    outputs = {graph.tensors[t].storage_id for t in graph.outputs}
    kind: dict[int, TensorKind] = {}
    nbytes: dict[int, int] = {}
    dtype: dict[int, str] = {}
    first: dict[int, int] = {}
    uses: dict[int, set[int]] = {}
    released: dict[int, int] = {}
    for t in graph.tensors.values():
        sid = t.storage_id
        kind.setdefault(sid, t.kind)
        nbytes.setdefault(sid, t.storage_bytes)
        dtype.setdefault(sid, t.dtype)
        readers = graph.consumers[t.id]
        uses.setdefault(sid, set()).update(readers)
        if t.producer is not None:
            first[sid] = min(first.get(sid, n), t.producer)
        held = n - 1 if t.released_after is None else t.released_after
        released[sid] = max(released.get(sid, -1), held)
    out = {}
    for sid in kind:
        used = tuple(sorted(uses[sid]))
        start = first.get(sid, used[0] if used else -1)
        last = max((start, *used))
        if sid in outputs:
            last = n - 1
        out[sid] = StorageLife(
            storage_id=sid,
            kind=kind[sid],
            nbytes=nbytes[sid],
            dtype=dtype[sid],
            first_op=start,
            uses=used,
            last_use=last,
            released_after=released[sid],
            is_output=sid in outputs,
        )
    return out


def tensor_last_uses(graph: Graph) -> dict[int, int]:
    """Activation tensor id -> the last op that reads it (its producer if none does; the
    op count for the graph's outputs, which are never released). Per tensor, not per
    storage, because a replay releases each Python reference on its own."""
    n = len(graph.ops)
    outputs = set(graph.outputs)
    last: dict[int, int] = {}
    for t in graph.tensors.values():
        if t.kind is not TensorKind.ACTIVATION or t.producer is None:
            continue
        readers = graph.consumers[t.id]
        last[t.id] = n if t.id in outputs else readers[-1] if readers else t.producer
    return last
