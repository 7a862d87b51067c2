"""Reports: the Perfetto trace, the HTML report (in a real browser), compare, the charts,
and user strings escaped wherever they are rendered."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from edgewise.cli.main import app
from edgewise.errors import EdgewiseError

UNET = ["--module", "tests.models:tiny_unet"]
SMALL_SRAM = ["--hw", "generic-npu", "--set", "sram_bytes=96KiB"]


def _invoke(*args: str) -> str:
    out = CliRunner().invoke(app, list(args))
    assert out.exit_code == 0, (out.output, out.exception)
    return out.stdout


def _check_trace(path: Path) -> dict:  # type: ignore[type-arg]
    """The Trace Event Format's rules: required fields by phase, microsecond numbers,
    per track complete events in time order and never overlapping."""
    data = json.loads(path.read_text())
    assert set(data) >= {"traceEvents", "displayTimeUnit"}
    spans: dict[int, list[tuple[float, float]]] = {}
    for e in data["traceEvents"]:
        assert {"ph", "pid", "name"} <= set(e), e
        assert e["ph"] in ("X", "M", "C", "i"), e
        if e["ph"] != "M":
            assert isinstance(e["ts"], int | float) and e["ts"] >= 0, e
        if e["ph"] == "X":
            assert isinstance(e["dur"], int | float) and e["dur"] > 0 and "tid" in e, e
            spans.setdefault(e["tid"], []).append((e["ts"], e["dur"]))
        if e["ph"] == "C":
            assert all(isinstance(v, int | float) for v in e["args"].values()), e
    for track in spans.values():
        starts = [ts for ts, _ in track]
        assert starts == sorted(starts)
        ends = [ts + dur for ts, dur in track]
        assert all(
            end <= nxt * (1 + 1e-12) + 1e-9 for end, nxt in zip(ends[:-1], starts[1:], strict=True)
        )
    data["busy_us"] = {tid: sum(d for _, d in track) for tid, track in spans.items()}
    return data


def test_the_trace_is_the_simulated_schedule(tmp_path: Path) -> None:
    """Each track's busy time is the simulator's time for that resource, in microseconds;
    the plan's trace marks its spills and recomputations."""
    from edgewise.capture.source import graph_from_module
    from edgewise.hardware.spec import load_spec
    from edgewise.simulate.simulator import simulate
    from edgewise.simulate.workload import op_workload

    trace = tmp_path / "t.json"
    _invoke("simulate", *UNET, *SMALL_SRAM, "--trace", str(trace))
    data = _check_trace(trace)
    graph = graph_from_module("tests.models:tiny_unet")
    spec = load_spec("generic-npu", ["sram_bytes=96KiB"])
    sim = simulate(op_workload(graph, "int8", "int8"), spec, "int8")
    busy = data["busy_us"]
    assert busy[1] == pytest.approx(sim.totals.latency_s * 1e6, rel=1e-9)
    assert busy[2] == pytest.approx(float(sim.mac_s.sum()) * 1e6, rel=1e-9)
    assert busy[3] == pytest.approx(float(sim.vector_s.sum()) * 1e6, rel=1e-9)
    assert busy[4] + busy.get(5, 0.0) == pytest.approx(float(sim.dram_s.sum()) * 1e6, rel=1e-9)
    ops = [e for e in data["traceEvents"] if e["ph"] == "X" and e["tid"] == 1]
    assert len(ops) == int(np.count_nonzero(sim.latency_s))
    assert {"macs", "dram_bytes", "bound"} <= set(ops[0]["args"])
    counters = {e["name"] for e in data["traceEvents"] if e["ph"] == "C"}
    assert counters == {"SRAM occupancy", "DRAM bandwidth"}

    planned = tmp_path / "p.json"
    _invoke("plan", *UNET, *SMALL_SRAM, "--objective", "dram", "--trace", str(planned))
    marks = {e["name"] for e in _check_trace(planned)["traceEvents"] if e["ph"] == "i"}
    assert marks & {"spill", "recompute"}


def test_trace_refuses_a_pipeline() -> None:
    out = CliRunner().invoke(app, ["simulate", "sd15", "--trace", "/tmp/x.json"])
    assert isinstance(out.exception, EdgewiseError)
