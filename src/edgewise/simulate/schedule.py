"""Where each activation lives, gap by gap, and the DRAM traffic that follows.

Every activation storage (and model input) has *events*: the op that writes it (an
input: the op that first reads it) and every op that uses it. Between two consecutive
events lies a *gap*. A `Schedule` says, for every gap, whether the storage stays resident
in SRAM across it (`kept`) or waits off chip in DRAM; for every op, whether it is tiled
(its operands stream through DRAM because they do not fit beside what is resident); and
which long-lived storages are dropped across a gap and recomputed inside it. The default
schedule (Belady: evict the resident storage whose next use is furthest away) and a
plan's schedule (the MILP's) are both just schedules; `traffic` turns any of them into
bytes, the same way for both, so a plan's figure and the simulator's are one number.

The rules `traffic` applies (the MILP in `plan.milp` writes the same rules as rows):
- off across a gap: written to DRAM when the gap opens unless a clean copy is there (a
  model input, a tiled op's output, or written at an earlier gap), read back when it
  closes if the closing op reads it or the next gap keeps it;
- a tiled op reads resident operands from SRAM and streams the rest from DRAM (they stay
  off chip across the next gap); its outputs and materialized scores go to DRAM;
- at a view (a use that moves nothing) a storage is on chip iff the next gap keeps it;
- a model output is written to DRAM at its last event (unless a clean copy is there);
- SRAM occupancy at an op = storages kept across a gap spanning it + the op's operands
  (tiled: only its resident reads) + materialized scores + recomputed storages held
  until their use + sources brought in for a recomputation that runs there;
- a recomputation of storage s at op j (before j runs) re-runs `segment`: each source is
  read back if it is off chip at j (or already dead: then it is written out at its last
  event unless clean); segment ops whose operands alone exceed SRAM stream them.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from edgewise.ir.vocab import Action
from edgewise.simulate.workload import OpWorkload


@dataclass(frozen=True, slots=True)
class Recompute:
    """A storage dropped across one of its gaps and rebuilt before op `at`."""

    storage_id: int
    gap: int  # index into the workload's gaps
    at: int  # gap start < at <= gap end
    segment: tuple[int, ...]  # ops re-run (their costs land on `at`)
    sources: tuple[int, ...]  # storages the segment reads


@dataclass(frozen=True, slots=True)
class Pin:
    """A decision the default schedule must respect: keep, spill or recompute one gap."""

    gap: int
    action: Action
    recompute: Recompute | None = None


@dataclass(frozen=True)
class Schedule:
    capacity_bytes: int  # SRAM available to activations
    kept: np.ndarray  # bool per gap: resident across it
    tiled: np.ndarray  # bool per op: operands streamed through DRAM
    recompute: tuple[Recompute, ...] = ()


@dataclass(frozen=True)
class Traffic:
    """Per-op bytes a schedule moves (arrays over ops)."""

    refill_bytes: np.ndarray  # DRAM reads: storages brought back or streamed in
    spill_bytes: np.ndarray  # DRAM writes: storages leaving chip without a clean copy
    stream_bytes: np.ndarray  # DRAM: tiled ops' outputs and scores, recomputed segments'
    output_bytes: np.ndarray  # DRAM writes of model outputs
    occupancy_bytes: np.ndarray  # SRAM held while the op runs
    overflow_bytes: np.ndarray  # occupancy above capacity
    problems: tuple[str, ...] = field(default=())  # rules the schedule breaks

    @property
    def dram_bytes(self) -> np.ndarray:
        return self.refill_bytes + self.spill_bytes + self.stream_bytes + self.output_bytes

    @property
    def feasible(self) -> bool:
        return not self.overflow_bytes.any() and not self.problems


def segment_stream_bytes(work: OpWorkload, segment: Sequence[int], capacity: int) -> int:
    """DRAM bytes of a recomputed segment's ops whose operands alone exceed SRAM."""
    total = 0
    for k in segment:
        if work.operand_bytes[k] + work.scores_bytes[k] > capacity:
            total += int(
                work.act_read_bytes[k] + work.act_write_bytes[k] + 2 * work.scores_bytes[k]
            )
    return total


