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
from typing import Literal

from edgewise.analysis.conventions import Convention, convention
from edgewise.analysis.formulas import ZERO, Count, formula_for, resolve
from edgewise.errors import EdgewiseError
from edgewise.ir.graph import Graph, TensorKind

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
    first_reader: dict[int, int] = {}  # parameter storage -> first op that reads it
    seen_storage: set[int] = set()
    for t in graph.tensors.values():
        if t.kind is not TensorKind.ACTIVATION:
            seen_storage.add(t.storage_id)
    for op in graph.ops:
        for tid in op.inputs:
            t = graph.tensors[tid]
            if t.kind is TensorKind.PARAMETER:
                first_reader.setdefault(t.storage_id, op.index)
    params_at: Counter[int] = Counter()
    for t in graph.tensors_of_kind(TensorKind.PARAMETER):
        if t.storage_id in first_reader and t.name:  # one record per distinct storage
            params_at[first_reader[t.storage_id]] += t.numel
    costs = []
    for op in graph.ops:
        written = 0
        for tid in op.outputs:
            t = graph.tensors[tid]
            if t.storage_id not in seen_storage:
                seen_storage.add(t.storage_id)
                written += t.storage_bytes
        scope_type = graph.scopes.get(op.scope, "")
        try:
            count = conv.rule(resolve(op, graph), scope_type)
        except (IndexError, KeyError, TypeError, AttributeError, ValueError) as e:
            raise EdgewiseError(
                f"cannot count op {op.index} ({op.target}) in '{op.scope}': unexpected "
                f"arguments ({type(e).__name__}: {e}); report it with the model"
            ) from e
        costs.append(OpCost(count, params_at[op.index], written))
    return tuple(costs)


def uncounted_ops(graph: Graph) -> tuple[UncountedOp, ...]:
    """Ops no formula covers: shown in every report, never silently zero."""
    hits: dict[str, list[int]] = {}
    for op in graph.ops:
        if formula_for(op.name) is None:
            hits.setdefault(op.target, []).append(op.index)
    return tuple(
        UncountedOp(
            target=target,
            occurrences=len(indices),
            output_bytes=sum(
                graph.tensors[t].nbytes for i in indices for t in graph.ops[i].outputs
            ),
            example_scope=graph.ops[indices[0]].scope,
        )
        for target, indices in hits.items()
    )


def _row_key(graph: Graph, index: int, by: Grouping, depth: int) -> str:
    op = graph.ops[index]
    if by == "op":
        return f"{index}:{op.target}"
    if by == "layer":
        return op.scope
    return graph.block_of(op, depth)


def profile(
    graph: Graph, by: Grouping = "layer", depth: int = 2, convention_name: str = "default"
) -> Profile:
    """Group op costs into rows, in order of first execution."""
    if by not in ("op", "layer", "block"):
        raise EdgewiseError(f"unknown grouping '{by}': expected op, layer or block")
    if depth < 0:
        raise EdgewiseError(f"depth must be 0 or more (got {depth})")
    conv = convention(convention_name)
    costs = op_costs(graph, conv)
    groups: dict[str, list[int]] = {}
    for op in graph.ops:
        groups.setdefault(_row_key(graph, op.index, by, depth), []).append(op.index)

    def row(name: str, indices: list[int], module_type: str) -> ProfileRow:
        count = sum((costs[i].count for i in indices), ZERO)
        return ProfileRow(
            name=name,
            module_type=module_type,
            op_count=len(indices),
            params=sum(costs[i].params for i in indices),
            macs=count.macs,
            vector_ops=count.vector_ops,
            flops=count.flops(conv.flops_per_mac),
            activation_bytes=sum(costs[i].activation_bytes for i in indices),
            moved_bytes=count.moved_bytes,
        )

    def module_type(name: str) -> str:
        if by == "op":
            return graph.scopes.get(graph.ops[int(name.split(":")[0])].scope, "").rsplit(".", 1)[-1]
        return graph.scopes.get(name, "").rsplit(".", 1)[-1]

    rows = tuple(row(name, idx, module_type(name)) for name, idx in groups.items())
    return Profile(
        model=graph.model,
        convention=conv.name,
        by=by,
        rows=rows,
        totals=row("total", [op.index for op in graph.ops], ""),
        uncounted=uncounted_ops(graph),
        flops_per_mac=conv.flops_per_mac,
    )
