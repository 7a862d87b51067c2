"""Replay a captured graph on real tensors: edgewise's own small interpreter.

The graph's ops run in their recorded order through the ATen dispatcher
(`torch.ops.aten.<name>.<overload>`), their arguments rebuilt from the record: a
`TensorRef` becomes the live tensor, dtype names become torch dtypes, device strings the
run's device, layout and memory-format names their torch objects. Parameters and buffers
come from the module (by qualified name), inputs from the example inputs (by path:
"arg0", "encoder_hidden_states", "added_cond_kwargs.text_embeds"), small constants from
the graph. The same kernels on the same inputs in the same order: on the same machine
the outputs are bit-identical to the eager forward.

What the run holds in memory follows a `Schedule`, plain data computed from the graph
and, optionally, a plan:
- every activation is released after its last use (the interpreter keeps no other
  reference), so the run allocates what the `last-use` memory timeline predicts;
- spill: after op `start` a storage's bytes move to a pool outside the torch allocator
  and come back, bit for bit, before op `resume`;
- recompute: after op `start` the storage is dropped; before op `resume` the ops that
  made it run again from its sources (the schedule keeps the tensors they read alive
  until then) and rebuild it; their own intermediates are released as they go. The ops
  are found by walking back from the storage's tensors to the plan's sources: the plan's
  segment plus the view ops it leaves implicit (a view costs nothing in the planner's
  model, but the run needs the view tensor);
- attention: an op may run as an explicit softmax(q k^T x scale) v, its scores really
  allocated ("materialized"), or over tiles of query rows, one tile's output at a time
  ("fused", Br rows from `flash_tile` for a 256 KiB SRAM, the memory timeline's default).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from torch.utils._pytree import tree_flatten, tree_flatten_with_path, tree_map_only

from edgewise.analysis.lifetimes import tensor_last_uses
from edgewise.analysis.memory import flash_tile
from edgewise.capture.torch_capture import _path_name
from edgewise.errors import EdgewiseError
from edgewise.ir.categories import OpCategory
from edgewise.ir.graph import Graph, Op, TensorKind, TensorRef
from edgewise.ir.vocab import AttentionMode
from edgewise.plan.plan import Plan, PlannedTensor

TILE_SRAM_BYTES = 256 * 1024  # SRAM a fused attention's score tile is sized for
ATTENTION_MODES = (AttentionMode.MATERIALIZED, AttentionMode.FUSED)
PORTABLE = "portable-sdpa"  # a CPU-only attention kernel re-run as SDPA on another device
_ENUMS = (torch.dtype, torch.layout, torch.memory_format)
_FEEDS = (TensorKind.INPUT, TensorKind.PARAMETER, TensorKind.BUFFER, TensorKind.CONSTANT)

Lookup = Callable[[int], torch.Tensor]
# called before an op runs with the op and a lookup of its inputs; returns replacements
# for some of them (activation fake quantization, calibration observers)
InputHook = Callable[[Op, Lookup], Mapping[int, torch.Tensor]]
# op index -> (int8 weight [N, K], per-row fp32 scales [N]): mm/addmm ops that run on
# PyTorch's weight-only int8 kernel (aten._weight_int8pack_mm) instead of float weights
Int8Weights = Mapping[int, tuple[torch.Tensor, torch.Tensor]]


# --------------------------------------------------------------------------- schedule


@dataclass(frozen=True, slots=True)
class Replay:
    """The ops that rebuild a dropped storage, and what they read from the run."""

    ops: tuple[int, ...]  # in execution order
    reads: tuple[int, ...]  # activation tensor ids read from the run (the sources' tensors)
    rebinds: tuple[int, ...]  # tensor ids of the storage the run reads after the gap
    release_after: tuple[tuple[int, ...], ...]  # per replayed op: intermediates freed after it


@dataclass(frozen=True, slots=True)
class Move:
    """One storage a plan moves out across its gap: after op `start` it is spilled or
    dropped, and before op `resume` it is back."""

    storage_id: int
    action: str  # spill | recompute
    start: int
    resume: int  # spill: gap_end; recompute: recompute_at
    rebinds: tuple[int, ...]  # tensor ids of the storage still read after the gap
    replay: Replay | None = None  # recompute only


@dataclass(frozen=True)
class Schedule:
    """What the interpreter does besides running ops, as plain data."""

    free_after: tuple[tuple[int, ...], ...]  # per op: activation ids released after it
    last_use: dict[int, int]  # activation id -> last op that needs it (op count: an output)
    moves: tuple[Move, ...] = ()
    attention: dict[int, str] = field(default_factory=dict)  # op -> materialized | tiled


def storage_members(graph: Graph) -> dict[int, tuple[int, ...]]:
    """Storage id -> the ids of the tensors that live in it, in creation order."""
    members: dict[int, list[int]] = {}
    for t in graph.tensors.values():
        members.setdefault(t.storage_id, []).append(t.id)
    return {sid: tuple(tids) for sid, tids in members.items()}


def schedule(graph: Graph, plan: Plan | None = None) -> Schedule:
    """Last-use releases, and the plan's spills, recomputations and attention modes."""
    last = tensor_last_uses(graph)
    members = storage_members(graph)
    moves = []
    tensors = plan.tensors if plan is not None else ()

    def rebinds(t: PlannedTensor) -> tuple[int, ...]:
        return tuple(tid for tid in members[t.storage_id] if last.get(tid, -1) > t.gap_start)

    for t in (t for t in tensors if t.action == "recompute"):
        replay = _replay(graph, t, rebinds(t), members)
        for tid in replay.reads:  # the sources stay alive until they are read again
            last[tid] = max(last[tid], t.recompute_at)
        moves.append(Move(t.storage_id, "recompute", t.gap_start, t.recompute_at,
                          replay.rebinds, replay))  # fmt: skip
    # spills last: a spilled source must bring back what a recomputation still reads
    for t in (t for t in tensors if t.action == "spill"):
        moves.append(Move(t.storage_id, "spill", t.gap_start, t.gap_end, rebinds(t)))
    free: list[list[int]] = [[] for _ in graph.ops]
    for tid, op in last.items():
        if op < len(graph.ops):
            free[op].append(tid)
    attention = {a.op: a.mode for a in plan.attention} if plan is not None else {}
    for i, mode in attention.items():
        _check_attention(graph, i, mode)
    return Schedule(tuple(tuple(f) for f in free), last, tuple(moves), attention)


