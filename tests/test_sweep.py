"""Design-space sweeps: points equal `simulate`, the store resumes after a kill, local and
Ray runs store the same rows, Pareto fronts equal brute force, bad space files fail in one
line."""

from __future__ import annotations

import itertools
import json
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from edgewise.cli.main import app
from edgewise.errors import EdgewiseError

SPACE = """
models: [{{file: {graph}}}]
hardware: generic-npu
precision: [int8, w4a8]
spec:
  sram_bytes: [64KiB, 4MiB, log, 6]
  dram_bandwidth_bytes_per_s: [8GB/s, 136GB/s, 4]
  mac_array.rows: {{values: [16, 64]}}
{extra}
"""


@pytest.fixture(scope="module")
def graph(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sweep") / "unet.json"
    out = CliRunner().invoke(app, ["capture", "--module", "tests.models:tiny_unet", "-o",
                                   str(path)])  # fmt: skip
    assert out.exit_code == 0, out.output
    return path


def _space(tmp_path: Path, graph: Path, extra: str = "", name: str = "space.yaml") -> Path:
    path = tmp_path / name
    path.write_text(SPACE.format(graph=graph, extra=extra))
    return path


def _rows(store: Path) -> list[tuple]:  # type: ignore[type-arg]
    import duckdb

    con = duckdb.connect(str(store), read_only=True)
    try:
        return con.execute("SELECT * FROM points ORDER BY point_id").fetchall()
    finally:
        con.close()


def _query(store: Path, sql: str) -> list[dict]:  # type: ignore[type-arg]
    out = CliRunner().invoke(app, ["sweep", "query", str(store), sql, "--json", "-"])
    assert out.exit_code == 0, out.output
    return json.loads(out.stdout)  # type: ignore[no-any-return]


def test_points_equal_simulate_one_by_one() -> None:
    """A random sample of points (SRAM, bandwidth, clock, array shape, power): every total
    `evaluate_points` gives is `simulate`'s on `spec_at` the point, exactly."""
    from edgewise.capture.source import graph_from_module
    from edgewise.hardware.spec import load_spec
    from edgewise.simulate.batch import evaluate_points, spec_at
    from edgewise.simulate.simulator import simulate
    from edgewise.simulate.workload import op_workload

    work = op_workload(graph_from_module("tests.models:tiny_unet"), "int8", "int8")
    base = load_spec("generic-npu")
    rng = np.random.default_rng(1)
    n = 40
    cols = {
        "sram_bytes": rng.choice([64 * 1024, 96 * 1024, 256 * 1024, 2**20], n).astype(float),
        "dram_bandwidth_bytes_per_s": rng.uniform(8e9, 136e9, n),
        "clock_hz": rng.uniform(0.5e9, 2e9, n),
        "mac_array.rows": rng.choice([16, 32, 64], n).astype(float),
        "mac_array.cols": rng.choice([16, 32, 128], n).astype(float),
        "static_power_w": rng.uniform(0.1, 2, n),
        "dram_energy_pj_per_byte": rng.uniform(5, 40, n),
    }
    out = evaluate_points(work, base, "int8", cols)
    for i in range(n):
        t = simulate(work, spec_at(base, {k: v[i] for k, v in cols.items()}), "int8").totals
        for name in ("latency_s", "energy_j", "dram_bytes", "peak_sram_bytes", "floor_s",
                     "mac_utilization", "dram_energy_j", "static_energy_j"):  # fmt: skip
            assert out[name][i] == pytest.approx(getattr(t, name), rel=1e-12, abs=0), (i, name)
        assert out["feasible"][i] == t.feasible


def test_a_killed_sweep_resumes_with_every_point_once(graph: Path, tmp_path: Path) -> None:
    """Killed (SIGKILL) after a few stored batches, then rerun: every point exactly once,
    and the rows are those of an uninterrupted run."""
    space = _space(tmp_path, graph)
    store = tmp_path / "s.duckdb"
    cmd = [sys.executable, "-m", "edgewise.cli.main", "sweep", str(space), "-o", str(store),
           "--workers", "1", "--batch-points", "4", "--verbose"]  # fmt: skip
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    assert proc.stderr is not None
    stored = 0
    for line in proc.stderr:
        stored += line.startswith("batch ")
        if stored == 3:
            proc.send_signal(signal.SIGKILL)
            break
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the sweep ended before it was killed"
    partial = _rows(store)
    assert 12 <= len(partial) < 96  # the three stored batches, perhaps one more
    out = CliRunner().invoke(app, ["sweep", str(space), "-o", str(store), "--workers", "1"])
    assert out.exit_code == 0, out.output
    rows = _rows(store)
    ids = [r[0] for r in rows]
    assert len(rows) == 2 * 6 * 4 * 2 and len(set(ids)) == len(ids)
    clean = tmp_path / "clean.duckdb"
    CliRunner().invoke(app, ["sweep", str(space), "-o", str(clean), "--workers", "1"])
    assert _rows(clean) == rows
    again = CliRunner().invoke(app, ["sweep", str(space), "-o", str(store)])
    assert f"{len(rows)} already stored, 0 evaluated" in again.output


def test_local_pool_and_ray_store_the_same_rows(graph: Path, tmp_path: Path) -> None:
    """A local Ray instance (2 CPUs, started here) and the local process pool: the same
    table, row for row."""
    ray = pytest.importorskip("ray")
    space = _space(tmp_path, graph, "sampling: {method: lhs, points: 40, seed: 3}")
    local, remote = tmp_path / "local.duckdb", tmp_path / "ray.duckdb"
    out = CliRunner().invoke(app, ["sweep", str(space), "-o", str(local), "--workers", "2",
                                   "--batch-points", "16"])  # fmt: skip
    assert out.exit_code == 0 and "process pool" in out.output, out.output
    ray.init(num_cpus=2, include_dashboard=False, logging_level=40, log_to_driver=False)
    try:
        out = CliRunner().invoke(app, ["sweep", str(space), "-o", str(remote), "--ray", "auto",
                                       "--batch-points", "16"])  # fmt: skip
    finally:
        ray.shutdown()
    assert out.exit_code == 0 and "ray" in out.output, out.output
    assert _rows(local) == _rows(remote) and len(_rows(local)) == 2 * 40


def _brute_front(values: np.ndarray) -> np.ndarray:
    n = len(values)
    keep = np.ones(n, dtype=bool)
    for i, j in itertools.product(range(n), range(n)):
        if np.all(values[j] <= values[i]) and np.any(values[j] < values[i]):
            keep[i] = False
    return keep


@pytest.mark.parametrize("k", [1, 2, 3])
def test_pareto_equals_brute_force(k: int) -> None:
    """Random points with many ties (small integers), 1 to 3 objectives."""
    from edgewise.sweep.pareto import pareto_mask

    rng = np.random.default_rng(k)
    for _ in range(30):
        values = rng.integers(0, 6, size=(int(rng.integers(1, 60)), k)).astype(float)
        assert np.array_equal(pareto_mask(values), _brute_front(values))


def test_pareto_front_and_queries_on_a_store(graph: Path, tmp_path: Path) -> None:
    space = _space(tmp_path, graph, "area: {sram_mm2_per_mib: {value: 0.176, source: a}, "
                   "mac_mm2: {value: 0.0001, source: b}}")  # fmt: skip
    store = tmp_path / "s.duckdb"
    assert CliRunner().invoke(app, ["sweep", str(space), "-o", str(store)]).exit_code == 0
    chart, page = tmp_path / "front.svg", tmp_path / "front.html"
    out = CliRunner().invoke(app, ["sweep", "pareto", str(store), "--minimize",
                                   "latency_s,area_mm2", "--json", "-", "--plot", str(chart),
                                   "--html", str(page)])  # fmt: skip
    assert out.exit_code == 0, out.output
    front = json.loads(out.stdout)["front"]
    assert chart.read_text().startswith("<?xml") and "Pareto front" in page.read_text()
    rows = _query(store, "SELECT * FROM points WHERE feasible")
    values = np.array([[r["latency_s"], r["area_mm2"]] for r in rows])
    expected = {rows[i]["point_id"] for i in np.flatnonzero(_brute_front(values))}
    assert {r["point_id"] for r in front} == expected
    from edgewise.hardware.spec import load_spec

    cols, r = load_spec("generic-npu").mac_array.cols, rows[0]
    assert r["area_mm2"] == pytest.approx(r["sram_bytes"] / 2**20 * 0.176
                                          + r["mac_array_rows"] * cols * 0.0001)  # fmt: skip
    parquet = tmp_path / "s.parquet"
    assert CliRunner().invoke(app, ["sweep", "export", str(store), str(parquet)]).exit_code == 0
    import pyarrow.parquet as pq

    assert pq.read_table(parquet).num_rows == len(_rows(store))


def test_a_planned_sweep_is_never_worse_than_the_default(graph: Path, tmp_path: Path) -> None:
    """Every point planned; points differing only in static power share one plan (its
    decisions do not depend on it), each costed on its own spec: the figure `make_plan`
    gives that point itself."""
    from edgewise.hardware.spec import load_spec
    from edgewise.plan.planner import make_plan
    from edgewise.simulate.batch import spec_at

    space = _space(tmp_path, graph, "  static_power_w: {values: [0.1, 2]}\n"
                   "plan: {objective: latency}").read_text()  # fmt: skip
    space = space.replace("[64KiB, 4MiB, log, 6]", "[64KiB, 256KiB, log, 2]")
    space = space.replace("[8GB/s, 136GB/s, 4]", "[8GB/s, 136GB/s, 2]")
    path = tmp_path / "planned.yaml"
    path.write_text(space.replace("precision: [int8, w4a8]", "precision: [int8]"))
    store = tmp_path / "p.duckdb"
    out = CliRunner().invoke(app, ["sweep", str(path), "-o", str(store), "--workers", "1"])
    assert out.exit_code == 0, out.output
    rows = _query(store, "SELECT * FROM points ORDER BY sram_bytes, dram_bandwidth_bytes_per_s, "
                  "mac_array_rows, static_power_w")  # fmt: skip
    assert len(rows) == 16
    for r in rows:
        assert r["plan_status"] in ("optimal", "nothing-to-plan"), r["plan_status"]
        assert r["plan_latency_s"] <= r["latency_s"] * (1 + 1e-9)
    for low, high in zip(rows[::2], rows[1::2], strict=True):
        assert low["plan_latency_s"] == high["plan_latency_s"]
        assert low["plan_summary"] == high["plan_summary"]
        assert low["plan_energy_j"] < high["plan_energy_j"]
    r = rows[-1]  # a point whose plan was shared: planned on its own it costs the same
    spec = spec_at(load_spec("generic-npu"), {"sram_bytes": r["sram_bytes"],
                   "dram_bandwidth_bytes_per_s": r["dram_bandwidth_bytes_per_s"],
                   "mac_array.rows": r["mac_array_rows"], "static_power_w": 2.0})  # fmt: skip
    from edgewise.capture.source import graph_from_source

    alone = make_plan(graph_from_source(str(graph)), spec, "int8", "int8", "int8")
    totals = alone.simulations["plan"].totals
    assert r["plan_latency_s"] == pytest.approx(totals.latency_s, rel=1e-12)
    assert r["plan_energy_j"] == pytest.approx(totals.energy_j, rel=1e-12)


@pytest.mark.parametrize(
    ("spec", "says"),
    [
        ("spec: {sram_byte: [1MiB, 2MiB, 2]}", "cannot sweep 'sram_byte'"),
        ("spec: {sram_bytes: [2MiB, 1MiB, 2]}", "LOW must not exceed HIGH"),
        ("spec: {sram_bytes: [0, 1MiB, log, 2]}", "log axis needs LOW > 0"),
        ("spec: {sram_bytes: [1MiB, 2MiB, 2.5]}", "whole number"),
        ("spec: {sram_bytes: [1MiB, 2MiB, lin, 2]}", "expected [LOW, HIGH, N]"),
        ("spec: {sram_bytes: [1Mib, 2MiB, 2]}", "unknown unit 'Mib'"),
        ("spec: {sram_bytes: [1MiB, 2MiB, 2]}\nsampling: {method: random}", "needs 'points"),
        ("spec: {sram_bytes: [1MiB, 2MiB, 2]}\nsampling: {method: grid, points: 5}", "grid"),
        ("spec: {sram_bytes: [1MiB, 2MiB, 2]}\nsampling: {method: sobol}", "sampling.method"),
        ("spec: {sram_bytes: [1MiB, 2MiB, 2]}\nprecision: [int3]", "int3"),
    ],
)
def test_bad_space_files_fail_in_one_line(tmp_path: Path, spec: str, says: str) -> None:
    from tests.test_hostile import refused

    path = tmp_path / "bad.yaml"
    path.write_text(f"models: [resnet18]\n{spec}\n")
    refused("sweep", str(path), "-o", str(tmp_path / "s.duckdb"), needle=says)
    assert not (tmp_path / "s.duckdb").exists()


def test_a_store_of_another_space_is_refused(graph: Path, tmp_path: Path) -> None:
    store = tmp_path / "s.duckdb"
    assert CliRunner().invoke(app, ["sweep", str(_space(tmp_path, graph)), "-o",
                                    str(store)]).exit_code == 0  # fmt: skip
    other = _space(tmp_path, graph, "", "other.yaml")
    other.write_text(other.read_text().replace("mac_array.rows", "mac_array.cols"))
    out = CliRunner().invoke(app, ["sweep", str(other), "-o", str(store)])
    assert isinstance(out.exception, EdgewiseError) and "another space" in str(out.exception)


def test_a_pipeline_point_is_one_run_simulated(tmp_path: Path) -> None:
    """A pipeline in the space: each point's figures are `simulate_pipeline`'s per image
    on the point's spec (first call + later calls, phases added)."""
    from edgewise.capture.pipelines import PipelineOptions, capture_pipeline
    from edgewise.hardware.spec import load_spec
    from edgewise.simulate.batch import spec_at
    from edgewise.simulate.pipeline import simulate_pipeline

    path = tmp_path / "pipe.yaml"
    path.write_text("models: [{pipeline: sd15, steps: 2, cfg: true}]\nhardware: "
                    "snapdragon-8gen3\nspec:\n  sram_bytes: {values: [4MiB, 64MiB]}\n")  # fmt: skip
    store = tmp_path / "p.duckdb"
    out = CliRunner().invoke(app, ["sweep", str(path), "-o", str(store), "--workers", "1"])
    assert out.exit_code == 0, out.output
    rows = _query(store, "SELECT * FROM points ORDER BY sram_bytes")
    pipe = capture_pipeline("sd15", PipelineOptions(steps=2, cfg=True))
    base = load_spec("snapdragon-8gen3")
    for r in rows:
        spec = spec_at(base, {"sram_bytes": r["sram_bytes"]})
        t = simulate_pipeline(pipe, spec, "int8", "int8", "int8").totals
        for name in ("latency_s", "energy_j", "dram_bytes", "peak_sram_bytes", "floor_s"):
            assert r[name] == pytest.approx(getattr(t, name), rel=1e-9), name
    bad = tmp_path / "bad.yaml"
    bad.write_text(path.read_text() + "plan: {objective: latency}\n")
    out = CliRunner().invoke(app, ["sweep", str(bad), "-o", str(tmp_path / "b.duckdb")])
    assert isinstance(out.exception, EdgewiseError) and "plans single graphs" in str(out.exception)
