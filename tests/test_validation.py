"""The vendor-compiler physics by hand (fusion, per-op overhead, efficiencies, preloaded
weights), and `validate --published` arithmetic checked row by row."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from torch import nn

from edgewise import capture
from edgewise.execute.published import (
    agreement,
    compare,
    predict,
    read_published,
    spearman,
)
from edgewise.hardware.spec import load_spec
from edgewise.simulate.compile import compiled, fusion_groups
from edgewise.simulate.simulator import simulate
from edgewise.simulate.workload import op_workload
from tests.test_hostile import refused
from tests.test_simulate import tiny


def _conv_bn_relu():  # type: ignore[no-untyped-def]
    model = nn.Sequential(nn.Conv2d(8, 8, 1, bias=False), nn.BatchNorm2d(8), nn.ReLU()).eval()
    return capture(model, torch.randn(1, 8, 16, 16))


def test_fused_conv_norm_act_costs_one_round_trip() -> None:
    """conv -> batch norm -> ReLU: fused, the two intermediates (2048 B each at int8) are
    never written or read, and one kernel is dispatched instead of three."""
    graph = _conv_bn_relu()
    work = op_workload(graph, "int8", "int8")
    plain = simulate(work, tiny("op_overhead_s=1e-6"), "int8")
    fused = simulate(work, tiny("op_overhead_s=1e-6", "fuse_epilogues=true"), "int8")
    tensor = 8 * 16 * 16  # bytes of one activation at int8
    # unfused: conv writes, norm reads and writes, ReLU reads: 4 intermediate transfers
    assert plain.totals.sram_bytes - fused.totals.sram_bytes == 4 * tensor
    assert plain.totals.dispatched_ops == 3 and fused.totals.dispatched_ops == 1
    assert plain.totals.overhead_s == pytest.approx(3e-6)
    assert fused.totals.overhead_s == pytest.approx(1e-6)
    leader, internal = fusion_groups(work)
    assert len(internal) == 2 and len(set(leader.tolist())) == len(leader) - 2


def test_an_output_or_a_shared_result_is_never_fused() -> None:
    """A conv result that two ops read must be written: nothing fuses into it."""

    class Fork(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(4, 4, 1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            y = self.conv(x)
            return torch.relu(y) + torch.sigmoid(y)

    work = op_workload(capture(Fork(), torch.randn(1, 4, 8, 8)), "int8", "int8")
    _, internal = fusion_groups(work)
    assert internal == ()  # relu and sigmoid both read y; the add reads two results


def test_op_overhead_adds_exactly_its_time() -> None:
    work = op_workload(capture(nn.Linear(64, 64, bias=False), torch.randn(64, 64)), "int8", "int8")
    base = simulate(work, tiny(), "int8")
    slow = simulate(work, tiny("op_overhead_s=3e-6"), "int8")
    n = slow.totals.dispatched_ops
    assert n >= 1
    assert slow.totals.latency_s == pytest.approx(base.totals.latency_s + n * 3e-6, rel=1e-12)


def test_mac_and_depthwise_efficiency_by_hand() -> None:
    dw = capture(nn.Conv2d(8, 8, 3, padding=1, groups=8, bias=False), torch.randn(1, 8, 16, 16))
    work = op_workload(dw, "int8", "int8")
    macs = 8 * 16 * 16 * 9
    assert bool(work.depthwise.any())
    sim = simulate(work, tiny("depthwise_efficiency=0.25", "vector_ops_per_cycle=1e6"), "int8")
    assert float(sim.mac_s.sum()) == pytest.approx(macs / (64e9 * 0.25))
    dense = capture(nn.Linear(64, 64, bias=False), torch.randn(64, 64))
    work = op_workload(dense, "int8", "int8")
    full = simulate(work, tiny(), "int8")
    half = simulate(work, tiny("mac_efficiency=0.5"), "int8")
    assert float(half.mac_s.sum()) == pytest.approx(2 * float(full.mac_s.sum()))


def test_an_epilogue_takes_no_vector_time() -> None:
    work = op_workload(_conv_bn_relu(), "int8", "int8")
    plain = simulate(work, tiny(), "int8")
    fused = simulate(work, tiny("fuse_epilogues=true"), "int8")
    assert float(plain.vector_s.sum()) > 0 and float(fused.vector_s.sum()) == 0
    assert fused.totals.vector_energy_j == plain.totals.vector_energy_j  # the work is done


def test_activation_matmul_efficiency_slows_only_products_of_activations() -> None:
    class Attention(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.proj = nn.Linear(64, 64, bias=False)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            q = self.proj(x)
            return torch.bmm(q, q.transpose(1, 2))  # 1 x 64 x 64 scores: no weights

    work = op_workload(capture(Attention(), torch.randn(1, 64, 64)), "int8", "int8")
    base = simulate(work, tiny(), "int8")
    slow = simulate(work, tiny("activation_matmul_efficiency=0.25"), "int8")
    weighted = work.weight_bytes > 0
    assert slow.mac_s[weighted].sum() == base.mac_s[weighted].sum()  # the Linear: unchanged
    assert slow.mac_s[~weighted].sum() == pytest.approx(4 * base.mac_s[~weighted].sum())


def test_a_pipelined_frame_costs_its_busiest_resource() -> None:
    """Pipelined: max(sum compute, sum DRAM, sum SRAM) over the model, each op its time on
    that resource; no overhead per frame."""
    work = op_workload(_conv_bn_relu(), "int8", "int8")
    spec = tiny("pipelined=true", "op_overhead_s=1e-3", "dram_bandwidth_bytes_per_s=1e8")
    sim = simulate(work, spec, "int8")
    plain = simulate(work, tiny("op_overhead_s=1e-3", "dram_bandwidth_bytes_per_s=1e8"), "int8")
    sums = [float((plain.mac_s + plain.vector_s).sum()), float(plain.dram_s.sum()),
            float(plain.sram_s.sum())]  # fmt: skip
    assert sim.totals.latency_s == pytest.approx(max(sums))
    assert sim.totals.overhead_s == 0
    assert float(sim.latency_s.sum()) == pytest.approx(sim.totals.latency_s)


def test_a_parameter_cache_keeps_what_fits_beside_the_working_set() -> None:
    """64x64 int8 weights (4096 B), an op working set of 64x64 in + 64x64 out (8192 B), SRAM
    10 KiB: 10240 - 8192 = 2048 B of weights cached, the other half streamed at its use."""
    work = op_workload(capture(nn.Linear(64, 64, bias=False), torch.randn(64, 64)), "int8", "int8")
    sets = ("weights_resident=true", "weights_cached=true", "sram_bytes=10240")
    cached = simulate(work, tiny(*sets), "int8")
    streamed = simulate(work, tiny("sram_bytes=10240"), "int8")
    assert int(work.operand_bytes.max()) == 8192
    # streamed: weights 4096 + input 4096 + output 4096; cached: half the weights stream,
    # the cached half is loaded once before the first op: the same bytes, split differently
    assert streamed.totals.dram_bytes == cached.totals.dram_bytes == 3 * 4096
    preloaded = simulate(work, tiny(*sets, "weights_preloaded=true"), "int8")
    assert preloaded.totals.dram_bytes == 3 * 4096 - 2048  # the cached half never moves
    assert preloaded.totals.peak_sram_bytes >= 2048


def test_preloaded_weights_cross_no_link_and_compression_shrinks_them() -> None:
    work = op_workload(capture(nn.Linear(64, 64, bias=False), torch.randn(64, 64)), "int8", "int8")
    resident = simulate(work, tiny("weights_resident=true"), "int8")
    preloaded = simulate(work, tiny("weights_resident=true", "weights_preloaded=true"), "int8")
    assert resident.totals.dram_bytes - preloaded.totals.dram_bytes == 64 * 64
    squeezed = compiled(work, tiny("weight_compression=0.5"))
    assert squeezed.total_weight_bytes == 64 * 64 // 2
    assert compiled(squeezed, tiny("weight_compression=0.5")) is squeezed  # once per spec


# --- published latencies ----------------------------------------------------------------

HEADER = "source_table,model,component,device,precision,latency_ms\n"


def test_published_arithmetic_on_two_rows_by_hand(tmp_path: Path) -> None:
    table = tmp_path / "two.csv"
    table.write_text(
        HEADER + 'rknn-model-zoo,mobilenetv2-12,,"RK3588 NPU, single core",INT8,2.0\n'
        'rknn-model-zoo,resnet50-v2-7,,"RK3588 NPU, single core",INT8,10.0\n'
    )
    rows = read_published(str(table))
    assert [r.latency_s for r in rows] == [0.002, 0.010]
    out = compare(rows)
    from edgewise.capture.zoo import capture_zoo

    spec = load_spec("rk3588-npu", ["macs_per_cycle={fp16: 512, bf16: 512, int8: 1024, int4: "
                                    "2048}", "mac_array.cols=32", "sram_bytes=384KiB"])  # fmt: skip
    a = predict(capture_zoo("mobilenetv2"), spec, "int8")
    b = predict(capture_zoo("resnet50"), spec, "int8")
    assert [c.predicted_s for c in out] == [a, b]
    r1, r2 = a / 0.002, b / 0.010
    (agree,) = agreement(out, "preset")
    assert agree.rows == 2
    assert agree.median_error == pytest.approx((abs(r1 - 1) + abs(r2 - 1)) / 2)
    assert agree.worst_ratio == pytest.approx(max(r1, 1 / r1, r2, 1 / r2))
    assert math.isnan(agree.spearman)  # undefined below 3 rows


def test_spearman_by_hand() -> None:
    assert spearman([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert spearman([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)
    # ties share their mean rank: ranks (1.5, 1.5, 3) against (1, 2, 3): r = sqrt(3)/2
    assert spearman([5, 5, 7], [1, 2, 3]) == pytest.approx(math.sqrt(3) / 2)


def test_shipped_table_every_row_is_mapped_or_says_why() -> None:
    from edgewise.execute.published import target_of

    rows = read_published("default")
    assert len(rows) == 54  # 52 vision rows and two LLM decode rows (8 Elite QRD)
    reasons = [target_of(r)[0].skipped for r in rows]
    assert sum(1 for r in reasons if r) == 2  # the Whisper decoder step, on two phones
    assert all("decoder" in r for r in reasons if r)


def test_validate_published_cli_json(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from edgewise.cli.main import app

    out = tmp_path / "v.json"
    result = CliRunner().invoke(
        app, ["validate", "--published", "default", "--hw", "rk3588-npu", "--json", str(out)]
    )
    assert result.exit_code == 0, result.output
    data = json.loads(out.read_text())
    assert [r["model"] for r in data["rows"]] == ["mobilenetv2-12", "resnet50-v2-7"]
    assert data["by_preset"][0]["group"] == "rk3588-npu"


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("model,latency_ms\nx,1\n", "no column source_table"),
        (HEADER + "coral-edgetpu,MobileNet v2,,Coral Dev Board (Edge TPU),int8,-3\n",
         "line 2: latency_ms '-3' is not a positive number"),
        (HEADER, "no rows"),
    ],
)  # fmt: skip
def test_bad_published_tables_are_refused(tmp_path: Path, text: str, needle: str) -> None:
    table = tmp_path / "t.csv"
    table.write_text(text)
    refused("validate", "--published", str(table), needle=needle)


def test_what_bounds_adds_up_and_names_a_lever() -> None:
    """DRAM bytes by kind add up to the DRAM total, latency by bound to the latency."""
    from edgewise.report.simulate_report import what_bounds
    from tests.models import tiny_unet

    model, args = tiny_unet()
    work = op_workload(capture(model, *args), "int8", "int8")
    sim = simulate(work, load_spec("generic-npu", ["sram_bytes=64KiB"]), "int8")
    t = sim.totals
    kinds = (t.dram_weight_bytes, t.dram_refill_bytes, t.spilled_bytes, t.dram_stream_bytes,
             t.dram_output_bytes)  # fmt: skip
    assert sum(kinds) == pytest.approx(t.dram_bytes, abs=len(kinds))  # rounding per kind
    # the finer split: skips' round trips and inputs inside refills + spills, scores inside
    # the tiled streams; the tiny U-Net's skips outlive 100 ops and leave 64 KiB of SRAM
    assert t.dram_long_lived_bytes > 0
    assert t.dram_long_lived_bytes + t.dram_input_bytes <= t.dram_refill_bytes + t.spilled_bytes
    assert 0 <= t.dram_scores_bytes <= t.dram_stream_bytes
    by_bound = t.compute_bound_s + t.dram_bound_s + t.sram_bound_s + t.overhead_bound_s
    assert by_bound == pytest.approx(t.latency_s)
    text = what_bounds(sim.totals)
    assert "time by bound:" in text and "DRAM by kind:" in text and "the lever:" in text


def test_every_source_table_meets_the_targets() -> None:
    """The shipped presets against the shipped table (docs/validation.md): per source
    table, median error at most 25%, no row off by more than 2x, Spearman at least 0.9
    where it is defined (3 rows or more). Refitting a preset must keep this."""
    comparisons = compare(read_published("default"))
    assert sum(1 for c in comparisons if c.skipped) == 2  # the Whisper decoder steps only
    for a in agreement(comparisons, "source"):
        assert a.median_error <= 0.25, a
        assert a.worst_ratio <= 2.0, a
        assert math.isnan(a.spearman) or a.spearman >= 0.9 - 1e-9, a
