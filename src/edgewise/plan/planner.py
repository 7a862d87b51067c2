"""The planning pipeline in one place: workload -> baseline -> problem -> solver -> plan,
then every alternative simulated on the same spec so they compare like for like."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from edgewise.errors import EdgewiseError
from edgewise.hardware.spec import HardwareSpec
from edgewise.ir.graph import Graph
from edgewise.plan.greedy import solve_greedy
from edgewise.plan.knobs import load_sensitivity, parse_floors, with_precision, with_tiling
from edgewise.plan.milp import SolverResult, solve_milp
from edgewise.plan.plan import (
    Plan,
    PlannedAttention,
    gap_decisions,
    planned_tensors,
    uniform_choices,
)
from edgewise.plan.problem import PlanProblem, plan_problem
from edgewise.simulate.simulator import Simulation, simulate
from edgewise.simulate.workload import OpWorkload, op_workload

TENSOR_ACTIONS = frozenset({"keep", "spill", "recompute"})
ALLOWED = TENSOR_ACTIONS | {"precision", "tiling"}
ALTERNATIVES = ("spill-all", "keep-fit", "recompute-all", "plan")


@dataclass(frozen=True)
class PlanOutcome:
    plan: Plan | None  # None when infeasible
    result: SolverResult
    problem: PlanProblem
    simulations: dict[str, Simulation]  # alternative -> simulation on the spec


def make_plan(
    graph: Graph,
    spec: HardwareSpec,
    weights: str,
    activations: str,
    compute: str,
    objective: str = "latency",
    allow: frozenset[str] = ALLOWED,
    solver: str = "milp",
    time_limit_s: float = 60.0,
    long_lived_ops: int = 100,
    floors: Sequence[str] = (),
    sensitivity: Path | None = None,
    accuracy_budget: float | None = None,
) -> PlanOutcome:
    if objective not in ("latency", "energy", "dram"):
        raise EdgewiseError(f"--objective must be latency, energy or dram (got '{objective}')")
    if solver not in ("milp", "greedy"):
        raise EdgewiseError(f"--solver must be milp or greedy (got '{solver}')")
    unknown = allow - ALLOWED
    if unknown or not allow:
        given = ",".join(sorted(allow))
        known = "keep, spill, recompute, precision, tiling"
        raise EdgewiseError(f"--allow takes a comma list of {known} (got '{given}')")
    if time_limit_s <= 0:
        raise EdgewiseError(f"--time-limit must be positive seconds (got {time_limit_s})")
    if (floors or sensitivity or accuracy_budget is not None) and "precision" not in allow:
        raise EdgewiseError(
            "--floor, --sensitivity and --accuracy-budget need --allow ...,precision"
        )
    work: OpWorkload = op_workload(graph, weights, activations)
    keep_fit = simulate(work, spec, compute)
    problem = plan_problem(graph, work, keep_fit, spec, long_lived_ops)
    if "precision" in allow:
        table = load_sensitivity(sensitivity) if sensitivity else None
        problem = with_precision(
            problem, graph, work, parse_floors(list(floors)), table, accuracy_budget
        )
    if "tiling" in allow:
        problem = with_tiling(problem, graph, work)
    actions = allow & TENSOR_ACTIONS or frozenset({"spill"})
    if solver == "milp":
        result = solve_milp(problem, objective, actions, time_limit_s)
    else:
        result = solve_greedy(problem, objective, actions)
    sims = {"keep-fit": keep_fit}
    for name, action in (("spill-all", "spill"), ("recompute-all", "recompute")):
        tensors = planned_tensors(problem, graph, uniform_choices(problem, action))
        sims[name] = simulate(work, spec, compute, gap_decisions(tensors))
    plan = None
    if result.choices is not None:
        tensors = planned_tensors(problem, graph, result.choices)
        plan = Plan(
            model=graph.model,
            op_count=len(graph.ops),
            hardware=spec.name,
            precision=f"w:{weights} a:{activations} mac:{compute}",
            objective=objective,
            solver=solver,
            status=result.status,
            objective_value=result.objective,
            bound=result.bound,
            gap=result.gap,
            tensors=tensors,
            weights={
                layer.name: option
                for layer, option in zip(problem.layers, result.knobs.weights, strict=True)
                if option != layer.options[0]
            },
            attention=tuple(
                PlannedAttention(
                    a.op,
                    graph.ops[a.op].scope,
                    "tiled" if tiled else "materialized",
                    a.materialized_sram_bytes / 2,
                    a.tiled_sram_bytes,
                )
                for a, tiled in zip(problem.attention, result.knobs.tiled, strict=True)
            ),
        )
        sims["plan"] = simulate(plan.workload(work, graph), spec, compute, plan.decisions())
    return PlanOutcome(plan, result, problem, {k: sims[k] for k in ALTERNATIVES if k in sims})
