"""Where a graph comes from: a zoo name, a saved graph file, or the user's own factory.

Every command that takes a MODEL goes through `graph_from_source`, so a zoo name, a
`graph.json` written by `edgewise capture`, and `--module package.module:factory` work
wherever any of them does.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgewise.errors import EdgewiseError
from edgewise.ir.graph import Graph
from edgewise.ir.serialize import load_graph

if TYPE_CHECKING:
    from torch import nn

    from edgewise.capture.workload import Workload

# torch (about 2 s to import) is imported by the functions that build a model, not here:
# reading a saved graph file needs none of it
Built = tuple["nn.Module", tuple[Any, ...], dict[str, Any]]


def build_module(spec: str) -> Built:
    """Call `package.module:factory`; it returns (model, args[, kwargs])."""
    from torch import nn

    module_name, _, factory_name = spec.partition(":")
    if not module_name or not factory_name:
        raise EdgewiseError(f"--module expects 'package.module:factory' (got '{spec}')")
    if "" not in sys.path:
        sys.path.insert(0, "")  # let users point at a module in the working directory
    try:
        module = importlib.import_module(module_name)
    except Exception as e:
        raise EdgewiseError(
            f"--module: cannot import '{module_name}' ({type(e).__name__}: {e}); check the "
            "name and that it is on PYTHONPATH"
        ) from e
    factory = getattr(module, factory_name, None)
    if not callable(factory):
        raise EdgewiseError(f"--module: '{module_name}' has no callable '{factory_name}'")
    try:
        made: Any = factory()
    except Exception as e:
        raise EdgewiseError(f"--module: {spec}() raised {type(e).__name__}: {e}") from e
    if not (isinstance(made, tuple) and len(made) in (2, 3) and isinstance(made[0], nn.Module)):
        raise EdgewiseError(
            f"--module: {spec}() must return (model, example_args) or "
            f"(model, example_args, example_kwargs), got {type(made).__name__}"
        )
    model, args = made[0], tuple(made[1]) if isinstance(made[1], list | tuple) else (made[1],)
    kwargs = made[2] if len(made) == 3 else {}
    if not (isinstance(kwargs, Mapping) and all(isinstance(k, str) for k in kwargs)):
        raise EdgewiseError(
            f"--module: {spec}() returned example_kwargs of type {type(kwargs).__name__}; "
            "it must be a dict of argument name -> value"
        )
    return model, args, dict(kwargs)


def graph_from_module(spec: str) -> Graph:
    """The factory's graph; cached by the spec and the bytes of the factory's source file
    (a change in another file it imports is not seen: `--no-cache` then)."""
    from edgewise.capture.cache import cached_graph, file_digest

    origin = _module_file(spec.partition(":")[0])
    if origin is None:
        return _capture_module(spec)
    return cached_graph(
        {"module": spec, "file": file_digest(origin)}, lambda: _capture_module(spec)
    )


def _module_file(module_name: str) -> Path | None:
    import importlib.util

    if "" not in sys.path:
        sys.path.insert(0, "")
    try:
        found = importlib.util.find_spec(module_name)
    except (ImportError, ValueError):
        return None
    origin = found.origin if found else None
    return Path(origin) if origin and Path(origin).is_file() else None


def _capture_module(spec: str) -> Graph:
    from edgewise.capture.torch_capture import capture

    model, args, kwargs = build_module(spec)
    graph = capture(model, *args, name=spec, **kwargs)
    if not graph.ops:  # nothing to count, time or plan: every later stage would divide by 0
        raise EdgewiseError(f"--module: the forward of {spec}() ran no ops (does it compute?)")
    return graph


def zoo_graph(name: str, workload: Workload | None = None) -> Graph:
    """A zoo model's graph at `workload`, from the graph cache when it is there (then
    neither torch nor the model's library is imported)."""
    from dataclasses import asdict

    from edgewise.capture.cache import cached_graph
    from edgewise.capture.workload import DEFAULT_WORKLOAD

    w = workload or DEFAULT_WORKLOAD

    def make() -> Graph:
        from edgewise.capture.zoo import capture_zoo

        return capture_zoo(name, w)

    return cached_graph({"zoo": name, "workload": asdict(w)}, make)


