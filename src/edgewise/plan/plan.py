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
import math
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Annotated, Any

import numpy as np
from pydantic import ConfigDict, Field, TypeAdapter, ValidationError, with_config

from edgewise.analysis.lifetimes import WEIGHT_KINDS
from edgewise.errors import EdgewiseError
from edgewise.hardware.spec import HardwareSpec
from edgewise.ir.categories import OpCategory
from edgewise.ir.files import read_bytes, schema_problem, write_atomic
from edgewise.ir.graph import Graph, TensorKind
from edgewise.ir.vocab import PRECISION_BYTES, WEIGHT_OPTIONS, Action, AttentionMode
from edgewise.plan.problem import PlanProblem
from edgewise.plan.result import Choice
from edgewise.simulate.schedule import Recompute, Schedule
from edgewise.simulate.workload import OpWorkload, op_workload, with_knobs

SCHEMA, VERSION = "edgewise.plan", 2
ATTENTION_MODES = (AttentionMode.MATERIALIZED, AttentionMode.FUSED)
MAX_FILE_BYTES = 256 * 2**20
# A plan file is untrusted: every record is read strictly (no bool for a number, no NaN),
# with bounds; whether the indices fit the graph is `check_plan`'s job.
_STRICT = ConfigDict(strict=True, allow_inf_nan=False, extra="forbid")
Index = Annotated[int, Field(ge=-1, lt=2**53)]  # an op, storage or gap; -1 = none
Count = Annotated[int, Field(ge=0, lt=2**53)]
Bytes = Annotated[float, Field(ge=0, le=2**60)]
Text = Annotated[str, Field(max_length=4096)]


@with_config(_STRICT)
@dataclass(frozen=True, slots=True)
class PlanPrecision:
    weights: str  # the base weight precision (layers in `Plan.weights` override it)
    activations: str
    compute: str  # what the MAC array runs


@with_config(_STRICT)
@dataclass(frozen=True, slots=True)
class PlannedTensor:
    storage_id: Count
    name: Text  # producer scope
    nbytes: Count
    action: Text  # keep | spill | recompute
    gap_start: Count
    gap_end: Count
    recompute_at: Index = -1
    recompute_at_scope: Text = ""
    segment: tuple[Count, ...] = ()  # ops re-run (with those of recomputed sources)
    sources: tuple[Count, ...] = ()  # storages read by the recomputation
    gap: Index = -1  # index of the planned gap among the workload's gaps


@with_config(_STRICT)
@dataclass(frozen=True, slots=True)
class PlannedAttention:
    op: Count
    scope: Text
    mode: Text  # materialized | fused
    scores_bytes: Bytes  # held during the op when materialized
    reread_bytes: Bytes  # K and V re-read when fused


@with_config(_STRICT)
@dataclass(frozen=True, slots=True)
class PlannedSchedule:
    """The SRAM schedule of every other activation, as the planner chose it."""

    capacity_bytes: Count
    gap_count: Count  # the workload's gaps (checked on load)
    off_gaps: tuple[Count, ...]  # gaps (not planned ones) whose storage waits in DRAM
    tiled_ops: tuple[Count, ...]
    resident_ops: tuple[Count, ...] = ()  # ops whose weights stay in SRAM across calls
    resident_inputs: tuple[Count, ...] = ()  # input storages (KV cache) held across calls


