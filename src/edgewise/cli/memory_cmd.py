"""`edgewise memory`: the memory timeline, and its check against a real run."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from edgewise.cli.common import (
    ROWS_DEFAULT,
    BatchOpt,
    CfgModeOpt,
    CfgOpt,
    ContextOpt,
    CsvOpt,
    FramesOpt,
    HfConfigOpt,
    ImageSizeOpt,
    InputShapeOpt,
    JsonOpt,
    ModelArg,
    ModuleOpt,
    NewTokensOpt,
    PhaseOpt,
    PromptTokensOpt,
    ResolutionOpt,
    StepsOpt,
    bounded,
    check_plot,
    console,
    emit,
    generation_graphs,
    graph_for,
    llm_request,
    output_target,
    pipeline_for,
    size_in_bytes,
    to_json,
    workload_for,
    write_output,
)
from edgewise.errors import EdgewiseError


def memory(
    model: ModelArg = None,
    lifetimes: Annotated[
        str, typer.Option("--lifetimes", help="last-use (compiler) | eager (as PyTorch runs)")
    ] = "last-use",
    attention: Annotated[
        str, typer.Option("--attention", help="captured | materialized | fused")
    ] = "captured",
    dtype: Annotated[
        str | None, typer.Option("--dtype", help="rescale activations: fp32|fp16|bf16|int8")
    ] = None,
    long_lived: Annotated[
        int,
        typer.Option(
            "--long-lived",
            help="a tensor outliving N ops is long-lived",
            callback=bounded(1, 10**9),
        ),
    ] = 100,
    tile_sram: Annotated[
        int,
        typer.Option(
            "--tile-sram",
            help="SRAM a fused attention tile fits in (bytes, or with units: 256KiB)",
            parser=size_in_bytes,
        ),
    ] = 256 * 1024,
    measure: Annotated[
        bool, typer.Option("--measure", help="run the real model and measure its peak")
    ] = False,
    device: Annotated[str, typer.Option("--device", help="cpu | cuda (with --measure)")] = "cpu",
    rows: Annotated[
        int,
        typer.Option(
            "--rows", help="long-lived rows shown (0 = all)", callback=bounded(0, 1_000_000)
        ),
    ] = ROWS_DEFAULT,
    plot: Annotated[
        Path | None,
        typer.Option(
            "--plot", help="write the timeline (.png, .svg or .pdf)", callback=output_target
        ),
    ] = None,
    json_out: JsonOpt = None,
    csv_out: CsvOpt = None,
    module: ModuleOpt = None,
    input_shape: InputShapeOpt = None,
    hf_config: HfConfigOpt = None,
    batch: BatchOpt = None,
    resolution: ResolutionOpt = None,
    frames: FramesOpt = None,
    cfg: CfgOpt = False,
    steps: StepsOpt = None,
    cfg_mode: CfgModeOpt = None,
    phase: PhaseOpt = None,
    prompt_tokens: PromptTokensOpt = None,
    new_tokens: NewTokensOpt = None,
    context: ContextOpt = None,
    image_size: ImageSizeOpt = None,
) -> None:
    """Live memory at every op: activations, skips, attention scores; peak; real-run check;
    for a pipeline (sd15, sdxl), each phase's peak and the peak per image."""
    from edgewise.analysis.memory import memory_timeline
    from edgewise.ir.vocab import AttentionMode, parse_enum
    from edgewise.report.memory_report import (
        memory_to_csv,
        memory_to_dict,
        plot_memory,
        render_memory,
    )

    check_plot(plot)
    if device not in ("cpu", "cuda"):
        raise EdgewiseError(f"--device must be cpu or cuda (got '{device}')")
    parse_enum(AttentionMode, attention, "--attention")
    if lifetimes not in ("last-use", "eager"):
        raise EdgewiseError(f"--lifetimes must be last-use or eager (got '{lifetimes}')")
    if tile_sram < 1024:
        raise EdgewiseError(f"--tile-sram must be at least 1024 bytes (got {tile_sram})")
    options = dict(attention=attention, dtype=dtype, long_lived_ops=long_lived,
                   tile_sram_bytes=tile_sram)  # fmt: skip
    pipeline = None if module else pipeline_for(model, batch, resolution, frames, cfg, steps,
                                                 cfg_mode)  # fmt: skip
    if pipeline is not None:
        from edgewise.analysis.pipeline import pipeline_memory
        from edgewise.report.pipeline_report import (
            pipeline_memory_to_dict,
            render_pipeline_memory,
        )

        if measure or csv_out or plot is not None:
            raise EdgewiseError(
                "--measure, --csv and --plot take one graph: give a phase's zoo model "
                "(e.g. sd15-unet)"
            )
        mem = pipeline_memory(pipeline, lifetimes=lifetimes, **options)  # type: ignore[arg-type]
        emit(
            json_out,
            lambda: pipeline_memory_to_dict(mem),
            lambda: render_pipeline_memory(mem, console),
        )
        return
    request = None if module else llm_request(model, phase, prompt_tokens, new_tokens, context,
                                              image_size)  # fmt: skip
    if request is not None and request["phase"] == "generate":
        _generation_memory(request, dtype, options, measure or bool(csv_out) or plot is not None,
                           json_out)  # fmt: skip
        return
    if request is not None and measure:
        raise EdgewiseError("--measure runs zoo models and --module factories, not --phase")
    graph = graph_for(
        model, module, batch, resolution, frames, cfg, request, input_shape, hf_config
    )
    tl = memory_timeline(graph, lifetimes=lifetimes, **options)  # type: ignore[arg-type]
    measured, eager_peak = None, None
    if measure:
        from edgewise.cli.common import working

        with working(f"measuring {graph.model}'s peak on {device} (a real forward)"):
            measured, eager_peak = _measure(graph, model, module, batch, resolution, frames, cfg,
                                            dtype or "fp32", device, options)  # fmt: skip
    if json_out:
        data = memory_to_dict(tl, measured)
        if eager_peak is not None:
            data["predicted_eager_peak_bytes"] = eager_peak
        write_output(json_out, to_json(data))
    if csv_out:
        write_output(csv_out, memory_to_csv(tl))
    if plot is not None:
        plot_memory(graph, tl, plot)
    if "-" not in (json_out, csv_out):
        render_memory(tl, console, measured, eager_peak, rows)
        if plot is not None:
            console.print(f"timeline written to {plot}")


