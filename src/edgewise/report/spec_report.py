"""A hardware spec's figures as text, each with its unit and its source: `hw show`'s table
and the HTML report's spec section render these same rows."""

from __future__ import annotations

from typing import TYPE_CHECKING

from edgewise.report.format import binary_bytes, rate, seconds, si

if TYPE_CHECKING:
    from edgewise.hardware.spec import HardwareSpec


def tops(spec: HardwareSpec, precision: str) -> str:
    """Vendors' TOPS at a precision: 2 ops per MAC, dense."""
    return si(2 * spec.macs_per_cycle[precision] * spec.clock_hz / 1e12)  # type: ignore[index]


def bandwidth(bytes_per_s: float) -> str:
    return rate(bytes_per_s) if bytes_per_s else "-"


def spec_rows(spec: HardwareSpec) -> list[tuple[str, str, str]]:
    """(field, value with its unit, source) for every figure of the spec (not its name,
    description or sources), in the schema's order."""
    shown = {
        "clock_hz": f"{si(spec.clock_hz)}Hz",
        "mac_array": f"{spec.mac_array.rows} x {spec.mac_array.cols}",
        "macs_per_cycle": ", ".join(
            f"{p} {n:,} ({tops(spec, p)} TOPS)" for p, n in spec.macs_per_cycle.items()
        ),
        "sram_bytes": binary_bytes(spec.sram_bytes),
        "sram_bandwidth_bytes_per_s": bandwidth(spec.sram_bandwidth_bytes_per_s),
        "dram_bytes": binary_bytes(spec.dram_bytes) if spec.dram_bytes else "none",
        "dram_bandwidth_bytes_per_s": bandwidth(spec.dram_bandwidth_bytes_per_s),
        "energy_pj_per_mac": ", ".join(
            f"{p} {si(e)} pJ" for p, e in spec.energy_pj_per_mac.items()
        ),
        "vector_ops_per_cycle": si(spec.vector_ops_per_cycle),
        "sram_energy_pj_per_byte": f"{si(spec.sram_energy_pj_per_byte)} pJ/B",
        "dram_energy_pj_per_byte": f"{si(spec.dram_energy_pj_per_byte)} pJ/B",
        "vector_energy_pj_per_op": f"{si(spec.vector_energy_pj_per_op)} pJ",
        "static_power_w": f"{si(spec.static_power_w)} W",
        "op_overhead_s": seconds(spec.op_overhead_s),
    }
    return [
        (field, shown.get(field, str(getattr(spec, field))), spec.sources.get(field, "-"))
        for field in type(spec).model_fields
        if field not in ("name", "description", "sources")
    ]