def _check_attention(graph: Graph, index: int, mode: str) -> None:
    if mode not in ATTENTION_MODES:
        raise EdgewiseError(f"attention mode must be one of {ATTENTION_MODES} (got '{mode}')")
    if not 0 <= index < len(graph.ops) or graph.ops[index].category is not OpCategory.ATTENTION:
        raise EdgewiseError(f"the plan sets an attention mode on op {index}: not an attention op")
    op = graph.ops[index]
    if any(graph.consumers[o] for o in op.outputs[1:]):
        raise EdgewiseError(
            f"op {index} ({op.target}): later ops read more than its output, so it cannot "
            f"run {mode}"
        )


def _replay(
    graph: Graph, t: PlannedTensor, rebinds: tuple[int, ...], members: dict[int, tuple[int, ...]]
) -> Replay:
    """The ops to re-run: the producers of the storage's later-read tensors (and every op
    that wrote into it before the gap), back to the plan's sources and the model's
    parameters, inputs and constants."""
    sources = set(t.sources)
    # every op that wrote into the storage before the gap: views of it, in-place updates
    writes = [
        tid
        for tid in members[t.storage_id]
        if (p := graph.tensors[tid].producer) is not None and p <= t.gap_start
    ]
    ops: set[int] = set()
    reads: set[int] = set()
    stack = [*rebinds, *writes]
    while stack:
        tensor = graph.tensors[stack.pop()]
        if tensor.kind is not TensorKind.ACTIVATION:
            continue  # parameters, inputs and constants are always there
        if tensor.storage_id in sources:
            reads.add(tensor.id)
            continue
        producer = tensor.producer
        assert producer is not None
        if producer > t.gap_start:
            raise EdgewiseError(
                f"cannot recompute storage {t.storage_id} ({t.name}): its value needs op "
                f"{producer}, which runs after the gap opens at op {t.gap_start}"
            )
        if producer not in ops:
            ops.add(producer)
            stack.extend(graph.ops[producer].inputs)
    order = sorted(ops)
    read_storages = {graph.tensors[tid].storage_id for tid in reads}
    for i in order:
        written = {graph.tensors[o].storage_id for o in graph.ops[i].outputs}
        if written & read_storages:
            raise EdgewiseError(
                f"cannot recompute storage {t.storage_id} ({t.name}): op {i} "
                f"({graph.ops[i].target}) writes in place into a source it reads"
            )
    position = {i: p for p, i in enumerate(order)}
    local_last: dict[int, int] = {}
    for i in order:
        for o in graph.ops[i].outputs:
            local_last[o] = position[i]
        for tid in graph.ops[i].inputs:
            if tid in local_last:
                local_last[tid] = position[i]
    keep = set(rebinds)
    release: list[list[int]] = [[] for _ in order]
    for tid, p in local_last.items():
        if tid not in keep:
            release[p].append(tid)
    return Replay(tuple(order), tuple(sorted(reads)), rebinds, tuple(tuple(r) for r in release))