def model_for_run(request: dict[str, Any] | None, model: str | None, module: str | None,
                  workload: Workload | None) -> Built:  # fmt: skip
    """The meta model a run fills: a language model's phase (`capture.llm.phase_request`),
    or what MODEL or --module names."""
    if request is None:
        return model_from_source(model, module, workload)
    from edgewise.capture.llm import build_llm

    keys = ("name", "phase", "prompt_tokens", "context", "image_size")
    built_model, args, kwargs, _ = build_llm(*(request[k] for k in keys))
    return built_model, args, kwargs


def model_from_source(
    model: str | None, module: str | None = None, workload: Workload | None = None
) -> Built:
    """The real model behind MODEL or --module (for runs that need weights)."""
    from edgewise.capture.zoo import Workload, zoo_entry

    if module:
        return build_module(module)
    if not model or model.endswith(".json") or Path(model).is_file():
        raise EdgewiseError(
            "this needs the model itself, not a saved graph: give a zoo name or --module"
        )
    return zoo_entry(model).build(workload or Workload())


def graph_from_source(
    model: str | None,
    module: str | None = None,
    workload: Workload | None = None,
    input_shapes: Mapping[str, tuple[int, ...]] | None = None,
) -> Graph:
    """Resolve MODEL (zoo name, graph file, ONNX file, Hugging Face config) or --module
    into a captured graph. `input_shapes` binds an ONNX file's symbolic input dims."""
    if workload is not None:
        from edgewise.capture.workload import Workload

        workload = None if workload == Workload() else workload
    if module:
        if model:
            raise EdgewiseError("give either a MODEL or --module, not both")
        if workload is not None:
            raise EdgewiseError(
                "--batch/--resolution/--frames/--cfg apply to zoo models; for --module, "
                "build the example inputs you want in the factory"
            )
        return graph_from_module(module)
    if not model:
        raise EdgewiseError(
            "no model given: name a zoo model (see `edgewise zoo`), a graph file, or --module"
        )
    from edgewise.capture.onnx_capture import is_onnx_path

    if input_shapes and not is_onnx_path(model):
        raise EdgewiseError("--input-shape binds an ONNX file's inputs; MODEL is not a .onnx file")
    if is_onnx_path(model):
        from edgewise.capture.onnx_capture import capture_onnx

        if workload is not None:
            raise EdgewiseError(
                "--batch/--resolution/--frames/--cfg apply to zoo models; for an ONNX file, "
                "set the input dims with --input-shape NAME=1x3x224x224"
            )
        return capture_onnx(Path(model), input_shapes)
    from edgewise.capture.hf_config import build_from_hf_config, hf_config_path

    config = hf_config_path(model)
    if config is not None:  # a Hugging Face config.json: the architecture, no weights
        from edgewise.capture.torch_capture import capture

        if workload is not None and (workload.frames is not None or workload.cfg):
            raise EdgewiseError("a Hugging Face config takes --batch and --resolution only")
        from edgewise.capture.cache import cached_graph, file_digest

        batch, resolution = (workload.batch, workload.resolution) if workload else (1, None)

        def make() -> Graph:
            built, args, kwargs = build_from_hf_config(config, batch, resolution)
            return capture(built, *args, name=str(config.parent.name or config.stem), **kwargs)

        key = {"hf_config": file_digest(config), "batch": batch, "resolution": resolution,
               "name": str(config.parent.name or config.stem)}  # fmt: skip
        return cached_graph(key, make)
    if model.endswith(".json") or Path(model).is_file():
        if workload is not None:
            raise EdgewiseError(
                f"'{model}' is a saved graph: its workload was fixed at capture; "
                "capture again with the workload options"
            )
        return load_graph(Path(model))
    return zoo_graph(model, workload)
