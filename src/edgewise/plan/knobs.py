"""The planner's other levers: per-layer weight precision and per-op attention tiling.

Precision: each layer with weights may store them at a narrower integer precision
(weight-only quantization: w4a8 runs int8 MACs, so only weight bytes shrink). What a
layer may use is bounded by floors (`--floor 'up_blocks.*=int8'`) and, with a
sensitivity file, by an accuracy budget: the chosen options' output errors must sum to
at most the budget. Sensitivity file (JSON; `edgewise sensitivity` writes it):
    {"metric": "...", "layers": {"<module scope>": {"int8": 0.001, "int4": 0.02, ...}}}
A layer absent from the file keeps its base precision when a budget is set.

Attention: each attention op either materializes its scores (B x heads x Nq x Nk, and
their softmax, held in SRAM, or streamed through DRAM when the op is tiled) or runs fused
FlashAttention-style tiles (no scores, but K and V re-read once per query tile of Br rows,
Br from the SRAM budget as in `analysis.memory.flash_tile`).
"""

from __future__ import annotations

import fnmatch
from dataclasses import replace
from math import ceil, isfinite
from pathlib import Path
from typing import Annotated, Literal, NotRequired

import numpy as np
from pydantic import ConfigDict, Field, TypeAdapter, ValidationError, with_config
from typing_extensions import TypedDict

from edgewise.analysis.memory import flash_tile, scores_bytes
from edgewise.errors import EdgewiseError
from edgewise.ir.categories import OpCategory
from edgewise.ir.files import read_bytes, schema_problem
from edgewise.ir.graph import Graph, TensorKind
from edgewise.ir.vocab import PRECISION_BYTES, WEIGHT_OPTIONS
from edgewise.plan.problem import AttentionOp, PlanProblem, WeightLayer
from edgewise.plan.result import Knobs
from edgewise.simulate.workload import OpWorkload, with_knobs

MAX_SENSITIVITY_BYTES = 64 * 2**20
_OPTIONS = tuple(str(p) for p in WEIGHT_OPTIONS)
Error = Annotated[float, Field(ge=0, le=1e30)]


@with_config(ConfigDict(strict=True, allow_inf_nan=False, extra="allow"))
class _SensitivityFile(TypedDict):
    metric: NotRequired[Annotated[str, Field(max_length=4096)]]
    layers: dict[Annotated[str, Field(max_length=4096)], dict[Literal[_OPTIONS], Error]]  # type: ignore[valid-type]


_SENSITIVITY = TypeAdapter(_SensitivityFile)


def load_sensitivity(path: Path) -> dict[str, dict[str, float]]:
    """Per layer, the output error of each weight precision: finite and at least 0 (a
    negative error would buy quantization, a NaN would make the budget meaningless)."""
    raw = read_bytes(path, "sensitivity file", MAX_SENSITIVITY_BYTES)
    try:
        data = _SENSITIVITY.validate_json(raw)
    except ValidationError as e:
        bad = next((x for x in e.errors() if x["type"] == "json_invalid"), None)
        shape = '{"layers": {scope: {precision: error ≥ 0}}}'
        problem = f"is not valid JSON ({bad['msg']})" if bad else schema_problem(e)
        raise EdgewiseError(f"sensitivity file '{path}' must be JSON {shape}: {problem}") from None
    return {k: {str(p): e for p, e in v.items()} for k, v in data["layers"].items()}


def parse_floors(floors: list[str]) -> list[tuple[str, str]]:
    out = []
    for text in floors:
        pattern, _, precision = text.partition("=")
        if not pattern or precision not in PRECISION_BYTES:
            known = ", ".join(PRECISION_BYTES)
            raise EdgewiseError(
                f"--floor expects GLOB=PRECISION, PRECISION one of {known} (got '{text}')"
            )
        out.append((pattern, precision))
    return out


def with_precision(
    problem: PlanProblem,
    graph: Graph,
    work: OpWorkload,
    floors: list[tuple[str, str]] = (),  # type: ignore[assignment]
    sensitivity: dict[str, dict[str, float]] | None = None,
    budget: float | None = None,
) -> PlanProblem:
    """Add one weight-precision decision per layer that reads weights."""
    base = work.weight_precision
    base_bytes = PRECISION_BYTES[base]
    options = [base, *(p for p in WEIGHT_OPTIONS if PRECISION_BYTES[p] < base_bytes)]
    if (budget is None) != (sensitivity is None):
        raise EdgewiseError("--sensitivity FILE and --accuracy-budget X go together")
    if budget is not None and not (isfinite(budget) and 0 <= budget <= 1e30):
        raise EdgewiseError(f"--accuracy-budget must be a number from 0 to 1e30 (got {budget})")
    layers = []
    for name, ops in _ops_by_layer(graph, work).items():
        floor = min(
            (PRECISION_BYTES[p] for g, p in floors if fnmatch.fnmatch(name, g)), default=None
        )
        allowed = [p for p in options if floor is None or PRECISION_BYTES[p] >= floor or p == base]
        errors = []
        if sensitivity is not None and budget is not None:
            known = sensitivity.get(name, {})
            # a zero budget takes only what was measured lossless: no solver tolerance
            # may spend what there is not
            allowed = [p for p in allowed if p == base or (p in known and (budget or not known[p]))]
            errors = [0.0 if p == base else known[p] for p in allowed]
        else:
            errors = [0.0] * len(allowed)
        layers.append(
            WeightLayer(
                name,
                tuple(ops),
                tuple(int(work.weight_bytes[i]) for i in ops),
                tuple(allowed),
                tuple(errors),
            )
        )
    ratio = {p: PRECISION_BYTES[p] / base_bytes for p in options}
    return replace(problem, layers=tuple(layers), bits_ratio=ratio, accuracy_budget=budget)


