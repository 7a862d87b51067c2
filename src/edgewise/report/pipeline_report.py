"""Render a pipeline run: one row per phase (per call and per run), totals per run."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from edgewise.analysis.pipeline import PipelineCounts, PipelineMemory
from edgewise.plan.planner import PlanOutcome
from edgewise.report.format import binary_bytes, joules, si
from edgewise.report.format import seconds as _seconds
from edgewise.report.simulate_report import what_bounds
from edgewise.simulate.pipeline import PhaseRun, PipelineRun
from edgewise.simulate.simulator import BOUNDS, Totals


def main_bound(t: Totals) -> str:
    """The bound that takes the most of the time."""
    time = (t.compute_bound_s, t.dram_bound_s, t.sram_bound_s, t.overhead_bound_s)
    return BOUNDS[max(range(4), key=lambda k: time[k])] if t.latency_s else "none"


def pipeline_run_to_dict(run: PipelineRun, plans: dict[str, Any] | None = None) -> dict[str, Any]:
    """Per phase: its first call, a later call (weights held across calls on chip already)
    and the phase over all its calls; then the run's totals."""
    first = run.phases[0].first
    return {
        "pipeline": run.pipeline,
        "description": run.description,
        "unit": run.unit,
        "hardware": run.spec_name,
        "precision": {
            "compute": run.precision,
            "weights": first.work.weight_precision,
            "activations": first.work.activation_precision,
        },
        "units": {
            "latency_s": "seconds",
            "energy_j": "joules",
            "dram_bytes": "bytes",
            "steps_per_s": "denoising steps per second of the U-Net phase",
        },
        "steps": run.steps,
        "steps_per_s": run.steps_per_s,
        "phases": [
            {
                "name": p.name,
                "model": p.first.work.model,
                "calls": p.calls,
                "plan": (plans or {}).get(p.name),
                "first_call": asdict(p.first.totals),
                "later_call": asdict(p.later.totals),
                "totals": asdict(p.totals),
            }
            for p in run.phases
        ],
        "totals": asdict(run.totals),
    }


def render_pipeline_run(run: PipelineRun, console: Console, title: str = "") -> None:
    first = run.phases[0].first
    t = run.totals
    table = Table(
        title=title
        or f"{escape(run.pipeline)} on {escape(run.spec_name)}: {escape(run.description)} "
        f"({first.work.weight_precision} weights, {first.work.activation_precision} "
        f"activations, {run.precision} MACs), per {escape(run.unit)}"
    )
    for col in ("phase", "calls", "first call", "later call", "phase total", "share",
                "energy", "DRAM", "weights from DRAM", "peak SRAM", "bound"):  # fmt: skip
        table.add_column(col, justify="left" if col in ("phase", "bound") else "right")
    for p in run.phases:
        pt = p.totals
        table.add_row(
            escape(p.name),
            str(p.calls),
            _seconds(p.first.totals.latency_s),
            _seconds(p.later.totals.latency_s) if p.calls > 1 else "-",
            _seconds(pt.latency_s),
            f"{pt.latency_s / t.latency_s:.1%}" if t.latency_s else "-",
            joules(pt.energy_j),
            binary_bytes(pt.dram_bytes),
            binary_bytes(pt.dram_weight_bytes),
            binary_bytes(pt.peak_sram_bytes),
            main_bound(p.later.totals),
        )
    table.add_row(
        f"per {escape(run.unit)}", "", "", "", _seconds(t.latency_s), "100%",
        joules(t.energy_j), binary_bytes(t.dram_bytes), binary_bytes(t.dram_weight_bytes),
        binary_bytes(t.peak_sram_bytes), main_bound(t), style="bold",
    )  # fmt: skip
    console.print(table)
    if run.steps:
        console.print(
            f"{run.steps:g} denoising steps: {si(run.steps_per_s)} steps/s on the U-Net; "
            f"floor {_seconds(t.floor_s)} per {escape(run.unit)} ({t.floor_ratio:.2f}x)"
        )
    console.print(what_bounds(t, repeated=True))


def render_pipeline_counts(counts: PipelineCounts, console: Console) -> None:
    table = Table(
        title=f"{escape(counts.pipeline)}: counts per call and per {escape(counts.unit)} "
        f"(convention {counts.convention})"
    )
    for col in ("phase", "model", "calls", "params", "MACs / call", "FLOPs / call",
                f"MACs / {counts.unit}", "share"):  # fmt: skip
        table.add_column(col, justify="left" if col in ("phase", "model") else "right")
    for p in counts.phases:
        table.add_row(
            escape(p.name), escape(p.model), str(p.calls), si(p.per_call.params),
            si(p.per_call.macs), si(p.per_call.flops), si(p.macs),
            f"{p.macs / counts.macs:.1%}" if counts.macs else "-",
        )  # fmt: skip
    table.add_row(f"per {escape(counts.unit)}", "", "", si(counts.params), "", "",
                  si(counts.macs), "100%", style="bold")  # fmt: skip
    console.print(table)
    console.print(f"FLOPs per {escape(counts.unit)}: {si(counts.flops)}")