# --------------------------------------------------------------------------- program


@dataclass(frozen=True, slots=True)
class _Call:
    fn: Any  # torch._ops.OpOverload
    args: tuple[Any, ...]  # decoded arguments, TensorRef where a tensor goes
    kwargs: dict[str, Any]
    names: tuple[str, ...]  # the schema's argument names


@dataclass(frozen=True)
class Program:
    """A graph made ready to run: each op's overload and decoded arguments."""

    graph: Graph
    device: torch.device
    calls: tuple[_Call, ...]
    members: dict[int, tuple[int, ...]]  # storage id -> tensor ids


def program(graph: Graph, device: str | torch.device = "cpu") -> Program:
    """Resolve every op's ATen overload and decode its recorded arguments once."""
    dev = torch.device(device)
    calls = tuple(_call(op, dev) for op in graph.ops)
    return Program(graph, dev, calls, storage_members(graph))


def _call(op: Op, device: torch.device) -> _Call:
    namespace, name, overload = [*op.target.split("."), "", ""][:3]
    try:
        fn = getattr(getattr(getattr(torch.ops, namespace), name), overload or "default")
    except (AttributeError, RuntimeError) as e:
        raise EdgewiseError(
            f"op {op.index} ({op.target}) in '{op.scope}': this torch has no such ATen "
            "operator, so the graph cannot be replayed"
        ) from e
    arguments = fn._schema.arguments
    types = {a.name: str(a.type) for a in arguments}
    names = tuple(a.name for a in arguments)
    args = tuple(
        _decode(v, types[names[i]] if i < len(names) else "", device) for i, v in enumerate(op.args)
    )
    kwargs = {k: _decode(v, types.get(k, ""), device) for k, v in op.kwargs.items()}
    return _Call(fn, args, kwargs, names)


def _decode(value: Any, schema_type: str, device: torch.device) -> Any:
    """A recorded argument back to what the op takes (by the schema's argument type)."""
    if isinstance(value, (list, tuple)):
        return [_decode(v, schema_type, device) for v in value]
    if not isinstance(value, str) or schema_type in ("str", "Optional[str]"):
        return value
    if "Device" in schema_type:
        return device  # the graph runs on one device: the run's
    found = getattr(torch, value.removeprefix("torch."), None)
    if not isinstance(found, _ENUMS):
        raise EdgewiseError(f"cannot decode argument '{value}' of type {schema_type}")
    return found


def _fill(value: Any, resolve: Lookup) -> Any:
    if isinstance(value, TensorRef):
        return resolve(value.id)
    if isinstance(value, list):
        return [_fill(v, resolve) for v in value]
    return value


# --------------------------------------------------------------------------- feeds