def _ops_by_layer(graph: Graph, work: OpWorkload) -> dict[str, list[int]]:
    """Module scope -> the ops in it that read weights, in order of first execution."""
    out: dict[str, list[int]] = {}
    for op in graph.ops:
        if work.weight_bytes[op.index] > 0:
            out.setdefault(op.scope, []).append(op.index)
    return out


def with_residency(problem: PlanProblem, graph: Graph, work: OpWorkload) -> PlanProblem:
    """Add one keep-or-stream decision per layer with weights: kept, its weights are loaded
    once (the phase's first call) and held in SRAM at every op of every call; streamed,
    they are read from DRAM at every call. Only where it can pay: a phase called more than
    once, on a spec that streams its weights (a spec that keeps them, `weights_resident`,
    decides for itself). Layers keep their precision decisions when those are allowed. A
    decode step's KV cache inputs (`capture.llm`) may be held across its calls too."""
    if problem.calls < 2 or problem.streamed_share < 1 or not problem.spec.dram_bytes:
        return problem
    named = set(graph.meta.get("kv_inputs") or ())  # a decode step's KV cache, by input name
    held = tuple(sorted({t.storage_id for t in graph.tensors_of_kind(TensorKind.INPUT)
                         if t.name in named and t.storage_id in work.storage}))  # fmt: skip
    if problem.layers:
        return replace(problem, residency=True, held_inputs=held)
    base = work.weight_precision
    layers = tuple(
        WeightLayer(
            name, tuple(ops), tuple(int(work.weight_bytes[i]) for i in ops), (base,), (0.0,)
        )
        for name, ops in _ops_by_layer(graph, work).items()
    )
    return replace(problem, layers=layers, bits_ratio={base: 1.0}, residency=True,
                   held_inputs=held)  # fmt: skip


def with_tiling(problem: PlanProblem, graph: Graph, work: OpWorkload) -> PlanProblem:
    """Add one materialize-or-fuse decision per attention op."""
    a_bytes = PRECISION_BYTES[work.activation_precision]
    ops = []
    for op in graph.ops:
        if op.category is not OpCategory.ATTENTION:
            continue
        q, k, v = (graph.tensors[t] for t in op.inputs[:3])
        nq, d = q.shape[-2:]
        kv = (k.numel + v.numel) * a_bytes
        br, _bc = flash_tile(problem.capacity_bytes, d, a_bytes)
        ops.append(
            AttentionOp(
                op.index,
                scores_bytes(q.shape, k.shape[-2], a_bytes),
                int((ceil(nq / br) - 1) * kv),
            )
        )
    return replace(problem, attention=tuple(ops))


def default_knobs(problem: PlanProblem) -> Knobs:
    """The levers untouched: every layer at its base precision, every attention fused, no
    weights held across calls."""
    return Knobs(
        tuple(layer.options[0] for layer in problem.layers),
        (True,) * len(problem.attention),
        (False,) * len(problem.layers),
    )


def resident_ops(problem: PlanProblem, knobs: Knobs) -> np.ndarray | None:
    """Per op, whether a layer the knobs keep on chip owns it (None: no layer is kept)."""
    if not any(knobs.resident):
        return None
    mask = np.zeros(problem.work.n_ops, dtype=bool)
    for layer, kept in zip(problem.layers, knobs.resident, strict=True):
        if kept:
            mask[list(layer.ops)] = True
    return mask


def knob_workload(problem: PlanProblem, knobs: Knobs) -> OpWorkload:
    """The problem's workload with `knobs` applied (what the simulator costs)."""
    scale: dict[int, float] = {}
    for layer, option in zip(problem.layers, knobs.weights, strict=True):
        if option != layer.options[0]:
            for op in layer.ops:
                scale[op] = problem.bits_ratio[option]  # type: ignore[index]
    modes = {
        a.op: (0.0, float(a.reread_bytes)) if fused else (float(a.scores_bytes), 0.0)
        for a, fused in zip(problem.attention, knobs.fused, strict=True)
    }
    return with_knobs(problem.work, scale, modes)