def gap_at(work: OpWorkload, storage_id: int, op: int) -> int | None:
    """The gap of a storage that is open just before `op` runs (start < op <= end), or
    None when the storage is not alive then."""
    s = work.storage[storage_id]
    ends = [int(work.gap_end[g]) for g in s.gaps]
    k = bisect_left(ends, op)
    if k < len(s.gaps) and work.gap_start[s.gaps[k]] < op:
        return s.gaps[k]
    return None


def traffic(work: OpWorkload, schedule: Schedule) -> Traffic:
    """The bytes `schedule` moves, by the rules in the module docstring."""
    n = work.n_ops
    kept, tiled, cap = schedule.kept, schedule.tiled, schedule.capacity_bytes
    refill = np.zeros(n, dtype=np.int64)
    spill = np.zeros(n, dtype=np.int64)
    stream = np.zeros(n, dtype=np.int64)
    output = np.zeros(n, dtype=np.int64)
    occ = np.zeros(n + 1, dtype=np.int64)  # difference array
    problems: list[str] = []
    rebuilt = {r.gap: r for r in schedule.recompute}
    reads = [set(r) for r in work.reads]
    views = {i for i, r in enumerate(work.reads) if not r and not work.writes[i]}
    clean_at_end: dict[int, bool] = {}
    last_event: dict[int, int] = {}
    for s in work.storages:
        events = s.events
        b = s.nbytes
        clean = s.is_input
        for k, e in enumerate(events):
            before = k - 1
            if before < 0:
                on_chip = False
            else:
                on_chip = bool(kept[s.gaps[before]]) or s.gaps[before] in rebuilt
            after = s.gaps[k] if k < len(s.gaps) else None
            keep_after = after is not None and bool(kept[after])
            reads_here = s.id in reads[e]
            if k == 0 and not s.is_input:  # written here
                if tiled[e]:
                    stream[e] += b
                    clean = True
                    if keep_after:
                        problems.append(f"op {e} is tiled but storage {s.id} it writes is kept")
            elif not on_chip and (reads_here or keep_after):
                refill[e] += b
                if tiled[e] and reads_here and keep_after:
                    problems.append(f"op {e} is tiled but storage {s.id} it streams is kept")
            if e in views:
                occ[e] += b * keep_after
                occ[e + 1] -= b * keep_after
            elif tiled[e] and reads_here and on_chip:
                occ[e] += b
                occ[e + 1] -= b
            if after is not None:
                if keep_after:
                    occ[e + 1] += b
                    occ[int(work.gap_end[after])] -= b
                elif after in rebuilt:
                    r = rebuilt[after]
                    occ[r.at] += b
                    occ[int(work.gap_end[after])] -= b
                elif not clean:
                    spill[e] += b
                    clean = True
        if s.is_output and events and not clean:
            output[events[-1]] += b
            clean = True
        clean_at_end[s.id] = clean
        last_event[s.id] = events[-1] if events else -1
    for r in schedule.recompute:
        for u in r.sources:
            g = gap_at(work, u, r.at)
            if g is not None and (kept[g] or (g in rebuilt and rebuilt[g].at <= r.at)):
                continue
            b = work.storage[u].nbytes
            refill[r.at] += b
            occ[r.at] += b
            occ[r.at + 1] -= b
            if g is None and not clean_at_end[u]:  # dead by then: written out as it dies
                spill[last_event[u]] += b
                clean_at_end[u] = True
        stream[r.at] += segment_stream_bytes(work, r.segment, cap)
    occupancy = np.cumsum(occ)[:n]
    occupancy += np.where(tiled, 0, work.operand_bytes + work.scores_bytes)
    stream += np.where(tiled, 2 * work.scores_bytes, 0)
    return Traffic(
        refill_bytes=refill,
        spill_bytes=spill,
        stream_bytes=stream,
        output_bytes=output,
        occupancy_bytes=occupancy,
        overflow_bytes=np.maximum(occupancy - cap, 0),
        problems=tuple(problems),
    )


