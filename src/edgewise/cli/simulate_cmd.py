"""`edgewise simulate`: every layer's latency, traffic, utilization and energy on a spec."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.text import Text

from edgewise.cli.common import (
    ROWS_DEFAULT,
    BatchOpt,
    CfgModeOpt,
    CfgOpt,
    ContextOpt,
    CsvOpt,
    DepthOpt,
    FramesOpt,
    HfConfigOpt,
    HwOpt,
    ImageSizeOpt,
    InputShapeOpt,
    JsonOpt,
    KvPrecisionOpt,
    ModelArg,
    ModuleOpt,
    NewTokensOpt,
    PhaseOpt,
    PromptTokensOpt,
    ResolutionOpt,
    SetOpt,
    StepsOpt,
    TraceOpt,
    bounded,
    check_plot,
    console,
    emit,
    generation_pipeline,
    graph_for,
    kv_precision_for,
    llm_request,
    output_target,
    pipeline_for,
    to_json,
    write_output,
    write_trace,
)
from edgewise.errors import EdgewiseError


def simulate(
    model: ModelArg = None,
    hw: HwOpt = "generic-npu",
    set_: SetOpt = None,
    precision: Annotated[
        str | None,
        typer.Option(
            "--precision", help="fp32 | fp16 | bf16 | int8 | wXaY (e.g. w4a8); default int8"
        ),
    ] = None,
    attention: Annotated[
        str, typer.Option("--attention", help="captured | materialized | fused")
    ] = "captured",
    by: Annotated[str, typer.Option("--by", help="op | layer | block")] = "layer",
    depth: DepthOpt = 2,
    rows: Annotated[
        int,
        typer.Option("--rows", help="slowest rows shown (0 = all)", callback=bounded(0, 1_000_000)),
    ] = ROWS_DEFAULT,
    plot: Annotated[
        Path | None,
        typer.Option(
            "--plot", help="write the charts (.png, .svg or .pdf)", callback=output_target
        ),
    ] = None,
    plan_file: Annotated[
        Path | None, typer.Option("--plan", help="apply a plan from `edgewise plan -o`")
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
    kv_precision: KvPrecisionOpt = None,
    trace: TraceOpt = None,
) -> None:
    """Latency, DRAM traffic, utilization and energy of every layer on an accelerator; for a
    pipeline (sd15, sdxl), of every phase and per image."""
    from edgewise.analysis.profile import row_keys
    from edgewise.hardware.spec import (
        compute_precision,
        default_precision,
        load_spec,
        parse_precision,
    )
    from edgewise.plan.plan import planned_workload
    from edgewise.report.simulate_report import (
        plot_simulation,
        render_simulation,
        simulation_to_csv,
        simulation_to_dict,
    )
    from edgewise.simulate.simulator import group_costs
    from edgewise.simulate.simulator import simulate as run_simulation

    if by not in ("op", "layer", "block"):
        raise EdgewiseError(f"--by must be op, layer or block (got '{by}')")
    if attention not in ("captured", "materialized", "fused"):
        raise EdgewiseError(
            f"--attention must be captured, materialized or fused (got '{attention}')"
        )
    check_plot(plot)
    spec = load_spec(hw, set_ or ())
    weights, activations = parse_precision(precision or default_precision(spec), spec)
    pipeline = None if module else pipeline_for(model, batch, resolution, frames, cfg, steps,
                                                 cfg_mode)  # fmt: skip
    if pipeline is not None:
        if csv_out or plot is not None or trace:
            raise EdgewiseError(
                "a pipeline is simulated phase by phase: --csv and --plot take one graph (give "
                "a phase's zoo model, e.g. sd15-unet)"
            )
        from edgewise.report.pipeline_report import pipeline_run_to_dict, render_pipeline_run
        from edgewise.simulate.pipeline import simulate_pipeline

        compute = compute_precision(weights, activations)
        if plan_file is None:
            run = simulate_pipeline(pipeline, spec, weights, activations, compute, attention)  # type: ignore[arg-type]
            records = None
        else:
            run, records = _planned_pipeline(pipeline, plan_file, spec, weights, activations,
                                             compute, attention)  # fmt: skip
        emit(
            json_out,
            lambda: pipeline_run_to_dict(run, records),
            lambda: render_pipeline_run(run, console),
        )
        return
    request = None if module else llm_request(model, phase, prompt_tokens, new_tokens, context,
                                              image_size)  # fmt: skip
    kv = kv_precision_for(kv_precision, request)
    mac_precision = compute_precision(weights, activations)
    if request is not None and request["phase"] == "generate":
        if csv_out or plot is not None or trace:
            raise EdgewiseError("--phase generate: --csv, --plot and --trace take one graph "
                                "(--phase prefill or decode)")  # fmt: skip
        if plan_file is None:
            _generate(request, spec, weights, activations, attention, json_out, kv)
            return
        from edgewise.report.pipeline_report import pipeline_run_to_dict, render_pipeline_run

        if kv is not None:
            raise EdgewiseError("--kv-precision with --plan: the plan file sets the KV cache's")
        run, records = _planned_pipeline(generation_pipeline(request), plan_file, spec, weights,
                                         activations, mac_precision, attention)  # fmt: skip
        emit(json_out, lambda: pipeline_run_to_dict(run, records),
             lambda: render_pipeline_run(run, console))  # fmt: skip
        return
    graph = graph_for(
        model, module, batch, resolution, frames, cfg, request, input_shape, hf_config
    )
    plan_record: dict[str, object] | None = None
    plan_line = ""
    work, schedule, loaded = planned_workload(graph, plan_file, spec, weights, activations,
                                              attention, kv)  # fmt: skip
    if loaded is not None:
        plan_record = {"file": str(plan_file), **loaded.summary()}
        plan_line = f"{plan_file}: {loaded.described()}"
    sim = run_simulation(work, spec, mac_precision, schedule=schedule)
    if not sim.totals.feasible:
        over = int(sim.traffic.overflow_bytes.max())
        at = int(sim.traffic.overflow_bytes.argmax())
        why = (
            sim.traffic.problems[0]
            if sim.traffic.problems
            else (f"{over:,} bytes over SRAM at op {at} ({graph.ops[at].scope})")
        )
        console.print(Text.assemble(("the plan does not fit:", "bold red"), f" {why}"))
    keys = tuple(row_keys(graph, by, depth))  # type: ignore[arg-type]
    grouped = group_costs(sim, keys, spec.peak_macs_per_s(mac_precision))
    write_trace(trace, graph, sim)
    if json_out:
        write_output(json_out, to_json(simulation_to_dict(sim, grouped, plan_record)))
    if csv_out:
        write_output(csv_out, simulation_to_csv(grouped))
    if plot is not None:
        layer_rows = (
            grouped
            if by == "layer"
            else group_costs(
                sim, tuple(op.scope for op in graph.ops), spec.peak_macs_per_s(mac_precision)
            )
        )
        plot_simulation(graph, sim, layer_rows, plot, spec.peak_macs_per_s(mac_precision),
                        spec.dram_bandwidth_bytes_per_s, spec.peak_vector_ops_per_s)  # fmt: skip
    if "-" not in (json_out, csv_out):
        render_simulation(sim, grouped, console, rows, plan_line)
        if plot is not None:
            console.print(f"charts written to {plot}")


def _planned_pipeline(pipeline, plan_file, spec, weights, activations, compute, attention):  # type: ignore[no-untyped-def]
    """Every phase under its plan from a pipeline plan file (`edgewise plan PIPELINE -o`)."""
    from edgewise.plan.plan import PlanPrecision, check_plan_for, load_pipeline_plan
    from edgewise.simulate.pipeline import pipeline_run, simulate_phase
    from edgewise.simulate.workload import op_workload

    graphs = {p.name: p.graph for p in pipeline.phases}
    plans = load_pipeline_plan(plan_file, pipeline.name, graphs)
    runs, records = [], {}
    for p in pipeline.phases:
        plan = plans[p.name]
        work = op_workload(p.graph, weights, activations, attention,  # type: ignore[arg-type]
                           kv_precision=plan.kv_precision)  # fmt: skip
        try:
            check_plan_for(plan, spec, PlanPrecision(weights, activations, compute), work)
        except EdgewiseError as e:
            raise EdgewiseError(f"plan '{plan_file}', phase '{p.name}': {e}") from None
        work = plan.workload(work, p.graph)
        schedule = plan.sram_schedule(work)
        run = simulate_phase(p.name, work, spec, compute, p.calls, schedule,
                             steps_per_call=p.steps_per_call)  # fmt: skip
        runs.append(run)
        records[p.name] = {"file": str(plan_file), **plan.summary()}
    return pipeline_run(pipeline, spec, compute, tuple(runs)), records


def _generate(request, spec, weights, activations, attention, json_out, kv) -> None:  # type: ignore[no-untyped-def]
    """Prefill, then every decode step (`api.generation`)."""
    from edgewise.api import generation
    from edgewise.report.generation_report import generation_to_dict, render_generation

    gen = generation(request, spec, weights, activations, attention, kv)
    emit(json_out, lambda: generation_to_dict(gen), lambda: render_generation(gen, console))
