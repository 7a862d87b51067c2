"""Plans executed on the real model: peak memory saved, output equality, time overhead.

    .venv/bin/python benchmarks/execute.py [--resolution 512] [--repeat 2]

SD 1.5 U-Net at 512 x 512 (fp32, batch 1, random weights) on CPU, replayed by edgewise's
interpreter (last-use lifetimes) without a plan and with three plans:
- "recompute": from the planner's own problem (generic-npu), greedily recompute the
  long-lived tensors live at the predicted peak, each at the candidate op (the planner's
  `places`) that lowers the predicted peak most, while the peak goes down;
- "recompute-all": every long-lived tensor recomputed just before it is needed (what
  recomputation costs when it is not chosen with the peak in mind);
- "planner": `edgewise plan` on generic-npu, objective dram, allow spill,recompute.
Every figure is measured (profiler allocation events; kernel scratch excluded) beside
edgewise's prediction for that run; latency is the median of `--repeat` timed runs.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from rich.console import Console
from rich.table import Table

from edgewise.analysis.memory import memory_timeline
from edgewise.capture.zoo import Workload, capture_zoo, zoo_entry
from edgewise.execute.interpreter import schedule
from edgewise.execute.measure import check_fits, materialize
from edgewise.execute.run import PlanRun, RunFigures, predicted_live, run_plan
from edgewise.hardware.spec import load_spec
from edgewise.ir.graph import Graph
from edgewise.plan.plan import Plan, PlanPrecision, uniform_choices
from edgewise.plan.planner import make_plan, plan_from_choices
from edgewise.plan.problem import PlanProblem, plan_problem
from edgewise.report.format import binary_bytes
from edgewise.simulate.simulator import simulate
from edgewise.simulate.workload import op_workload

MODEL = "sd15-unet"


def planner_problem(graph: Graph) -> PlanProblem:
    """The planner's problem on generic-npu: the long-lived tensors, gaps and places."""
    spec = load_spec("generic-npu", [])
    work = op_workload(graph, "fp16", "fp16")
    return plan_problem(graph, work, simulate(work, spec, "fp16"), spec)


def plan_of(graph: Graph, problem: PlanProblem, choices: Sequence[tuple[str, int]]) -> Plan:
    return plan_from_choices(
        problem, graph, tuple(choices), PlanPrecision("fp32", "fp32", "fp32"), objective="peak"
    )


def recompute_plan(graph: Graph, problem: PlanProblem) -> Plan:
    """Greedy: recompute what is live at the predicted peak, where it helps most."""
    choices = {t.storage_id: ("keep", -1) for t in problem.tensors}

    def plan_for(picked: dict[int, tuple[str, int]]) -> Plan:
        return plan_of(graph, problem, [picked[t.storage_id] for t in problem.tensors])

    def peak(picked: dict[int, tuple[str, int]]) -> tuple[int, int]:
        live = predicted_live(graph, schedule(graph, plan_for(picked)))
        return int(live.max()), int(live.argmax())

    best, at = peak(choices)
    while True:
        waiting = [t for t in problem.tensors if t.gap_start < at < t.gap_end]
        candidates = [t for t in waiting if choices[t.storage_id][0] == "keep"]
        trials = [
            (peak({**choices, t.storage_id: ("recompute", j)}), t.storage_id, j)
            for t in candidates
            for j in _places(problem, t.storage_id)
        ]
        if not trials or min(trials)[0][0] >= best:
            return plan_for(choices)
        (best, at), sid, j = min(trials)
        choices[sid] = ("recompute", j)