@with_config(_STRICT)
@dataclass(frozen=True)
class Plan:
    model: Text
    op_count: Count  # the graph the plan is for has this many ops
    hardware: Text
    precision: PlanPrecision
    objective: Text
    solver: Text
    status: Text
    objective_value: float | None  # the simulator's figure for this plan
    planner_value: float | None  # the solver's own figure (equal for the MILP)
    bound: float | None
    gap: float | None
    tensors: tuple[PlannedTensor, ...]
    schedule: PlannedSchedule
    weights: dict[str, str] = field(default_factory=dict)  # layer scope -> weight precision
    attention: tuple[PlannedAttention, ...] = ()
    note: Text = ""  # e.g. why a baseline was returned instead of the solver's plan
    calls: Annotated[int, Field(ge=1, le=10**6)] = 1  # the phase's calls it was planned for
    resident: tuple[Text, ...] = ()  # layers whose weights stay in SRAM across the calls
    kv_precision: Text | None = None  # a decode step's KV cache (None: the activations')

    def summary(self) -> dict[str, Any]:
        """What the plan decides, counted: tensors by action, layers by weight precision,
        attention ops by mode (shown by `plan`, `simulate --plan` and `run --plan`)."""
        actions = Counter(t.action for t in self.tensors)
        return {
            "model": self.model,
            "hardware": self.hardware,
            "objective": self.objective,
            "tensors": {a: actions.get(a, 0) for a in ("keep", "spill", "recompute")},
            "weights": dict(sorted(Counter(self.weights.values()).items())),
            "attention": dict(sorted(Counter(a.mode for a in self.attention).items())),
            "tiled_ops": len(self.schedule.tiled_ops),
            "calls": self.calls,
            "resident_layers": len(self.resident),
            "resident_inputs": len(self.schedule.resident_inputs),
            "kv_precision": self.kv_precision,
        }

    def described(self) -> str:
        """`summary` in one line, e.g. "3 keep, 1 spill; weights: 12 layers int4; ..."."""
        s = self.summary()
        tensors = ", ".join(f"{n} {a}" for a, n in s["tensors"].items() if n) or "no tensors"
        weights = ", ".join(f"{n} layers {p}" for p, n in s["weights"].items())
        attention = ", ".join(f"{n} {m}" for m, n in s["attention"].items())
        return (
            f"{tensors}; weights: {weights or f'all {self.precision.weights}'}"
            + (f"; attention: {attention}" if attention else "")
            + f"; {s['tiled_ops']} ops tiled"
            + (
                f"; {len(self.resident)} layers' weights held on chip across {self.calls} calls"
                if self.resident
                else ""
            )
            + (
                f"; {len(self.schedule.resident_inputs)} KV cache inputs held on chip"
                if self.schedule.resident_inputs
                else ""
            )
            + (f"; KV cache {self.kv_precision}" if self.kv_precision else "")
        )

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
        held = None
        if self.schedule.resident_ops:
            held = np.zeros(work.n_ops, dtype=bool)
            held[list(self.schedule.resident_ops)] = True
        return Schedule(self.schedule.capacity_bytes, kept, tiled, tuple(rebuilds), held,
                        frozenset(self.schedule.resident_inputs))  # fmt: skip


@with_config(ConfigDict(strict=True, extra="allow"))
@dataclass(frozen=True)
class _Header:
    schema: str
    version: int


_PLAN_FILE = TypeAdapter(Plan)


