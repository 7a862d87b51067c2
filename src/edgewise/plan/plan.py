"""A plan: a whole SRAM schedule, what it does with each long-lived tensor, and how sure
the solver is.

Plans are JSON (schema `edgewise.plan` v2) and self-contained: every gap the schedule
keeps off chip, every tiled op, and per recomputation the ops it re-runs and the storages
it reads, so `edgewise simulate --plan` costs exactly what the planner costed and `edgewise
run --plan` applies the long-lived decisions to the real model. Version 1 files (written
before the schedule was part of the plan) are refused with the command that rewrites them.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgewise.errors import EdgewiseError
from edgewise.hardware.spec import HardwareSpec
from edgewise.ir.graph import Graph, TensorKind
from edgewise.ir.vocab import PRECISION_BYTES, WEIGHT_OPTIONS, Action, AttentionMode
from edgewise.plan.problem import PlanProblem
from edgewise.plan.result import Choice
from edgewise.simulate.schedule import Recompute, Schedule
from edgewise.simulate.workload import OpWorkload, with_knobs

SCHEMA, VERSION = "edgewise.plan", 2
ATTENTION_MODES = (AttentionMode.MATERIALIZED, AttentionMode.FUSED)


@dataclass(frozen=True, slots=True)
class PlanPrecision:
    weights: str  # the base weight precision (layers in `Plan.weights` override it)
    activations: str
    compute: str  # what the MAC array runs


@dataclass(frozen=True, slots=True)
class PlannedTensor:
    storage_id: int
    name: str  # producer scope
    nbytes: int
    action: str  # keep | spill | recompute
    gap_start: int
    gap_end: int
    recompute_at: int = -1
    recompute_at_scope: str = ""
    segment: tuple[int, ...] = ()  # ops re-run (with those of recomputed sources)
    sources: tuple[int, ...] = ()  # storages read by the recomputation
    gap: int = -1  # index of the planned gap among the workload's gaps


@dataclass(frozen=True, slots=True)
class PlannedAttention:
    op: int
    scope: str
    mode: str  # materialized | fused
    scores_bytes: float  # held during the op when materialized
    reread_bytes: float  # K and V re-read when fused


@dataclass(frozen=True, slots=True)
class PlannedSchedule:
    """The SRAM schedule of every other activation, as the planner chose it."""

    capacity_bytes: int
    gap_count: int  # the workload's gaps (checked on load)
    off_gaps: tuple[int, ...]  # gaps (not planned ones) whose storage waits in DRAM
    tiled_ops: tuple[int, ...]


@dataclass(frozen=True)
class Plan:
    model: str
    op_count: int  # the graph the plan is for has this many ops
    hardware: str
    precision: PlanPrecision
    objective: str
    solver: str
    status: str
    objective_value: float | None  # the simulator's figure for this plan
    planner_value: float | None  # the solver's own figure (equal for the MILP)
    bound: float | None
    gap: float | None
    tensors: tuple[PlannedTensor, ...]
    schedule: PlannedSchedule
    weights: dict[str, str] = field(default_factory=dict)  # layer scope -> weight precision
    attention: tuple[PlannedAttention, ...] = ()
    note: str = ""  # e.g. why a baseline was returned instead of the solver's plan

    def workload(self, work: OpWorkload, graph: Graph) -> OpWorkload:
        """`work` with this plan's weight precisions and attention modes applied."""
        if not self.weights and not self.attention:
            return work
        base = PRECISION_BYTES[work.weight_precision]
        scale = {
            op.index: PRECISION_BYTES[self.weights[op.scope]] / base
            for op in graph.ops
            if op.scope in self.weights and work.weight_bytes[op.index]
        }
        modes = {
            a.op: (a.scores_bytes, 0.0)
            if a.mode == AttentionMode.MATERIALIZED
            else (0.0, a.reread_bytes)
            for a in self.attention
        }
        return with_knobs(work, scale, modes)

    def sram_schedule(self, work: OpWorkload) -> Schedule:
        """The `Schedule` the simulator costs."""
        kept = np.ones(work.n_gaps, dtype=bool)
        kept[list(self.schedule.off_gaps)] = False
        rebuilds = []
        for t in self.tensors:
            kept[t.gap] = t.action == Action.KEEP
            if t.action == Action.RECOMPUTE:
                rebuilds.append(
                    Recompute(t.storage_id, t.gap, t.recompute_at, t.segment, t.sources)
                )
        tiled = np.zeros(work.n_ops, dtype=bool)
        tiled[list(self.schedule.tiled_ops)] = True
        return Schedule(self.schedule.capacity_bytes, kept, tiled, tuple(rebuilds))


