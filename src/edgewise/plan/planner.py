"""The planning pipeline in one place: workload -> baseline -> problem -> solver -> plan,
then the plan and every obvious alternative simulated on the same spec, and the best
allowed one returned: a plan never simulates worse than an allowed baseline."""

from __future__ import annotations

import fnmatch
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from edgewise.errors import EdgewiseError
from edgewise.hardware.spec import HardwareSpec
from edgewise.ir.graph import Graph
from edgewise.ir.vocab import (
    PRECISION_BYTES,
    WEIGHT_OPTIONS,
    Action,
    AttentionMode,
    Objective,
    parse_enum,
)
from edgewise.plan.greedy import figure, pins_for, solve_greedy
from edgewise.plan.knobs import (
    default_knobs,
    knob_workload,
    load_sensitivity,
    parse_floors,
    with_precision,
    with_residency,
    with_tiling,
)
from edgewise.plan.milp import TENSOR_ACTIONS, solve_milp
from edgewise.plan.plan import (
    Plan,
    PlannedAttention,
    PlanPrecision,
    planned_schedule,
    planned_tensors,
    uniform_choices,
)
from edgewise.plan.problem import PlanProblem, plan_problem
from edgewise.plan.result import Choice, SolverResult
from edgewise.simulate.compile import compiled
from edgewise.simulate.pipeline import PhaseRun, simulate_phase
from edgewise.simulate.simulator import Simulation, activation_capacity, simulate
from edgewise.simulate.workload import OpWorkload, op_workload

ALLOWED = frozenset({*TENSOR_ACTIONS, "precision", "kv-precision", "tiling", "residency"})
DEFAULT_ALLOW = frozenset({*TENSOR_ACTIONS, "residency"})  # as `edgewise plan` without --allow
ALTERNATIVES = ("spill-all", "keep-fit", "recompute-all", "plan")
SOLVERS = ("milp", "greedy")


@dataclass(frozen=True)
class PlanOutcome:
    plan: Plan | None  # None when infeasible
    result: SolverResult
    problem: PlanProblem
    simulations: dict[str, PhaseRun]  # alternative -> its calls simulated on the spec
    note: str = ""  # what the reader must know: a baseline returned, a restriction, ...


def _baseline_allowed(name: str, allow: frozenset[str]) -> bool:
    needs = {"spill-all": {Action.SPILL}, "keep-fit": {Action.KEEP, Action.SPILL}}
    return needs.get(name, {Action.RECOMPUTE}) <= allow