def pipeline_counts_to_dict(counts: PipelineCounts) -> dict[str, Any]:
    return {
        "pipeline": counts.pipeline,
        "unit": counts.unit,
        "convention": counts.convention,
        "phases": [
            {
                "name": p.name,
                "model": p.model,
                "calls": p.calls,
                "per_call": asdict(p.per_call),
                "macs": p.macs,
                "flops": p.flops,
            }
            for p in counts.phases
        ],
        "totals": {"params": counts.params, "macs": counts.macs, "flops": counts.flops},
    }


def render_pipeline_memory(mem: PipelineMemory, console: Console) -> None:
    table = Table(
        title=f"{escape(mem.pipeline)}: memory per phase and per {escape(mem.unit)}"
        + (f" (at {mem.dtype})" if mem.dtype else " (captured dtypes)")
    )
    for col in ("phase", "model", "calls", "weights", "activation peak", "at"):
        table.add_column(col, justify="left" if col in ("phase", "model", "at") else "right")
    for p in mem.phases:
        peak, at = binary_bytes(p.peak_activation_bytes), escape(p.peak_scope or "<root>")
        table.add_row(escape(p.name), escape(p.model), str(p.calls),
                      binary_bytes(p.weight_bytes), peak, at)  # fmt: skip
    console.print(table)
    console.print(
        f"peak per {escape(mem.unit)}: {binary_bytes(mem.all_loaded_peak_bytes)} with every "
        f"phase's model loaded (as a diffusers pipeline keeps them), "
        f"{binary_bytes(mem.one_loaded_peak_bytes)} loading one phase's model at a time"
    )


def pipeline_memory_to_dict(mem: PipelineMemory) -> dict[str, Any]:
    return {
        "pipeline": mem.pipeline,
        "unit": mem.unit,
        "dtype": mem.dtype,
        "phases": [asdict(p) for p in mem.phases],
        "all_loaded_peak_bytes": mem.all_loaded_peak_bytes,
        "one_loaded_peak_bytes": mem.one_loaded_peak_bytes,
    }


def held_bytes(run: PhaseRun) -> int:
    """Bytes a plan holds on chip across the phase's calls: weights and KV cache inputs."""
    schedule, work = run.first.schedule, run.first.work
    return schedule.held_weight_bytes(work) + schedule.held_input_bytes(work)


def render_pipeline_plans(
    outcomes: dict[str, PlanOutcome], default: PipelineRun, planned: PipelineRun, console: Console
) -> None:
    """Per phase what the plan decided and saved; per run, the default against the plan."""
    table = Table(
        title=f"{escape(planned.pipeline)} on {escape(planned.spec_name)}: each phase planned "
        f"over its calls ({escape(planned.description)})"
    )
    for col in ("phase", "calls", "solver", "default", "plan", "change", "weights from DRAM",
                "held on chip", "decisions"):  # fmt: skip
        table.add_column(
            col, justify="left" if col in ("phase", "solver", "decisions") else "right"
        )
    for before, after in zip(default.phases, planned.phases, strict=True):
        outcome = outcomes[after.name]
        r = outcome.result
        status = r.status + (f" (gap {r.gap:.2%})" if r.gap else "")
        change = (
            after.totals.latency_s / before.totals.latency_s - 1 if before.totals.latency_s else 0
        )
        plan = outcome.plan
        table.add_row(
            escape(after.name), str(after.calls), status, _seconds(before.totals.latency_s),
            _seconds(after.totals.latency_s), f"{change:+.2%}",
            f"{binary_bytes(before.totals.dram_weight_bytes)} -> "
            f"{binary_bytes(after.totals.dram_weight_bytes)}",
            f"{len(plan.resident) if plan else 0} layers, {binary_bytes(held_bytes(after))}",
            escape(plan.described()) if plan else "infeasible",
        )  # fmt: skip
    console.print(table)
    totals = Table(title=f"per {escape(planned.unit)}")
    for col in ("", "latency", "energy", "DRAM", "weights from DRAM", "steps/s", "x floor"):
        totals.add_column(col, justify="left" if not col else "right")
    for name, run in (("default schedule", default), ("plan", planned)):
        t = run.totals
        totals.add_row(name, _seconds(t.latency_s), joules(t.energy_j),
                       binary_bytes(t.dram_bytes), binary_bytes(t.dram_weight_bytes),
                       si(run.steps_per_s) if run.steps else "-", f"{t.floor_ratio:.2f}",
                       style="bold" if name == "plan" else None)  # fmt: skip
    console.print(totals)
    console.print(what_bounds(planned.totals, repeated=True))


def pipeline_plans_to_dict(
    outcomes: dict[str, PlanOutcome], default: PipelineRun, planned: PipelineRun
) -> dict[str, Any]:
    from edgewise.report.plan_report import outcome_to_dict

    return {
        "pipeline": planned.pipeline,
        "description": planned.description,
        "hardware": planned.spec_name,
        "phases": {name: outcome_to_dict(o) for name, o in outcomes.items()},
        "totals": {"default": asdict(default.totals), "plan": asdict(planned.totals)},
        "steps": planned.steps,
        "steps_per_s": {"default": default.steps_per_s, "plan": planned.steps_per_s},
    }
