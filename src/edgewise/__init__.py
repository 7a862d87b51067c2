"""edgewise: where a vision model's memory and compute go, layer by layer.

The CLI's commands as functions (`edgewise.api`): each takes a model as the CLI names it
(zoo name, graph file, ONNX file, Hugging Face config) or a captured `Graph`, and returns
a typed result with `.to_dict()` (the command's --json), `.to_pandas()` and a short repr:
    graph = edgewise.capture(model, *example_args)      # capture: ATen op graph, no weights
    prof = edgewise.profile(graph, by="layer")          # params, MACs, vector ops per layer
    sim = edgewise.simulate("sd15-unet", hw="snapdragon-8gen3")
    best = edgewise.plan("sd15-unet", hw="snapdragon-8gen3"); best.save("plan.json")
    edgewise.report("sd15", steps=25, output="sd15.html")   # a pipeline: per image
    front = edgewise.sweep("space.yaml", "sweep.duckdb").pareto()

torch (about 2 s to import) is imported when `capture` is first called: reading a saved
graph file, profiling or simulating it need none of it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

# the subpackages first, so that `capture`, `simulate`, `plan`, `report` and `sweep`
# below name the functions, not the folders
import edgewise.capture
import edgewise.plan
import edgewise.report
import edgewise.simulate
import edgewise.sweep  # noqa: F401
from edgewise.errors import EdgewiseError

if TYPE_CHECKING:
    from edgewise.analysis.profile import Profile
    from edgewise.api import (
        PlanResult,
        ReportResult,
        SimulationResult,
        SweepResult,
        compare,
        load,
        memory,
        profile,
        run,
    )
    from edgewise.ir.graph import Graph, Op, Tensor, TensorKind

__all__ = ["EdgewiseError", "Graph", "Op", "Profile", "Tensor", "TensorKind", "capture",
           "compare", "docs_path", "load", "memory", "plan", "profile", "report", "run",
           "simulate", "sweep"]  # fmt: skip

# numpy and the counting formulas load on first use, so `edgewise --help` starts at once
_LAZY = {"Profile": "edgewise.analysis.profile", "Graph": "edgewise.ir.graph",
         "Op": "edgewise.ir.graph", "Tensor": "edgewise.ir.graph",
         "TensorKind": "edgewise.ir.graph",
         **dict.fromkeys(("profile", "memory", "compare", "load", "run"),
                         "edgewise.api")}  # fmt: skip


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


def docs_path() -> str:
    """Where the documentation lives: the installed package's `docs` folder (shipped in
    the wheel), or the checkout's."""
    from pathlib import Path

    here = Path(__file__).resolve().parent
    for candidate in (here / "docs", here.parent.parent / "docs"):
        if candidate.is_dir():
            return str(candidate)
    return str(here / "docs")


def simulate(*args: Any, **kwargs: Any) -> SimulationResult:
    """`edgewise simulate` as a function (see `edgewise.api.simulate`)."""
    from edgewise.api import simulate as run

    return run(*args, **kwargs)  # type: ignore[return-value]


def plan(*args: Any, **kwargs: Any) -> PlanResult:
    """`edgewise plan` as a function (see `edgewise.api.plan`)."""
    from edgewise.api import plan as run

    return run(*args, **kwargs)


def report(*args: Any, **kwargs: Any) -> ReportResult:
    """`edgewise report` as a function (see `edgewise.api.report`)."""
    from edgewise.api import report as run

    return run(*args, **kwargs)


def sweep(*args: Any, **kwargs: Any) -> SweepResult:
    """`edgewise sweep` as a function (see `edgewise.api.sweep`)."""
    from edgewise.api import sweep as run

    return run(*args, **kwargs)
