"""Two simulations side by side: two models on one spec, one model on two specs, or one
model under two plans. Totals and per-stage figures (stages as `analysis.stages` names
them: a U-Net's down/mid/up blocks), each with B's change against A; rendered for the
terminal, as a chart (PNG, SVG, PDF) and as an HTML report.

delta = (B - A) / A; a stage only one side has is shown with the other side empty."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from edgewise.analysis.stages import stage_of_ops, stages
from edgewise.hardware.spec import HardwareSpec
from edgewise.ir.graph import Graph
from edgewise.report.figures import byte_ticks, pyplot, save_figure, unit_ticks
from edgewise.report.format import binary_bytes, joules, seconds, si
from edgewise.simulate.simulator import LayerCost, Simulation, group_costs


@dataclass(frozen=True)
class Side:
    label: str  # what differs: the model, the spec or the plan file
    graph: Graph
    spec: HardwareSpec
    sim: Simulation

    def stage_costs(self) -> dict[str, LayerCost]:
        peak = self.spec.peak_macs_per_s(self.sim.precision)  # type: ignore[arg-type]
        return {r.name: r for r in group_costs(self.sim, stage_of_ops(self.graph), peak)}

    def stage_labels(self) -> dict[str, str]:
        return {s.name: s.label for s in stages(self.graph)}


@dataclass(frozen=True, slots=True)
class StageRow:
    stage: str
    label: str
    a: LayerCost | None
    b: LayerCost | None

    @property
    def latency_delta(self) -> float | None:
        if self.a is None or self.b is None or not self.a.latency_s:
            return None
        return self.b.latency_s / self.a.latency_s - 1


@dataclass(frozen=True)
class Comparison:
    kind: str  # "models" | "specs" | "plans"
    a: Side
    b: Side
    stages: tuple[StageRow, ...]

    def totals(self) -> list[tuple[str, float, float, str]]:
        """(figure, A, B, unit) for the headline figures."""
        ta, tb = self.a.sim.totals, self.b.sim.totals
        return [
            ("latency", ta.latency_s, tb.latency_s, "s"),
            ("energy", ta.energy_j, tb.energy_j, "J"),
            ("DRAM traffic", ta.dram_bytes, tb.dram_bytes, "B"),
            ("peak SRAM", ta.peak_sram_bytes, tb.peak_sram_bytes, "B"),
            ("MACs", ta.macs, tb.macs, "MAC"),
            ("MAC utilization", ta.mac_utilization, tb.mac_utilization, "share"),
            ("x floor", ta.floor_ratio, tb.floor_ratio, "ratio"),
        ]


def compare(kind: str, a: Side, b: Side) -> Comparison:
    costs_a, costs_b = a.stage_costs(), b.stage_costs()
    labels = {**b.stage_labels(), **a.stage_labels()}
    names = [
        n
        for n in dict.fromkeys([*costs_a, *costs_b])  # stages that take time
        if (n in costs_a and costs_a[n].latency_s) or (n in costs_b and costs_b[n].latency_s)
    ]
    shown = [labels.get(n) or n for n in names]
    rows = tuple(  # a label two stages share is replaced by the stages' names
        StageRow(n, label if shown.count(label) == 1 else n, costs_a.get(n), costs_b.get(n))
        for n, label in zip(names, shown, strict=True)
    )
    return Comparison(kind, a, b, rows)


def value(x: float, unit: str) -> str:
    if unit == "s":
        return seconds(x)
    if unit == "J":
        return joules(x)
    if unit == "B":
        return binary_bytes(x)
    if unit == "share":
        return f"{x:.1%}"
    if unit == "ratio":
        return f"{x:.2f}"
    return si(x)


def delta(a: float, b: float) -> str:
    if not a:
        return "-" if not b else "new"
    d = b / a - 1
    return "same" if abs(d) < 5e-4 else f"{d:+.1%}"


def comparison_to_dict(c: Comparison) -> dict[str, Any]:
    def side(s: Side) -> dict[str, Any]:
        return {"label": s.label, "model": s.graph.model, "hardware": s.spec.name,
                "precision": s.sim.precision}  # fmt: skip

    return {
        "kind": c.kind,
        "a": side(c.a),
        "b": side(c.b),
        "units": {"latency_s": "seconds", "energy_j": "joules", "dram_bytes": "bytes"},
        "totals": {
            name: {"a": a, "b": b, "delta": (b / a - 1) if a else None}
            for name, a, b, _ in c.totals()
        },
        "stages": [
            {
                "stage": r.stage,
                "label": r.label,
                "a_latency_s": r.a.latency_s if r.a else None,
                "b_latency_s": r.b.latency_s if r.b else None,
                "a_energy_j": r.a.energy_j if r.a else None,
                "b_energy_j": r.b.energy_j if r.b else None,
                "a_dram_bytes": r.a.dram_bytes if r.a else None,
                "b_dram_bytes": r.b.dram_bytes if r.b else None,
                "latency_delta": r.latency_delta,
            }
            for r in c.stages
        ],
    }


def render_comparison(c: Comparison, console: Console) -> None:
    a, b = c.a.label, c.b.label
    table = Table(title=f"A = {a}, B = {b}")
    for col in ("figure", "A", "B", "B vs A"):
        table.add_column(col, justify="left" if col == "figure" else "right")
    for name, x, y, unit in c.totals():
        table.add_row(name, value(x, unit), value(y, unit), delta(x, y))
    console.print(table)
    stages_table = Table(title="latency per stage (bars: against the slowest stage)")
    for col in ("stage", "A", "B", "B vs A", "A", "B"):
        stages_table.add_column(col, justify="left" if col == "stage" else "right")
    shares = [(r.a.latency_s if r.a else 0.0, r.b.latency_s if r.b else 0.0) for r in c.stages]
    biggest = max((max(x, y) for x, y in shares), default=0.0) or 1.0
    for r, (x, y) in zip(c.stages, shares, strict=True):
        stages_table.add_row(
            r.label, value(x, "s") if r.a else "", value(y, "s") if r.b else "",
            delta(x, y) if r.a and r.b else "", _bar(x / biggest), _bar(y / biggest),
        )  # fmt: skip
    console.print(stages_table)
    ta, tb = c.a.sim.totals, c.b.sim.totals
    gap = tb.latency_s - ta.latency_s
    more = "more" if gap >= 0 else "less"
    ratio = tb.latency_s / max(ta.latency_s, 1e-30)
    console.print(f"B takes {ratio:.3g}x A's time: {value(abs(gap), 's')} {more} per forward")


def _bar(share: float, width: int = 20) -> str:
    full = share * width
    return "█" * int(full) + ("▌" if full - int(full) >= 0.5 else "")


def plot_comparison(c: Comparison, path: Path) -> None:
    """Latency and DRAM bytes per stage, A beside B."""
    plt = pyplot()
    import numpy as np

    labels = [r.label for r in c.stages]
    ys = np.arange(len(labels))
    fig, (ax_t, ax_d) = plt.subplots(1, 2, figsize=(14, max(3.5, 0.32 * len(labels) + 1.5)),
                                     sharey=True)  # fmt: skip
    for ax, attr, unit in ((ax_t, "latency_s", "latency"), (ax_d, "dram_bytes", "DRAM bytes")):
        for offset, side, color, getter in (
            (-0.2, c.a.label, "#4C72B0", lambda r: r.a),
            (0.2, c.b.label, "#DD8452", lambda r: r.b),
        ):
            vals = [getattr(getter(r), attr) if getter(r) else 0.0 for r in c.stages]
            ax.barh(ys + offset, vals, height=0.4, color=color, label=f"{side}")
        ax.set_xlabel(unit)
    unit_ticks(ax_t.xaxis, seconds)
    byte_ticks(ax_d.xaxis)
    ax_t.set_yticks(ys, labels, fontsize=8)
    ax_t.invert_yaxis()
    ax_t.legend(fontsize=8, loc="lower right")
    fig.suptitle(f"A = {c.a.label} against B = {c.b.label}, per stage")
    save_figure(fig, path)


def comparison_section(c: Comparison) -> Any:
    """The comparison as an HTML report section (`report.html_report`)."""
    import plotly.graph_objects as go

    from edgewise.report.html_report import Section, esc, figure, table, unit_axis

    rows = [(name, value(x, unit), value(y, unit), delta(x, y)) for name, x, y, unit in c.totals()]
    fig = go.Figure()
    for side, color, getter in ((c.a.label, "#4C72B0", lambda r: r.a),
                                (c.b.label, "#DD8452", lambda r: r.b)):  # fmt: skip
        fig.add_bar(
            y=[esc(r.label) for r in c.stages],
            x=[getter(r).latency_s if getter(r) else 0.0 for r in c.stages],
            orientation="h", name=esc(side), marker_color=color,
            hovertext=[f"<b>{esc(r.stage)}</b> ({esc(side)}): "
                       + (value(getter(r).latency_s, "s") if getter(r) else "absent")
                       for r in c.stages], hoverinfo="text",
        )  # fmt: skip
    fig.update_layout(barmode="group", height=max(320, 26 * len(c.stages) + 120),
                      xaxis={"title": "latency", **unit_axis("s")},
                      yaxis={"autorange": "reversed"})  # fmt: skip
    stage_rows = [
        (r.label, value(r.a.latency_s, "s") if r.a else "", value(r.b.latency_s, "s") if r.b
         else "", delta(r.a.latency_s, r.b.latency_s) if r.a and r.b else "")
        for r in c.stages
    ]  # fmt: skip
    body = (f"<p>A = {esc(c.a.label)}, B = {esc(c.b.label)}</p>"
            + table(("figure", "A", "B", "B vs A"), rows)
            + figure(fig)
            + table(("stage", "A latency", "B latency", "B vs A"), stage_rows))  # fmt: skip
    return Section("Comparison", body)
