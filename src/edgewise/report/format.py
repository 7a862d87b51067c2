"""Number formatting shared by every table: SI prefixes for counts, binary for bytes,
seconds and joules auto-scaled."""

from __future__ import annotations


def si(value: float, digits: int = 3) -> str:
    """1234567 -> '1.23 M' (counts: parameters, MACs, ops)."""
    for factor, prefix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= factor:
            scaled = value / factor
            return (
                f"{scaled:.{digits}g} {prefix}" if abs(scaled) < 1000 else f"{scaled:.0f} {prefix}"
            )
    return f"{value:.{digits}g}"


def binary_bytes(value: float) -> str:
    """1536 -> '1.5 KiB' (memory sizes are binary: KiB, MiB, GiB)."""
    for factor, unit in ((2**30, "GiB"), (2**20, "MiB"), (2**10, "KiB")):
        if abs(value) >= factor:
            scaled = value / factor
            return f"{scaled:.3g} {unit}" if abs(scaled) < 1000 else f"{scaled:.0f} {unit}"
    return f"{value:.0f} B"


def seconds(value: float) -> str:
    """0.00123 -> '1.23 ms'."""
    for factor, unit in ((1.0, "s"), (1e-3, "ms"), (1e-6, "µs")):
        if abs(value) >= factor:
            return f"{value / factor:.3g} {unit}"
    return f"{value * 1e9:.3g} ns"


def joules(value: float) -> str:
    """0.0241 -> '24.1 mJ'."""
    for factor, unit in ((1.0, "J"), (1e-3, "mJ"), (1e-6, "µJ")):
        if abs(value) >= factor:
            return f"{value / factor:.3g} {unit}"
    return f"{value * 1e9:.3g} nJ"
