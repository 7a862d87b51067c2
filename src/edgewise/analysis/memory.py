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

from edgewise.analysis.lifetimes import storage_lifetimes
from edgewise.analysis.stages import stage_position_of_ops
from edgewise.errors import EdgewiseError
from edgewise.ir.categories import OpCategory
from edgewise.ir.graph import DTYPE_BYTES, Graph, TensorKind, rescaled_bytes
from edgewise.ir.vocab import AttentionMode

Lifetimes = Literal["last-use", "eager"]
DTYPES = {"fp32": "float32", "fp16": "float16", "bf16": "bfloat16", "int8": "int8"}
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


@dataclass(frozen=True, slots=True)
class _Life:
    storage_id: int
    nbytes: int
    first: int
    last: int


def scores_bytes(q_shape: tuple[int, ...], keys: int, itemsize: float) -> int:
    """A materialized attention's scores and their softmax: 2 x batch x heads x Nq x Nk."""
    *lead, nq, _d = q_shape
    return int(2 * prod(lead) * nq * keys * itemsize)


def flash_tile(sram_bytes: int, head_dim: int, itemsize: float) -> tuple[int, int]:
    """(Br, Bc) of FlashAttention for an SRAM budget: Bc = ceil(M/4d), Br = min(Bc, d)."""
    elements = int(sram_bytes / itemsize)
    bc = max(1, ceil(elements / (4 * head_dim)))
    return min(bc, head_dim), bc


