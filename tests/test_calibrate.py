"""`edgewise calibrate` and `edgewise validate`: the host spec, user specs, the profiled run."""

from __future__ import annotations

import datetime
import json
import os
import statistics
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
import yaml
from torch import nn
from typer.testing import CliRunner

from edgewise.capture.torch_capture import capture
from edgewise.cli.main import app
from edgewise.errors import EdgewiseError
from edgewise.execute.calibrate import (
    HostMeasurements,
    Probe,
    cache_size,
    host_spec,
    representative_rate,
    simd_lanes_fp32,
)
from edgewise.execute.validate import LABEL, _exclusive_times, compare, measure_scopes
from edgewise.hardware.spec import load_spec, spec_from_dict, user_spec_dir
from edgewise.simulate.simulator import simulate
from edgewise.simulate.workload import op_workload

ROOT = Path(__file__).resolve().parents[1]
runner = CliRunner()


@pytest.fixture(scope="module")
def calibrated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A `--quick` calibration into a private XDG_CONFIG_HOME, shared by the module."""
    config = tmp_path_factory.mktemp("xdg")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("XDG_CONFIG_HOME", str(config))
        result = runner.invoke(app, ["calibrate", "--quick"])
        assert result.exit_code == 0, result.output
        yield config


@pytest.fixture
def host(calibrated: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(calibrated))
    return calibrated


def test_quick_calibration_writes_a_host_spec_that_loads(host: Path) -> None:
    path = host / "edgewise" / "hardware" / "host.yaml"
    assert path.is_file() and user_spec_dir() == path.parent
    spec = load_spec("host")
    assert spec.name == "host"
    peak = spec.peak_macs_per_s("fp32")
    assert 1e8 < peak < 1e13  # fp32 MAC/s of any CPU from a phone's to a big server's
    assert spec.macs_per_cycle["fp32"] == round(peak / 1e9) or peak < 1e9  # ~1 GHz nominal
    assert 1e7 < spec.vector_ops_per_cycle * spec.clock_hz < 1e13
    assert 1e8 < spec.dram_bandwidth_bytes_per_s < 1e13
    assert spec.sram_bandwidth_bytes_per_s > 0 and spec.sram_bytes == cache_size()[0]
    assert 2**28 < spec.dram_bytes < 2**44
    assert (spec.mac_array.rows, spec.mac_array.cols) in ((1, 4), (1, 8), (1, 16))
    today = datetime.date.today().isoformat()
    for field in ("macs_per_cycle", "vector_ops_per_cycle", "sram_bandwidth_bytes_per_s",
                  "dram_bandwidth_bytes_per_s"):  # fmt: skip
        assert spec.sources[field].startswith(f"measured by edgewise calibrate on {today}: ")
    for field in ("energy_pj_per_mac", "vector_energy_pj_per_op", "sram_energy_pj_per_byte",
                  "dram_energy_pj_per_byte", "static_power_w"):  # fmt: skip
        assert spec.sources[field].startswith("assumption: not measured on a CPU")
    # the file is the spec: a rerun of validation reads back exactly what was written
    assert spec_from_dict(yaml.safe_load(path.read_text())) == spec


def _probe(what: str, rate: float) -> Probe:
    return Probe(what, work=rate * 0.5, seconds=0.5, runs=3)


def test_host_spec_maps_measurements_by_hand() -> None:
    m = HostMeasurements(
        date="2030-01-02", cpu="Test CPU", threads=4, torch_version="x",
        simd_lanes_fp32=16,
        gemm=(_probe("mm a", 90e9), _probe("mm b", 60e9)),
        conv=(_probe("conv", 100e9),),
        attention=(_probe("sdpa", 30e9),),
        vector=(_probe("add", 10e9), _probe("silu", 20e9), _probe("norm", 40e9)),
        cache_copy=_probe("copy small", 200e9), dram_copy=_probe("copy big", 30e9),
        cache_bytes=32 * 2**20, cache_source="test", ram_bytes=16 * 2**30, quick=False,
    )  # fmt: skip
    raw = host_spec(m)
    spec = spec_from_dict(raw, "host")
    # MAC rate: median of 30, 60, 90, 100 G = 75 G; 75 MACs per cycle at exactly 1 GHz
    assert spec.macs_per_cycle == {"fp32": 75}
    assert spec.clock_hz == pytest.approx(1e9)
    assert spec.vector_ops_per_cycle * spec.clock_hz == pytest.approx(20e9)  # median
    assert spec.mac_array.rows == 1 and spec.mac_array.cols == 16
    assert spec.sram_bytes == 32 * 2**20 and spec.dram_bytes == 16 * 2**30
    assert spec.sram_bandwidth_bytes_per_s == pytest.approx(200e9)
    assert spec.dram_bandwidth_bytes_per_s == pytest.approx(30e9)
    assert spec.static_power_w == pytest.approx(2.5 * 4)
    assert "2030-01-02" in spec.sources["macs_per_cycle"]
    # a rate that is no whole number of G: the clock absorbs the rest, the product is exact
    odd = replace(m, gemm=(_probe("mm", 72.4e9),), conv=(), attention=())
    spec = spec_from_dict(host_spec(odd), "host")
    assert spec.peak_macs_per_s("fp32") == pytest.approx(72.4e9)
    assert spec.macs_per_cycle == {"fp32": 72}


def test_self_checks_reject_an_inconsistent_measurement() -> None:
    """The issue's --quick spec: cache bandwidth 1.22 GB/s below RAM's 16.8 GB/s, add at
    8.2 Mop/s. Both are named; a consistent measurement passes."""
    from edgewise.execute.calibrate import check_measurements

    good = HostMeasurements(
        date="2030-01-02", cpu="Test CPU", threads=4, torch_version="x", simd_lanes_fp32=16,
        gemm=(_probe("mm a", 90e9),), conv=(), attention=(),
        vector=(_probe("add", 10e9),), cache_copy=_probe("copy small", 200e9),
        dram_copy=_probe("copy big", 30e9), cache_bytes=32 * 2**20, cache_source="test",
        ram_bytes=16 * 2**30, quick=True,
    )  # fmt: skip
    assert check_measurements(good) == []
    bad = replace(good, cache_copy=_probe("copy small", 1.22e9),
                  dram_copy=_probe("copy big", 16.8e9), vector=(_probe("add", 8.2e6),))  # fmt: skip
    problems = check_measurements(bad)
    assert len(problems) == 2
    assert "cache bandwidth 1.22 GB/s is below RAM bandwidth 16.8 GB/s" in problems[0]
    assert problems[1].startswith("add at 8.2 Mop/s is below 100 Mop/s")


def test_rate_and_lanes_rules() -> None:
    rates = [10.0, 20.0, 1000.0]
    assert representative_rate([_probe(str(r), r) for r in rates]) == 20.0
    assert simd_lanes_fp32({"avx512f", "avx2"}) == 16
    assert simd_lanes_fp32({"avx", "sse2"}) == 8
    assert simd_lanes_fp32({"asimd"}) == 4


def test_exclusive_time_by_hand() -> None:
    """root [0, 100] holds op [5, 15] and child a [20, 70]; a holds op [25, 35] and its
    own child b [40, 60]; b holds two ops. Exclusive: root 100 - 50, a 50 - 20, b 20."""

    def event(name: str, start: float, end: float, *children: SimpleNamespace) -> SimpleNamespace:
        return SimpleNamespace(name=name, time_range=SimpleNamespace(start=start, end=end),
                               cpu_children=list(children))  # fmt: skip

    b = event(LABEL + "a.b", 40, 60, event("aten::mm", 41, 50), event("aten::add", 51, 59))
    a = event(LABEL + "a", 20, 70, event("aten::relu", 25, 35), b)
    root = event(LABEL, 0, 100, event("aten::flatten", 5, 15, event("aten::view", 6, 7)), a)
    times = _exclusive_times([root, a, b])
    assert times[""] == pytest.approx((50e-6, 10e-6, 1))
    assert times["a"] == pytest.approx((30e-6, 10e-6, 1))
    assert times["a.b"] == pytest.approx((20e-6, 17e-6, 2))
    assert sum(t[0] for t in times.values()) == pytest.approx(100e-6)  # adds to the root


def test_scopes_match_capture_and_add_up() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(64, 256), nn.ReLU(), nn.Linear(256, 64)).eval()
    measured = measure_scopes(model, (torch.randn(32, 64),), {}, repeat=3)
    by_name = {s.name: s for s in measured.scopes}
    assert set(by_name) == {"", "0", "1", "2"}  # the names capture gives the same modules
    assert by_name["0"].op_count == 1 and by_name["1"].op_count == 1  # aten::linear, relu
    assert all(s.measured_s >= s.kernel_s > 0 for s in measured.scopes if s.name)
    assert measured.runs == 3 and len(measured.run_s) == 3
    # one run: its scopes' exclusive times lie inside the root label, which spans the
    # forward (bounds loose enough for a loaded machine: this is no timing test)
    single = measure_scopes(model, (torch.randn(32, 64),), {}, repeat=1)
    inside = sum(s.measured_s for s in single.scopes)
    assert 0.3 * single.profiled_s <= inside <= 1.05 * single.profiled_s
    # layers and blocks group the same times: depth 0 puts the whole model in one block
    graph = capture(model, torch.randn(32, 64))
    spec = load_spec("jetson-orin-nano")  # any spec with fp32 MACs
    sim = simulate(op_workload(graph, "fp32", "fp32"), spec, "fp32")
    peak = spec.peak_macs_per_s("fp32")
    layers = compare(graph, sim, measured, peak, by="layer")
    assert [r.name for r in layers.rows] == ["0", "1", "2", ""]  # graph order, then the rest
    assert [r.op_count > 0 for r in layers.rows] == [True, True, True, False]
    assert sum(r.predicted_s for r in layers.rows) == pytest.approx(sim.totals.latency_s)
    (whole,) = compare(graph, sim, measured, peak, by="block", depth=0).rows
    assert whole.predicted_s == pytest.approx(sim.totals.latency_s)
    assert whole.measured_s == pytest.approx(sum(r.measured_s for r in layers.rows))


def test_validate_tiny_cnn_on_host(host: Path, tmp_path: Path) -> None:
    out = tmp_path / "v.json"
    result = runner.invoke(app, ["validate", "--module", "tests.models:tiny_cnn", "--hw", "host",
                                 "--repeat", "1", "--json", str(out)])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "median |error| per layer" in result.output and "total" in result.output
    data = json.loads(out.read_text())
    assert {"totals", "median_abs_layer_error", "rows"} <= set(data)
    totals = data["totals"]
    assert totals["predicted_s"] > 0 and totals["measured_s"] > 0
    assert totals["error"] == pytest.approx(
        (totals["predicted_s"] - totals["measured_s"]) / totals["measured_s"]
    )
    rows = {r["name"]: r for r in data["rows"]}
    assert {"stem", "bn", "act", "body", "pool", "head"} <= set(rows)
    for name in ("stem", "body", "head"):  # layers with MACs: both sides present
        assert rows[name]["predicted_s"] > 0 and rows[name]["measured_s"] > 0
    measured = sum(r["measured_s"] for r in data["rows"])  # one run: inside its forward
    assert 0.3 * totals["profiled_s"] <= measured <= 1.05 * totals["profiled_s"]
    predicted = sum(r["predicted_s"] for r in data["rows"])
    assert predicted == pytest.approx(totals["predicted_s"])
    errors = [abs(r["error"]) for r in data["rows"]
              if r["measured_s"] >= 0.001 * totals["profiled_s"]]  # fmt: skip
    assert data["median_abs_layer_error"] == pytest.approx(statistics.median(errors))
    # blocks at depth 1 regroup the same layers: the same measured time in fewer rows
    result = runner.invoke(app, ["validate", "--module", "tests.models:tiny_cnn", "--hw", "host",
                                 "--repeat", "2", "--by", "block", "--depth", "1",
                                 "--json", "-"])  # fmt: skip
    assert result.exit_code == 0, result.output
    blocks = json.loads(result.stdout)
    assert blocks["by"] == "block" and len(blocks["rows"]) <= len(data["rows"])


def test_user_specs_load_by_name_and_are_listed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                                ) -> None:  # fmt: skip
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    folder = tmp_path / "edgewise" / "hardware"
    folder.mkdir(parents=True)
    with pytest.raises(EdgewiseError, match=r"run `edgewise calibrate`.*user specs in .*: none"):
        load_spec("host")
    raw = yaml.safe_load((ROOT / "src/edgewise/hardware/presets/generic-npu.yaml").read_text())
    (folder / "my-npu.yaml").write_text(yaml.safe_dump({**raw, "name": "my-npu"}))
    assert load_spec("my-npu", ["sram_bytes=1MiB"]).sram_bytes == 2**20
    with pytest.raises(EdgewiseError, match=r"did you mean 'my-npu'\?.*user specs in .*: my-npu"):
        load_spec("my-npux")


def _cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "edgewise.cli.main", *args], capture_output=True,
                          text=True, cwd=ROOT, timeout=300, env={**os.environ, **env})  # fmt: skip


def test_bad_input_is_one_line(tmp_path: Path) -> None:
    env = {"XDG_CONFIG_HOME": str(tmp_path)}
    done = _cli("validate", "--module", "tests.models:tiny_cnn", "--hw", "host", env=env)
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(lines) == 1, done.stderr
    assert "no calibration of this machine: run `edgewise calibrate`" in lines[0]
    graph = tmp_path / "g.json"
    assert _cli("capture", "--module", "tests.models:tiny_cnn", "-o", str(graph), env=env
                ).returncode == 0  # fmt: skip
    done = _cli("validate", str(graph), "--hw", "generic-npu", env=env)
    assert done.returncode == 2 and "saved graph" in done.stderr
    done = _cli("validate", "resnet50", "--hw", "generic-npu", env=env)  # int8 only: no fp32
    assert done.returncode == 2 and "no fp32 MACs" in done.stderr
