"""Liveness, once: for every storage, the op that makes it, every op that uses it, its last
use and the op after which an eager run let go of it. The memory timeline, the
simulator's workload, the planner and the real runs all read this record: as numpy
columns (`storage_columns`, one vectorized pass, for whole-graph analyses) or as one
`StorageLife` per storage (`storage_lifetimes`, built from the columns).

Views and in-place results share their input's storage, so liveness is per storage. A
view is a use (the storage must exist when it is taken) though it moves no bytes.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from edgewise.ir.graph import DTYPE_BYTES, Graph, TensorKind

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


@dataclass(frozen=True)
class StorageColumns:
    """The same record as `storage_lifetimes`, as numpy columns: one row per storage in
    order of first appearance, so analyses of large graphs work on whole arrays.

    Beside it, which storages each op reads and writes (`read_op`/`read_storage` per input
    tensor, `write_op`/`write_storage` per output tensor, in op order, repeats kept), as
    row numbers into the columns, and the tensor ids read (`read_tensor`)."""

    ids: np.ndarray  # storage id
    kinds: tuple[TensorKind, ...]
    nbytes: np.ndarray  # at the captured dtype
    dtypes: tuple[str, ...]
    first_op: np.ndarray  # -1: never written nor read
    last_use: np.ndarray
    released_after: np.ndarray
    is_output: np.ndarray  # bool
    use_start: np.ndarray  # uses of row k: use_ops[use_start[k]:use_start[k + 1]], ascending
    use_ops: np.ndarray
    read_op: np.ndarray
    read_tensor: np.ndarray
    read_storage: np.ndarray
    write_op: np.ndarray
    write_storage: np.ndarray

    def __len__(self) -> int:
        return len(self.ids)

    def of_kind(self, *kinds: TensorKind) -> np.ndarray:
        """Bool per row: the storage is of one of `kinds`."""
        return np.array([k in kinds for k in self.kinds], dtype=bool).reshape(-1)

    @cached_property
    def row_of(self) -> dict[int, int]:
        """Storage id -> row."""
        return {sid: k for k, sid in enumerate(self.ids.tolist())}

    def uses_of(self, row: int) -> tuple[int, ...]:
        return tuple(self.use_ops[self.use_start[row] : self.use_start[row + 1]].tolist())

    @cached_property
    def _readers(self) -> tuple[np.ndarray, np.ndarray]:
        order = np.argsort(self.read_tensor, kind="stable")
        return self.read_tensor[order], self.read_op[order]

    def readers(self, tensor_id: int) -> tuple[int, ...]:
        """The ops reading a tensor, once each, in op order (`Graph.consumers` of one)."""
        tensors, ops = self._readers
        lo, hi = np.searchsorted(tensors, [tensor_id, tensor_id + 1])
        return tuple(dict.fromkeys(ops[lo:hi].tolist()))

    @cached_property
    def is_weight(self) -> np.ndarray:
        """Bool per row: a parameter or buffer."""
        return np.array([k in WEIGHT_KINDS for k in self.kinds], dtype=bool).reshape(-1)

    def sizes(self, weight_bytes: float | None, other_bytes: float | None) -> np.ndarray:
        """Bytes of every storage with weights stored at `weight_bytes` per element and
        everything else at `other_bytes` (None: as captured): `rescaled_bytes`, per row."""
        out = self.nbytes.copy()
        dtype_code = {d: i for i, d in enumerate(dict.fromkeys(self.dtypes))}
        codes = np.array([dtype_code[d] for d in self.dtypes], dtype=np.int64).reshape(-1)
        for dtype, code in dtype_code.items():
            for weights, per_element in ((True, weight_bytes), (False, other_bytes)):
                if per_element is None or not dtype.startswith(("float", "bfloat")):
                    continue  # as captured (integer tensors are indices: never rescaled)
                rows = (codes == code) & (self.is_weight == weights)
                # int(nbytes * per_element / bytes of dtype), exactly as rescaled_bytes
                out[rows] = np.trunc(
                    self.nbytes[rows].astype(np.float64) * per_element / DTYPE_BYTES[dtype]
                ).astype(np.int64)
        return out


def first_of_pairs(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Bool per position: (a[i], b[i]) is the first occurrence of that pair."""
    first = np.ones(len(a), dtype=bool)
    if len(a):
        order = np.lexsort((b, a))  # stable: equal pairs keep their order
        sa, sb = a[order], b[order]
        first[order[1:][(sa[1:] == sa[:-1]) & (sb[1:] == sb[:-1])]] = False
    return first


def segments(counts: np.ndarray) -> np.ndarray:
    """Start offsets of consecutive segments of the given lengths, and the end (len + 1)."""
    bounds = np.zeros(len(counts) + 1, dtype=np.int64)
    np.cumsum(counts, out=bounds[1:])
    return bounds


def _int_column(values: list[int]) -> np.ndarray:
    return np.array(values, dtype=np.int64).reshape(-1)


