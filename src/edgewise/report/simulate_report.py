"""Render a `Simulation`: totals and slowest layers for people, JSON/CSV, and two charts
(per-layer latency coloured by bound with utilization; a roofline of the layers)."""

from __future__ import annotations

import csv
import io
from dataclasses import asdict
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from edgewise.analysis.stages import stage_of_ops, stages
from edgewise.ir.graph import Graph
from edgewise.report.figures import pyplot, save_figure, unit_ticks
from edgewise.report.format import binary_bytes, count, joules, rate, seconds, si
from edgewise.report.roofline import Roofline, roofline
from edgewise.simulate.simulator import LayerCost, Simulation, Totals

BOUND_COLORS = {
    "compute": "#4C72B0", "dram": "#C44E52", "sram": "#DD8452", "overhead": "#8172B3",
    "none": "0.7",
}  # fmt: skip


def simulation_to_dict(
    sim: Simulation, rows: tuple[LayerCost, ...], plan: dict[str, Any] | None = None
) -> dict[str, Any]:
    """`plan`: the plan simulated (its file and `Plan.summary`), recorded with the run."""
    t = sim.totals
    return {
        "plan": plan,
        "model": sim.work.model,
        "hardware": sim.spec_name,
        "precision": {
            "compute": sim.precision,
            "weights": sim.work.weight_precision,
            "activations": sim.work.activation_precision,
        },
        "attention": sim.work.attention,
        "weights_resident": sim.weights_resident,
        "units": {
            "latency_s": "seconds",
            "energy_j": "joules",
            "dram_bytes": "bytes",
            "mac_utilization": "MACs / (peak MAC/s x latency)",
            "floor_s": "seconds",
        },
        "totals": asdict(t),
        "rows": [asdict(r) for r in rows],
    }


def simulation_to_csv(rows: tuple[LayerCost, ...]) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    names = list(LayerCost.__dataclass_fields__)
    writer.writerow(names)
    for r in rows:
        writer.writerow([getattr(r, n) for n in names])
    return out.getvalue()


def what_bounds(t: Totals, repeated: bool = False) -> str:
    """Where the time and the DRAM bytes go, and which levers act on the largest share;
    `repeated`: the figures are of a pipeline, whose phases are called many times."""
    time = {"compute": t.compute_bound_s, "DRAM": t.dram_bound_s, "SRAM": t.sram_bound_s,
            "overhead": t.overhead_bound_s}  # fmt: skip
    activations = t.dram_refill_bytes + t.spilled_bytes - t.dram_long_lived_bytes
    moved = {"weights": t.dram_weight_bytes,
             "long-lived (skip) round trips": t.dram_long_lived_bytes,
             "other activation round trips": activations - t.dram_input_bytes,
             "attention scores": t.dram_scores_bytes,
             "other tiled streams": t.dram_stream_bytes - t.dram_scores_bytes,
             "inputs": t.dram_input_bytes, "outputs": t.dram_output_bytes}  # fmt: skip
    total_s, total_b = max(t.latency_s, 1e-30), max(t.dram_bytes, 1)
    lines = [
        "time by bound: " + ", ".join(f"{k} {v / total_s:.0%}" for k, v in time.items() if v),
        "DRAM by kind: "
        + ", ".join(f"{k} {binary_bytes(v)} ({v / total_b:.0%})" for k, v in moved.items() if v),
    ]
    main = max(time, key=time.__getitem__)
    heavy = max(moved, key=moved.__getitem__)
    if main == "DRAM" and heavy == "weights":
        where = "the pipeline" if repeated else "a pipeline such as sd15"
        lever = ("weights stream at every call: fewer weight bytes (`plan --allow precision` "
                 "with a sensitivity file), layers' weights kept on chip across calls "
                 f"(`plan` on {where}: residency), or one weight read serving more inputs "
                 "(CFG as batch 2: `--cfg --cfg-mode batch`; an LLM: speculative decoding's "
                 "verify pass)")  # fmt: skip
    elif main == "DRAM" and heavy == "long-lived (skip) round trips":
        lever = ("long-lived tensors leave the chip: `plan` (keep, spill or recompute them; "
                 "recompute where compute idles)")  # fmt: skip
    elif main == "DRAM" and heavy == "other activation round trips":
        lever = "activations do not fit beside each other: more SRAM, or `plan`"
    elif main == "DRAM" and heavy == "attention scores":
        lever = "attention scores through DRAM: fused attention (`--attention fused`)"
    elif main == "DRAM":
        lever = "ops tiled through DRAM: more SRAM, or fused attention (`--attention fused`)"
    elif main == "compute":
        lever = "compute-bound: narrower MACs (--precision), a larger array, or fewer MACs"
    elif main == "overhead":
        lever = "dispatch-bound: fewer, larger kernels (epilogue fusion: `fuse_epilogues`)"
    else:
        lever = "SRAM-bandwidth-bound: a wider SRAM port, or fewer bytes per op"
    return "\n".join([*lines, f"the lever: {lever}"]) if t.latency_s else ""


