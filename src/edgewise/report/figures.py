"""Matplotlib, imported lazily and headless, and figures written whole or not at all."""

from __future__ import annotations

import io
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
