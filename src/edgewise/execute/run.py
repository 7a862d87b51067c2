"""Apply a plan to the real model and measure what it saves.

The pipeline (`run_plan`), in order:
1. check the plan is for this graph (model name and op count);
2. bind the graph to the real module's weights and the example inputs, and schedule
   two interpreter runs: the baseline (last-use releases, no plan) and the plan's
   (spills, recomputations, attention modes; see `interpreter`);
3. quantize: weights of the plan's low-precision layers are fake-quantized per output
   channel, once; when the plan's activations are an integer format, those layers'
   activation inputs are fake-quantized per tensor with scales calibrated on one run
   over the run's own inputs (max |x| per layer); a plan's KV cache precision fake-quantizes
   a decode step's cache inputs, symmetric per token and head (one scale per head_dim
   vector, as KV-cache quantizers such as KIVI's value path and llama.cpp's q8_0/q4_0 cache
   group them);
4. measure three forwards, each once under the allocation profiler (peak) and then
   `repeat` times timed (median): the eager model, the baseline interpreter, the planned
   interpreter;
5. compare outputs with the eager model's (bit-exact, max |error|, SQNR, cosine), and
   set every measured peak beside edgewise's prediction for it.

Predictions: the eager model's is the `eager` memory timeline. The interpreter's is the
`last-use` timeline with the plan applied (`predicted_live`): a spilled or recomputed
storage is not live inside its gap; a recomputation's sources are live until it runs;
while it runs, its own intermediates add to what is live just before its op; a rewritten
attention op holds its scores and their softmax (materialized) or one tile's output
(tiled) instead of its extra outputs. Quantization temporaries are not predicted.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from math import prod
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils._pytree import tree_flatten

from edgewise.analysis.lifetimes import storage_lifetimes
from edgewise.analysis.memory import flash_tile, memory_timeline, scores_bytes
from edgewise.errors import EdgewiseError
from edgewise.execute.interpreter import (
    TILE_SRAM_BYTES,
    InputHook,
    Lookup,
    Program,
    Schedule,
    bind,
    interpret,
    program,
    schedule,
)
from edgewise.execute.measure import check_fits, forward, materialize, peak_of, require_device
from edgewise.execute.quantize import (
    BITS,
    activation_scale,
    cosine,
    fake_quantize_activation,
    fake_quantize_weight,
    max_abs_error,
    sqnr_db,
)
from edgewise.ir.graph import Graph, Op, TensorKind
from edgewise.plan.plan import Plan, check_plan


@dataclass(frozen=True, slots=True)
class RunFigures:
    """One way of running the forward, measured and predicted."""

    peak_bytes: int  # measured peak of tensors live between ops (kernel scratch excluded)
    predicted_peak_bytes: int  # edgewise's prediction for this run
    latency_s: float  # median wall time of the timed runs
    run_s: tuple[float, ...]  # every timed run


@dataclass(frozen=True, slots=True)
class Fidelity:
    """Outputs against the eager model's (all outputs together)."""

    bit_exact: bool
    max_abs_error: float
    sqnr_db: float  # inf when identical
    cosine: float


@dataclass(frozen=True)
class PlanRun:
    model: str
    device: str
    method: str  # how peaks were measured
    repeat: int  # timed runs of each forward
    eager: RunFigures  # the unmodified model, as PyTorch runs it
    baseline: RunFigures  # the interpreter without a plan (last-use lifetimes)
    planned: RunFigures  # the interpreter with the plan applied
    pool_peak_bytes: int  # most bytes the plan's spills held outside the allocator
    replay: Fidelity  # the baseline interpreter against eager: bit-exact when faithful
    fidelity: Fidelity  # the planned run against eager
    actions: dict[str, int]  # keep | spill | recompute -> tensors
    recomputed_ops: int  # ops re-run per forward
    quantized_layers: int  # layers whose weights were fake-quantized
    activation_bits: int | None  # their activations' format, None when left in float
    attention: dict[str, int]  # materialized | fused -> ops
    int8_kernel_ops: int = 0  # matmuls run on PyTorch's int8-weight kernel (--int8-kernels)
    kv_bits: int | None = None  # the KV cache inputs' fake-quantized width (None: as given)

    @property
    def saved_bytes(self) -> int:
        return self.baseline.peak_bytes - self.planned.peak_bytes

    @property
    def predicted_saved_bytes(self) -> int:
        return self.baseline.predicted_peak_bytes - self.planned.predicted_peak_bytes


