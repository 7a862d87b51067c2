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
from itertools import pairwise
from math import prod

import numpy as np

from edgewise.analysis.conventions import convention
from edgewise.analysis.formulas import OpArgs, resolve
from edgewise.analysis.lifetimes import WEIGHT_KINDS, storage_lifetimes
from edgewise.analysis.memory import scores_bytes
from edgewise.analysis.profile import op_costs
from edgewise.ir.categories import OpCategory
from edgewise.ir.graph import Graph, TensorKind, rescaled_bytes
from edgewise.ir.vocab import PRECISION_BYTES, AttentionMode


@dataclass(frozen=True, slots=True)
class Storage:
    """An activation storage (or model input) the SRAM schedule must place."""

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


def _product_dims(a: OpArgs) -> tuple[int, int]:
    """(K, N): the reduction length and output width of an op's products.

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
            return w[0] // groups * prod(w[2:]), w[1]
        return w[1] * prod(w[2:]), w[0] // groups
    if cat is OpCategory.ATTENTION:
        q, k = a.args[0].shape, a.args[1].shape
        return q[-1], k[-2]
    if cat is OpCategory.MATMUL:
        mats = [t for t in a.tensors_in if len(t.shape) >= 2]
        if len(mats) >= 2:
            return mats[-2].shape[-1], mats[-1].shape[-1]
    return 0, 0


def op_workload(
    graph: Graph,
    weight_precision: str = "fp32",
    activation_precision: str = "fp32",
    attention: AttentionMode = AttentionMode.CAPTURED,
) -> OpWorkload:
    """Per-op demands of `graph` with weights and activations at the given precisions."""
    n = len(graph.ops)
    w_bytes, a_bytes = PRECISION_BYTES[weight_precision], PRECISION_BYTES[activation_precision]
    lives = storage_lifetimes(graph)
    costs = op_costs(graph, convention("default"))
    macs = np.array([c.count.macs for c in costs], dtype=np.int64)
    vector = np.array([c.count.vector_ops for c in costs], dtype=np.int64)
    dims = np.zeros((n, 2), dtype=np.int64)
    weight = np.zeros(n, dtype=np.int64)
    read = np.zeros(n, dtype=np.int64)
    write = np.zeros(n, dtype=np.int64)
    operands = np.zeros(n, dtype=np.int64)
    scores = np.zeros(n, dtype=np.int64)
    size = {
        sid: rescaled_bytes(
            life.nbytes, life.dtype, w_bytes if life.kind in WEIGHT_KINDS else a_bytes
        )
        for sid, life in lives.items()
    }
    placed = {  # activations, and inputs/constants that some op reads
        sid for sid, life in lives.items() if life.kind not in WEIGHT_KINDS and life.first_op >= 0
    }
    reads: list[tuple[int, ...]] = []
    writes: list[tuple[int, ...]] = []
    for op in graph.ops:
        if macs[op.index]:
            dims[op.index] = _product_dims(resolve(op, graph))
        read_ids = dict.fromkeys(graph.tensors[t].storage_id for t in op.inputs)
        if op.category is OpCategory.VIEW:  # metadata only: no bytes move
            reads.append(())
            writes.append(())
            continue
        mine = tuple(s for s in read_ids if s in placed)
        weight[op.index] = sum(size[s] for s in read_ids if lives[s].kind in WEIGHT_KINDS)
        read[op.index] = sum(size[s] for s in mine)
        created = tuple(
            dict.fromkeys(
                sid
                for tid in op.outputs
                if (sid := graph.tensors[tid].storage_id) in placed
                and lives[sid].first_op == op.index
                and lives[sid].kind is TensorKind.ACTIVATION
            )
        )
        write[op.index] = sum(size[s] for s in created)
        operands[op.index] = sum(size[s] for s in {*mine, *created})
        reads.append(mine)
        writes.append(created)
        if op.category is OpCategory.ATTENTION and attention == AttentionMode.MATERIALIZED:
            q, k = graph.tensors[op.inputs[0]], graph.tensors[op.inputs[1]]
            scores[op.index] = scores_bytes(q.shape, k.shape[-2], a_bytes)

    storages = []
    gap_rows: list[tuple[int, int, int, int]] = []
    for sid in sorted(placed, key=lambda s: (lives[s].first_op, s)):
        life = lives[sid]
        events = life.events
        first_gap = len(gap_rows)
        gap_rows += [(sid, a, b, size[sid]) for a, b in pairwise(events)]
        storages.append(
            Storage(
                sid,
                size[sid],
                life.first_op,
                life.uses,
                life.is_output,
                life.kind is not TensorKind.ACTIVATION,
                tuple(range(first_gap, len(gap_rows))),
                events,
            )
        )
    gaps = np.array(gap_rows, dtype=np.int64).reshape(-1, 4)
    inputs = sum(s for sid, s in size.items() if lives[sid].kind is TensorKind.INPUT)
    weights_total = sum(s for sid, s in size.items() if lives[sid].kind in WEIGHT_KINDS)
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
        weight_bytes=weight,
        act_read_bytes=read,
        act_write_bytes=write,
        scores_bytes=scores,
        operand_bytes=operands,
        storages=tuple(storages),
        reads=tuple(reads),
        writes=tuple(writes),
        gap_storage=gaps[:, 0].copy(),
        gap_start=gaps[:, 1].copy(),
        gap_end=gaps[:, 2].copy(),
        gap_bytes=gaps[:, 3].copy(),
        input_bytes=int(inputs),
        output_bytes=int(sum(size[s] for s in placed if lives[s].is_output)),
        total_weight_bytes=int(weights_total),
    )


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