def make_plan(
    graph: Graph,
    spec: HardwareSpec,
    weights: str,
    activations: str,
    compute: str,
    objective: str = "latency",
    allow: frozenset[str] = DEFAULT_ALLOW,
    solver: str = "milp",
    time_limit_s: float = 60.0,
    long_lived_ops: int = 100,
    floors: Sequence[str] = (),
    sensitivity: Path | None = None,
    accuracy_budget: float | None = None,
    calls: int = 1,
    kv_precision: str | None = None,
) -> PlanOutcome:
    """Plan `graph` (one phase, called `calls` times back to back) on `spec`; a decode
    step's KV cache at `kv_precision` (None: the activations'), or, with `kv-precision`
    allowed, at the best of the precisions its floor or error budget permits: the whole
    plan is solved at each (at most four) and the best simulated one is returned, so the
    choice is optimal over one precision for the whole cache."""
    goal = Objective(parse_enum(Objective, objective, "--objective"))
    if solver not in SOLVERS:
        raise EdgewiseError(f"--solver must be milp or greedy (got '{solver}')")
    unknown = allow - ALLOWED
    if unknown or not allow:
        given = ",".join(sorted(allow))
        known = "keep, spill, recompute, precision, kv-precision, tiling, residency"
        raise EdgewiseError(f"--allow takes a comma list of {known} (got '{given}')")
    if time_limit_s <= 0:
        raise EdgewiseError(f"--time-limit must be positive seconds (got {time_limit_s})")
    levers = allow & {"precision", "kv-precision"}
    if (floors or sensitivity or accuracy_budget is not None) and not levers:
        raise EdgewiseError(
            "--floor, --sensitivity and --accuracy-budget need --allow ...,precision "
            "(or kv-precision)"
        )
    parsed = parse_floors(list(floors))
    layer_floors = [f for f in parsed if f[0] != KV_CACHE]  # the cache's floor bounds no layer
    if "precision" in allow and not layer_floors and sensitivity is None:
        raise EdgewiseError(
            "--allow precision needs --sensitivity FILE with --accuracy-budget B (measure the "
            "file with `edgewise sensitivity`), or --floor LAYER=BITS: without them nothing "
            "bounds the error and every layer would go to int2"
        )
    if (sensitivity is None) != (accuracy_budget is None):
        raise EdgewiseError("--sensitivity FILE and --accuracy-budget X go together")
    if "kv-precision" in allow and sensitivity is None and _kv_floor(parsed) is None:
        raise EdgewiseError(
            f"--allow kv-precision needs --floor {KV_CACHE}=BITS, or --sensitivity FILE (with a "
            f"'{KV_CACHE}' entry) and --accuracy-budget B: without them nothing bounds the "
            "error and the cache would go to int2"
        )
    table = load_sensitivity(sensitivity) if sensitivity else None
    options = kv_options(graph, activations, kv_precision, allow, parsed, table, accuracy_budget)
    outcomes = [
        _plan_at(graph, spec, weights, activations, compute, goal, allow, solver, time_limit_s,
                 long_lived_ops, parsed, table,
                 None if accuracy_budget is None else accuracy_budget - error, calls, kv)
        for kv, error in options
    ]  # fmt: skip
    solved = [o for o in outcomes if o.plan is not None]
    if not solved:  # the narrowest cache needs the least SRAM: its minimum is reported
        return outcomes[-1]
    best = min(solved, key=lambda o: figure(o.simulations["plan"], goal))
    if len(options) == 1:
        return best
    unit = {Objective.LATENCY: (1e3, "ms"), Objective.ENERGY: (1e3, "mJ"),
            Objective.DRAM: (2.0**-20, "MiB")}[goal]  # fmt: skip
    tried = ", ".join(
        f"{kv or activations} {figure(o.simulations['plan'], goal) * unit[0]:.4g} {unit[1]}"
        if o.plan is not None else f"{kv or activations} does not fit"
        for (kv, _), o in zip(options, outcomes, strict=True)
    )  # fmt: skip
    assert best.plan is not None
    kv = best.plan.kv_precision or activations
    line = f"KV cache at {kv} (the plan at each KV precision, {goal}: {tried})"
    note = "; ".join(x for x in (best.plan.note, line) if x)
    return replace(best, plan=replace(best.plan, note=note), note=note)


KV_CACHE = "kv_cache"  # a decode step's KV cache, as floors and sensitivity files name it


def _kv_floor(floors: Sequence[tuple[str, str]]) -> float | None:
    return min((PRECISION_BYTES[p] for g, p in floors if fnmatch.fnmatch(KV_CACHE, g)),
               default=None)  # fmt: skip


def kv_options(
    graph: Graph,
    activations: str,
    kv_precision: str | None,
    allow: frozenset[str],
    floors: Sequence[tuple[str, str]],
    table: dict[str, dict[str, float]] | None,
    budget: float | None,
) -> list[tuple[str | None, float]]:
    """The KV cache precisions to plan at, each with its error (the sensitivity file's
    `kv_cache` entry; 0 for the base): the base first, then each narrower integer width the
    floor keeps and the budget affords. Only the base where there is no cache to decide."""
    base = kv_precision or activations
    if "kv-precision" not in allow or not graph.meta.get("kv_inputs"):
        return [(kv_precision, 0.0)]
    floor = _kv_floor(floors)
    out: list[tuple[str | None, float]] = [(kv_precision, 0.0)]
    for p in WEIGHT_OPTIONS:
        if PRECISION_BYTES[p] >= PRECISION_BYTES[base] or (floor and PRECISION_BYTES[p] < floor):
            continue
        if table is None:
            out.append((str(p), 0.0))
            continue
        error = table.get(KV_CACHE, {}).get(str(p))
        if error is not None and budget is not None and (error <= budget if budget else not error):
            out.append((str(p), error))
    return out


