"""Matplotlib, imported lazily and headless, and figures written whole or not at all; tick
labels of quantities with units through the one formatter (`report.format`)."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

from edgewise.ir.files import write_atomic


def pyplot() -> ModuleType:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig: Any, path: Path) -> None:
    """Lay out, render to bytes, and write them whole (`write_atomic`)."""
    plt = pyplot()
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, dpi=110, format=path.suffix.lstrip(".").lower() or "png")
    plt.close(fig)
    write_atomic(path, buffer.getvalue())


def unit_ticks(axis: Any, render: Callable[[float], str]) -> None:
    """Label `axis` (ax.xaxis or ax.yaxis, plotted in base units: s, J, B, counts) with
    `render` ('1.5 ms', '443 KiB', '1.2 G'); after set_xscale/set_yscale, which resets it.
    A log axis labels its decades only."""
    from matplotlib.ticker import FuncFormatter, NullFormatter

    axis.set_major_formatter(FuncFormatter(lambda value, _pos: render(value)))
    if axis.get_scale() == "log":
        axis.set_minor_formatter(NullFormatter())


def byte_ticks(axis: Any) -> None:
    """Bytes on a linear axis: ticks at multiples of a power of two (`format.binary_step`
    for the axis's data range, so call it after plotting), in binary units (KiB, MiB)."""
    from matplotlib.ticker import MultipleLocator

    from edgewise.report.format import binary_bytes, binary_step

    axis.set_major_locator(MultipleLocator(binary_step(float(axis.get_view_interval()[1]))))
    unit_ticks(axis, binary_bytes)