def run_plan(
    graph: Graph,
    model: nn.Module,
    args: tuple[Any, ...],
    kwargs: Mapping[str, Any],
    plan: Plan | None = None,
    device: str = "cpu",
    repeat: int = 1,
    int8_kernels: bool = False,
) -> PlanRun:
    """Run the model eagerly, through the interpreter, and with the plan; see above."""
    if repeat < 1:
        raise EdgewiseError(f"--repeat must be at least 1 (got {repeat})")
    require_device(device)
    if plan is not None:
        check_plan(plan, graph)
    prog = program(graph, device)
    feeds = bind(graph, model, args, kwargs, device)
    base_schedule = schedule(graph)
    plan_schedule = schedule(graph, plan)
    planned_feeds, hook, bits, layers = _quantization(graph, plan, prog, feeds, plan_schedule)
    kv_bits = BITS.get(plan.kv_precision or "") if plan is not None else None
    if kv_bits:
        planned_feeds |= quantized_cache(graph, planned_feeds, kv_bits)
    int8 = int8_weights(graph, plan, feeds) if int8_kernels else {}

    def eager() -> tuple[torch.Tensor, ...]:
        result = forward(model, args, kwargs)
        return tuple(t for t in tree_flatten(result)[0] if isinstance(t, torch.Tensor))

    def baseline() -> tuple[torch.Tensor, ...]:
        return interpret(prog, feeds, base_schedule).outputs

    pool_peak = 0

    def planned() -> tuple[torch.Tensor, ...]:
        nonlocal pool_peak
        ran = interpret(prog, planned_feeds, plan_schedule, hook, int8)
        pool_peak = ran.pool_peak_bytes
        return ran.outputs

    reference, eager_peak = peak_of(eager, device)
    base_out, base_peak = peak_of(baseline, device)
    plan_out, plan_peak = peak_of(planned, device)
    predicted = (
        memory_timeline(graph, lifetimes="eager").peak_bytes,
        int(predicted_live(graph, base_schedule).max(initial=0)),
        int(predicted_live(graph, plan_schedule).max(initial=0)),
    )
    figures = [
        RunFigures(peak.peak_bytes, pred, *_timed(fn, repeat, device))
        for fn, peak, pred in zip(
            (eager, baseline, planned), (eager_peak, base_peak, plan_peak), predicted, strict=True
        )
    ]
    tensors = plan.tensors if plan is not None else ()
    actions = {a: sum(t.action == a for t in tensors) for a in ("keep", "spill", "recompute")}
    modes = list(plan_schedule.attention.values())
    return PlanRun(
        model=graph.model,
        device=device,
        method=eager_peak.method,
        repeat=repeat,
        eager=figures[0],
        baseline=figures[1],
        planned=figures[2],
        pool_peak_bytes=pool_peak,
        replay=fidelity(reference, base_out),
        fidelity=fidelity(reference, plan_out),
        actions=actions,
        recomputed_ops=sum(len(m.replay.ops) for m in plan_schedule.moves if m.replay),
        quantized_layers=layers,
        activation_bits=bits,
        attention={m: modes.count(m) for m in dict.fromkeys(modes)},
        int8_kernel_ops=len(int8),
        kv_bits=kv_bits,
    )


def check_run(
    device: str, repeat: int, weights: Path | None, request: dict[str, Any] | None
) -> None:
    """`run`'s options, before anything is captured or built."""
    require_device(device)
    if repeat < 1:
        raise EdgewiseError(f"--repeat must be at least 1 (got {repeat})")
    if weights is not None and not weights.is_file():
        raise EdgewiseError(f"--weights: '{weights}' does not exist")
    if request is not None and weights is not None:
        from edgewise.capture.llm import llm_entry

        if llm_entry(request["name"]).vision:
            raise EdgewiseError(
                "--weights: a vision-language model's checkpoint names its parts its own way "
                "(vision_tower, language_model, ...); real weights load into text models "
                "only, run this one with random weights"
            )