def planned_schedule(schedule: Schedule, problem: PlanProblem) -> PlannedSchedule:
    planned = {t.gap for t in problem.tensors}
    return PlannedSchedule(
        capacity_bytes=schedule.capacity_bytes,
        gap_count=len(schedule.kept),
        off_gaps=tuple(int(g) for g in np.flatnonzero(~schedule.kept) if int(g) not in planned),
        tiled_ops=tuple(int(i) for i in np.flatnonzero(schedule.tiled)),
    )


def planned_tensors(
    problem: PlanProblem, graph: Graph, choices: tuple[Choice, ...]
) -> tuple[PlannedTensor, ...]:
    """Turn solver choices into self-contained decisions; a recomputation whose source is
    itself recomputed re-runs the source's ops too (the chain back to a kept, spilled or
    input tensor)."""
    by_id = {t.storage_id: (t, c) for t, c in zip(problem.tensors, choices, strict=True)}

    done: dict[int, tuple[frozenset[int], frozenset[int]]] = {}

    def closure(sid: int) -> tuple[frozenset[int], frozenset[int]]:
        if sid in done:  # chains share sources: each closure once
            return done[sid]
        t, _ = by_id[sid]
        ops, sources = set(t.segment), set(t.input_sources)
        for u in t.sources:
            if u in by_id and by_id[u][1][0] == Action.RECOMPUTE:
                more_ops, more_sources = closure(u)
                ops |= more_ops
                sources |= more_sources
            else:
                sources.add(u)
        done[sid] = frozenset(ops), frozenset(sources)
        return done[sid]

    out = []
    for t, (action, at) in zip(problem.tensors, choices, strict=True):
        ops, sources = (
            closure(t.storage_id) if action == Action.RECOMPUTE else (frozenset(), frozenset())
        )
        out.append(
            PlannedTensor(
                storage_id=t.storage_id,
                name=t.name,
                nbytes=t.nbytes,
                action=str(action),
                gap_start=t.gap_start,
                gap_end=t.gap_end,
                recompute_at=at,
                recompute_at_scope=graph.ops[at].scope if action == Action.RECOMPUTE else "",
                segment=tuple(sorted(ops)),
                sources=tuple(sorted(sources)),
                gap=t.gap,
            )
        )
    return tuple(out)


def uniform_choices(problem: PlanProblem, action: Action) -> tuple[Choice, ...]:
    """Every tensor the same way (recompute lands just before the tensor is needed)."""
    return tuple((action, t.gap_end if action == Action.RECOMPUTE else -1) for t in problem.tensors)


def plan_to_dict(plan: Plan) -> dict[str, Any]:
    return {"schema": SCHEMA, "version": VERSION, **asdict(plan)}


def save_plan(plan: Plan, path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(plan_to_dict(plan), indent=2))
    tmp.replace(path)


