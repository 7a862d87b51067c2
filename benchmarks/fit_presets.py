"""Fit each preset's free figures once on the published latencies, and print the result.

    .venv/bin/python benchmarks/fit_presets.py [--table FILE] [--presets NAME ...] [--write]

The free figures (each preset's `sources` say "fitted") are the ones no vendor publishes:
the sustained MAC efficiency, the per-op dispatch overhead, the depthwise rate, the vector
rate, the sustained DRAM bandwidth, the weight compression. They are fitted per preset,
never per model: least squares on log(predicted / published) over all of the preset's
rows (scipy's bounded trust-region solver, from the geometric mean of each figure's
bounds, so that a rerun gives the same figures), through
`edgewise.execute.published.predict`, the function `edgewise validate --published` uses.
`--write` puts the fitted figures into the preset files (src/edgewise/hardware/presets),
rounded to 3 significant digits; rerun `edgewise validate --published default` after.
"""

from __future__ import annotations

import argparse
import math
import re
import sys
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table
from scipy.optimize import least_squares

from edgewise.execute.published import SHIPPED, agreement, compare, read_published, target_of
from edgewise.execute.published import predict as predicted_seconds
from edgewise.hardware.spec import HardwareSpec, load_spec

PRESETS_DIR = Path(__file__).resolve().parents[1] / "src" / "edgewise" / "hardware" / "presets"


def _hexagon(peak_dram_bytes_per_s: float) -> tuple[tuple[str, float, float], ...]:
    """The Snapdragon NPUs' free figures; the sustained DRAM bandwidth is bounded by the
    phone's LPDDR5X peak."""
    return (
        ("mac_efficiency", 0.05, 1.0),
        ("op_overhead_s", 1e-7, 5e-5),
        ("depthwise_efficiency", 0.002, 1.0),
        ("vector_ops_per_cycle", 16, 16384),
        ("dram_bandwidth_bytes_per_s", 10e9, peak_dram_bytes_per_s),
        ("macs_per_cycle.fp16", 1024, 16384),
        ("macs_per_cycle.int16", 1024, 16384),
    )


# preset -> (figure, low, high): fitted in log space between the bounds
FREE: dict[str, tuple[tuple[str, float, float], ...]] = {
    "snapdragon-8gen3": _hexagon(68.3e9),
    "snapdragon-8elite": _hexagon(85.3e9),
    "hailo-8": (
        ("mac_efficiency", 0.05, 1.0),
        ("depthwise_efficiency", 0.001, 1.0),
        ("vector_ops_per_cycle", 0.5, 4096),
        ("activation_matmul_efficiency", 0.0005, 1.0),
    ),
    "rk3588-npu": (
        ("mac_efficiency", 0.05, 1.0),
        ("op_overhead_s", 1e-7, 1e-4),
    ),
    "edge-tpu": (
        ("mac_efficiency", 0.02, 1.0),
        ("op_overhead_s", 1e-7, 1e-4),
        ("depthwise_efficiency", 0.001, 1.0),
    ),
}


def _with(spec: HardwareSpec, names: list[str], x: np.ndarray) -> HardwareSpec:
    """`spec` with the figures set (a dotted name sets one entry of a mapping)."""
    update: dict[str, object] = {}
    for name, value in zip(names, np.exp(x).tolist(), strict=True):
        field, _, key = name.partition(".")
        if key:
            entries = dict(update.get(field) or getattr(spec, field))  # type: ignore[call-overload]
            entries[key] = value
            update[field] = entries
        else:
            update[field] = value
    return spec.model_copy(update=update)


def _current(spec: HardwareSpec, name: str) -> float:
    field, _, key = name.partition(".")
    value = getattr(spec, field)
    return float((value[key] if key else value) or 0.5)


def fit(preset: str, cases: list[tuple[object, str, tuple[str, ...], float]]) -> dict[str, float]:
    """The preset's free figures that best predict its rows (log-ratio least squares)."""
    free = FREE[preset]
    names = [n for n, _, _ in free]
    lo = np.log([a for _, a, _ in free])
    hi = np.log([b for _, _, b in free])
    specs = {o: load_spec(preset, o) for _, _, o, _ in cases}
    start = (lo + hi) / 2  # the geometric mean of the bounds: the same start on every run

    def residuals(x: np.ndarray) -> np.ndarray:
        out = []
        for graph, precision, overrides, published in cases:
            spec = _with(specs[overrides], names, x)
            out.append(math.log(predicted_seconds(graph, spec, precision) / published))  # type: ignore[arg-type]
        return np.array(out)

    result = least_squares(residuals, start, bounds=(lo, hi), diff_step=1e-3, x_scale=1.0)
    return dict(zip(names, np.exp(result.x).tolist(), strict=True))


def _rounded(value: float) -> str:
    return f"{float(f'{value:.3g}'):g}"


def write(preset: str, figures: dict[str, float]) -> None:
    path = PRESETS_DIR / f"{preset}.yaml"
    text = path.read_text()
    for name, value in figures.items():
        field, _, key = name.partition(".")
        if key:  # an entry of a flow mapping, e.g. macs_per_cycle: {fp16: 8192, ...}: a count
            text = re.sub(
                rf"^({field}: {{.*?\b{key}: )\d+",
                rf"\g<1>{round(value)}",
                text,
                count=1,
                flags=re.M,
            )
            continue
        line = f"{name}: {_rounded(value)}"
        text, n = re.subn(rf"^{name}: .*$", line, text, count=1, flags=re.M)
        if n == 0:
            text = text.replace("\nsources:\n", f"\n{line}\nsources:\n", 1)
    path.write_text(text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--table", default=SHIPPED)
    parser.add_argument("--presets", nargs="*", default=list(FREE))
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()
    console = Console()
    rows = read_published(args.table)
    graphs: dict = {}
    before = compare(rows, args.presets, graphs)  # type: ignore[arg-type]
    fitted: dict[str, dict[str, float]] = {}
    for preset in args.presets:
        cases = []
        for row in rows:
            target, name, overrides, precision = target_of(row)
            if name != preset or target.skipped:
                continue
            if target not in graphs:
                graphs[target] = target.capture()
            cases.append((graphs[target], precision, overrides, row.latency_s))
        fitted[preset] = fit(preset, cases)
        if args.write:
            write(preset, fitted[preset])
    table = Table(title="fitted figures (log-ratio least squares over each preset's rows)")
    for column in ("preset", "figure", "fitted"):
        table.add_column(column)
    for preset, figures in fitted.items():
        for name, value in figures.items():
            table.add_row(preset, name, _rounded(value))
    console.print(table)
    if args.write:
        load_spec.__globals__["_preset_text"].cache_clear()
        after = compare(rows, args.presets, graphs)  # type: ignore[arg-type]
        summary = Table(title="agreement before -> after (median error, worst ratio, Spearman)")
        for column in ("preset", "rows", "median error", "worst ratio", "Spearman"):
            summary.add_column(column, justify="right")
        for b, a in zip(agreement(before, "preset"), agreement(after, "preset"), strict=True):
            summary.add_row(
                a.group, str(a.rows), f"{b.median_error:.0%} -> {a.median_error:.0%}",
                f"{b.worst_ratio:.2f} -> {a.worst_ratio:.2f}",
                f"{b.spearman:.2f} -> {a.spearman:.2f}",
            )  # fmt: skip
        console.print(summary)
    sys.stdout.flush()


if __name__ == "__main__":
    main()
