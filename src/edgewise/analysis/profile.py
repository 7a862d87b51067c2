"""Per-op, per-layer and per-block profile: parameters, MACs, vector ops, bytes written.

Every figure is a sum over ops, so rows at any grouping add up to the same totals:
- params: elements of the parameters an op reads first (a shared weight counts once,
  where it is first used);
- macs / vector_ops: the op's count under the chosen convention;
- activation_bytes: bytes of new storage the op allocates for its outputs (views and
  in-place results allocate none).
Ops with no formula are listed in the uncounted ledger, never silently zero.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from edgewise.analysis.conventions import STRING_PADDED, Convention, convention
from edgewise.analysis.formulas import (
    FACTORIES,
    VIEWS,
    ZERO,
    Count,
    formula_for,
    resolve,
    signature,
)
from edgewise.errors import EdgewiseError
from edgewise.ir.graph import Graph, TensorKind, gc_paused
from edgewise.ir.vocab import STRING_PADDING_CONVS

Grouping = Literal["op", "layer", "block"]


@dataclass(frozen=True, slots=True)
class OpCost:
    """One op's share of every profile column."""

    count: Count
    params: int
    activation_bytes: int


@dataclass(frozen=True, slots=True)
class ProfileRow:
    name: str  # op target, layer scope or block scope
    module_type: str  # class of the module that ran it ("" for a block)
    op_count: int  # ATen ops in the row
    params: int
    macs: int
    vector_ops: int
    flops: int
    activation_bytes: int
    moved_bytes: int


@dataclass(frozen=True, slots=True)
class UncountedOp:
    target: str
    occurrences: int
    output_bytes: int
    example_scope: str


@dataclass(frozen=True)
class Profile:
    model: str
    convention: str
    by: Grouping
    rows: tuple[ProfileRow, ...]
    totals: ProfileRow
    uncounted: tuple[UncountedOp, ...]
    flops_per_mac: int


def op_costs(graph: Graph, conv: Convention) -> tuple[OpCost, ...]:
    """Cost of every op in execution order under a convention."""
    cols = op_cost_columns(graph, conv)
    return tuple(map(OpCost, cols.counts, cols.params, cols.activation_bytes))


@dataclass(frozen=True)
class OpCostColumns:
    """`op_costs` as columns, one entry per op in execution order, and each op's
    `signature` (None: counted on its own) for callers that compute more from shapes."""

    counts: list[Count]
    params: list[int]
    activation_bytes: list[int]
    signatures: list[tuple[Any, ...] | None]


# ops that compute nothing under every convention (views, factories): counted without a
# signature, as they are a third of a large graph's ops
_FREE = frozenset((*VIEWS, *FACTORIES))


@gc_paused()
def op_counts(graph: Graph, conv: Convention) -> tuple[list[Count], list[tuple[Any, ...] | None]]:
    """Every op's count, each distinct signature counted once (see `formulas`), and the
    signatures (None: counted on its own). What the simulator's workload needs."""
    tensors, rule, scopes = graph.tensors, conv.rule, graph.scopes
    padded = set(graph.meta.get(STRING_PADDING_CONVS) or ())
    known: dict[tuple[Any, ...], Count] = {}
    counts: list[Count] = []
    signatures: list[tuple[Any, ...] | None] = []
    free_target: dict[str, bool] = {}
    for op in graph.ops:
        free = free_target.get(op.target)
        if free is None:
            free = free_target[op.target] = op.name in _FREE
        key: tuple[Any, ...] | None = None
        count = ZERO
        if not free:
            module_type = scopes.get(op.scope, "")
            if op.scope in padded:
                module_type += STRING_PADDED
            try:
                key = signature(op, tensors, module_type)
                found = known.get(key) if key is not None else None
                if found is None:
                    found = rule(resolve(op, graph), module_type)
                    if key is not None:
                        known[key] = found
                count = found
            except (IndexError, KeyError, TypeError, AttributeError, ValueError) as e:
                raise EdgewiseError(
                    f"cannot count op {op.index} ({op.target}) in '{op.scope}': unexpected "
                    f"arguments ({type(e).__name__}: {e}); report it with the model"
                ) from e
        counts.append(count)
        signatures.append(key)
    return counts, signatures


@gc_paused()
def op_cost_columns(graph: Graph, conv: Convention) -> OpCostColumns:
    """Every op's cost: its count (`op_counts`), the parameters it is the first to read,
    and the bytes of the new storages it writes."""
    counts, signatures = op_counts(graph, conv)
    tensors = graph.tensors
    parameter_storage = {
        tid: t.storage_id for tid, t in tensors.items() if t.kind is TensorKind.PARAMETER
    }
    first_reader: dict[int, int] = {}  # parameter storage -> first op that reads it
    for op in graph.ops:
        for tid in op.inputs:
            sid = parameter_storage.get(tid)
            if sid is not None and sid not in first_reader:
                first_reader[sid] = op.index
    params_at: Counter[int] = Counter()
    for t in graph.tensors_of_kind(TensorKind.PARAMETER):
        if t.storage_id in first_reader and t.name:  # one record per distinct storage
            params_at[first_reader[t.storage_id]] += t.numel
    seen_storage = {t.storage_id for t in tensors.values() if t.kind is not TensorKind.ACTIVATION}
    params: list[int] = []
    written_bytes: list[int] = []
    for op in graph.ops:
        written = 0
        for tid in op.outputs:
            t = tensors[tid]
            if t.storage_id not in seen_storage:
                seen_storage.add(t.storage_id)
                written += t.storage_bytes
        params.append(params_at[op.index])
        written_bytes.append(written)
    return OpCostColumns(counts, params, written_bytes, signatures)


