"""What every `edgewise` command shares: the console, output files, model options."""

from __future__ import annotations

import math
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console

from edgewise.capture.workload import workload_for  # the commands' zoo options
from edgewise.errors import EdgewiseError

if TYPE_CHECKING:
    from edgewise.ir.graph import Graph
    from edgewise.ir.pipeline import Pipeline

# pipes and CI get a wide table; no markup or emoji codes: model names, scopes and file names
# are printed as they are ('pkg:factory' is no emoji, '[bold]' no style)
console = Console(width=None if sys.stdout.isatty() else 160, markup=False, emoji=False)
QUIET = [False]  # --quiet (anywhere on the line): no progress on stderr


@contextmanager
def working(what: str) -> Iterator[None]:
    """A spinner with the elapsed time on stderr while `what` runs, gone when it ends; off
    when stderr is not a terminal or with --quiet. Not for timed work (the spinner's
    thread would take time from what is measured): those print `progress_line`s."""
    if QUIET[0] or not sys.stderr.isatty():
        yield
        return
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    stderr = Console(stderr=True, markup=False, emoji=False)
    columns = (SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn())
    with Progress(*columns, console=stderr, transient=True) as bar:
        bar.add_task(what, total=None)
        yield


def progress_line(text: str) -> None:
    """One line of progress on stderr (not with --quiet)."""
    if not QUIET[0]:
        print(text, file=sys.stderr, flush=True)


def bounded(low: float, high: float, low_open: bool = False) -> Any:
    """A callback that keeps a number option inside [low, high] (or (low, high]) and
    names the range when it does not; NaN, which passes every range check, is refused."""

    def check(param: typer.CallbackParam, value: Any) -> Any:
        if value is None:
            return value
        inside = (
            math.isfinite(value) and (low < value if low_open else low <= value) and value <= high
        )
        if not inside:
            side = "(" if low_open else "["
            raise typer.BadParameter(f"{value} is outside {side}{low:,}, {high:,}]", param=param)  # type: ignore[arg-type]
        return value

    return check


def size_in_bytes(text: str) -> int:
    """A byte count on the command line, with units as spec files write them."""
    from edgewise.hardware.spec import parse_bytes

    try:
        return parse_bytes(text)
    except ValueError as e:
        raise typer.BadParameter(str(e)) from None


def output_target(param: typer.CallbackParam, value: Any) -> Any:
    """Every output option is checked as it is parsed: a folder, a missing folder or an
    unwritable file fails the command before it does any work."""
    from edgewise.ir.files import check_target

    if value is not None and str(value) != "-":
        check_target(str(value), "/".join(param.opts))
    return value