def _score_chains(graph: Graph) -> list[tuple[int, int, set[int]]]:
    """Explicit attention: (QK^T op, AV op, score storages) around each softmax whose
    input comes from a matmul and whose output feeds one, through views/elementwise."""
    chains = []
    for op in graph.ops:
        if op.name not in _SOFTMAX:
            continue
        storages = {graph.tensors[op.outputs[0]].storage_id}
        numel = graph.tensors[op.outputs[0]].numel
        back, qk = op.inputs[0], None
        while (p := graph.tensors[back].producer) is not None:
            prod_op = graph.ops[p]
            storages.add(graph.tensors[back].storage_id)
            if prod_op.category is OpCategory.MATMUL:
                qk = p
                break
            same = [t for t in prod_op.inputs if graph.tensors[t].numel == numel]
            if prod_op.category not in _PASS_THROUGH or not same:
                break
            back = same[0]
        fwd, av = op.outputs[0], None
        while len(readers := graph.consumers[fwd]) == 1:
            nxt = graph.ops[readers[0]]
            if nxt.category is OpCategory.MATMUL:
                av = nxt.index
                break
            if nxt.category not in _PASS_THROUGH or not nxt.outputs:
                break
            fwd = nxt.outputs[0]
            storages.add(graph.tensors[fwd].storage_id)
        if qk is not None and av is not None:
            chains.append((qk, av, storages))
    return chains


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

    # --- storage lifetimes (the one liveness record) ----------------------------------
    lives = storage_lifetimes(graph)
    kind = {sid: life.kind for sid, life in lives.items()}
    size = {
        sid: rescaled_bytes(life.nbytes, life.dtype, per_element) for sid, life in lives.items()
    }
    first = {sid: life.first_op for sid, life in lives.items()}
    last = {sid: life.last_use for sid, life in lives.items()}
    released = {sid: life.released_after for sid, life in lives.items()}

    op_stage = np.array(stage_position_of_ops(graph), dtype=np.int64)

    chains = _score_chains(graph)
    score_storages = set().union(*(c[2] for c in chains)) if chains else set()

    series = {k: np.zeros(n + 1, dtype=np.int64) for k in ("act", "long", "attn", "inp")}

    spans: dict[int, tuple[str, int, int, int]] = {}  # storage -> (series, start, end, bytes)

    def add(key: str, start: int, end: int, nbytes: int, sid: int = -1) -> None:
        series[key][start] += nbytes
        series[key][end + 1] -= nbytes
        if sid >= 0:
            spans[sid] = (key, start, end, nbytes)

    long_rows: list[_Life] = []
    for sid, nbytes in size.items():
        k = kind[sid]
        if k in (TensorKind.PARAMETER, TensorKind.BUFFER):
            continue
        if k in (TensorKind.INPUT, TensorKind.CONSTANT):
            end = n - 1 if lifetimes == "eager" else last[sid]
            if end >= 0:
                add("inp", 0, end, nbytes)
            continue
        start = first[sid]
        end = max(last[sid], released[sid]) if lifetimes == "eager" else last[sid]
        end = max(end, start)
        if sid in score_storages:
            if attention != "fused":
                add("attn", start, end, nbytes, sid)
            continue
        crosses = bool(op_stage[last[sid]] >= op_stage[start] + 2)
        if last[sid] - start > long_lived_ops or crosses:
            add("long", start, end, nbytes, sid)
            long_rows.append(_Life(sid, nbytes, start, end))
        else:
            add("act", start, end, nbytes, sid)

    # --- a plan's gaps: spilled or dropped after `start`, back before `resume` ------------
    for sid, gap_start, resume in gaps:
        if sid not in spans:
            raise EdgewiseError(f"gap for storage {sid}: the graph has no such activation")
        key, start, end, nbytes = spans[sid]
        if not start <= gap_start < resume <= end:
            raise EdgewiseError(
                f"gap ({gap_start}, {resume}) of storage {sid} is outside its life "
                f"(ops {start} to {end})"
            )
        if resume - gap_start > 1:
            series[key][gap_start + 1] -= nbytes
            series[key][resume] += nbytes

    # --- attention scores that the captured kernels never materialized -------------------
    for op in graph.ops:
        if op.category is not OpCategory.ATTENTION or attention == "captured":
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
        for qk, av, storages in chains:
            t = next(t for t in graph.tensors.values() if t.storage_id in storages)
            d = graph.tensors[graph.ops[qk].inputs[-1]].shape[-2]
            br, bc = flash_tile(tile_sram_bytes, d, DTYPE_BYTES[target or t.dtype])
            add("attn", qk, av, int((br * bc + 2 * br) * DTYPE_BYTES[target or t.dtype]))

    # --- per-op weights and working set ------------------------------------------------
    weights = np.zeros(n, dtype=np.int64)
    working = np.zeros(n, dtype=np.int64)
    for op in graph.ops:
        touched = {graph.tensors[t].storage_id for t in (*op.inputs, *op.outputs)}
        working[op.index] = sum(size[s] for s in touched)
        weights[op.index] = sum(
            size[s] for s in touched if kind[s] in (TensorKind.PARAMETER, TensorKind.BUFFER)
        )

    cum = {k: np.cumsum(v)[:n] for k, v in series.items()}
    live = cum["act"] + cum["long"] + cum["attn"]
    peak_op = int(np.argmax(live)) if n else 0
    peak = int(live[peak_op]) if n else 0
    table = tuple(
        _long_lived_row(graph, life, last[life.storage_id], op_stage, peak_op, peak)
        for life in long_rows
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
    graph: Graph, life: _Life, last_use: int, op_stage: np.ndarray, peak_op: int, peak: int
) -> LongLivedTensor:
    tensors = [t for t in graph.tensors.values() if t.storage_id == life.storage_id]
    producer = graph.ops[life.first].scope
    readers = sorted({i for t in tensors for i in graph.consumers[t.id]})
    consumer_scopes = tuple(dict.fromkeys(graph.ops[i].scope for i in readers))
    live_at_peak = life.first <= peak_op <= life.last
    return LongLivedTensor(
        storage_id=life.storage_id,
        producer_scope=producer,
        consumer_scopes=consumer_scopes,
        bytes=life.nbytes,
        first_op=life.first,
        last_op=life.last,
        span_ops=life.last - life.first,
        span_stages=int(op_stage[last_use] - op_stage[life.first]),
        share_of_peak=life.nbytes / peak if live_at_peak and peak else 0.0,
    )