def bind(
    graph: Graph,
    model: nn.Module,
    args: tuple[Any, ...],
    kwargs: Mapping[str, Any],
    device: str | torch.device = "cpu",
) -> dict[int, torch.Tensor]:
    """The tensors the graph reads but no op makes: parameters, buffers, inputs, constants."""
    state: dict[str, torch.Tensor] = {
        **dict(model.named_parameters(remove_duplicate=False)),
        **dict(model.named_buffers(remove_duplicate=False)),
    }
    inputs: dict[str, torch.Tensor] = {}
    for prefix, value in [*((f"arg{i}", a) for i, a in enumerate(args)), *kwargs.items()]:
        for path, leaf in tree_flatten_with_path(value)[0]:
            if isinstance(leaf, torch.Tensor):
                inputs[prefix + _path_name(path)] = leaf
    feeds: dict[int, torch.Tensor] = {}
    problems = []
    for t in graph.tensors.values():
        if t.kind in (TensorKind.PARAMETER, TensorKind.BUFFER):
            found = state.get(t.name)
        elif t.kind is TensorKind.INPUT:
            found = inputs.get(t.name)
        elif t.kind is TensorKind.CONSTANT:
            found = _constant(graph, t.id, device)
        else:
            continue
        if found is None:
            problems.append(f"{t.kind.value} '{t.name or t.id}' is missing")
        elif tuple(found.shape) != t.shape or str(found.dtype).removeprefix("torch.") != t.dtype:
            problems.append(
                f"{t.kind.value} '{t.name or t.id}' is {tuple(found.shape)} "
                f"{str(found.dtype).removeprefix('torch.')}, the graph has {t.shape} {t.dtype}"
            )
        else:
            feeds[t.id] = found
    if problems:
        more = f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
        raise EdgewiseError(
            f"the model and inputs do not match the graph {graph.model}: "
            f"{'; '.join(problems[:3])}{more}"
        )
    return feeds


def _constant(graph: Graph, tid: int, device: str | torch.device) -> torch.Tensor:
    t = graph.tensors[tid]
    values = graph.constants.get(tid)
    if values is None:
        raise EdgewiseError(
            f"constant tensor {tid} {t.shape} read by op {graph.consumers[tid][:1]}: its "
            "values were not captured (too large), so the graph cannot be replayed"
        )
    dtype = getattr(torch, t.dtype)
    return torch.tensor(values, dtype=dtype, device=device).reshape(t.shape)


# --------------------------------------------------------------------------- the run


class SpillPool:
    """Storages moved out of the torch allocator: bytes in Python-owned buffers (host
    memory either way: a CUDA run's spills land in host RAM)."""

    def __init__(self) -> None:
        self._entries: dict[int, tuple[bytearray, dict[int, tuple[Any, ...]]]] = {}
        self.bytes = 0
        self.peak_bytes = 0

    def put(self, storage_id: int, tensors: Mapping[int, torch.Tensor]) -> None:
        first = next(iter(tensors.values()))
        storage = first.untyped_storage()
        whole = torch.empty(0, dtype=torch.uint8, device=first.device).set_(storage)
        buffer = bytearray(storage.nbytes())
        if buffer:
            torch.frombuffer(buffer, dtype=torch.uint8).copy_(whole)
        layout = {
            tid: (t.dtype, tuple(t.shape), t.stride(), t.storage_offset())
            for tid, t in tensors.items()
        }
        self._entries[storage_id] = (buffer, layout)
        self.bytes += len(buffer)
        self.peak_bytes = max(self.peak_bytes, self.bytes)

    def holds(self, storage_id: int) -> bool:
        return storage_id in self._entries

    def take(self, storage_id: int, device: torch.device) -> dict[int, torch.Tensor]:
        """Bring a storage back into the allocator, with every tensor that lived in it."""
        tensors = self.copy(storage_id, device)
        self.bytes -= len(self._entries.pop(storage_id)[0])
        return tensors

    def copy(self, storage_id: int, device: torch.device) -> dict[int, torch.Tensor]:
        """A copy of a pooled storage in the allocator; the pool keeps its own."""
        buffer, layout = self._entries[storage_id]
        storage = torch.empty(len(buffer), dtype=torch.uint8, device=device)
        if buffer:
            storage.copy_(torch.frombuffer(buffer, dtype=torch.uint8))
        return {
            tid: torch.empty(0, dtype=dtype, device=device).set_(
                storage.untyped_storage(), offset, shape, stride
            )
            for tid, (dtype, shape, stride, offset) in layout.items()
        }


