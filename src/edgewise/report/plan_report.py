"""Render a planning outcome: the alternatives side by side, the decisions, JSON, and the
SRAM occupancy timeline before (keep-fit) and after (plan)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from edgewise.plan.plan import plan_to_dict
from edgewise.plan.planner import PlanOutcome
from edgewise.report.figures import byte_ticks, pyplot, save_figure
from edgewise.report.format import binary_bytes, joules, seconds, si
from edgewise.report.simulate_report import what_bounds


def outcome_to_dict(outcome: PlanOutcome) -> dict[str, Any]:
    r = outcome.result
    totals = {
        name: {
            "latency_s": s.totals.latency_s,
            "energy_j": s.totals.energy_j,
            "dram_bytes": s.totals.dram_bytes,
            "peak_sram_bytes": s.totals.peak_sram_bytes,
            "mac_utilization": s.totals.mac_utilization,
            "floor_ratio": s.totals.floor_ratio,
            "recomputed_macs": s.totals.recomputed_macs,
            "feasible": s.totals.feasible,
        }
        for name, s in outcome.simulations.items()
    }
    return {
        "model": outcome.problem.model,
        "hardware": outcome.problem.spec.name,
        "status": r.status,
        "objective": outcome.plan.objective if outcome.plan else None,
        "objective_value": outcome.plan.objective_value if outcome.plan else None,
        "planner_value": r.objective,
        "bound": r.bound,
        "gap": r.gap,
        "solve_seconds": r.seconds,
        "min_sram_bytes": r.min_sram_bytes,
        "note": outcome.note,
        "candidate_positions": sum(len(t.places) for t in outcome.problem.tensors),
        "gap_ops": sum(t.window_ops for t in outcome.problem.tensors),
        "plan": plan_to_dict(outcome.plan) if outcome.plan else None,
        "totals": totals,
    }


def render_outcome(outcome: PlanOutcome, console: Console) -> None:
    r = outcome.result
    status = f"{r.status}"
    if r.gap is not None:
        status += f", gap {r.gap:.3%}"
    console.print(
        Text.assemble(
            (f"{outcome.problem.model} on {outcome.problem.spec.name}", "bold"),
            f": {len(outcome.problem.tensors)} long-lived tensors, solver {status}, "
            f"{r.seconds:.2f} s",
        )
    )
    if outcome.plan is not None and outcome.plan.objective_value is not None:
        unit = {"latency": (1e3, "ms"), "energy": (1e3, "mJ"), "dram": (2**-20, "MiB")}
        scale, label = unit[outcome.plan.objective]
        own = outcome.plan.planner_value
        console.print(
            f"{outcome.plan.objective}: {outcome.plan.objective_value * scale:.6g} {label} "
            "simulated"
            + (f", {own * scale:.6g} {label} by the solver's own model" if own is not None else "")
            + (f", bound {r.bound * scale:.6g} {label}" if r.bound is not None else "")
        )
    if outcome.note:
        console.print(outcome.note)
    if r.status == "infeasible":
        need = r.min_sram_bytes
        console.print(
            "no plan fits this SRAM budget"
            + (
                f"; the smallest SRAM that works (found by the MILP, confirmed by the "
                f"simulator): --set sram_bytes={need // 1024}KiB"
                if need and need > 0
                else ""
            )
        )
    table = Table(title="alternatives, simulated on the spec")
    for col in (
        "alternative",
        "latency",
        "energy",
        "DRAM",
        "peak SRAM",
        "MAC util.",
        "x floor",
        "recomputed MACs",
        "fits",
    ):
        table.add_column(col, justify="right")
    for name, s in outcome.simulations.items():
        t = s.totals
        table.add_row(
            name,
            seconds(t.latency_s),
            joules(t.energy_j),
            binary_bytes(t.dram_bytes),
            binary_bytes(t.peak_sram_bytes),
            f"{t.mac_utilization:.1%}",
            f"{t.floor_ratio:.2f}",
            si(t.recomputed_macs),
            "yes" if t.feasible else "NO",
            style="bold" if name == "plan" else None,
        )
    console.print(table)
    chosen = outcome.simulations.get("plan") or next(iter(outcome.simulations.values()), None)
    if chosen is not None:  # what bounds the plan's run, and the lever left for it
        console.print(what_bounds(chosen.totals))
    if outcome.plan is None:
        return
    decisions = Table(title="decisions (each long-lived tensor across its gap)")
    for col in ("tensor (producer)", "bytes", "gap (ops)", "action", "recomputed at"):
        decisions.add_column(col)
    for p in outcome.plan.tensors:
        decisions.add_row(
            p.name or "<root>",
            binary_bytes(p.nbytes),
            f"{p.gap_start}-{p.gap_end}",
            p.action,
            p.recompute_at_scope or "",
        )
    console.print(decisions)
    _render_knobs(outcome, console)
    sched = outcome.plan.schedule
    console.print(
        f"around them: {len(sched.off_gaps)} of the {sched.gap_count} gaps wait in DRAM, "
        f"{len(sched.tiled_ops)} ops are tiled (the plan file holds the whole schedule)"
    )


def _render_knobs(outcome: PlanOutcome, console: Console) -> None:
    """The precision and attention decisions: layers per weight precision (a few named),
    the sensitivity error they spend against the budget, attention ops per mode."""
    plan, problem = outcome.plan, outcome.problem
    assert plan is not None
    if problem.layers:
        by_precision: dict[str, list[str]] = {}
        spent = 0.0
        for layer in problem.layers:
            chosen = plan.weights.get(layer.name, layer.options[0])
            by_precision.setdefault(chosen, []).append(layer.name)
            if chosen in layer.options:
                spent += layer.errors[layer.options.index(chosen)]
        table = Table(title="weight precision decisions (layers with weights)")
        for col in ("precision", "layers", "for example"):
            table.add_column(col, justify="right" if col == "layers" else "left")
        for precision, names in sorted(by_precision.items()):
            table.add_row(precision, str(len(names)), ", ".join(names[:3])
                          + (", ..." if len(names) > 3 else ""))  # fmt: skip
        console.print(table)
        budget = problem.accuracy_budget
        console.print(
            f"sensitivity error spent: {si(spent)}"
            + (f" of a budget of {si(budget)}" if budget is not None else " (floors only)")
        )
    if problem.attention:
        modes = Counter(a.mode for a in plan.attention)
        console.print(
            "attention: " + ", ".join(f"{n} {m}" for m, n in sorted(modes.items()))
            if modes
            else f"attention: all {len(problem.attention)} ops as captured"
        )


def plot_outcome(outcome: PlanOutcome, path: Path) -> None:
    """SRAM occupancy per op under keep-fit and under the plan, against the capacity (top);
    what the plan decides, per op (bottom): where recomputations land, where storages
    spill, which ops run tiled, which layers' weights change precision (by precision) or
    stay on chip across calls."""
    plt = pyplot()
    import numpy as np

    fig, (ax, strip) = plt.subplots(2, 1, figsize=(14, 6.5), sharex=True,
                                    gridspec_kw={"height_ratios": [3, 1.6]})  # fmt: skip
    for name, color in (("keep-fit", "#C44E52"), ("plan", "#4C72B0")):
        sim = outcome.simulations.get(name)
        if sim is not None:
            ax.plot(sim.later.traffic.occupancy_bytes, lw=0.8, color=color, label=name)
    ax.axhline(outcome.problem.capacity_bytes, color="black", ls="--", lw=0.8,
               label="SRAM for activations")  # fmt: skip
    ax.set_ylabel("SRAM occupied")
    byte_ticks(ax.yaxis)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    ax.set_title(
        f"{outcome.problem.model} on {outcome.problem.spec.name}: SRAM and decisions, "
        "keep-fit against the plan"
    )
    rows: list[tuple[str, np.ndarray, str]] = []
    plan, sim = outcome.plan, outcome.simulations.get("plan")
    if plan is not None and sim is not None:
        landed = [t.recompute_at for t in plan.tensors if t.action == "recompute"]
        rows.append(("recomputed at", np.array(landed, dtype=np.int64), "#55A868"))
        rows.append(("spills", np.flatnonzero(sim.first.traffic.spill_bytes), "#8172B3"))
        rows.append(("tiled", np.array(plan.schedule.tiled_ops, dtype=np.int64), "#DD8452"))
        rows.append(("weights held", np.array(plan.schedule.resident_ops, dtype=np.int64),
                     "#937860"))  # fmt: skip
        changed = {layer.name: layer for layer in outcome.problem.layers}
        for precision in sorted(set(plan.weights.values())):
            at = [op for name, p in plan.weights.items() if p == precision
                  for op in changed[name].ops] if changed else []  # fmt: skip
            rows.append((f"weights {precision}", np.array(at, dtype=np.int64), "#4C72B0"))
        for mode in ("materialized", "fused"):
            at = [a.op for a in plan.attention if a.mode == mode]
            if at:
                rows.append((f"attention {mode}", np.array(at, dtype=np.int64), "#DA8BC3"))
    for lane, (_, where, color) in enumerate(rows):
        if len(where):
            strip.scatter(where, np.full(len(where), lane), marker="|", s=60, color=color)
    strip.set_yticks(range(len(rows)), [f"{label} ({len(w)} ops)" for label, w, _ in rows],
                     fontsize=7)  # fmt: skip
    strip.set_ylim(-0.7, max(len(rows), 1) - 0.3)
    strip.set_xlabel("op in execution order")
    save_figure(fig, path)