# --- options shared by every command that takes a model --------------------------------
ModelArg = Annotated[
    str | None,
    typer.Argument(
        help="zoo model or pipeline (see `edgewise zoo`), or a graph file from `edgewise capture`"
    ),
]
ModuleOpt = Annotated[
    str | None,
    typer.Option(
        "--module",
        help="your own model: 'package.module:factory' returning (model, args[, kwargs])",
    ),
]
InputShapeOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--input-shape",
        metavar="NAME=DIMS",
        help="an ONNX file's input dims, e.g. pixel_values=1x3x224x224 (repeatable)",
    ),
]
HfConfigOpt = Annotated[
    str | None,
    typer.Option(
        "--hf-config",
        metavar="PATH",
        help="a Hugging Face config.json, or the folder holding one: its architecture, built "
        "without weights (the same as giving the path as MODEL)",
    ),
]
BatchOpt = Annotated[
    int | None, typer.Option("--batch", help="batch size (zoo models)", callback=bounded(1, 65536))
]
ResolutionOpt = Annotated[
    int | None,
    typer.Option(
        "--resolution", help="image size in pixels (zoo models)", callback=bounded(1, 65536)
    ),
]
FramesOpt = Annotated[
    int | None, typer.Option("--frames", help="video frames (vivit-b)", callback=bounded(1, 65536))
]
CfgOpt = Annotated[
    bool,
    typer.Option("--cfg/--no-cfg", help="classifier-free guidance: doubles the U-Net batch"),
]
ROWS_DEFAULT = 20  # every table that shows the top N rows shows 20 unless told
StepsOpt = Annotated[
    int | None,
    typer.Option(
        "--steps",
        help="denoising steps per image (pipelines: sd15, sdxl; default 25)",
        callback=bounded(1, 500_000),
    ),
]
CfgModeOpt = Annotated[
    str | None,
    typer.Option(
        "--cfg-mode",
        help="pipelines with --cfg: batch (one batch-2 U-Net call per step) or sequential "
        "(two batch-1 calls)",
    ),
]
PhaseOpt = Annotated[
    str | None,
    typer.Option(
        "--phase",
        help="language models: prefill (the prompt; default) | decode (one token against "
        "--context cached) | generate (prefill, then --new-tokens decode steps)",
    ),
]
PromptTokensOpt = Annotated[
    int | None,
    typer.Option("--prompt-tokens", help="language models: prompt tokens (default 128)"),
]
NewTokensOpt = Annotated[
    int | None,
    typer.Option("--new-tokens", help="language models, --phase generate: tokens made (128)"),
]
ContextOpt = Annotated[
    int | None,
    typer.Option("--context", help="language models, --phase decode: cached tokens (1024)"),
]
KvPrecisionOpt = Annotated[
    str | None,
    typer.Option(
        "--kv-precision",
        help="language models: the KV cache's precision, apart from the weights "
        "(fp16 | int8 | int4; default the activations')",
    ),
]
ImageSizeOpt = Annotated[
    int | None,
    typer.Option("--image-size", help="vision-language models: image side in pixels"),
]


DepthOpt = Annotated[
    int, typer.Option("--depth", help="scope depth of a block", callback=bounded(0, 64))
]
JsonOpt = Annotated[
    str | None,
    typer.Option("--json", help="write JSON to FILE ('-' for stdout)", callback=output_target),
]
CsvOpt = Annotated[
    str | None,
    typer.Option("--csv", help="write CSV to FILE ('-' for stdout)", callback=output_target),
]
TraceOpt = Annotated[
    str | None,
    typer.Option(
        "--trace",
        help="write the simulated schedule as a Trace Event Format JSON (open in Perfetto)",
        callback=output_target,
    ),
]
HwOpt = Annotated[str, typer.Option("--hw", help="hardware preset (edgewise hw list) or spec file")]
SetOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--set",
        metavar="PATH=VALUE",
        help="override a spec field before validation, e.g. sram_bytes=2MiB, mac_array.rows=64, "
        "macs_per_cycle.int4=4096 (null removes an entry; repeatable)",
    ),
]


def graph_for(
    model: str | None,
    module: str | None,
    batch: int | None,
    resolution: int | None,
    frames: int | None,
    cfg: bool,
    request: dict[str, Any] | None = None,
    input_shape: list[str] | None = None,
    hf_config: str | None = None,
) -> Graph:
    """The graph behind MODEL, --module or --hf-config, at the workload the options
    describe; a language model's prefill or decode graph when `request` (`llm_request`)
    names one. `input_shape` binds an ONNX file's input dims."""
    if request is not None:
        return llm_graph(request)
    from edgewise.capture.onnx_capture import parse_input_shapes
    from edgewise.capture.source import graph_from_source

    if hf_config is not None:
        from edgewise.capture.hf_config import hf_config_path

        if model or module:
            raise EdgewiseError("give a MODEL, --module or --hf-config, not two of them")
        if not Path(hf_config).exists() or hf_config_path(hf_config) is None:
            raise EdgewiseError(
                f"--hf-config: '{hf_config}' is not a Hugging Face config.json (one naming "
                "'architectures' or '_class_name') nor a folder holding one"
            )
        model = hf_config
    shapes = parse_input_shapes(input_shape)
    workload = workload_for(batch, resolution, frames, cfg)
    with working(f"capturing {model or module}"):
        return graph_from_source(model, module, workload, shapes)


