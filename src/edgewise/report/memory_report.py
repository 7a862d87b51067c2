"""Render a `MemoryTimeline`: rich summary for people, JSON and CSV for machines, PNG."""

from __future__ import annotations

import csv
import io
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.table import Table

from edgewise.analysis.memory import MemoryTimeline
from edgewise.analysis.stages import stage_of_ops, stages
from edgewise.ir.graph import Graph
from edgewise.report.figures import byte_ticks, pyplot, save_figure
from edgewise.report.format import binary_bytes

if TYPE_CHECKING:  # measuring needs torch; rendering a timeline does not
    from edgewise.execute.measure import MeasuredPeak

SERIES = ("activations", "long_lived", "attention_scores", "inputs", "weights", "working_set")


def _columns(tl: MemoryTimeline) -> tuple[list[list[int]], list[int]]:
    """Every series and the live bytes as Python ints, each converted once."""
    return [getattr(tl, k).tolist() for k in SERIES], tl.live.tolist()


def memory_to_dict(tl: MemoryTimeline, measured: MeasuredPeak | None = None) -> dict[str, Any]:
    peak = tl.peak_op
    series, live = _columns(tl)
    data: dict[str, Any] = {
        "model": tl.model,
        "units": "bytes",
        "lifetimes": tl.lifetimes,
        "attention": tl.attention,
        "dtype": tl.dtype or "captured",
        "long_lived_ops": tl.long_lived_ops,
        "peak_bytes": tl.peak_bytes,
        "peak_op": {"index": peak, "scope": tl.scopes[peak], "target": tl.targets[peak]},
        "at_peak": {k: int(getattr(tl, k)[peak]) for k in SERIES},
        "timeline": [
            {
                "op": i,
                "scope": tl.scopes[i],
                "target": tl.targets[i],
                **{k: values[i] for k, values in zip(SERIES, series, strict=True)},
                "live": live[i],
            }
            for i in range(len(tl.scopes))
        ],
        "long_lived": [asdict(r) for r in tl.long_lived_table],
    }
    if measured is not None:
        data["measured_peak_bytes"] = measured.peak_bytes
        data["measured_with_scratch_bytes"] = measured.with_scratch_bytes
        data["measured_device"] = measured.device
        data["measured_method"] = measured.method
    return data


def memory_to_csv(tl: MemoryTimeline) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["op", "scope", "target", *SERIES, "live"])
    series, live = _columns(tl)
    for i, row in enumerate(zip(*series, strict=True)):
        writer.writerow([i, tl.scopes[i], tl.targets[i], *row, live[i]])
    return out.getvalue()


def render_memory(
    tl: MemoryTimeline,
    console: Console,
    measured: MeasuredPeak | None = None,
    eager_peak: int | None = None,
    rows: int = 15,
) -> None:
    p = tl.peak_op
    summary = Table(
        title=f"{tl.model}: memory timeline ({tl.lifetimes} lifetimes, attention {tl.attention}, "
        f"dtype {tl.dtype or 'as captured'})"
    )
    summary.add_column("at the peak", overflow="fold")
    summary.add_column("bytes", justify="right")
    summary.add_row("peak live activations", binary_bytes(tl.peak_bytes), style="bold")
    summary.add_row("  of which ordinary activations", binary_bytes(int(tl.activations[p])))
    summary.add_row(
        f"  of which long-lived (> {tl.long_lived_ops} ops or skip stages)",
        binary_bytes(int(tl.long_lived[p])),
    )
    summary.add_row("  of which attention scores", binary_bytes(int(tl.attention_scores[p])))
    summary.add_row("model inputs (allocated before the forward)", binary_bytes(int(tl.inputs[p])))
    summary.add_row("weights read by the peak op", binary_bytes(int(tl.weights[p])))
    summary.add_row("working set of the peak op", binary_bytes(int(tl.working_set[p])))
    summary.add_row("peak op", f"{p}: {tl.targets[p]} in {tl.scopes[p] or '<root>'}")
    if measured is not None:
        summary.add_section()
        summary.add_row(
            f"measured peak of tensors live between ops ({measured.method})",
            binary_bytes(measured.peak_bytes),
        )
        summary.add_row(
            "measured peak including kernel scratch", binary_bytes(measured.with_scratch_bytes)
        )
        if eager_peak is not None:
            error = (eager_peak - measured.peak_bytes) / max(measured.peak_bytes, 1)
            summary.add_row(
                "predicted, eager lifetimes", f"{binary_bytes(eager_peak)} ({error:+.1%})"
            )
        if tl.lifetimes != "eager":
            summary.add_row(
                f"predicted, {tl.lifetimes} lifetimes (what a compiler achieves)",
                binary_bytes(tl.peak_bytes),
            )
    console.print(summary)
    if not tl.long_lived_table:
        console.print("no long-lived tensors")
        return
    table = Table(title="long-lived tensors (skips), largest first")
    for col in ("producer", "last consumer", "bytes", "span ops", "span stages", "share of peak"):
        table.add_column(
            col, overflow="fold", justify="left" if col.endswith(("er", "ucer")) else "right"
        )
    biggest = sorted(tl.long_lived_table, key=lambda r: (-r.bytes, r.first_op))[: rows or None]
    for r in sorted(biggest, key=lambda r: r.first_op):
        last = r.consumer_scopes[-1] if r.consumer_scopes else "-"
        table.add_row(
            r.producer_scope or "<root>",
            last,
            binary_bytes(r.bytes),
            str(r.span_ops),
            str(r.span_stages),
            f"{r.share_of_peak:.1%}",
        )
    console.print(table)
    hidden = len(tl.long_lived_table) - len(biggest)
    if hidden > 0:
        console.print(f"{hidden} smaller long-lived tensors not shown; --json holds them all")