def _plan_at(
    graph: Graph,
    spec: HardwareSpec,
    weights: str,
    activations: str,
    compute: str,
    goal: Objective,
    allow: frozenset[str],
    solver: str,
    time_limit_s: float,
    long_lived_ops: int,
    floors: list[tuple[str, str]],
    table: dict[str, dict[str, float]] | None,
    accuracy_budget: float | None,
    calls: int,
    kv_precision: str | None,
) -> PlanOutcome:
    """One plan, the KV cache (if any) at `kv_precision`."""
    work: OpWorkload = compiled(
        op_workload(graph, weights, activations, kv_precision=kv_precision), spec
    )
    keep_fit = simulate(work, spec, compute)
    problem = replace(plan_problem(graph, work, keep_fit, spec, long_lived_ops), calls=calls)
    if "precision" in allow:
        problem = with_precision(problem, graph, work, floors, table, accuracy_budget)
    if "tiling" in allow:
        problem = with_tiling(problem, graph, work)
    if "residency" in allow:
        problem = with_residency(problem, graph, work)

    def phase(w: OpWorkload, pins=(), schedule=None) -> PhaseRun:  # type: ignore[no-untyped-def]
        return simulate_phase(graph.model, w, spec, compute, calls, schedule, pins)

    actions = frozenset(Action(a) for a in allow & TENSOR_ACTIONS) or frozenset({Action.SPILL})
    if solver == "milp":
        result = solve_milp(problem, goal, actions, time_limit_s)
        if result.choices is None and result.status == "time-limit":
            fallback = solve_greedy(problem, goal, actions)
            result = replace(fallback, status="time-limit", bound=result.bound)
    else:
        result = solve_greedy(problem, goal, actions)
    # the baselines run with the levers at their defaults (base precision, fused attention)
    defaults = default_knobs(problem)
    base_work = knob_workload(problem, defaults) if problem.layers or problem.attention else work
    sims: dict[str, PhaseRun] = {
        "keep-fit": phase(base_work, schedule=keep_fit.schedule if base_work is work else None)
    }
    choices_of: dict[str, tuple[Choice, ...]] = {}
    for name, action in (("spill-all", Action.SPILL), ("recompute-all", Action.RECOMPUTE)):
        choices_of[name] = uniform_choices(problem, action)
        pins = _chained_pins(problem, graph, choices_of[name])
        sims[name] = phase(base_work, pins)
    notes = []
    solved = result.choices is not None and result.schedule is not None
    if solved:
        sims["plan"] = phase(knob_workload(problem, result.knobs), schedule=result.schedule)
    chosen, choices, knobs = "plan", result.choices, result.knobs
    best = figure(sims["plan"], goal) if solved else float("inf")
    for name in ("spill-all", "keep-fit", "recompute-all"):
        if _baseline_allowed(name, actions) and figure(sims[name], goal) < best * (1 - 1e-9):
            chosen, best = name, figure(sims[name], goal)
    if not solved and chosen == "plan":  # nothing allowed fits
        need = result.min_sram_bytes
        if need is not None and need > 0:
            confirmed = _confirmed_sram(graph, spec, work, compute, need, long_lived_ops, goal,
                                        actions)  # fmt: skip
            result = replace(result, min_sram_bytes=confirmed)
        return PlanOutcome(None, result, problem, _ordered(sims), "")
    if not solved:  # e.g. only recompute allowed: the MILP forbids chains, recompute-all
        notes.append(  # re-runs them
            f"no {solver} plan within the allowed actions (the MILP does not chain "
            f"recomputations); {chosen} is allowed and fits, and is returned"
        )
        result = replace(result, status="baseline")
    elif chosen != "plan":
        notes.append(
            f"the {result.status} plan simulated worse than {chosen}; {chosen} is returned"
        )
    if chosen != "plan":
        choices = choices_of.get(chosen) or _keep_fit_choices(problem, sims["keep-fit"].first)
        knobs = defaults
        sims["plan"] = sims[chosen]
    if problem.decisions == 0:
        result = replace(result, status="nothing-to-plan")
        notes.append(_what_bounds(sims["plan"].first))
    elif problem.restricted and result.status == "optimal":
        places = sum(len(t.places) for t in problem.tensors)
        window = sum(t.window_ops for t in problem.tensors)
        notes.append(
            f"optimal over {places} candidate recompute positions ({window} ops lie in the "
            "gaps): the gap's end and the most idle ops of each"
        )
    assert choices is not None  # solved, or a baseline was chosen
    tensors = planned_tensors(problem, graph, choices)
    plan = Plan(
        model=graph.model,
        op_count=len(graph.ops),
        hardware=spec.name,
        precision=PlanPrecision(weights, activations, compute),
        objective=str(goal),
        solver=solver,
        status=result.status,
        objective_value=best,
        planner_value=result.objective,
        bound=result.bound,
        gap=result.gap,
        tensors=tensors,
        schedule=planned_schedule(sims["plan"].first.schedule, problem),
        calls=calls,
        kv_precision=kv_precision,
        resident=tuple(
            layer.name
            for layer, kept in zip(problem.layers, knobs.resident or defaults.resident, strict=True)
            if kept
        ),
        weights={
            layer.name: option
            for layer, option in zip(problem.layers, knobs.weights, strict=True)
            if option != layer.options[0]
        },
        attention=tuple(
            PlannedAttention(
                a.op,
                graph.ops[a.op].scope,
                str(AttentionMode.FUSED if fused else AttentionMode.MATERIALIZED),
                float(a.scores_bytes),
                float(a.reread_bytes),
            )
            for a, fused in zip(problem.attention, knobs.fused, strict=True)
        ),
        note="; ".join(notes),
    )
    return PlanOutcome(plan, result, problem, _ordered(sims), plan.note)


