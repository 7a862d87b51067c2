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
from heapq import heappop, heappush

import numpy as np

from edgewise.analysis.lifetimes import segments
from edgewise.ir.vocab import Action
from edgewise.simulate.workload import OpWorkload, Storage


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
    capacity_bytes: int  # SRAM available to activations (and to weights a plan keeps)
    kept: np.ndarray  # bool per gap: resident across it
    tiled: np.ndarray  # bool per op: operands streamed through DRAM
    recompute: tuple[Recompute, ...] = ()
    # bool per op: a plan keeps the weights this op reads in SRAM across every call of the
    # phase (loaded once, never streamed; held at every op); None: no plan residency
    resident_ops: np.ndarray | None = None
    # input storages (a decode step's KV cache) a plan keeps in SRAM across the calls
    resident_inputs: frozenset[int] = frozenset()

    def held_weight_bytes(self, work: OpWorkload) -> int:
        """Weight bytes the plan keeps in SRAM at every op."""
        if self.resident_ops is None:
            return 0
        return int(work.weight_bytes[self.resident_ops].sum())

    def held_input_bytes(self, work: OpWorkload) -> int:
        """Input bytes the plan keeps in SRAM at every op."""
        return sum(work.storage[sid].nbytes for sid in self.resident_inputs)


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
    long_lived_bytes: int = 0  # of refills + spills: storages living > LONG_LIVED_OPS ops
    input_bytes: int = 0  # of refills: model inputs and constants read from DRAM

    @property
    def dram_bytes(self) -> np.ndarray:
        return self.refill_bytes + self.spill_bytes + self.stream_bytes + self.output_bytes

    @property
    def feasible(self) -> bool:
        return not self.overflow_bytes.any() and not self.problems


# a storage used over more than this many ops is long-lived (a U-Net skip): the memory
# command's default `--long-lived`; its DRAM round trips are told apart from the others
LONG_LIVED_OPS = 100


def _kind(s: Storage) -> str | None:
    """How `what_bounds` tells a storage's DRAM round trips apart."""
    if s.is_input:
        return "input"
    return "long" if s.events and s.events[-1] - s.first_op > LONG_LIVED_OPS else None


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
    gaps = work.storage[storage_id].gaps
    if gaps and gaps[-1] - gaps[0] == len(gaps) - 1:  # consecutive, as op_workload makes them
        k = int(np.searchsorted(work.gap_end[gaps[0] : gaps[-1] + 1], op, side="left"))
    else:
        k = bisect_left([int(work.gap_end[g]) for g in gaps], op)
    if k < len(gaps) and work.gap_start[gaps[k]] < op:
        return gaps[k]
    return None


@dataclass(frozen=True)
class _Events:
    """Every storage event (its writer or first reader, then each use) as flat lists in op
    order, storages in workload order within an op: which storage, the gap it closes (-1
    for the first event) and whether it is the storage's last event."""

    bounds: list[int]  # events of op i: positions bounds[i]:bounds[i + 1]
    storage: list[int]
    closes: list[int]
    last: list[bool]
    after: list[int]  # the op of the storage's next event (the op count after its last)


def _events(work: OpWorkload) -> _Events:
    """A storage's events are its first one, then the end of each of its gaps in order
    (`op_workload` opens gap k at event k and closes it at event k + 1)."""
    n, storages = work.n_ops, work.storages
    first = np.array([s.events[0] if s.events else -1 for s in storages], dtype=np.int64)
    count = np.array([len(s.gaps) for s in storages], dtype=np.int64).reshape(-1)
    gaps = np.array([g for s in storages for g in s.gaps], dtype=np.int64).reshape(-1)
    rank = np.arange(len(storages))
    has = first.reshape(-1) >= 0
    last_gap = np.zeros(len(gaps), dtype=bool)
    last_gap[np.cumsum(count)[count > 0] - 1] = True
    op = np.concatenate([first.reshape(-1)[has], work.gap_end[gaps]])
    who = np.concatenate([rank[has], np.repeat(rank, count)])
    closes = np.concatenate([np.full(int(has.sum()), -1, dtype=np.int64), gaps])
    last = np.concatenate([(count == 0)[has], last_gap])
    by_storage = np.lexsort((op, who))  # each storage's events in order
    after = np.full(len(op), n, dtype=np.int64)
    same = who[by_storage][1:] == who[by_storage][:-1]
    after[by_storage[:-1][same]] = op[by_storage][1:][same]
    order = np.lexsort((who, op))  # by op, then in workload order
    op, who, closes, last, after = op[order], who[order], closes[order], last[order], after[order]
    ids = np.array([s.id for s in storages], dtype=np.int64).reshape(-1)
    return _Events(segments(np.bincount(op, minlength=n)[:n]).tolist(), ids[who].tolist(),
                   closes.tolist(), last.tolist(), after.tolist())  # fmt: skip


