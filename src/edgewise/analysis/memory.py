"""The memory timeline: which bytes are live at every op, and the peak.

A storage is live from the op that first writes it to the last op that needs it. Two
lifetimes are offered:
- `last-use`: until its last consumer (what a compiler or an NPU runtime achieves);
- `eager`: until PyTorch actually let go of it during the capture run (Python references
  keep tensors alive past their last use), which is what a real eager run allocates.
Views and in-place results share their input's storage and add nothing.

Live bytes at each op are split into ordinary activations, long-lived tensors (the
U-Net's skips: they outlive `long_lived_ops` ops or are read two or more stages after the
one that made them), attention scores, and the model's inputs (allocated before the
forward, so not part of `peak_bytes`). Beside them: the weights the op reads and its
working set (inputs + outputs + weights).

Attention is costed three ways, whatever kernel the capture saw:
- `captured`: as recorded (a fused kernel materializes no scores; explicit QK^T and
  softmax tensors are attention scores);
- `materialized`: every attention holds its scores and their softmax, 2 x B x heads x
  Nq x Nk elements, while it runs;
- `fused`: FlashAttention tiling: no score tensor, only one tile of Br x Bc scores plus
  the running max and sum (2 x Br), with Bc = ceil(M / 4d), Br = min(Bc, d) for an SRAM
  budget of M elements (Dao et al. 2022, Algorithm 1).

`gaps` applies a plan's spills and recomputations: a storage spilled or dropped after op
`start` and back (refilled or rebuilt) before op `resume` is not live in between.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from math import ceil, prod
from typing import Literal

import numpy as np

from edgewise.analysis.lifetimes import StorageColumns, first_of_pairs, storage_columns
from edgewise.analysis.stages import stage_position_of_ops
from edgewise.errors import EdgewiseError
from edgewise.ir.categories import OpCategory
from edgewise.ir.graph import DTYPE_BYTES, Graph, TensorKind, gc_paused
from edgewise.ir.vocab import AttentionMode

Lifetimes = Literal["last-use", "eager"]
DTYPES = {
    "fp32": "float32",
    "fp16": "float16",
    "bf16": "bfloat16",
    "int16": "int16",
    "int8": "int8",
}
_SOFTMAX = frozenset(("_softmax", "softmax", "_safe_softmax"))
_PASS_THROUGH = frozenset((OpCategory.ELEMENTWISE, OpCategory.VIEW))


@dataclass(frozen=True, slots=True)
class LongLivedTensor:
    """One row of the lifetime table."""

    storage_id: int
    producer_scope: str
    consumer_scopes: tuple[str, ...]
    bytes: int
    first_op: int
    last_op: int
    span_ops: int
    span_stages: int  # stages between the producer's and the last consumer's
    share_of_peak: float  # bytes / peak if live at the peak op, else 0


@dataclass(frozen=True)
class MemoryTimeline:
    """Per-op byte series (numpy int64 arrays of length len(graph.ops)) and the peak."""

    model: str
    lifetimes: Lifetimes
    attention: AttentionMode
    dtype: str | None  # rescaled to this dtype, or None for the captured dtypes
    long_lived_ops: int
    scopes: tuple[str, ...]
    targets: tuple[str, ...]
    activations: np.ndarray
    long_lived: np.ndarray
    attention_scores: np.ndarray
    inputs: np.ndarray
    weights: np.ndarray
    working_set: np.ndarray
    long_lived_table: tuple[LongLivedTensor, ...]

    @property
    def live(self) -> np.ndarray:
        """Live activation bytes: everything the forward itself allocated."""
        return self.activations + self.long_lived + self.attention_scores

    @property
    def peak_op(self) -> int:
        return int(np.argmax(self.live)) if len(self.live) else 0

    @property
    def peak_bytes(self) -> int:
        return int(self.live[self.peak_op]) if len(self.live) else 0


def scores_bytes(q_shape: tuple[int, ...], keys: int, itemsize: float) -> int:
    """A materialized attention's scores and their softmax: 2 x batch x heads x Nq x Nk."""
    *lead, nq, _d = q_shape
    return int(2 * prod(lead) * nq * keys * itemsize)


def flash_tile(sram_bytes: int, head_dim: int, itemsize: float) -> tuple[int, int]:
    """(Br, Bc) of FlashAttention for an SRAM budget: Bc = ceil(M/4d), Br = min(Bc, d)."""
    elements = int(sram_bytes / itemsize)
    bc = max(1, ceil(elements / (4 * head_dim)))
    return min(bc, head_dim), bc