def _confirmed_sram(
    graph: Graph,
    spec: HardwareSpec,
    work: OpWorkload,
    compute: str,
    activations_bytes: int,
    long_lived_ops: int,
    goal: Objective,
    actions: frozenset[Action],
) -> int:
    """The smallest SRAM (spec bytes, weights included when they stay resident) that the
    MILP's minimum gives, confirmed by planning and simulating at that size; grown in
    1 KiB steps (at most 16) if the simulator disagrees. -1 if none is confirmed."""
    extra = spec.sram_bytes - activation_capacity(work, spec)[0]
    size = -(-(activations_bytes + extra) // 1024) * 1024  # rounded up to whole KiB
    for _ in range(16):
        trial = spec.model_copy(update={"sram_bytes": size})
        base = simulate(work, trial, compute)
        result = solve_milp(plan_problem(graph, work, base, trial, long_lived_ops), goal, actions)
        schedule = result.schedule
        if (
            schedule is not None
            and simulate(work, trial, compute, schedule=schedule).totals.feasible
        ):
            return size
        size += 1024
    return -1


def _ordered(sims: dict[str, PhaseRun]) -> dict[str, PhaseRun]:
    return {k: sims[k] for k in ALTERNATIVES if k in sims}


def _chained_pins(problem: PlanProblem, graph: Graph, choices: tuple[Choice, ...]):  # type: ignore[no-untyped-def]
    """Pins for uniform choices, recomputations re-running recomputed sources' ops too."""
    tensors = planned_tensors(problem, graph, choices)
    pins = pins_for(problem, choices)
    return tuple(
        replace(
            p,
            recompute=replace(p.recompute, segment=t.segment, sources=t.sources),
        )
        if p.recompute is not None
        else p
        for p, t in zip(pins, tensors, strict=True)
    )


def _keep_fit_choices(problem: PlanProblem, sim: Simulation) -> tuple[Choice, ...]:
    return tuple(
        (Action.KEEP if sim.schedule.kept[t.gap] else Action.SPILL, -1) for t in problem.tensors
    )


def _what_bounds(sim: Simulation) -> str:
    """One line on what sets the figure when there is nothing to decide."""
    work = sim.work
    total = max(sim.totals.dram_bytes, 1)
    weights = work.total_weight_bytes if sim.weights_resident else int(work.weight_bytes.sum())
    bound = {0: "compute", 1: "DRAM", 2: "SRAM", 3: "overhead"}
    time_by = [float(sim.latency_s[sim.bound == k].sum()) for k in range(4)]
    main = max(range(4), key=lambda k: time_by[k])
    share = time_by[main] / max(sim.totals.latency_s, 1e-30)
    return (
        f"nothing to plan: no long-lived tensor has a gap (see --long-lived) and no lever is "
        f"allowed; {bound[main]}-bound ops take {share:.0%} "
        f"of the time, weights {'resident' if sim.weights_resident else 'streamed'}: "
        f"{weights / total:.0%} of DRAM bytes"
    )


def plan_from_choices(
    problem: PlanProblem,
    graph: Graph,
    choices: tuple[Choice, ...],
    precision: PlanPrecision | None = None,
    **extra: object,
) -> Plan:
    """A complete plan for hand-picked choices (the default schedule around them), for
    experiments and tests: what `run --plan` applies and `simulate --plan` costs."""
    work = problem.work
    choices = tuple((Action(a), j) for a, j in choices)
    sim = simulate(work, problem.spec, problem.precision, _chained_pins(problem, graph, choices))
    fields: dict = {
        "objective": "dram",
        "solver": "hand",
        "status": "hand",
        "objective_value": None,
        "planner_value": None,
        "bound": None,
        "gap": None,
        **extra,
    }
    return Plan(
        model=graph.model,
        op_count=len(graph.ops),
        hardware=problem.spec.name,
        precision=precision
        or PlanPrecision(work.weight_precision, work.activation_precision, problem.precision),
        tensors=planned_tensors(problem, graph, choices),
        schedule=planned_schedule(sim.schedule, problem),
        **fields,
    )
