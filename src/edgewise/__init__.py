"""edgewise: where a vision model's memory and compute go, layer by layer.

The pipeline, stage by stage (each importable on its own):
    graph = edgewise.capture(model, *example_args)      # capture: ATen op graph, no weights
    prof = edgewise.profile(graph, by="layer")          # analysis: params, MACs, vector ops

torch (about 2 s to import) is imported when `capture` is first called: reading a saved
graph file, profiling or simulating it need none of it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import edgewise.capture  # noqa: F401  (the subpackage first, so `capture` below names the function)
from edgewise.errors import EdgewiseError

if TYPE_CHECKING:
    from edgewise.analysis.profile import Profile, profile
    from edgewise.ir.graph import Graph, Op, Tensor, TensorKind

__all__ = ["EdgewiseError", "Graph", "Op", "Profile", "Tensor", "TensorKind", "capture", "profile"]

# numpy and the counting formulas load on first use, so `edgewise --help` starts at once
_LAZY = {"Profile": "edgewise.analysis.profile", "profile": "edgewise.analysis.profile",
         "Graph": "edgewise.ir.graph", "Op": "edgewise.ir.graph", "Tensor": "edgewise.ir.graph",
         "TensorKind": "edgewise.ir.graph"}  # fmt: skip


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'edgewise' has no attribute {name!r}")


def capture(model: Any, *args: Any, **kwargs: Any) -> Graph:
    """Run `model(*args, **kwargs)` once on fake tensors and return its op graph (see
    `edgewise.capture.torch_capture.capture`: `name=` and `meta=` are passed on)."""
    from edgewise.capture.torch_capture import capture as run_capture

    return run_capture(model, *args, **kwargs)
