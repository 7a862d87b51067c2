"""What a vendor's compiler makes of a workload before it runs on a spec.

Applied once per spec, before the schedule, so the simulator, the planner and the sweep
all cost the same compiled workload (`simulate` compiles what it is given; compiling a
compiled workload again for the same spec changes nothing):

- **Epilogue fusion** (`fuse_epilogues`), as TFLite, QNN, TensorRT and Hailo's compiler
  do it: an elementwise or normalization op whose input is the result of a conv, matmul
  or attention op (or of an op already fused into one), a result that nothing else reads
  (views aside) and that is not a model output, runs in that op's epilogue. The
  intermediate is never written to memory: its storage holds 0 bytes (no SRAM traffic,
  no spill, no tile stream), the fused op is not dispatched on its own, and it takes no
  vector time (the epilogue's hardware runs it as results stream out of the array; its
  vector ops still count, with their energy). A batch norm after a conv is an epilogue
  too: vendors fold it into the weights.
- **Weight compression** (`weight_compression`): stored weight bytes per byte at the
  weight precision (Hailo's compiler stores part of the weights in 4 bits).
- **Dispatch**: which ops run as a kernel of their own, each paying the runtime's fixed
  `op_overhead_s`: every op that computes or moves bytes, except views and fused ops.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from msgspec import structs

from edgewise.hardware.spec import HardwareSpec
from edgewise.ir.categories import OpCategory
from edgewise.simulate.workload import OpWorkload

_EPILOGUE = frozenset((OpCategory.ELEMENTWISE, OpCategory.NORM))
_PRODUCT = frozenset((OpCategory.CONV, OpCategory.MATMUL, OpCategory.ATTENTION))


def compile_key(spec: HardwareSpec) -> str:
    return f"fuse={'yes' if spec.fuse_epilogues else 'no'},weights={spec.weight_compression:g}"


def fusion_groups(work: OpWorkload) -> tuple[np.ndarray, tuple[tuple[int, int, int], ...]]:
    """(per op the op whose epilogue it runs in, itself when not fused; the storages that
    stay inside a fused group, as (storage, the op that writes it, the op that reads it))."""
    n, cats, storage = work.n_ops, work.categories, work.storage
    leader = np.arange(n)
    writer = {sid: op for op, made in enumerate(work.writes) for sid in made}
    is_view = [c is OpCategory.VIEW for c in cats]
    internal = []
    for i in range(n):
        if cats[i] not in _EPILOGUE:
            continue
        best, best_sid = -1, -1
        for sid in work.reads[i]:
            p = writer.get(sid, -1)
            if p < 0 or cats[leader[p]] not in _PRODUCT or p <= best:
                continue
            s = storage[sid]
            if s.is_output or any(u != i and not is_view[u] for u in s.uses):
                continue
            best, best_sid = p, sid
        if best >= 0:
            leader[i] = leader[best]
            internal.append((best_sid, best, i))
    return leader, tuple(internal)


def compiled(work: OpWorkload, spec: HardwareSpec) -> OpWorkload:
    """`work` as the spec's compiler runs it (see the module docstring)."""
    key = compile_key(spec)
    if work.compiled == key:
        return work
    if work.compiled:
        raise ValueError(f"workload compiled as {work.compiled}, asked for {key}")
    act_read, act_write = work.act_read_bytes.copy(), work.act_write_bytes.copy()
    operands, gap_bytes = work.operand_bytes.copy(), work.gap_bytes.copy()
    storages = work.storages
    leader = np.arange(work.n_ops)
    if spec.fuse_epilogues:
        leader, internal = fusion_groups(work)
        for sid, writer, reader in internal:
            s = work.storage[sid]
            act_write[writer] -= s.nbytes
            act_read[reader] -= s.nbytes
            operands[[writer, reader]] -= s.nbytes
            gap_bytes[list(s.gaps)] = 0
        zeroed = {sid for sid, _, _ in internal}
        storages = tuple(structs.replace(s, nbytes=0) if s.id in zeroed else s for s in storages)
    weights = work.weight_bytes
    if spec.weight_compression != 1:
        weights = np.round(weights * spec.weight_compression).astype(np.int64)
    moves = (act_read + act_write + weights + work.scores_bytes) > 0
    views = np.array([c is OpCategory.VIEW for c in work.categories], dtype=bool)
    works = (work.macs > 0) | (work.vector_ops > 0) | moves
    return replace(
        work,
        act_read_bytes=act_read,
        act_write_bytes=act_write,
        operand_bytes=operands,
        gap_bytes=gap_bytes,
        storages=storages,
        weight_bytes=weights,
        total_weight_bytes=round(work.total_weight_bytes * spec.weight_compression),
        compiled=key,
        dispatched=works & ~views & (leader == np.arange(work.n_ops)),
        epilogue=leader != np.arange(work.n_ops),
    )
