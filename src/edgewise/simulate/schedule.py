"""Where each activation lives, op by op: on chip while it fits, else spilled to DRAM.

The default schedule keeps every activation in SRAM while the live set fits. When an
op's inputs and outputs need room, the resident tensor whose next use is furthest away
(Belady's rule) is evicted: written to DRAM once (a clean copy stays there) and read
back before its next use. Model inputs start in DRAM and are read on first use. An op
whose own inputs, outputs and internal scores exceed SRAM cannot run in place: it is
tiled through DRAM (its operands stream in and its outputs stream out) and flagged.
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass

import numpy as np

from edgewise.simulate.workload import OpWorkload


@dataclass(frozen=True)
class SramSchedule:
    capacity_bytes: int  # SRAM available to activations
    spill_bytes: np.ndarray  # per op: bytes evicted to DRAM to make room for it
    refill_bytes: np.ndarray  # per op: bytes read back from DRAM (spilled or input operands)
    tiled: np.ndarray  # per op: bool, working set exceeds SRAM, streamed through DRAM
    tiled_bytes: np.ndarray  # per op: DRAM bytes of a tiled op's streamed operands and scores
    occupancy_bytes: np.ndarray  # per op: activation bytes resident in SRAM while it runs
    spilled: frozenset[int]  # storages spilled at least once

    @property
    def dram_bytes(self) -> np.ndarray:
        return self.spill_bytes + self.refill_bytes + self.tiled_bytes

    @property
    def peak_sram_bytes(self) -> int:
        return int(self.occupancy_bytes.max(initial=0))


def furthest_next_use(work: OpWorkload, capacity_bytes: int) -> SramSchedule:
    """Simulate SRAM occupancy with Belady eviction; see the module docstring."""
    n = work.n_ops
    size = {s.id: s.nbytes for s in work.storages}
    uses = {s.id: s.uses for s in work.storages}
    last_use = {s.id: (s.uses[-1] if s.uses else s.first_op) for s in work.storages}
    keep_to_end = {s.id for s in work.storages if s.is_output}
    in_dram = {s.id for s in work.storages if s.is_input}  # a clean copy exists in DRAM
    resident: dict[int, int] = {}
    used = 0
    spill = np.zeros(n, dtype=np.int64)
    refill = np.zeros(n, dtype=np.int64)
    tiled = np.zeros(n, dtype=bool)
    tiled_bytes = np.zeros(n, dtype=np.int64)
    occupancy = np.zeros(n, dtype=np.int64)
    spilled: set[int] = set()
    frees: dict[int, list[int]] = {}
    for sid, op in last_use.items():
        if sid not in keep_to_end:
            frees.setdefault(op, []).append(sid)

    def next_use(sid: int, after: int) -> int:
        positions = uses[sid]
        k = bisect_right(positions, after)
        return positions[k] if k < len(positions) else n + (sid in keep_to_end)

    for i in range(n):
        reads, writes = work.reads[i], work.writes[i]
        needed = set(reads) | set(writes)
        working = sum(size[s] for s in needed) + int(work.scores_bytes[i])
        if working > capacity_bytes:
            # stream through DRAM: operands not on chip come in, outputs and scores go out
            tiled[i] = True
            streamed = sum(size[s] for s in reads if s not in resident)
            streamed += sum(size[s] for s in writes) + 2 * int(work.scores_bytes[i])
            tiled_bytes[i] = streamed
            in_dram.update(writes)
            in_dram.update(s for s in reads)
        else:
            for sid in reads:
                if sid not in resident:
                    refill[i] += size[sid]
                    resident[sid] = size[sid]
                    used += size[sid]
            for sid in writes:
                resident[sid] = size[sid]
                used += size[sid]
            room = capacity_bytes - int(work.scores_bytes[i])
            if used > room:
                victims = sorted(
                    (s for s in resident if s not in needed), key=lambda s: -next_use(s, i)
                )
                for sid in victims:
                    if used <= room:
                        break
                    if sid not in in_dram:
                        spill[i] += size[sid]
                        in_dram.add(sid)
                        spilled.add(sid)
                    used -= resident.pop(sid)
        occupancy[i] = used + (0 if tiled[i] else int(work.scores_bytes[i]))
        for sid in frees.get(i, ()):
            if sid in resident:
                used -= resident.pop(sid)
    return SramSchedule(
        capacity_bytes=capacity_bytes,
        spill_bytes=spill,
        refill_bytes=refill,
        tiled=tiled,
        tiled_bytes=tiled_bytes,
        occupancy_bytes=occupancy,
        spilled=frozenset(spilled),
    )
