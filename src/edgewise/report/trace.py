"""The simulated schedule as a Trace Event Format file (Perfetto, chrome://tracing).

The simulator runs ops one after another: op i starts when op i - 1 ends, at the sum of
the latencies before it. Within an op each resource is busy for the time the simulator
charges it, from the op's start (the MAC array first, the vector unit after it: compute is
their sum; DRAM reads first, writes after them: the op's DRAM time split by bytes):

- track "ops": one complete event per op, its latency (name = layer scope; args = MACs,
  vector ops, DRAM and SRAM bytes, the bound, whether tiled);
- "MAC array", "vector unit": `mac_s`, `vector_s` per op;
- "DRAM reads", "DRAM writes": the op's `dram_s` split in proportion to its bytes; writes
  are spills, model outputs and half of the tiled streams (written once, read back once),
  reads the rest (weights, refills, inputs, the other half);
- counters "SRAM occupancy" (bytes held while the op runs) and "DRAM bandwidth" (the op's
  DRAM bytes over its latency, GB/s);
- instant events where a storage spills and where a recomputation lands.

So each track's busy time is the simulator's sum of that resource's time over ops.
Times are microseconds, as the format requires (`displayTimeUnit` only changes the view).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from edgewise.ir.graph import Graph
from edgewise.simulate.cost import BOUNDS
from edgewise.simulate.simulator import Simulation

PID = 1
TRACKS = ("ops", "MAC array", "vector unit", "DRAM reads", "DRAM writes")
US = 1e6  # microseconds per second


def trace_events(graph: Graph, sim: Simulation, title: str = "") -> dict[str, Any]:
    """The trace of one simulated forward (see the module docstring)."""
    latency = sim.latency_s
    start = np.concatenate([[0.0], np.cumsum(latency)[:-1]]) * US
    t = sim.traffic
    writes = t.spill_bytes + t.output_bytes + t.stream_bytes / 2
    dram = sim.dram_bytes.astype(np.float64)
    write_share = np.divide(writes, dram, out=np.zeros_like(dram), where=dram > 0)
    write_share = np.clip(write_share, 0.0, 1.0)
    write_us = sim.dram_s * write_share * US
    read_us = sim.dram_s * US - write_us
    mac_us, vector_us = sim.mac_s * US, sim.vector_s * US
    tiled = sim.schedule.tiled
    events: list[dict[str, Any]] = [
        {"ph": "M", "pid": PID, "name": "process_name",
         "args": {"name": title or f"{graph.model} on {sim.spec_name}"}},
    ]  # fmt: skip
    for tid, name in enumerate(TRACKS, start=1):
        events.append({"ph": "M", "pid": PID, "tid": tid, "name": "thread_name",
                       "args": {"name": name}})  # fmt: skip
        events.append({"ph": "M", "pid": PID, "tid": tid, "name": "thread_sort_index",
                       "args": {"sort_index": tid}})  # fmt: skip

    def span(tid: int, ts: float, dur: float, name: str, args: dict[str, Any]) -> None:
        events.append({"ph": "X", "pid": PID, "tid": tid, "ts": ts, "dur": dur, "name": name,
                       "cat": TRACKS[tid - 1], "args": args})  # fmt: skip

    for op in graph.ops:
        i = op.index
        s = float(start[i])
        name = op.scope or op.target
        if latency[i] > 0:
            span(1, s, float(latency[i] * US), name, {
                "op": i, "target": op.target, "macs": int(sim.work.macs[i]),
                "vector_ops": int(sim.work.vector_ops[i]), "dram_bytes": int(sim.dram_bytes[i]),
                "sram_bytes": int(sim.sram_bytes[i]), "bound": BOUNDS[int(sim.bound[i])],
                "tiled": bool(tiled[i]),
            })  # fmt: skip
        if mac_us[i] > 0:
            span(2, s, float(mac_us[i]), name, {"op": i, "macs": int(sim.work.macs[i])})
        if vector_us[i] > 0:
            span(3, s + float(mac_us[i]), float(vector_us[i]), name,
                 {"op": i, "vector_ops": int(sim.work.vector_ops[i])})  # fmt: skip
        if read_us[i] > 0:
            span(4, s, float(read_us[i]), name,
                 {"op": i, "bytes": round(float(dram[i] - writes[i]))})  # fmt: skip
        if write_us[i] > 0:
            span(5, s + float(read_us[i]), float(write_us[i]), name,
                 {"op": i, "bytes": round(float(writes[i]))})  # fmt: skip
        if t.spill_bytes[i] > 0:
            events.append({"ph": "i", "pid": PID, "tid": 5, "ts": s, "s": "t", "name": "spill",
                           "args": {"op": i, "bytes": int(t.spill_bytes[i])}})  # fmt: skip
        bandwidth = dram[i] / latency[i] / 1e9 if latency[i] > 0 else 0.0
        events.append({"ph": "C", "pid": PID, "ts": s, "name": "SRAM occupancy",
                       "args": {"bytes": int(t.occupancy_bytes[i])}})  # fmt: skip
        events.append({"ph": "C", "pid": PID, "ts": s, "name": "DRAM bandwidth",
                       "args": {"GB/s": float(bandwidth)}})  # fmt: skip
    for r in sim.schedule.recompute:
        events.append({"ph": "i", "pid": PID, "tid": 1, "ts": float(start[r.at]), "s": "t",
                       "name": "recompute", "args": {"storage": r.storage_id, "op": r.at,
                                                     "ops_rerun": len(r.segment)}})  # fmt: skip
    return {
        "traceEvents": events,
        "displayTimeUnit": "ms",
        "otherData": {
            "model": graph.model,
            "hardware": sim.spec_name,
            "precision": sim.precision,
            "latency_s": sim.totals.latency_s,
            "generator": "edgewise",
        },
    }