def render_simulation(
    sim: Simulation,
    rows: tuple[LayerCost, ...],
    console: Console,
    limit: int,
    plan: str = "",
) -> None:
    """`plan`: the plan's decisions in one line (`Plan.described`), shown in the title, so a
    plan's layers at other weight precisions are never hidden behind the base precision."""
    t = sim.totals
    summary = Table(
        title=f"{sim.work.model} on {sim.spec_name} ({sim.work.weight_precision} weights, "
        f"{sim.work.activation_precision} activations, {sim.precision} MACs)"
        + (f"\nplan: {plan}" if plan else "")
    )
    summary.add_column("total")
    summary.add_column("value", justify="right")
    summary.add_row("latency", seconds(t.latency_s), style="bold")
    summary.add_row("physical floor (max of MACs/peak, compulsory DRAM/BW)", seconds(t.floor_s))
    summary.add_row("latency / floor", f"{t.floor_ratio:.2f}x")
    summary.add_row("MAC utilization", f"{t.mac_utilization:.1%}")
    summary.add_row("energy", joules(t.energy_j), style="bold")
    for label, value in (
        ("MACs", t.mac_energy_j),
        ("vector", t.vector_energy_j),
        ("SRAM", t.sram_energy_j),
        ("DRAM", t.dram_energy_j),
        ("static", t.static_energy_j),
    ):
        summary.add_row(f"  {label}", f"{joules(value)} ({value / t.energy_j:.0%})")
    summary.add_row("DRAM traffic", binary_bytes(t.dram_bytes))
    summary.add_row("  of which spills", binary_bytes(t.spilled_bytes))
    summary.add_row("SRAM traffic", binary_bytes(t.sram_bytes))
    summary.add_row("peak SRAM occupancy", binary_bytes(t.peak_sram_bytes))
    summary.add_row("ops tiled through DRAM (working set > SRAM)", str(t.tiled_ops))
    summary.add_row("MACs", si(t.macs))
    console.print(summary)
    console.print(what_bounds(sim.totals))
    ranked = sorted(range(len(rows)), key=lambda i: (-rows[i].latency_s, i))[: limit or None]
    slow = [rows[i] for i in ranked]  # slowest first (ties in execution order)
    table = Table(title=f"slowest {len(slow)} of {len(rows)} layers (slowest first)")
    for col in ("layer", "latency", "share", "bound", "MAC util.", "DRAM", "energy", "tiled"):
        table.add_column(col, justify="left" if col in ("layer", "bound") else "right")
    for r in slow:
        table.add_row(
            r.name or "<root>",
            seconds(r.latency_s),
            f"{r.latency_s / t.latency_s:.1%}",
            r.bound,
            f"{r.mac_utilization:.0%}",
            binary_bytes(r.dram_bytes),
            joules(r.energy_j),
            str(r.tiled_ops or ""),
        )
    console.print(table)