def planned_schedule(schedule: Schedule, problem: PlanProblem) -> PlannedSchedule:
    planned = {t.gap for t in problem.tensors}
    return PlannedSchedule(
        capacity_bytes=schedule.capacity_bytes,
        gap_count=len(schedule.kept),
        off_gaps=tuple(int(g) for g in np.flatnonzero(~schedule.kept) if int(g) not in planned),
        resident_ops=tuple(int(i) for i in np.flatnonzero(schedule.resident_ops))
        if schedule.resident_ops is not None
        else (),
        resident_inputs=tuple(sorted(schedule.resident_inputs)),
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
    write_atomic(path, plan_json(plan))


def plan_json(plan: Plan) -> str:
    """The plan file: strict JSON (a figure that is not finite is written as null)."""
    from edgewise.ir.files import strict_json

    return strict_json(plan_to_dict(plan), indent=2)


def load_plan(path: Path, graph: Graph) -> Plan:
    raw = read_bytes(path, "plan file", MAX_FILE_BYTES)
    try:
        plan = parse_plan(raw)
        check_plan(plan, graph)
    except EdgewiseError as e:
        raise EdgewiseError(f"plan '{path}': {e}") from None
    return plan


def parse_plan(raw: bytes | str) -> Plan:
    """A plan file's record, strictly typed and bounded (not yet checked against a graph)."""
    try:
        header = TypeAdapter(_Header).validate_json(raw)
    except ValidationError as e:
        bad = next((x for x in e.errors() if x["type"] == "json_invalid"), None)
        raise EdgewiseError(
            f"is not valid JSON ({bad['msg']})"
            if bad
            else f"is not an edgewise plan (expected a JSON object with schema {SCHEMA} v{VERSION})"
        ) from None
    if header.schema != SCHEMA:
        raise EdgewiseError(f"is not an edgewise plan (schema {SCHEMA} v{VERSION})")
    if header.version != VERSION:
        raise EdgewiseError(
            f"is schema v{header.version}; this edgewise reads v{VERSION} (plans now carry "
            "their whole SRAM schedule): write it again with `edgewise plan MODEL ... -o FILE`"
        )
    import pydantic_core

    data = {k: v for k, v in pydantic_core.from_json(raw).items() if k not in ("schema", "version")}
    try:
        return _PLAN_FILE.validate_json(json.dumps(data))
    except ValidationError as e:
        raise EdgewiseError(f"does not follow the plan schema: {schema_problem(e)}") from None


def check_plan(plan: Plan, graph: Graph) -> None:
    """The plan must be for this graph: every op index inside it, every storage an
    activation, every layer and attention op one the graph has, every gap in order."""
    n = len(graph.ops)
    if plan.model != graph.model or plan.op_count != n:
        raise EdgewiseError(
            f"plan for another model: it is for {plan.model} ({plan.op_count} ops), not "
            f"{graph.model} ({n} ops): plan this model with `edgewise plan`"
        )
    activations = {t.storage_id for t in graph.tensors.values() if t.kind is TensorKind.ACTIVATION}
    storages = {t.storage_id for t in graph.tensors.values()}
    for i, t in enumerate(plan.tensors):
        where = f"tensors[{i}] ({t.name})"
        if t.storage_id not in activations:
            raise EdgewiseError(f"{where} moves storage {t.storage_id}: not an activation")
        if t.action not in tuple(Action):
            actions = ", ".join(Action)
            raise EdgewiseError(f"{where}: unknown action '{t.action}' (one of {actions})")
        if not t.gap_start < t.gap_end < n:
            raise EdgewiseError(
                f"{where}: gap {t.gap_start}..{t.gap_end} must run forward inside ops 0..{n - 1}"
            )
        if t.action == "recompute" and not (t.gap_start < t.recompute_at <= t.gap_end):
            raise EdgewiseError(f"{where} is recomputed at op {t.recompute_at}, outside its gap")
        if any(not 0 <= op < n for op in t.segment):
            raise EdgewiseError(f"{where} re-runs an op outside 0..{n - 1}")
        unknown = [u for u in t.sources if u not in storages]
        if unknown:
            raise EdgewiseError(f"{where} recomputes from storage {unknown[0]}: not in the graph")
    if plan.kv_precision is not None and plan.kv_precision not in PRECISION_BYTES:
        known = ", ".join(PRECISION_BYTES)
        raise EdgewiseError(f"kv_precision '{plan.kv_precision}' is not a precision ({known})")
    if plan.kv_precision is not None and not graph.meta.get("kv_inputs"):
        raise EdgewiseError("the plan sets a KV cache precision, but this graph has no KV cache")
    bad = sorted(p for p in plan.weights.values() if p not in WEIGHT_OPTIONS)
    if bad:
        raise EdgewiseError(
            f"weight precision must be one of {', '.join(WEIGHT_OPTIONS)} (got {bad})"
        )
    weighted = {  # as the workload counts weights: parameters and buffers
        op.scope
        for op in graph.ops
        if any(graph.tensors[i].kind in WEIGHT_KINDS for i in op.inputs)
    }
    missing = sorted(set(plan.weights) - weighted)
    if missing:
        raise EdgewiseError(f"weights: layer '{missing[0]}' has no weights in {graph.model}")
    for a in plan.attention:
        if a.mode not in ATTENTION_MODES:
            raise EdgewiseError(
                f"attention mode must be one of {', '.join(ATTENTION_MODES)} (got '{a.mode}')"
            )
        if not (0 <= a.op < n and graph.ops[a.op].category is OpCategory.ATTENTION):
            raise EdgewiseError(f"attention: op {a.op} is not an attention op of {graph.model}")
    if any(not 0 <= i < n for i in plan.schedule.tiled_ops):
        raise EdgewiseError("its schedule tiles an op the graph does not have")
    if any(not 0 <= i < n for i in plan.schedule.resident_ops):
        raise EdgewiseError("its schedule holds the weights of an op the graph does not have")
    inputs = {t.storage_id for t in graph.tensors_of_kind(TensorKind.INPUT)}
    if any(sid not in inputs for sid in plan.schedule.resident_inputs):
        raise EdgewiseError("its schedule holds a storage that is not an input of the graph")
    unheld = sorted(set(plan.resident) - weighted)
    if unheld:
        raise EdgewiseError(f"resident: layer '{unheld[0]}' has no weights in {graph.model}")
    gaps = plan.schedule.gap_count
    if any(not 0 <= g < gaps for g in (*plan.schedule.off_gaps, *(t.gap for t in plan.tensors))):
        raise EdgewiseError(f"its schedule names a gap outside the {gaps} it declares")
    for value in (plan.objective_value, plan.planner_value, plan.bound, plan.gap):
        if value is not None and not math.isfinite(value):
            raise EdgewiseError("its figures must be finite numbers or null")


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
        not 0 <= g < work.n_gaps for g in (*plan.schedule.off_gaps, *(t.gap for t in plan.tensors))
    ):
        raise EdgewiseError("the plan's schedule is for another graph: plan this model again")


