"""One self-contained HTML report: plotly charts with plotly's JavaScript embedded (the
file makes no network request of any kind), tables, and every user string escaped.

Sections for one graph on one spec: totals; parameters and MACs per layer in execution
order; the memory timeline with the long-lived tensors drawn and named; latency per layer
coloured by bound with MAC utilization; the roofline (`report.roofline`); the energy
split; the plan's decisions with before and after (when a plan is given); the uncounted
ledger; the spec with every figure's source; the command that made the file. A pipeline
gets one section per phase. Every number is the simulator's or the analyses', formatted
with its unit; hover shows layer name, module type, shapes and figures."""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from edgewise.analysis.memory import MemoryTimeline
from edgewise.analysis.profile import Profile
from edgewise.hardware.spec import HardwareSpec
from edgewise.ir.graph import Graph
from edgewise.report.format import binary_bytes, binary_step, joules, seconds, si, unit_of
from edgewise.report.roofline import roofline
from edgewise.report.simulate_report import BOUND_COLORS, what_bounds
from edgewise.simulate.simulator import LayerCost, Simulation

PLOTLY_CONFIG = {"displaylogo": False, "responsive": True}
_BOUND_HEX = {**BOUND_COLORS, "none": "#b3b3b3"}


def unit_axis(unit: str, largest: float = 0.0) -> dict[str, Any]:
    """A plotly axis's ticks in the formatter's conventions: bytes at power-of-two steps
    labelled by `binary_bytes`; anything else (s, J, op/s) with SI prefixes at three
    significant figures, by plotly itself so that zooming relabels ('20ms', '1.5Gop/s')."""
    if unit == "B":
        step = binary_step(largest)
        values = [k * step for k in range(int(largest // step) + 2)]
        return {"tickvals": values, "ticktext": [binary_bytes(v) for v in values]}
    return {"tickformat": ".3~s", "ticksuffix": unit}


def column_axis(column: str) -> dict[str, Any]:
    """A log axis of a store column, by its unit (`format.unit_of`): SI prefixes for
    seconds, joules and rates; plotly's own labels for the rest (bytes too: on a log axis
    the ticks are plotly's, and it has no binary prefixes)."""
    unit = unit_of(column)
    return unit_axis(unit) if unit not in ("", "B") else {}


def esc(text: object) -> str:
    """A user string as text in HTML, and in plotly's hover labels (which read a few tags
    such as <b> and <br>, and entities): `<script>` shows as `<script>`."""
    return html.escape(str(text), quote=True)


@dataclass(frozen=True)
class Section:
    title: str
    body: str  # HTML, already escaped


def table(headers: Sequence[str], rows: Sequence[Sequence[object]], cls: str = "") -> str:
    head = "".join(f"<th>{esc(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{esc(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f'<table class="{cls}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def figure(fig: Any) -> str:
    import plotly.io as pio

    fig.update_layout(
        template="plotly_white",
        margin={"l": 60, "r": 20, "t": 50, "b": 50},
        hoverlabel={"align": "left"},
    )
    return str(pio.to_html(fig, include_plotlyjs=False, full_html=False, config=PLOTLY_CONFIG))


def page(title: str, sections: Sequence[Section], command: str) -> str:
    """The whole file: plotly's JavaScript inline, then the sections."""
    from plotly.offline import get_plotlyjs

    nav = "".join(f'<a href="#s{i}">{esc(s.title)}</a>' for i, s in enumerate(sections, start=1))
    body = "".join(
        f'<section id="s{i}"><h2>{esc(s.title)}</h2>{s.body}</section>'
        for i, s in enumerate(sections, start=1)
    )
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; script-src 'unsafe-inline' 'unsafe-eval'; style-src 'unsafe-inline'; img-src data:; font-src data:">
<title>{esc(title)}</title>
<style>
body{{font-family:system-ui,sans-serif;margin:0 2em 3em;color:#222}}
nav{{position:sticky;top:0;background:#fff;padding:.5em 0;border-bottom:1px solid #ddd;z-index:9}}
nav a{{margin-right:1em;font-size:.9em}}
table{{border-collapse:collapse;margin:.5em 0;font-size:.85em}}
td,th{{border:1px solid #ddd;padding:.2em .5em;text-align:right}}
td:first-child,th:first-child{{text-align:left}}
th{{background:#f4f4f4}} code,pre{{background:#f6f6f6;padding:.2em .4em}}
.note{{color:#555;font-size:.9em;max-width:70em}}
</style>
<script>{get_plotlyjs()}</script>
</head><body>
<h1>{esc(title)}</h1>
<nav>{nav}</nav>
{body}
<footer class="note"><p>made by <code>{esc(command)}</code></p></footer>
</body></html>
"""  # noqa: E501


# --------------------------------------------------------------------------- sections


def totals_section(sim: Simulation, spec: HardwareSpec, title: str = "Totals") -> Section:
    t = sim.totals
    rows = [
        ("latency per forward", seconds(t.latency_s)),
        ("floor (compute or compulsory DRAM, whichever is longer)", seconds(t.floor_s)),
        ("x floor", f"{t.floor_ratio:.2f}"),
        ("energy", joules(t.energy_j)),
        ("DRAM traffic", binary_bytes(t.dram_bytes)),
        ("of which weights", binary_bytes(t.dram_weight_bytes)),
        ("peak SRAM", binary_bytes(t.peak_sram_bytes)),
        ("MACs", si(t.macs)),
        ("MAC utilization", f"{t.mac_utilization:.1%}"),
        ("fits", "yes" if t.feasible else "no"),
    ]
    note = f'<p class="note">{esc(what_bounds(t))}</p>'
    w = sim.work
    head = (
        f"<p>{esc(w.model)} on {esc(spec.name)}: weights {esc(w.weight_precision)}, "
        f"activations {esc(w.activation_precision)}, MACs at {esc(sim.precision)}</p>"
    )
    return Section(title, head + table(("figure", "value"), rows) + note)


def profile_section(graph: Graph, prof: Profile) -> Section:
    """Parameters and MACs per layer in execution order: the U-shape of a U-Net."""
    from plotly.subplots import make_subplots

    rows = [r for r in prof.rows if r.params or r.macs]
    shapes = _layer_shapes(graph)
    hover = [
        f"<b>{esc(r.name)}</b><br>{esc(r.module_type)}<br>parameters {r.params:,}<br>"
        f"MACs {r.macs:,}<br>vector ops {r.vector_ops:,}<br>activations "
        f"{binary_bytes(r.activation_bytes)}<br>{esc(shapes.get(r.name, ''))}"
        for r in rows
    ]
    xs = list(range(len(rows)))
    fig = make_subplots(
        rows=2,
        cols=1,
        shared_xaxes=True,
        vertical_spacing=0.06,
        subplot_titles=("parameters per layer", "MACs per layer"),
    )
    for row, (name, values, color) in enumerate(
        (("parameters", [r.params for r in rows], "#4C72B0"),
         ("MACs", [r.macs for r in rows], "#DD8452")), start=1,
    ):  # fmt: skip
        fig.add_bar(x=xs, y=values, marker_color=color, name=name, hovertext=hover,
                    hoverinfo="text", row=row, col=1)  # fmt: skip
    fig.update_layout(height=560, showlegend=False, bargap=0)
    fig.update_xaxes(title_text=f"layer in execution order ({len(rows)} layers)", row=2, col=1)
    t = prof.totals
    head = (
        f"<p>{t.params:,} parameters, {t.macs:,} MACs, {t.vector_ops:,} vector ops per "
        f"forward (convention '{esc(prof.convention)}')</p>"
    )
    return Section("Parameters and operations per layer", head + figure(fig))


def _layer_shapes(graph: Graph) -> dict[str, str]:
    """Per layer, the first op's input and output shapes (for hover)."""
    out: dict[str, str] = {}
    for op in graph.ops:
        if op.scope in out:
            continue
        ins = [graph.tensors[t].shape for t in op.inputs[:3]]
        outs = [graph.tensors[t].shape for t in op.outputs[:1]]
        out[op.scope] = f"in {' '.join(map(_shape, ins))} → out {' '.join(map(_shape, outs))}"
    return out


def _shape(shape: tuple[int, ...]) -> str:
    return "×".join(map(str, shape)) if shape else "scalar"


def memory_section(tl: MemoryTimeline) -> Section:
    """Stacked as the peak counts (activations, skips, scores); the current op's weights a
    line beside; each long-lived tensor a named bar from producer to last consumer."""
    from plotly.subplots import make_subplots

    n = len(tl.scopes)
    xs = np.arange(n)
    table_rows = sorted(tl.long_lived_table, key=lambda r: r.first_op)
    rows = 2 if table_rows else 1
    heights = [0.65, 0.35] if table_rows else [1.0]
    fig = make_subplots(
        rows=rows, cols=1, shared_xaxes=True, row_heights=heights, vertical_spacing=0.05
    )
    scopes = [esc(s) for s in tl.scopes]
    for series, name, color in (
        (tl.activations, "activations", "#4C72B0"),
        (tl.long_lived, "long-lived (skips)", "#C44E52"),
        (tl.attention_scores, "attention scores", "#8172B3"),
    ):
        fig.add_scatter(
            x=xs,
            y=series,
            name=name,
            stackgroup="live",
            line={"width": 0.5, "color": color, "shape": "hv"},
            customdata=scopes,
            hovertemplate="op %{x}: %{customdata}<br>" + name + " %{y:,} B<extra></extra>",
            row=1,
            col=1,
        )
    fig.add_scatter(
        x=xs,
        y=tl.weights,
        name="weights of the current op (not in the peak)",
        line={"width": 0.8, "color": "#CCB974", "shape": "hv"},
        customdata=scopes,
        hovertemplate="op %{x}: %{customdata}<br>weights %{y:,} B<extra></extra>",
        row=1,
        col=1,
    )
    p = tl.peak_op
    fig.add_annotation(
        x=p,
        y=float(tl.live[p]),
        text=f"peak {binary_bytes(tl.peak_bytes)}<br>{esc(tl.scopes[p])}",
        showarrow=True,
        row=1,
        col=1,
    )
    largest = float(max(tl.live.max(initial=0), tl.weights.max(initial=0)))
    fig.update_yaxes(title_text="live bytes", row=1, col=1, **unit_axis("B", largest))
    for lane, r in enumerate(table_rows):
        fig.add_scatter(
            x=[r.first_op, r.last_op],
            y=[lane, lane],
            mode="lines",
            showlegend=False,
            line={"width": 3, "color": "#C44E52"},
            hovertext=f"<b>{esc(r.producer_scope)}</b> {binary_bytes(r.bytes)}<br>ops "
            f"{r.first_op}-{r.last_op} ({r.span_ops} ops)<br>read by "
            f"{esc(', '.join(r.consumer_scopes[:4]))}",
            hoverinfo="text",
            row=2,
            col=1,
        )
    if table_rows:
        fig.update_yaxes(
            tickvals=list(range(len(table_rows))),
            row=2,
            col=1,
            ticktext=[esc(r.producer_scope) for r in table_rows],
            tickfont={"size": 8},
        )
    fig.update_xaxes(title_text="op in execution order", row=rows, col=1)
    fig.update_layout(height=420 + (min(600, 14 * len(table_rows)) if table_rows else 0))
    head = (
        f"<p>peak {binary_bytes(tl.peak_bytes)} at op {p} ({esc(tl.scopes[p])}); "
        f"{len(table_rows)} long-lived tensors (living over {tl.long_lived_ops} ops); "
        f"{esc(tl.lifetimes)} lifetimes, dtype {esc(tl.dtype or 'as captured')}</p>"
    )
    return Section("Memory timeline", head + figure(fig))


def latency_section(layers: tuple[LayerCost, ...], types: dict[str, str]) -> Section:
    """Latency per layer coloured by its bound, MAC utilization of layers with MACs."""
    import plotly.graph_objects as go

    rows = [r for r in layers if r.latency_s > 0]
    fig = go.Figure()
    for bound, color in _BOUND_HEX.items():
        idx = [i for i, r in enumerate(rows) if r.bound == bound]
        if not idx:
            continue
        fig.add_bar(
            x=idx,
            y=[rows[i].latency_s for i in idx],
            marker_color=color,
            name=f"{bound}-bound",
            hoverinfo="text",
            hovertext=[_cost_hover(rows[i], types) for i in idx],
        )
    with_macs = [i for i, r in enumerate(rows) if r.macs]
    fig.add_scatter(
        x=with_macs,
        y=[rows[i].mac_utilization for i in with_macs],
        yaxis="y2",
        mode="markers",
        marker={"size": 4, "color": "black"},
        name="MAC utilization",
        hoverinfo="skip",
    )
    fig.update_layout(
        height=420,
        bargap=0,
        barmode="overlay",
        xaxis={"title": "layer in execution order"},
        yaxis={"title": "latency", **unit_axis("s")},
        yaxis2={
            "title": "MAC utilization",
            "overlaying": "y",
            "side": "right",
            "range": [0, 1.05],
            "tickformat": ".0%",
        },
        legend={"orientation": "h", "y": 1.12},
    )
    slowest = sorted(rows, key=lambda r: -r.latency_s)[:20]
    listed = table(
        ("slowest layers", "module", "latency", "bound", "MACs", "DRAM", "MAC util."),
        [
            (
                r.name,
                types.get(r.name, ""),
                seconds(r.latency_s),
                r.bound,
                si(r.macs),
                binary_bytes(r.dram_bytes),
                f"{r.mac_utilization:.0%}",
            )
            for r in slowest
        ],
    )
    return Section("Latency per layer", figure(fig) + listed)


def _cost_hover(r: LayerCost, types: dict[str, str]) -> str:
    return (
        f"<b>{esc(r.name)}</b><br>{esc(types.get(r.name, ''))}<br>latency "
        f"{seconds(r.latency_s)} ({r.bound}-bound)<br>MACs {r.macs:,}, vector ops "
        f"{r.vector_ops:,}<br>DRAM {binary_bytes(r.dram_bytes)}, SRAM "
        f"{binary_bytes(r.sram_bytes)}<br>energy {joules(r.energy_j)}<br>MAC utilization "
        f"{r.mac_utilization:.1%}"
    )


def roofline_section(
    layers: tuple[LayerCost, ...], spec: HardwareSpec, precision: str, types: dict[str, str]
) -> Section:
    import plotly.graph_objects as go

    roof = roofline(
        layers,
        spec.peak_macs_per_s(precision),  # type: ignore[arg-type]
        spec.peak_vector_ops_per_s,
        spec.dram_bandwidth_bytes_per_s,
    )
    grid = np.logspace(np.log10(roof.x_range[0]), np.log10(roof.x_range[1]), 200)
    fig = go.Figure()
    for kind, symbol, dash in (("MAC", "circle", "solid"), ("vector", "square", "dash")):
        fig.add_scatter(
            x=grid,
            y=roof.roof(kind, grid),
            mode="lines",
            name=f"{kind} roof",
            line={"color": "black", "width": 1, "dash": dash},
            hoverinfo="skip",
        )
        for on_chip in (False, True):
            pts = [q for q in roof.points if q.kind == kind and q.on_chip == on_chip]
            if not pts:
                continue
            fig.add_scatter(
                x=[q.intensity for q in pts],
                y=[q.achieved for q in pts],
                mode="markers",
                marker={
                    "symbol": symbol + ("-open" if on_chip else ""),
                    "size": 7,
                    "color": [_BOUND_HEX[q.bound] for q in pts],
                },
                hovertext=[_cost_hover(q.row, types) for q in pts],
                hoverinfo="text",
                showlegend=False,
            )
            fig.add_scatter(  # the legend's entry: the symbol, in a neutral colour
                x=[None], y=[None], mode="markers", name=f"{kind} layers"
                + (" moving no DRAM byte (right edge)" if on_chip else ""),
                marker={"symbol": symbol + ("-open" if on_chip else ""), "color": "#555"},
            )  # fmt: skip
    for bound in sorted({q.bound for q in roof.points}):
        fig.add_scatter(x=[None], y=[None], mode="markers", name=f"{bound}-bound",
                        marker={"symbol": "circle", "color": _BOUND_HEX[bound]})  # fmt: skip
    fig.update_layout(
        height=480,
        xaxis={
            "type": "log",
            "title": "operational intensity (ops "
            "per DRAM byte: MACs, or vector ops for layers without MACs)",
            "range": [float(np.log10(roof.x_range[0])), float(np.log10(roof.x_range[1]))],
            "tickformat": "~g",  # 0.5 and 2000 op/B, not SI's "500m"
            "ticksuffix": " op/B",
        },
        yaxis={"type": "log", "title": "achieved ops/s", **unit_axis("op/s")},
    )
    head = (
        f"<p>peak {si(roof.peak_macs_per_s)}MAC/s at {esc(precision)}, vector "
        f"{si(roof.peak_vector_per_s)}op/s, DRAM {si(roof.dram_bytes_per_s)}B/s; "
        f"{len(roof.points)} layers, colour by bound"
        + (
            f"; {roof.fused} layers fused into other ops' epilogues (no compute of their own) "
            "not drawn"
            if roof.fused
            else ""
        )
        + "</p>"
    )
    return Section("Roofline", head + figure(fig))


def energy_section(sim: Simulation) -> Section:
    import plotly.graph_objects as go

    t = sim.totals
    parts = (
        ("MACs", t.mac_energy_j),
        ("vector unit", t.vector_energy_j),
        ("SRAM", t.sram_energy_j),
        ("DRAM", t.dram_energy_j),
        ("static", t.static_energy_j),
    )
    fig = go.Figure(
        go.Bar(
            x=[p for p, _ in parts],
            y=[v for _, v in parts],
            hovertext=[f"{p}: {joules(v)} ({v / max(t.energy_j, 1e-30):.1%})" for p, v in parts],
            hoverinfo="text",
            marker_color="#55A868",
        )
    )
    fig.update_layout(height=320, yaxis={"title": "energy", **unit_axis("J")})
    rows = [(p, joules(v), f"{v / max(t.energy_j, 1e-30):.1%}") for p, v in parts]
    return Section("Energy", table(("part", "energy", "share"), rows) + figure(fig))


def plan_section(plan: Any, before: Simulation, after: Simulation) -> Section:
    """The plan's decisions, and the totals without and with it."""
    import plotly.graph_objects as go

    b, a = before.totals, after.totals
    rows = [
        ("latency", seconds(b.latency_s), seconds(a.latency_s)),
        ("energy", joules(b.energy_j), joules(a.energy_j)),
        ("DRAM traffic", binary_bytes(b.dram_bytes), binary_bytes(a.dram_bytes)),
        ("peak SRAM", binary_bytes(b.peak_sram_bytes), binary_bytes(a.peak_sram_bytes)),
        ("recomputed MACs", si(b.recomputed_macs), si(a.recomputed_macs)),
        ("fits", "yes" if b.feasible else "no", "yes" if a.feasible else "no"),
    ]
    decisions = [
        (
            t.name,
            binary_bytes(t.nbytes),
            f"{t.gap_start}-{t.gap_end}",
            t.action,
            t.recompute_at_scope if t.action == "recompute" else "",
        )
        for t in plan.tensors
    ]
    fig = go.Figure()
    fig.add_scatter(
        y=before.traffic.occupancy_bytes,
        name="without the plan",
        line={"width": 0.8, "color": "#C44E52"},
    )
    fig.add_scatter(
        y=after.traffic.occupancy_bytes,
        name="with the plan",
        line={"width": 0.8, "color": "#4C72B0"},
    )
    largest = max(before.traffic.occupancy_bytes.max(initial=0),
                  after.traffic.occupancy_bytes.max(initial=0))  # fmt: skip
    fig.update_layout(
        height=360,
        xaxis={"title": "op in execution order"},
        yaxis={"title": "SRAM occupied", **unit_axis("B", float(largest))},
    )
    extra = [f"weights: {esc(layer)} at {esc(p)}" for layer, p in plan.weights.items()]
    extra += [f"attention: {esc(x.scope)} {esc(x.mode)}" for x in plan.attention]
    extra += [f"weights held on chip: {esc(layer)}" for layer in plan.resident]
    if plan.kv_precision:
        extra.append(f"KV cache at {esc(plan.kv_precision)}")
    body = (
        f"<p>{esc(plan.described())}</p>"
        + table(("figure", "without the plan", "with the plan"), rows)
        + table(("tensor (producer)", "bytes", "gap (ops)", "action", "recomputed at"), decisions)
        + ("<ul>" + "".join(f"<li>{x}</li>" for x in extra[:500]) + "</ul>" if extra else "")
        + (f'<p class="note">{esc(plan.note)}</p>' if plan.note else "")
        + figure(fig)
    )
    return Section("Plan", body)


def uncounted_section(prof: Profile) -> Section:
    rows = [
        (u.target, u.occurrences, binary_bytes(u.output_bytes), u.example_scope)
        for u in prof.uncounted
    ]
    if not rows:
        return Section("Uncounted ops", "<p>every op has a formula: nothing is uncounted</p>")
    return Section(
        "Uncounted ops",
        '<p class="note">ops without a formula, counted as zero '
        "work and listed rather than hidden</p>"
        + table(("op", "occurrences", "output bytes", "example layer"), rows),
    )


def spec_section(spec: HardwareSpec) -> Section:
    """Every figure with its unit and its source, as `hw show` prints them."""
    from edgewise.report.spec_report import spec_rows

    head = f"<p>{esc(spec.description)}</p>"
    return Section(f"Hardware: {spec.name}",
                   head + table(("field", "value", "source"), spec_rows(spec)))  # fmt: skip


def graph_report(
    graph: Graph,
    prof: Profile,
    tl: MemoryTimeline,
    sim: Simulation,
    layers: tuple[LayerCost, ...],
    spec: HardwareSpec,
    command: str,
    plan: Any = None,
    baseline: Simulation | None = None,
) -> str:
    """The report of one graph (see the module docstring)."""
    types = {r.name: r.module_type for r in prof.rows}
    sections = [
        totals_section(sim, spec),
        profile_section(graph, prof),
        memory_section(tl),
        latency_section(layers, types),
        roofline_section(layers, spec, sim.precision, types),
        energy_section(sim),
    ]
    if plan is not None and baseline is not None:
        sections.append(plan_section(plan, baseline, sim))
    sections += [uncounted_section(prof), spec_section(spec)]
    return page(f"{graph.model} on {spec.name}", sections, command)


def graph_html(graph, spec, weights, activations, compute, command, plan_file=None, kv=None):  # type: ignore[no-untyped-def]
    """The report of one graph, simulated as `simulate` does (and under the plan file)."""
    from edgewise.analysis.memory import DTYPES, memory_timeline
    from edgewise.analysis.profile import profile
    from edgewise.plan.plan import planned_workload
    from edgewise.simulate.simulator import group_costs, simulate
    from edgewise.simulate.workload import op_workload

    work, schedule, plan = planned_workload(graph, plan_file, spec, weights, activations, kv=kv)
    sim = simulate(work, spec, compute, schedule=schedule)
    baseline = None
    if plan is not None:
        baseline = simulate(op_workload(graph, weights, activations, kv_precision=kv), spec,
                            compute)  # fmt: skip
    scopes = tuple(op.scope for op in graph.ops)
    layers = group_costs(sim, scopes, spec.peak_macs_per_s(compute))
    dtype = activations if activations in DTYPES else "int8"
    tl = memory_timeline(graph, dtype=dtype)
    return graph_report(graph, profile(graph, "layer"), tl, sim, layers, spec,
                        command, plan, baseline)  # fmt: skip


def pipeline_report(run: Any, spec: HardwareSpec, command: str) -> str:
    """A pipeline's report: one section per phase, and the whole run."""
    import plotly.graph_objects as go

    t = run.totals
    rows = [
        (
            p.name,
            p.calls,
            seconds(p.totals.latency_s),
            joules(p.totals.energy_j),
            binary_bytes(p.totals.dram_bytes),
            f"{p.totals.latency_s / max(t.latency_s, 1e-30):.1%}",
        )
        for p in run.phases
    ]
    fig = go.Figure(
        go.Bar(
            x=[esc(p.name) for p in run.phases],
            y=[p.totals.latency_s for p in run.phases],
            marker_color="#4C72B0",
            hovertext=[
                f"{esc(p.name)}: {seconds(p.totals.latency_s)} over {p.calls} calls"
                for p in run.phases
            ],
            hoverinfo="text",
        )
    )
    fig.update_layout(height=320, yaxis={"title": f"latency per {run.unit}", **unit_axis("s")})
    sections = [
        Section(
            f"{run.pipeline}: per {run.unit}",
            f"<p>{seconds(t.latency_s)}, {joules(t.energy_j)}, DRAM "
            f"{binary_bytes(t.dram_bytes)} per {esc(run.unit)}</p>"
            + table(("phase", "calls", "latency", "energy", "DRAM", "share"), rows)
            + figure(fig),
        )
    ]
    for p in run.phases:
        sections.append(totals_section(p.first, spec, f"Phase {p.name}: first call"))
    sections.append(spec_section(spec))
    return page(f"{run.pipeline} on {spec.name}", sections, command)
