"""Render a comparison with published real-chip latencies: one row per published figure,
then the agreement per preset and per source table (rich for people, JSON for machines)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from rich.console import Console
from rich.table import Table

from edgewise.execute.published import Comparison, agreement


def _number(x: float) -> float | None:
    return x if math.isfinite(x) else None


def published_to_dict(comparisons: Sequence[Comparison]) -> dict[str, Any]:
    return {
        "units": {
            "published_s": "seconds per inference, batch 1 (1 / FPS where the vendor gives FPS)",
            "predicted_s": "seconds, edgewise simulate at the row's preset and precision",
            "ratio": "predicted / published",
            "median_error": "median of |ratio - 1|",
            "worst_ratio": "max of max(ratio, 1 / ratio)",
        },
        "rows": [
            {
                "source": c.row.source,
                "model": c.row.model,
                "component": c.row.component,
                "device": c.row.device,
                "vendor_precision": c.row.precision,
                "preset": c.preset,
                "precision": c.precision,
                "published_s": c.row.latency_s,
                "predicted_s": _number(c.predicted_s),
                "ratio": _number(c.ratio),
                "skipped": c.skipped or None,
            }
            for c in comparisons
        ],
        "by_preset": [a.__dict__ for a in agreement(comparisons, "preset")],
        "by_source": [a.__dict__ for a in agreement(comparisons, "source")],
    }


def _ms(seconds: float) -> str:
    from edgewise.report.format import seconds as format_seconds

    return format_seconds(seconds) if math.isfinite(seconds) else "-"


def render_published(comparisons: Sequence[Comparison], console: Console) -> None:
    table = Table(title="simulated vs published latency (batch 1)")
    for column, justify in (("source", "left"), ("model", "left"), ("preset", "left"),
                            ("precision", "left"), ("published", "right"),
                            ("edgewise", "right"), ("ratio", "right")):  # fmt: skip
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    for c in comparisons:
        name = f"{c.row.model} {c.row.component}".strip()
        ratio = f"{c.ratio:.2f}" if not c.skipped else f"skipped: {c.skipped}"
        table.add_row(c.row.source, name, c.preset, c.precision, _ms(c.row.latency_s),
                      _ms(c.predicted_s), ratio)  # fmt: skip
    console.print(table)
    for key, title in (("preset", "per preset"), ("source", "per source table")):
        summary = Table(title=f"agreement {title}")
        for column in (key, "rows", "median error", "worst ratio", "Spearman"):
            summary.add_column(column, justify="left" if column == key else "right")
        for a in agreement(comparisons, key):
            rho = f"{a.spearman:.2f}" if math.isfinite(a.spearman) else "- (< 3 rows)"
            summary.add_row(a.group, str(a.rows), f"{a.median_error:.0%}",
                            f"{a.worst_ratio:.2f}x", rho)  # fmt: skip
        console.print(summary)
    skipped = sum(1 for c in comparisons if c.skipped)
    if skipped:
        console.print(f"{skipped} row(s) skipped (not in the agreement): see the table")