def kv_precision_of(plan: Plan, given: str | None) -> str | None:
    """The KV cache precision to cost a plan at: the plan's own; a different
    --kv-precision is refused (the plan's schedule was sized for its cache)."""
    if given is not None and given != plan.kv_precision:
        made = plan.kv_precision or "as the activations"
        raise EdgewiseError(
            f"the plan was made with the KV cache {made}, not {given}: drop --kv-precision "
            "or plan again with it"
        )
    return plan.kv_precision


PIPELINE_SCHEMA = "edgewise.pipeline-plan"


def pipeline_plan_json(pipeline: str, plans: dict[str, Plan]) -> str:
    """A pipeline's plan file: one plan per phase, by phase name."""
    from edgewise.ir.files import strict_json

    phases = {name: plan_to_dict(plan) for name, plan in plans.items()}
    return strict_json(
        {"schema": PIPELINE_SCHEMA, "version": 1, "pipeline": pipeline, "phases": phases},
        indent=2,
    )


def load_pipeline_plan(path: Path, pipeline: str, graphs: dict[str, Graph]) -> dict[str, Plan]:
    """Each phase's plan, checked against that phase's graph (`graphs`: name -> graph)."""
    raw = read_bytes(path, "plan file", MAX_FILE_BYTES)
    try:
        data = json.loads(raw)
    except ValueError as e:
        raise EdgewiseError(f"plan '{path}' is not valid JSON ({e})") from None
    if not isinstance(data, dict) or data.get("schema") != PIPELINE_SCHEMA:
        raise EdgewiseError(
            f"plan '{path}' is not a pipeline plan (schema {PIPELINE_SCHEMA}): write one with "
            f"`edgewise plan {pipeline} ... -o FILE`"
        )
    phases = data.get("phases")
    if data.get("pipeline") != pipeline or not isinstance(phases, dict):
        raise EdgewiseError(
            f"plan '{path}' is for pipeline '{data.get('pipeline')}', not {pipeline}"
        )
    out = {}
    for name, graph in graphs.items():
        if name not in phases:
            raise EdgewiseError(f"plan '{path}' has no plan for phase '{name}'")
        try:
            plan = parse_plan(json.dumps(phases[name]))
            check_plan(plan, graph)
        except EdgewiseError as e:
            raise EdgewiseError(f"plan '{path}', phase '{name}': {e}") from None
        out[name] = plan
    return out


def planned_workload(graph, plan_file, spec, weights, activations, attention="captured",  # type: ignore[no-untyped-def]
                     kv=None):  # fmt: skip
    """(workload, schedule, plan) of `graph`, under the plan file when one is given (its
    precisions, KV cache and attention modes; checked against this graph and spec)."""
    from edgewise.hardware.spec import compute_precision

    if plan_file is None:
        return op_workload(graph, weights, activations, attention, kv), None, None
    loaded = load_plan(plan_file, graph)
    compute = compute_precision(weights, activations)
    try:
        kv = kv_precision_of(loaded, kv)
        work = op_workload(graph, weights, activations, attention, kv)
        check_plan_for(loaded, spec, PlanPrecision(weights, activations, compute), work)
    except EdgewiseError as e:
        raise EdgewiseError(f"plan '{plan_file}': {e}") from None
    work = loaded.workload(work, graph)
    return work, loaded.sram_schedule(work), loaded