def storage_columns(graph: Graph) -> StorageColumns:
    """Liveness of every storage in one vectorized pass (see `StorageColumns`)."""
    n = len(graph.ops)
    tensors = list(graph.tensors.values())
    tensor_ids = _int_column([t.id for t in tensors])
    storage_of = _int_column([t.storage_id for t in tensors])
    # rows: storages in order of first appearance; a storage's kind, size and dtype are
    # those of the first tensor naming it
    unique_ids, first_tensor, inverse = np.unique(storage_of, return_index=True,
                                                  return_inverse=True)  # fmt: skip
    order = np.argsort(first_tensor, kind="stable")
    row_of_unique = np.empty(len(order), dtype=np.int64)
    row_of_unique[order] = np.arange(len(order))
    row = row_of_unique[inverse.reshape(-1)]  # per tensor
    firsts = first_tensor[order].tolist()
    kinds = tuple(tensors[i].kind for i in firsts)
    dtypes = tuple(tensors[i].dtype for i in firsts)
    nbytes = _int_column([tensors[i].storage_bytes for i in firsts])
    rows = len(order)

    # tensor id -> row of its storage, for the ops' inputs and outputs
    by_id = np.argsort(tensor_ids, kind="stable")
    sorted_ids = tensor_ids[by_id]

    def storage_rows(ids: list[int] | np.ndarray) -> np.ndarray:
        wanted = np.asarray(ids, dtype=np.int64).reshape(-1)
        if not len(wanted):
            return wanted
        if not len(sorted_ids):
            raise KeyError(int(wanted[0]))
        at = np.minimum(np.searchsorted(sorted_ids, wanted), len(sorted_ids) - 1)
        bad = sorted_ids[at] != wanted
        if bad.any():
            raise KeyError(int(wanted[np.argmax(bad)]))
        return row[by_id[at]]

    ops = graph.ops
    read_op = _int_column([op.index for op in ops for _ in op.inputs])
    read_tensor = _int_column([t for op in ops for t in op.inputs])
    read_storage = storage_rows(read_tensor)
    write_op = _int_column([op.index for op in ops for _ in op.outputs])
    write_storage = storage_rows([t for op in ops for t in op.outputs])

    # writer: the earliest producer of any tensor in the storage
    producer = _int_column([-1 if t.producer is None else t.producer for t in tensors])
    produced = producer >= 0
    has_writer = np.zeros(rows, dtype=bool)
    has_writer[row[produced]] = True
    writer = np.full(rows, n, dtype=np.int64)
    np.minimum.at(writer, row[produced], np.minimum(producer[produced], n))

    # uses: every op reading any tensor of the storage, once each, ascending
    once = first_of_pairs(read_storage, read_op)
    pairs = np.lexsort((read_op[once], read_storage[once]))
    use_row, use_ops = read_storage[once][pairs], read_op[once][pairs]
    counts = np.bincount(use_row, minlength=rows)
    use_start = segments(counts)
    used = counts > 0
    first_use = np.full(rows, -1, dtype=np.int64)
    last_read = np.full(rows, -1, dtype=np.int64)
    first_use[used] = use_ops[use_start[:-1][used]]
    last_read[used] = use_ops[use_start[1:][used] - 1]
    first_op = np.where(has_writer, writer, first_use)
    last_use = np.where(used, np.maximum(first_op, last_read), first_op)
    is_output = np.zeros(rows, dtype=bool)
    is_output[storage_rows(list(graph.outputs))] = True
    last_use[is_output] = n - 1

    held = _int_column([n - 1 if t.released_after is None else t.released_after for t in tensors])
    released = np.full(rows, -1, dtype=np.int64)
    np.maximum.at(released, row, held)
    return StorageColumns(
        ids=unique_ids[order], kinds=kinds, nbytes=nbytes, dtypes=dtypes, first_op=first_op,
        last_use=last_use, released_after=released, is_output=is_output, use_start=use_start,
        use_ops=use_ops, read_op=read_op, read_tensor=read_tensor, read_storage=read_storage,
        write_op=write_op, write_storage=write_storage,
    )  # fmt: skip


def storage_lifetimes(graph: Graph) -> dict[int, StorageLife]:
    """One `StorageLife` per storage, in order of first appearance."""
    return lifetimes_of(storage_columns(graph))


def lifetimes_of(cols: StorageColumns) -> dict[int, StorageLife]:
    """The columns as one `StorageLife` record per storage, in the same order."""
    ids, first, last = cols.ids.tolist(), cols.first_op.tolist(), cols.last_use.tolist()
    nbytes, released = cols.nbytes.tolist(), cols.released_after.tolist()
    outputs, bounds, ops = cols.is_output.tolist(), cols.use_start.tolist(), cols.use_ops.tolist()
    return {
        sid: StorageLife(sid, cols.kinds[k], nbytes[k], cols.dtypes[k], first[k],
                         tuple(ops[bounds[k] : bounds[k + 1]]), last[k], released[k], outputs[k])
        for k, sid in enumerate(ids)
    }  # fmt: skip


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
