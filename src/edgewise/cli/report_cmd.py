"""`edgewise report`: one self-contained HTML file of a model on a spec (`report.html_report`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from edgewise.cli.common import (
    BatchOpt,
    CfgModeOpt,
    CfgOpt,
    ContextOpt,
    FramesOpt,
    HfConfigOpt,
    HwOpt,
    ImageSizeOpt,
    InputShapeOpt,
    KvPrecisionOpt,
    ModelArg,
    ModuleOpt,
    PhaseOpt,
    PromptTokensOpt,
    ResolutionOpt,
    SetOpt,
    StepsOpt,
    command_line,
    console,
    graph_for,
    kv_precision_for,
    llm_request,
    output_target,
    pipeline_for,
    write_output,
)
from edgewise.errors import EdgewiseError


def report(
    ctx: typer.Context,
    model: ModelArg = None,
    output: Annotated[
        str,
        typer.Option("-o", "--output", help="the HTML file to write", callback=output_target),
    ] = "report.html",
    hw: HwOpt = "generic-npu",
    set_: SetOpt = None,
    precision: Annotated[
        str | None, typer.Option("--precision", help="fp32 | fp16 | bf16 | int8 | wXaY")
    ] = None,
    plan_file: Annotated[
        Path | None, typer.Option("--plan", help="a plan from `edgewise plan -o`: before/after")
    ] = None,
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
    context: ContextOpt = None,
    image_size: ImageSizeOpt = None,
    kv_precision: KvPrecisionOpt = None,
) -> None:
    """One HTML file that opens offline: layers, memory, latency, roofline, energy, the
    plan, the uncounted ledger, the spec's sources; a pipeline per phase."""
    from edgewise.hardware.spec import (
        compute_precision,
        default_precision,
        load_spec,
        parse_precision,
    )
    from edgewise.ir.vocab import AttentionMode
    from edgewise.report import html_report

    if not output.lower().endswith((".html", ".htm")) or output == "-":
        raise EdgewiseError(f"-o takes an .html file (got '{output}')")
    spec = load_spec(hw, set_ or ())
    weights, activations = parse_precision(precision or default_precision(spec), spec)
    compute = compute_precision(weights, activations)
    command = command_line(ctx)
    pipeline = None if module else pipeline_for(model, batch, resolution, frames, cfg, steps,
                                                 cfg_mode)  # fmt: skip
    if pipeline is not None:
        from edgewise.simulate.pipeline import simulate_pipeline

        if plan_file is not None:
            raise EdgewiseError("report --plan takes one graph: give a phase's zoo model")
        run = simulate_pipeline(
            pipeline, spec, weights, activations, compute, AttentionMode.CAPTURED
        )
        write_output(output, html_report.pipeline_report(run, spec, command))
        console.print(f"report written to {output}")
        return
    request = None if module else llm_request(model, phase, prompt_tokens, None, context,
                                              image_size, generate=False)  # fmt: skip
    kv = kv_precision_for(kv_precision, request)
    graph = graph_for(
        model, module, batch, resolution, frames, cfg, request, input_shape, hf_config
    )
    html = html_report.graph_html(
        graph, spec, weights, activations, compute, command, plan_file, kv
    )
    write_output(output, html)
    console.print(f"report written to {output}")