def plot_memory(graph: Graph, tl: MemoryTimeline, path: Path) -> None:
    """Live bytes over execution order, stacked as the peak counts them (activations,
    long-lived tensors, attention scores), the current op's weights as a line beside (not
    in the peak); below, each long-lived tensor from producer to last consumer, named."""
    plt = pyplot()
    import numpy as np

    n = len(tl.scopes)
    xs = np.arange(n)
    table = sorted(tl.long_lived_table, key=lambda r: r.first_op)
    if table:
        fig, (ax, ax_skip) = plt.subplots(
            2, 1, figsize=(14, 8), sharex=True,
            gridspec_kw={"height_ratios": [3, max(1.2, min(4.0, 0.12 * len(table)))]},
        )  # fmt: skip
    else:  # no long-lived tensor: no empty panel
        fig, ax = plt.subplots(figsize=(14, 5.5))
        ax_skip = None
    layers = [tl.activations, tl.long_lived, tl.attention_scores]
    names = ["activations", "long-lived (skips)", "attention scores"]
    colors = ["#4C72B0", "#C44E52", "#8172B3"]
    ax.stackplot(xs, *layers, labels=names, colors=colors, step="mid")
    ax.plot(xs, tl.weights, color="#CCB974", lw=0.8, drawstyle="steps-mid",
            label="weights of the current op (not in the peak)")  # fmt: skip
    p = tl.peak_op
    ax.axvline(p, color="black", lw=0.8, ls="--")
    ax.annotate(
        f"peak {binary_bytes(tl.peak_bytes)}\n{tl.scopes[p]}",
        xy=(p, tl.live[p]),
        xytext=(10, -5),
        textcoords="offset points",
        fontsize=8,
        va="top",
    )
    ax.set_ylabel("live bytes")
    byte_ticks(ax.yaxis)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)
    fig.suptitle(
        f"{tl.model}: live memory per op ({tl.lifetimes} lifetimes, attention {tl.attention})"
    )
    # stages shaded and named, as in the profile chart
    names_by_op = stage_of_ops(graph)
    labels = {s.name: s.label for s in stages(graph)}
    start, span = 0, 0
    for i in range(1, n + 1):
        if i == n or names_by_op[i] != names_by_op[start]:
            span += 1
            if span % 2 == 0:
                ax.axvspan(start - 0.5, i - 0.5, color="0.93", zorder=0)
            if i - start >= n // 40:
                ax.text(
                    (start + i) / 2,
                    1.01,
                    labels.get(names_by_op[start], ""),
                    ha="center",
                    va="bottom",
                    fontsize=7,
                    transform=ax.get_xaxis_transform(),
                )
            start = i
    if ax_skip is None:
        ax.set_xlabel("op in execution order (no long-lived tensors)")
        ax.set_xlim(-0.5, n - 0.5)
        save_figure(fig, path)
        return
    # each long-lived tensor from producer to last consumer, thickness by size; the
    # largest named (all of them when there are few)
    biggest = max(r.bytes for r in table)
    named = {id(r) for r in sorted(table, key=lambda r: -r.bytes)[:24]}
    for lane, r in enumerate(table):
        ax_skip.plot([r.first_op, r.last_op], [lane, lane], color="#C44E52",
                     solid_capstyle="butt", lw=1 + 4 * r.bytes / biggest)  # fmt: skip
        if id(r) in named:  # left of the bar, or right of it where the left has no room
            left = r.first_op > n / 4
            ax_skip.text(r.first_op if left else r.last_op, lane,
                         f" {r.producer_scope} ({binary_bytes(r.bytes)}) ",
                         ha="right" if left else "left", va="center", fontsize=6)  # fmt: skip
    ax_skip.set_ylim(-1, len(table))
    ax_skip.set_yticks([])
    ax_skip.set_ylabel("long-lived\ntensors")
    ax_skip.set_xlabel("op in execution order")
    ax_skip.set_xlim(-0.5, n - 0.5)
    save_figure(fig, path)
