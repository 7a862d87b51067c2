"""What every op asks of any accelerator, independent of the accelerator.

`OpWorkload` holds per-op numpy arrays (MACs, vector ops, the matmul dimensions that
decide how well an op maps onto a MAC array, weight and activation bytes at the chosen
precision) and the activation storages' sizes and use times, which the SRAM schedule
needs. It is built once per graph and precision; the cost model then evaluates any
number of hardware specs against it with array arithmetic.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import cached_property
from math import prod
from typing import Any

import numpy as np
from msgspec import Struct

from edgewise.analysis.conventions import convention
from edgewise.analysis.formulas import OpArgs, resolve
from edgewise.analysis.lifetimes import first_of_pairs, segments, storage_columns
from edgewise.analysis.memory import scores_bytes
from edgewise.analysis.profile import op_counts
from edgewise.ir.categories import OpCategory
from edgewise.ir.graph import Graph, TensorKind, gc_paused
from edgewise.ir.vocab import PRECISION_BYTES, AttentionMode


class Storage(Struct, frozen=True, gc=False):
    """An activation storage (or model input) the SRAM schedule must place (a Struct, as
    `Tensor` is: a large graph has a million of them, made in one pass)."""

    id: int
    nbytes: int  # at the activation precision
    first_op: int  # the op that writes it (a model input: the op that first reads it)
    uses: tuple[int, ...]  # ops that use it, views included, in order (the last one frees it)
    is_output: bool  # a model output: written to DRAM after its last event
    is_input: bool  # a model input (or constant): starts in DRAM
    gaps: tuple[int, ...]  # indices into the workload's gap arrays, in order
    events: tuple[int, ...]  # its writer (or first reader) and every use, ascending


@dataclass(frozen=True)
class OpWorkload:
    """Per-op demands (numpy arrays over ops) and the storages' gaps.

    A *gap* is the stretch between two consecutive events of a storage (its writer or a
    use): across it the storage is either resident in SRAM or off chip in DRAM. Every
    schedule, the default one or a plan's, is a choice per gap (see `schedule`).
    """

    model: str
    weight_precision: str
    activation_precision: str
    attention: AttentionMode
    scopes: tuple[str, ...]
    targets: tuple[str, ...]
    categories: tuple[OpCategory, ...]
    macs: np.ndarray  # int64 per op
    vector_ops: np.ndarray  # int64 per op
    reduce_dim: np.ndarray  # K of the op's products (0 when it has no MACs)
    out_dim: np.ndarray  # N of the op's products, mapped across the array's columns
    depthwise: np.ndarray  # bool per op: a depthwise conv (one input channel per group)
    weight_bytes: np.ndarray  # weights (parameters and buffers) each op reads
    act_read_bytes: np.ndarray  # activation and input bytes each op reads
    act_write_bytes: np.ndarray  # activation bytes each op writes (new storages)
    scores_bytes: np.ndarray  # attention scores an op materializes internally
    operand_bytes: np.ndarray  # distinct activation storages each op reads or writes
    storages: tuple[Storage, ...]
    reads: tuple[tuple[int, ...], ...]  # per op: activation/input storage ids it reads
    writes: tuple[tuple[int, ...], ...]  # per op: activation storage ids it creates
    gap_storage: np.ndarray  # per gap: the storage id
    gap_start: np.ndarray  # per gap: the event op after which it opens
    gap_end: np.ndarray  # per gap: the event op before which it closes
    gap_bytes: np.ndarray  # per gap: the storage's bytes
    input_bytes: int  # model inputs: read once from DRAM
    output_bytes: int  # model outputs: written once to DRAM
    total_weight_bytes: int  # every distinct weight once (the compulsory weight traffic)
    # what a vendor compiler made of it (`simulate.compile`): "" until compiled for a spec
    compiled: str = ""
    dispatched: np.ndarray | None = None  # bool per op: runs as its own kernel (pays overhead)
    epilogue: np.ndarray | None = None  # bool per op: fused into the epilogue of another

    @property
    def n_ops(self) -> int:
        return len(self.scopes)

    @property
    def n_gaps(self) -> int:
        return len(self.gap_storage)

    @cached_property
    def storage(self) -> dict[int, Storage]:
        return {s.id: s for s in self.storages}

    @property
    def sram_bytes(self) -> np.ndarray:
        """Per op, the SRAM traffic no schedule changes: activations read and written,
        weights read, materialized scores."""
        return self.act_read_bytes + self.act_write_bytes + self.weight_bytes + self.scores_bytes


def _product_dims(a: OpArgs) -> tuple[int, int, int]:
    """(K, N, depthwise): the reduction length and output width of an op's products, and
    1 for a depthwise conv (one input channel per group), which vendors run on a path of
    its own (`depthwise_efficiency`).

    A weight-stationary array holds K along its rows and N along its columns:
    conv K = Cin/groups * prod(kernel), N = Cout/groups (each group is a separate
    product); matmul K and N from the operands; attention QK^T has K = d, N = Nk.
    """
    name, cat = a.op.name, a.op.category
    if cat is OpCategory.CONV:
        w = a.args[1].shape
        transposed = (
            bool(a.arg(6, "transposed", False))
            if name in ("convolution", "_convolution")
            else False
        )
        groups = int(a.arg(8, "groups", 1) or 1)
        if transposed:
            return w[0] // groups * prod(w[2:]), w[1], 0
        return w[1] * prod(w[2:]), w[0] // groups, int(groups > 1 and w[1] == 1)
    if cat is OpCategory.ATTENTION:
        q, k = a.args[0].shape, a.args[1].shape
        return q[-1], k[-2], 0
    if cat is OpCategory.MATMUL:
        mats = [t for t in a.tensors_in if len(t.shape) >= 2]
        if len(mats) >= 2:
            return mats[-2].shape[-1], mats[-1].shape[-1], 0
    return 0, 0, 0


_GATHERS = frozenset(("aten.embedding.default",))


@gc_paused()
def op_workload(
    graph: Graph,
    weight_precision: str = "fp32",
    activation_precision: str = "fp32",
    attention: AttentionMode = AttentionMode.CAPTURED,
    kv_precision: str | None = None,
) -> OpWorkload:
    """Per-op demands of `graph` with weights and activations at the given precisions
    (`kv_precision`: a decode graph's KV cache inputs at their own, `capture.llm`).

    Each op reads the distinct storages of its inputs (in argument order) and creates the
    activation storages its outputs first write; a view moves nothing. Computed on whole
    columns (`storage_columns`): one pass, whatever the graph's size."""
    n = len(graph.ops)
    w_bytes, a_bytes = PRECISION_BYTES[weight_precision], PRECISION_BYTES[activation_precision]
    cols = storage_columns(graph)
    counts, signatures = op_counts(graph, convention("default"))
    mac_list = [c.macs for c in counts]
    macs = np.array(mac_list, dtype=np.int64).reshape(-1)
    vector = np.array([c.vector_ops for c in counts], dtype=np.int64).reshape(-1)
    dims = np.zeros((n, 3), dtype=np.int64)
    scores = np.zeros(n, dtype=np.int64)
    materialized = attention == AttentionMode.MATERIALIZED
    known: dict[tuple[Any, ...], tuple[int, int, int]] = {}  # by signature: shapes decide dims
    for op, key in zip(graph.ops, signatures, strict=True):
        if mac_list[op.index]:
            kn = known.get(key) if key is not None else None
            if kn is None:
                kn = _product_dims(resolve(op, graph))
                if key is not None:
                    known[key] = kn
            dims[op.index] = kn
        if materialized and op.category is OpCategory.ATTENTION:
            q, k = graph.tensors[op.inputs[0]], graph.tensors[op.inputs[1]]
            scores[op.index] = scores_bytes(q.shape, k.shape[-2], a_bytes)
    size = cols.sizes(w_bytes, a_bytes)
    if kv_precision is not None and graph.meta.get("kv_inputs"):  # the KV cache's own width
        named = set(graph.meta["kv_inputs"])
        kv = {t.storage_id: t.numel for t in graph.tensors_of_kind(TensorKind.INPUT)
              if t.name in named}  # fmt: skip
        rows = np.flatnonzero(np.isin(cols.ids, list(kv)))
        per_value = PRECISION_BYTES[kv_precision]
        size[rows] = [round(kv[int(sid)] * per_value) for sid in cols.ids[rows]]
    is_weight = cols.is_weight
    placed = ~is_weight & (cols.first_op >= 0)  # activations, and inputs/constants read
    moves = np.array([op.category is not OpCategory.VIEW for op in graph.ops], dtype=bool)
    moves = moves.reshape(-1)  # a view is metadata only: no bytes move

    # what each op reads: its inputs' distinct storages, in argument order
    r_op, r_row = cols.read_op, cols.read_storage
    distinct = first_of_pairs(r_op, r_row) & moves[r_op]
    mine = distinct & placed[r_row]
    # what it creates: activation storages its outputs write first
    w_op, w_row = cols.write_op, cols.write_storage
    activation = cols.of_kind(TensorKind.ACTIVATION)
    created = (first_of_pairs(w_op, w_row) & moves[w_op] & placed[w_row]
               & activation[w_row] & (cols.first_op[w_row] == w_op))  # fmt: skip

    def per_op(ops: np.ndarray, rows: np.ndarray) -> np.ndarray:
        total = np.zeros(n, dtype=np.int64)
        np.add.at(total, ops, size[rows])
        return total

    heavy = distinct & is_weight[r_row]
    weight = per_op(r_op[heavy], r_row[heavy])
    lookups = [op for op in graph.ops if op.target in _GATHERS]
    for op in lookups:  # a lookup reads the rows it gathers, not the table
        if weight[op.index]:
            gathered = sum(graph.tensors[t].numel for t in op.outputs)
            weight[op.index] = min(int(weight[op.index]), round(gathered * w_bytes))
    read = per_op(r_op[mine], r_row[mine])
    write = per_op(w_op[created], w_row[created])
    touched_op = np.concatenate([r_op[mine], w_op[created]])
    touched_row = np.concatenate([r_row[mine], w_row[created]])
    once = first_of_pairs(touched_op, touched_row)
    operands = per_op(touched_op[once], touched_row[once])
    reads = _per_op_tuples(n, r_op[mine], cols.ids[r_row[mine]])
    writes = _per_op_tuples(n, w_op[created], cols.ids[w_row[created]])

    # the storages the schedule places, by first event; their events and gaps
    rows = np.flatnonzero(placed)
    rows = rows[np.lexsort((cols.ids[rows], cols.first_op[rows]))]
    rank = np.full(len(cols), -1, dtype=np.int64)
    rank[rows] = np.arange(len(rows))
    uses_per_row = np.diff(cols.use_start)
    use_row = np.repeat(np.arange(len(cols)), uses_per_row)
    event_rank = np.concatenate([rank[rows], rank[use_row]])
    event_op = np.concatenate([cols.first_op[rows], cols.use_ops])
    keep = (event_rank >= 0) & first_of_pairs(event_rank, event_op)
    event_rank, event_op = event_rank[keep], event_op[keep]
    order = np.lexsort((event_op, event_rank))
    event_rank, event_op = event_rank[order], event_op[order]
    event_bounds = segments(np.bincount(event_rank, minlength=len(rows)))
    gap_counts = np.maximum(np.diff(event_bounds) - 1, 0)
    gap_bounds = segments(gap_counts)
    inner = np.ones(len(event_op), dtype=bool)  # an event that opens a gap: not a last one
    inner[event_bounds[1:] - 1] = False  # (every placed storage has an event: its first)
    gap_rank = event_rank[inner]
    gap_start, gap_end = event_op[inner], event_op[np.flatnonzero(inner) + 1]

    # tuples, so that each storage's slices are tuples already (a million storages)
    ids, events = cols.ids[rows].tolist(), tuple(event_op.tolist())
    nbytes, first = size[rows].tolist(), cols.first_op[rows].tolist()
    outputs = cols.is_output[rows].tolist()
    bounds, uses = cols.use_start.tolist(), tuple(cols.use_ops.tolist())
    gap_ids = tuple(range(int(gap_bounds[-1]) if len(gap_bounds) else 0))
    e_bounds, g_bounds, kinds = event_bounds.tolist(), gap_bounds.tolist(), cols.kinds
    act_kind = TensorKind.ACTIVATION
    # positional: id, bytes, first op, uses, output, input, gaps, events
    storages = tuple([
        Storage(sid, nbytes[k], first[k], uses[bounds[r] : bounds[r + 1]], outputs[k],
                kinds[r] is not act_kind, gap_ids[g_bounds[k] : g_bounds[k + 1]],
                events[e_bounds[k] : e_bounds[k + 1]])
        for k, (sid, r) in enumerate(zip(ids, rows.tolist(), strict=True))
    ])  # fmt: skip
    inputs = int(size[cols.of_kind(TensorKind.INPUT)].sum())
    weights_total = int(size[is_weight].sum())
    return OpWorkload(
        model=graph.model,
        weight_precision=weight_precision,
        activation_precision=activation_precision,
        attention=AttentionMode(attention),
        scopes=tuple(op.scope for op in graph.ops),
        targets=tuple(op.target for op in graph.ops),
        categories=tuple(op.category for op in graph.ops),
        macs=macs,
        vector_ops=vector,
        reduce_dim=dims[:, 0],
        out_dim=dims[:, 1],
        depthwise=dims[:, 2].astype(bool),
        weight_bytes=weight,
        act_read_bytes=read,
        act_write_bytes=write,
        scores_bytes=scores,
        operand_bytes=operands,
        storages=storages,
        reads=reads,
        writes=writes,
        gap_storage=cols.ids[rows][gap_rank],
        gap_start=gap_start,
        gap_end=gap_end,
        gap_bytes=size[rows][gap_rank],
        input_bytes=inputs,
        output_bytes=int(size[rows][cols.is_output[rows]].sum()),
        total_weight_bytes=weights_total,
    )


def _per_op_tuples(n: int, ops: np.ndarray, ids: np.ndarray) -> tuple[tuple[int, ...], ...]:
    """Per op index, the ids listed against it, in the order given."""
    order = np.argsort(ops, kind="stable")
    bounds = segments(np.bincount(ops, minlength=n)).tolist()
    flat = tuple(ids[order].tolist())  # a tuple: its slices are the tuples returned
    return tuple([flat[bounds[i] : bounds[i + 1]] for i in range(n)])


def with_knobs(
    work: OpWorkload,
    weight_scale: dict[int, float],
    attention: dict[int, tuple[float, float]],
) -> OpWorkload:
    """The workload under a plan's knobs.

    `weight_scale`: op -> factor on the weight bytes it reads (per-layer weight precision).
    `attention`: op -> (scores bytes held during the op, extra SRAM bytes read): a
    materialized attention holds its scores and softmax; a tiled one holds none but
    re-reads K and V once per query tile.
    """
    weights = work.weight_bytes.astype(np.float64)
    for op, factor in weight_scale.items():
        weights[op] *= factor
    scores = work.scores_bytes.copy()
    reads = work.act_read_bytes.copy()
    for op, (held, reread) in attention.items():
        scores[op] = int(held)
        reads[op] += int(reread)
    ratio = weights.sum() / max(float(work.weight_bytes.sum()), 1.0)
    return replace(
        work,
        weight_bytes=np.round(weights).astype(np.int64),
        scores_bytes=scores,
        act_read_bytes=reads,
        total_weight_bytes=int(work.total_weight_bytes * ratio),
    )
