"""The simulator against costs computed by hand, monotonic in the spec, and the batch
evaluator equal to the one-spec simulator."""

from __future__ import annotations

import json
from itertools import pairwise

import numpy as np
import pytest
import torch
from torch import nn
from typer.testing import CliRunner

from edgewise import EdgewiseError, capture
from edgewise.cli.main import app
from edgewise.hardware.spec import HardwareSpec, load_spec
from edgewise.simulate.batch import simulate_many
from edgewise.simulate.simulator import BOUNDS, mapping_utilization, simulate
from edgewise.simulate.workload import op_workload
from tests.test_memory import GenUNet

TINY = [
    "clock_hz=1e9",
    "mac_array.rows=8",
    "mac_array.cols=8",
    "macs_per_cycle={int8: 64}",
    "energy_pj_per_mac={int8: 0.5}",
    "vector_ops_per_cycle=8",
    "sram_bytes=1048576",
    "sram_bandwidth_bytes_per_s=1e12",
    "sram_energy_pj_per_byte=1",
    "dram_bytes=1073741824",
    "dram_bandwidth_bytes_per_s=1e12",
    "dram_energy_pj_per_byte=10",
    "vector_energy_pj_per_op=0.25",
    "static_power_w=0.1",
    "overlap_compute_dma=true",
    "weights_resident=false",
]


def tiny(*extra: str) -> HardwareSpec:
    return load_spec("generic-npu", [*TINY, *extra])


def _linear_graph():  # type: ignore[no-untyped-def]
    return capture(nn.Linear(64, 64, bias=False), torch.randn(64, 64))


def test_compute_bound_by_hand() -> None:
    work = op_workload(_linear_graph(), "int8", "int8")
    sim = simulate(work, tiny(), "int8")
    macs = 64 * 64 * 64
    mac_s = macs / (64 * 1e9)  # 64 MACs/cycle at 1 GHz, K = N = 64 fill the 8 x 8 array
    dram = 64 * 64 * 3  # int8 weights streamed, input read once, output written once
    sram = 64 * 64 * 3  # input read, output written, weights read through SRAM
    assert sim.totals.macs == macs
    assert sim.totals.latency_s == pytest.approx(mac_s)
    assert sim.totals.dram_bytes == dram
    assert sim.totals.sram_bytes == sram
    mm = int(np.flatnonzero(work.macs)[0])
    assert BOUNDS[sim.bound[mm]] == "compute"
    energy = macs * 0.5e-12 + sram * 1e-12 + dram * 10e-12 + 0.1 * mac_s
    assert sim.totals.energy_j == pytest.approx(energy)
    assert sim.totals.floor_s == pytest.approx(mac_s)
    assert sim.totals.floor_ratio == pytest.approx(1.0)
    assert sim.totals.mac_utilization == pytest.approx(1.0)


def test_bandwidth_bound_by_hand_with_and_without_overlap() -> None:
    work = op_workload(_linear_graph(), "int8", "int8")
    dram_s = 64 * 64 * 3 / 1e6
    mac_s = 64**3 / 64e9
    overlapped = simulate(work, tiny("dram_bandwidth_bytes_per_s=1e6"), "int8")
    assert overlapped.totals.latency_s == pytest.approx(dram_s)
    assert BOUNDS[overlapped.bound[int(np.flatnonzero(work.macs)[0])]] == "dram"
    assert overlapped.totals.floor_s == pytest.approx(dram_s)  # compulsory bytes / BW
    serial = simulate(
        work, tiny("dram_bandwidth_bytes_per_s=1e6", "overlap_compute_dma=false"), "int8"
    )
    assert serial.totals.latency_s == pytest.approx(dram_s + mac_s)