def _score_chains(
    graph: Graph, cols: StorageColumns | None = None
) -> list[tuple[int, int, set[int]]]:
    """Explicit attention: (QK^T op, AV op, score storages) around each softmax whose
    input comes from a matmul and whose output feeds one, through views/elementwise.

    Ops are found by index (`graph.op_at`), never by position in `graph.ops`, and each
    walk visits a tensor at most once, so any op order (or a malformed, cyclic file)
    terminates."""
    chains: list[tuple[int, int, set[int]]] = []
    softmaxes = [op for op in graph.ops if "softmax" in op.target and op.name in _SOFTMAX]
    if not softmaxes:
        return chains
    readers = (cols if cols is not None else storage_columns(graph)).readers
    op_at, tensors = graph.op_at, graph.tensors
    for op in softmaxes:
        storages = {tensors[op.outputs[0]].storage_id}
        numel = tensors[op.outputs[0]].numel
        back, qk = op.inputs[0], None
        seen = {back}
        while (p := tensors[back].producer) is not None and (prod_op := op_at.get(p)) is not None:
            storages.add(tensors[back].storage_id)
            if prod_op.category is OpCategory.MATMUL:
                qk = p
                break
            same = [t for t in prod_op.inputs if tensors[t].numel == numel]
            if prod_op.category not in _PASS_THROUGH or not same or same[0] in seen:
                break
            back = same[0]
            seen.add(back)
        fwd, av = op.outputs[0], None
        seen = {fwd}
        while len(after := readers(fwd)) == 1 and (nxt := op_at.get(after[0])) is not None:
            if nxt.category is OpCategory.MATMUL:
                av = nxt.index
                break
            if nxt.category not in _PASS_THROUGH or not nxt.outputs or nxt.outputs[0] in seen:
                break
            fwd = nxt.outputs[0]
            seen.add(fwd)
            storages.add(tensors[fwd].storage_id)
        if qk is not None and av is not None:
            chains.append((qk, av, storages))
    return chains