def _generation_memory(request, dtype, options, one_graph_only, json_out) -> None:  # type: ignore[no-untyped-def]
    from edgewise.analysis.generation import generation_memory
    from edgewise.capture.llm import llm_entry
    from edgewise.ir.graph import DTYPE_BYTES
    from edgewise.report.generation_report import (
        generation_memory_to_dict,
        render_generation_memory,
    )

    if one_graph_only:
        raise EdgewiseError("--phase generate: --measure, --csv and --plot take one graph")
    prefill, _first, last, prompt = generation_graphs(request)
    kv_dtype = {"fp32": "float32", "fp16": "float16", "bf16": "bfloat16", "int8": "int8"}
    bytes_per_value = DTYPE_BYTES[kv_dtype[dtype]] if dtype else 4.0  # as captured: fp32
    entry = llm_entry(request["name"])
    kv = entry.kv_bytes_per_token(bytes_per_value)
    rest = {k: v for k, v in options.items() if k != "dtype"}
    mem = generation_memory(prefill, last, prompt, request["new_tokens"], kv, dtype, **rest)
    emit(
        json_out,
        lambda: generation_memory_to_dict(mem),
        lambda: render_generation_memory(mem, console),
    )


def _measure(graph, model, module, batch, resolution, frames, cfg, dtype, device, options):  # type: ignore[no-untyped-def]
    """Run the real model and measure; refuse first if it would not fit in memory."""
    from edgewise.analysis.memory import memory_timeline
    from edgewise.capture.source import model_from_source
    from edgewise.execute.measure import TORCH_DTYPES, check_fits, materialize, measure_peak

    if dtype not in TORCH_DTYPES:
        raise EdgewiseError(f"--measure runs in {', '.join(TORCH_DTYPES)} (got --dtype {dtype})")
    eager = memory_timeline(graph, lifetimes="eager", **{**options, "dtype": dtype})
    scale = TORCH_DTYPES[dtype].itemsize
    weights = graph.parameter_count * scale
    check_fits(int(weights + eager.inputs.max(initial=0) + 1.2 * eager.peak_bytes), device)
    workload = workload_for(batch, resolution, frames, cfg)
    built = model_from_source(model, module, workload)
    real = materialize(*built, dtype=dtype, device=device)
    return measure_peak(*real, device=device), eager.peak_bytes
