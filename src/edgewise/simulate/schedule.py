"""Where each activation lives, op by op: on chip while it fits, else spilled to DRAM.

The default schedule keeps every activation in SRAM while the live set fits. When an
op's inputs and outputs need room, the resident tensor whose next use is furthest away
(Belady's rule) is evicted: written to DRAM once (a clean copy stays there) and read
back before its next use. Model inputs start in DRAM and are read on first use. An op
whose own inputs, outputs and internal scores exceed SRAM cannot run in place: it is
tiled through DRAM (its operands stream in and its outputs stream out) and flagged.

A plan pins decisions on long-lived tensors across their gap (the longest stretch
between two uses): `keep` (never evicted inside the gap), `spill` (written to DRAM when
the gap opens, read back when it closes) or `recompute` (dropped when the gap opens and
rebuilt at op `recompute_at` by re-running `segment` from `sources`, which must then be
on chip: they are read back if they are not). The schedule checks the plan: when pinned
tensors and an op's operands do not fit, the op is recorded as over capacity.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from edgewise.simulate.workload import OpWorkload


@dataclass(frozen=True, slots=True)
class GapDecision:
    """What a plan does with one long-lived storage across its gap."""

    storage_id: int
    action: str  # keep | spill | recompute
    gap_start: int  # op after which the gap opens
    gap_end: int  # op that next reads it
    recompute_at: int = -1  # recompute: the op before which it is rebuilt
    segment: tuple[int, ...] = ()  # recompute: ops re-run (their costs land on recompute_at)
    sources: tuple[int, ...] = ()  # recompute: storages the segment reads


@dataclass(frozen=True)
class SramSchedule:
    capacity_bytes: int  # SRAM available to activations
    spill_bytes: np.ndarray  # per op: bytes evicted to DRAM to make room for it
    refill_bytes: np.ndarray  # per op: bytes read back from DRAM (spilled or input operands)
    tiled: np.ndarray  # per op: bool, working set exceeds SRAM, streamed through DRAM
    tiled_bytes: np.ndarray  # per op: DRAM bytes of a tiled op's streamed operands and scores
    occupancy_bytes: np.ndarray  # per op: activation bytes resident in SRAM while it runs
    overflow_bytes: np.ndarray  # per op: bytes over capacity that pinned tensors forced
    spilled: frozenset[int]  # storages spilled at least once
    moves: tuple[tuple[int, int, int], ...]  # (op, storage, bytes) of every spill and refill

    @property
    def dram_bytes(self) -> np.ndarray:
        return self.spill_bytes + self.refill_bytes + self.tiled_bytes

    @property
    def peak_sram_bytes(self) -> int:
        return int(self.occupancy_bytes.max(initial=0))

    @property
    def feasible(self) -> bool:
        return not self.overflow_bytes.any()


def furthest_next_use(
    work: OpWorkload, capacity_bytes: int, decisions: Sequence[GapDecision] = ()
) -> SramSchedule:
    """Simulate SRAM occupancy with Belady eviction and a plan's pinned decisions."""
    n = work.n_ops
    size = {s.id: s.nbytes for s in work.storages}
    uses = {s.id: s.uses for s in work.storages}
    last_use = {s.id: (s.uses[-1] if s.uses else s.first_op) for s in work.storages}
    for d in decisions:  # a recomputation's sources must still exist when it runs
        if d.action == "recompute":
            for src in d.sources:
                if src in last_use:
                    last_use[src] = max(last_use[src], d.recompute_at)
    keep_to_end = {s.id for s in work.storages if s.is_output}
    in_dram = {s.id for s in work.storages if s.is_input}  # a clean copy exists in DRAM
    resident: dict[int, int] = {}
    used = 0
    spill = np.zeros(n, dtype=np.int64)
    refill = np.zeros(n, dtype=np.int64)
    tiled = np.zeros(n, dtype=bool)
    tiled_bytes = np.zeros(n, dtype=np.int64)
    occupancy = np.zeros(n, dtype=np.int64)
    overflow = np.zeros(n, dtype=np.int64)
    spilled: set[int] = set()
    moves: list[tuple[int, int, int]] = []
    frees: dict[int, list[int]] = {}
    for sid, op in last_use.items():
        if sid not in keep_to_end:
            frees.setdefault(op, []).append(sid)
    pinned: dict[int, tuple[int, int]] = {}  # keep: storage -> gap (never a victim inside)
    opens: dict[int, list[GapDecision]] = {}  # op -> decisions whose gap opens after it
    rebuilds: dict[int, list[GapDecision]] = {}  # op -> recomputations before it
    for d in decisions:
        if d.action == "keep":
            pinned[d.storage_id] = (d.gap_start, d.gap_end)
        else:
            opens.setdefault(d.gap_start, []).append(d)
        if d.action == "recompute":
            rebuilds.setdefault(d.recompute_at, []).append(d)

    def next_use(sid: int, after: int) -> int:
        positions = uses[sid]
        k = bisect_right(positions, after)
        return positions[k] if k < len(positions) else n + (sid in keep_to_end)

    def bring(sid: int, i: int) -> None:
        nonlocal used
        if sid not in resident:
            refill[i] += size[sid]
            moves.append((i, sid, size[sid]))
            resident[sid] = size[sid]
            used += size[sid]

    def make_room(i: int, needed: set[int], room: int) -> None:
        nonlocal used
        if used <= room:
            return
        victims = sorted(
            (s for s in resident if s not in needed and not _pinned_at(pinned, s, i)),
            key=lambda s: -next_use(s, i),
        )
        for sid in victims:
            if used <= room:
                break
            if sid not in in_dram:
                spill[i] += size[sid]
                moves.append((i, sid, size[sid]))
                in_dram.add(sid)
                spilled.add(sid)
            used -= resident.pop(sid)
        overflow[i] = max(0, used - room)

    for i in range(n):
        for d in rebuilds.get(i, ()):  # recompute before the op: sources on chip, then it
            for src in d.sources:
                bring(src, i)
            resident[d.storage_id] = size[d.storage_id]
            used += size[d.storage_id]
        reads, writes = work.reads[i], work.writes[i]
        needed = set(reads) | set(writes)
        for d in rebuilds.get(i, ()):
            needed |= {d.storage_id, *d.sources}
        working = sum(size[s] for s in needed) + int(work.scores_bytes[i])
        if working > capacity_bytes:
            # stream through DRAM: operands not on chip come in, outputs and scores go out
            tiled[i] = True
            streamed = sum(size[s] for s in reads if s not in resident)
            streamed += sum(size[s] for s in writes) + 2 * int(work.scores_bytes[i])
            tiled_bytes[i] = streamed
            in_dram.update(writes)
            in_dram.update(s for s in reads if s not in resident)  # streamed in: now in DRAM
            make_room(i, set(), capacity_bytes)  # what stays resident meanwhile must fit
        else:
            for sid in reads:
                bring(sid, i)
            for sid in writes:
                resident[sid] = size[sid]
                used += size[sid]
            make_room(i, needed, capacity_bytes - int(work.scores_bytes[i]))
        occupancy[i] = used + (0 if tiled[i] else int(work.scores_bytes[i]))
        for d in opens.get(i, ()):  # the gap opens: spill writes it out, recompute drops it
            if d.storage_id in resident:
                if d.action == "spill" and d.storage_id not in in_dram:
                    spill[i] += size[d.storage_id]
                    moves.append((i, d.storage_id, size[d.storage_id]))
                    in_dram.add(d.storage_id)
                    spilled.add(d.storage_id)
                used -= resident.pop(d.storage_id)
            if d.action == "recompute":
                in_dram.discard(d.storage_id)  # nothing to read back: it will be rebuilt
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
        overflow_bytes=overflow,
        spilled=frozenset(spilled),
        moves=tuple(moves),
    )


def _pinned_at(pinned: dict[int, tuple[int, int]], sid: int, op: int) -> bool:
    gap = pinned.get(sid)
    return gap is not None and gap[0] <= op < gap[1]
