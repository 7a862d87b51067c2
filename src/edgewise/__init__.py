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

import sys
from typing import TYPE_CHECKING, Any

# the subpackages first: `capture`, `plan`, `report`, `simulate` and `sweep` below are
# the commands of the same names, which still lead to the subpackages' modules
import edgewise.capture
import edgewise.plan
import edgewise.report
import edgewise.simulate
import edgewise.sweep  # noqa: F401
from edgewise.errors import EdgewiseError

if TYPE_CHECKING:
    from edgewise.analysis.profile import Profile
    from edgewise.api import compare, load, memory, plan, profile, report, run, simulate, sweep
    from edgewise.capture.torch_capture import capture
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


class _Command:
    """A command named like a subpackage: `edgewise.simulate(...)` calls
    `edgewise.api.simulate`, and `edgewise.simulate.batch` is still the module (any other
    attribute is the package's), so `import edgewise.simulate.batch as b` works too. The
    function, its docstring and its signature are imported when first asked for."""

    def __init__(self, package: str, function: str) -> None:
        self._package, self._function = package, function  # "module:name"

    def _target(self) -> Any:
        import importlib

        module, _, name = self._function.partition(":")
        return getattr(importlib.import_module(module), name)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._target()(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):  # copy and pickle probe before __init__ has run
            raise AttributeError(name)
        return getattr(sys.modules[self._package], name)

    @property
    def __doc__(self) -> str | None:  # type: ignore[override]  # help(): the command's
        return self._target().__doc__

    @property
    def __signature__(self) -> Any:
        import inspect

        return inspect.signature(self._target())

    def __repr__(self) -> str:
        return f"<edgewise command {self._function.replace(':', '.')}>"


if not TYPE_CHECKING:
    capture = _Command("edgewise.capture", "edgewise.capture.torch_capture:capture")
    plan = _Command("edgewise.plan", "edgewise.api:plan")
    report = _Command("edgewise.report", "edgewise.api:report")
    simulate = _Command("edgewise.simulate", "edgewise.api:simulate")
    sweep = _Command("edgewise.sweep", "edgewise.api:sweep")


def docs_path() -> str:
    """Where the documentation lives: the installed package's `docs` folder (shipped in
    the wheel), or the checkout's."""
    from pathlib import Path

    here = Path(__file__).resolve().parent
    for candidate in (here / "docs", here.parent.parent / "docs"):
        if candidate.is_dir():
            return str(candidate)
    return str(here / "docs")