@dataclass(frozen=True)
class Interpreted:
    outputs: tuple[torch.Tensor, ...]  # the graph's outputs, in order
    pool_peak_bytes: int  # most bytes the spill pool held at once


def interpret(
    prog: Program,
    feeds: Mapping[int, torch.Tensor],
    plan_schedule: Schedule,
    hook: InputHook | None = None,
    int8: Int8Weights | None = None,
) -> Interpreted:
    """Run the graph once (autograd off) under a schedule; see the module docstring."""
    int8 = int8 or {}
    graph = prog.graph
    env: dict[int, torch.Tensor] = dict(feeds)
    pool = SpillPool()
    opens: dict[int, list[Move]] = {}
    resumes: dict[int, list[Move]] = {}
    for move in plan_schedule.moves:
        opens.setdefault(move.start, []).append(move)
        resumes.setdefault(move.resume, []).append(move)
    with torch.no_grad():
        for op in graph.ops:
            i = op.index
            # spilled storages come back first: a recomputation may read them
            for move in sorted(resumes.get(i, ()), key=lambda m: m.action != "spill"):
                if move.action == "spill":
                    back = pool.take(move.storage_id, prog.device)
                    env.update({tid: back[tid] for tid in move.rebinds if tid in back})
                    del back
                else:
                    assert move.replay is not None
                    _run_replay(prog, move.replay, env, pool, plan_schedule, hook, int8)
            mode = plan_schedule.attention.get(i)
            outs = _execute(prog, op, env.__getitem__, mode, hook, int8.get(i))
            env.update(zip(op.outputs, outs, strict=False))
            del outs
            for tid in plan_schedule.free_after[i]:
                env.pop(tid, None)
            for move in opens.get(i, ()):
                held = {tid: env.pop(tid) for tid in prog.members[move.storage_id] if tid in env}
                if move.action == "spill" and held:
                    pool.put(move.storage_id, held)
                del held
    return Interpreted(tuple(env[tid] for tid in graph.outputs), pool.peak_bytes)


def _run_replay(
    prog: Program,
    replay: Replay,
    env: dict[int, torch.Tensor],
    pool: SpillPool,
    plan_schedule: Schedule,
    hook: InputHook | None,
    int8: Int8Weights,
) -> None:
    graph = prog.graph
    local: dict[int, torch.Tensor] = {}

    def lookup(tid: int) -> torch.Tensor:
        if tid in local:
            return local[tid]
        if tid in env:
            return env[tid]
        sid = graph.tensors[tid].storage_id
        if pool.holds(sid):  # a source spilled right now: read a temporary copy
            local.update(pool.copy(sid, prog.device))
            return local[tid]
        raise EdgewiseError(
            f"recomputation needs tensor {tid} (storage {sid}), which is neither live nor "
            "spilled at that point: the plan's sources are not available"
        )

    for i, release in zip(replay.ops, replay.release_after, strict=True):
        op = graph.ops[i]
        outs = _execute(prog, op, lookup, plan_schedule.attention.get(i), hook, int8.get(i))
        local.update(zip(op.outputs, outs, strict=False))
        del outs
        for tid in release:
            local.pop(tid, None)
    env.update({tid: local[tid] for tid in replay.rebinds})
    local.clear()