def pipeline_for(
    model: str | None,
    batch: int | None,
    resolution: int | None,
    frames: int | None,
    cfg: bool,
    steps: int | None,
    cfg_mode: str | None,
) -> Pipeline | None:
    """`capture.pipelines.pipeline_named` (imported when a command runs)."""
    from edgewise.capture.pipelines import pipeline_named

    return pipeline_named(model, batch, resolution, frames, cfg, steps, cfg_mode)


def kv_precision_for(value: str | None, request: dict[str, Any] | None) -> str | None:
    """`capture.llm.kv_precision_for`, imported when a command runs."""
    from edgewise.capture.llm import kv_precision_for as checked

    return checked(value, request)


if TYPE_CHECKING:  # the signature, for the type checker
    from edgewise.capture.llm import phase_request as llm_request
else:

    def llm_request(*args: Any, **kwargs: Any) -> dict[str, Any] | None:
        """`capture.llm.phase_request` (imported when a command runs, not at start-up)."""
        from edgewise.capture.llm import phase_request

        return phase_request(*args, **kwargs)


def generation_graphs(request: dict[str, Any]) -> tuple[Graph, Graph, Graph, int]:
    """`capture.llm.generation_graphs`, imported when needed."""
    from edgewise.capture.llm import generation_graphs as graphs

    return graphs(request)


def generation_pipeline(request: dict[str, Any]) -> Pipeline:
    """`capture.llm.generation_pipeline`, imported when needed."""
    from edgewise.capture.llm import generation_pipeline as pipeline

    return pipeline(request)


def llm_graph(request: dict[str, Any]) -> Graph:
    """The prefill or decode graph a request names (cached), with a spinner."""
    from edgewise.capture.llm import phase_graph

    with working(f"capturing {request['name']} ({request['phase']})"):
        return phase_graph(request)


def write_output(target: str, text: str) -> None:
    """'-' is stdout; a file is written whole, with the command's other files, when the
    command has succeeded (`edgewise.ir.files.stage_outputs`)."""
    from edgewise.ir.files import check_target, write_atomic

    if target == "-":
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
        return
    write_atomic(check_target(target, "output"), text)


def emit(json_out: str | None, data: Any, render: Any) -> None:
    """`--json` gets `data()` (a file, or '-' for stdout); the console gets `render()`
    unless the JSON went to stdout."""
    if json_out:
        write_output(json_out, to_json(data()))
    if json_out != "-":
        render()


def to_json(data: Any) -> str:
    """Strict JSON: a figure that is not finite is written as null, its path listed."""
    from edgewise.ir.files import strict_json

    return strict_json(data, indent=2)


def command_line(ctx: typer.Context) -> str:
    """The running command as a shell line that repeats it: the arguments, and every option
    whose value is not its default (the same line whether the shell or a test ran it)."""
    import shlex

    words = [ctx.info_name or ""]
    for param in ctx.command.params:
        value = ctx.params.get(param.name or "")
        if param.param_type_name == "argument":
            words += [] if value is None else [str(value)]
            continue
        if value is None or value == param.default or value in ((), []) or not param.opts:
            continue
        flag = max(param.opts, key=len)
        if isinstance(value, bool):
            words.append(flag if value else (getattr(param, "secondary_opts", None) or [flag])[0])
        elif isinstance(value, list | tuple):
            for v in value:
                words += [flag, str(v)]
        else:
            words += [flag, str(value)]
    return shlex.join(["edgewise", *words])


PLOT_SUFFIXES = (".png", ".svg", ".pdf")


def check_plot(plot: Path | None) -> None:
    if plot is not None and plot.suffix.lower() not in PLOT_SUFFIXES:
        raise EdgewiseError(
            f"--plot writes PNG, SVG or PDF: give a file ending in .png, .svg or .pdf "
            f"(got '{plot}')"
        )


def write_trace(target: str | None, graph: Graph, sim: Any) -> None:
    """--trace: the simulated schedule (`report.trace`)."""
    if target is not None:
        from edgewise.ir.files import strict_json
        from edgewise.report.trace import trace_events

        write_output(target, strict_json(trace_events(graph, sim)))
