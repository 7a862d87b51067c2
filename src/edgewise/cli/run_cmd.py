"""`edgewise run`: apply a plan to the real PyTorch model and measure what it saves."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from edgewise.cli.common import (
    BatchOpt,
    CfgOpt,
    ContextOpt,
    FramesOpt,
    ImageSizeOpt,
    JsonOpt,
    ModelArg,
    ModuleOpt,
    PhaseOpt,
    PromptTokensOpt,
    ResolutionOpt,
    bounded,
    console,
    graph_for,
    llm_request,
    progress_line,
    to_json,
    workload_for,
    write_output,
)

if TYPE_CHECKING:
    from rich.console import Console

    from edgewise.execute.run import PlanRun


def run(
    model: ModelArg = None,
    plan_file: Annotated[
        Path | None,
        typer.Option("--plan", help="the plan to apply (`edgewise plan -o`); none: replay only"),
    ] = None,
    weights: Annotated[
        Path | None,
        typer.Option("--weights", help="real weights (.safetensors); default: random"),
    ] = None,
    device: Annotated[str, typer.Option("--device", help="cpu | cuda")] = "cpu",
    repeat: Annotated[
        int,
        typer.Option(
            "--repeat",
            help="timed runs of each forward (median and min-max spread)",
            callback=bounded(1, 1000),
        ),
    ] = 3,
    int8_kernels: Annotated[
        bool,
        typer.Option("--int8-kernels", help="int8 layers' matmuls on PyTorch's int8-weight kernel"),
    ] = False,
    json_out: JsonOpt = None,
    module: ModuleOpt = None,
    batch: BatchOpt = None,
    resolution: ResolutionOpt = None,
    frames: FramesOpt = None,
    cfg: CfgOpt = False,
    phase: PhaseOpt = None,
    prompt_tokens: PromptTokensOpt = None,
    context: ContextOpt = None,
    image_size: ImageSizeOpt = None,
) -> None:
    """Run the real model with a plan applied: peak memory, latency, output fidelity; a
    language model's prefill or decode step (its KV cache real, random) likewise."""
    from edgewise.capture.source import model_for_run
    from edgewise.execute.run import check_run, plan_run_to_dict, real_model, run_plan
    from edgewise.plan.plan import load_plan

    request = None if module else llm_request(model, phase, prompt_tokens, None, context,
                                              image_size, generate=False)  # fmt: skip
    check_run(device, repeat, weights, request)
    graph = graph_for(model, module, batch, resolution, frames, cfg, request)
    plan = load_plan(plan_file, graph) if plan_file is not None else None
    built = model_for_run(request, model, module, workload_for(batch, resolution, frames, cfg))
    real, args, kwargs = real_model(graph, built, plan, device, weights)
    forwards = "eager, interpreter" + (", interpreter + plan" if plan is not None else "")
    progress_line(f"running {graph.model} on {device}: {forwards}; 1 warm-up + {repeat} timed "
                  "runs each")  # fmt: skip
    result = run_plan(graph, real, args, kwargs, plan, device, repeat, int8_kernels)
    if json_out:
        data = plan_run_to_dict(result)
        data["plan"] = None if plan is None else {"file": str(plan_file), **plan.summary()}
        write_output(json_out, to_json(data))
    if json_out != "-":
        if plan is not None:
            console.print(f"plan {plan_file}: {plan.described()}")
        render_run(result, console, planned=plan is not None)


def render_run(result: PlanRun, out: Console, planned: bool = True) -> None:
    """The measured figures; without a plan (`planned` False), no plan row and no
    savings: the run checks the interpreter against the eager model only."""
    from rich.table import Table

    from edgewise.report.format import LOADED_SPREAD, change, si, spread, timing, timing_change
    from edgewise.report.format import binary_bytes as mib

    table = Table(title=f"{result.model} on {result.device}: measured ({result.method}) "
                  f"vs predicted, median of {result.repeat}")  # fmt: skip
    for col in ("forward", "peak measured", "peak predicted", "error", "latency"):
        table.add_column(col, justify="left" if col == "forward" else "right")
    rows = (("eager model", result.eager), ("interpreter", result.baseline),
            ("interpreter + plan", result.planned))[: 3 if planned else 2]  # fmt: skip
    for name, f in rows:
        error = (f.predicted_peak_bytes - f.peak_bytes) / f.peak_bytes if f.peak_bytes else 0.0
        table.add_row(name, mib(f.peak_bytes), mib(f.predicted_peak_bytes), f"{error:+.1%}",
                      timing(f.run_s))  # fmt: skip
    out.print(table)
    base = result.baseline
    if any(spread(f.run_s) > LOADED_SPREAD for _, f in rows):
        out.print(f"warning: runs vary by more than {LOADED_SPREAD:.0%} of their median: the "
                  "machine is busy; time differences here are not to be trusted")  # fmt: skip
    if not planned:
        fid = result.replay
        worst = si(fid.max_abs_error)
        said = "bit-exact" if fid.bit_exact else f"max |error| {worst}, SQNR {fid.sqnr_db:.1f} dB"
        out.print(f"replay (interpreter vs eager): {said}")
        return
    out.print(
        f"plan {change(-result.saved_bytes, mib)} of the interpreter's peak (predicted: "
        f"{change(-result.predicted_saved_bytes, mib)}); time "
        f"{timing_change(result.planned.run_s, base.run_s)}"
    )
    actions = ", ".join(f"{n} {a}" for a, n in result.actions.items() if n) or "no tensor moved"
    extra = [f"{result.recomputed_ops} ops re-run"] if result.recomputed_ops else []
    if result.pool_peak_bytes:
        extra.append(f"spill pool peak {mib(result.pool_peak_bytes)}")
    if result.quantized_layers:
        acts = f"int{result.activation_bits}" if result.activation_bits else "float"
        extra.append(f"{result.quantized_layers} layers fake-quantized (activations {acts})")
    if result.kv_bits:
        extra.append(f"KV cache fake-quantized to int{result.kv_bits} (per token and head)")
    extra += [f"{n} attention ops {mode}" for mode, n in result.attention.items()]
    out.print(f"plan: {actions}" + "".join(f"; {e}" for e in extra))
    for name, fid in (("replay (interpreter vs eager)", result.replay),
                      ("plan (vs eager)", result.fidelity)):  # fmt: skip
        if fid.bit_exact:
            out.print(f"{name}: bit-exact")
        else:
            out.print(
                f"{name}: max |error| {si(fid.max_abs_error)}, SQNR {fid.sqnr_db:.1f} dB, "
                f"cosine {fid.cosine:.6f}"
            )
