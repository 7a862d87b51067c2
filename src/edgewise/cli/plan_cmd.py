"""`edgewise plan`: keep, spill or recompute each long-lived tensor, optimally."""

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


def plan(
    model: ModelArg = None,
    hw: HwOpt = "generic-npu",
    set_: SetOpt = None,
    precision: Annotated[
        str | None,
        typer.Option("--precision", help="fp32 | fp16 | bf16 | int8 | wXaY; default int8"),
    ] = None,
    objective: Annotated[
        str, typer.Option("--objective", help="latency | energy | dram")
    ] = "latency",
    allow: Annotated[
        str,
        typer.Option(
            "--allow",
            help="comma list of keep, spill, recompute, residency (weights held on chip across "
            "a phase's calls), precision, kv-precision (a decode step's KV cache), tiling",
        ),
    ] = "keep,spill,recompute,residency",
    floor: Annotated[
        list[str] | None,
        typer.Option(
            "--floor",
            metavar="GLOB=PRECISION",
            help="lowest weight precision for matching layers (kv_cache: the KV cache's)",
        ),
    ] = None,
    sensitivity: Annotated[
        Path | None, typer.Option("--sensitivity", help="per-layer error per precision (JSON)")
    ] = None,
    accuracy_budget: Annotated[
        float | None,
        typer.Option(
            "--accuracy-budget",
            help="sum of chosen layers' errors may not exceed it",
            callback=bounded(0, 1e30),
        ),
    ] = None,
    solver: Annotated[str, typer.Option("--solver", help="milp (exact) | greedy (fast)")] = "milp",
    time_limit: Annotated[
        float,
        typer.Option(
            "--time-limit", help="MILP time limit, seconds", callback=bounded(0.01, 86400)
        ),
    ] = 60.0,
    long_lived: Annotated[
        int,
        typer.Option(
            "--long-lived",
            help="a tensor outliving N ops is long-lived",
            callback=bounded(1, 10**9),
        ),
    ] = 100,
    output: Annotated[
        Path | None,
        typer.Option("-o", "--output", help="write the plan (JSON)", callback=output_target),
    ] = None,
    plot: Annotated[
        Path | None,
        typer.Option(
            "--plot",
            help="SRAM and decisions before/after (.png, .svg or .pdf)",
            callback=output_target,
        ),
    ] = None,
    json_out: JsonOpt = None,
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
    """Keep, spill or recompute each long-lived tensor, hold weights across calls, and more;
    compare with the obvious plans. A pipeline (sd15, sdxl) is planned phase by phase."""
    from edgewise.hardware.spec import (
        compute_precision,
        default_precision,
        load_spec,
        parse_precision,
    )
    from edgewise.plan.plan import save_plan
    from edgewise.plan.planner import make_plan
    from edgewise.report.plan_report import outcome_to_dict, plot_outcome, render_outcome

    check_plot(plot)
    if output is not None and not output.parent.exists():
        raise EdgewiseError(f"cannot write '{output}': folder '{output.parent}' does not exist")
    spec = load_spec(hw, set_ or ())
    weights, activations = parse_precision(precision or default_precision(spec), spec)
    allowed = frozenset(a.strip() for a in allow.split(",") if a.strip())
    pipeline = None if module else pipeline_for(model, batch, resolution, frames, cfg, steps,
                                                 cfg_mode)  # fmt: skip
    if pipeline is not None and trace:
        raise EdgewiseError("--trace takes one graph: give a phase's zoo model (e.g. sd15-unet)")
    if pipeline is not None:
        if "kv-precision" in allowed or kv_precision is not None:
            raise EdgewiseError(f"--allow kv-precision and --kv-precision are for language "
                                f"models; '{pipeline.name}' has no KV cache")  # fmt: skip
        if plot is not None:
            raise EdgewiseError("--plot takes one graph: give a phase's zoo model (e.g. sd15-unet)")
        _plan_pipeline(pipeline, spec, weights, activations, objective, allowed, solver,
                       time_limit, long_lived, floor or (), sensitivity, accuracy_budget, output,
                       json_out)  # fmt: skip
        return
    request = None if module else llm_request(model, phase, prompt_tokens, new_tokens, context,
                                              image_size)  # fmt: skip
    kv = kv_precision_for(kv_precision, request)
    if "kv-precision" in allowed and (request is None or request["phase"] == "prefill"):
        raise EdgewiseError("--allow kv-precision decides a decode step's KV cache: give a "
                            "language model with --phase decode or generate")  # fmt: skip
    if request is not None and request["phase"] == "generate":
        if plot is not None or trace:
            raise EdgewiseError("--plot and --trace take one graph: --phase prefill or decode")
        _plan_pipeline(generation_pipeline(request), spec, weights, activations, objective,
                       allowed, solver, time_limit, long_lived, floor or (), sensitivity,
                       accuracy_budget, output, json_out, kv)  # fmt: skip
        return
    graph = graph_for(
        model, module, batch, resolution, frames, cfg, request, input_shape, hf_config
    )
    outcome = make_plan(
        graph,
        spec,
        weights,
        activations,
        compute_precision(weights, activations),
        objective,
        allowed,
        solver,
        time_limit,
        long_lived,
        floor or (),
        sensitivity,
        accuracy_budget,
        kv_precision=kv,
    )
    if output is not None and outcome.plan is not None:
        save_plan(outcome.plan, output)
    infeasible = outcome.plan is None
    if not infeasible:
        write_trace(trace, graph, outcome.simulations["plan"].first)
    if json_out:
        write_output(json_out, to_json(outcome_to_dict(outcome)))
    if plot is not None:
        plot_outcome(outcome, plot)
    if json_out != "-":
        render_outcome(outcome, console)
        if output is not None and outcome.plan is not None:
            console.print(f"plan written to {output} (use: edgewise simulate ... --plan {output})")
    if infeasible and output is not None:
        raise EdgewiseError(
            f"no plan fits this SRAM budget, so '{output}' was not written: see the smallest "
            "SRAM above, or allow more actions (--allow keep,spill,recompute)"
        )


def _plan_pipeline(pipeline, spec, weights, activations, objective, allowed, solver, time_limit,  # type: ignore[no-untyped-def]
                   long_lived, floors, sensitivity, budget, output, json_out,
                   kv=None) -> None:  # fmt: skip
    """Each phase planned over its calls; the run's totals with and without the plans."""
    from dataclasses import replace

    from edgewise.hardware.spec import compute_precision
    from edgewise.ir.files import write_atomic
    from edgewise.plan.plan import pipeline_plan_json
    from edgewise.plan.planner import make_plan
    from edgewise.report.pipeline_report import pipeline_plans_to_dict, render_pipeline_plans
    from edgewise.simulate.pipeline import pipeline_run

    compute = compute_precision(weights, activations)
    outcomes = {
        p.name: make_plan(
            p.graph,
            spec,
            weights,
            activations,
            compute,
            objective,
            allowed,
            solver,
            time_limit,
            long_lived,
            floors,
            sensitivity,
            budget,
            calls=p.calls,
            kv_precision=kv,
        )
        for p in pipeline.phases
    }

    def run(alternative: str):  # type: ignore[no-untyped-def]
        phases = tuple(
            replace(
                outcomes[p.name].simulations[alternative],
                name=p.name,
                steps_per_call=p.steps_per_call,
            )
            for p in pipeline.phases
        )
        return pipeline_run(pipeline, spec, compute, phases)

    infeasible = [name for name, o in outcomes.items() if o.plan is None]
    default = run("keep-fit")
    planned = run("plan") if not infeasible else default
    if json_out:
        write_output(json_out, to_json(pipeline_plans_to_dict(outcomes, default, planned)))
    if json_out != "-":
        render_pipeline_plans(outcomes, default, planned, console)
    if infeasible:
        raise EdgewiseError(
            f"no plan fits this SRAM budget for phase {infeasible[0]}: plan that phase alone "
            "(its zoo model) to see the smallest SRAM that works"
        )
    if output is not None:
        plans = {name: o.plan for name, o in outcomes.items() if o.plan is not None}
        write_atomic(output, pipeline_plan_json(pipeline.name, plans))
        if json_out != "-":
            console.print(f"plan written to {output} (use: edgewise simulate {pipeline.name} "
                          f"... --plan {output})")  # fmt: skip
