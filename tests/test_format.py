"""The one formatter: edge cases of every unit, and signs worded."""

from __future__ import annotations

import pytest

from edgewise.report.format import (
    binary_bytes,
    change,
    count,
    joules,
    percent_change,
    rate,
    seconds,
    si,
)


@pytest.mark.parametrize(
    ("value", "text"),
    [(0, "0 s"), (1e-9, "1 ns"), (1.4e-6, "1.4 µs"), (0.00123, "1.23 ms"), (2.5, "2.5 s"),
     (4000, "4000 s"), (3e-12, "0.003 ns")],
)  # fmt: skip
def test_seconds(value: float, text: str) -> None:
    assert seconds(value) == text


@pytest.mark.parametrize(
    ("value", "text"),
    [(0, "0 J"), (1e4, "10 kJ"), (1.76, "1.76 J"), (2.1e-8, "21 nJ"), (0.0241, "24.1 mJ")],
)
def test_joules(value: float, text: str) -> None:
    assert joules(value) == text


def test_no_exponent_anywhere() -> None:
    for value in (1e-15, 1e-9, 2.1e-5, 1, 999.9, 1760, 1e6, 1e15, 1e18):
        for text in (seconds(value), joules(value), si(value), binary_bytes(value), rate(value)):
            assert "e+" not in text and "e-" not in text, text


def test_bytes_counts_and_rates() -> None:
    assert binary_bytes(0) == "0 B" and binary_bytes(1536) == "1.5 KiB"
    assert binary_bytes(443 * 1024) == "443 KiB" and binary_bytes(2**40) == "1 TiB"
    assert si(0) == "0" and si(1234567) == "1.23 M" and si(4_089_184_256) == "4.09 G"
    assert count(4_089_184_256, "MACs") == "4.09 GMACs" and count(12, "MACs") == "12 MACs"
    assert rate(6.4e10) == "64 GB/s" and rate(2.6e13, "MAC/s") == "26 TMAC/s"


def test_signed_changes_are_worded() -> None:
    assert change(-443 * 1024, binary_bytes) == "saves 443 KiB"
    assert change(443 * 1024, binary_bytes) == "costs 443 KiB more"
    assert change(0, binary_bytes) == "no change"
    assert change(-0.0012, seconds) == "saves 1.2 ms"
    assert percent_change(110, 100) == "+10.0%" and percent_change(5, 0) == "n/a"


def test_measured_times_carry_their_spread_and_noise_is_named() -> None:
    from edgewise.report.format import spread, timing, timing_change

    assert timing([0.001, 0.0012, 0.0011]) == "1.1 ms (1 ms-1.2 ms, 3 runs)"
    assert timing([0.002]) == "2 ms (1 run: no spread)"
    assert timing_change([1.0, 1.2, 1.1], [1.1, 1.3, 1.15]).startswith("within noise")
    assert timing_change([2.0, 2.1, 2.05], [1.0, 1.1, 1.05]) == "+95.2%"
    assert timing_change([1.0], [2.0]).startswith("unknown (one run each")
    assert spread([1.0, 1.0]) == 0 and spread([1.0, 2.0, 3.0]) == 1.0


def test_columns_and_axes_take_the_formatter_by_unit() -> None:
    """Sweep tables and chart ticks: a column's unit suffix names its renderer; byte ticks
    step by powers of two; plotly axes use SI prefixes at three significant figures."""
    from edgewise.report.format import binary_step, by_name, si
    from edgewise.report.html_report import column_axis, unit_axis

    assert by_name("latency_s")(0.00225) == "2.25 ms"
    assert by_name("energy_j")(1e4) == "10 kJ"
    assert by_name("dram_bytes")(24.1 * 2**20) == "24.1 MiB"
    assert by_name("dram_bandwidth_bytes_per_s")(6.4e10) == "64 GB/s"
    assert by_name("mac_array_rows")(64.0) == "64"
    assert by_name("macs")(4.09e9) == "4.09 G"
    assert [si(v) for v in (0, 1.23e-5, 51.72, 1234)] == ["0", "0.0000123", "51.7", "1.23 k"]
    assert binary_step(100 * 2**20) == 16 * 2**20  # 100 MiB: 7 ticks of 16 MiB
    assert binary_step(0) == 1
    ticks = unit_axis("B", 3 * 2**20)
    assert ticks["ticktext"][:3] == ["0 B", "512 KiB", "1 MiB"]
    assert unit_axis("s") == {"tickformat": ".3~s", "ticksuffix": "s"}
    assert column_axis("latency_s") == unit_axis("s") and column_axis("dram_bytes") == {}
    # the chart's axis and the table beside it name the same unit
    assert column_axis("dram_bandwidth_bytes_per_s")["ticksuffix"] == "B/s"


def test_a_spec_reads_the_same_in_hw_show_and_the_report() -> None:
    """Every figure with its unit (no exponent), one row per field, its source beside."""
    from edgewise.hardware import load_spec
    from edgewise.report.html_report import spec_section
    from edgewise.report.spec_report import spec_rows

    spec = load_spec("snapdragon-8gen3")
    rows = {field: value for field, value, _ in spec_rows(spec)}
    assert rows["dram_bandwidth_bytes_per_s"] == "68.3 GB/s"
    assert rows["op_overhead_s"] == "2.04 µs" and rows["sram_bytes"] == "8 MiB"
    assert "e-0" not in "".join(rows.values())
    # a spec of your own (1.375 GHz here): still no exponent
    extreme = load_spec("snapdragon-8gen3", ("macs_per_cycle.int8=1000000",
                                             "vector_energy_pj_per_op=0.00001"))  # fmt: skip
    shown = {field: value for field, value, _ in spec_rows(extreme)}
    assert "int8 1,000,000 (2.75 k TOPS)" in shown["macs_per_cycle"]
    assert shown["vector_energy_pj_per_op"] == "0.00001 pJ"
    assert len(rows) == len(type(spec).model_fields) - 3  # all but name, description, sources
    html = spec_section(spec).body
    assert "68.3 GB/s" in html and "2.04 µs" in html
