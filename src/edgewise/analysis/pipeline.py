"""Counts and memory of a pipeline: per phase (per call and over its calls) and per run.

Counts add: a run's MACs are each phase's MACs per call times its calls. Parameters are
each phase's distinct parameters once (a model called 50 times has its weights once).
Memory is a peak, not a sum. Two figures, because runtimes differ: with every phase's
model loaded for the whole run (as a diffusers pipeline keeps them), the peak is all the
weights plus the largest activation peak of any phase; loading one phase's model at a
time (offloading), it is the largest of (the phase's weights + its activation peak).
"""

from __future__ import annotations

from dataclasses import dataclass

from edgewise.analysis.memory import DTYPES, memory_timeline
from edgewise.analysis.profile import ProfileRow, profile
from edgewise.ir.graph import DTYPE_BYTES, Graph, TensorKind
from edgewise.ir.pipeline import Pipeline


@dataclass(frozen=True)
class PhaseCounts:
    name: str
    model: str
    calls: int
    per_call: ProfileRow  # totals of one call (its parameters, MACs, vector ops, FLOPs)

    @property
    def macs(self) -> int:
        return self.per_call.macs * self.calls

    @property
    def flops(self) -> int:
        return self.per_call.flops * self.calls


@dataclass(frozen=True)
class PipelineCounts:
    pipeline: str
    unit: str
    convention: str
    phases: tuple[PhaseCounts, ...]

    @property
    def params(self) -> int:
        return sum(p.per_call.params for p in self.phases)

    @property
    def macs(self) -> int:
        return sum(p.macs for p in self.phases)

    @property
    def flops(self) -> int:
        return sum(p.flops for p in self.phases)


def count_pipeline(pipeline: Pipeline, convention_name: str = "default") -> PipelineCounts:
    phases = tuple(
        PhaseCounts(p.name, p.graph.model, p.calls,
                    profile(p.graph, "layer", convention_name=convention_name).totals)
        for p in pipeline.phases
    )  # fmt: skip
    return PipelineCounts(pipeline.name, pipeline.unit, convention_name, phases)


def weight_bytes(graph: Graph, dtype: str | None = None) -> int:
    """Bytes of the distinct parameters and buffers (at `dtype` when given)."""
    seen: dict[int, int] = {}
    scale = DTYPE_BYTES[DTYPES[dtype]] if dtype else None
    for t in graph.tensors_of_kind(TensorKind.PARAMETER, TensorKind.BUFFER):
        size = round(t.numel * scale) if scale is not None else t.storage_bytes
        seen[t.storage_id] = max(seen.get(t.storage_id, 0), size)
    return sum(seen.values())


@dataclass(frozen=True)
class PhaseMemory:
    name: str
    model: str
    calls: int
    weight_bytes: int
    peak_activation_bytes: int  # the phase's activation peak (`memory_timeline`)
    peak_scope: str  # where it happens


@dataclass(frozen=True)
class PipelineMemory:
    pipeline: str
    unit: str
    dtype: str | None
    phases: tuple[PhaseMemory, ...]

    @property
    def all_loaded_peak_bytes(self) -> int:
        """Every phase's weights loaded for the whole run + the largest activation peak."""
        weights = sum(p.weight_bytes for p in self.phases)
        return weights + max(p.peak_activation_bytes for p in self.phases)

    @property
    def one_loaded_peak_bytes(self) -> int:
        """One phase's model loaded at a time: the largest weights + activation peak."""
        return max(p.weight_bytes + p.peak_activation_bytes for p in self.phases)


def pipeline_memory(
    pipeline: Pipeline, dtype: str | None = None, **options: object
) -> PipelineMemory:
    """Each phase's `memory_timeline` (with `options`), and the run's two peaks."""
    phases = []
    for p in pipeline.phases:
        tl = memory_timeline(p.graph, dtype=dtype, **options)  # type: ignore[arg-type]
        scope = tl.scopes[tl.peak_op] if tl.scopes else ""
        phases.append(PhaseMemory(p.name, p.graph.model, p.calls, weight_bytes(p.graph, dtype),
                                  tl.peak_bytes, scope))  # fmt: skip
    return PipelineMemory(pipeline.name, pipeline.unit, dtype, tuple(phases))