def traffic(work: OpWorkload, schedule: Schedule) -> Traffic:
    """The bytes `schedule` moves, by the rules in the module docstring."""
    n = work.n_ops
    kept, tiled, cap = schedule.kept.tolist(), schedule.tiled.tolist(), schedule.capacity_bytes
    refill = [0] * n
    spill = [0] * n
    stream = [0] * n
    output = [0] * n
    occ = [0] * (n + 1)  # difference array
    problems: list[str] = []
    rebuilt = {r.gap: r for r in schedule.recompute}
    reads, gap_end = work.reads, work.gap_end.tolist()
    views = {i for i, r in enumerate(reads) if not r and not work.writes[i]}
    clean_at_end: dict[int, bool] = {}
    last_event: dict[int, int] = {}
    moved = {"long": 0, "input": 0, None: 0}  # refills + spills by kind (None: the rest)
    held = schedule.resident_inputs
    for s in work.storages:
        events, gaps, sid = s.events, s.gaps, s.id
        if sid in held:  # on chip at every op (counted once, below): nothing moves
            clean_at_end[sid], last_event[sid] = True, events[-1] if events else -1
            continue
        b = s.nbytes
        clean = s.is_input
        mine = 0  # DRAM bytes this storage moves as refills and spills
        for k, e in enumerate(events):
            before = k - 1
            on_chip = before >= 0 and (kept[gaps[before]] or gaps[before] in rebuilt)
            after = gaps[k] if k < len(gaps) else None
            keep_after = after is not None and kept[after]
            reads_here = sid in reads[e]
            if k == 0 and not s.is_input:  # written here
                if tiled[e]:
                    stream[e] += b
                    clean = True
                    if keep_after:
                        problems.append(f"op {e} is tiled but storage {sid} it writes is kept")
            elif not on_chip and (reads_here or keep_after):
                refill[e] += b
                mine += b
                if tiled[e] and reads_here and keep_after:
                    problems.append(f"op {e} is tiled but storage {sid} it streams is kept")
            if e in views:
                occ[e] += b * keep_after
                occ[e + 1] -= b * keep_after
            elif tiled[e] and reads_here and on_chip:
                occ[e] += b
                occ[e + 1] -= b
            if after is not None:
                if keep_after:
                    occ[e + 1] += b
                    occ[gap_end[after]] -= b
                elif after in rebuilt:
                    r = rebuilt[after]
                    occ[r.at] += b
                    occ[gap_end[after]] -= b
                elif not clean:
                    spill[e] += b
                    mine += b
                    clean = True
        if mine:
            moved[_kind(s)] += mine
        if s.is_output and events and not clean:
            output[events[-1]] += b
            clean = True
        clean_at_end[sid] = clean
        last_event[sid] = events[-1] if events else -1
    for r in schedule.recompute:
        for u in r.sources:
            if u in held:
                continue
            g = gap_at(work, u, r.at)
            if g is not None and (kept[g] or (g in rebuilt and rebuilt[g].at <= r.at)):
                continue
            source = work.storage[u]
            b = source.nbytes
            refill[r.at] += b
            occ[r.at] += b
            occ[r.at + 1] -= b
            moved[_kind(source)] += b
            if g is None and not clean_at_end[u]:  # dead by then: written out as it dies
                spill[last_event[u]] += b
                clean_at_end[u] = True
                moved[_kind(source)] += b
        stream[r.at] += segment_stream_bytes(work, r.segment, cap)
    tiled_ops = schedule.tiled
    occupancy = np.cumsum(np.array(occ, dtype=np.int64))[:n]
    occupancy += np.where(tiled_ops, 0, work.operand_bytes + work.scores_bytes)
    occupancy += schedule.held_weight_bytes(work) + schedule.held_input_bytes(work)
    streamed = np.array(stream, dtype=np.int64) + np.where(tiled_ops, 2 * work.scores_bytes, 0)
    return Traffic(
        refill_bytes=np.array(refill, dtype=np.int64),
        spill_bytes=np.array(spill, dtype=np.int64),
        stream_bytes=streamed,
        output_bytes=np.array(output, dtype=np.int64),
        occupancy_bytes=occupancy,
        overflow_bytes=np.maximum(occupancy - cap, 0),
        problems=tuple(problems),
        long_lived_bytes=moved["long"],
        input_bytes=moved["input"],
    )