def plot_simulation(
    graph: Graph,
    sim: Simulation,
    rows: tuple[LayerCost, ...],
    path: Path,
    peak: float,
    dram_bw: float,
    vector_peak: float,
) -> None:
    """Per-layer latency coloured by bound with utilization (top), roofline (bottom)."""
    plt = pyplot()
    import numpy as np

    layers = [r for r in rows if r.latency_s > 0]
    xs = np.arange(len(layers))
    fig = plt.figure(figsize=(14, 9))
    ax = fig.add_subplot(2, 1, 1)
    ax.bar(
        xs,
        [r.latency_s for r in layers],
        width=1.0,
        color=[BOUND_COLORS[r.bound] for r in layers],
    )
    ax.set_ylabel("latency")
    unit_ticks(ax.yaxis, seconds)
    ax.set_xlim(-0.5, len(layers) - 0.5)
    util = ax.twinx()  # utilization of the layers that have MACs (others have none to use)
    with_macs = [i for i, r in enumerate(layers) if r.macs]
    util.scatter(
        with_macs,
        [layers[i].mac_utilization * 100 for i in with_macs],
        s=6,
        color="black",
        alpha=0.6,
        label="MAC utilization",
    )
    util.set_ylabel("MAC utilization of layers with MACs (%)")
    util.set_ylim(0, 105)
    handles = [plt.Rectangle((0, 0), 1, 1, color=c) for b, c in BOUND_COLORS.items() if b != "none"]
    ax.legend(
        handles,
        [f"{b}-bound" for b in BOUND_COLORS if b != "none"],
        fontsize=8,
        loc="upper left",
        bbox_to_anchor=(1.06, 1.0),
    )  # beside the axes, not on the data
    stage_by_scope = dict(zip((op.scope for op in graph.ops), stage_of_ops(graph), strict=True))
    labels = {s.name: s.label for s in stages(graph)}
    start = 0
    for i in range(1, len(layers) + 1):
        same = i < len(layers) and stage_by_scope.get(layers[i].name) == stage_by_scope.get(
            layers[start].name
        )
        if not same:
            if i - start >= max(3, len(layers) // 60):
                ax.text(
                    (start + i - 1) / 2,
                    1.01,
                    labels.get(stage_by_scope.get(layers[start].name, ""), ""),
                    ha="center",
                    va="bottom",
                    fontsize=7,
                    transform=ax.get_xaxis_transform(),
                )
                ax.axvline(start - 0.5, color="0.8", lw=0.6)
            start = i
    ax.set_xlabel("layer in execution order")
    draw_roofline(fig.add_subplot(2, 1, 2), roofline(rows, peak, vector_peak, dram_bw),
                  sim.spec_name)  # fmt: skip
    fig.suptitle(
        f"{sim.work.model} on {sim.spec_name}: {seconds(sim.totals.latency_s)} per forward, "
        f"floor {seconds(sim.totals.floor_s)}, MAC utilization {sim.totals.mac_utilization:.0%}"
    )
    save_figure(fig, path)


def draw_roofline(ax: Any, roof: Roofline, spec_name: str) -> None:
    """Every timed layer on its roof (`report.roofline`): circles MAC layers, squares
    vector-only layers, hollow at the right edge those that move no DRAM byte."""
    import numpy as np

    grid = np.logspace(np.log10(roof.x_range[0]), np.log10(roof.x_range[1]), 200)
    for kind, marker, style in (("MAC", "o", "-"), ("vector", "s", "--")):
        ax.plot(grid, roof.roof(kind, grid), color="black", lw=1, ls=style,
                label=f"{kind} roof")  # fmt: skip
        for on_chip in (False, True):
            pts = [p for p in roof.points if p.kind == kind and p.on_chip == on_chip]
            if not pts:
                continue
            colors = [BOUND_COLORS[p.bound] for p in pts]
            ax.scatter([p.intensity for p in pts], [p.achieved for p in pts], s=14, marker=marker,
                       c="none" if on_chip else colors, edgecolors=colors, alpha=0.85,
                       label=f"{kind} layers" + (" with no DRAM bytes (right edge)"
                                                 if on_chip else ""))  # fmt: skip
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(*roof.x_range)
    ax.set_xlabel("operational intensity (ops per DRAM byte: MACs, or vector ops for layers "
                  "without MACs)")  # fmt: skip
    ax.set_ylabel("achieved ops/s")
    unit_ticks(ax.yaxis, lambda v: rate(v, "op/s"))
    unit_ticks(ax.xaxis, lambda v: count(v, "op/B"))
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.06, 1.0))
    ax.set_title(
        f"roofline on {spec_name}: peak {si(roof.peak_macs_per_s)}MAC/s, vector "
        f"{si(roof.peak_vector_per_s)}op/s, DRAM {si(roof.dram_bytes_per_s)}B/s",
        fontsize=9,
    )