def uncounted_ops(graph: Graph) -> tuple[UncountedOp, ...]:
    """Ops no formula covers: shown in every report, never silently zero."""
    has_formula: dict[str, bool] = {}  # by target: each distinct target looked up once
    hits: dict[str, list[int]] = {}
    for op in graph.ops:
        known = has_formula.get(op.target)
        if known is None:
            known = has_formula[op.target] = formula_for(op.name) is not None
        if not known:
            hits.setdefault(op.target, []).append(op.index)
    op_at = graph.op_at
    return tuple(
        UncountedOp(
            target=target,
            occurrences=len(indices),
            output_bytes=sum(graph.tensors[t].nbytes for i in indices for t in op_at[i].outputs),
            example_scope=op_at[indices[0]].scope,
        )
        for target, indices in hits.items()
    )


def row_keys(graph: Graph, by: Grouping, depth: int) -> list[str]:
    """The row each op adds to: itself, its layer (scope) or its block."""
    if by == "op":
        return [f"{op.index}:{op.target}" for op in graph.ops]
    if by == "layer":
        return [op.scope for op in graph.ops]
    block: dict[str, str] = {}  # by scope: each distinct scope cut once
    for op in graph.ops:
        if op.scope not in block:
            block[op.scope] = graph.block_of(op, depth)
    return [block[op.scope] for op in graph.ops]


def _sums(columns: list[list[int]], group: np.ndarray, groups: int) -> list[list[int]]:
    """Per group, the sum of each column, exactly as Python adds them: in int64 when every
    value is an integer and no sum can overflow it, else value by value."""
    out = []
    for values in columns:
        array = np.array(values).reshape(-1)  # int64 only if every value is an int
        exact = array.dtype == np.int64 and float(np.abs(array).sum(dtype=np.float64)) < 2**62
        if exact:
            sums = np.zeros(groups, dtype=np.int64)
            np.add.at(sums, group, array)
            out.append(sums.tolist())
        else:
            total = [0] * groups
            for g, v in zip(group.tolist(), values, strict=True):
                total[g] += v
            out.append(total)
    return out


@gc_paused()
def profile(
    graph: Graph, by: Grouping = "layer", depth: int = 2, convention_name: str = "default"
) -> Profile:
    """Group op costs into rows, in order of first execution."""
    if by not in ("op", "layer", "block"):
        raise EdgewiseError(f"unknown grouping '{by}': expected op, layer or block")
    if depth < 0:
        raise EdgewiseError(f"depth must be 0 or more (got {depth})")
    conv = convention(convention_name)
    cost = op_cost_columns(graph, conv)
    counts, params, written = cost.counts, cost.params, cost.activation_bytes
    group_of: dict[str, int] = {}  # row name -> row number, in order of first execution
    group = np.array(
        [group_of.setdefault(key, len(group_of)) for key in row_keys(graph, by, depth)],
        dtype=np.int64,
    ).reshape(-1)
    first_position = np.unique(group, return_index=True)[1].tolist()  # row order
    first_op = [graph.ops[p].index for p in first_position]  # each row's first op
    columns = [[c.macs for c in counts], [c.vector_ops for c in counts],
               [c.moved_bytes for c in counts], params, written]  # fmt: skip
    sizes = np.bincount(group, minlength=len(first_op)).tolist()
    macs, vector_ops, moved, param_sums, act_bytes = _sums(columns, group, len(first_op))

    fpm = conv.flops_per_mac

    def row(name: str, values: tuple[int, ...], op_count: int, module_type: str) -> ProfileRow:
        m, v, mv, p, a = values  # (name, module, ops, params, MACs, vector, FLOPs, act., moved)
        return ProfileRow(name, module_type, op_count, p, m, v, fpm * m + v, a, mv)

    def module_type(name: str, g: int) -> str:
        scope = graph.op_at[first_op[g]].scope if by == "op" else name
        return graph.scopes.get(scope, "").rsplit(".", 1)[-1]

    rows = tuple(
        row(name, (macs[g], vector_ops[g], moved[g], param_sums[g], act_bytes[g]), sizes[g],
            module_type(name, g))
        for name, g in group_of.items()
    )  # fmt: skip
    return Profile(
        model=graph.model,
        convention=conv.name,
        by=by,
        rows=rows,
        totals=row("total", tuple(sum(c) for c in columns), len(graph.ops), ""),
        uncounted=uncounted_ops(graph),
        flops_per_mac=conv.flops_per_mac,
    )