def belady(work: OpWorkload, capacity_bytes: int, pins: Sequence[Pin] = ()) -> Schedule:
    """The default schedule: every storage stays on chip while the live set fits; when an
    op needs room, the resident storage whose next use is furthest away (Belady's rule)
    leaves. An op whose operands do not fit beside what must stay resident is tiled.
    `pins` fix some gaps (a plan's keep / spill / recompute of long-lived storages).

    Residents are kept in a heap by (next use, latest first; then time they came on chip),
    refreshed at each of their events, and the bytes of pinned residents are kept as a
    running sum, so an op costs a few logarithms whatever the number of residents."""
    n = work.n_ops
    size = {s.id: s.nbytes for s in work.storages}
    storage = work.storage
    kept_at: list[int] = []
    kept_value: list[bool] = []
    tiled_at: list[int] = []
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
    pin_on: dict[int, list[int]] = {}  # op -> storages whose kept gap starts there
    pin_off: dict[int, list[int]] = {}  # op -> storages whose kept gap ends there
    for sid, (start, end) in pinned_keep.items():
        pin_on.setdefault(start, []).append(sid)
        pin_off.setdefault(end, []).append(sid)
    events = _events(work)
    bounds, event_storage, closes, is_last, after = (
        events.bounds, events.storage, events.closes, events.last, events.after
    )  # fmt: skip
    scores = work.scores_bytes.tolist()
    all_reads, all_writes = work.reads, work.writes

    resident: dict[int, int] = {}
    off_since: set[int] = set()  # left the chip since its last event
    pinned_now: set[int] = set()  # storages inside their kept gap at this op
    pinned_bytes = 0  # of the resident storages in pinned_now
    used = 0
    # the heap holds (-next use, arrival, storage); an entry is current while the storage
    # is resident with that arrival and that next use (older entries are skipped). A
    # pinned storage's entries are dropped: its kept gap ends at one of its events, where
    # a fresh entry is pushed
    heap: list[tuple[int, int, int]] = []
    arrival: dict[int, int] = {}
    upcoming: dict[int, int] = {}
    clock = 0

    def next_use(sid: int, after: int) -> int:
        ev = storage[sid].events
        k = bisect_right(ev, after)
        return ev[k] if k < len(ev) else n

    def arrive(sid: int, nu: int) -> None:  # sid was just put into `resident`, next used at nu
        nonlocal clock, pinned_bytes
        clock += 1
        arrival[sid] = clock
        upcoming[sid] = nu
        heappush(heap, (-nu, clock, sid))
        if sid in pinned_now:
            pinned_bytes += resident[sid]

    def leave(sid: int) -> None:
        nonlocal used, pinned_bytes
        b = resident.pop(sid)
        used -= b
        if sid in pinned_now:
            pinned_bytes -= b

    def evict(sid: int) -> None:
        leave(sid)
        off_since.add(sid)

    def make_room(op: int, needed: set[int], room: int) -> None:
        # evict, furthest next use first (ties: earliest arrival), skipping what the op
        # needs and what a plan keeps, until the residents fit in `room`
        if used <= room:
            return
        skipped = []
        while used > room and heap:
            entry = heappop(heap)
            negative_next, came, sid = entry
            if sid not in resident or arrival[sid] != came or upcoming[sid] != -negative_next:
                continue  # stale
            if sid in pinned_now:
                continue  # kept by the plan (re-entered when its kept gap ends)
            if sid in needed:
                skipped.append(entry)
                continue
            evict(sid)
        for entry in skipped:
            heappush(heap, entry)

    following: dict[int, int] = {}  # storage -> its next event after its latest one
    for i in range(n):
        lo, hi = bounds[i], bounds[i + 1]
        for j in range(lo, hi):  # a gap closes here: was it resident throughout?
            sid = event_storage[j]
            if closes[j] >= 0:
                kept_at.append(closes[j])
                kept_value.append(sid not in off_since)
            off_since.discard(sid)
            following[sid] = nu = after[j]
            if sid in resident:  # its next use moved on
                upcoming[sid] = nu
                heappush(heap, (-nu, arrival[sid], sid))
        if pinned_keep:
            for sid in pin_on.get(i, ()):
                if sid not in pinned_now:
                    pinned_now.add(sid)
                    pinned_bytes += resident.get(sid, 0)
            for sid in pin_off.get(i, ()):
                if sid in pinned_now:
                    pinned_now.discard(sid)
                    pinned_bytes -= resident.get(sid, 0)
        extra = 0
        if rebuilds:
            for r in rebuilds.get(i, ()):
                fresh = r.storage_id not in resident
                resident[r.storage_id] = size[r.storage_id]
                used += size[r.storage_id]
                if fresh:  # rebuilt before op i, which need not be one of its events
                    arrive(r.storage_id, next_use(r.storage_id, i))
                off_since.discard(r.storage_id)
                extra += sum(size[u] for u in r.sources if u not in resident)
        reads, writes = all_reads[i], all_writes[i]  # each an event of op i
        moves = reads or writes or scores[i] or extra or used > capacity_bytes
        if moves or (pinned_now and pinned_bytes > capacity_bytes):  # else a view: nothing to do
            needed = {*reads, *writes}
            working = sum([size[s] for s in needed]) + scores[i]
            pinned = (  # resident pinned storages the op does not need
                pinned_bytes
                - sum([resident[s] for s in needed if s in pinned_now and s in resident])
                if pinned_now else 0
            )  # fmt: skip
            if working + pinned + extra > capacity_bytes:
                tiled_at.append(i)
                make_room(i, {s for s in reads if s in resident}, capacity_bytes - extra)
            else:
                for sid in reads:
                    if sid not in resident:
                        resident[sid] = size[sid]
                        used += size[sid]
                        arrive(sid, following[sid])
                for sid in writes:
                    fresh = sid not in resident
                    resident[sid] = size[sid]
                    used += size[sid]
                    if fresh:
                        arrive(sid, following[sid])
                make_room(i, needed, capacity_bytes - scores[i] - extra)
        if drops:
            for sid in drops.get(i, ()):
                if sid in resident:
                    evict(sid)
        for j in range(lo, hi):
            sid = event_storage[j]
            if is_last[j]:
                if sid in resident:
                    leave(sid)
            elif sid not in resident:
                off_since.add(sid)
    kept = np.zeros(work.n_gaps, dtype=bool)
    kept[np.array(kept_at, dtype=np.int64)] = np.array(kept_value, dtype=bool)
    tiled = np.zeros(n, dtype=bool)
    tiled[np.array(tiled_at, dtype=np.int64)] = True
    for g in keep_gaps:
        kept[g] = True
    for r in recompute:
        kept[r.gap] = False
    return Schedule(capacity_bytes, kept, tiled, tuple(recompute))