def _execute(
    prog: Program,
    op: Op,
    lookup: Lookup,
    mode: str | None,
    hook: InputHook | None,
    int8: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> list[torch.Tensor]:
    """Run one op; its tensor outputs in order (a rewritten attention: the first only)."""
    call = prog.calls[op.index]
    resolve = lookup
    if hook is not None:
        replaced = hook(op, lookup)
        if replaced:

            def resolve(tid: int) -> torch.Tensor:
                return replaced[tid] if tid in replaced else lookup(tid)

    args = [_fill(a, resolve) for a in call.args]
    kwargs = {k: _fill(v, resolve) for k, v in call.kwargs.items()}
    if mode is None and op.category is OpCategory.ATTENTION and _cpu_only(op, prog.device):
        mode = PORTABLE
    result: Any
    try:
        if int8 is not None:
            result = _int8_matmul(op, args, *int8)
        elif mode is None:
            result = call.fn(*args, **kwargs)
        else:
            result = [_attention(call, op, args, kwargs, mode)]
    except EdgewiseError:
        raise
    except Exception as e:
        message = str(e).splitlines()[0] if str(e) else ""
        raise EdgewiseError(
            f"op {op.index} ({op.target}) in '{op.scope}' could not be replayed: "
            f"{type(e).__name__}: {message}"
        ) from e
    del args, kwargs
    outs = [o for o in tree_flatten(result)[0] if isinstance(o, torch.Tensor)]
    if mode is None and len(outs) != len(op.outputs):
        raise EdgewiseError(
            f"op {op.index} ({op.target}) returned {len(outs)} tensors, the graph recorded "
            f"{len(op.outputs)}"
        )
    return outs


def _int8_matmul(
    op: Op, args: list[Any], weight: torch.Tensor, scales: torch.Tensor
) -> torch.Tensor:
    """mm(x, W^T) or addmm(b, x, W^T) on PyTorch's int8-weight kernel: x @ (W_int8 x s)^T."""
    x = args[1] if op.name == "addmm" else args[0]
    out = torch.ops.aten._weight_int8pack_mm(x.contiguous(), weight, scales.to(x.dtype))
    return out + args[0] if op.name == "addmm" else out


def _cpu_only(op: Op, device: torch.device) -> bool:
    return device.type != "cpu" and op.target.split(".")[1].endswith("_for_cpu")


# --------------------------------------------------------------------------- attention


def _attention(
    call: _Call, op: Op, args: list[Any], kwargs: dict[str, Any], mode: str
) -> torch.Tensor:
    """Attention's output computed another way, laid out like the captured kernel's."""
    values = {**dict(zip(call.names, args, strict=False)), **kwargs}
    q, k, v = values["query"], values["key"], values["value"]
    mask = values.get("attn_mask", values.get("attn_bias"))
    causal = bool(values.get("is_causal", False))
    scale = values.get("scale")
    if values.get("dropout_p", 0.0):
        raise EdgewiseError(f"op {op.index}: attention with dropout cannot be rewritten")
    # the kernel's own output layout (strides), from its meta implementation
    meta = tree_map_only(
        torch.Tensor,
        lambda t: torch.empty_strided(t.shape, t.stride(), dtype=t.dtype, device="meta"),
        (args, kwargs),
    )
    shape = call.fn(*meta[0], **meta[1])
    shape = shape[0] if isinstance(shape, (tuple, list)) else shape
    out = torch.empty_strided(shape.shape, shape.stride(), dtype=q.dtype, device=q.device)
    rows, cols = q.shape[-2], k.shape[-2]
    if causal:  # torch's is_causal: the top-left triangle
        mask = torch.ones(rows, cols, dtype=torch.bool, device=q.device).tril()
    if mode == PORTABLE:
        out.copy_(
            torch.nn.functional.scaled_dot_product_attention(q, k, v, mask, 0.0, False, scale)
        )
    elif mode == "materialized":
        s = torch.matmul(q * (scale if scale is not None else q.shape[-1] ** -0.5), k.mT)
        if mask is not None and mask.dtype == torch.bool:
            s.masked_fill_(mask.logical_not(), float("-inf"))
        elif mask is not None:
            s.add_(mask)
        p = torch.softmax(s, dim=-1)
        del s
        out.copy_(torch.matmul(p, v))
    elif mode == AttentionMode.FUSED:
        tile = flash_tile(TILE_SRAM_BYTES, q.shape[-1], q.element_size())[0]
        mask_name = "attn_mask" if "attn_mask" in call.names else "attn_bias"
        for start in range(0, rows, tile):
            stop = min(start + tile, rows)
            part = {**values, "query": q[..., start:stop, :]}
            if "is_causal" in part:
                part["is_causal"] = False
            if mask is not None:
                part[mask_name] = mask[..., start:stop, :] if mask.shape[-2] > 1 else mask
            result = call.fn(**part)
            out[..., start:stop, :].copy_(result[0] if isinstance(result, tuple) else result)
            del result, part
    else:
        raise EdgewiseError(f"attention mode must be one of {ATTENTION_MODES} (got '{mode}')")
    return out
