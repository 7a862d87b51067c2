"""Render a `Profile`: rich table for people, JSON and CSV for machines."""

from __future__ import annotations

import csv
import io
from dataclasses import asdict, fields
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

from edgewise.analysis.conventions import CONVENTIONS
from edgewise.analysis.profile import Profile, ProfileRow
from edgewise.report.format import binary_bytes, si

UNITS = {
    "params": "elements",
    "macs": "multiply-accumulates",
    "vector_ops": "non-MAC arithmetic ops, weighted per element",
    "flops": "flops_per_mac x macs + vector_ops",
    "activation_bytes": "bytes of new activation storage written",
    "moved_bytes": "bytes read + written by data-movement ops",
}


def profile_to_dict(prof: Profile) -> dict[str, Any]:
    totals = asdict(prof.totals)
    return {
        "model": prof.model,
        "convention": prof.convention,
        "convention_summary": CONVENTIONS[prof.convention].summary,
        "flops_per_mac": prof.flops_per_mac,
        "by": prof.by,
        "units": UNITS,
        "totals": {k: totals[k] for k in ("params", "macs", "vector_ops", "flops",
                                          "activation_bytes", "moved_bytes", "op_count")},
        "rows": [asdict(r) for r in prof.rows],
        "uncounted": [asdict(u) for u in prof.uncounted],
    }  # fmt: skip


def profile_to_csv(prof: Profile) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    names = [f.name for f in fields(ProfileRow)]
    writer.writerow(names)
    for r in (*prof.rows, prof.totals):
        writer.writerow([getattr(r, n) for n in names])
    return out.getvalue()


def _shown_rows(prof: Profile, limit: int) -> tuple[list[ProfileRow], int]:
    """All rows, or the `limit` with the most FLOPs and parameters, in execution order."""
    if limit <= 0 or len(prof.rows) <= limit:
        return list(prof.rows), 0
    t = prof.totals
    weight = [r.flops / max(t.flops, 1) + r.params / max(t.params, 1) for r in prof.rows]
    heaviest = np.argsort(-np.array(weight, dtype=np.float64), kind="stable")[:limit]
    keep = np.zeros(len(prof.rows), dtype=bool)
    keep[heaviest] = True
    return [r for r, kept in zip(prof.rows, keep.tolist(), strict=True) if kept], len(
        prof.rows
    ) - limit


def render_profile(prof: Profile, console: Console, limit: int = 40) -> None:
    rows, hidden = _shown_rows(prof, limit)
    table = Table(
        title=f"{prof.model}: per {prof.by}, convention '{prof.convention}'",
        caption=CONVENTIONS[prof.convention].summary,
    )
    table.add_column(prof.by, overflow="fold")
    table.add_column("module")
    for col in ("params", "MACs", "vector ops", "FLOPs", "act. written"):
        table.add_column(col, justify="right")
    for r in rows:
        table.add_row(r.name or "<root>", r.module_type, si(r.params), si(r.macs),
                      si(r.vector_ops), si(r.flops), binary_bytes(r.activation_bytes))  # fmt: skip
    t = prof.totals
    table.add_section()
    table.add_row("total", f"{t.op_count} ops", si(t.params), si(t.macs), si(t.vector_ops),
                  si(t.flops), binary_bytes(t.activation_bytes), style="bold")  # fmt: skip
    console.print(table)
    if hidden:
        console.print(
            f"{hidden} lighter rows not shown (totals include them); --rows 0 shows all, "
            "--json/--csv hold every row."
        )
    if prof.uncounted:
        ledger = Table(title="uncounted: ops with no formula (not included above)")
        for col in ("op", "count", "output bytes", "first seen in"):
            ledger.add_column(col)
        for u in prof.uncounted:
            ledger.add_row(
                u.target, str(u.occurrences), binary_bytes(u.output_bytes), u.example_scope
            )
        console.print(ledger)
    else:
        console.print("uncounted: none (every op has a formula)")
