"""What every op asks of any accelerator, independent of the accelerator.

`OpWorkload` holds per-op numpy arrays (MACs, vector ops, the matmul dimensions that
decide how well an op maps onto a MAC array, weight and activation bytes at the chosen
precision) and the activation storages' sizes and use times, which the SRAM schedule
needs. It is built once per graph and precision; the cost model then evaluates any
number of hardware specs against it with array arithmetic.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from math import prod

import numpy as np

from edgewise.analysis.conventions import convention
from edgewise.analysis.formulas import OpArgs, resolve
from edgewise.analysis.memory import AttentionMode, scores_bytes
from edgewise.analysis.profile import op_costs
from edgewise.ir.categories import OpCategory
from edgewise.ir.graph import Graph, TensorKind, rescaled_bytes

_WEIGHTS = (TensorKind.PARAMETER, TensorKind.BUFFER)
PRECISION_BYTES = {"fp32": 4.0, "fp16": 2.0, "bf16": 2.0, "int8": 1.0, "int4": 0.5, "int2": 0.25}


@dataclass(frozen=True, slots=True)
class Storage:
    """An activation storage the SRAM schedule must place: size and every op that uses it."""

    id: int
    nbytes: int  # at the activation precision
    first_op: int  # the op that writes it (a model input: the op that first reads it)
    uses: tuple[int, ...]  # ops that read it, in order (the last one frees it)
    is_output: bool  # a model output: written back to DRAM at the end
    is_input: bool  # a model input: starts in DRAM, so its first read is a DRAM read


@dataclass(frozen=True)
class OpWorkload:
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
    storages: tuple[Storage, ...]
    reads: tuple[tuple[int, ...], ...]  # per op: activation/input storage ids it reads
    writes: tuple[tuple[int, ...], ...]  # per op: activation storage ids it creates
    input_bytes: int  # model inputs: read once from DRAM
    output_bytes: int  # model outputs: written once to DRAM
    total_weight_bytes: int  # every distinct weight once (the compulsory weight traffic)

    @property
    def n_ops(self) -> int:
        return len(self.scopes)


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
    attention: AttentionMode = "captured",
) -> OpWorkload:
    """Per-op demands of `graph` with weights and activations at the given precisions."""
    n = len(graph.ops)
    w_bytes, a_bytes = PRECISION_BYTES[weight_precision], PRECISION_BYTES[activation_precision]

    costs = op_costs(graph, convention("default"))
    macs = np.array([c.count.macs for c in costs], dtype=np.int64)
    vector = np.array([c.count.vector_ops for c in costs], dtype=np.int64)
    dims = np.zeros((n, 2), dtype=np.int64)
    weight = np.zeros(n, dtype=np.int64)
    read = np.zeros(n, dtype=np.int64)
    write = np.zeros(n, dtype=np.int64)
    scores = np.zeros(n, dtype=np.int64)

    kind: dict[int, TensorKind] = {}
    size: dict[int, int] = {}
    first: dict[int, int] = {}
    uses: dict[int, list[int]] = {}
    reads: list[tuple[int, ...]] = []
    writes: list[tuple[int, ...]] = []
    for t in graph.tensors.values():
        kind.setdefault(t.storage_id, t.kind)
        per = w_bytes if t.kind in _WEIGHTS else a_bytes
        size.setdefault(t.storage_id, rescaled_bytes(t.storage_bytes, t.dtype, per))
    outputs = {graph.tensors[t].storage_id for t in graph.outputs}
    for op in graph.ops:
        if macs[op.index]:
            dims[op.index] = _product_dims(resolve(op, graph))
        read_ids = dict.fromkeys(graph.tensors[t].storage_id for t in op.inputs)
        if op.category is OpCategory.VIEW:  # metadata only: no bytes move, nothing to place,
            reads.append(())  # but the tensor must exist when the view is taken, so it is a
            writes.append(())  # use: a plan's gap never spans one
            for sid in read_ids:
                if kind[sid] not in _WEIGHTS:
                    uses.setdefault(sid, []).append(op.index)
            continue
        for sid in read_ids:
            if kind[sid] in _WEIGHTS:
                weight[op.index] += size[sid]
            else:
                read[op.index] += size[sid]
                uses.setdefault(sid, []).append(op.index)
                first.setdefault(sid, op.index)  # model inputs and constants: first read
        reads.append(tuple(s for s in read_ids if kind[s] not in _WEIGHTS))
        created = []
        for tid in op.outputs:
            sid = graph.tensors[tid].storage_id
            if kind[sid] is TensorKind.ACTIVATION and sid not in first:
                first[sid] = op.index
                write[op.index] += size[sid]
                created.append(sid)
        writes.append(tuple(created))
        if op.category is OpCategory.ATTENTION and attention == "materialized":
            q, k = graph.tensors[op.inputs[0]], graph.tensors[op.inputs[1]]
            scores[op.index] = scores_bytes(q.shape, k.shape[-2], a_bytes)

    storages = tuple(
        Storage(
            sid,
            size[sid],
            first[sid],
            tuple(uses.get(sid, ())),
            sid in outputs,
            kind[sid] is not TensorKind.ACTIVATION,
        )
        for sid in sorted(first, key=first.__getitem__)
    )
    inputs = sum(s for sid, s in size.items() if kind[sid] is TensorKind.INPUT)
    weights_total = sum(s for sid, s in size.items() if kind[sid] in _WEIGHTS)
    return OpWorkload(
        model=graph.model,
        weight_precision=weight_precision,
        activation_precision=activation_precision,
        attention=attention,
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
        storages=storages,
        reads=tuple(reads),
        writes=tuple(writes),
        input_bytes=int(inputs),
        output_bytes=int(sum(size[s] for s in outputs)),
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
        weight_bytes=weights.astype(np.int64),
        scores_bytes=scores,
        act_read_bytes=reads,
        total_weight_bytes=int(work.total_weight_bytes * ratio),
    )
