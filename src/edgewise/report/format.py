"""The one formatter for quantities with units, used by every table, chart label and report.

Conventions: three significant figures, never an exponent; counts and rates take SI
prefixes (k, M, G, T, P), memory sizes binary ones (KiB, MiB, GiB, TiB), times and
energies the SI prefix that puts the number in [1, 1000) (ns to s, nJ to kJ), and exact
zero prints as `0` with its unit. A signed change is worded (`change`): "saves 443 KiB",
"costs 443 KiB more", "no change".
"""

from __future__ import annotations

import math
from collections.abc import Callable


def _sig(value: float, digits: int = 3) -> str:
    """`digits` significant figures without an exponent: 1234.5 -> '1235', 0.01234 -> '0.0123'."""
    if value == 0:
        return "0"
    if abs(value) >= 10 ** (digits - 1):
        return f"{value:.0f}"
    decimals = max(0, digits - 1 - math.floor(math.log10(abs(value))))
    text = f"{value:.{decimals}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def _scaled(value: float, steps: tuple[tuple[float, str], ...], digits: int) -> str:
    """Divide by the largest step not above |value| (the last step for smaller values)."""
    for factor, unit in steps:
        if abs(value) >= factor:
            return f"{_sig(value / factor, digits)} {unit}".rstrip()
    factor, unit = steps[-1]
    return f"{_sig(value / factor, digits)} {unit}".rstrip()


_SI = ((1e15, "P"), (1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k"), (1.0, ""))
_BINARY = ((2**40, "TiB"), (2**30, "GiB"), (2**20, "MiB"), (2**10, "KiB"), (1, "B"))
_TIME = ((1.0, "s"), (1e-3, "ms"), (1e-6, "µs"), (1e-9, "ns"))
_ENERGY = ((1e3, "kJ"), (1.0, "J"), (1e-3, "mJ"), (1e-6, "µJ"), (1e-9, "nJ"))


def si(value: float, digits: int = 3) -> str:
    """1234567 -> '1.23 M' (counts: parameters, MACs, ops); a plain figure (a ratio, a rate
    without a unit of ours) too: 0.0000123 -> '0.0000123', 51.72 -> '51.7'."""
    if value == 0:
        return "0"
    return _scaled(value, _SI, digits)


def binary_bytes(value: float) -> str:
    """1536 -> '1.5 KiB' (memory sizes are binary: KiB, MiB, GiB); 0 -> '0 B'."""
    if abs(value) < 1024:
        return f"{value:.0f} B"
    return _scaled(value, _BINARY, 3)


def seconds(value: float) -> str:
    """0.00123 -> '1.23 ms'; 1e-9 -> '1 ns'; 0 -> '0 s'; 4000 -> '4000 s'."""
    return "0 s" if value == 0 else _scaled(value, _TIME, 3)


def joules(value: float) -> str:
    """0.0241 -> '24.1 mJ'; 1760 mJ -> '1.76 J'; 1e4 -> '10 kJ'."""
    return "0 J" if value == 0 else _scaled(value, _ENERGY, 3)


def rate(value: float, unit: str = "B/s") -> str:
    """Per second with SI prefixes: 6.4e10 -> '64 GB/s', 2.6e13 MAC/s -> '26 TMAC/s'."""
    return f"{si(value)}{unit}" if value and abs(value) >= 1000 else f"{_sig(value)} {unit}"


def count(value: float, unit: str) -> str:
    """A count with its unit: (4.09e9, 'MACs') -> '4.09 GMACs'."""
    text = si(value)
    return f"{text}{unit}" if text[-1].isalpha() else f"{text} {unit}"


def change(delta: float, render: Callable[[float], str], better: str = "saves",
           worse: str = "costs", more: str = " more") -> str:  # fmt: skip
    """A signed difference in words, for a quantity where less is better: -443 KiB ->
    'saves 443 KiB', +443 KiB -> 'costs 443 KiB more', 0 -> 'no change'."""
    if delta == 0:
        return "no change"
    return f"{better} {render(-delta)}" if delta < 0 else f"{worse} {render(delta)}{more}"


def percent_change(after: float, before: float) -> str:
    """'+12.3%' / '-4.5%' / '0%' (after against before); 'n/a' without a before."""
    if before == 0:
        return "n/a" if after else "0%"
    ratio = after / before - 1
    return "0%" if ratio == 0 else f"{ratio:+.1%}"


def unit_of(column: str) -> str:
    """The unit a column's suffix names (a sweep's store, a JSON key): `_bytes_per_s` B/s,
    `_per_s` /s, `_s` s, `_j` J, `_bytes` B; '' for a plain figure."""
    for suffix, unit in (("bytes_per_s", "B/s"), ("_per_s", "/s"), ("_s", "s"), ("_j", "J"),
                         ("_bytes", "B")):  # fmt: skip
        if column.endswith(suffix):
            return unit
    return ""


def by_name(column: str) -> Callable[[float], str]:
    """The renderer of a column, by the unit its suffix names (`unit_of`)."""
    unit = unit_of(column)
    renderers = {"s": seconds, "J": joules, "B": binary_bytes}
    if unit in renderers:
        return renderers[unit]
    return (lambda v: rate(v, unit)) if unit else si


def binary_step(largest: float) -> float:
    """A tick step for bytes up to `largest`: the power of two giving 4 to 8 ticks."""
    return 2.0 ** max(0, math.ceil(math.log2(max(largest, 1.0) / 8)))


# --- measured times ----------------------------------------------------------------------

LOADED_SPREAD = 0.5  # (slowest - fastest) / median above this: something else is running


def timing(runs: tuple[float, ...] | list[float]) -> str:
    """'1.23 ms (1.2-1.31 ms over 5 runs)': the median with its min-max spread."""
    from statistics import median

    if not runs:
        return "-"
    if len(runs) == 1:
        return f"{seconds(runs[0])} (1 run: no spread)"
    return f"{seconds(median(runs))} ({seconds(min(runs))}-{seconds(max(runs))}, {len(runs)} runs)"


def spread(runs: tuple[float, ...] | list[float]) -> float:
    """(slowest - fastest) / median: 0 for steady runs."""
    from statistics import median

    middle = median(runs) if runs else 0.0
    return (max(runs) - min(runs)) / middle if middle > 0 else 0.0


def timing_change(after: tuple[float, ...] | list[float],
                  before: tuple[float, ...] | list[float]) -> str:  # fmt: skip
    """The difference of two medians, or 'within noise' when the two min-max ranges
    overlap (or either side has a single run: no spread to judge by)."""
    from statistics import median

    if len(after) < 2 or len(before) < 2:
        return "unknown (one run each: use --repeat 3 or more)"
    if min(after) <= max(before) and min(before) <= max(after):
        return f"within noise ({percent_change(median(after), median(before))} between medians)"
    return percent_change(median(after), median(before))
