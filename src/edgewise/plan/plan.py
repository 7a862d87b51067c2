"""A plan: what to do with each long-lived tensor, why, and how sure the solver is.

Plans are JSON (schema `edgewise.plan` v1) and self-contained: a recomputation lists the
ops it re-runs and the storages it reads, so `edgewise simulate --plan` can cost and
check it without the planner. The simulator's schedule is the independent feasibility
check (SRAM never exceeded).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from edgewise.errors import EdgewiseError
from edgewise.ir.graph import Graph, TensorKind
from edgewise.plan.cost import Choice
from edgewise.plan.problem import PlanProblem
from edgewise.simulate.schedule import GapDecision
from edgewise.simulate.workload import PRECISION_BYTES, OpWorkload, with_knobs

SCHEMA, VERSION = "edgewise.plan", 1
ACTIONS = ("keep", "spill", "recompute")  # what a plan does with a long-lived tensor
WEIGHT_PRECISIONS = ("int8", "int4", "int2")  # what a layer's weights may be stored in


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


@dataclass(frozen=True, slots=True)
class PlannedAttention:
    op: int
    scope: str
    mode: str  # materialized | tiled
    scores_bytes: float  # held during the op when materialized
    reread_bytes: float  # K and V re-read when tiled


@dataclass(frozen=True)
class Plan:
    model: str
    op_count: int  # the graph the plan is for has this many ops
    hardware: str
    precision: str
    objective: str
    solver: str
    status: str
    objective_value: float | None
    bound: float | None
    gap: float | None
    tensors: tuple[PlannedTensor, ...]
    weights: dict[str, str] = field(default_factory=dict)  # layer scope -> weight precision
    attention: tuple[PlannedAttention, ...] = ()

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
            a.op: (a.scores_bytes, 0.0) if a.mode == "materialized" else (0.0, a.reread_bytes)
            for a in self.attention
        }
        return with_knobs(work, scale, modes)

    def decisions(self) -> tuple[GapDecision, ...]:
        return gap_decisions(self.tensors)


def gap_decisions(tensors: tuple[PlannedTensor, ...]) -> tuple[GapDecision, ...]:
    """The simulator's view of planned tensors."""
    return tuple(
        GapDecision(
            t.storage_id, t.action, t.gap_start, t.gap_end, t.recompute_at, t.segment, t.sources
        )
        for t in tensors
    )


def planned_tensors(
    problem: PlanProblem, graph: Graph, choices: tuple[Choice, ...]
) -> tuple[PlannedTensor, ...]:
    """Turn solver choices into self-contained decisions; a recomputation whose source is
    itself recomputed re-runs the source's ops too (the chain back to a kept, spilled or
    input tensor)."""
    by_id = {t.storage_id: (t, c) for t, c in zip(problem.tensors, choices, strict=True)}

    def closure(sid: int) -> tuple[set[int], set[int]]:
        t, _ = by_id[sid]
        ops, sources = set(t.segment), set(t.input_sources)
        for u in t.sources:
            if u in by_id and by_id[u][1][0] == "recompute":
                more_ops, more_sources = closure(u)
                ops |= more_ops
                sources |= more_sources
            else:
                sources.add(u)
        return ops, sources

    out = []
    for t, (action, at) in zip(problem.tensors, choices, strict=True):
        ops, sources = closure(t.storage_id) if action == "recompute" else (set(), set())
        out.append(
            PlannedTensor(
                storage_id=t.storage_id,
                name=t.name,
                nbytes=t.nbytes,
                action=action,
                gap_start=t.gap_start,
                gap_end=t.gap_end,
                recompute_at=at,
                recompute_at_scope=graph.ops[at].scope if action == "recompute" else "",
                segment=tuple(sorted(ops)),
                sources=tuple(sorted(sources)),
            )
        )
    return tuple(out)


def uniform_choices(problem: PlanProblem, action: str) -> tuple[Choice, ...]:
    """Every tensor the same way (recompute lands just before the tensor is needed)."""
    return tuple((action, t.gap_end if action == "recompute" else -1) for t in problem.tensors)


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
    if not isinstance(data, dict) or data.get("schema") != SCHEMA or data.get("version") != VERSION:
        raise EdgewiseError(f"'{path}' is not an edgewise plan (schema {SCHEMA} v{VERSION})")
    try:
        tensors = tuple(
            PlannedTensor(**{**t, "segment": tuple(t["segment"]), "sources": tuple(t["sources"])})
            for t in data["tensors"]
        )
        fields = {
            k: data[k] for k in Plan.__dataclass_fields__ if k not in ("tensors", "attention")
        }
        attention = tuple(PlannedAttention(**a) for a in data.get("attention", ()))
        plan = Plan(**fields, tensors=tensors, attention=attention)
    except (KeyError, TypeError) as e:
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
        if t.action not in ACTIONS:
            raise EdgewiseError(
                f"unknown action '{t.action}' for {t.name}: one of {', '.join(ACTIONS)}"
            )
        if t.action == "recompute" and not (t.gap_start < t.recompute_at <= t.gap_end):
            raise EdgewiseError(f"{t.name} is recomputed at op {t.recompute_at}, outside its gap")
    bad = sorted(p for p in plan.weights.values() if p not in WEIGHT_PRECISIONS)
    if bad:
        raise EdgewiseError(
            f"weight precision must be one of {', '.join(WEIGHT_PRECISIONS)} (got {bad})"
        )