@gc_paused()
def memory_timeline(
    graph: Graph,
    lifetimes: Lifetimes = "last-use",
    attention: AttentionMode = AttentionMode.CAPTURED,
    dtype: str | None = None,
    long_lived_ops: int = 100,
    tile_sram_bytes: int = 256 * 1024,
    gaps: Sequence[tuple[int, int, int]] = (),
) -> MemoryTimeline:
    """Live bytes at every op, split by category; see the module docstring."""
    if lifetimes not in ("last-use", "eager"):
        raise EdgewiseError(f"lifetimes must be last-use or eager (got '{lifetimes}')")
    if attention not in ("captured", "materialized", "fused"):
        raise EdgewiseError(
            f"attention must be captured, materialized or fused (got '{attention}')"
        )
    if dtype is not None and dtype not in DTYPES:
        raise EdgewiseError(f"unknown dtype '{dtype}': expected one of {', '.join(DTYPES)}")
    if long_lived_ops < 1:
        raise EdgewiseError(f"long_lived_ops must be a positive count (got {long_lived_ops})")
    if tile_sram_bytes < 1024:
        raise EdgewiseError(f"tile_sram_bytes must be at least 1024 (got {tile_sram_bytes})")
    n = len(graph.ops)
    target = DTYPES[dtype] if dtype else None

    per_element = DTYPE_BYTES[target] if target else None

    # --- storage lifetimes (the one liveness record), as columns ------------------------
    cols = storage_columns(graph)
    size = cols.sizes(per_element, per_element)
    first, last = cols.first_op, cols.last_use
    eager = lifetimes == "eager"

    op_stage = np.array(stage_position_of_ops(graph), dtype=np.int64)

    chains = _score_chains(graph, cols)
    score_storages = set().union(*(c[2] for c in chains)) if chains else set()
    is_score = np.zeros(len(cols), dtype=bool)
    is_score[[cols.row_of[sid] for sid in score_storages]] = True

    series = {k: np.zeros(n + 1, dtype=np.int64) for k in ("act", "long", "attn", "inp")}

    def add(key: str, start: int, end: int, nbytes: int) -> None:
        series[key][start] += nbytes
        series[key][end + 1] -= nbytes

    def add_rows(key: str, rows: np.ndarray, start: np.ndarray, end: np.ndarray) -> None:
        np.add.at(series[key], start[rows], size[rows])
        np.add.at(series[key], end[rows] + 1, -size[rows])

    # inputs and constants: from before the first op to their last use (eager: the end)
    outside = cols.of_kind(TensorKind.INPUT, TensorKind.CONSTANT)
    inp_end = np.full(len(cols), n - 1, dtype=np.int64) if eager else last
    add_rows("inp", outside & (inp_end >= 0), np.zeros(len(cols), dtype=np.int64), inp_end)
    # activations: from their writer to their last use (eager: or their release)
    act = cols.of_kind(TensorKind.ACTIVATION)
    end = np.maximum(np.maximum(last, cols.released_after) if eager else last, first)
    scores = act & is_score
    ordinary = act & ~is_score
    safe_last, safe_first = np.where(ordinary, last, 0), np.where(ordinary, first, 0)
    crosses = op_stage[safe_last] >= op_stage[safe_first] + 2 if n else np.zeros(0, dtype=bool)
    long = ordinary & ((last - first > long_lived_ops) | crosses)
    short = ordinary & ~long
    if attention != "fused":
        add_rows("attn", scores, first, end)
    add_rows("long", long, first, end)
    add_rows("act", short, first, end)
    spanned = short | long | (scores if attention != "fused" else False)
    key_of = np.where(long, 1, np.where(short, 0, 2))

    # --- a plan's gaps: spilled or dropped after `start`, back before `resume` ------------
    for sid, gap_start, resume in gaps:
        row = cols.row_of.get(sid)
        if row is None or not spanned[row]:
            raise EdgewiseError(f"gap for storage {sid}: the graph has no such activation")
        key = ("act", "long", "attn")[int(key_of[row])]
        start_, end_, nbytes = int(first[row]), int(end[row]), int(size[row])
        if not start_ <= gap_start < resume <= end_:
            raise EdgewiseError(
                f"gap ({gap_start}, {resume}) of storage {sid} is outside its life "
                f"(ops {start_} to {end_})"
            )
        if resume - gap_start > 1:
            series[key][gap_start + 1] -= nbytes
            series[key][resume] += nbytes

    # --- attention scores that the captured kernels never materialized -------------------
    if attention != "captured":
        for op in graph.ops:
            if op.category is not OpCategory.ATTENTION:
                continue
            q, k_ = graph.tensors[op.inputs[0]], graph.tensors[op.inputs[1]]
            itemsize = DTYPE_BYTES[target or q.dtype]
            d = q.shape[-1]
            if attention == "materialized":
                add("attn", op.index, op.index, scores_bytes(q.shape, k_.shape[-2], itemsize))
            else:
                br, bc = flash_tile(tile_sram_bytes, d, itemsize)
                add("attn", op.index, op.index, int((br * bc + 2 * br) * itemsize))
    if attention == "fused":
        # the dtype of the first tensor (in graph order) living in one of the chain's
        # storages: rows are in order of first appearance and keep that tensor's dtype
        for qk, av, storages in chains:
            dtype_ = cols.dtypes[min(cols.row_of[sid] for sid in storages)]
            d = graph.tensors[graph.op_at[qk].inputs[-1]].shape[-2]
            br, bc = flash_tile(tile_sram_bytes, d, DTYPE_BYTES[target or dtype_])
            add("attn", qk, av, int((br * bc + 2 * br) * DTYPE_BYTES[target or dtype_]))

    # --- per-op weights and working set: each distinct storage an op touches, once ------
    touch_op = np.concatenate([cols.read_op, cols.write_op])
    touch_row = np.concatenate([cols.read_storage, cols.write_storage])
    once = first_of_pairs(touch_op, touch_row)
    touch_op, touch_row = touch_op[once], touch_row[once]
    working = np.zeros(n, dtype=np.int64)
    weights = np.zeros(n, dtype=np.int64)
    np.add.at(working, touch_op, size[touch_row])
    heavy = cols.is_weight[touch_row]
    np.add.at(weights, touch_op[heavy], size[touch_row[heavy]])

    cum = {k: np.cumsum(v)[:n] for k, v in series.items()}
    live = cum["act"] + cum["long"] + cum["attn"]
    peak_op = int(np.argmax(live)) if n else 0
    peak = int(live[peak_op]) if n else 0
    table = tuple(
        _long_lived_row(graph, cols, row, int(size[row]), int(end[row]), op_stage, peak_op, peak)
        for row in np.flatnonzero(long).tolist()
    )
    return MemoryTimeline(
        model=graph.model,
        lifetimes=lifetimes,
        attention=attention,
        dtype=dtype,
        long_lived_ops=long_lived_ops,
        scopes=tuple(op.scope for op in graph.ops),
        targets=tuple(op.target for op in graph.ops),
        activations=cum["act"],
        long_lived=cum["long"],
        attention_scores=cum["attn"],
        inputs=cum["inp"],
        weights=weights,
        working_set=working,
        long_lived_table=table,
    )


def _long_lived_row(
    graph: Graph,
    cols: StorageColumns,
    row: int,
    nbytes: int,
    end: int,
    op_stage: np.ndarray,
    peak_op: int,
    peak: int,
) -> LongLivedTensor:
    first, last_use = int(cols.first_op[row]), int(cols.last_use[row])
    # the ops reading any tensor of the storage, ascending: the liveness record's uses
    consumer_scopes = tuple(dict.fromkeys(graph.op_at[i].scope for i in cols.uses_of(row)))
    live_at_peak = first <= peak_op <= end
    return LongLivedTensor(
        storage_id=int(cols.ids[row]),
        producer_scope=graph.op_at[first].scope,
        consumer_scopes=consumer_scopes,
        bytes=nbytes,
        first_op=first,
        last_op=end,
        span_ops=end - first,
        span_stages=int(op_stage[last_use] - op_stage[first]),
        share_of_peak=nbytes / peak if live_at_peak and peak else 0.0,
    )