def real_model(
    graph: Graph,
    built: tuple[nn.Module, tuple[Any, ...], dict[str, Any]],
    plan: Plan | None,
    device: str,
    weights: Path | None = None,
) -> tuple[nn.Module, tuple[Any, ...], dict[str, Any]]:
    """The meta model `built` (model, args, kwargs) captured as `graph`, made real for
    `run_plan`: refused when this machine cannot hold it, then filled with `weights` (or
    random values). The one way the CLI's `run` and the API's prepare (their options
    checked first by `check_run`)."""
    eager = memory_timeline(graph, lifetimes="eager")
    copies = 2 if plan is not None and plan.weights else 1  # fake-quantized weights beside
    check_fits(int(copies * graph.parameter_count * 4 + eager.inputs.max(initial=0)
                   + 1.5 * eager.peak_bytes), device)  # fmt: skip
    model, args, kwargs = built
    if weights is not None:  # before materializing: a meta model is filled, not randomized
        from edgewise.execute.weights import load_weights

        model = load_weights(model, weights)
    return materialize(model, args, kwargs, dtype="fp32", device=device)


# --------------------------------------------------------------------------- prediction


def predicted_live(graph: Graph, plan_schedule: Schedule) -> np.ndarray:
    """Bytes the interpreter holds at each op under a schedule; see the module docstring."""
    n = len(graph.ops)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    gaps = [(m.storage_id, m.start, m.resume) for m in plan_schedule.moves]
    live = memory_timeline(graph, gaps=gaps).live.astype(np.int64)
    size = {t.storage_id: t.storage_bytes for t in graph.tensors.values()}
    first: dict[int, int] = {}
    for t in graph.tensors.values():
        if t.producer is not None:
            first[t.storage_id] = min(first.get(t.storage_id, n), t.producer)

    # sources held until their recomputation
    natural = {sid: life.last_use for sid, life in storage_lifetimes(graph).items()}
    for sid, end in _storage_last(graph, plan_schedule.last_use).items():
        if end > natural[sid]:
            live[natural[sid] + 1 : min(end, n - 1) + 1] += size[sid]

    # a recomputation's own intermediates, on top of what is live just before its op
    for at in sorted({m.resume for m in plan_schedule.moves if m.replay is not None}):
        new = sum(size[graph.tensors[o].storage_id] for o in graph.ops[at].outputs
                  if first.get(graph.tensors[o].storage_id) == at)  # fmt: skip
        replays = [m for m in plan_schedule.moves if m.resume == at and m.replay is not None]
        pending = sum(size[m.storage_id] for m in replays)
        before = int(live[at]) - new
        for m in replays:
            assert m.replay is not None
            local = _replay_peak(graph, m.replay.ops, m.replay.release_after, size)
            live[at] = max(live[at], before - pending + local)
            pending -= size[m.storage_id]

    # attention run another way: scores or a tile instead of the kernel's extra outputs
    for i, mode in plan_schedule.attention.items():
        op = graph.ops[i]
        extra = sum(size[graph.tensors[o].storage_id] for o in op.outputs[1:]
                    if first.get(graph.tensors[o].storage_id) == i)  # fmt: skip
        live[i] += _attention_bytes(graph, op, mode) - extra
    return live


def _storage_last(graph: Graph, last: Mapping[int, int]) -> dict[int, int]:
    out: dict[int, int] = {}
    for tid, op in last.items():
        sid = graph.tensors[tid].storage_id
        out[sid] = max(out.get(sid, -1), min(op, len(graph.ops) - 1))
    return out


def _replay_peak(
    graph: Graph,
    ops: Sequence[int],
    release_after: Sequence[Sequence[int]],
    size: Mapping[int, int],
) -> int:
    """Peak bytes of the storages a replay allocates (its target's included)."""
    holders: dict[int, int] = {}  # storage -> live tensor ids of the replay in it
    live = peak = 0
    for i, release in zip(ops, release_after, strict=True):
        for o in graph.ops[i].outputs:
            sid = graph.tensors[o].storage_id
            if sid in holders:
                holders[sid] += 1
            elif _is_new(graph, o, i):  # a view of a source or weight allocates nothing
                holders[sid] = 1
                live += size[sid]
        peak = max(peak, live)
        for tid in release:
            sid = graph.tensors[tid].storage_id
            if sid in holders:
                holders[sid] -= 1
                if holders[sid] == 0:
                    del holders[sid]
                    live -= size[sid]
    return peak


def _is_new(graph: Graph, tid: int, op: int) -> bool:
    """Whether tensor `tid` is in a storage op `op` allocated (not a view of an input)."""
    sid = graph.tensors[tid].storage_id
    return all(graph.tensors[t].storage_id != sid for t in graph.ops[op].inputs)


