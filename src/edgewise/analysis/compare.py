"""Every convention side by side, split by op category: where published figures differ.

`convention_breakdown(graph)` answers "why does paper A say 339 G and paper B 402 G for
the same U-Net": each cell is what one convention counts for one op category.
"""

from __future__ import annotations

from dataclasses import dataclass

from edgewise.analysis.conventions import CONVENTIONS
from edgewise.analysis.formulas import ZERO, Count
from edgewise.analysis.profile import op_costs
from edgewise.ir.categories import OpCategory
from edgewise.ir.graph import Graph


@dataclass(frozen=True, slots=True)
class ConventionTotals:
    convention: str
    flops_per_mac: int
    by_category: dict[OpCategory, Count]  # only categories with a non-zero count
    total: Count

    @property
    def headline(self) -> int:
        """The number the tool itself prints (FLOPs at its own flops-per-MAC)."""
        return self.total.flops(self.flops_per_mac)


def convention_breakdown(graph: Graph) -> tuple[ConventionTotals, ...]:
    out = []
    for conv in CONVENTIONS.values():
        costs = op_costs(graph, conv)
        by_category: dict[OpCategory, Count] = {}
        for op, cost in zip(graph.ops, costs, strict=True):
            if cost.count.macs or cost.count.vector_ops:
                by_category[op.category] = by_category.get(op.category, ZERO) + cost.count
        total = sum((c.count for c in costs), ZERO)
        out.append(ConventionTotals(conv.name, conv.flops_per_mac, by_category, total))
    return tuple(out)