def belady(work: OpWorkload, capacity_bytes: int, pins: Sequence[Pin] = ()) -> Schedule:
    """The default schedule: every storage stays on chip while the live set fits; when an
    op needs room, the resident storage whose next use is furthest away (Belady's rule)
    leaves. An op whose operands do not fit beside what must stay resident is tiled.
    `pins` fix some gaps (a plan's keep / spill / recompute of long-lived storages)."""
    n = work.n_ops
    size = {s.id: s.nbytes for s in work.storages}
    storage = work.storage
    kept = np.zeros(work.n_gaps, dtype=bool)
    tiled = np.zeros(n, dtype=bool)
    pinned_keep: dict[int, tuple[int, int]] = {}  # storage -> (start, end) of a kept gap
    drops: dict[int, list[int]] = {}  # op -> storages leaving after it (spill / recompute)
    rebuilds: dict[int, list[Recompute]] = {}
    recompute: list[Recompute] = []
    for p in pins:
        sid = int(work.gap_storage[p.gap])
        start, end = int(work.gap_start[p.gap]), int(work.gap_end[p.gap])
        if p.action == Action.KEEP:
            pinned_keep.setdefault(sid, (start, end))
        else:
            drops.setdefault(start, []).append(sid)
        if p.action == Action.RECOMPUTE and p.recompute is not None:
            rebuilds.setdefault(p.recompute.at, []).append(p.recompute)
            recompute.append(p.recompute)
    keep_gaps = {p.gap for p in pins if p.action == Action.KEEP}
    event_gap: dict[tuple[int, int], int] = {}  # (storage, event op) -> gap closing there
    for s in work.storages:
        for g in s.gaps:
            event_gap[s.id, int(work.gap_end[g])] = g
    events_at: dict[int, list[int]] = {}
    for s in work.storages:
        for e in s.events:
            events_at.setdefault(e, []).append(s.id)
    ends = {s.id: s.events[-1] for s in work.storages}

    resident: dict[int, int] = {}
    off_since: set[int] = set()  # left the chip since its last event
    used = 0

    def next_use(sid: int, after: int) -> int:
        ev = storage[sid].events
        k = bisect_right(ev, after)
        return ev[k] if k < len(ev) else n

    def is_pinned(sid: int, op: int) -> bool:
        gap = pinned_keep.get(sid)
        return gap is not None and gap[0] <= op < gap[1]

    def evict(sid: int) -> None:
        nonlocal used
        used -= resident.pop(sid)
        off_since.add(sid)

    def make_room(op: int, needed: set[int], room: int) -> None:
        if used <= room:
            return
        victims = sorted(
            (s for s in resident if s not in needed and not is_pinned(s, op)),
            key=lambda s: -next_use(s, op),
        )
        for sid in victims:
            if used <= room:
                break
            evict(sid)

    for i in range(n):
        for sid in events_at.get(i, ()):  # a gap closes here: was it resident throughout?
            closing = event_gap.get((sid, i))
            if closing is not None:
                kept[closing] = sid not in off_since
            off_since.discard(sid)
        extra = 0
        for r in rebuilds.get(i, ()):
            resident[r.storage_id] = size[r.storage_id]
            used += size[r.storage_id]
            off_since.discard(r.storage_id)
            extra += sum(size[u] for u in r.sources if u not in resident)
        reads, writes = work.reads[i], work.writes[i]
        needed = set(reads) | set(writes)
        working = sum(size[s] for s in needed) + int(work.scores_bytes[i])
        pinned = sum(b for s, b in resident.items() if s not in needed and is_pinned(s, i))
        if working + pinned + extra > capacity_bytes:
            tiled[i] = True
            make_room(i, {s for s in reads if s in resident}, capacity_bytes - extra)
        else:
            for sid in reads:
                if sid not in resident:
                    resident[sid] = size[sid]
                    used += size[sid]
            for sid in writes:
                resident[sid] = size[sid]
                used += size[sid]
            make_room(i, needed, capacity_bytes - int(work.scores_bytes[i]) - extra)
        for sid in drops.get(i, ()):
            if sid in resident:
                evict(sid)
        for sid in events_at.get(i, ()):
            if ends[sid] == i:
                if sid in resident:
                    used -= resident.pop(sid)
            elif sid not in resident:
                off_since.add(sid)
    for g in keep_gaps:
        kept[g] = True
    for r in recompute:
        kept[r.gap] = False
    return Schedule(capacity_bytes, kept, tiled, tuple(recompute))