def _attention_bytes(graph: Graph, op: Op, mode: str) -> int:
    q, k, v = (graph.tensors[t] for t in op.inputs[:3])
    *lead, rows, head_dim = q.shape
    itemsize = q.nbytes // max(q.numel, 1)
    if mode == "materialized":  # the scores and their softmax
        return scores_bytes(q.shape, k.shape[-2], itemsize)
    tile = flash_tile(TILE_SRAM_BYTES, head_dim, itemsize)[0]
    return prod(lead) * min(tile, rows) * v.shape[-1] * itemsize  # one tile's output


# --------------------------------------------------------------------------- quantization


def int8_weights(
    graph: Graph, plan: Plan | None, feeds: Mapping[int, torch.Tensor]
) -> dict[int, tuple[torch.Tensor, torch.Tensor]]:
    """Real int8 kernels where PyTorch has them: every mm/addmm of a layer the plan puts at
    int8 whose right operand is W^T of a 2-D weight W gets W quantized per row (symmetric,
    scale = max |row| / 127) for aten._weight_int8pack_mm. Other ops keep fake quantization."""
    if plan is None:
        return {}
    out: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}
    param_of = {
        t.storage_id: t.id for t in graph.tensors.values() if t.kind is TensorKind.PARAMETER
    }
    for op in graph.ops:
        if plan.weights.get(op.scope) != "int8" or op.name not in ("mm", "addmm"):
            continue
        if op.kwargs.get("beta", 1) != 1 or op.kwargs.get("alpha", 1) != 1:
            continue
        right = graph.tensors[op.inputs[-1]]
        weight_id = param_of.get(right.storage_id)
        if weight_id is None or len(right.shape) != 2:
            continue
        weight = feeds[weight_id]
        if (
            weight.ndim != 2
            or tuple(weight.shape[::-1]) != right.shape
            or not weight.is_floating_point()
        ):
            continue
        with torch.no_grad():
            scales = weight.abs().amax(dim=1).clamp(min=1e-12).float() / 127
            quantized = torch.clamp(torch.round(weight / scales[:, None]), -127, 127).to(torch.int8)
        out[op.index] = (quantized.contiguous(), scales)
    return out


def _quantization(
    graph: Graph,
    plan: Plan | None,
    prog: Program,
    feeds: Mapping[int, torch.Tensor],
    plan_schedule: Schedule,
) -> tuple[dict[int, torch.Tensor], InputHook | None, int | None, int]:
    """(feeds with fake-quantized weights, activation hook, activation bits, layers)."""
    if plan is None or not plan.weights:
        return dict(feeds), None, None, 0
    weight_storages = {
        t.storage_id: t.id for t in graph.tensors.values() if t.kind is TensorKind.PARAMETER
    }
    frozen = weight_storages.keys() | {
        t.storage_id for t in graph.tensors.values() if t.kind is TensorKind.BUFFER
    }
    bits_of: dict[int, int] = {}  # parameter id -> bits
    act_inputs: dict[int, tuple[int, ...]] = {}  # op -> activation inputs to quantize
    for op in graph.ops:
        if op.scope not in plan.weights:
            continue
        read = [graph.tensors[t].storage_id for t in op.inputs]
        for sid in read:
            if sid in weight_storages and len(graph.tensors[weight_storages[sid]].shape) >= 2:
                bits_of[weight_storages[sid]] = BITS[plan.weights[op.scope]]
        if any(sid in weight_storages for sid in read):
            act_inputs[op.index] = tuple(
                t for t in op.inputs
                if graph.tensors[t].storage_id not in frozen
                and graph.tensors[t].dtype.startswith(("float", "bfloat"))
            )  # fmt: skip
    quantized = dict(feeds)
    with torch.no_grad():
        for tid, bits in bits_of.items():
            quantized[tid] = fake_quantize_weight(feeds[tid], bits)
    activation = plan.precision.activations
    if activation not in BITS:
        return quantized, None, None, len(plan.weights)
    bits = BITS[activation]
    absmax: dict[str, float] = {}

    def observe(op: Op, lookup: Lookup) -> Mapping[int, torch.Tensor]:
        for tid in act_inputs.get(op.index, ()):
            seen = float(lookup(tid).abs().max().item()) if graph.tensors[tid].numel else 0.0
            absmax[op.scope] = max(absmax.get(op.scope, 0.0), seen)
        return {}

    interpret(prog, quantized, plan_schedule, observe)  # calibration on the run's inputs
    scales = {scope: activation_scale(m, bits) for scope, m in absmax.items()}

    def fake_quantize(op: Op, lookup: Lookup) -> Mapping[int, torch.Tensor]:
        return {
            tid: fake_quantize_activation(lookup(tid), scales[op.scope], bits)
            for tid in act_inputs.get(op.index, ())
        }

    return quantized, fake_quantize, bits, len(plan.weights)