def _places(problem: PlanProblem, storage_id: int) -> tuple[int, ...]:
    t = next(t for t in problem.tensors if t.storage_id == storage_id)
    return t.places


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--resolution", type=int, default=512)
    parser.add_argument("--repeat", type=int, default=2)
    opts = parser.parse_args()
    workload = Workload(resolution=opts.resolution)
    graph = capture_zoo(MODEL, workload)
    eager = memory_timeline(graph, lifetimes="eager")
    check_fits(graph.parameter_count * 4 + int(1.5 * eager.peak_bytes), "cpu")
    problem = planner_problem(graph)
    plans = {
        "recompute": recompute_plan(graph, problem),
        "recompute-all": plan_of(graph, problem, uniform_choices(problem, "recompute")),
    }
    planner = make_plan(graph, load_spec("generic-npu", []), "int8", "int8", "int8", "dram",
                        frozenset({"spill", "recompute"}))  # fmt: skip
    if planner.plan is not None:
        plans["planner"] = planner.plan
    model, args, kwargs = materialize(*zoo_entry(MODEL).build(workload), "fp32", "cpu")
    runs = {name: run_plan(graph, model, args, kwargs, plan, "cpu", opts.repeat)
            for name, plan in plans.items()}  # fmt: skip
    render(graph, plans, runs, opts)


def render(
    graph: Graph, plans: dict[str, Plan], runs: dict[str, PlanRun], opts: argparse.Namespace
) -> None:
    console = Console(width=200)
    table = Table(title=f"{MODEL} {opts.resolution}x{opts.resolution}, fp32, CPU, random "
                  f"weights: plans executed (median of {opts.repeat})")  # fmt: skip
    for col in ("forward", "plan", "peak measured", "peak predicted", "error",
                "saved (predicted)", "spill pool", "outputs", "latency s", "time"):  # fmt: skip
        table.add_column(col, justify="left" if col in ("forward", "plan", "outputs") else "right")
    first = next(iter(runs.values()))
    for name, figures in (("eager model", first.eager), ("interpreter", first.baseline)):
        exact = "bit-exact" if name == "eager model" or first.replay.bit_exact else "differ"
        table.add_row(name, "-", binary_bytes(figures.peak_bytes),
                      binary_bytes(figures.predicted_peak_bytes), _error(figures), "", "",
                      exact, f"{figures.latency_s:.2f}", "")  # fmt: skip
    for name, run in runs.items():
        moved = ", ".join(f"{n} {a}" for a, n in run.actions.items() if n and a != "keep")
        base = run.baseline
        table.add_row(
            "interpreter + plan", f"{name}: {moved}", binary_bytes(run.planned.peak_bytes),
            binary_bytes(run.planned.predicted_peak_bytes), _error(run.planned),
            f"{binary_bytes(run.saved_bytes)} ({binary_bytes(run.predicted_saved_bytes)})",
            binary_bytes(run.pool_peak_bytes),
            "bit-exact" if run.fidelity.bit_exact else f"SQNR {run.fidelity.sqnr_db:.1f} dB",
            f"{run.planned.latency_s:.2f}", f"{run.planned.latency_s / base.latency_s - 1:+.1%}",
        )  # fmt: skip
    console.print(table)
    for name, run in runs.items():
        recomputed = [f"{t.name} (at op {t.recompute_at})" for t in plans[name].tensors
                      if t.action == "recompute"]  # fmt: skip
        more = f", +{len(recomputed) - 3} more" if len(recomputed) > 3 else ""
        console.print(f"{name}: {run.recomputed_ops} ops re-run per forward; "
                      f"recomputed: {', '.join(recomputed[:3]) or '-'}{more}")  # fmt: skip
    console.print(f"{len(graph.ops)} ops; baseline interpreter vs eager: "
                  f"{'bit-exact' if first.replay.bit_exact else 'differ'}")  # fmt: skip


def _error(figures: RunFigures) -> str:
    """(predicted - measured) / measured, with the byte difference."""
    diff = figures.predicted_peak_bytes - figures.peak_bytes
    return f"{diff / figures.peak_bytes:+.2%} ({diff:+,} B)" if figures.peak_bytes else "-"


if __name__ == "__main__":
    main()