class Skip(nn.Module):
    """x -> a -> b -> c, out = c + a: `a` must wait three ops for its reader."""

    def __init__(self) -> None:
        super().__init__()
        self.l1 = nn.Linear(64, 32, bias=False)
        self.l2 = nn.Linear(32, 64, bias=False)
        self.l3 = nn.Linear(64, 32, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.l1(x)
        return self.l3(self.l2(a)) + a


def test_spill_by_hand() -> None:
    work = op_workload(capture(Skip(), torch.randn(64, 64)), "int8", "int8")
    # int8 sizes: x 4096, a 2048, b 4096, c 2048, out 2048; weights 3 x 2048
    weights, x, a, out = 3 * 2048, 4096, 2048, 2048
    roomy = simulate(work, tiny(), "int8")
    assert roomy.totals.dram_bytes == weights + x + out
    assert roomy.totals.spilled_bytes == 0
    # 7000 bytes: l3 needs b + c = 6144 beside a (8192 > 7000): a, the furthest next use,
    # is spilled (2048 written) and read back for the add (2048 read)
    tight = simulate(work, tiny("sram_bytes=7000"), "int8")
    assert tight.totals.spilled_bytes == a
    assert tight.totals.dram_bytes == weights + x + out + 2 * a
    assert tight.totals.peak_sram_bytes <= 7000
    # below the largest working set (b + c = 6144 for l3) the op streams through DRAM
    tiled = simulate(work, tiny("sram_bytes=5000"), "int8")
    assert tiled.totals.tiled_ops >= 1


def test_mapping_utilization_pads_to_the_array() -> None:
    util = mapping_utilization(np.array([10, 64, 1]), np.array([10, 64, 8]), 8, 8)
    assert util.tolist() == pytest.approx([(10 / 16) * (10 / 16), 1.0, (1 / 8) * 1.0])


@pytest.fixture(scope="module")
def unet_work():  # type: ignore[no-untyped-def]
    return op_workload(capture(GenUNet(3, ch=8), torch.randn(1, 8, 64, 64)), "int8", "int8")


def _random_specs(seed: int, count: int) -> list[HardwareSpec]:
    rng = np.random.default_rng(seed)
    base = tiny()
    specs = []
    for _ in range(count):
        specs.append(
            base.model_copy(
                update={
                    "sram_bytes": int(rng.integers(8 * 1024, 512 * 1024)),
                    "dram_bandwidth_bytes_per_s": float(10 ** rng.uniform(8, 11)),
                    "sram_bandwidth_bytes_per_s": float(10 ** rng.uniform(10, 12)),
                    "clock_hz": float(10 ** rng.uniform(8, 9.5)),
                    "mac_array": base.mac_array.model_copy(
                        update={"rows": int(rng.integers(4, 64)), "cols": int(rng.integers(4, 64))}
                    ),
                }
            )
        )
    return specs


def test_more_bandwidth_is_never_slower(unet_work) -> None:  # type: ignore[no-untyped-def]
    for spec in _random_specs(0, 25):
        slow = simulate(unet_work, spec, "int8").totals
        fast_spec = spec.model_copy(
            update={"dram_bandwidth_bytes_per_s": spec.dram_bandwidth_bytes_per_s * 2}
        )
        fast = simulate(unet_work, fast_spec, "int8").totals
        assert fast.latency_s <= slow.latency_s * (1 + 1e-12)


def test_more_sram_never_more_dram_traffic(unet_work) -> None:  # type: ignore[no-untyped-def]
    sizes = sorted({int(s) for s in np.geomspace(4 * 1024, 2 * 1024 * 1024, 40)})
    traffic = [
        simulate(unet_work, tiny(f"sram_bytes={s}"), "int8").totals.dram_bytes for s in sizes
    ]
    assert all(later <= earlier for earlier, later in pairwise(traffic))
    assert traffic[0] > traffic[-1]  # the small end really spills


def test_batch_equals_one_by_one(unet_work) -> None:  # type: ignore[no-untyped-def]
    specs = _random_specs(1, 12)
    specs[3] = specs[3].model_copy(update={"overlap_compute_dma": False})
    batch = simulate_many(unet_work, specs, "int8")
    for i, spec in enumerate(specs):
        one = simulate(unet_work, spec, "int8").totals
        assert batch.latency_s[i] == pytest.approx(one.latency_s, rel=1e-9)
        assert batch.energy_j[i] == pytest.approx(one.energy_j, rel=1e-9)
        assert batch.dram_bytes[i] == one.dram_bytes
        assert batch.floor_s[i] == pytest.approx(one.floor_s, rel=1e-12)


def test_on_chip_only_spec_needs_everything_to_fit() -> None:
    small = op_workload(_linear_graph(), "int8", "int8")
    no_dram = tiny("dram_bytes=0", "dram_bandwidth_bytes_per_s=0")
    sim = simulate(small, no_dram, "int8")
    assert sim.weights_resident and sim.totals.dram_bytes == 0
    with pytest.raises(EdgewiseError, match="do not fit"):
        simulate(
            small, tiny("dram_bytes=0", "dram_bandwidth_bytes_per_s=0", "sram_bytes=1024"), "int8"
        )


def test_precision_the_spec_lacks_is_an_error() -> None:
    work = op_workload(_linear_graph(), "fp16", "fp16")
    with pytest.raises(EdgewiseError, match="no fp16 MACs"):
        simulate(work, tiny(), "fp16")


def test_simulate_cli_json_and_bad_spec(tmp_path) -> None:  # type: ignore[no-untyped-def]
    runner = CliRunner()
    out = tmp_path / "sim.json"
    result = runner.invoke(
        app,
        [
            "simulate",
            "--module",
            "tests.models:tiny_cnn",
            "--json",
            str(out),
            "--plot",
            str(tmp_path / "sim.png"),
        ],
    )
    assert result.exit_code == 0, result.output
    data = json.loads(out.read_text())
    assert {"latency_s", "energy_j", "dram_bytes", "mac_utilization", "floor_s"} <= set(
        data["totals"]
    )
    assert sum(r["latency_s"] for r in data["rows"]) == pytest.approx(data["totals"]["latency_s"])
    bad = runner.invoke(
        app, ["simulate", "--module", "tests.models:tiny_cnn", "--set", "sram_bytes=-1"]
    )
    assert isinstance(bad.exception, EdgewiseError) and "sram_bytes" in str(bad.exception)