def quantized_cache(
    graph: Graph, feeds: Mapping[int, torch.Tensor], bits: int
) -> dict[int, torch.Tensor]:
    """A decode step's KV cache inputs (`meta["kv_inputs"]`) fake-quantized, one symmetric
    scale per token and head (each head_dim vector)."""
    named = set(graph.meta.get("kv_inputs") or ())
    out = {}
    with torch.no_grad():
        for t in graph.tensors_of_kind(TensorKind.INPUT):
            if t.name in named and t.id in feeds:
                x = feeds[t.id]
                out[t.id] = fake_quantize_weight(x.reshape(-1, x.shape[-1]), bits).reshape(x.shape)
    return out


# --------------------------------------------------------------------------- measuring


def _timed(fn: Callable[[], object], repeat: int, device: str) -> tuple[float, tuple[float, ...]]:
    """(median, every run) wall time of `repeat` calls after one untimed warm-up call
    (first-call allocation and kernel selection are not the model's time), autograd off."""
    runs = []
    with torch.no_grad():
        fn()
        for _ in range(repeat):
            if device == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
            fn()
            if device == "cuda":
                torch.cuda.synchronize()
            runs.append(time.perf_counter() - start)
    return statistics.median(runs), tuple(runs)


def fidelity(reference: Sequence[torch.Tensor], test: Sequence[torch.Tensor]) -> Fidelity:
    """All outputs, flattened together, against the reference's."""
    shapes = [tuple(t.shape) for t in reference], [tuple(t.shape) for t in test]
    if shapes[0] != shapes[1]:
        raise EdgewiseError(f"the run's outputs {shapes[1]} differ from the model's {shapes[0]}")
    if not reference:
        return Fidelity(True, 0.0, math.inf, 1.0)
    ref = torch.cat([t.detach().double().flatten().cpu() for t in reference])
    out = torch.cat([t.detach().double().flatten().cpu() for t in test])
    exact = all(
        a.dtype == b.dtype and torch.equal(a, b) for a, b in zip(reference, test, strict=True)
    )
    return Fidelity(exact, max_abs_error(ref, out), sqnr_db(ref, out), cosine(ref, out))


def plan_run_to_dict(run: PlanRun) -> dict[str, Any]:
    """Flat JSON figures; an infinite SQNR (identical outputs) is written as null."""

    def finite(x: float) -> float | None:
        return x if math.isfinite(x) else None

    return {
        "model": run.model,
        "device": run.device,
        "method": run.method,
        "repeat": run.repeat,
        "bit_exact": run.fidelity.bit_exact,
        "max_abs_error": run.fidelity.max_abs_error,
        "sqnr_db": finite(run.fidelity.sqnr_db),
        "cosine": run.fidelity.cosine,
        "replay_bit_exact": run.replay.bit_exact,
        "measured_peak_bytes": run.planned.peak_bytes,
        "predicted_peak_bytes": run.planned.predicted_peak_bytes,
        "baseline_peak_bytes": run.baseline.peak_bytes,
        "predicted_baseline_peak_bytes": run.baseline.predicted_peak_bytes,
        "eager_peak_bytes": run.eager.peak_bytes,
        "predicted_eager_peak_bytes": run.eager.predicted_peak_bytes,
        "saved_bytes": run.saved_bytes,
        "predicted_saved_bytes": run.predicted_saved_bytes,
        "pool_peak_bytes": run.pool_peak_bytes,
        "latency_s": run.planned.latency_s,
        "baseline_latency_s": run.baseline.latency_s,
        "eager_latency_s": run.eager.latency_s,
        "run_s": {
            "eager": list(run.eager.run_s),
            "baseline": list(run.baseline.run_s),
            "planned": list(run.planned.run_s),
        },
        "actions": run.actions,
        "recomputed_ops": run.recomputed_ops,
        "quantized_layers": run.quantized_layers,
        "kv_bits": run.kv_bits,
        "activation_bits": run.activation_bits,
        "attention": run.attention,
        "int8_kernel_ops": run.int8_kernel_ops,
    }