def load_plan(path: Path, graph: Graph) -> Plan:
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise EdgewiseError(f"plan file '{path}' does not exist") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise EdgewiseError(f"plan file '{path}' is not valid JSON ({e})") from None
    if not isinstance(data, dict) or data.get("schema") != SCHEMA:
        raise EdgewiseError(f"'{path}' is not an edgewise plan (schema {SCHEMA} v{VERSION})")
    if data.get("version") != VERSION:
        raise EdgewiseError(
            f"plan '{path}' is schema v{data.get('version')}; this edgewise reads v{VERSION} "
            f"(plans now carry their whole SRAM schedule): write it again with "
            f"`edgewise plan MODEL ... -o {path}`"
        )
    try:
        tensors = tuple(
            PlannedTensor(**{**t, "segment": tuple(t["segment"]), "sources": tuple(t["sources"])})
            for t in data["tensors"]
        )
        nested = ("tensors", "attention", "precision", "schedule")
        fields = {k: data[k] for k in Plan.__dataclass_fields__ if k not in nested and k in data}
        attention = tuple(PlannedAttention(**a) for a in data.get("attention", ()))
        sched = data["schedule"]
        schedule = PlannedSchedule(
            int(sched["capacity_bytes"]),
            int(sched["gap_count"]),
            tuple(int(g) for g in sched["off_gaps"]),
            tuple(int(i) for i in sched["tiled_ops"]),
        )
        plan = Plan(
            **fields,
            precision=PlanPrecision(**data["precision"]),
            tensors=tensors,
            schedule=schedule,
            attention=attention,
        )
    except (KeyError, TypeError, ValueError) as e:
        raise EdgewiseError(f"plan file '{path}' does not follow the schema: {e!r}") from None
    try:
        check_plan(plan, graph)
    except EdgewiseError as e:
        raise EdgewiseError(f"plan '{path}': {e}") from None
    return plan


def check_plan(plan: Plan, graph: Graph) -> None:
    """The plan must be for this graph and name storages, actions and formats it has."""
    if plan.model != graph.model or plan.op_count != len(graph.ops):
        raise EdgewiseError(
            f"plan for another model: it is for {plan.model} ({plan.op_count} ops), not "
            f"{graph.model} ({len(graph.ops)} ops): plan this model with `edgewise plan`"
        )
    activations = {t.storage_id for t in graph.tensors.values() if t.kind is TensorKind.ACTIVATION}
    for t in plan.tensors:
        if t.storage_id not in activations:
            raise EdgewiseError(f"it moves storage {t.storage_id} ({t.name}): not an activation")
        if t.action not in tuple(Action):
            raise EdgewiseError(
                f"unknown action '{t.action}' for {t.name}: one of {', '.join(Action)}"
            )
        if t.action == "recompute" and not (t.gap_start < t.recompute_at <= t.gap_end):
            raise EdgewiseError(f"{t.name} is recomputed at op {t.recompute_at}, outside its gap")
    bad = sorted(p for p in plan.weights.values() if p not in WEIGHT_OPTIONS)
    if bad:
        raise EdgewiseError(
            f"weight precision must be one of {', '.join(WEIGHT_OPTIONS)} (got {bad})"
        )
    modes = sorted({a.mode for a in plan.attention} - set(ATTENTION_MODES))
    if modes:
        raise EdgewiseError(
            f"attention mode must be one of {', '.join(ATTENTION_MODES)} (got {modes})"
        )
    n = len(graph.ops)
    if any(not 0 <= i < n for i in plan.schedule.tiled_ops):
        raise EdgewiseError("its schedule tiles an op the graph does not have")


def check_plan_for(
    plan: Plan, spec: HardwareSpec, precision: PlanPrecision, work: OpWorkload
) -> None:
    """A plan is costed only on the spec, precision and workload it was made for."""
    if plan.hardware != spec.name:
        raise EdgewiseError(
            f"the plan was made for hardware '{plan.hardware}', not '{spec.name}': "
            f"pass --hw {plan.hardware} or plan again"
        )
    if plan.precision != precision:
        raise EdgewiseError(
            f"the plan was made for weights {plan.precision.weights} and activations "
            f"{plan.precision.activations}, not {precision.weights} / {precision.activations}: "
            "pass the plan's --precision or plan again"
        )
    if plan.schedule.gap_count != work.n_gaps or any(
        not 0 <= g < work.n_gaps for g in plan.schedule.off_gaps
    ):
        raise EdgewiseError("the plan's schedule is for another graph: plan this model again")
